"""Grow a trained surrogate without changing what it computes: more LSTM units, a spike-history input.

:func:`widen` returns a copy of a :class:`~mtlneuron.surrogate.Surrogate` whose
LSTM has more hidden units per layer. The old units keep their weights; the new
units read the inputs through small random weights, but nothing reads *them*
yet (zero recurrent weights into the old units, zero weights into the next
layer and the heads), so the widened model's outputs equal the original's
exactly. Training then grows the new units' read-out from zero: the outgoing
weights get gradients because the new units' activity is not zero. A capacity
experiment can so start from a trained model instead of from scratch.

:func:`add_spike_history` does the same for the spike-history input
(``SurrogateConfig.spike_history_ms``): the new feature channels enter the
first layer through zero weights, so the outputs are unchanged until training
grows them.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..surrogate import Surrogate

__all__ = ["widen", "add_spike_history"]

_HEADS = ("v_head", "dipole_head", "spike_head", "ion_head")
_GATES = 4  # PyTorch's LSTM gate blocks: input, forget, cell, output


def widen(model: Surrogate, hidden_size: int, *, init_std: float = 0.01, seed: int = 0) -> Surrogate:
    """A copy of ``model`` with ``hidden_size`` LSTM units per layer and the same outputs.

    Parameters
    ----------
    model : Surrogate
        A trained surrogate (left unchanged).
    hidden_size : int
        LSTM units per layer of the copy, at least ``model.config.hidden_size``.
    init_std : float
        Standard deviation of the new units' incoming weights (their forget-gate
        bias is 1, like a new model's).
    seed : int
        Seed of those random weights.

    Returns
    -------
    Surrogate
        In eval mode, on ``model``'s device; ``training_info`` is carried over
        with ``"widened_from"`` (the old hidden size) added.

    Raises
    ------
    ValueError
        If ``hidden_size`` is smaller than the model's (narrowing would change
        what it computes) or ``init_std`` is negative.
    """
    old = int(model.config.hidden_size)
    if not isinstance(hidden_size, int) or hidden_size < old:
        raise ValueError(f"hidden_size must be an int >= the model's {old} LSTM units, got {hidden_size!r}")
    if not init_std >= 0:
        raise ValueError(f"init_std must be >= 0, got {init_std!r}")
    if hidden_size == old:
        return copy.deepcopy(model).eval()
    device = model.device
    wide = Surrogate(meta=model.meta, dt=model.dt, config={**model.config.to_dict(), "hidden_size": hidden_size})
    gen = torch.Generator().manual_seed(seed)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for k in range(model.config.num_layers):
        _widen_layer(state, k, old, hidden_size, init_std, gen)
    for head in _HEADS:
        key = _first_linear_weight(wide, head)
        if key is not None:  # new columns zero: the heads do not read the new units yet
            w = state[key]
            state[key] = torch.cat([w, w.new_zeros(w.shape[0], hidden_size - old)], dim=1)
    _load_grown(wide, state, "widen")
    wide.training_info = {**(model.training_info or {}), "widened_from": old}
    return wide.to(device).eval()


def add_spike_history(model: Surrogate, spike_history_ms) -> Surrogate:
    """A copy of ``model`` that also reads its own past spikes, with the same outputs.

    Parameters
    ----------
    model : Surrogate
        A trained surrogate without spike history (left unchanged).
    spike_history_ms : sequence of float
        Time constants (ms) of the spike-history traces (at least one).

    Returns
    -------
    Surrogate
        In eval mode, on ``model``'s device; ``training_info`` carries
        ``"spike_history_added"`` (the time constants).

    Raises
    ------
    ValueError
        If the model has spike history already, or the time constants are
        not positive.
    """
    taus = [float(t) for t in spike_history_ms]
    if model.has_spike_history:
        raise ValueError(f"the model reads its spike history already ({list(model.config.spike_history_ms)} ms)")
    if not taus:
        raise ValueError("spike_history_ms needs at least one time constant (ms)")
    new = Surrogate(meta=model.meta, dt=model.dt, config={**model.config.to_dict(), "spike_history_ms": taus})
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    key = "convs.0.conv.weight" if model.config.conv_channels else "lstm.weight_ih_l0"
    w = state[key]  # (out, in[, kernel]): the history channels are the last inputs, read with weight 0
    state[key] = torch.cat([w, w.new_zeros((w.shape[0], len(taus)) + tuple(w.shape[2:]))], dim=1)
    _load_grown(new, state, "add_spike_history")
    new.training_info = {**(model.training_info or {}), "spike_history_added": taus}
    return new.to(model.device).eval()


def _load_grown(model: Surrogate, state: dict, what: str) -> None:
    """Load the grown ``state`` into ``model`` (checkpoints without spike waveforms are fine)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("spike_waveform") for k in missing):
        raise RuntimeError(f"{what}: state_dict mismatch (missing {missing}, unexpected {unexpected})")


def _widen_layer(state: dict, k: int, old: int, new: int, std: float, gen: torch.Generator) -> None:
    """Widen LSTM layer ``k``'s four tensors in ``state`` (gate blocks of ``old`` rows become ``new``)."""
    w_ih, w_hh = state[f"lstm.weight_ih_l{k}"], state[f"lstm.weight_hh_l{k}"]
    n_in = w_ih.shape[1] if k == 0 else new  # layer k > 0 reads the widened layer below
    rand = lambda rows, cols: torch.randn(rows, cols, generator=gen) * std  # noqa: E731
    blocks_ih, blocks_hh, blocks_bih, blocks_bhh = [], [], [], []
    for g in range(_GATES):
        rows = slice(g * old, (g + 1) * old)
        old_ih = torch.cat([w_ih[rows], w_ih.new_zeros(old, n_in - w_ih.shape[1])], dim=1)
        old_hh = torch.cat([w_hh[rows], w_hh.new_zeros(old, new - old)], dim=1)  # old units ignore new ones
        blocks_ih += [old_ih, rand(new - old, n_in)]
        blocks_hh += [old_hh, rand(new - old, new)]
        b_new = torch.full((new - old,), 1.0 if g == 1 else 0.0)  # forget gate open, as in a new model
        blocks_bih += [state[f"lstm.bias_ih_l{k}"][rows], b_new]
        blocks_bhh += [state[f"lstm.bias_hh_l{k}"][rows], torch.zeros(new - old)]
    state[f"lstm.weight_ih_l{k}"] = torch.cat(blocks_ih)
    state[f"lstm.weight_hh_l{k}"] = torch.cat(blocks_hh)
    state[f"lstm.bias_ih_l{k}"] = torch.cat(blocks_bih)
    state[f"lstm.bias_hh_l{k}"] = torch.cat(blocks_bhh)


def _first_linear_weight(model: nn.Module, head: str) -> str | None:
    """State-dict key of the weight of the first linear layer of ``head`` (None if the model has no such head)."""
    module = getattr(model, head, None)
    if module is None:
        return None
    return f"{head}.weight" if isinstance(module, nn.Linear) else f"{head}.0.weight"
