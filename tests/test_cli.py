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


# -- the commands of the README's tasks, end to end with tiny settings -------------------------------------------
import json  # noqa: E402

import pytest  # noqa: E402

TINY_MODEL = ["--input-channels", "4", "--filter-channels", "4", "--conv-channels", "8", "--hidden-size", "8",
              "--num-layers", "1", "--window", "200", "--no-progress"]


@pytest.fixture(scope="module")
def point_data(tmp_path_factory):
    """Four 200-ms NEURON trials of the point neuron (``mtlneuron dataset``)."""
    folder = tmp_path_factory.mktemp("cli_data")
    res = _run("dataset", "--cell", "point", "--n-trials", "4", "--duration", "200", "--workers", "1",
               "--out", "d.nc", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder / "d.nc"


def test_train_then_evaluate_commands(point_data, tmp_path):
    res = _run("train", "--data", str(point_data), "--out", "m.pt", "--epochs", "1", *TINY_MODEL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "wrote m.pt" in res.stdout
    res = _run("evaluate", "--model", "m.pt", "--data", str(point_data), "--trials", "0,1", "--out", "e.nc",
               "--plot", "e.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "spike F1" in res.stdout and "soma r (clipped v)" in res.stdout
    assert xr.open_dataset(tmp_path / "e.nc")["soma_r_clipped"].size == 1
    assert (tmp_path / "e.png").exists()


def test_train_refuses_to_overwrite_and_names_the_flag(point_data, tmp_path):
    (tmp_path / "m.pt").write_bytes(b"an older model")
    res = _run("train", "--data", str(point_data), "--out", "m.pt", "--epochs", "1", *TINY_MODEL, cwd=tmp_path)
    assert res.returncode == 2 and "--overwrite" in res.stderr and "overwrite=True" not in res.stderr
    assert (tmp_path / "m.pt").read_bytes() == b"an older model"
    res = subprocess.run([sys.executable, "-m", "mtlneuron.train", "--data", str(point_data), "--out", "m.pt",
                          "--epochs", "1", *TINY_MODEL], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_rett_command_both_backends(tmp_path):
    res = _run("rett", "--n-cells", "4", "--duration", "60", "--stim-time", "30", "--out", "s.nc", "--plot", "s.png",
               "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "response_aps" in res.stdout
    ds = xr.open_dataset(tmp_path / "s.nc")
    assert ds.attrs["backend"] == "surrogate" and ds.sizes["cell"] == 4 and (tmp_path / "s.png").exists()
    res = _run("rett", "--n-cells", "3", "--duration", "40", "--stim-time", "20", "--backend", "neuron",
               "--out", "n.nc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert xr.open_dataset(tmp_path / "n.nc").attrs["backend"] == "neuron"


def test_sweep_command_from_a_file_and_from_flags(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"grid": {"exc_scale": [0.75, 1.25]}, "seeds": [0, 1],
                                                 "fixed": {"stim_time": 20.0}}))
    res = _run("sweep", "--config", "s.json", "--n-cells", "4", "--duration", "40", "--out", "a.nc", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert dict(xr.open_dataset(tmp_path / "a.nc")["pre_aps"].sizes) == {"exc_scale": 2, "seed": 2}
    assert "4/4" in res.stderr  # progress counted in networks
    res = _run("sweep", "--grid", "p_connect=0.0,0.2", "--grid", "exc_scale=1.0", "--seeds", "0-2", "--n-cells", "4",
               "--duration", "40", "--stim-time", "20", "--out", "b.nc", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert dict(xr.open_dataset(tmp_path / "b.nc")["pre_aps"].sizes) == {"p_connect": 2, "exc_scale": 1, "seed": 3}


def test_help_shows_defaults_and_choices():
    for command, expected in (("rett", ["{surrogate,neuron}", "(default: surrogate)", "(default: 150)"]),
                              ("sweep", ["--config", "--grid NAME=V1,V2"]),
                              ("evaluate", ["--model", "--trials"]),
                              ("train", ["(default: 100)", "{uncertainty,fixed}", "--overwrite"])):
        res = subprocess.run([sys.executable, "-m", "mtlneuron.cli", command, "--help"], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr
        for text in expected:
            assert text in res.stdout, (command, text)


@pytest.mark.parametrize("args, flag", [
    (["rett", "--n-cells", "4", "--p-connect", "2"], "--p-connect"),
    (["rett", "--n-cells", "20000"], "--max-memory"),
    (["rett", "--n-cells", "4", "--duration", "1e9"], "--max-memory"),
    (["rett", "--n-cells", "4", "--stim-time", "400"], "--stim-time"),
    (["rett", "--n-cells", "nan"], "--n-cells"),
    (["sweep", "--grid", "seed=1,2", "--out", "o.nc"], "--grid"),
    (["sweep", "--grid", "exc_scale=", "--out", "o.nc"], "--grid"),
    (["sweep", "--seeds", ",", "--out", "o.nc"], "--seeds"),
    (["sweep", "--config", "missing.json", "--out", "o.nc"], "--config"),
    (["sweep", "--n-cells", "4", "--duration", "40", "--out", "o.nc"], "--stim-time"),
    (["evaluate", "--model", "no-such-model", "--data", "d.nc"], "--model"),
    (["evaluate", "--model", "point", "--data", "missing.nc"], "--data"),
    (["train", "--data", "missing.nc", "--out", "m.pt"], "--data"),
    (["train", "--data", "x.nc", "--out", "m.pt", "--epochs", "0"], "--epochs"),
    (["simulate", "--cell", "point", "--duration", "-5", "--out", "y.nc"], "--duration"),
    (["dataset", "--cell", "point", "--n-trials", "0", "--out", "y.nc"], "--n-trials"),
    (["simulate", "--cell", "point", "--out", "x.nc"], "--overwrite"),
    (["dataset", "--cell", "point", "--n-trials", "1", "--out", "x.nc"], "--overwrite"),
    (["rett", "--n-cells", "4", "--out", "x.nc"], "--overwrite"),
])
def test_every_cli_error_names_its_flag(tmp_path, args, flag):
    (tmp_path / "x.nc").write_bytes(b"")
    res = _run(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stdout
    assert flag in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "overwrite=True" not in res.stderr


# -- mtlneuron hnn: hnn-core's column, tiny (3 x 3 mesh, 40 ms) -------------------------------------------------
def test_hnn_command_both_backends_out_and_plot(tmp_path):
    res = _run("hnn", "--mesh", "3", "--tstop", "40", "--backend", "both", "--out", "h.nc", "--plot", "h.png",
               "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "dipole r (30-ms smoothing) agg" in res.stdout and "L5_pyramidal" in res.stdout
    ds = xr.open_dataset(tmp_path / "h.nc")
    assert list(ds["backend"].values) == ["surrogate", "hnn"]
    assert ds["dipole"].dims == ("backend", "time", "layer") and ds.sizes["time"] == 80
    assert ds.sizes["cell"] == 24 and ds["dipole"].attrs["units"] == "nA m"
    assert (tmp_path / "h.png").stat().st_size > 0
    # outputs are never replaced silently; --overwrite replaces them
    res = _run("hnn", "--mesh", "3", "--tstop", "40", "--plot", "h.png", cwd=tmp_path)
    assert res.returncode == 2 and "--plot" in res.stderr and "--overwrite" in res.stderr
    res = _run("hnn", "--mesh", "3", "--tstop", "40", "--drives", "poisson", "--out", "h.nc", "--overwrite",
               "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ds = xr.open_dataset(tmp_path / "h.nc")
    assert list(ds["backend"].values) == ["surrogate"] and ds.attrs["drives"] == "poisson"


def test_hnn_command_optimize_confirmed_in_hnn_core(tmp_path):
    res = _run("hnn", "--mesh", "3", "--tstop", "40", "--backend", "hnn", "--optimize", "15", "60", "--steps", "1",
               "--out", "o.nc", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "OptimizationResult" in res.stdout and "15-60 Hz agg dipole power in hnn-core:" in res.stdout
    ds = xr.open_dataset(tmp_path / "o.nc")
    assert list(ds["backend"].values) == ["hnn", "hnn_optimised"]
    assert ds.sizes["entry"] == 30 and ds.attrs["optimize_steps"] == 1


@pytest.mark.parametrize("args, flag", [
    (["--mesh", "0"], "--mesh"),
    (["--tstop", "-5"], "--tstop"),
    (["--tstop", "40.2"], "--tstop"),
    (["--backend", "neuron"], "--backend"),
    (["--steps", "3"], "--steps"),
    (["--tstop", "40", "--optimize", "60", "15"], "--optimize"),
    (["--optimize", "15", "1500"], "--optimize"),
    (["--surrogates", "no-such-dir"], "--surrogates"),
    (["--plot", "x.xyz"], "--plot"),
    (["--out", "x.nc"], "--overwrite"),
])
def test_hnn_command_errors_name_their_flag(tmp_path, args, flag):
    (tmp_path / "x.nc").write_bytes(b"")
    res = _run("hnn", "--mesh", "3", *args, cwd=tmp_path)
    assert res.returncode == 2, res.stdout
    assert flag in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_hnn_help_shows_defaults_and_choices():
    res = _run("hnn", "--help", cwd=".")
    assert res.returncode == 0, res.stderr
    words = " ".join(res.stdout.split())  # help lines wrap with the terminal width
    for text in ("{surrogate,hnn,both}", "{erp,poisson}", "(default: 10)", "(default: 170.0)", "--optimize FMIN FMAX"):
        assert text in words, text
