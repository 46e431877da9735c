"""Prediction to xarray: drives or recorded trials -> binned inputs -> the Surrogate -> a Dataset.

:meth:`mtlneuron.surrogate.Surrogate.predict` calls :func:`predict`; the
model itself only maps tensors to tensors. The functions take the model (a
``Surrogate``) as their first argument: this module does not import
``surrogate.module``, which imports it. Also :func:`detect_spikes`, the rule
that turns a per-bin spike probability into spike times.

Non-finite values are errors: binned inputs that are NaN, infinite or overflow
the model's float32 are refused naming the trial, time (ms) and site; outputs
are checked chunk by chunk and a non-finite one is reported with its trial and
time (:func:`check_outputs`), never returned.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import xarray as xr
from torch import nn

from .. import inputs as _inputs
from .._util import spike_matrix
from ..conventions import AXES, same_dt
from .checkpoint import check_data, library_version
from .waveforms import place_waveforms, spike_bins

__all__ = ["predict", "predict_arrays", "first_nonfinite", "check_outputs", "check_binned",
           "gather_inputs", "bin_drive", "dataset_inputs", "to_dataset",
           "detect_spikes", "add_spike_waveforms"]


def predict(model: nn.Module, data, *, dt: float | None = None, batch_size: int = 16, chunk: int = 4096,
            spike_prob_threshold: float | None = None) -> xr.Dataset:
    """Voltages, dipole and spikes of ``model`` for drives or recorded trials.

    See :meth:`mtlneuron.surrogate.Surrogate.predict` for the parameters, the
    returned Dataset and the errors.
    """
    if dt is not None and not same_dt(dt, model.dt):
        raise ValueError(f"dt {dt!r} ms does not match this model's dt {model.dt} ms")
    if int(batch_size) < 1 or int(chunk) < 1:
        raise ValueError(f"batch_size and chunk must be >= 1, got {batch_size!r}, {chunk!r}")
    x, trial_coord = gather_inputs(model, data)
    thr = float(model.spike_prob_threshold) if spike_prob_threshold is None else float(spike_prob_threshold)
    if not 0.0 < thr < 1.0:
        raise ValueError(f"spike_prob_threshold must be in (0, 1), got {thr!r}")
    outs = predict_arrays(model, x, batch_size=int(batch_size), chunk=int(chunk))
    ds = to_dataset(model, outs, thr)
    if trial_coord is None:
        return ds.isel(trial=0, drop=True).assign(spike_times=_drop_nan_tail(ds["spike_times"].values[0]))
    return ds.assign_coords(trial=trial_coord)


def predict_arrays(model: nn.Module, x: np.ndarray, batch_size: int = 16, chunk: int = 4096
                   ) -> dict[str, np.ndarray]:
    """Physical outputs (numpy, leading trial dim) for binned inputs ``x`` (trial, time, site) uS.

    Runs ``batch_size`` trials at a time, ``chunk`` steps per forward pass
    (the state is carried, so the result does not depend on either), in eval
    mode without gradients; the model's training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    results: dict[str, list] = {"v": [], "dipole": [], "spike_prob": []}
    if model.config.ions:
        results["i_ion"] = []
    try:
        with torch.no_grad():
            for b in range(0, x.shape[0], batch_size):
                xb = torch.as_tensor(x[b:b + batch_size], dtype=model.site_scale.dtype, device=model.device)
                state, parts = None, []
                for s in range(0, xb.shape[1], chunk):
                    raw, state = model(xb[:, s:s + chunk], state)
                    out = model.to_physical(raw)
                    check_outputs(out, model.dt, trial0=b, step0=s)
                    parts.append({k: v.cpu().numpy() for k, v in out.items()})
                for k in results:
                    results[k].append(np.concatenate([p[k] for p in parts], axis=1))
    finally:
        model.train(was_training)
    return {k: np.concatenate(v, axis=0) for k, v in results.items()}


def first_nonfinite(t: torch.Tensor) -> tuple[int, int] | None:
    """``(batch, step)`` of the earliest non-finite entry of a (batch, time, ...) tensor; None if all finite."""
    if bool(torch.isfinite(t).all()):
        return None
    bad = ~torch.isfinite(t)
    if bad.dim() > 2:
        bad = bad.flatten(2).any(-1)
    idx = bad.nonzero()
    k = int(idx[:, 1].argmin())
    return int(idx[k, 0]), int(idx[k, 1])


def check_outputs(out: Mapping[str, torch.Tensor], dt: float, trial0: int = 0, step0: int = 0) -> None:
    """Raise ``ValueError`` naming the trial and time (ms) of the first non-finite surrogate output."""
    found = {k: w for k, v in out.items() if (w := first_nonfinite(v)) is not None}
    if found:
        name, (b, t) = min(found.items(), key=lambda kv: kv[1][1])
        raise ValueError(f"the surrogate produced a non-finite {name} in trial {trial0 + b} at t = "
                         f"{(step0 + t) * dt:g} ms (bin {step0 + t}): inputs far outside the training range, "
                         f"or a state carried over from such a run")


def check_binned(x: np.ndarray, dt: float, dims=("trial", "time", "site")) -> np.ndarray:
    """Binned inputs as float32, refused when NaN, infinite, negative or beyond float32 (naming where)."""
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.asarray(x, dtype=np.float32)
    bad = np.argwhere(~np.isfinite(x32) | (x32 < 0))
    if bad.size:
        where = dict(zip(dims, bad[0].tolist()))
        if "time" in where:
            where["time"] = f"{where['time'] * dt:g} ms"
        raw = np.asarray(x)[tuple(bad[0])]
        raise ValueError(f"binned inputs must be finite (no NaN or inf), >= 0 and within float32 (the "
                         f"model's precision); got {float(raw)!r} uS at {where}")
    return x32


# -- inputs ----------------------------------------------------------------------------------------

def gather_inputs(model: nn.Module, data) -> tuple[np.ndarray, np.ndarray | None]:
    """(trial, time, site) binned inputs (uS) and the trial coordinate (None: a single trial)."""
    if isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("predict got an empty list of drives")
        parts = [gather_inputs(model, d)[0] for d in data]
        lengths = {p.shape[1] for p in parts}
        if len(lengths) > 1:
            raise ValueError(f"drives in one predict call must have the same duration; got "
                             f"{sorted(n * model.dt for n in lengths)} ms")
        return np.concatenate(parts, axis=0), np.arange(len(parts))
    if not isinstance(data, xr.Dataset):
        raise ValueError(f"predict expects an xarray.Dataset (drive or trials) or a list of them, "
                         f"got {type(data).__name__}")
    if {"time", "site", "weight"} <= set(data.data_vars):
        return bin_drive(model, data)[None], None
    if "inputs" in data.data_vars:
        return dataset_inputs(model, data)
    raise ValueError("predict needs a drive (variables time, site, weight) or a dataset with an "
                     f"'inputs' variable; got variables {sorted(data.data_vars)}")


def bin_drive(model: nn.Module, drive: xr.Dataset) -> np.ndarray:
    """An events drive (``mtl.inputs``) of the model's cell, binned on its grid: (time, site) uS."""
    n_drive = drive.attrs.get("n_sites")
    if n_drive is not None and int(n_drive) != model.n_sites:
        raise ValueError(f"drive was made for {int(n_drive)} sites (cell {drive.attrs.get('cell')!r}) but "
                         f"this surrogate of {model.cell_name!r} has {model.n_sites} sites")
    cell = drive.attrs.get("cell")
    if cell is not None and str(cell) != model.cell_name:
        raise ValueError(f"drive was made for cell {cell!r}, this surrogate is for {model.cell_name!r}")
    _inputs.validate(drive.assign_attrs(n_sites=model.n_sites))
    return check_binned(_inputs.bin(drive, model.dt, model.n_sites).values, model.dt, ("time", "site"))


def dataset_inputs(model: nn.Module, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``inputs`` of a trial or dataset (checked against the model) and its trial coordinate."""
    inp = ds["inputs"]
    check_data(model, cell_key=ds.attrs.get("cell_key"), dt=ds.attrs.get("dt"), n_sites=inp.sizes.get("site"))
    if inp.sizes.get("time", 0) == 0:
        raise ValueError("dataset inputs have no time bins (zero duration)")
    has_trial = "trial" in inp.dims
    inp = inp.transpose(*(["trial"] if has_trial else []), "time", "site")
    x = check_binned(inp.values, model.dt, inp.dims)
    if has_trial:
        return x, np.asarray(inp["trial"].values) if "trial" in inp.coords else np.arange(x.shape[0])
    return x[None], None


# -- outputs ---------------------------------------------------------------------------------------

def to_dataset(model: nn.Module, outs: Mapping[str, np.ndarray], threshold: float) -> xr.Dataset:
    """The xarray form (leading ``trial`` dim) of :func:`predict_arrays` outputs, with spike times."""
    n_trials, n_time = outs["v"].shape[:2]
    spikes = [detect_spikes(p, model.dt, threshold) for p in outs["spike_prob"]]
    padded = spike_matrix(spikes)
    clip = model.config.v_clip
    v_note = f" (trained on min(v, {clip} mV): spikes are in spike_prob)" if clip is not None else ""
    extra = {}
    if model.spike_waveform.shape[0]:
        heads_v = outs["v"] if clip is None else np.minimum(outs["v"], np.float32(clip))
        extra["v_clipped"] = (("trial", "time", "segment"), heads_v,
                              {"units": "mV", "long_name": "membrane potential without spike waveforms (surrogate "
                                                           "voltage heads" + (f", min(v, {clip} mV))" if clip is not None
                                                                              else ")")})
        outs = add_spike_waveforms(model, outs, spikes)
        v_note = " with learned spike waveforms at the predicted spikes"
    coords = {
        "trial": np.arange(n_trials),
        "time": ("time", np.arange(n_time) * model.dt, {"units": "ms", "long_name": "bin start"}),
        "segment": np.asarray(model.segment_names, dtype=object),
        "region": ("segment", np.asarray(model.meta["segment_regions"], dtype=str)),
        "axis": list(AXES),
    }
    if model.config.ions:
        coords["ion"] = list(model.config.ions)
    ions = {"i_ion": (("trial", "time", "ion"), outs["i_ion"],
                      {"units": "nA", "long_name": "somatic ionic current (surrogate, outward +)"})} \
        if model.config.ions else {}
    return xr.Dataset(
        {
            **ions,
            **extra,
            "v": (("trial", "time", "segment"), outs["v"],
                  {"units": "mV", "long_name": "membrane potential (surrogate)" + v_note}),
            "dipole": (("trial", "time", "axis"), outs["dipole"],
                       {"units": "nA um", "long_name": "current dipole moment (surrogate)"}),
            "spike_prob": (("trial", "time"), outs["spike_prob"],
                           {"units": "1", "long_name": "probability of a somatic spike in the bin"}),
            "spike_times": (("trial", "spike"), padded,
                            {"units": "ms", "long_name": "predicted somatic spike times (NaN-padded)",
                             "spike_prob_threshold": threshold}),
        },
        coords=coords,
        attrs={"cell": model.cell_name, "cell_key": model.cell_key, "dt": model.dt,
               "spike_threshold": model.spike_threshold, "soma_index": model.soma_index,
               "source": "mtlneuron.Surrogate", "v_clip": "none" if clip is None else clip,
               "mtlneuron_version": library_version()},
    )


def add_spike_waveforms(model: nn.Module, outs: Mapping[str, np.ndarray], spikes) -> dict[str, np.ndarray]:
    """``v`` and ``dipole`` with the model's learned spike waveforms added at the given spike times (ms)."""
    wave = model.spike_waveform.detach().cpu().numpy().astype(np.float64)
    lags = model.spike_waveform_lags
    n_seg, n_time = outs["v"].shape[2], outs["v"].shape[1]
    v, dip = outs["v"].copy(), outs["dipole"].copy()
    for k, times in enumerate(spikes):
        add = place_waveforms(n_time, spike_bins(times, model.dt, n_time), lags, wave)
        v[k] += add[:, :n_seg].astype(v.dtype)
        dip[k] += add[:, n_seg:].astype(dip.dtype)
    return {**outs, "v": v, "dipole": dip}


def _drop_nan_tail(a: np.ndarray) -> tuple:
    return ("spike", a[np.isfinite(a)], {"units": "ms", "long_name": "predicted somatic spike times"})


# -- spikes ----------------------------------------------------------------------------------------

def detect_spikes(spike_prob: np.ndarray, dt: float, threshold: float = 0.5) -> np.ndarray:
    """Spike times (ms) from a per-bin spike probability.

    Every run of consecutive bins with ``spike_prob >= threshold`` is one spike,
    placed at the centre of its most probable bin (``(k + 0.5) * dt``).

    Parameters
    ----------
    spike_prob : array (time,)
        Probability per bin.
    dt : float
        Bin width (ms).
    threshold : float
        Detection threshold in (0, 1).
    """
    p = np.asarray(spike_prob, dtype=float)
    above = np.concatenate([[False], p >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]
    peaks = [s + int(np.argmax(p[s:e])) for s, e in zip(starts, stops)]
    return (np.asarray(peaks, dtype=float) + 0.5) * float(dt)
