"""Training a :class:`~mtlneuron.model.Surrogate` on a ``mtl.datasets`` file.

Protocol (see ``docs/surrogate.md``):

* **Split by trial.** Trials are shuffled with the seed and split into train /
  validation / test; no trial is in two sets. The indices (and the trials'
  drive seeds) are recorded in the checkpoint.
* **Scalers** are fitted on the training trials only.
* **Stateful windows.** Each batch is a set of whole training trials; they are
  cut into consecutive ``window``-step pieces and the model state (filters,
  convolution buffers, LSTM) is carried from piece to piece, detached between
  pieces (truncated backpropagation through time). So every step is trained
  with the state it would have in a whole-trial prediction.
* **Loss.** Per task, after standardising each target: ``v`` MSE over all
  segments (clipped voltage), ``soma`` the same for the soma alone, ``dipole``
  MSE over axes with non-negligible variance, ``spike`` binary cross-entropy on
  spike bins with ``pos_weight`` = (non-spike / spike bins), capped at
  ``max_pos_weight``, ``ion`` MSE of the standardised somatic ionic currents
  (models with ``ions``). ``loss_weighting="uncertainty"`` (default) learns one
  log-variance ``s_k`` per task (Kendall et al. 2018):
  ``sum_k w_k (exp(-s_k) L_k + s_k)``; ``"fixed"`` uses ``sum_k w_k L_k``.
  ``w_k`` default to ``DEFAULT_LOSS_WEIGHTS``. Validation loss (for early
  stopping) is always the fixed-weight sum ``sum_k w_k L_k`` over whole trials.
* **Early stopping** after ``patience`` epochs without validation improvement;
  the best weights are kept. The learning rate halves on plateaus.
* **Checkpoints** are written atomically after every epoch (best weights for
  use, plus the current weights, optimizer, scheduler, task weights and RNG
  state for ``resume=True``).
* **Spike threshold.** After training, the ``spike_prob`` threshold that
  maximises validation spike F1 (+-5 ms) is stored with the model.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from . import _metrics
from .model import Surrogate, read_checkpoint, write_checkpoint

__all__ = ["fit", "split_trials", "compute_scalers", "DEFAULT_LOSS_WEIGHTS", "main"]

DEFAULT_LOSS_WEIGHTS = {"v": 1.0, "soma": 1.0, "dipole": 0.5, "spike": 1.0, "ion": 0.5}
TASKS = tuple(DEFAULT_LOSS_WEIGHTS)
# spike_prob thresholds tried on validation data (calibrated per-bin probabilities of a spike
# spread over 1-3 bins, so useful thresholds can be well below 0.5)
THRESHOLD_CANDIDATES = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55,
                        0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# -- data ------------------------------------------------------------------------------------------

@dataclass
class TrialArrays:
    """Whole trials in memory: inputs (trial, time, site) uS, v (trial, time, segment) mV,
    dipole (trial, time, 3) nA um, spikes (trial, time) 0/1 per bin, trial seeds, and the
    somatic ionic currents (trial, time, ion) nA with their names (empty when not recorded)."""

    inputs: np.ndarray
    v: np.ndarray
    dipole: np.ndarray
    spikes: np.ndarray
    seeds: np.ndarray
    dt: float
    ions: np.ndarray | None = None
    ion_names: tuple[str, ...] = ()

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]


def _open(dataset) -> xr.Dataset:
    if isinstance(dataset, (str, os.PathLike)):
        from . import datasets

        return datasets.open(dataset)
    if not isinstance(dataset, xr.Dataset):
        raise ValueError(f"dataset must be a path or an xarray.Dataset from mtl.datasets, got {type(dataset).__name__}")
    return dataset


def _open_all(dataset) -> list[xr.Dataset]:
    """One or several datasets of the same cell, dt and trial length (checked)."""
    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    if not items:
        raise ValueError("dataset: got an empty list")
    dss = [_open(d) for d in items]
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


def _concat_arrays(parts: Sequence[TrialArrays]) -> TrialArrays:
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    # ionic currents are trained on only when every dataset records the same ones
    same_ions = all(p.ion_names == parts[0].ion_names for p in parts)
    ions = cat("ions") if same_ions and parts[0].ion_names else None
    return TrialArrays(cat("inputs"), cat("v"), cat("dipole"), cat("spikes"), cat("seeds"), parts[0].dt, ions,
                       parts[0].ion_names if ions is not None else ())


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
    inputs = np.asarray(ds["inputs"].transpose("trial", "time", "site").values, dtype=np.float32)
    v = np.asarray(ds["v"].transpose("trial", "time", "segment").values, dtype=np.float32)
    n, t = v.shape[:2]
    if "dipole" in ds.data_vars:
        dipole = np.asarray(ds["dipole"].transpose("trial", "time", "axis").values, dtype=np.float32)
    else:
        dipole = np.zeros((n, t, 3), np.float32)
    for name, arr in (("inputs", inputs), ("v", v), ("dipole", dipole)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"dataset variable {name!r} contains NaN or infinite values")
    st = np.asarray(ds["spike_times"].values, dtype=float).reshape(n, -1)
    spikes = np.zeros((n, t), np.float32)
    for k in range(n):
        idx = np.floor(st[k][np.isfinite(st[k])] / dt).astype(int)
        spikes[k, idx[(idx >= 0) & (idx < t)]] = 1.0
    seeds = ds["trial_seed"].values.astype(np.int64) if "trial_seed" in ds else np.full(n, -1)
    ions, names = None, ()
    if "i_ion" in ds.data_vars:
        ions = np.asarray(ds["i_ion"].transpose("trial", "time", "ion").values, dtype=np.float32)
        names = tuple(str(i) for i in ds["ion"].values)
        if not np.all(np.isfinite(ions)):
            raise ValueError("dataset variable 'i_ion' contains NaN or infinite values")
    return TrialArrays(inputs, v, dipole, spikes, seeds, dt, ions, names)


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


def _check_split(split: Mapping, n: int) -> dict[str, list[int]]:
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
    axis (axes with SD below 1e-3 of the largest are inactive: SD 1);
    ``spike_pos_weight`` = non-spike / spike bins, in [1, max_pos_weight].
    """
    idx = np.asarray(idx)
    x = arrays.inputs[idx]
    nz = x > 0
    count = nz.sum(axis=(0, 1))
    total = x.sum(axis=(0, 1), dtype=np.float64)
    scale = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    fill = np.nanmedian(scale) if np.isfinite(scale).any() else 1e-3
    site_scale = np.where(np.isfinite(scale) & (scale > 0), scale, fill)

    v = arrays.v[idx].reshape(-1, arrays.v.shape[-1]).astype(np.float64)
    if v_clip is not None:
        v = np.minimum(v, v_clip)
    v_mean, v_std = v.mean(axis=0), v.std(axis=0)
    v_std = np.maximum(v_std, 1e-3 * max(float(np.median(v_std)), 1e-3))

    d = arrays.dipole[idx].reshape(-1, 3).astype(np.float64)
    d_mean, d_std = d.mean(axis=0), d.std(axis=0)
    active = (d_std > 0) & (d_std >= 1e-3 * d_std.max())
    d_std = np.where(active, d_std, 1.0)

    p = float(arrays.spikes[idx].mean())
    pos_weight = float(np.clip((1 - p) / p, 1.0, max_pos_weight)) if p > 0 else 1.0
    out = {"site_scale": site_scale, "v_mean": v_mean, "v_std": v_std, "dipole_mean": d_mean,
           "dipole_std": d_std, "dipole_active": active.astype(float), "spike_pos_weight": pos_weight}
    if arrays.ions is not None:
        i = arrays.ions[idx].reshape(-1, arrays.ions.shape[-1]).astype(np.float64)
        out["ion_mean"], out["ion_std"] = i.mean(axis=0), np.maximum(i.std(axis=0), 1e-6)
    return out


# -- losses ----------------------------------------------------------------------------------------

class TaskWeighting(nn.Module):
    """Combines per-task losses: fixed weights, or learned uncertainty weights."""

    def __init__(self, weights: Mapping[str, float], mode: str = "uncertainty") -> None:
        super().__init__()
        if mode not in ("uncertainty", "fixed"):
            raise ValueError(f"loss_weighting must be 'uncertainty' or 'fixed', got {mode!r}")
        unknown = set(weights) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; tasks are {list(TASKS)}")
        bad = {k: w for k, w in weights.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"loss weights must be finite and >= 0, got {bad}")
        self.weights = {k: float(weights.get(k, 0.0)) for k in TASKS}
        self.mode = mode
        self.log_vars = nn.Parameter(torch.zeros(len(TASKS)), requires_grad=mode == "uncertainty")

    def fixed(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[k] * losses[k] for k in losses)

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.mode == "fixed":
            return self.fixed(losses)
        total = 0.0
        for i, k in enumerate(TASKS):
            if k in losses and self.weights[k] > 0:
                total = total + self.weights[k] * (torch.exp(-self.log_vars[i]) * losses[k] + self.log_vars[i])
        return total

    def effective(self, tasks: Sequence[str] = TASKS) -> dict[str, float]:
        """Current multiplier of each raw task loss (for the given tasks)."""
        s = self.log_vars.detach().cpu().numpy()
        return {k: self.weights[k] * (float(np.exp(-s[i])) if self.mode == "uncertainty" else 1.0)
                for i, k in enumerate(TASKS) if k in tasks}


def _targets(model: Surrogate, v: torch.Tensor, dipole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if model.config.v_clip is not None:
        v = torch.clamp(v, max=model.config.v_clip)
    return (v - model.v_mean) / model.v_std, (dipole - model.dipole_mean) / model.dipole_std


def task_losses(model: Surrogate, out: Mapping[str, torch.Tensor], v: torch.Tensor, dipole: torch.Tensor,
                spikes: torch.Tensor, weights: Mapping[str, float],
                ions: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Raw per-task losses of one window (tasks with weight 0 or no signal are left out)."""
    vz, dz = _targets(model, v, dipole)
    losses = {}
    if weights.get("v", 0) > 0:
        losses["v"] = torch.mean((out["v"] - vz) ** 2)
    if weights.get("soma", 0) > 0:
        s = model.soma_index
        losses["soma"] = torch.mean((out["v"][..., s] - vz[..., s]) ** 2)
    active = model.dipole_active
    if weights.get("dipole", 0) > 0 and bool(active.sum() > 0):
        losses["dipole"] = torch.sum((out["dipole"] - dz) ** 2 * active) / (active.sum() * dz[..., 0].numel())
    if weights.get("spike", 0) > 0:
        losses["spike"] = nn.functional.binary_cross_entropy_with_logits(
            out["spike_logit"], spikes, pos_weight=model.spike_pos_weight)
    if weights.get("ion", 0) > 0 and ions is not None and "i_ion" in out:
        losses["ion"] = torch.mean((out["i_ion"] - (ions - model.ion_mean) / model.ion_std) ** 2)
    return losses


# -- the loop --------------------------------------------------------------------------------------

def _batch(arrays: TrialArrays, idx: Sequence[int], device) -> tuple[torch.Tensor | None, ...]:
    """inputs, v, dipole, spikes and ionic currents (None when absent) of trials ``idx``."""
    idx = np.asarray(idx)
    ions = None if arrays.ions is None else torch.as_tensor(arrays.ions[idx], device=device)
    return tuple(torch.as_tensor(a[idx], device=device) for a in
                 (arrays.inputs, arrays.v, arrays.dipole, arrays.spikes)) + (ions,)


def _validate(model: Surrogate, weighting: TaskWeighting, arrays: TrialArrays, idx: Sequence[int],
              batch_size: int, chunk: int, device) -> dict[str, float]:
    """Whole-trial validation losses (fixed weights) and clipped soma r."""
    model.eval()
    sums: dict[str, float] = {}
    steps = 0
    soma_p, soma_t = [], []
    with torch.no_grad():
        for b in range(0, len(idx), batch_size):
            x, v, d, s, ion = _batch(arrays, idx[b:b + batch_size], device)
            state = None
            for t0 in range(0, x.shape[1], chunk):
                sl = slice(t0, t0 + chunk)
                out, state = model(x[:, sl], state)
                n = x[:, sl].shape[0] * x[:, sl].shape[1]
                ion_sl = None if ion is None else ion[:, sl]
                for k, val in task_losses(model, out, v[:, sl], d[:, sl], s[:, sl], weighting.weights,
                                          ion_sl).items():
                    sums[k] = sums.get(k, 0.0) + float(val) * n
                steps += n
                vp = model.to_physical(out)["v"][..., model.soma_index]
                soma_p.append(vp.flatten().cpu().numpy())
                soma_t.append(v[:, sl, model.soma_index].flatten().cpu().numpy())
    parts = {k: val / steps for k, val in sums.items()}
    clip = model.config.v_clip if model.config.v_clip is not None else np.inf
    r = _metrics.voltage_metrics(np.minimum(np.concatenate(soma_p), clip)[:, None],
                                  np.minimum(np.concatenate(soma_t), clip)[:, None])["r"][0]
    out = {"val_loss": sum(weighting.weights[k] * val for k, val in parts.items()), "val_soma_r": float(r)}
    out.update({f"val_{k}": val for k, val in parts.items()})
    return out


def _tune_spike_threshold(model: Surrogate, arrays: TrialArrays, idx: Sequence[int], window: float) -> dict:
    """The spike_prob threshold with the best validation F1 (+-window ms)."""
    probs = model._predict_arrays(arrays.inputs[np.asarray(idx)], batch_size=16, chunk=4096)["spike_prob"]
    truth = []
    for k in idx:
        truth.append((np.flatnonzero(arrays.spikes[k]) + 0.5) * arrays.dt)
    from .model import detect_spikes

    best = (np.nan, 0.5)
    scores = {}
    for thr in THRESHOLD_CANDIDATES:
        pred = [detect_spikes(p, arrays.dt, thr) for p in probs]
        f1 = _metrics.spike_scores(truth, pred, window)["f1"]
        scores[float(thr)] = None if not np.isfinite(f1) else float(f1)
        if np.isfinite(f1) and (not np.isfinite(best[0]) or f1 > best[0] + 1e-12
                                or (abs(f1 - best[0]) <= 1e-12 and abs(thr - 0.5) < abs(best[1] - 0.5))):
            best = (float(f1), float(thr))
    return {"threshold": best[1], "val_f1": best[0] if np.isfinite(best[0]) else None, "window_ms": window,
            "f1_by_threshold": scores}


def _cell_from_dataset(ds: xr.Dataset):
    from . import cells

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


def _check_dataset(model: Surrogate, ds: xr.Dataset, arrays: TrialArrays) -> None:
    key = ds.attrs.get("cell_key")
    if key is not None and key != model.cell_key:
        raise ValueError(f"dataset cell key {key!r} differs from the model's {model.cell_key!r}")
    if abs(arrays.dt - model.dt) > 1e-9:
        raise ValueError(f"dataset dt {arrays.dt} ms differs from the model's dt {model.dt} ms")
    if arrays.inputs.shape[-1] != model.n_sites or arrays.v.shape[-1] != model.n_segments:
        raise ValueError(f"dataset has {arrays.inputs.shape[-1]} sites / {arrays.v.shape[-1]} segments, the "
                         f"model {model.n_sites} / {model.n_segments}")
    if "segment" in ds.coords and list(ds["segment"].values.astype(str)) != model.segment_names:
        raise ValueError("dataset segment names differ from the model's")
    if model.config.ions and tuple(model.config.ions) != arrays.ion_names:
        raise ValueError(f"the model predicts ionic currents {list(model.config.ions)} but the dataset has "
                         f"{list(arrays.ion_names) or 'none'} (variable i_ion)")


def _resolve_device(device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but no CUDA device is available")
    return dev


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []}


def _set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def fit(dataset, model: Surrogate | None = None, *, cell=None, model_config: Mapping | None = None,
        out: str | os.PathLike | None = None, epochs: int = 100, batch_size: int = 16, window: int = 1000,
        lr: float = 1e-3, weight_decay: float = 1e-4, grad_clip: float = 1.0, patience: int = 10,
        val_fraction: float = 0.1, test_fraction: float = 0.1, split: Mapping | None = None,
        loss_weights: Mapping[str, float] | None = None, loss_weighting: str = "uncertainty", seed: int = 0,
        device: str | torch.device = "cpu", resume: bool = False, max_time: float | None = None,
        refit_scalers: bool = True, threshold_window: float = 5.0, progress: bool = True) -> Surrogate:
    """Train a surrogate on a dataset of NEURON trials.

    Parameters
    ----------
    dataset : str, Path, xarray.Dataset or a list of them
        A file from ``mtl.datasets.generate`` (or the opened dataset); several
        files of the same cell, ``dt`` and trial length are trained on together
        (their trials are pooled before the split).
    model : Surrogate, optional
        Model to train in place; default: a new ``Surrogate(cell, dt, **model_config)``.
    cell : Cell, optional
        For a new model; default ``mtl.cells.get(dataset.attrs["cell"])`` (key checked).
    model_config : dict, optional
        Architecture of a new model (see :class:`~mtlneuron.model.SurrogateConfig`).
    out : str or Path, optional
        Checkpoint path, written atomically after every epoch and at the end.
    epochs : int
        Maximum number of epochs (passes over the training trials).
    batch_size : int
        Trials per batch.
    window : int
        Time steps per backpropagation window (the state is carried across windows).
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    grad_clip : float
        Maximum gradient norm (0: no clipping).
    patience : int
        Epochs without validation improvement before stopping.
    val_fraction, test_fraction : float
        Fractions of trials held out (split by trial with ``seed``).
    split : dict, optional
        Explicit ``{"train": [...], "val": [...], "test": [...]}`` trial indices.
    loss_weights : dict, optional
        Task weights ``w_k`` for ``v``, ``soma``, ``dipole``, ``spike``, ``ion``
        (default ``DEFAULT_LOSS_WEIGHTS``; missing tasks weigh 0).
    loss_weighting : {"uncertainty", "fixed"}
        Learned uncertainty weighting times ``w_k``, or fixed ``w_k``.
    seed : int
        Seeds the split, the model initialisation (new model), the trial order and dropout.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    resume : bool
        Continue from the training state in ``out`` (epoch, optimizer, RNG) if it exists.
    max_time : float, optional
        Wall-clock budget (s) of this call; training stops after the batch that
        exceeds it (then validates and checkpoints; ``resume=True`` continues).
    refit_scalers : bool
        Fit input/output scalers on the training trials (False keeps the model's).
    threshold_window : float
        Matching window (ms) of the validation F1 that picks the spike threshold.
    progress : bool
        Show a tqdm bar with running losses.

    Returns
    -------
    Surrogate
        The model with the best validation weights (on ``device``, eval mode);
        ``model.training_info`` holds the split, history and settings.

    Raises
    ------
    ValueError
        For a dataset that does not fit the model (cell, dt, sites), bad
        settings, or a ``resume`` checkpoint without training state.
    """
    _check_positive(epochs=epochs, batch_size=batch_size, window=window, lr=lr)
    if patience < 1 or grad_clip < 0 or weight_decay < 0:
        raise ValueError(f"need patience >= 1, grad_clip >= 0, weight_decay >= 0; got {patience}, "
                         f"{grad_clip}, {weight_decay}")
    dev = _resolve_device(device)
    dss = _open_all(dataset)
    ds = dss[0]
    arrays = _concat_arrays([load_arrays(d) for d in dss])
    config = {"epochs": epochs, "batch_size": batch_size, "window": window, "lr": lr, "weight_decay": weight_decay,
              "grad_clip": grad_clip, "patience": patience, "val_fraction": val_fraction,
              "test_fraction": test_fraction, "seed": seed, "device": str(dev), "max_time": max_time,
              "threshold_window": threshold_window, "loss_weighting": loss_weighting,
              "loss_weights": dict(DEFAULT_LOSS_WEIGHTS if loss_weights is None else loss_weights)}
    ckpt = _resume_checkpoint(out) if resume else None
    if ckpt is not None:
        trainer = _Trainer.restore(ckpt, model, arrays, config, dev)
    else:
        torch.manual_seed(seed)
        if model is None:
            model_config = dict(model_config or {})
            model_config.setdefault("ions", arrays.ion_names)  # a head for recorded ionic currents
            model = Surrogate(cell if cell is not None else _cell_from_dataset(ds), dt=arrays.dt, **model_config)
        elif model_config:
            raise ValueError("model_config is for a new model; the given model already has its architecture")
        split = _check_split(split, arrays.n_trials) if split is not None else \
            split_trials(arrays.n_trials, val_fraction, test_fraction, seed)
        _check_dataset(model, ds, arrays)
        trainer = _Trainer.new(model, arrays, config, split, dev, refit_scalers, _dataset_info(dataset, dss))
    _check_dataset(trainer.model, ds, arrays)
    trainer.run(out, progress)
    return trainer.finish(out)


class _Trainer:
    """Mutable state of one training run (model, optimizer, history) and its loop."""

    def __init__(self, model: Surrogate, arrays: TrialArrays, info: dict, dev: torch.device) -> None:
        cfg = info["config"]
        if dev.type == "cuda":
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        self.model, self.arrays, self.info, self.dev = model.to(dev), arrays, info, dev
        self.cfg, self.split = cfg, info["split"]
        weights = dict(cfg["loss_weights"])
        if model.n_segments == 1:
            weights["soma"] = 0.0  # the soma term would repeat the v term
        self.weighting = TaskWeighting(weights, cfg["loss_weighting"]).to(dev)
        groups = [{"params": list(model.parameters())}]
        if cfg["loss_weighting"] == "uncertainty":  # task log-variances are not weight-decayed
            groups.append({"params": [self.weighting.log_vars], "weight_decay": 0.0})
        self.params = [p for g in groups for p in g["params"]]
        self.opt = torch.optim.AdamW(groups, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5,
                                                                patience=max(1, cfg["patience"] // 3))
        self.history: list[dict] = []
        self.best_state: dict | None = None
        self.best_val, self.bad, self.epoch, self.elapsed = math.inf, 0, 0, 0.0
        self.t0 = time.perf_counter()  # start of this call (max_time); elapsed: earlier calls

    @classmethod
    def new(cls, model, arrays, config, split, dev, refit_scalers: bool, dataset_info: dict) -> "_Trainer":
        if refit_scalers:
            scalers = compute_scalers(arrays, split["train"], model.config.v_clip, model.config.max_pos_weight)
            if not model.config.ions:  # a model without an ionic-current head ignores recorded currents
                scalers.pop("ion_mean", None), scalers.pop("ion_std", None)
            model.set_scalers(**scalers)
        info = {"config": config, "split": split, "dataset": dataset_info,
                "split_trial_seeds": {k: arrays.seeds[v].tolist() for k, v in split.items()},
                "model_config": model.config.to_dict(), "n_parameters": model.n_parameters, "stopped": None}
        return cls(model, arrays, info, dev)

    @classmethod
    def restore(cls, ckpt: Mapping, model, arrays, config, dev) -> "_Trainer":
        """Continue the run saved in ``ckpt`` (its split, loss settings, optimizer, RNG)."""
        model, info = _restore_model(ckpt, model)
        info = dict(info)
        info["split"] = _check_split(info["split"], arrays.n_trials)
        info["config"] = {**info["config"], "epochs": config["epochs"], "max_time": config["max_time"],
                          "device": config["device"]}
        t = cls(model, arrays, info, dev)
        r = ckpt["resume"]
        t.opt.load_state_dict(r["optimizer"])
        t.sched.load_state_dict(r["scheduler"])
        t.weighting.load_state_dict(r["weighting"])
        _set_rng_state(r["rng"])
        t.best_state, t.best_val, t.bad, t.epoch = ckpt["state_dict"], r["best_val"], r["bad_epochs"], r["epoch"]
        t.elapsed, t.history = float(r.get("elapsed", 0.0)), list(info.get("history", []))
        return t

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, out, progress: bool) -> None:
        from tqdm.auto import tqdm

        cfg = self.cfg
        epochs = cfg["epochs"]
        if self.info.get("stopped") == "early_stopping":
            return
        per_epoch = math.ceil(len(self.split["train"]) / cfg["batch_size"]) * \
            math.ceil(self.arrays.inputs.shape[1] / cfg["window"])
        self.t0 = time.perf_counter()
        with tqdm(total=epochs * per_epoch, initial=min(self.epoch, epochs) * per_epoch, disable=not progress,
                  desc=f"train {self.model.cell_name}", unit="win", dynamic_ncols=True) as bar:
            while self.epoch < epochs:
                means, time_up = self.train_epoch(bar)
                self.end_epoch(means, time_up, out)
                if self.info["stopped"]:
                    break

    def _seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.t0

    def train_epoch(self, bar) -> tuple[dict[str, float], bool]:
        """One pass over the training trials; returns mean losses and whether max_time ran out."""
        cfg, model = self.cfg, self.model
        model.train()
        order = np.random.default_rng([int(cfg["seed"]), 2, self.epoch]).permutation(self.split["train"])
        sums: dict[str, float] = {}
        count = 0
        for b in range(0, len(order), cfg["batch_size"]):
            x, v, d, s, ion = _batch(self.arrays, order[b:b + cfg["batch_size"]], self.dev)
            state = None
            for t0 in range(0, x.shape[1], cfg["window"]):
                sl = slice(t0, t0 + cfg["window"])
                losses, total, state = self.train_window(x[:, sl], v[:, sl], d[:, sl], s[:, sl],
                                                         None if ion is None else ion[:, sl], state)
                for k, val in [("loss", total), *losses.items()]:
                    sums[k] = sums.get(k, 0.0) + val
                count += 1
                bar.update(1)
                last = {"val": f"{self.history[-1]['val_loss']:.3g}"} if self.history else {}
                bar.set_postfix({"ep": self.epoch + 1, **{k: f"{v_ / count:.3g}" for k, v_ in sums.items()}, **last},
                                refresh=False)
            if cfg["max_time"] is not None and time.perf_counter() - self.t0 > cfg["max_time"]:
                return {k: v_ / count for k, v_ in sums.items()}, True
        return {k: v_ / max(count, 1) for k, v_ in sums.items()}, False

    def train_window(self, x, v, d, s, ion, state):
        """One optimizer step on one window; the state is carried in, detached out."""
        out, state = self.model(x, state)
        losses = task_losses(self.model, out, v, d, s, self.weighting.weights, ion)
        total = self.weighting(losses)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(self.params, self.cfg["grad_clip"])
        self.opt.step()
        return {k: val.item() for k, val in losses.items()}, total.item(), state.detach()

    def end_epoch(self, means: Mapping[str, float], time_up: bool, out) -> None:
        """Validate, track the best weights, decide on stopping, checkpoint."""
        cfg = self.cfg
        val = _validate(self.model, self.weighting, self.arrays, self.split["val"], cfg["batch_size"],
                        max(cfg["window"], 4096), self.dev)
        self.sched.step(val["val_loss"])
        if val["val_loss"] < self.best_val:
            self.best_val, self.bad, self.best_state = val["val_loss"], 0, _cpu_state(self.model)
        else:
            self.bad += 1
        self.epoch += 1
        self.history.append({"epoch": self.epoch, "train_loss": means.get("loss", math.nan),
                             **{f"train_{k}": v for k, v in means.items() if k != "loss"}, **val,
                             "lr": self.opt.param_groups[0]["lr"],
                             "task_weights": self.weighting.effective(list(means)), "seconds": self._seconds()})
        stopped = "early_stopping" if self.bad >= cfg["patience"] else ("max_time" if time_up else None)
        self.info.update(history=self.history, best_epoch=int(np.argmin([h["val_loss"] for h in self.history])) + 1,
                         best_val_loss=self.best_val, epochs_done=self.epoch, stopped=stopped)
        self.model.training_info = self.info
        if out is not None:
            self.save(out, self.best_state, _cpu_state(self.model))

    def finish(self, out) -> Surrogate:
        """Best weights, spike threshold tuned on validation, final checkpoint."""
        last_state = _cpu_state(self.model)  # where training stands: what resume continues from
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        tuning = _tune_spike_threshold(self.model, self.arrays, self.split["val"], self.cfg["threshold_window"])
        self.model.spike_prob_threshold.fill_(tuning["threshold"])
        self.info["spike_threshold_tuning"] = tuning
        self.model.training_info = self.info
        if out is not None:
            self.save(out, _cpu_state(self.model), last_state)
        self.model.eval()
        return self.model

    def save(self, out, best_state: Mapping | None, current: Mapping) -> None:
        """Atomic checkpoint: the usable (best) weights + everything needed to resume."""
        resume = {"epoch": int(self.epoch), "model": current, "optimizer": self.opt.state_dict(),
                  "scheduler": self.sched.state_dict(), "weighting": self.weighting.state_dict(),
                  "rng": _rng_state(), "best_val": float(self.best_val), "bad_epochs": int(self.bad),
                  "elapsed": self._seconds()}
        state = current if best_state is None else best_state
        write_checkpoint(self.model.checkpoint(state_dict=state, resume=resume), out)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}


def _resume_checkpoint(out) -> dict | None:
    if out is None:
        raise ValueError("resume=True needs out= (the checkpoint to continue from)")
    if not Path(out).exists():
        return None
    ckpt = read_checkpoint(out)
    if not ckpt.get("resume") or not ckpt.get("training"):
        raise ValueError(f"checkpoint {str(out)!r} has no training state to resume from")
    return ckpt


def _restore_model(ckpt: Mapping, model: Surrogate | None) -> tuple[Surrogate, dict]:
    if model is None:
        model = Surrogate.from_checkpoint(ckpt, source="resume checkpoint")
    elif model.config.to_dict() != ckpt["config"] or model.cell_key != ckpt["cell_key"]:
        raise ValueError("resume: the given model's architecture or cell differs from the checkpoint's")
    model.load_state_dict(ckpt["resume"]["model"])
    return model, ckpt["training"]


def _dataset_info(dataset, dss: Sequence[xr.Dataset]) -> dict:
    items = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    paths = [str(d) if isinstance(d, (str, os.PathLike)) else None for d in items]
    seeds = [d.attrs.get("dataset_seed") for d in dss]
    return {"path": paths[0] if len(paths) == 1 else paths,
            "n_trials": int(sum(d.sizes.get("trial", 1) for d in dss)), "cell_key": dss[0].attrs.get("cell_key"),
            "dataset_seed": seeds[0] if len(seeds) == 1 else seeds, "dt": dss[0].attrs.get("dt")}


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")


# -- command line ----------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mtlneuron.train --data x.nc --out model.pt [options]``."""
    p = argparse.ArgumentParser(prog="python -m mtlneuron.train", description="Train a mtlneuron surrogate.")
    p.add_argument("--data", required=True, nargs="+", help="netCDF file(s) from mtl.datasets.generate")
    p.add_argument("--out", required=True, help="checkpoint to write (atomically, every epoch)")
    p.add_argument("--cell", help="cell name if it cannot be taken from the dataset")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--window", type=int, default=1000, help="time steps per backpropagation window")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--loss-weighting", choices=["uncertainty", "fixed"], default="uncertainty")
    p.add_argument("--loss-weights", help="e.g. v=1,soma=1,dipole=0.5,spike=1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--max-time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--input-channels", type=int, default=32)
    p.add_argument("--filter-channels", type=int, default=32, help="per synaptic-kernel group")
    p.add_argument("--conv-channels", default="64", help="comma list ('' for none)")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--dilations", help="comma list, one per conv layer")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--head-hidden", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--no-synaptic-filter", action="store_true")
    p.add_argument("--v-clip", type=float, default=-40.0, help="mV; nan trains on raw v")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()] if s else []  # noqa: E731
    model_config = {"input_channels": a.input_channels, "filter_channels": a.filter_channels,
                    "conv_channels": ints(a.conv_channels), "kernel_size": a.kernel_size,
                    "dilations": ints(a.dilations) or None, "hidden_size": a.hidden_size, "num_layers": a.num_layers,
                    "head_hidden": a.head_hidden, "dropout": a.dropout,
                    "synaptic_filter": not a.no_synaptic_filter,
                    "v_clip": None if math.isnan(a.v_clip) else a.v_clip}
    weights = None
    if a.loss_weights:
        weights = {k.strip(): float(v) for k, v in (kv.split("=") for kv in a.loss_weights.split(","))}
    cell = None
    if a.cell:
        from . import cells

        cell = cells.get(a.cell)
    resuming = a.resume and Path(a.out).exists()
    data = a.data[0] if len(a.data) == 1 else a.data
    model = fit(data, cell=cell, model_config=None if resuming else model_config, out=a.out, epochs=a.epochs,
                batch_size=a.batch_size, window=a.window, lr=a.lr, weight_decay=a.weight_decay, patience=a.patience,
                val_fraction=a.val_fraction, test_fraction=a.test_fraction, loss_weights=weights,
                loss_weighting=a.loss_weighting, seed=a.seed, device=a.device, resume=a.resume,
                max_time=a.max_time, progress=not a.no_progress)
    info = model.training_info
    last = info["history"][-1] if info.get("history") else {}
    print(f"wrote {a.out}: {model.n_parameters} parameters, {info.get('epochs_done')} epochs, best epoch "
          f"{info.get('best_epoch')} (val loss {info.get('best_val_loss', float('nan')):.4g}), last val soma r "
          f"{last.get('val_soma_r', float('nan')):.3f}, spike threshold {float(model.spike_prob_threshold):.2f}, "
          f"stopped: {info.get('stopped') or 'epoch limit'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
