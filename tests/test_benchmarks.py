"""Speed benchmarks (pytest-benchmark). They assert correctness only; timings with

    pytest tests/test_benchmarks.py --benchmark-enable

(make test runs them once each, benchmark disabled). The ratio figures in
docs/benchmarks.md come from benchmarks/*.py scripts run in one invocation.
"""
import numpy as np
import pytest
import torch

import mtlneuron as mtl


@pytest.fixture(scope="module")
def l5pc_second(l5pc):
    drive = mtl.inputs.poisson(l5pc, 1000.0, seed=21)
    return drive, mtl.inputs.bin(drive, 0.5).values


def test_neuron_l5pc_one_second(benchmark, l5pc, l5pc_second):
    drive, _ = l5pc_second
    ds = benchmark(mtl.simulate, l5pc, drive)
    assert ds["v"].shape == (2000, 55) and np.isfinite(ds["v"].values).all()


@pytest.mark.parametrize("n_cells", [1, 100])
def test_surrogate_l5pc_one_second(benchmark, l5pc, l5pc_second, n_cells):
    _, x = l5pc_second
    model = mtl.Surrogate(l5pc).eval()  # speed does not depend on the weights
    xb = torch.as_tensor(x, dtype=torch.float32)[None].expand(n_cells, -1, -1).contiguous()

    def run():
        with torch.no_grad():
            return model.run(xb)[0]

    out = benchmark(run)
    assert out["v"].shape == (n_cells, 2000, 55) and torch.isfinite(out["v"]).all()
    # identical inputs give identical cells
    assert torch.allclose(out["v"][0], out["v"][-1])
