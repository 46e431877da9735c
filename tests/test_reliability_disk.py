"""Issue 12.2: nothing on disk blocks or litters: arguments before files, one run per path, stale temp
files removed, output paths checked before any work (API and command lines)."""
from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from mtlneuron import datasets

BAD_GENERATE = [
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, ValueError, "seed"),
    ({"seed": "0"}, ValueError, "seed"),
    ({"mix": {"foo": 1}}, ValueError, "unknown curriculum stages"),
    ({"mix": {"quiet": 0}}, ValueError, "at least one stage"),
    ({"mix": {"quiet": math.nan}}, ValueError, "mix"),
    ({"mix": {"quiet": -1}}, ValueError, "mix"),
    ({"mix": {}}, ValueError, "mix"),
    ({"n_trials": 0}, ValueError, "n_trials"),
    ({"n_trials": True}, ValueError, "n_trials"),
    ({"n_trials": 2.0}, ValueError, "n_trials"),
    ({"duration": -1.0}, ValueError, "duration"),
    ({"duration": math.inf}, ValueError, "duration"),
    ({"dt": 0.3}, ValueError, "dt"),
    ({"n_workers": 0}, ValueError, "n_workers"),
    ({"executor": "pool"}, TypeError, "executor"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_GENERATE, ids=[str(k) for k, _, _ in BAD_GENERATE])
def test_bad_arguments_touch_nothing_on_disk(point, tmp_path, kwargs, error, match):
    args = {"n_trials": 2, "duration": 50.0, **kwargs}
    with pytest.raises(error, match=match):
        datasets.generate(point, args.pop("n_trials"), args.pop("duration"), tmp_path / "d.nc", progress=False,
                          **args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.neuron
def test_a_bad_call_does_not_block_the_next_correct_one(point, tmp_path):
    with pytest.raises(ValueError):
        datasets.generate(point, 2, 50.0, tmp_path / "d.nc", seed=-1, progress=False)
    datasets.generate(point, 2, 50.0, tmp_path / "d.nc", n_workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]


@pytest.mark.neuron
def test_resume_removes_stale_temporary_files(point, tmp_path):
    path = tmp_path / "d.nc"
    parts = datasets._parts_dir(path, datasets._config(point, 2, 50.0, 0.5, 0, None))
    (tmp_path / ".d.nc.k1ll3d.part").write_bytes(b"half a netCDF file")  # left by a killed run
    (parts / ".trial_000001.npz.x7y8.part").write_bytes(b"half a shard")
    datasets.generate(point, 2, 50.0, path, n_workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]


def test_existing_directory_is_refused_before_work(point, tmp_path):
    (tmp_path / "d.nc").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        datasets.generate(point, 2, 50.0, tmp_path / "d.nc", overwrite=True, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]


def test_second_run_on_the_same_path_fails_at_once(point, tmp_path):
    path = tmp_path / "d.nc"
    with datasets._run_lock(path):  # a first run holds the path
        with pytest.raises(RuntimeError, match=r"another datasets.generate run \(pid \d+, this process\) is writing"):
            datasets.generate(point, 2, 50.0, path, progress=False)


def test_a_run_in_another_process_holds_the_path(point, tmp_path):
    import os
    from pathlib import Path

    code = ("import sys, time; from pathlib import Path; from mtlneuron import datasets\n"
            "with datasets._run_lock(Path('d.nc')):\n    print('HELD', flush=True); sys.stdin.read()\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        with pytest.raises(RuntimeError, match=f"another datasets.generate run \\(pid {holder.pid}\\) is writing"):
            datasets.generate(point, 2, 50.0, tmp_path / "d.nc", progress=False)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.neuron
def test_two_concurrent_runs_one_fails_clearly_one_writes(point, tmp_path):
    path = tmp_path / "d.nc"
    run = lambda: datasets.generate(point, 4, 100.0, path, n_workers=1, progress=False)  # noqa: E731
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run) for _ in range(2)]
        errors = [f.exception() for f in futures]
    assert sum(e is None for e in errors) >= 1
    for err in errors:
        assert err is None or isinstance(err, (RuntimeError, FileExistsError)), err
    assert datasets.open(path).sizes["trial"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]


def _cli(*args, cwd, module="mtlneuron.cli"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True)


def test_cli_checks_the_plot_path_before_simulating(tmp_path):
    res = _cli("simulate", "--cell", "point", "--duration", "50", "--out", "x.nc", "--plot", "nodir/p.png",
               cwd=tmp_path)
    assert res.returncode == 2 and "nodir" in res.stderr
    assert list(tmp_path.iterdir()) == []  # no .nc that would block the corrected rerun


def test_cli_dataset_refuses_a_directory(tmp_path):
    (tmp_path / "d.nc").mkdir()
    res = _cli("dataset", "--cell", "point", "--n-trials", "1", "--out", "d.nc", "--overwrite", cwd=tmp_path)
    assert res.returncode == 2 and "is a directory" in res.stderr


def test_train_cli_checks_the_output_before_work(tmp_path):
    # the data file does not exist either: the output must be refused first
    res = _cli("--data", "missing.nc", "--out", "nodir/m.pt", cwd=tmp_path, module="mtlneuron.train")
    assert res.returncode == 2 and "nodir" in res.stderr


def test_fit_checks_the_output_before_work(tmp_path):
    from mtlneuron.training import fit

    with pytest.raises(PermissionError, match="nodir"):
        fit(str(tmp_path / "missing.nc"), out=tmp_path / "nodir" / "m.pt")


KILLED_RUN = """
import os, signal, threading, time
from pathlib import Path
import mtlneuron as mtl

def killer():
    parts = Path(".d.nc.parts")
    while len(list(parts.glob("trial_*.npz"))) < 2:
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)

threading.Thread(target=killer, daemon=True).start()
mtl.datasets.generate(mtl.cells.get("point"), 8, 200.0, "d.nc", n_workers=1, progress=False)
"""


@pytest.mark.neuron
def test_resume_after_sigkill_is_identical_and_leaves_nothing_behind(point, tmp_path):
    import os
    import signal
    from pathlib import Path

    import numpy as np

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # no pipes: an orphaned worker holding them would block the test (the hang of issue 12.1)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert ".d.nc.parts" in left and any(n.endswith(".part") for n in left), left  # the litter of a kill
    datasets.generate(point, 8, 200.0, tmp_path / "d.nc", n_workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.nc"]  # resumed, and no .part left
    (tmp_path / "fresh").mkdir()
    fresh = datasets.generate(point, 8, 200.0, tmp_path / "fresh" / "d.nc", n_workers=1, progress=False)
    a, b = datasets.open(tmp_path / "d.nc"), datasets.open(fresh)
    for name in ("v", "imem", "dipole", "inputs"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
