"""Task losses and their weighting.

Per task, after standardising each target: ``v`` MSE over all segments
(clipped voltage), ``soma`` the same for the soma alone, ``dipole`` MSE over
axes with non-negligible variance, ``spike`` binary cross-entropy on spike
bins with ``pos_weight`` = (non-spike / spike bins), capped at
``max_pos_weight``, ``ion`` MSE of the standardised somatic ionic currents
(models with ``ions``), ``spike_shift`` (off by default) a shift-tolerant
spike term: mean squared difference of the predicted spike probability and
the spike labels, both smoothed with a Gaussian of SD :data:`SPIKE_SHIFT_SD_MS`
(a spike predicted 1 ms early costs little, a missed one the full amount;
BCE alone scores both the same). ``loss_weighting="uncertainty"`` (default) learns one
log-variance ``s_k`` per task (Kendall et al. 2018):
``sum_k w_k (exp(-s_k) L_k + s_k)``; ``"fixed"`` uses ``sum_k w_k L_k``.
``w_k`` default to :data:`DEFAULT_LOSS_WEIGHTS`.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..conventions import clip_voltage
from ..surrogate import Surrogate

__all__ = ["DEFAULT_LOSS_WEIGHTS", "TASKS", "SPIKE_SHIFT_SD_MS", "smooth_spikes", "TaskWeighting",
           "standardised_targets", "task_losses", "model_loss_weights"]

DEFAULT_LOSS_WEIGHTS = {"v": 1.0, "soma": 1.0, "dipole": 0.5, "spike": 1.0, "ion": 0.5}
TASKS = tuple(DEFAULT_LOSS_WEIGHTS) + ("spike_shift",)
SPIKE_SHIFT_SD_MS = 1.0


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
        """``sum_k w_k L_k`` (the validation loss, whatever the mode)."""
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


def model_loss_weights(model: Surrogate, weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` for this model: a one-segment model has no ``soma`` term (it would repeat ``v``)."""
    out = dict(weights)
    if model.n_segments == 1:
        out["soma"] = 0.0
    return out


def standardised_targets(model: Surrogate, v: torch.Tensor, dipole: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Voltage (clipped at the model's ``v_clip``) and dipole targets in the model's standardised units."""
    v = clip_voltage(v, model.config.v_clip)
    return (v - model.v_mean) / model.v_std, (dipole - model.dipole_mean) / model.dipole_std


def smooth_spikes(x: torch.Tensor, dt: float, sd_ms: float = SPIKE_SHIFT_SD_MS) -> torch.Tensor:
    """(batch, time) spike labels or probabilities convolved over time with a Gaussian whose peak is 1."""
    half = max(1, int(math.ceil(3 * sd_ms / dt)))
    k = torch.exp(-0.5 * (torch.arange(-half, half + 1, dtype=x.dtype, device=x.device) * dt / sd_ms) ** 2)
    return nn.functional.conv1d(x[:, None, :], k[None, None, :], padding=half)[:, 0, :]


def task_losses(model: Surrogate, out: Mapping[str, torch.Tensor], v: torch.Tensor, dipole: torch.Tensor,
                spikes: torch.Tensor, weights: Mapping[str, float],
                ions: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Raw per-task losses of one window (tasks with weight 0 or no signal are left out)."""
    vz, dz = standardised_targets(model, v, dipole)
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
    if weights.get("spike_shift", 0) > 0:
        p = torch.sigmoid(out["spike_logit"] - torch.log(model.spike_pos_weight))  # calibrated, as predicted
        diff = smooth_spikes(p, model.dt) - smooth_spikes(spikes, model.dt)
        losses["spike_shift"] = torch.mean(diff ** 2) * model.spike_pos_weight  # same scale as the BCE
    if weights.get("ion", 0) > 0 and ions is not None and "i_ion" in out:
        losses["ion"] = torch.mean((out["i_ion"] - (ions - model.ion_mean) / model.ion_std) ** 2)
    return losses
