"""benchmarks/binning_ceiling.py: events jittered inside their bins keep the binned input; a tiny end-to-end run."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import mtlneuron as mtl

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "binning_ceiling.py"


@pytest.fixture(scope="module")
def ceiling():
    spec = importlib.util.spec_from_file_location("binning_ceiling", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_jitter_keeps_every_event_in_its_bin(ceiling, point):
    drive = mtl.inputs.poisson(point, 2000.0, seed=4)
    moved = ceiling.jitter_within_bins(drive, 0.5, np.random.default_rng(0))
    assert moved.sizes["event"] == drive.sizes["event"] > 50
    np.testing.assert_allclose(mtl.inputs.bin(moved, 0.5).values, mtl.inputs.bin(drive, 0.5).values, rtol=1e-12)
    assert not np.allclose(np.sort(moved["time"].values), np.sort(drive["time"].values))  # it did move them
    assert np.all(np.diff(moved["time"].values) >= 0)
    mtl.inputs.validate(moved, point)


def test_tiny_ceiling_run(ceiling, point, tmp_path, capsys):
    out = tmp_path / "c.json"
    res = ceiling.main(["--cell", "point", "--trials", "2", "--duration", "300", "--json", str(out), "--quiet"])
    assert out.exists() and res["trials"] == 2
    assert set(res["pooled"]) == set(ceiling.METRICS)
    assert res["pooled"]["soma_ve_clipped"] > 0.5  # jitter inside 0.5 ms barely moves a point neuron
    assert "clipped soma VE" in capsys.readouterr().out
    ceiling.main(["--report", str(out), str(out)])
    report = capsys.readouterr().out
    assert "All 4 trials of 2 runs" in report and "share of trials >= 0.95" in report
