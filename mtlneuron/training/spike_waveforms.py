"""Learning a surrogate's spike waveforms from training trials (kernels: :mod:`mtlneuron.surrogate.waveforms`)."""
from __future__ import annotations

import numpy as np

from ..conventions import SPIKE_WAVEFORM_POST_MS, SPIKE_WAVEFORM_PRE_MS
from ..surrogate import Surrogate
from ..surrogate.predict import predict_arrays
from ..surrogate.waveforms import fit_waveforms, lag_bins
from .data import TrialArrays

__all__ = ["fit_spike_waveforms"]


def fit_spike_waveforms(model: Surrogate, arrays: TrialArrays, idx, max_trials: int = 200,
                        pre_ms: float = SPIKE_WAVEFORM_PRE_MS, post_ms: float = SPIKE_WAVEFORM_POST_MS) -> None:
    """Learn the model's spike waveforms (:mod:`mtlneuron.surrogate.waveforms`) from training trials, in place.

    The residual of the raw NEURON voltage and dipole minus the model's
    prediction, regressed on the true spike bins of up to ``max_trials`` of the
    trials ``idx`` (the first ones in index order that have spikes).
    """
    idx = [int(i) for i in idx if arrays.spikes[int(i)].any()][:max_trials]
    if not idx:
        raise ValueError("no training trial has a spike: cannot learn spike waveforms")
    pred = predict_arrays(model, arrays.inputs[np.asarray(idx)], batch_size=16, chunk=4096)
    truth = np.concatenate([arrays.v[idx], arrays.dipole[idx]], axis=-1)
    resid = truth - np.concatenate([pred["v"], pred["dipole"]], axis=-1)
    lags = lag_bins(pre_ms, post_ms, model.dt)
    wave = fit_waveforms(list(resid), [np.flatnonzero(arrays.spikes[i]) for i in idx], lags)
    model.set_spike_waveform(wave, lags)
