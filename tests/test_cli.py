import subprocess
import sys

import xarray as xr


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mtlneuron.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_simulate_command(tmp_path):
    res = _run("simulate", "--cell", "point", "--duration", "200", "--out", "x.nc", "--plot", "x.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "spikes:" in res.stdout
    ds = xr.open_dataset(tmp_path / "x.nc")
    assert ds["v"].shape == (400, 1)
    assert (tmp_path / "x.png").exists()
    # no silent overwrite
    res = _run("simulate", "--cell", "point", "--duration", "200", "--out", "x.nc", cwd=tmp_path)
    assert res.returncode == 2 and "overwrite" in res.stderr


def test_dataset_command_and_bad_cell(tmp_path):
    res = _run("dataset", "--cell", "point", "--n-trials", "2", "--duration", "100", "--workers", "1",
               "--out", "d.nc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert xr.open_dataset(tmp_path / "d.nc").sizes["trial"] == 2
    res = _run("simulate", "--cell", "nope", "--out", "y.nc", cwd=tmp_path)
    assert res.returncode == 2 and "unknown cell name 'nope'" in res.stderr
    assert not (tmp_path / "y.nc").exists()


def test_demo_small(tmp_path):
    res = _run("demo", "--duration", "200", "--out-dir", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "demo.nc").exists() and (tmp_path / "out" / "demo.png").exists()
