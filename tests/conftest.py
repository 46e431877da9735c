import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def l5pc():
    import mtlneuron as mtl

    return mtl.cells.get("l5pc")


@pytest.fixture(scope="session")
def point():
    import mtlneuron as mtl

    return mtl.cells.get("point")


@pytest.fixture(scope="session")
def l5pc_trial(l5pc):
    """300 ms of the default Poisson drive, simulated once for many tests."""
    import mtlneuron as mtl

    drive = mtl.inputs.poisson(l5pc, 300.0, seed=3)
    return drive, mtl.simulate(l5pc, drive)
