"""Scoring primitives shared by training (threshold selection, validation) and evaluation.

Pure numpy (scipy.signal loaded on use): spike matching and scores, voltage
metrics, the zero-phase low-pass of the band-limited dipole metrics. ``mtlneuron.evaluate``
builds its report on these and re-exports them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two 1-d arrays; NaN when either is constant."""
    a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def match_spikes(true: np.ndarray, pred: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching of spike times within +-``window`` ms.

    Pairs are taken in order of increasing ``|pred - true|``; each spike is
    used at most once. NaN entries (padding) are ignored.

    Returns
    -------
    true_idx, pred_idx : numpy.ndarray
        Indices (into the NaN-free inputs) of the matched pairs.
    """
    t = np.asarray(true, dtype=float)
    p = np.asarray(pred, dtype=float)
    t, p = t[np.isfinite(t)], p[np.isfinite(p)]
    if t.size == 0 or p.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    order_t, order_p = np.argsort(t), np.argsort(p)
    ts, ps = t[order_t], p[order_p]
    # candidate pairs: for each true spike, the predicted spikes within the window (sorted arrays)
    lo = np.searchsorted(ps, ts - window, side="left")
    hi = np.searchsorted(ps, ts + window, side="right")
    ti = np.repeat(np.arange(ts.size), hi - lo)
    pi = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if ti.size else np.zeros(0, dtype=int)
    dist = np.abs(ps[pi] - ts[ti])
    used_t = np.zeros(ts.size, bool)
    used_p = np.zeros(ps.size, bool)
    out_t, out_p = [], []
    for k in np.argsort(dist, kind="stable"):
        a, b = ti[k], pi[k]
        if not used_t[a] and not used_p[b]:
            used_t[a] = used_p[b] = True
            out_t.append(order_t[a])
            out_p.append(order_p[b])
    return np.asarray(out_t, dtype=int), np.asarray(out_p, dtype=int)


def spike_scores(true: Sequence[np.ndarray], pred: Sequence[np.ndarray], window: float) -> dict[str, float]:
    """Precision, recall, F1 and mean |shift| (ms) summed over trials.

    Parameters
    ----------
    true, pred : sequence of arrays
        Spike times (ms) per trial, NaN-padded allowed.
    window : float
        Matching window, +- ms.
    """
    n_true = n_pred = n_match = 0
    shifts = []
    for t, p in zip(true, pred):
        t = np.asarray(t, float)
        p = np.asarray(p, float)
        t, p = t[np.isfinite(t)], p[np.isfinite(p)]
        ti, pi = match_spikes(t, p, window)
        n_true += t.size
        n_pred += p.size
        n_match += ti.size
        shifts.append(np.abs(p[pi] - t[ti]))
    shifts = np.concatenate(shifts) if shifts else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": n_match / n_pred if n_pred else np.nan,
            "recall": n_match / n_true if n_true else np.nan,
            "f1": 2 * n_match / (n_true + n_pred) if n_true + n_pred else np.nan,
            "mean_abs_shift": float(shifts.mean()) if shifts.size else np.nan,
            "n_true": n_true, "n_pred": n_pred, "n_matched": n_match,
        }


# -- voltages and dipole --------------------------------------------------------------------------

def voltage_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Pearson r, RMSE and variance explained per column of (samples, column) arrays."""
    p = np.asarray(pred, dtype=float)
    t = np.asarray(truth, dtype=float)
    pc, tc = p - p.mean(axis=0), t - t.mean(axis=0)
    mse = np.mean((p - t) ** 2, axis=0)
    var_t = np.mean(tc ** 2, axis=0)
    var_p = np.mean(pc ** 2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt(var_t * var_p)
        r = np.where(denom > 0, np.mean(pc * tc, axis=0) / np.where(denom > 0, denom, 1.0), np.nan)
        ve = np.where(var_t > 0, 1.0 - mse / np.where(var_t > 0, var_t, 1.0), np.nan)
    return {"r": r, "rmse": np.sqrt(mse), "ve": ve}


def lowpass(x: np.ndarray, dt: float, cutoff: float, order: int, axis: int = 0) -> np.ndarray:
    """Zero-phase Butterworth low-pass of ``x`` sampled every ``dt`` ms, along ``axis``.

    ``scipy.signal.butter(order, cutoff, fs=1000 / dt, output="sos")`` applied
    forward and backward (``sosfiltfilt``, odd extension at the ends): no
    lag, and an effective attenuation of twice the filter's order (the
    magnitude response is squared; -6 dB at ``cutoff``). ``x`` is returned
    unchanged (as float) when ``cutoff`` is at or above the Nyquist frequency
    ``500 / dt`` Hz, or when there are fewer than 2 samples along ``axis``.
    """
    from scipy import signal

    x = np.asarray(x, dtype=float)
    fs = 1000.0 / float(dt)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"low-pass cutoff must be a positive frequency in Hz, got {cutoff!r}")
    if cutoff >= fs / 2 or x.shape[axis] < 2:
        return x.copy()
    sos = signal.butter(int(order), float(cutoff), btype="low", fs=fs, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.shape[axis] - 1)
    return signal.sosfiltfilt(sos, x, axis=axis, padlen=padlen)
