import pytest

import mtlneuron as mtl


@pytest.fixture(scope="session")
def cell(l5pc):
    return l5pc


@pytest.fixture(scope="session")
def trial(cell):
    """200 ms of the default Poisson drive on the l5pc (NEURON), shared by the field tests."""
    drive = mtl.inputs.poisson(cell, duration=200.0, seed=0)
    return mtl.simulate(cell, drive, dt=0.5)
