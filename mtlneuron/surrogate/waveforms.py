"""Spike waveforms: the action potential in every segment and in the dipole, placed at predicted spikes.

The voltage heads learn ``min(v, v_clip)`` and the dipole head cannot time a
0.5-ms-wide spike current, so a prediction lacks the fast part of each action
potential. A *spike waveform* is one template per output channel (every
segment's voltage, mV, and each dipole axis, nA um) over the bins
``-pre .. post`` around the spike bin. It is learned by least squares from
training trials (``mtlneuron.training.spike_waveforms``): what the network
cannot give (the voltage above the clip level; the dipole's residual)
regressed on lagged indicators of spike bins (by default the model's own
predicted spikes), so overlapping spikes in a burst are separated. At prediction time the template is
added at every *predicted* spike bin, so voltages and LFP/EEG computed from a
prediction carry the spike currents.

Numeric kernels only (numpy): fitting from arrays, and placing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["lag_bins", "fit_waveforms", "place_waveforms", "spike_bins"]


def lag_bins(pre_ms: float, post_ms: float, dt: float) -> np.ndarray:
    """The template's lags in bins relative to the spike bin: ``-pre .. post``."""
    return np.arange(-int(round(pre_ms / dt)), int(round(post_ms / dt)) + 1)


def spike_bins(spike_times: np.ndarray, dt: float, n_time: int) -> np.ndarray:
    """Bin indices of spike times (ms; NaN ignored) on a grid of ``n_time`` bins of ``dt``."""
    t = np.asarray(spike_times, dtype=float)
    k = np.floor(t[np.isfinite(t)] / dt).astype(int)
    return k[(k >= 0) & (k < n_time)]


def _design(bins: np.ndarray, lags: np.ndarray, n_time: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (time bin) and columns (lag) of the ones of the lagged spike-indicator matrix."""
    rows = (bins[:, None] + lags[None, :]).ravel()
    cols = np.broadcast_to(np.arange(lags.size), (bins.size, lags.size)).ravel()
    keep = (rows >= 0) & (rows < n_time)
    return rows[keep], cols[keep]


def fit_waveforms(residuals: Sequence[np.ndarray], spikes: Sequence[np.ndarray], lags: np.ndarray,
                  ridge: float = 1e-3) -> np.ndarray:
    """Least-squares templates (lag, channel) from per-trial residuals (time, channel) and spike bins.

    Solves ``min_W sum_trials |R - X W|^2 + ridge * n_spikes * |W|^2`` with
    ``X`` the (time, lag) indicators of the spike bins; a lone spike's template
    is then the spike-triggered average of the residual.
    """
    n_lag = lags.size
    xtx = np.zeros((n_lag, n_lag))
    xtr = None
    n_spikes = 0
    for r, b in zip(residuals, spikes):
        r = np.asarray(r, dtype=np.float64)
        if xtr is None:
            xtr = np.zeros((n_lag, r.shape[1]))
        rows, cols = _design(np.asarray(b, dtype=int), lags, r.shape[0])
        x = np.zeros((r.shape[0], n_lag))
        np.add.at(x, (rows, cols), 1.0)
        used = np.flatnonzero(x.any(axis=1))  # only bins near a spike enter the normal equations
        xtx += x[used].T @ x[used]
        xtr += x[used].T @ r[used]
        n_spikes += len(b)
    if xtr is None or n_spikes == 0:
        raise ValueError("no spikes in the trials given: spike waveforms need suprathreshold training trials")
    return np.linalg.solve(xtx + ridge * n_spikes * np.eye(n_lag), xtr)


def place_waveforms(n_time: int, bins: np.ndarray, lags: np.ndarray, waveform: np.ndarray) -> np.ndarray:
    """(time, channel) sum of ``waveform`` (lag, channel) placed at each spike bin (cut at the edges)."""
    out = np.zeros((n_time, waveform.shape[1]), dtype=np.float64)
    rows, cols = _design(np.asarray(bins, dtype=int), lags, n_time)
    np.add.at(out, rows, waveform[cols])
    return out
