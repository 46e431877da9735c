"""Learning a surrogate's spike waveforms from training trials (kernels: :mod:`mtlneuron.surrogate.waveforms`)."""
from __future__ import annotations

import numpy as np

from ..conventions import SPIKE_WAVEFORM_POST_MS, SPIKE_WAVEFORM_PRE_MS, clip_voltage
from ..surrogate import Surrogate
from ..surrogate.predict import detect_spikes, predict_arrays
from ..surrogate.waveforms import fit_waveforms, lag_bins, spike_bins
from .data import TrialArrays

__all__ = ["fit_spike_waveforms"]


def fit_spike_waveforms(model: Surrogate, arrays: TrialArrays, idx, max_trials: int = 200,
                        pre_ms: float = SPIKE_WAVEFORM_PRE_MS, post_ms: float = SPIKE_WAVEFORM_POST_MS,
                        at: str = "predicted") -> None:
    """Learn the model's spike waveforms (:mod:`mtlneuron.surrogate.waveforms`) from training trials, in place.

    Regressed on the spike bins the model itself *predicts* (its
    ``spike_prob_threshold``; ``at="true"``: NEURON's spikes) in up to
    ``max_trials`` of the trials ``idx`` (evenly spread over them): the template is then the
    expected signal given a predicted spike, which folds in the model's timing
    jitter and false alarms (a sharp waveform placed 1 ms off costs more than it
    gives). Targets:

    * voltage: the part of NEURON's voltage above the model's ``v_clip``
      (``v - min(v, v_clip)``), exactly what the clipped voltage heads never
      see (a model trained on raw voltage: the residual, as for the dipole);
    * dipole: NEURON's dipole minus the model's prediction (the head learns the
      slow part; the fast spike currents are left in the residual).
    """
    if at not in ("predicted", "true"):
        raise ValueError(f"at must be 'predicted' or 'true', got {at!r}")
    idx = np.asarray(idx, dtype=int)
    idx = idx[np.unique(np.linspace(0, idx.size - 1, min(max_trials, idx.size)).round().astype(int))].tolist()
    pred = predict_arrays(model, arrays.inputs[np.asarray(idx)], batch_size=16, chunk=4096)
    v = arrays.v[idx]
    clip = model.config.v_clip
    v_part = v - clip_voltage(v, clip) if clip is not None else v - pred["v"]
    resid = np.concatenate([v_part, arrays.dipole[idx] - pred["dipole"]], axis=-1)
    lags = lag_bins(pre_ms, post_ms, model.dt)
    thr = float(model.spike_prob_threshold)
    if at == "predicted":
        bins = [spike_bins(detect_spikes(p, model.dt, thr), model.dt, p.size) for p in pred["spike_prob"]]
    else:
        bins = [np.flatnonzero(arrays.spikes[i]) for i in idx]
    if not sum(b.size for b in bins):
        raise ValueError(f"no {at} spike in the training trials: cannot learn spike waveforms")
    wave = fit_waveforms(list(resid), bins, lags)
    model.set_spike_waveform(wave, lags)
