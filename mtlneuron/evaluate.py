"""Metrics of a surrogate prediction against NEURON ground truth (DESIGN.md, evaluation protocol).

``mtl.evaluate(pred, truth)`` returns an ``xarray.Dataset`` of metrics;
``mtl.evaluate.plot(pred, truth)`` draws a one-figure report. ``pred`` comes
from ``Surrogate.predict``, ``truth`` from ``mtl.simulate`` or ``mtl.datasets``
(single trials or a leading ``trial`` dim; metrics pool all trials).

Definitions
-----------
* Voltage, per segment, on the spike-clipped voltage ``min(v, v_clip)``
  (default :data:`mtlneuron.conventions.V_CLIP`, -40 mV) and on the raw
  voltage: Pearson ``r``, ``rmse`` (mV) and variance explained
  ``ve = 1 - MSE / Var(truth)``, pooled over all time bins of all trials.
  Undefined values (constant truth) are NaN. Per-region summaries are means
  over the region's segments. The soma is the segment
  recorded as ``soma_index`` in the truth's (or else the prediction's) attrs;
  data without one fall back to the first segment of region ``soma``.
* Soma spikes: per trial, predicted and true spike times are matched one to
  one, greedily in order of increasing ``|shift|``, within +-``window`` ms.
  ``precision = matched / predicted``, ``recall = matched / true``,
  ``f1 = 2 matched / (true + predicted)`` summed over trials (NaN when there
  is nothing to count), and the mean ``|shift|`` (ms) of matched pairs.
* Dipole, per axis: Pearson ``r`` and ``rel_rmse = RMSE / SD(truth)``; NaN
  for axes whose truth SD is negligible (below ``dipole_rel_tol`` times the
  largest axis SD, or exactly 0 as for a point neuron:
  :func:`mtlneuron.conventions.active_axes`). The primary figures
  (``dipole_r``, ``dipole_rel_rmse``) are scored in the EEG/MEG band: both
  dipoles are first low-passed, trial by trial, at ``dipole_lowpass`` Hz
  (default :data:`mtlneuron.conventions.DIPOLE_LOWPASS_HZ`, 100 Hz) by a
  Butterworth filter of order :data:`~mtlneuron.conventions.DIPOLE_LOWPASS_ORDER`
  (4) run forward and backward (``scipy.signal.sosfiltfilt``: zero phase, no
  lag; :func:`mtlneuron._metrics.lowpass`). EEG and MEG are band-limited, and
  the raw dipole's spike currents make its r hinge on sub-millisecond timing
  (the binning ceiling: raw r 0.86, low-passed 0.96). The same metrics on the
  raw dipole are ``dipole_r_raw`` and ``dipole_rel_rmse_raw``.
* Somatic ionic currents (when both have ``i_ion``), per ion: ``r``,
  ``rmse`` (nA) and variance explained on the raw currents.
* Long horizon: for trials of at least ``2 * drift_window`` (default 2 x 5 s),
  the clipped-voltage RMSE over all segments in the last window against the
  first (``drift_ratio = last / first``; ``drift_ok`` is 1 when at most
  ``1 + drift_tolerance``, else 0); NaN when no trial is long enough.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import xarray as xr

from ._metrics import lowpass, match_spikes, spike_scores, voltage_metrics
from ._util import make_module_callable
from .conventions import (AXES, DIPOLE_LOWPASS_HZ, DIPOLE_LOWPASS_ORDER, DIPOLE_REL_TOL, V_CLIP, active_axes,
                          clip_voltage, same_dt, soma_index)

__all__ = ["evaluate", "plot", "match_spikes", "spike_scores", "voltage_metrics", "lowpass"]


# -- metrics ---------------------------------------------------------------------------------------

def _dipole_metrics(pred: np.ndarray, truth: np.ndarray, rel_tol: float,
                    active: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """r and RMSE / SD per axis, on the ``active`` axes (default: those of :func:`active_axes`)."""
    m = voltage_metrics(pred, truth)
    sd = truth.std(axis=0)
    active = active_axes(sd, rel_tol) if active is None else active & (sd > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(active, m["rmse"] / np.where(sd > 0, sd, 1.0), np.nan)
        total = (np.sqrt(np.sum(m["rmse"][active] ** 2) / np.sum(sd[active] ** 2)) if active.any() else np.nan)
    return {"r": np.where(active, m["r"], np.nan), "rel_rmse": rel, "rel_rmse_total": total, "active": active}


# -- input handling -------------------------------------------------------------------------------

def _with_trial(ds: xr.Dataset, name: str) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"{name} must be an xarray.Dataset (from predict / simulate / datasets), "
                         f"got {type(ds).__name__}")
    if "v" not in ds.data_vars:
        raise ValueError(f"{name} has no 'v' variable; got {sorted(ds.data_vars)}")
    if "trial" not in ds["v"].dims:
        ds = ds.expand_dims(trial=[0])  # every data variable gains the trial dim
    return ds


def _dt_of(ds: xr.Dataset) -> float | None:
    if "dt" in ds.attrs:
        return float(ds.attrs["dt"])
    t = ds["time"].values if "time" in ds.coords else np.zeros(0)
    return float(t[1] - t[0]) if t.size > 1 else None


def _check_aligned(pred: xr.Dataset, truth: xr.Dataset) -> float:
    vp = pred["v"].transpose("trial", "time", "segment")
    vt = truth["v"].transpose("trial", "time", "segment")
    if vp.shape != vt.shape:
        raise ValueError(f"pred v has shape {dict(zip(vp.dims, vp.shape))} but truth v has "
                         f"{dict(zip(vt.dims, vt.shape))} (trial, time, segment must agree)")
    if "segment" in vp.coords and "segment" in vt.coords:
        a, b = vp["segment"].values.astype(str), vt["segment"].values.astype(str)
        if not np.array_equal(a, b):
            k = int(np.flatnonzero(a != b)[0])
            raise ValueError(f"segment {k} differs: pred {a[k]!r} vs truth {b[k]!r}")
    dp, dtt = _dt_of(pred), _dt_of(truth)
    if dp is not None and dtt is not None and not same_dt(dp, dtt):
        raise ValueError(f"pred dt {dp} ms does not match truth dt {dtt} ms")
    if vt.shape[1] == 0:
        raise ValueError("truth has no time bins")
    return dtt if dtt is not None else (dp if dp is not None else 1.0)


def _spike_lists(ds: xr.Dataset) -> list[np.ndarray] | None:
    if "spike_times" not in ds:
        return None
    st = ds["spike_times"]
    if "trial" not in st.dims:
        return [st.values]
    return [row for row in st.transpose("trial", ...).values.reshape(st.sizes["trial"], -1)]


def _regions(ds: xr.Dataset, n_seg: int) -> np.ndarray:
    if "region" in ds.coords and ds["region"].dims == ("segment",):
        return ds["region"].values.astype(str)
    return np.array(["all"] * n_seg)


def _soma(region: np.ndarray, *datasets: xr.Dataset) -> int:
    """The recorded soma index of the first dataset that has one; else the first ``soma`` segment, else 0."""
    for ds in datasets:
        if "soma_index" in ds.attrs:
            return soma_index(ds)
    return int(np.flatnonzero(region == "soma")[0]) if (region == "soma").any() else 0


def _drift(pred_c: np.ndarray, truth_c: np.ndarray, dt: float, window: float) -> tuple[float, float, float]:
    n = int(round(window / dt))
    if n < 1 or pred_c.shape[1] < 2 * n:
        return np.nan, np.nan, np.nan
    first = np.sqrt(np.mean((pred_c[:, :n] - truth_c[:, :n]) ** 2))
    last = np.sqrt(np.mean((pred_c[:, -n:] - truth_c[:, -n:]) ** 2))
    ratio = last / first if first > 0 else (1.0 if last == 0 else np.inf)
    return float(first), float(last), float(ratio)


# -- the public entry points ----------------------------------------------------------------------

def evaluate(pred: xr.Dataset, truth: xr.Dataset, *, v_clip: float = V_CLIP, windows: Sequence[float] = (5.0, 10.0),
             drift_window: float = 5000.0, drift_tolerance: float = 0.1,
             dipole_rel_tol: float = DIPOLE_REL_TOL, dipole_lowpass: float | None = DIPOLE_LOWPASS_HZ) -> xr.Dataset:
    """Score a surrogate prediction against ground truth.

    Parameters
    ----------
    pred : xarray.Dataset
        From ``Surrogate.predict``: ``v`` (mV), optionally ``dipole`` (nA um),
        ``spike_times`` (ms) and ``v_clipped`` (mV; a model with spike waveforms
        gives its voltage heads' output apart: the clipped metrics score it, the
        raw metrics score ``v`` with the action potentials); optional leading
        ``trial`` dim.
    truth : xarray.Dataset
        From ``mtl.simulate`` / ``mtl.datasets.open`` with the same trials, time
        bins and segments.
    v_clip : float
        Clipping level (mV) of the primary voltage metrics, ``min(v, v_clip)``.
    windows : sequence of float
        Spike matching windows, +- ms.
    drift_window : float
        Length (ms) of the first and last stretch compared for drift.
    drift_tolerance : float
        Allowed relative error increase of the last stretch (``drift_ok``).
    dipole_rel_tol : float
        Axes with truth SD below this fraction of the largest axis SD are not scored.
    dipole_lowpass : float or None
        Cutoff (Hz) of the zero-phase low-pass applied to both dipoles before the
        primary dipole metrics (order ``DIPOLE_LOWPASS_ORDER``); ``None`` scores the
        raw dipole there too.

    Returns
    -------
    xarray.Dataset
        Per segment: ``r_clipped``, ``rmse_clipped`` (mV), ``ve_clipped``,
        ``r_raw``, ``rmse_raw`` (mV), ``ve_raw``; per region (dim ``region``):
        ``region_<metric>`` means; soma scalars ``soma_r_clipped``,
        ``soma_rmse_clipped``, ``soma_ve_clipped``, ``soma_r_raw``,
        ``soma_rmse_raw``, ``soma_ve_raw``; over dim ``window`` (ms): ``spike_precision``,
        ``spike_recall``, ``spike_f1``, ``spike_mean_abs_shift`` (ms); per
        ``axis``: ``dipole_r``, ``dipole_rel_rmse`` (low-passed, primary) and
        ``dipole_r_raw``, ``dipole_rel_rmse_raw``; scalars
        ``dipole_rel_rmse_total`` (low-passed), ``dipole_rel_rmse_total_raw``,
        ``drift_rmse_first``, ``drift_rmse_last``
        (mV), ``drift_ratio``, ``drift_ok``; per ``ion`` when both have
        ``i_ion``: ``ion_r``, ``ion_rmse`` (nA), ``ion_ve``. See the module
        docstring.

    Raises
    ------
    ValueError
        If pred and truth do not have the same trials, time bins, segments and dt.
    """
    pred, truth = _with_trial(pred, "pred"), _with_trial(truth, "truth")
    dt = _check_aligned(pred, truth)
    vp = pred["v"].transpose("trial", "time", "segment").values.astype(float)
    vt = truth["v"].transpose("trial", "time", "segment").values.astype(float)
    n_trial, n_time, n_seg = vt.shape
    if not np.all(np.isfinite(vp)):
        raise ValueError("pred v contains NaN or infinite values")
    # a prediction with spike waveforms carries its heads' clipped voltage apart (v_clipped): the clipped
    # metrics score that, the raw metrics the voltage with the action potentials
    vc = pred["v_clipped"].transpose("trial", "time", "segment").values.astype(float) if "v_clipped" in pred else vp
    cp, ct = clip_voltage(vc, v_clip), clip_voltage(vt, v_clip)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    clipped = voltage_metrics(flat(cp), flat(ct))
    raw = voltage_metrics(flat(vp), flat(vt))
    region = _regions(truth, n_seg)
    seg_names = truth["segment"].values.astype(str) if "segment" in truth.coords else np.arange(n_seg).astype(str)
    soma = _soma(region, truth, pred)

    units = {"r": "1", "rmse": "mV", "ve": "1"}
    names = {"r": "Pearson r", "rmse": "root-mean-square error", "ve": "variance explained 1 - MSE/Var"}
    data = {}
    for label, m, how in [("clipped", clipped, f"on min(v, {v_clip} mV)"), ("raw", raw, "on raw v")]:
        for k in ("r", "rmse", "ve"):
            data[f"{k}_{label}"] = ("segment", m[k], {"units": units[k], "long_name": f"{names[k]} {how}"})
    uniq = list(dict.fromkeys(region.tolist()))
    for name in list(data):
        vals = data[name][1]
        with np.errstate(invalid="ignore"), _quiet():
            summary = [np.nanmean(vals[region == r]) if np.isfinite(vals[region == r]).any() else np.nan
                       for r in uniq]
        data[f"region_{name}"] = ("region", np.asarray(summary, float),
                                  {**data[name][2], "long_name": data[name][2]["long_name"] + ", region mean"})
    data["soma_r_clipped"] = ((), clipped["r"][soma], {"units": "1", "long_name": "soma Pearson r, clipped v"})
    data["soma_rmse_clipped"] = ((), clipped["rmse"][soma], {"units": "mV", "long_name": "soma RMSE, clipped v"})
    data["soma_ve_clipped"] = ((), clipped["ve"][soma], {"units": "1", "long_name": "soma variance explained, clipped v"})
    data["soma_r_raw"] = ((), raw["r"][soma], {"units": "1", "long_name": "soma Pearson r, raw v"})
    data["soma_rmse_raw"] = ((), raw["rmse"][soma], {"units": "mV", "long_name": "soma RMSE, raw v"})
    data["soma_ve_raw"] = ((), raw["ve"][soma], {"units": "1", "long_name": "soma variance explained, raw v"})

    data.update(_spike_vars(pred, truth, windows))
    data.update(_dipole_vars(pred, truth, dipole_rel_tol, dt, dipole_lowpass))
    data.update(_ion_vars(pred, truth))
    first, last, ratio = _drift(cp, ct, dt, drift_window)
    data["drift_rmse_first"] = ((), first, {"units": "mV", "long_name": f"clipped-v RMSE, first {drift_window} ms"})
    data["drift_rmse_last"] = ((), last, {"units": "mV", "long_name": f"clipped-v RMSE, last {drift_window} ms"})
    data["drift_ratio"] = ((), ratio, {"units": "1", "long_name": "last / first RMSE (NaN: trials too short)"})
    ok = float(ratio <= 1 + drift_tolerance) if np.isfinite(ratio) else np.nan
    data["drift_ok"] = ((), ok, {"units": "1", "long_name": f"1 if drift_ratio <= {1 + drift_tolerance}, "
                                                           "0 if not, NaN if not measured"})
    coords = {"segment": seg_names, "segment_region": ("segment", region), "region": uniq,
              "window": ("window", np.asarray(windows, float), {"units": "ms", "long_name": "matching window, +-"}),
              "axis": list(AXES)}
    if "ion_r" in data:
        coords["ion"] = truth["ion"].values.astype(str)
    return xr.Dataset(data, coords=coords, attrs={
        "v_clip": float(v_clip), "dt": float(dt), "n_trials": int(n_trial),
        "duration": float(n_time * dt), "drift_window": float(drift_window),
        "dipole_lowpass_hz": float(dipole_lowpass) if dipole_lowpass is not None else "none",
        "dipole_lowpass_order": int(DIPOLE_LOWPASS_ORDER),
        "dipole_lowpass_filter": "Butterworth, scipy.signal.sosfiltfilt (zero phase), per trial",
        "description": "surrogate vs ground truth; see mtlneuron.evaluate docstring for definitions"})


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _spike_vars(pred: xr.Dataset, truth: xr.Dataset, windows: Sequence[float]) -> dict:
    tl, pl = _spike_lists(truth), _spike_lists(pred)
    keys = ("precision", "recall", "f1", "mean_abs_shift")
    out = {k: np.full(len(windows), np.nan) for k in keys}
    counts = {"n_true": 0, "n_pred": 0}
    if tl is not None and pl is not None:
        if len(tl) != len(pl):
            raise ValueError(f"pred has spike times for {len(pl)} trials, truth for {len(tl)}")
        for i, w in enumerate(windows):
            s = spike_scores(tl, pl, float(w))
            for k in keys:
                out[k][i] = s[k]
            counts = {"n_true": s["n_true"], "n_pred": s["n_pred"]}
    long = {"precision": "spike precision", "recall": "spike recall", "f1": "spike F1",
            "mean_abs_shift": "mean |shift| of matched spikes"}
    res = {f"spike_{k}": ("window", out[k], {"units": "ms" if k == "mean_abs_shift" else "1",
                                             "long_name": long[k]}) for k in keys}
    res["n_spikes_true"] = ((), counts["n_true"], {"long_name": "true somatic spikes"})
    res["n_spikes_pred"] = ((), counts["n_pred"], {"long_name": "predicted somatic spikes"})
    return res


def _ion_vars(pred: xr.Dataset, truth: xr.Dataset) -> dict:
    if "i_ion" not in pred or "i_ion" not in truth:
        return {}
    ip = pred["i_ion"].transpose("trial", "time", "ion")
    it = truth["i_ion"].transpose("trial", "time", "ion")
    if ip.shape != it.shape or list(ip["ion"].values.astype(str)) != list(it["ion"].values.astype(str)):
        raise ValueError(f"pred i_ion ({dict(ip.sizes)}, ions {list(ip['ion'].values)}) does not match truth "
                         f"({dict(it.sizes)}, ions {list(it['ion'].values)})")
    n = it.sizes["ion"]
    m = voltage_metrics(ip.values.reshape(-1, n).astype(float), it.values.reshape(-1, n).astype(float))
    return {"ion_r": ("ion", m["r"], {"units": "1", "long_name": "ionic current Pearson r"}),
            "ion_rmse": ("ion", m["rmse"], {"units": "nA", "long_name": "ionic current RMSE"}),
            "ion_ve": ("ion", m["ve"], {"units": "1", "long_name": "ionic current variance explained"})}


def _dipole_vars(pred: xr.Dataset, truth: xr.Dataset, rel_tol: float, dt: float, cutoff: float | None) -> dict:
    nan3 = np.full(3, np.nan)
    raw = band = {"r": nan3, "rel_rmse": nan3, "rel_rmse_total": np.nan}
    if "dipole" in pred and "dipole" in truth:
        dp = pred["dipole"].transpose("trial", "time", "axis").values.astype(float)
        dt_ = truth["dipole"].transpose("trial", "time", "axis").values.astype(float)
        if dp.shape != dt_.shape:
            raise ValueError(f"pred dipole shape {dp.shape} differs from truth {dt_.shape}")
        raw = _dipole_metrics(dp.reshape(-1, 3), dt_.reshape(-1, 3), rel_tol)
        band = raw
        if cutoff is not None:  # filtered along time, trial by trial; which axes count is decided on the raw truth
            lp, lt = (lowpass(a, dt, cutoff, DIPOLE_LOWPASS_ORDER, axis=1).reshape(-1, 3) for a in (dp, dt_))
            band = _dipole_metrics(lp, lt, rel_tol, active=raw["active"])
    where = (f"after a {DIPOLE_LOWPASS_ORDER}th-order zero-phase {cutoff:g}-Hz low-pass" if cutoff is not None
             else "on the raw dipole (no low-pass)")
    return {
        "dipole_r": ("axis", band["r"], {"units": "1", "long_name": f"dipole Pearson r {where} "
                                                                    "(NaN: negligible variance)"}),
        "dipole_rel_rmse": ("axis", band["rel_rmse"], {"units": "1", "long_name": f"dipole RMSE / SD(truth) {where}"}),
        "dipole_rel_rmse_total": ((), band["rel_rmse_total"],
                                  {"units": "1", "long_name": f"dipole RMSE / SD(truth), scored axes pooled, {where}"}),
        "dipole_r_raw": ("axis", raw["r"], {"units": "1", "long_name": "dipole Pearson r, raw dipole "
                                                                       "(NaN: negligible variance)"}),
        "dipole_rel_rmse_raw": ("axis", raw["rel_rmse"], {"units": "1", "long_name": "dipole RMSE / SD(truth), raw"}),
        "dipole_rel_rmse_total_raw": ((), raw["rel_rmse_total"],
                                      {"units": "1", "long_name": "dipole RMSE / SD(truth), scored axes pooled, raw"}),
    }


def plot(pred: xr.Dataset, truth: xr.Dataset, path: str | os.PathLike | None = None, *, trial: int = 0,
         v_clip: float = V_CLIP, time_range: tuple[float, float] | None = None):
    """One-figure report: soma and a tuft segment, heat maps of all segments, dipole.

    Parameters
    ----------
    pred, truth : xarray.Dataset
        As for :func:`evaluate`.
    path : str or Path, optional
        Save the figure there.
    trial : int
        Which trial to draw when there is a ``trial`` dim.
    v_clip : float
        Clipping level (mV) of the metrics shown in the title.
    time_range : (float, float), optional
        Time window to draw (ms); metrics in the title always use everything.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    score = evaluate(pred, truth, v_clip=v_clip)
    p, t = _with_trial(pred, "pred").isel(trial=trial), _with_trial(truth, "truth").isel(trial=trial)
    time = t["time"].values if "time" in t.coords else np.arange(t.sizes["time"]) * score.attrs["dt"]
    region = _regions(t, t.sizes["segment"])
    soma = _soma(region, t, p)
    tuft = np.flatnonzero(region == "apical_tuft")
    fig, ax = plt.subplots(5, 1, figsize=(11, 12), sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1, 1, 1]})
    _trace(ax[0], time, t["v"].values[:, soma], p["v"].values[:, soma], "soma v (mV)")
    _spike_ticks(ax[0], t, p)
    if tuft.size:
        seg = int(tuft[tuft.size // 2])
        _trace(ax[1], time, t["v"].values[:, seg], p["v"].values[:, seg], f"{t['segment'].values[seg]} v (mV)")
    elif "spike_prob" in p:
        ax[1].plot(time, p["spike_prob"].values, color="tab:red", lw=0.7)
        ax[1].set_ylabel("spike_prob")
    extent = [time[0], time[-1] + score.attrs["dt"], 0, t.sizes["segment"]]
    for k, (src, label) in enumerate([(t, "truth"), (p, "surrogate")]):
        im = ax[2 + k].imshow(src["v"].values.T, aspect="auto", origin="lower", cmap="viridis", extent=extent,
                              vmin=-85, vmax=-20, interpolation="nearest")
        ax[2 + k].set_ylabel(f"segment ({label})")
        fig.colorbar(im, cax=ax[2 + k].inset_axes([1.005, 0.0, 0.012, 1.0]), label="v (mV)")
    _dipole_panel(ax[4], time, t, p)
    ax[4].set_xlabel("time (ms)")
    if time_range is not None:
        ax[4].set_xlim(*time_range)
    f1 = float(score["spike_f1"].values[0]) if score.sizes["window"] else np.nan
    fig.suptitle(f"{truth.attrs.get('cell', '')}: soma r (clipped) {float(score['soma_r_clipped']):.2f}, "
                 f"RMSE {float(score['soma_rmse_clipped']):.2f} mV, spike F1 (+-{score['window'].values[0]:g} ms) "
                 f"{f1:.2f}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _trace(ax, time, truth, pred, ylabel: str) -> None:
    ax.plot(time, truth, color="k", lw=0.8, label="NEURON")
    ax.plot(time, pred, color="tab:red", lw=0.8, alpha=0.8, label="surrogate")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize=7)


def _spike_ticks(ax, truth: xr.Dataset, pred: xr.Dataset) -> None:
    """Spike times as ticks above the traces: truth (black) over surrogate (red)."""
    top = ax.get_ylim()[1]
    span = top - ax.get_ylim()[0]
    for ds, color, y in [(truth, "k", top + 0.16 * span), (pred, "tab:red", top + 0.08 * span)]:
        if "spike_times" in ds:
            st = np.asarray(ds["spike_times"].values, float).ravel()
            st = st[np.isfinite(st)]
            ax.plot(st, np.full(st.size, y), "|", color=color, ms=7)


def _dipole_panel(ax, time, truth: xr.Dataset, pred: xr.Dataset) -> None:
    if "dipole" not in truth or "dipole" not in pred:
        ax.text(0.5, 0.5, "no dipole", transform=ax.transAxes, ha="center")
        return
    dt_, dp = truth["dipole"].values, pred["dipole"].values
    sd = dt_.std(axis=0)
    if not (sd > 0).any():
        ax.text(0.5, 0.5, "dipole negligible (e.g. a single compartment)", transform=ax.transAxes, ha="center")
        return
    for k in np.flatnonzero(active_axes(sd)):
        line, = ax.plot(time, dt_[:, k] * 1e-3, lw=0.8, label=f"{AXES[k]} NEURON")
        ax.plot(time, dp[:, k] * 1e-3, lw=0.8, ls="--", color=line.get_color(), label=f"{AXES[k]} surrogate")
    ax.set_ylabel("dipole (uA um)")
    ax.legend(loc="upper right", fontsize=7, ncol=3)


make_module_callable(__name__, evaluate)
