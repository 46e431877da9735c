"""Building blocks of the surrogate: exponential synaptic filter, causal convolution, heads.

Plain functions and small ``nn.Module`` classes with no knowledge of cells or
checkpoints; :mod:`mtlneuron.surrogate.module` assembles them.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["FILTER_CHUNK", "exp_filter", "kernel_gain", "kernel_groups", "CausalConv", "lstm_step", "make_head"]

FILTER_CHUNK = 64  # time steps per block of the block-parallel exponential filter


def exp_filter(x: torch.Tensor, decay: torch.Tensor, y0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal first-order filter ``y[t] = decay * y[t-1] + x[t]`` along time.

    ``x`` (batch, time, channel), ``decay`` (channel,), ``y0`` (batch, channel)
    the state before the first step. Sequences are processed in blocks of
    ``FILTER_CHUNK`` steps with a lower-triangular matrix of decay powers, so
    long inputs need no Python loop per step; the result equals the recursion.

    Returns
    -------
    y : torch.Tensor
        (batch, time, channel) filtered sequence.
    last : torch.Tensor
        (batch, channel) state after the last step.
    """
    if x.shape[1] == 1:
        y = decay * y0 + x[:, 0]
        return y[:, None], y
    n = min(FILTER_CHUNK, x.shape[1])
    i = torch.arange(n, device=x.device)
    lag = i[:, None] - i[None, :]
    powers = decay[:, None, None] ** lag.clamp(min=0).to(x.dtype)  # (channel, n, n)
    kernel = torch.where(lag >= 0, powers, torch.zeros((), dtype=x.dtype, device=x.device))
    carry = decay[None, :] ** (i[:, None] + 1).to(x.dtype)  # (n, channel): decay^(i+1)
    out, y = [], y0
    for start in range(0, x.shape[1], n):
        block = x[:, start:start + n]
        m = block.shape[1]
        yb = torch.einsum("cij,bjc->bic", kernel[:, :m, :m], block) + carry[None, :m] * y[:, None, :]
        y = yb[:, -1]
        out.append(yb)
    return torch.cat(out, dim=1), y


def kernel_gain(decay1: np.ndarray, decay2: np.ndarray) -> np.ndarray:
    """1 / peak of the discrete two-stage impulse response, per channel.

    The cascade of ``a1`` and ``a2`` filters answers a unit impulse with
    ``h[n] = sum_k a1^k a2^(n-k) = (a1^(n+1) - a2^(n+1)) / (a1 - a2)``
    (``(n + 1) a^n`` when ``a1 == a2``); its peak lies within 20 time constants.
    """
    slowest = float(np.max(np.concatenate([decay1, decay2, [0.0]])))
    n = int(min(1_000_000, max(16, math.ceil(20.0 / max(1e-12, -math.log(max(slowest, 1e-300)))))))
    k = np.arange(n, dtype=float)
    gain = np.empty(decay1.size)
    for s, (a1, a2) in enumerate(zip(decay1, decay2)):
        if abs(a1 - a2) < 1e-9:
            h = (k + 1) * a1 ** k
        else:
            h = (a1 ** (k + 1) - a2 ** (k + 1)) / (a1 - a2)
        gain[s] = 1.0 / h.max()
    return gain


def kernel_groups(sites: Mapping, dt: float, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filtered channels: (channel, site) 0/1 mask and each channel's two filter decays.

    Sites sharing ``(tau1, tau2)`` (ms, columns of the site table ``sites``)
    form a group; each group gets ``channels`` channels that see only its
    sites. A decay is ``exp(-dt / tau)``, 0 for ``tau <= 0`` (no filtering).
    """
    tau = np.stack([np.asarray(sites[c], dtype=float) for c in ("tau1", "tau2")], axis=1)
    groups = np.unique(tau, axis=0)
    mask = np.zeros((len(groups) * channels, tau.shape[0]))
    decays = np.zeros((2, len(groups) * channels))
    for g, pair in enumerate(groups):
        mask[g * channels:(g + 1) * channels, np.all(tau == pair, axis=1)] = 1.0
        decays[:, g * channels:(g + 1) * channels] = np.where(
            pair > 0, np.exp(-dt / np.where(pair > 0, pair, 1.0)), 0.0)[:, None]
    return mask, decays[0], decays[1]


class CausalConv(nn.Module):
    """Conv1d over time that only sees the present and the past (buffer in the state)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.context = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (batch, channel, time) after ``buffer`` (its last ``context`` inputs) -> output, new buffer."""
        full = torch.cat([buffer, x], dim=-1)  # (batch, channel, context + time)
        return self.conv(full), full[..., full.shape[-1] - self.context:]

    def step(self, x: torch.Tensor, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: ``x`` (batch, channel) -> (batch, out channel), new buffer.

        The same result as :meth:`forward` on a length-1 sequence, as one matrix
        product over the kernel's taps: per-call convolution set-up costs more
        than the arithmetic at one step (streaming networks step every bin).
        """
        full = torch.cat([buffer, x[..., None]], dim=-1)  # (batch, channel, context + 1)
        taps = full[..., ::self.conv.dilation[0]]  # (batch, channel, kernel)
        w = self.conv.weight
        out = nn.functional.linear(taps.reshape(taps.shape[0], -1), w.reshape(w.shape[0], -1), self.conv.bias)
        return out, full[..., 1:]


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One time step of a stacked ``nn.LSTM`` (eval semantics: no dropout between layers).

    ``x`` (batch, input), ``h`` and ``c`` (layer, batch, hidden) -> top-layer
    output (batch, hidden) and the new ``h``, ``c``. PyTorch's gate order
    (input, forget, cell, output) and equations; equal to ``lstm`` on a
    length-1 sequence, without the per-call set-up of the fused kernel.
    """
    hs, cs = [], []
    for k in range(lstm.num_layers):
        gates = (nn.functional.linear(x, getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"bias_ih_l{k}"))
                 + nn.functional.linear(h[k], getattr(lstm, f"weight_hh_l{k}"), getattr(lstm, f"bias_hh_l{k}")))
        i, f, g, o = gates.chunk(4, dim=-1)
        c_k = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
        x = torch.sigmoid(o) * torch.tanh(c_k)
        hs.append(x)
        cs.append(c_k)
    return x, torch.stack(hs), torch.stack(cs)


def make_head(hidden: int, width: int, out: int) -> nn.Module:
    """A read-out: linear (``width == 0``) or one GELU hidden layer of ``width`` units."""
    if width == 0:
        return nn.Linear(hidden, out)
    return nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, out))
