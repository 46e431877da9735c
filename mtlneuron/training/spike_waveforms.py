"""Learning a surrogate's spike waveforms from training trials (kernels: :mod:`mtlneuron.surrogate.waveforms`)."""
from __future__ import annotations

import numpy as np

from ..conventions import SPIKE_WAVEFORM_POST_MS, SPIKE_WAVEFORM_PRE_MS, clip_voltage
from ..surrogate import Surrogate
from ..surrogate.predict import predict_arrays
from ..surrogate.waveforms import fit_waveforms, lag_bins
from .data import TrialArrays

__all__ = ["fit_spike_waveforms"]


def fit_spike_waveforms(model: Surrogate, arrays: TrialArrays, idx, max_trials: int = 200,
                        pre_ms: float = SPIKE_WAVEFORM_PRE_MS, post_ms: float = SPIKE_WAVEFORM_POST_MS) -> None:
    """Learn the model's spike waveforms (:mod:`mtlneuron.surrogate.waveforms`) from training trials, in place.

    Regressed on the true spike bins of up to ``max_trials`` of the trials
    ``idx`` (the first ones in index order that have spikes):

    * voltage: the part of NEURON's voltage above the model's ``v_clip``
      (``v - min(v, v_clip)``), exactly what the clipped voltage heads never
      see (a model trained on raw voltage: the residual, as for the dipole);
    * dipole: NEURON's dipole minus the model's prediction (the head learns the
      slow part; the fast spike currents are left in the residual).
    """
    idx = [int(i) for i in idx if arrays.spikes[int(i)].any()][:max_trials]
    if not idx:
        raise ValueError("no training trial has a spike: cannot learn spike waveforms")
    pred = predict_arrays(model, arrays.inputs[np.asarray(idx)], batch_size=16, chunk=4096)
    v = arrays.v[idx]
    clip = model.config.v_clip
    v_part = v - clip_voltage(v, clip) if clip is not None else v - pred["v"]
    resid = np.concatenate([v_part, arrays.dipole[idx] - pred["dipole"]], axis=-1)
    lags = lag_bins(pre_ms, post_ms, model.dt)
    wave = fit_waveforms(list(resid), [np.flatnonzero(arrays.spikes[i]) for i in idx], lags)
    model.set_spike_waveform(wave, lags)
