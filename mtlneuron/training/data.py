"""Training data: datasets in memory as :class:`TrialArrays`, pooling, the trial split, scalers.

* **Split by trial.** Trials are shuffled with the seed and split into train /
  validation / test (:func:`split_trials`); no trial is in two sets.
* **Scalers** are fitted on the training trials only (:func:`compute_scalers`).
* **Sparse inputs.** Binned synaptic drives are mostly zeros (a few of 200
  sites get an event in a 0.5-ms bin), so trials are held as per-trial sparse
  (time x site) matrices (:class:`SparseInputs`) and made dense one batch at a
  time: the inputs of 10,000 s of l5pc data take ~0.2 GB instead of 16 GB.
* **Stages.** ``exclude_stages`` drops trials of named curriculum stages or
  drive families (variable ``stage``) before anything is read, e.g. to hold a
  drive family out of training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse
import torch
import xarray as xr

from ..conventions import active_axes, clip_voltage
from ..surrogate import Surrogate
from ..surrogate.checkpoint import check_data
from ..surrogate.waveforms import spike_bins

__all__ = ["SparseInputs", "TrialArrays", "select_stages", "open_dataset", "open_datasets", "concat_arrays",
           "load_arrays", "with_validation_trials", "split_trials", "check_split", "compute_scalers", "trial_batch",
           "cell_from_dataset", "check_dataset", "dataset_info"]


class SparseInputs:
    """Binned inputs (trial, time, site) uS as one sparse (time x site) matrix per trial.

    Indexing with a trial index, slice or index array returns the dense float32
    array, like the (trial, time, site) ndarray it stands for.
    """

    def __init__(self, trials: Sequence[scipy.sparse.csr_matrix], n_time: int, n_sites: int) -> None:
        self.trials = list(trials)
        self.shape = (len(self.trials), int(n_time), int(n_sites))
        self.dtype = np.dtype(np.float32)

    @classmethod
    def from_dense(cls, x: np.ndarray) -> "SparseInputs":
        """From a dense (trial, time, site) array."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"inputs must be (trial, time, site), got shape {x.shape}")
        return cls([scipy.sparse.csr_matrix(t) for t in x], x.shape[1], x.shape[2])

    @classmethod
    def concat(cls, parts: Sequence["SparseInputs"]) -> "SparseInputs":
        """The trials of several stores, in order (equal time and site counts)."""
        return cls([t for p in parts for t in p.trials], parts[0].shape[1], parts[0].shape[2])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, (int, np.integer)):
            return self.trials[int(idx)].toarray().astype(np.float32, copy=False)
        rows = np.arange(len(self))[idx]
        out = np.zeros((len(rows),) + self.shape[1:], np.float32)
        for k, i in enumerate(rows):
            out[k] = self.trials[int(i)].toarray()
        return out

    def site_sums(self, idx: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per site over trials ``idx``: number of non-zero bins and summed weight (uS)."""
        count = np.zeros(self.shape[2], np.int64)
        total = np.zeros(self.shape[2], np.float64)
        for i in idx:
            t = self.trials[int(i)]
            count += np.bincount(t.indices, minlength=self.shape[2])
            total += np.bincount(t.indices, weights=t.data.astype(np.float64), minlength=self.shape[2])
        return count, total


@dataclass
class TrialArrays:
    """Whole trials in memory: inputs (trial, time, site) uS, v (trial, time, segment) mV,
    dipole (trial, time, 3) nA um, spikes (trial, time) 0/1 per bin, trial seeds, and the
    somatic ionic currents (trial, time, ion) nA with their names (empty when not recorded).
    ``inputs`` is kept as :class:`SparseInputs` (a dense array is converted)."""

    inputs: SparseInputs | np.ndarray
    v: np.ndarray
    dipole: np.ndarray
    spikes: np.ndarray
    seeds: np.ndarray
    dt: float
    ions: np.ndarray | None = None
    ion_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, SparseInputs):
            self.inputs = SparseInputs.from_dense(self.inputs)

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]


# -- reading ---------------------------------------------------------------------------------------

def open_dataset(dataset) -> xr.Dataset:
    """A dataset from a path (``mtl.datasets.open``) or an already opened ``xarray.Dataset``."""
    if isinstance(dataset, (str, os.PathLike)):
        from .. import datasets

        return datasets.open(dataset)
    if not isinstance(dataset, xr.Dataset):
        raise ValueError(f"dataset must be a path or an xarray.Dataset from mtl.datasets, got {type(dataset).__name__}")
    return dataset


def open_datasets(dataset) -> list[xr.Dataset]:
    """One or several datasets of the same cell, dt and trial length (checked)."""
    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    if not items:
        raise ValueError("dataset: got an empty list")
    dss = [open_dataset(d) for d in items]
    first = dss[0]
    for item, ds in zip(items[1:], dss[1:]):
        name = str(item) if isinstance(item, (str, os.PathLike)) else "a dataset"
        for attr in ("cell_key", "dt"):
            if ds.attrs.get(attr) != first.attrs.get(attr):
                raise ValueError(f"{name} has {attr} {ds.attrs.get(attr)!r}, the first dataset "
                                 f"{first.attrs.get(attr)!r}: datasets trained together must match")
        if ds.sizes.get("time") != first.sizes.get("time"):
            raise ValueError(f"{name} has {ds.sizes.get('time')} time bins per trial, the first dataset "
                             f"{first.sizes.get('time')}: datasets trained together need equal trial lengths")
    return dss


def concat_arrays(parts: Sequence[TrialArrays]) -> TrialArrays:
    """Pool the trials of several datasets (ionic currents only when all record the same ones)."""
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    same_ions = all(p.ion_names == parts[0].ion_names for p in parts)
    ions = cat("ions") if same_ions and parts[0].ion_names else None
    return TrialArrays(SparseInputs.concat([p.inputs for p in parts]), cat("v"), cat("dipole"), cat("spikes"),
                       cat("seeds"), parts[0].dt, ions, parts[0].ion_names if ions is not None else ())


def with_validation_trials(pool: TrialArrays, val_parts: Sequence[TrialArrays]) -> TrialArrays:
    """``pool`` followed by the trials of ``val_parts`` (validation data from other files), checked to fit."""
    for part in val_parts:
        if not np.isclose(part.dt, pool.dt) or part.inputs.shape[1:] != pool.inputs.shape[1:]:
            raise ValueError(f"val_data: trials of {part.inputs.shape[1]} bins x {part.inputs.shape[2]} sites at dt "
                             f"{part.dt} ms; the training data have {pool.inputs.shape[1]} x "
                             f"{pool.inputs.shape[2]} at dt {pool.dt} ms (same cell, dt and trial length needed)")
        shared = np.intersect1d(part.seeds, pool.seeds)
        if shared.size:
            raise ValueError(f"val_data shares {shared.size} trial drive seeds with the training data (e.g. "
                             f"{int(shared[0])}): validation trials must be new")
    return concat_arrays([pool, *val_parts])


def load_arrays(ds: xr.Dataset) -> TrialArrays:
    """Read a dataset into memory as :class:`TrialArrays` (spike times -> per-bin labels)."""
    missing = [k for k in ("inputs", "v", "spike_times") if k not in ds.data_vars]
    if missing:
        raise ValueError(f"dataset lacks {missing}; expected a file from mtl.datasets.generate")
    if "trial" not in ds["v"].dims:
        ds = ds.expand_dims(trial=[0])
    if "dt" not in ds.attrs:
        raise ValueError("dataset has no 'dt' attribute (time bin, ms)")
    dt = float(ds.attrs["dt"])
    v = np.asarray(ds["v"].transpose("trial", "time", "segment").values, dtype=np.float32)
    n, t = v.shape[:2]
    inputs = _sparse_inputs(ds["inputs"].transpose("trial", "time", "site"))
    if "dipole" in ds.data_vars:
        dipole = np.asarray(ds["dipole"].transpose("trial", "time", "axis").values, dtype=np.float32)
    else:
        dipole = np.zeros((n, t, 3), np.float32)
    for name, arr in (("v", v), ("dipole", dipole)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"dataset variable {name!r} contains NaN or infinite values")
    st = np.asarray(ds["spike_times"].values, dtype=float).reshape(n, -1)
    spikes = np.zeros((n, t), np.float32)
    for k in range(n):
        spikes[k, spike_bins(st[k], dt, t)] = 1.0
    seeds = ds["trial_seed"].values.astype(np.int64) if "trial_seed" in ds else np.full(n, -1)
    ions, names = None, ()
    if "i_ion" in ds.data_vars:
        ions = np.asarray(ds["i_ion"].transpose("trial", "time", "ion").values, dtype=np.float32)
        names = tuple(str(i) for i in ds["ion"].values)
        if not np.all(np.isfinite(ions)):
            raise ValueError("dataset variable 'i_ion' contains NaN or infinite values")
    return TrialArrays(inputs, v, dipole, spikes, seeds, dt, ions, names)


def _sparse_inputs(inputs: xr.DataArray, chunk: int = 25) -> SparseInputs:
    """Read (trial, time, site) inputs a few trials at a time into a :class:`SparseInputs` (checked finite)."""
    trials = []
    for k in range(0, inputs.sizes["trial"], chunk):
        x = np.asarray(inputs.isel(trial=slice(k, k + chunk)).values, dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError("dataset variable 'inputs' contains NaN or infinite values")
        trials += [scipy.sparse.csr_matrix(t) for t in x]
    return SparseInputs(trials, inputs.sizes["time"], inputs.sizes["site"])


def select_stages(ds: xr.Dataset, exclude: Sequence[str] = ()) -> xr.Dataset:
    """``ds`` without the trials whose ``stage`` (curriculum stage or drive family) is in ``exclude``.

    Raises
    ------
    ValueError
        If stages are to be excluded but the dataset records none, or nothing is left.
    """
    if not exclude:
        return ds
    if "stage" not in ds.data_vars:
        raise ValueError(f"cannot exclude stages {list(exclude)}: the dataset has no 'stage' variable")
    keep = ~np.isin(ds["stage"].values.astype(str), [str(e) for e in exclude])
    if not keep.any():
        raise ValueError(f"excluding stages {list(exclude)} leaves no trials")
    return ds.isel(trial=np.flatnonzero(keep))


def dataset_info(dataset, dss: Sequence[xr.Dataset]) -> dict:
    """Provenance of the training data recorded in ``training_info`` (paths, trials, cell, seeds, dt)."""
    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    paths = [str(d) if isinstance(d, (str, os.PathLike)) else None for d in items]
    seeds = [d.attrs.get("dataset_seed") for d in dss]
    return {"path": paths[0] if len(paths) == 1 else paths,
            "n_trials": int(sum(d.sizes.get("trial", 1) for d in dss)), "cell_key": dss[0].attrs.get("cell_key"),
            "dataset_seed": seeds[0] if len(seeds) == 1 else seeds, "dt": dss[0].attrs.get("dt")}


# -- the cell and the model ------------------------------------------------------------------------

def cell_from_dataset(ds: xr.Dataset):
    """``mtl.cells.get(ds.attrs["cell"])``, checked against the dataset's cell key."""
    from .. import cells

    name, key = ds.attrs.get("cell"), ds.attrs.get("cell_key")
    if name is None:
        raise ValueError("dataset has no 'cell' attribute; pass cell=mtl.cells.get(name)")
    try:
        cell = cells.get(str(name))
    except Exception as err:  # an unknown or custom (from_morphology) cell
        raise ValueError(f"cannot rebuild cell {name!r} of the dataset ({err}); pass cell=...") from None
    if key is not None and cell.key != key:
        raise ValueError(f"dataset was made with cell key {key!r} but mtl.cells.get({name!r}) gives "
                         f"{cell.key!r}; pass the matching cell=...")
    return cell


def check_dataset(model: Surrogate, ds: xr.Dataset, arrays: TrialArrays) -> None:
    """Refuse training data made for another cell or grid, or without the model's ionic currents."""
    check_data(model, cell_key=ds.attrs.get("cell_key"), dt=arrays.dt, n_sites=arrays.inputs.shape[-1],
               n_segments=arrays.v.shape[-1],
               segment_names=ds["segment"].values.astype(str) if "segment" in ds.coords else None)
    if model.config.ions and tuple(model.config.ions) != arrays.ion_names:
        raise ValueError(f"the model predicts ionic currents {list(model.config.ions)} but the dataset has "
                         f"{list(arrays.ion_names) or 'none'} (variable i_ion)")


# -- split and scalers -----------------------------------------------------------------------------

def split_trials(n_trials: int, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 seed: int = 0) -> dict[str, list[int]]:
    """Shuffle trial indices and split them into disjoint train / val / test lists.

    At least one validation and one training trial; fractions are rounded.

    Raises
    ------
    ValueError
        For fewer than 2 trials or fractions outside [0, 1).
    """
    if n_trials < 2:
        raise ValueError(f"need at least 2 trials (one to train, one to validate), got {n_trials}")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f!r}")
    perm = np.random.default_rng([int(seed), 1]).permutation(n_trials)
    n_val = max(1, int(round(val_fraction * n_trials)))
    n_test = int(round(test_fraction * n_trials))
    n_test = max(0, min(n_test, n_trials - n_val - 1))
    return {"train": sorted(perm[n_val + n_test:].tolist()), "val": sorted(perm[:n_val].tolist()),
            "test": sorted(perm[n_val:n_val + n_test].tolist())}


def check_split(split: Mapping, n: int) -> dict[str, list[int]]:
    """A given ``{"train", "val", "test"}`` split as sorted lists, checked disjoint and in range."""
    out = {k: sorted(int(i) for i in split.get(k, [])) for k in ("train", "val", "test")}
    every = out["train"] + out["val"] + out["test"]
    if len(set(every)) != len(every):
        raise ValueError("split: a trial appears in more than one of train / val / test")
    bad = [i for i in every if not 0 <= i < n]
    if bad:
        raise ValueError(f"split: trial index {bad[0]} out of range [0, {n})")
    if not out["train"] or not out["val"]:
        raise ValueError("split needs at least one train and one val trial")
    return out


def compute_scalers(arrays: TrialArrays, idx: Sequence[int], v_clip: float | None,
                    max_pos_weight: float) -> dict[str, np.ndarray]:
    """Input and target scalers from the training trials ``idx`` only.

    ``site_scale`` (uS): mean non-zero binned weight per site (sites never
    driven get the median over the driven sites); ``v_mean`` /
    ``v_std`` (mV) of the (clipped) voltage per segment; dipole mean / SD per
    axis (inactive axes, :func:`mtlneuron.conventions.active_axes`: SD 1);
    ``spike_pos_weight`` = non-spike / spike bins, in [1, max_pos_weight].
    """
    idx = np.asarray(idx)
    count, total = arrays.inputs.site_sums(idx)
    scale = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    fill = np.nanmedian(scale) if np.isfinite(scale).any() else 1e-3
    site_scale = np.where(np.isfinite(scale) & (scale > 0), scale, fill)

    v = clip_voltage(arrays.v[idx].reshape(-1, arrays.v.shape[-1]).astype(np.float64), v_clip)
    v_mean, v_std = v.mean(axis=0), v.std(axis=0)
    v_std = np.maximum(v_std, 1e-3 * max(float(np.median(v_std)), 1e-3))

    d = arrays.dipole[idx].reshape(-1, 3).astype(np.float64)
    d_mean, d_std = d.mean(axis=0), d.std(axis=0)
    active = active_axes(d_std)
    d_std = np.where(active, d_std, 1.0)

    p = float(arrays.spikes[idx].mean())
    pos_weight = float(np.clip((1 - p) / p, 1.0, max_pos_weight)) if p > 0 else 1.0
    out = {"site_scale": site_scale, "v_mean": v_mean, "v_std": v_std, "dipole_mean": d_mean,
           "dipole_std": d_std, "dipole_active": active.astype(float), "spike_pos_weight": pos_weight}
    if arrays.ions is not None:
        i = arrays.ions[idx].reshape(-1, arrays.ions.shape[-1]).astype(np.float64)
        out["ion_mean"], out["ion_std"] = i.mean(axis=0), np.maximum(i.std(axis=0), 1e-6)
    return out


def trial_batch(arrays: TrialArrays, idx: Sequence[int], device) -> tuple[torch.Tensor | None, ...]:
    """inputs, v, dipole, spikes and ionic currents (None when absent) of trials ``idx``, as tensors."""
    idx = np.asarray(idx)
    ions = None if arrays.ions is None else torch.as_tensor(arrays.ions[idx], device=device)
    return tuple(torch.as_tensor(a[idx], device=device) for a in
                 (arrays.inputs, arrays.v, arrays.dipole, arrays.spikes)) + (ions,)
