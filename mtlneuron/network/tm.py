"""Tsodyks-Markram short-term plasticity: the analytic event-by-event recursion.

For a synapse with parameters ``U`` (1), ``D`` (ms, recovery from
depression) and ``F`` (ms, decay of facilitation), spike ``n`` after an
interval ``delta`` since spike ``n - 1`` (Tsodyks & Markram 1997; Maass &
Markram 2002; the form of the eLife 2022 network and of NEURON's tmgsyn)::

    u_n = U + u_{n-1} (1 - U) exp(-delta / F)          (u_1 = U)
    R_n = 1 + (R_{n-1} (1 - u_{n-1}) - 1) exp(-delta / D)   (R_1 = 1)
    efficacy_n = u_n R_n / U

so the first spike after rest has efficacy 1 and the contact's ``weight``
is the conductance of that first event. ``F = 0`` means no facilitation
(``u_n = U``). The same formulas run in the surrogate engine (torch,
:func:`step`) and in NEURON (``mtlneuron/nrn/mod/mtl_tmexp2syn.mod``); :func:`efficacies`
(:func:`mtlneuron.conventions.tm_efficacies`, re-exported here) is the
reference both are tested against.
"""
from __future__ import annotations

# The recursion is defined once, in conventions (the training drives use it too).
from ..conventions import tm_decay as decay, tm_efficacies as efficacies

__all__ = ["efficacies", "decay", "TMState"]


class TMState:
    """Per-contact Tsodyks-Markram state for the surrogate engine (torch tensors).

    ``u``, ``R`` after the last presynaptic spike and that spike's time
    ``t_last`` (NaN: none yet). Static contacts are ``U = 1, D = F = 0``:
    their efficacy is always 1.
    """

    def __init__(self, U, D, F) -> None:
        import torch

        self.U, self.D, self.F = U, D, F
        self.u = U.clone()
        self.R = torch.ones_like(U)
        self.t_last = torch.full_like(U, float("nan"))

    def spike(self, s, t_now: float):
        """Efficacy of a presynaptic spike ``s`` (0/1, differentiable) at ``t_now`` (ms); updates the state.

        Returns ``s * u_n R_n / U`` per contact (0 where there is no spike).
        """
        import torch

        first = torch.isnan(self.t_last)
        delta = torch.where(first, torch.zeros_like(self.t_last), t_now - self.t_last)
        R_new = torch.where(first, torch.ones_like(self.R), 1.0 + (self.R * (1.0 - self.u) - 1.0) * decay(delta, self.D))
        u_new = torch.where(first, self.U, self.U + self.u * (1.0 - self.U) * decay(delta, self.F))
        self.u = s * u_new + (1.0 - s) * self.u
        self.R = s * R_new + (1.0 - s) * self.R
        self.t_last = torch.where(s.detach() > 0.5, torch.full_like(self.t_last, t_now), self.t_last)
        return s * u_new * R_new / self.U
