"""Many NEURON trials in parallel, written to one netCDF4 file; torch loading.

``generate`` runs trials on a process pool (default: all cores) or on any
``concurrent.futures.Executor`` (e.g. ``dask.distributed.Client(...).get_executor()``).
Each finished trial's raw arrays are written at once to their own ``.npz``
shard in ``.<name>.parts/`` next to the output; an interrupted run called again with the
same arguments skips the trials already there. When all trials are done the
the main process copies each shard into the final file as it arrives
(zlib-compressed, under a temporary name that is renamed when all trials are
in), overlapping with the simulations; then the shard folder is removed. See docs/data_format.md.

Reliability (docs/reliability.md): every argument is checked before anything
touches the disk; one run at a time per output path (an exclusive lock in the
shard folder: a second run fails at once, naming the first); on resume,
temporary files left by a killed run are removed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import numbers
import os
import shutil
import threading
from concurrent.futures import Executor, as_completed
from pathlib import Path

import numpy as np
import xarray as xr

from . import _util
from . import drive_families as _families
from . import inputs as _inputs
from . import simulate as _simulate
from .cells import Cell
from .conventions import check_dt, check_duration, check_seed
from .nrn import worker as _worker
from .nrn.trial import run_trial

__all__ = ["generate", "open", "curriculum", "check_mix", "trial_seed", "trial_drive", "STAGES", "FAMILIES"]

# Curriculum stages (eLife 2022: rest -> subthreshold -> suprathreshold): each
# scales the cell's default excitatory rate range by a factor drawn per trial.
# "default" is exactly inputs.poisson's defaults (held-out evaluation sets).
STAGES = {"quiet": (0.05, 0.3), "subthreshold": (0.3, 0.7), "suprathreshold": (0.7, 1.5), "default": (1.0, 1.0)}
DEFAULT_MIX = {"quiet": 0.15, "subthreshold": 0.25, "suprathreshold": 0.60}
# Network-shaped drive families (mtlneuron.drive_families): a mix may name them beside the stages;
# their trials come after the curriculum's, in this order, with rate_scale 1.
FAMILIES = tuple(_families.FAMILIES)


def trial_seed(seed: int, index: int) -> int:
    """The drive seed of trial ``index`` of a dataset generated with ``seed``.

    Distinct ``seed`` values give disjoint trial seeds for up to 1e6 trials,
    which is how held-out sets are kept apart from training sets.
    """
    return int(seed) * 1_000_000 + int(index)


def curriculum(n_trials: int, seed: int, mix: dict | None = None) -> list[tuple[str, float]]:
    """Stage (or drive family) name and excitatory-rate scale of every trial, in curriculum order.

    Curriculum stages come first (rate scale drawn from their range), then the
    drive families of :data:`FAMILIES` (rate scale 1: each family draws its own
    parameters from the trial seed).
    """
    mix = check_mix(mix)
    total = sum(mix.values())
    counts = {k: int(round(n_trials * v / total)) for k, v in mix.items()}
    # fix rounding so the counts add up, giving the remainder to the last stage
    last = list(mix)[-1]
    counts[last] += n_trials - sum(counts.values())
    rng = np.random.default_rng([int(seed), 7])
    out = []
    for stage in STAGES:
        lo, hi = STAGES[stage]
        out += [(stage, float(rng.uniform(lo, hi))) for _ in range(max(counts.get(stage, 0), 0))]
    for family in FAMILIES:
        out += [(family, 1.0)] * max(counts.get(family, 0), 0)
    return out


def check_mix(mix: dict | None) -> dict:
    """A validated curriculum mix (default :data:`DEFAULT_MIX`): known stages, finite weights >= 0, some > 0."""
    if mix is None:
        return dict(DEFAULT_MIX)
    if not isinstance(mix, dict) or not mix:
        raise ValueError(f"mix must be a non-empty dict of stage -> fraction, got {mix!r}")
    unknown = set(mix) - set(STAGES) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown curriculum stages {sorted(map(str, unknown))}; "
                         f"choose from {list(STAGES) + list(FAMILIES)}")
    for stage, value in mix.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"mix[{stage!r}] must be a finite number >= 0, got {value!r}")
    if sum(mix.values()) <= 0:
        raise ValueError(f"mix needs at least one stage with a fraction > 0, got {mix!r}")
    return {k: float(v) for k, v in mix.items()}


def trial_drive(cell: Cell, seed: int, rate_scale: float, duration: float, stage: str | None = None) -> xr.Dataset:
    """The drive of one dataset trial: default Poisson ranges with excitatory rates scaled,
    or, when ``stage`` names a drive family, that family's drive for ``seed``."""
    if stage in FAMILIES:
        return _families.drive(cell, stage, duration, seed)
    d = cell.drive_defaults
    rate = {"exc": (d.rate_exc[0] * rate_scale, d.rate_exc[1] * rate_scale), "inh": d.rate_inh}
    return _inputs.poisson(cell, duration, rate=rate, seed=seed)


def _trial_task(cell: Cell, index: int, seed: int, stage: str, rate_scale: float, duration: float,
                dt: float, shard: str) -> tuple[int, float]:
    """Run one trial in this process and save its raw arrays atomically; return NEURON seconds.

    The shard is a plain ``.npz`` (fast to write); labelling and compression
    happen in the main process (:func:`_labelled_trial`), off the workers' path.
    """
    drive = trial_drive(cell, seed, rate_scale, duration, stage)
    try:
        result = run_trial(cell, drive["time"].values, drive["site"].values, drive["weight"].values, duration, dt)
    except ValueError as err:
        raise ValueError(f"trial {index} (drive seed {seed}, stage {stage}): {err}") from None
    with _util.atomic_path(shard) as tmp:
        with tmp.open("wb") as f:  # np.savez would append .npz to a bare path
            np.savez(f, **result, stage=stage, rate_scale=rate_scale, trial_seed=seed)
    return index, result["neuron_seconds"]


def _labelled_trial(cell: Cell, shard: Path, duration: float, dt: float) -> xr.Dataset:
    """One trial's Dataset (the schema of ``simulate``) plus its per-trial variables."""
    with np.load(shard) as raw:
        result = {k: raw[k] for k in raw.files}
    seed, rate_scale = int(result["trial_seed"]), float(result["rate_scale"])
    drive = trial_drive(cell, seed, rate_scale, duration, str(result["stage"]))  # deterministic: rebuilt, not stored
    ds = _simulate.to_dataset(cell, drive, result, dt)
    ds["stage"] = ((), np.array(str(result["stage"]), dtype=object), {"long_name": "curriculum stage or drive family"})
    ds["rate_scale"] = ((), rate_scale, {"units": "1", "long_name": "excitatory rate scale"})
    ds["trial_seed"] = ((), seed, {"long_name": "seed of inputs.poisson for this trial"})
    ds["neuron_seconds"] = ((), float(result["neuron_seconds"]), {"units": "s", "long_name": "NEURON wall time"})
    return ds


def _config(cell: Cell, n_trials: int, duration: float, dt: float, seed: int, mix) -> dict:
    return {"cell_key": cell.key, "n_trials": n_trials, "duration": duration, "dt": dt, "seed": seed,
            "mix": mix or DEFAULT_MIX}


_held_paths: set[str] = set()  # output paths this process is writing (POSIX locks are per process)
_held_guard = threading.Lock()


def _busy(path: Path, holder: str) -> RuntimeError:
    return RuntimeError(f"another datasets.generate run ({holder}) is writing {str(path)!r}; wait for it "
                        f"to finish or write to another path")


@contextlib.contextmanager
def _run_lock(path: Path):
    """Hold the exclusive lock of the run writing ``path`` (the file ``lock`` in its shard folder).

    A second run on the same path fails at once instead of simulating everything
    again. The lock is a POSIX record lock (``lockf``): the kernel releases it when
    the process ends, however it ends, and forked workers do not inherit it (a
    killed run's dying workers cannot block its resume); runs in other threads of
    this process are refused through ``_held_paths``. Stale temporary files of a
    killed run (``.<name>.*.part`` next to ``path`` and in the shard folder) are
    removed once the lock is held.
    """
    key = str(path.resolve())
    with _held_guard:
        if key in _held_paths:
            raise _busy(path, f"pid {os.getpid()}, this process")
        _held_paths.add(key)
    parts = path.parent / f".{path.name}.parts"
    f = None
    try:
        while True:
            parts.mkdir(exist_ok=True)
            lock_file = parts / "lock"
            f = lock_file.open("a+")
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (BlockingIOError, PermissionError):
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise _busy(path, holder) from None
            try:  # the folder may have been removed by a run that finished meanwhile: lock the new one
                same = os.stat(lock_file).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        for stale in [*path.parent.glob(f".{path.name}.*.part"), *parts.glob(".*.part")]:
            stale.unlink(missing_ok=True)
        yield parts
    finally:
        if f is not None:
            f.close()  # releases the lock
        with _held_guard:
            _held_paths.discard(key)


def _parts_dir(path: Path, config: dict) -> Path:
    parts = path.parent / f".{path.name}.parts"
    cfg_file = parts / "config.json"
    if parts.exists() and cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        if old != config:
            raise ValueError(f"{parts} holds an interrupted run with other settings {old}; "
                             f"delete it or call generate with the same arguments to resume")
    parts.mkdir(exist_ok=True)
    cfg_file.write_text(json.dumps(config))
    return parts


class _TrialWriter:
    """Writes finished trials one by one into a single compressed netCDF4 file.

    The main process fills the file while workers simulate, so nothing is left
    to merge at the end and memory holds one trial at a time. Each variable is
    chunked per trial (zlib level 4); ``spike`` is an unlimited dim, NaN-filled
    past a trial's last spike.
    """

    def __init__(self, path: Path, n_trials: int, attrs: dict):
        self.path, self.n_trials, self.attrs = path, n_trials, attrs
        self.nc = None

    def _create(self, first: xr.Dataset) -> None:
        import netCDF4

        coords = first.drop_vars(list(first.data_vars))
        coords.encoding = {}  # the shard's unlimited-dims setting refers to dropped variables
        coords.attrs = {k: v for k, v in first.attrs.items() if k not in ("seed", "command")} | self.attrs
        coords.to_netcdf(self.path, engine="netcdf4")
        self.nc = nc = netCDF4.Dataset(self.path, "a")
        nc.createDimension("trial", self.n_trials)
        nc.createDimension("spike", None)
        nc.createVariable("trial", "i8", ("trial",))[:] = np.arange(self.n_trials)
        for name, var in first.data_vars.items():
            dims = ("trial",) + var.dims
            if var.dtype.kind in "OUS":
                out = nc.createVariable(name, str, dims)
            else:
                chunks = (1,) + tuple(64 if d == "spike" else n for d, n in zip(var.dims, var.shape))
                fill = np.nan if var.dtype.kind == "f" else None
                out = nc.createVariable(name, var.dtype, dims, zlib=True, complevel=4, chunksizes=chunks,
                                        fill_value=fill)
            out.setncatts({k: v for k, v in var.attrs.items() if k != "_FillValue"})

    def write(self, index: int, ds: xr.Dataset) -> None:
        if self.nc is None:
            self._create(ds)
        for name, var in ds.data_vars.items():
            values = var.values
            if name == "spike_times":
                if values.size:
                    self.nc[name][index, : values.size] = values
            elif var.dtype.kind in "OUS":
                self.nc[name][index] = str(values)
            else:
                self.nc[name][index, ...] = values

    def close(self) -> None:
        if self.nc is not None:
            self.nc.close()
            self.nc = None


def generate(cell: Cell, n_trials: int, duration: float = 1000.0, path: str | os.PathLike = "dataset.nc", *,
             executor: Executor | None = None, seed: int = 0, dt: float = 0.5, n_workers: int | None = None,
             mix: dict | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Simulate ``n_trials`` Poisson-driven trials of ``cell`` and write them to ``path``.

    Parameters
    ----------
    cell : Cell
        The cell to simulate.
    n_trials : int
        Number of trials (> 0).
    duration : float
        Length of each trial (ms).
    path : str or Path
        Output netCDF4 file.
    executor : concurrent.futures.Executor, optional
        Where to run trials (e.g. ``dask.distributed.Client(...).get_executor()``).
        Default: a process pool with ``n_workers`` processes.
    seed : int
        Dataset seed; trial ``i`` uses drive seed ``trial_seed(seed, i)``.
    dt : float
        Model grid (ms).
    n_workers : int, optional
        Pool size when no executor is given (default: all cores).
    mix : dict, optional
        Fraction of trials per curriculum stage (``quiet``, ``subthreshold``,
        ``suprathreshold``, ``default``) or drive family (``scaled``, ``volley``,
        ``proximal_strong``, ``recurrent``: :mod:`mtlneuron.drive_families`);
        default ``DEFAULT_MIX``.
    overwrite : bool
        Replace an existing file at ``path``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    PermissionError
        If the output directory is missing or not writable.
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        For a non-positive ``n_trials`` or ``duration``, a bad ``dt``, a
        negative or non-integer ``seed``, an unknown or all-zero ``mix``, a bad
        ``n_workers`` (all checked before anything is written).
    RuntimeError
        If another run is writing to ``path`` right now.
    """
    # every argument is checked before anything touches the disk
    path = _util.check_output_path(path, overwrite)
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials <= 0:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    duration = check_duration(duration)
    check_dt(dt, duration)
    seed = check_seed(seed)
    mix = None if mix is None else check_mix(mix)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer))
                                  or n_workers <= 0):
        raise ValueError(f"n_workers must be a positive integer or None, got {n_workers!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    cell.sites  # build the tables once here so every worker receives them with the cell
    config = _config(cell, int(n_trials), duration, float(dt), int(seed), mix)
    with _run_lock(path) as parts_dir:
        try:
            _util.check_output_path(path, overwrite)  # again: the run that held the lock may have just written it
            _parts_dir(path, config)
        except Exception:
            if not any(parts_dir.glob("trial_*.npz")):  # nothing to resume: leave nothing behind
                shutil.rmtree(parts_dir, ignore_errors=True)
            raise
        _run(cell, int(n_trials), duration, float(dt), seed, mix, path, parts_dir, config, executor, n_workers,
             progress)
        shutil.rmtree(parts_dir, ignore_errors=True)  # still under the lock: a waiting run locks a fresh folder
    return path


def _run(cell: Cell, n_trials: int, duration: float, dt: float, seed: int, mix, path: Path, parts: Path,
         config: dict, executor, n_workers, progress: bool) -> None:
    """The body of :func:`generate`, under its lock: simulate what is missing, write the file."""
    from tqdm.auto import tqdm

    plan = curriculum(int(n_trials), seed, mix)
    shards = [parts / f"trial_{i:06d}.npz" for i in range(n_trials)]
    todo = [i for i in range(n_trials) if not shards[i].exists()]

    attrs = {"n_trials": int(n_trials), "dataset_seed": int(seed), "command": _util.command_line(),
             "trial_seeds": f"seed * 1000000 + trial index (seed={int(seed)})",
             "curriculum": json.dumps(config["mix"])}
    own_pool = executor is None
    if own_pool:
        workers = max(1, min(n_workers or os.cpu_count() or 1, len(todo) or 1))
        executor = _worker.pool(workers)  # its processes die with this one
    try:
        futures = [executor.submit(_trial_task, cell, i, trial_seed(seed, i), plan[i][0], plan[i][1],
                                   duration, float(dt), str(shards[i])) for i in todo]
        bar = tqdm(total=n_trials, initial=n_trials - len(todo), desc=f"{cell.name} trials",
                   unit="trial", disable=not progress)
        with bar, _util.atomic_path(path) as tmp:
            writer = _TrialWriter(tmp, int(n_trials), attrs)
            try:
                for i in sorted(set(range(n_trials)) - set(todo)):  # finished in an earlier run
                    writer.write(i, _labelled_trial(cell, shards[i], duration, float(dt)))
                for fut in as_completed(futures):
                    index, _ = fut.result()
                    writer.write(index, _labelled_trial(cell, shards[index], duration, float(dt)))
                    bar.update(1)
            finally:
                writer.close()
    finally:
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)


def open(path: str | os.PathLike) -> xr.Dataset:  # noqa: A001 - mirrors xarray.open_dataset
    """Open a dataset written by :func:`generate`, lazily (arrays load on access).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    return xr.open_dataset(path, engine="netcdf4")
