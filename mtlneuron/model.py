"""CNN-LSTM surrogate of a biophysical neuron, with streaming state and checkpoints.

:class:`Surrogate` maps the binned synaptic drive of one cell, ``(time, site)``
in uS, to the membrane voltage of every segment (mV), the current dipole
moment (nA um) and the somatic spike probability, one ``dt`` bin at a time:

``inputs -> features -> causal 1-D convolutions -> stacked LSTM -> heads``

* **features**: ``u = x / site_scale`` (the drive in units of a typical event
  weight of that site, fitted on the training data). A learned linear
  projection of ``u`` over all sites (``input_channels``) and, when
  ``synaptic_filter`` is on, for every group of sites sharing a synaptic kernel
  (``tau1``, ``tau2``) a learned projection of that group's ``u`` passed
  through two cascaded causal first-order filters with the group's time
  constants (the exact discrete analogue of the Exp2Syn / alpha kernel, scaled
  so one event peaks at 1; ``filter_channels`` per group). The filter is
  linear, so projecting first and filtering the few projected channels equals
  filtering every site and projecting after, at a fraction of the cost.
* **trunk**: causal convolutions (left context only) -> GELU, then a stacked
  LSTM. In streaming mode each convolution keeps a buffer of its last
  ``(kernel_size - 1) * dilation`` inputs in the state, so one step costs O(1).
* **heads**: linear (or one hidden layer) read-outs of the LSTM output: ``v``
  for every segment and ``dipole`` (3 axes) in standardised units, and a spike
  logit for the soma.

Two equivalent ways to run the same weights: :meth:`Surrogate.run` over whole
sequences (training, offline prediction) and :meth:`Surrogate.step` one bin at
a time (networks). Both take and return a :class:`SurrogateState`; a sequence
split into pieces, or fed step by step, gives the same numbers.

Checkpoints (:meth:`Surrogate.save`, :meth:`Surrogate.load`) carry everything
needed to use the model: see ``docs/surrogate.md``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr
from torch import nn

from . import _util
from . import inputs as _inputs

__all__ = ["Surrogate", "SurrogateConfig", "SurrogateState", "detect_spikes", "read_checkpoint", "write_checkpoint",
           "data_dirs", "FORMAT", "FORMAT_VERSION"]

FORMAT = "mtlneuron.Surrogate"
FORMAT_VERSION = 2  # 2: learned input projection (version 1 filtered every site)
AXES = ("x", "y", "z")
_SITE_COLUMNS = ("segment", "region", "receptor", "kind", "point_process", "tau1", "tau2", "e")
_FILTER_CHUNK = 64  # time steps per block of the block-parallel exponential filter


# -- configuration and state -------------------------------------------------------------------

@dataclasses.dataclass
class SurrogateConfig:
    """Architecture and target settings of a :class:`Surrogate` (saved in its checkpoint).

    Attributes
    ----------
    input_channels : int
        Channels of the learned linear projection of ``u`` over all sites.
    filter_channels : int
        Channels per synaptic-kernel group of the projected, kernel-filtered
        drive (used when ``synaptic_filter`` is on).
    conv_channels : tuple of int
        Output channels of each causal convolution layer (empty: none).
    kernel_size : int
        Kernel length of every convolution (time bins).
    dilations : tuple of int, optional
        Dilation of each convolution (default 1 for all).
    hidden_size : int
        LSTM hidden units per layer.
    num_layers : int
        Number of stacked LSTM layers.
    head_hidden : int
        Width of a hidden layer in each head (0: linear heads).
    dropout : float
        Dropout after the convolutions, between LSTM layers and before the heads
        (training only).
    synaptic_filter : bool
        Add the drive filtered by each site group's synaptic kernel as features.
    v_clip : float or None
        Voltage targets are ``min(v, v_clip)`` (mV); spikes are the spike
        head's job. ``None`` trains on the raw voltage.
    ions : tuple of str
        Somatic ionic currents with their own head (``("na", "k")`` for the
        dataset variable ``i_ion``; empty: none).
    max_pos_weight : float
        Upper bound of the positive-class weight of the spike loss.
    """

    input_channels: int = 32
    filter_channels: int = 32
    conv_channels: tuple[int, ...] = (64,)
    kernel_size: int = 5
    dilations: tuple[int, ...] | None = None
    hidden_size: int = 64
    num_layers: int = 2
    head_hidden: int = 0
    dropout: float = 0.1
    synaptic_filter: bool = True
    v_clip: float | None = -40.0
    max_pos_weight: float = 100.0
    ions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        self.ions = tuple(str(i) for i in self.ions)
        if len(set(self.ions)) != len(self.ions):
            raise ValueError(f"ions must be distinct names, got {self.ions}")
        self.dilations = tuple(int(d) for d in (self.dilations or [1] * len(self.conv_channels)))
        if len(self.dilations) != len(self.conv_channels):
            raise ValueError(f"dilations {self.dilations} must have one entry per conv layer "
                             f"({len(self.conv_channels)})")
        checks = [("input_channels", self.input_channels, 1), ("filter_channels", self.filter_channels, 1),
                  ("kernel_size", self.kernel_size, 1), ("hidden_size", self.hidden_size, 1),
                  ("num_layers", self.num_layers, 1), ("head_hidden", self.head_hidden, 0)]
        checks += [("conv_channels", c, 1) for c in self.conv_channels]
        checks += [("dilations", d, 1) for d in self.dilations]
        for name, value, low in checks:
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.max_pos_weight >= 1.0:
            raise ValueError(f"max_pos_weight must be >= 1, got {self.max_pos_weight!r}")

    def to_dict(self) -> dict:
        """Plain-Python form (lists, numbers) for checkpoints."""
        d = dataclasses.asdict(self)
        d["conv_channels"] = list(d["conv_channels"])
        d["dilations"] = list(d["dilations"])
        d["ions"] = list(d["ions"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SurrogateConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Surrogate config options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


@dataclasses.dataclass
class SurrogateState:
    """Streaming state of a batch of cells.

    Attributes
    ----------
    filt1, filt2 : torch.Tensor
        (batch, channel) states of the two synaptic-filter stages over the
        projected channels (empty when off).
    conv : tuple of torch.Tensor
        Per convolution layer, its last ``(kernel_size - 1) * dilation`` inputs,
        (batch, channels, buffer).
    h, c : torch.Tensor
        LSTM hidden and cell states, (num_layers, batch, hidden_size).
    """

    filt1: torch.Tensor
    filt2: torch.Tensor
    conv: tuple[torch.Tensor, ...]
    h: torch.Tensor
    c: torch.Tensor

    def _map(self, fn) -> "SurrogateState":
        return SurrogateState(fn(self.filt1), fn(self.filt2), tuple(fn(b) for b in self.conv),
                              fn(self.h), fn(self.c))

    def detach(self) -> "SurrogateState":
        """The same state cut from the autograd graph (truncated backpropagation)."""
        return self._map(lambda t: t.detach())

    def to(self, device) -> "SurrogateState":
        """The state on another device."""
        return self._map(lambda t: t.to(device))

    @property
    def batch_size(self) -> int:
        return int(self.h.shape[1])


# -- building blocks ---------------------------------------------------------------------------

def _exp_filter(x: torch.Tensor, decay: torch.Tensor, y0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal first-order filter ``y[t] = decay * y[t-1] + x[t]`` along time.

    ``x`` (batch, time, channel), ``decay`` (channel,), ``y0`` (batch, channel)
    the state before the first step. Sequences are processed in blocks of
    ``_FILTER_CHUNK`` steps with a lower-triangular matrix of decay powers, so
    long inputs need no Python loop per step; the result equals the recursion.
    """
    if x.shape[1] == 1:
        y = decay * y0 + x[:, 0]
        return y[:, None], y
    n = min(_FILTER_CHUNK, x.shape[1])
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


def _kernel_gain(decay1: np.ndarray, decay2: np.ndarray) -> np.ndarray:
    """1 / peak of the discrete two-stage impulse response, per site.

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


class _CausalConv(nn.Module):
    """Conv1d over time that only sees the present and the past (buffer in the state)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.context = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([buffer, x], dim=-1)  # (batch, channel, context + time)
        return self.conv(full), full[..., full.shape[-1] - self.context:]


def _head(hidden: int, width: int, out: int) -> nn.Module:
    if width == 0:
        return nn.Linear(hidden, out)
    return nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, out))


# -- the model ---------------------------------------------------------------------------------

class Surrogate(nn.Module):
    """CNN-LSTM surrogate of one cell: every segment's voltage, the dipole, somatic spikes.

    Parameters
    ----------
    cell : mtlneuron.cells.Cell
        The cell to imitate; its site table (``tau1``, ``tau2`` in ms) and
        segment names are copied into the model.
    dt : float
        Time bin of inputs and outputs (ms).
    config : SurrogateConfig or dict, optional
        Architecture; keyword arguments override single fields
        (``Surrogate(cell, hidden_size=64)``).
    meta : dict, optional
        Cell description from a checkpoint, instead of ``cell`` (used by
        :meth:`load`).

    Notes
    -----
    A new model has neutral scalers (site scale 1e-3 uS, voltage -65 +- 10 mV);
    :meth:`fit` replaces them with statistics of the training trials.
    """

    def __init__(self, cell=None, dt: float = 0.5, config: SurrogateConfig | Mapping | None = None, *,
                 meta: Mapping | None = None, **overrides: Any) -> None:
        super().__init__()
        if (cell is None) == (meta is None):
            raise ValueError("give exactly one of cell (an mtlneuron Cell) or meta (from a checkpoint)")
        try:
            ok = math.isfinite(float(dt)) and float(dt) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
        if isinstance(config, SurrogateConfig):
            config = config.to_dict()
        self.config = SurrogateConfig.from_dict({**(config or {}), **overrides})
        self.meta = _meta_from_cell(cell) if meta is None else _check_meta(meta)
        self.dt = float(dt)
        self.training_info: dict | None = None
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        cfg, n_sites, n_seg = self.config, self.n_sites, self.n_segments
        f32 = torch.float32
        # scalers: persistent buffers, so they travel with the weights and the device
        self.register_buffer("site_scale", torch.full((n_sites,), 1e-3, dtype=f32))
        self.register_buffer("v_mean", torch.full((n_seg,), -65.0, dtype=f32))
        self.register_buffer("v_std", torch.full((n_seg,), 10.0, dtype=f32))
        self.register_buffer("dipole_mean", torch.zeros(3, dtype=f32))
        self.register_buffer("dipole_std", torch.ones(3, dtype=f32))
        self.register_buffer("dipole_active", torch.ones(3, dtype=f32))
        self.register_buffer("spike_pos_weight", torch.ones((), dtype=f32))
        self.register_buffer("spike_prob_threshold", torch.full((), 0.5, dtype=f32))
        self.register_buffer("ion_mean", torch.zeros(len(cfg.ions), dtype=f32))
        self.register_buffer("ion_std", torch.ones(len(cfg.ions), dtype=f32))

        self.input_proj = nn.Linear(n_sites, cfg.input_channels)
        n_features = cfg.input_channels
        if cfg.synaptic_filter:
            mask, decay1, decay2 = self._kernel_groups()
            self.register_buffer("filter_mask", torch.tensor(mask, dtype=f32), persistent=False)
            self.register_buffer("decay1", torch.tensor(decay1, dtype=f32), persistent=False)
            self.register_buffer("decay2", torch.tensor(decay2, dtype=f32), persistent=False)
            self.register_buffer("kernel_gain", torch.tensor(_kernel_gain(decay1, decay2), dtype=f32),
                                 persistent=False)
            self.filter_proj = nn.Parameter(torch.empty(mask.shape, dtype=f32))
            with torch.no_grad():  # like nn.Linear, with each channel's fan-in = its group's size
                bound = torch.tensor(1.0 / np.sqrt(mask.sum(axis=1, keepdims=True)), dtype=f32)
                self.filter_proj.copy_((torch.rand(mask.shape) * 2 - 1) * bound)
            n_features += mask.shape[0]
        convs, c_in = [], n_features
        for c_out, dil in zip(cfg.conv_channels, cfg.dilations):
            convs.append(_CausalConv(c_in, c_out, cfg.kernel_size, dil))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.act = nn.GELU()
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(c_in, cfg.hidden_size, cfg.num_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        with torch.no_grad():  # forget-gate bias 1: remember by default
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[cfg.hidden_size:2 * cfg.hidden_size].fill_(1.0)
        self.v_head = _head(cfg.hidden_size, cfg.head_hidden, n_seg)
        self.dipole_head = _head(cfg.hidden_size, cfg.head_hidden, 3)
        self.spike_head = _head(cfg.hidden_size, cfg.head_hidden, 1)
        self.ion_head = _head(cfg.hidden_size, cfg.head_hidden, len(cfg.ions)) if cfg.ions else None

    def _kernel_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Filtered channels: (channel, site) 0/1 mask and each channel's two filter decays.

        Sites sharing ``(tau1, tau2)`` form a group; each group gets
        ``filter_channels`` channels that see only its sites.
        """
        tau = np.stack([np.asarray(self.meta["sites"][c], dtype=float) for c in ("tau1", "tau2")], axis=1)
        groups = np.unique(tau, axis=0)
        k = self.config.filter_channels
        mask = np.zeros((len(groups) * k, tau.shape[0]))
        decays = np.zeros((2, len(groups) * k))
        for g, pair in enumerate(groups):
            mask[g * k:(g + 1) * k, np.all(tau == pair, axis=1)] = 1.0
            decays[:, g * k:(g + 1) * k] = np.where(pair > 0, np.exp(-self.dt / np.where(pair > 0, pair, 1.0)),
                                                    0.0)[:, None]
        return mask, decays[0], decays[1]

    # -- description ----------------------------------------------------------------------------
    @property
    def n_sites(self) -> int:
        """Number of synapse sites (input channels)."""
        return len(self.meta["sites"]["tau1"])

    @property
    def n_segments(self) -> int:
        """Number of segments (voltage outputs)."""
        return len(self.meta["segment_names"])

    @property
    def segment_names(self) -> list[str]:
        return list(self.meta["segment_names"])

    @property
    def soma_index(self) -> int:
        return int(self.meta["soma_index"])

    @property
    def cell_key(self) -> str:
        return str(self.meta["cell_key"])

    @property
    def cell_name(self) -> str:
        return str(self.meta["cell_name"])

    @property
    def spike_threshold(self) -> float:
        """The somatic voltage threshold (mV) of the ground-truth spikes it learned."""
        return float(self.meta["spike_threshold"])

    @property
    def device(self) -> torch.device:
        return self.site_scale.device

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return (f"cell={self.cell_name!r} ({self.cell_key}), dt={self.dt} ms, {self.n_sites} sites, "
                f"{self.n_segments} segments, {self.n_parameters} parameters")

    # -- scalers --------------------------------------------------------------------------------
    def set_scalers(self, *, site_scale=None, v_mean=None, v_std=None, dipole_mean=None, dipole_std=None,
                    dipole_active=None, spike_pos_weight=None, ion_mean=None, ion_std=None) -> None:
        """Set input / output scalers (array-likes in uS, mV, nA um, nA; see ``docs/surrogate.md``)."""
        values = dict(site_scale=site_scale, v_mean=v_mean, v_std=v_std, dipole_mean=dipole_mean,
                      dipole_std=dipole_std, dipole_active=dipole_active, spike_pos_weight=spike_pos_weight,
                      ion_mean=ion_mean, ion_std=ion_std)
        for name, value in values.items():
            if value is None:
                continue
            buf = getattr(self, name)
            t = torch.as_tensor(np.asarray(value, dtype=float), dtype=buf.dtype, device=buf.device)
            if t.shape != buf.shape:
                raise ValueError(f"scaler {name} must have shape {tuple(buf.shape)}, got {tuple(t.shape)}")
            if not torch.isfinite(t).all():
                raise ValueError(f"scaler {name} has non-finite values: {t.tolist()}")
            if name in ("site_scale", "v_std", "dipole_std", "ion_std") and not (t > 0).all():
                raise ValueError(f"scaler {name} must be > 0, got {t.tolist()}")
            buf.copy_(t)

    def scalers(self) -> dict:
        """The scalers as plain lists (readable copy stored in checkpoints)."""
        names = ["site_scale", "v_mean", "v_std", "dipole_mean", "dipole_std", "dipole_active",
                 "spike_pos_weight", "spike_prob_threshold", "ion_mean", "ion_std"]
        out = {n: getattr(self, n).detach().cpu().tolist() for n in names}
        out["v_clip"] = self.config.v_clip
        out["units"] = {"site_scale": "uS", "v_mean": "mV", "v_std": "mV", "dipole_mean": "nA um",
                        "dipole_std": "nA um", "v_clip": "mV", "ion_mean": "nA", "ion_std": "nA"}
        return out

    # -- running --------------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1, device=None) -> SurrogateState:
        """The state of ``batch_size`` cells at rest with no past input (t = 0)."""
        device = self.device if device is None else torch.device(device)
        dtype = self.site_scale.dtype
        n_filt = self.filter_proj.shape[0] if self.config.synaptic_filter else 0
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        conv = tuple(zeros(batch_size, c.conv.in_channels, c.context) for c in self.convs)
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        return SurrogateState(zeros(batch_size, n_filt), zeros(batch_size, n_filt), conv, zeros(*shape),
                              zeros(*shape))

    def _features(self, x: torch.Tensor, state: SurrogateState):
        # u = x / site_scale enters only linearly, so the scale is folded into the projection
        # weights: one matmul over the raw drive (elementwise work on (time, site) dominated).
        weight = self.input_proj.weight
        if self.config.synaptic_filter:
            weight = torch.cat([weight, self.filter_proj * self.filter_mask])
        proj = x @ (weight / self.site_scale).T
        raw = proj[..., :self.config.input_channels] + self.input_proj.bias
        if not self.config.synaptic_filter:
            return raw, state.filt1, state.filt2
        g1, f1 = _exp_filter(proj[..., self.config.input_channels:], self.decay1, state.filt1)
        g2, f2 = _exp_filter(g1, self.decay2, state.filt2)
        return torch.cat([raw, g2 * self.kernel_gain], dim=-1), f1, f2

    def forward(self, x: torch.Tensor, state: SurrogateState | None = None
                ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Standardised outputs for a (batch, time, site) drive in uS.

        Returns ``({"v": z-scored (batch, time, segment), "dipole": z-scored
        (batch, time, 3), "spike_logit": (batch, time)}, new_state)``. Training
        uses this; :meth:`run` and :meth:`step` return physical units.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_sites:
            raise ValueError(f"inputs must be (batch, time, {self.n_sites} sites), got shape {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        feats, f1, f2 = self._features(x.to(self.site_scale.dtype), state)
        h = feats.transpose(1, 2)  # (batch, channel, time)
        buffers = []
        for conv, buf in zip(self.convs, state.conv):
            h, new_buf = conv(h, buf)
            h = self.act(h)
            buffers.append(new_buf)
        h = self.drop(h.transpose(1, 2))
        h, (hn, cn) = self.lstm(h, (state.h, state.c))
        h = self.drop(h)
        out = {"v": self.v_head(h), "dipole": self.dipole_head(h), "spike_logit": self.spike_head(h)[..., 0]}
        if self.ion_head is not None:
            out["i_ion"] = self.ion_head(h)
        return out, SurrogateState(f1, f2, tuple(buffers), hn, cn)

    def to_physical(self, out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Standardised outputs -> ``v`` (mV), ``dipole`` (nA um), ``spike_prob``.

        ``spike_prob`` removes the positive-class weight of training from the
        logit (``sigmoid(logit - log(pos_weight))``), so it estimates the
        probability of a spike in the bin.
        """
        phys = {
            "v": out["v"] * self.v_std + self.v_mean,
            "dipole": out["dipole"] * self.dipole_std * self.dipole_active + self.dipole_mean,
            "spike_prob": torch.sigmoid(out["spike_logit"] - torch.log(self.spike_pos_weight)),
        }
        if "i_ion" in out:
            phys["i_ion"] = out["i_ion"] * self.ion_std + self.ion_mean
        return phys

    def run(self, x: torch.Tensor, state: SurrogateState | None = None
            ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Run a whole sequence: (batch, time, site) drive in uS -> physical outputs.

        Parameters
        ----------
        x : torch.Tensor
            Binned drive (batch, time, site), uS per ``dt`` bin.
        state : SurrogateState, optional
            State to continue from (default: at rest, :meth:`initial_state`).

        Returns
        -------
        outputs : dict
            ``v`` (batch, time, segment) mV, ``dipole`` (batch, time, 3) nA um,
            ``spike_prob`` (batch, time); ``i_ion`` (batch, time, ion) nA for a
            model with ``ions``.
        state : SurrogateState
            State after the last step (continue with :meth:`run` or :meth:`step`).
        """
        out, state = self(x, state)
        return self.to_physical(out), state

    def step(self, inputs_t: torch.Tensor, state: SurrogateState | None = None
             ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Advance a batch of cells by one ``dt`` bin (streaming, O(1) per step).

        Parameters
        ----------
        inputs_t : torch.Tensor
            Summed event weight per site in this bin, (batch, site) or (site,), uS.
        state : SurrogateState, optional
            From the previous step (default: at rest).

        Returns
        -------
        outputs : dict
            ``v`` (batch, segment) mV, ``dipole`` (batch, 3) nA um, ``spike_prob`` (batch,).
        state : SurrogateState
        """
        if inputs_t.dim() == 1:
            inputs_t = inputs_t[None]
        out, state = self.run(inputs_t[:, None, :], state)
        return {k: v[:, 0] for k, v in out.items()}, state

    # -- prediction -----------------------------------------------------------------------------
    def predict(self, data, *, dt: float | None = None, batch_size: int = 16, chunk: int = 4096,
                spike_prob_threshold: float | None = None) -> xr.Dataset:
        """Predict voltages, dipole and spikes for drives or recorded trials.

        Parameters
        ----------
        data : xarray.Dataset or list of them
            An events drive (``mtl.inputs``), a trial from ``mtl.simulate`` or a
            dataset from ``mtl.datasets`` (their ``inputs`` variable is used), or
            a list of drives / trials of equal duration.
        dt : float, optional
            Expected time bin (ms); must equal the model's ``dt`` if given.
        batch_size : int
            Trials run together.
        chunk : int
            Time steps per forward pass (bounds memory; results do not depend on it).
        spike_prob_threshold : float, optional
            Threshold on ``spike_prob`` for ``spike_times`` (default: the one
            tuned on validation data during training).

        Returns
        -------
        xarray.Dataset
            ``v`` (time, segment) mV, ``dipole`` (time, axis) nA um,
            ``spike_prob`` (time), ``spike_times`` (spike) ms (NaN-padded), and
            ``i_ion`` (time, ion) nA for a model with ``ions``; with a leading
            ``trial`` dim for a list or a multi-trial dataset.

        Raises
        ------
        ValueError
            For a drive or dataset made for another cell (site count or cell
            key), a bad drive (NaN weights, zero duration, ...), NaN inputs or
            a ``dt`` different from the model's.
        """
        if dt is not None and not _same_dt(dt, self.dt):
            raise ValueError(f"dt {dt!r} ms does not match this model's dt {self.dt} ms")
        if int(batch_size) < 1 or int(chunk) < 1:
            raise ValueError(f"batch_size and chunk must be >= 1, got {batch_size!r}, {chunk!r}")
        x, trial_coord = self._gather_inputs(data)
        thr = float(self.spike_prob_threshold) if spike_prob_threshold is None else float(spike_prob_threshold)
        if not 0.0 < thr < 1.0:
            raise ValueError(f"spike_prob_threshold must be in (0, 1), got {thr!r}")
        outs = self._predict_arrays(x, batch_size=int(batch_size), chunk=int(chunk))
        ds = self._to_dataset(outs, thr)
        if trial_coord is None:
            return ds.isel(trial=0, drop=True).assign(spike_times=_drop_nan_tail(ds["spike_times"].values[0]))
        return ds.assign_coords(trial=trial_coord)

    def _predict_arrays(self, x: np.ndarray, batch_size: int, chunk: int) -> dict[str, np.ndarray]:
        was_training = self.training
        self.eval()
        results: dict[str, list] = {"v": [], "dipole": [], "spike_prob": []}
        if self.config.ions:
            results["i_ion"] = []
        try:
            with torch.no_grad():
                for b in range(0, x.shape[0], batch_size):
                    xb = torch.as_tensor(x[b:b + batch_size], dtype=self.site_scale.dtype, device=self.device)
                    state, parts = None, []
                    for s in range(0, xb.shape[1], chunk):
                        out, state = self.run(xb[:, s:s + chunk], state)
                        parts.append({k: v.cpu().numpy() for k, v in out.items()})
                    for k in results:
                        results[k].append(np.concatenate([p[k] for p in parts], axis=1))
        finally:
            self.train(was_training)
        return {k: np.concatenate(v, axis=0) for k, v in results.items()}

    def _gather_inputs(self, data) -> tuple[np.ndarray, np.ndarray | None]:
        """(trial, time, site) binned inputs (uS) and the trial coordinate (None: single trial)."""
        if isinstance(data, (list, tuple)):
            if not data:
                raise ValueError("predict got an empty list of drives")
            parts = [self._gather_inputs(d)[0] for d in data]
            lengths = {p.shape[1] for p in parts}
            if len(lengths) > 1:
                raise ValueError(f"drives in one predict call must have the same duration; got "
                                 f"{sorted(n * self.dt for n in lengths)} ms")
            return np.concatenate(parts, axis=0), np.arange(len(parts))
        if not isinstance(data, xr.Dataset):
            raise ValueError(f"predict expects an xarray.Dataset (drive or trials) or a list of them, "
                             f"got {type(data).__name__}")
        if {"time", "site", "weight"} <= set(data.data_vars):
            return self._bin_drive(data)[None], None
        if "inputs" in data.data_vars:
            return self._dataset_inputs(data)
        raise ValueError("predict needs a drive (variables time, site, weight) or a dataset with an "
                         f"'inputs' variable; got variables {sorted(data.data_vars)}")

    def _bin_drive(self, drive: xr.Dataset) -> np.ndarray:
        n_drive = drive.attrs.get("n_sites")
        if n_drive is not None and int(n_drive) != self.n_sites:
            raise ValueError(f"drive was made for {int(n_drive)} sites (cell {drive.attrs.get('cell')!r}) but "
                             f"this surrogate of {self.cell_name!r} has {self.n_sites} sites")
        cell = drive.attrs.get("cell")
        if cell is not None and str(cell) != self.cell_name:
            raise ValueError(f"drive was made for cell {cell!r}, this surrogate is for {self.cell_name!r}")
        _inputs.validate(drive.assign_attrs(n_sites=self.n_sites))
        return _inputs.bin(drive, self.dt, self.n_sites).values.astype(np.float32)

    def _dataset_inputs(self, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray | None]:
        key = ds.attrs.get("cell_key")
        if key is not None and str(key) != self.cell_key:
            raise ValueError(f"dataset was simulated for cell key {key!r}, this surrogate is for "
                             f"{self.cell_key!r} ({self.cell_name})")
        ds_dt = ds.attrs.get("dt")
        if ds_dt is not None and not _same_dt(ds_dt, self.dt):
            raise ValueError(f"dataset dt {float(ds_dt)} ms does not match this model's dt {self.dt} ms")
        inp = ds["inputs"]
        if inp.sizes.get("site") != self.n_sites:
            raise ValueError(f"dataset inputs have {inp.sizes.get('site')} sites, this surrogate of "
                             f"{self.cell_name!r} has {self.n_sites}")
        if inp.sizes.get("time", 0) == 0:
            raise ValueError("dataset inputs have no time bins (zero duration)")
        has_trial = "trial" in inp.dims
        inp = inp.transpose(*(["trial"] if has_trial else []), "time", "site")
        x = np.asarray(inp.values, dtype=np.float32)
        bad = np.argwhere(~np.isfinite(x) | (x < 0))
        if bad.size:
            where = dict(zip(inp.dims, bad[0].tolist()))
            raise ValueError(f"dataset inputs contain a NaN, infinite or negative value "
                             f"({x[tuple(bad[0])]!r} uS at {where})")
        if has_trial:
            return x, np.asarray(inp["trial"].values) if "trial" in inp.coords else np.arange(x.shape[0])
        return x[None], None

    def _to_dataset(self, outs: Mapping[str, np.ndarray], threshold: float) -> xr.Dataset:
        n_trials, n_time = outs["v"].shape[:2]
        spikes = [detect_spikes(p, self.dt, threshold) for p in outs["spike_prob"]]
        width = max([s.size for s in spikes] + [0])
        padded = np.full((n_trials, width), np.nan)
        for k, s in enumerate(spikes):
            padded[k, : s.size] = s
        clip = self.config.v_clip
        v_note = f" (trained on min(v, {clip} mV): spikes are in spike_prob)" if clip is not None else ""
        coords = {
            "trial": np.arange(n_trials),
            "time": ("time", np.arange(n_time) * self.dt, {"units": "ms", "long_name": "bin start"}),
            "segment": np.asarray(self.segment_names, dtype=object),
            "region": ("segment", np.asarray(self.meta["segment_regions"], dtype=str)),
            "axis": list(AXES),
        }
        if self.config.ions:
            coords["ion"] = list(self.config.ions)
        ions = {"i_ion": (("trial", "time", "ion"), outs["i_ion"],
                          {"units": "nA", "long_name": "somatic ionic current (surrogate, outward +)"})} \
            if self.config.ions else {}
        return xr.Dataset(
            {
                **ions,
                "v": (("trial", "time", "segment"), outs["v"],
                      {"units": "mV", "long_name": "membrane potential (surrogate)" + v_note}),
                "dipole": (("trial", "time", "axis"), outs["dipole"],
                           {"units": "nA um", "long_name": "current dipole moment (surrogate)"}),
                "spike_prob": (("trial", "time"), outs["spike_prob"],
                               {"units": "1", "long_name": "probability of a somatic spike in the bin"}),
                "spike_times": (("trial", "spike"), padded,
                                {"units": "ms", "long_name": "predicted somatic spike times (NaN-padded)",
                                 "spike_prob_threshold": threshold}),
            },
            coords=coords,
            attrs={"cell": self.cell_name, "cell_key": self.cell_key, "dt": self.dt,
                   "spike_threshold": self.spike_threshold, "source": "mtlneuron.Surrogate",
                   "v_clip": "none" if clip is None else clip,
                   "mtlneuron_version": _library_version()},
        )

    # -- training -------------------------------------------------------------------------------
    def fit(self, dataset, **kwargs: Any) -> "Surrogate":
        """Train this model on a dataset; see :func:`mtlneuron.train.fit` for the options.

        Returns ``self`` (with the best validation weights and ``training_info``).
        """
        from . import train

        return train.fit(dataset, model=self, **kwargs)

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, state_dict: Mapping | None = None, resume: Mapping | None = None) -> dict:
        """Everything needed to rebuild and use this model, as a plain dict.

        ``state_dict`` defaults to the current weights; ``resume`` is the
        training state added by :mod:`mtlneuron.train`.
        """
        sd = self.state_dict() if state_dict is None else state_dict
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mtlneuron_version": _library_version(),
            "cell_key": self.cell_key,
            "cell_name": self.cell_name,
            "dt": self.dt,
            "spike_threshold": self.spike_threshold,
            "config": self.config.to_dict(),
            "meta": _plain(self.meta),
            "scalers": self.scalers(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in sd.items()},
            "training": _plain(self.training_info),
            "resume": resume,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint atomically (temporary file, then ``os.replace``).

        Returns
        -------
        Path
            The written file.
        """
        return write_checkpoint(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping, cell=None, *, check_version: bool = True,
                        source: str = "checkpoint") -> "Surrogate":
        """Rebuild a model from a dict returned by :func:`read_checkpoint`."""
        if check_version:
            _check_version(str(ckpt["mtlneuron_version"]), source)
        if cell is not None:
            _check_cell(ckpt, cell, source)
        try:
            model = cls(meta=ckpt["meta"], dt=float(ckpt["dt"]), config=ckpt["config"])
            model.load_state_dict(ckpt["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{source} does not hold a usable Surrogate ({err})") from None
        model.training_info = ckpt.get("training")
        model.eval()
        return model

    @classmethod
    def load(cls, path: str | os.PathLike, cell=None, *, check_version: bool = True) -> "Surrogate":
        """Load a checkpoint written by :meth:`save` or by training.

        Parameters
        ----------
        path : str or Path
            Checkpoint file.
        cell : mtlneuron.cells.Cell, optional
            If given, the checkpoint must have been trained for this cell
            (same cell key, sites and segments).
        check_version : bool
            Refuse checkpoints written by an incompatible mtlneuron version
            (different major version, or different minor version before 1.0).

        Returns
        -------
        Surrogate
            In eval mode, on the CPU.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            For a corrupted or foreign file, another cell, or an incompatible version.
        """
        ckpt = read_checkpoint(path)
        return cls.from_checkpoint(ckpt, cell, check_version=check_version, source=f"checkpoint {str(path)!r}")

    @classmethod
    def pretrained(cls, name: str, cell=None) -> "Surrogate":
        """Load the pretrained surrogate ``data/<name>.pt`` shipped with mtlneuron.

        Looks in ``mtlneuron/data/`` (installed package) and the repository's
        ``data/`` folder (see :func:`data_dirs`).

        Raises
        ------
        FileNotFoundError
            Listing the pretrained models that exist, if there is no ``<name>.pt``.
        """
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name.startswith("."):
            raise ValueError(f"pretrained model name must be a plain name like 'l5pc', got {name!r}")
        dirs = data_dirs()
        for d in dirs:
            path = d / f"{name}.pt"
            if path.is_file():
                return cls.load(path, cell)
        found = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.pt")})
        raise FileNotFoundError(f"no pretrained surrogate {name!r}: looked for {name}.pt in "
                                f"{', '.join(str(d) for d in dirs)}; available: {', '.join(found) or 'none'}")


# -- spikes --------------------------------------------------------------------------------------

def detect_spikes(spike_prob: np.ndarray, dt: float, threshold: float = 0.5) -> np.ndarray:
    """Spike times (ms) from a per-bin spike probability.

    Every run of consecutive bins with ``spike_prob >= threshold`` is one spike,
    placed at the centre of its most probable bin (``(k + 0.5) * dt``).

    Parameters
    ----------
    spike_prob : array (time,)
        Probability per bin.
    dt : float
        Bin width (ms).
    threshold : float
        Detection threshold in (0, 1).
    """
    p = np.asarray(spike_prob, dtype=float)
    above = np.concatenate([[False], p >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]
    peaks = [s + int(np.argmax(p[s:e])) for s, e in zip(starts, stops)]
    return (np.asarray(peaks, dtype=float) + 0.5) * float(dt)


def _drop_nan_tail(a: np.ndarray) -> tuple:
    return ("spike", a[np.isfinite(a)], {"units": "ms", "long_name": "predicted somatic spike times"})


# -- checkpoint helpers --------------------------------------------------------------------------

def data_dirs() -> list[Path]:
    """Folders searched for pretrained models: the ``mtlneuron.data`` package.

    pyproject.toml installs the repository's ``data/`` as ``mtlneuron.data``, so
    this is ``data/`` in a source or editable install and
    ``site-packages/mtlneuron/data`` after a plain ``pip install .``.
    """
    from . import data

    return [Path(data.__file__).resolve().parent]


def write_checkpoint(ckpt: Mapping, path: str | os.PathLike) -> Path:
    """Save a checkpoint dict atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(path.parent)!r} does not exist")
    with _util.atomic_path(path) as tmp:
        torch.save(dict(ckpt), tmp)
    return path


_REQUIRED = ("format_version", "mtlneuron_version", "cell_key", "cell_name", "dt", "spike_threshold", "config",
             "meta", "scalers", "state_dict")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read and sanity-check a Surrogate checkpoint (no code is unpickled).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupted, not a torch file, or not an mtlneuron
        Surrogate checkpoint of a known format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad bytes (pickle, zip, EOF, runtime)
        raise ValueError(f"{str(path)!r} is not a readable mtlneuron checkpoint: corrupted, truncated or "
                         f"not a plain torch file ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = f"format {ckpt.get('format')!r}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{str(path)!r} is a torch file but not an mtlneuron Surrogate checkpoint ({what})")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: missing {missing}")
    fv = ckpt["format_version"]
    if fv == 1:
        raise ValueError(f"checkpoint {str(path)!r} has format version 1 (per-site input features, "
                         f"mtlneuron before the learned input projection); this mtlneuron "
                         f"({_library_version()}) reads version {FORMAT_VERSION}: retrain the model")
    if fv != FORMAT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {fv!r}; this mtlneuron "
                         f"({_library_version()}) reads version {FORMAT_VERSION}")
    return ckpt


def _library_version() -> str:
    import mtlneuron

    return str(getattr(mtlneuron, "__version__", "0.0.0+src"))


def _major_minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"^\s*(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _check_version(saved: str, source: str) -> None:
    """Same major version, and same minor version while the major is 0."""
    current = _library_version()
    a, b = _major_minor(saved), _major_minor(current)
    ok = a is not None and b is not None and a[0] == b[0] and ((a[0] > 0 and a[1] <= b[1]) or a == b)
    if not ok:
        raise ValueError(f"{source} was written by mtlneuron {saved}, which is not compatible with the "
                         f"installed mtlneuron {current}; retrain the model, or pass check_version=False "
                         f"at your own risk")


def _check_cell(ckpt: Mapping, cell, source: str) -> None:
    if cell.key != ckpt["cell_key"]:
        raise ValueError(f"{source} was trained for cell {ckpt['cell_name']!r} (key {ckpt['cell_key']}), "
                         f"not for cell {cell.name!r} (key {cell.key})")
    mine = _meta_from_cell(cell)
    theirs = ckpt["meta"]
    if mine["segment_names"] != list(theirs["segment_names"]):
        raise ValueError(f"{source}: the segments of cell {cell.name!r} differ from the checkpoint's")
    for col in ("segment", "tau1", "tau2", "kind"):
        if list(mine["sites"][col]) != list(theirs["sites"][col]):
            raise ValueError(f"{source}: site table column {col!r} of cell {cell.name!r} differs from the "
                             f"checkpoint's ({len(mine['sites'][col])} vs {len(theirs['sites'][col])} sites)")


def _meta_from_cell(cell) -> dict:
    """The cell description a Surrogate keeps: site table, segments, threshold."""
    for attr in ("sites", "segments", "key", "name", "spike_threshold"):
        if not hasattr(cell, attr):
            raise ValueError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    sites, seg = cell.sites, cell.segments
    table = {}
    for col in _SITE_COLUMNS:
        values = sites[col].values
        if values.dtype.kind not in "fiu":
            values = values.astype(str)
        table[col] = values.tolist()
    return _check_meta({
        "cell_key": cell.key,
        "cell_name": cell.name,
        "spike_threshold": float(cell.spike_threshold),
        "sites": table,
        "segment_names": [str(s) for s in seg["segment"].values],
        "segment_regions": [str(r) for r in seg["region"].values],
        "soma_index": int(seg.attrs["soma_index"]),
    })


def _check_meta(meta: Mapping) -> dict:
    needed = ("cell_key", "cell_name", "spike_threshold", "sites", "segment_names", "segment_regions",
              "soma_index")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise ValueError(f"cell description is missing {missing}")
    meta = _plain(meta)
    n = len(meta["sites"]["tau1"])
    if n == 0 or any(len(meta["sites"][c]) != n for c in ("tau1", "tau2")):
        raise ValueError("site table must list tau1 and tau2 for every site")
    if not 0 <= meta["soma_index"] < len(meta["segment_names"]):
        raise ValueError(f"soma_index {meta['soma_index']} out of range")
    return meta


def _plain(obj):
    """Deep copy into plain Python containers (safe for ``torch.load(weights_only=True)``)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _same_dt(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return False
