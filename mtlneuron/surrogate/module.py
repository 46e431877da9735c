"""The :class:`Surrogate` nn.Module (tensor in, tensor out), its configuration and streaming state.

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
* **spike history** (``spike_history_ms``, off by default): the cell's own
  past somatic spikes as exponential traces with the given time constants
  (``trace[t] = decay * trace[t-1] + spike[t-1]``, spikes of earlier bins
  only). Training feeds the recorded spikes (teacher forcing, so whole
  windows still run in parallel); prediction and networks feed back the
  model's own spikes, one step at a time (an upward crossing of
  ``spike_prob_threshold``, the rule the network engine uses).
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

The user-facing conveniences are methods that delegate:
:meth:`~Surrogate.predict` to :mod:`mtlneuron.surrogate.predict`,
:meth:`~Surrogate.save`, :meth:`~Surrogate.load` and
:meth:`~Surrogate.pretrained` to :mod:`mtlneuron.surrogate.checkpoint`, and
:meth:`~Surrogate.fit` (at call time only) to :mod:`mtlneuron.training`.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr
from torch import nn

from ..conventions import DEFAULT_DT, V_CLIP, check_dt
from . import checkpoint as ckpt_io
from . import predict as _predict
from .layers import CausalConv, exp_filter, kernel_gain, kernel_groups, lstm_step, make_head

__all__ = ["Surrogate", "SurrogateConfig", "SurrogateState"]

# the scaler buffers, in the order of Surrogate.scalers() (names are state_dict keys)
SCALER_NAMES = ("site_scale", "v_mean", "v_std", "dipole_mean", "dipole_std", "dipole_active", "spike_pos_weight",
                "spike_prob_threshold", "ion_mean", "ion_std")


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
        Voltage targets are ``min(v, v_clip)`` (mV, default
        :data:`mtlneuron.conventions.V_CLIP`); spikes are the spike head's
        job. ``None`` trains on the raw voltage.
    ions : tuple of str or None
        Somatic ionic currents with their own head (``("na", "k")`` for the
        dataset variable ``i_ion``; empty: none). ``None`` (the default): the
        currents the training data record, decided when :meth:`Surrogate.fit`
        first trains the model (none until then), so ``Surrogate(cell).fit(data)``
        and ``python -m mtlneuron.train --data data`` build the same model.
    max_pos_weight : float
        Upper bound of the positive-class weight of the spike loss.
    spike_history_ms : tuple of float
        Time constants (ms) of the spike-history traces fed back as features
        (empty, the default: no spike history).
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
    v_clip: float | None = V_CLIP
    max_pos_weight: float = 100.0
    ions: tuple[str, ...] | None = None
    spike_history_ms: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        self.spike_history_ms = tuple(float(t) for t in self.spike_history_ms)
        if not all(np.isfinite(t) and t > 0 for t in self.spike_history_ms):
            raise ValueError(f"spike_history_ms must be time constants > 0 ms, got {list(self.spike_history_ms)}")
        self.ions = None if self.ions is None else tuple(str(i) for i in self.ions)
        if self.ions is not None and len(set(self.ions)) != len(self.ions):
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
        d["ions"] = None if d["ions"] is None else list(d["ions"])
        d["spike_history_ms"] = list(d["spike_history_ms"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SurrogateConfig":
        """The config of :meth:`to_dict` (unknown keys are an error)."""
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
    spike_trace : torch.Tensor
        (batch, trace) spike-history features of the next bin (empty without
        ``spike_history_ms``).
    spike_prob : torch.Tensor
        (batch,) spike probability of the last bin (for the upward-crossing rule).
    """

    filt1: torch.Tensor
    filt2: torch.Tensor
    conv: tuple[torch.Tensor, ...]
    h: torch.Tensor
    c: torch.Tensor
    spike_trace: torch.Tensor
    spike_prob: torch.Tensor

    def _map(self, fn) -> "SurrogateState":
        return SurrogateState(fn(self.filt1), fn(self.filt2), tuple(fn(b) for b in self.conv),
                              fn(self.h), fn(self.c), fn(self.spike_trace), fn(self.spike_prob))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Every tensor of the state."""
        return (self.filt1, self.filt2, *self.conv, self.h, self.c, self.spike_trace, self.spike_prob)

    def detach(self) -> "SurrogateState":
        """The same state cut from the autograd graph (truncated backpropagation)."""
        return self._map(lambda t: t.detach())

    def to(self, device) -> "SurrogateState":
        """The state on another device."""
        return self._map(lambda t: t.to(device))

    @property
    def batch_size(self) -> int:
        return int(self.h.shape[1])


# -- the model ---------------------------------------------------------------------------------

class Surrogate(nn.Module):
    """CNN-LSTM surrogate of one cell: every segment's voltage, the dipole, somatic spikes.

    Parameters
    ----------
    cell : mtlneuron.cells.Cell
        The cell to imitate; its site table (``tau1``, ``tau2`` in ms) and
        segment names are copied into the model.
    dt : float
        Time bin of inputs and outputs (ms; a multiple of NEURON's step,
        :func:`mtlneuron.conventions.check_dt`).
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

    def __init__(self, cell=None, dt: float = DEFAULT_DT, config: SurrogateConfig | Mapping | None = None, *,
                 meta: Mapping | None = None, **overrides: Any) -> None:
        super().__init__()
        if (cell is None) == (meta is None):
            raise ValueError("give exactly one of cell (an mtlneuron Cell) or meta (from a checkpoint)")
        dt = check_dt(dt)
        if isinstance(config, SurrogateConfig):
            config = config.to_dict()
        self.config = SurrogateConfig.from_dict({**(config or {}), **overrides})
        self.meta = ckpt_io.meta_from_cell(cell) if meta is None else ckpt_io.check_meta(meta)
        self.dt = dt
        self.training_info: dict | None = None
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        # attribute and buffer names are the state_dict keys of the shipped checkpoints: keep them
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
        self.register_buffer("ion_mean", torch.zeros(len(cfg.ions or ()), dtype=f32))
        self.register_buffer("ion_std", torch.ones(len(cfg.ions or ()), dtype=f32))
        # learned spike waveforms (surrogate.waveforms): (lag, segment + 3 dipole axes); no lags = none
        self.register_buffer("spike_waveform", torch.zeros(0, n_seg + 3, dtype=f32))
        self.register_buffer("spike_waveform_lag0", torch.zeros((), dtype=torch.int64))

        self.input_proj = nn.Linear(n_sites, cfg.input_channels)
        n_features = cfg.input_channels
        if cfg.synaptic_filter:
            mask, decay1, decay2 = kernel_groups(self.meta["sites"], self.dt, cfg.filter_channels)
            self.register_buffer("filter_mask", torch.tensor(mask, dtype=f32), persistent=False)
            self.register_buffer("decay1", torch.tensor(decay1, dtype=f32), persistent=False)
            self.register_buffer("decay2", torch.tensor(decay2, dtype=f32), persistent=False)
            self.register_buffer("kernel_gain", torch.tensor(kernel_gain(decay1, decay2), dtype=f32),
                                 persistent=False)
            self.filter_proj = nn.Parameter(torch.empty(mask.shape, dtype=f32))
            with torch.no_grad():  # like nn.Linear, with each channel's fan-in = its group's size
                bound = torch.tensor(1.0 / np.sqrt(mask.sum(axis=1, keepdims=True)), dtype=f32)
                self.filter_proj.copy_((torch.rand(mask.shape) * 2 - 1) * bound)
            n_features += mask.shape[0]
        decay = np.exp(-self.dt / np.asarray(cfg.spike_history_ms, dtype=float))
        self.register_buffer("history_decay", torch.tensor(decay, dtype=f32), persistent=False)
        n_features += len(cfg.spike_history_ms)
        convs, c_in = [], n_features
        for c_out, dil in zip(cfg.conv_channels, cfg.dilations):
            convs.append(CausalConv(c_in, c_out, cfg.kernel_size, dil))
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
        self.v_head = make_head(cfg.hidden_size, cfg.head_hidden, n_seg)
        self.dipole_head = make_head(cfg.hidden_size, cfg.head_hidden, 3)
        self.spike_head = make_head(cfg.hidden_size, cfg.head_hidden, 1)
        self.ion_head = make_head(cfg.hidden_size, cfg.head_hidden, len(cfg.ions)) if cfg.ions else None

    def set_ions(self, ions) -> None:
        """Give an untrained model whose ``config.ions`` was left open (``None``) a head for ``ions``.

        Called by :func:`mtlneuron.training.fit` with the currents the training
        data record; the new head (if any) comes last, as in a model built with them.
        """
        if self.config.ions is not None:
            raise ValueError(f"this model's ionic currents are fixed already: {list(self.config.ions)}")
        ions = tuple(str(i) for i in ions)
        self.config = dataclasses.replace(self.config, ions=ions)
        device = self.ion_mean.device
        self.ion_mean = torch.zeros(len(ions), dtype=torch.float32, device=device)
        self.ion_std = torch.ones(len(ions), dtype=torch.float32, device=device)
        if ions:
            self.ion_head = make_head(self.config.hidden_size, self.config.head_hidden, len(ions)).to(device)

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
        """Index of the somatic segment, as recorded in the cell's segment table."""
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

    @property
    def spike_waveform_lags(self) -> np.ndarray:
        """Lags (bins from the spike bin) of the rows of ``spike_waveform``; empty: no waveforms."""
        return int(self.spike_waveform_lag0) + np.arange(self.spike_waveform.shape[0])

    def set_spike_waveform(self, waveform: np.ndarray, lags: np.ndarray) -> None:
        """Store learned spike waveforms: (lag, segment + 3) for consecutive ``lags`` (bins)."""
        waveform, lags = np.asarray(waveform), np.asarray(lags)
        if waveform.shape != (lags.size, self.n_segments + 3) or np.any(np.diff(lags) != 1):
            raise ValueError(f"spike waveform must be (lag, {self.n_segments + 3}) over consecutive lags, got "
                             f"{waveform.shape} over lags {lags.tolist()}")
        if not np.all(np.isfinite(waveform)):
            raise ValueError("spike waveform contains NaN or infinite values")
        self.spike_waveform = torch.as_tensor(waveform, dtype=torch.float32, device=self.device)
        self.spike_waveform_lag0 = torch.tensor(int(lags[0]) if lags.size else 0, device=self.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # the spike waveform's length is data: take the stored one's (any load_state_dict, also in training)
        stored = state_dict.get(prefix + "spike_waveform")
        if stored is not None and stored.shape != self.spike_waveform.shape:
            self.spike_waveform = torch.zeros(stored.shape, dtype=self.spike_waveform.dtype, device=self.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
        out = {n: getattr(self, n).detach().cpu().tolist() for n in SCALER_NAMES}
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
                              zeros(*shape), zeros(batch_size, len(self.config.spike_history_ms)),
                              zeros(batch_size))

    @property
    def has_spike_history(self) -> bool:
        """Whether the model reads its own past spikes (``config.spike_history_ms``)."""
        return bool(self.config.spike_history_ms)

    def features(self, x: torch.Tensor, state: SurrogateState
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input features of a (batch, time, site) drive: (projected drive, kernel-filtered channels).

        Returns the (batch, time, feature) features and the two filter stages'
        states after the last step.
        """
        # u = x / site_scale enters only linearly, so the scale is folded into the projection
        # weights: one matmul over the raw drive (elementwise work on (time, site) dominated).
        weight = self.input_proj.weight
        if self.config.synaptic_filter:
            weight = torch.cat([weight, self.filter_proj * self.filter_mask])
        proj = x @ (weight / self.site_scale).T
        raw = proj[..., :self.config.input_channels] + self.input_proj.bias
        if not self.config.synaptic_filter:
            return raw, state.filt1, state.filt2
        g1, f1 = exp_filter(proj[..., self.config.input_channels:], self.decay1, state.filt1)
        g2, f2 = exp_filter(g1, self.decay2, state.filt2)
        return torch.cat([raw, g2 * self.kernel_gain], dim=-1), f1, f2

    def forward(self, x: torch.Tensor, state: SurrogateState | None = None, spikes: torch.Tensor | None = None
                ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Standardised outputs for a (batch, time, site) drive in uS.

        Returns ``({"v": z-scored (batch, time, segment), "dipole": z-scored
        (batch, time, 3), "spike_logit": (batch, time)}, new_state)``. Training
        uses this; :meth:`run` and :meth:`step` return physical units.

        ``spikes`` (batch, time), the recorded somatic spikes (0/1 per bin), are
        fed to a model with spike history (teacher forcing, as in training);
        without them such a model feeds back its own spikes one step at a time.
        Models without spike history ignore them.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_sites:
            raise ValueError(f"inputs must be (batch, time, {self.n_sites} sites), got shape {tuple(x.shape)}")
        # Non-finite values are refused where they enter: the block-parallel filter and the
        # convolutions would spread one NaN to earlier bins and into the carried state.
        x = x.to(self.site_scale.dtype)
        if (bad := _predict.first_nonfinite(x)) is not None:
            raise ValueError(f"inputs must be finite (in {x.dtype}); batch {bad[0]}, step {bad[1]} is not "
                             f"(NaN, inf, or too large for {x.dtype})")
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        elif not all(bool(torch.isfinite(t).all()) for t in state.tensors()):
            raise ValueError("the state passed in is not finite (carried over from a run that produced "
                             "NaN?); start again from initial_state()")
        if self.has_spike_history and spikes is None:
            return self._free_run(x, state)
        return self._sequence(x, state, spikes)

    def _sequence(self, x: torch.Tensor, state: SurrogateState, spikes: torch.Tensor | None
                  ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """The whole-sequence pass (spike history, if any, from the given ``spikes``)."""
        feats, f1, f2 = self.features(x, state)
        if (bad := _predict.first_nonfinite(feats)) is not None:
            raise ValueError(f"inputs too large: the input projection overflows at batch {bad[0]}, step "
                             f"{bad[1]}; drives far beyond the training range cannot be predicted")
        trace = state.spike_trace
        if self.has_spike_history:
            history, trace = self._teacher_history(spikes, state.spike_trace, x.shape[:2])
            feats = torch.cat([feats, history], dim=-1)
        h = feats.transpose(1, 2)  # (batch, channel, time)
        buffers = []
        for conv, buf in zip(self.convs, state.conv):
            h, new_buf = conv(h, buf)
            h = self.act(h)
            buffers.append(new_buf)
        h = self.drop(h.transpose(1, 2))
        h, (hn, cn) = self.lstm(h, (state.h, state.c))
        out = self._heads(self.drop(h))
        p_last = self.spike_probability(out["spike_logit"][:, -1])
        return out, SurrogateState(f1, f2, tuple(buffers), hn, cn, trace, p_last)

    def _teacher_history(self, spikes: torch.Tensor | None, trace0: torch.Tensor, shape: tuple
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Spike-history features (batch, time, trace) of recorded spikes, and the trace after the last bin."""
        if spikes is None or tuple(spikes.shape) != tuple(shape):
            got = None if spikes is None else tuple(spikes.shape)
            raise ValueError(f"a model with spike history needs spikes of shape {tuple(shape)} (batch, time) "
                             f"to run in parallel, got {got}")
        s = spikes.to(trace0.dtype)[..., None].expand(-1, -1, trace0.shape[-1])
        y, last = exp_filter(s, self.history_decay, trace0)  # y[t]: the trace the bin t + 1 reads
        return torch.cat([trace0[:, None], y[:, :-1]], dim=1), last

    def _free_run(self, x: torch.Tensor, state: SurrogateState) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """A model with spike history over a sequence, feeding back its own spikes (one step at a time)."""
        outs = []
        for t in range(x.shape[1]):
            out, state = self._advance(x[:, t], state)
            outs.append(out)
        return {k: torch.stack([o[k] for o in outs], dim=1) for k in outs[0]}, state

    def _advance(self, x_t: torch.Tensor, state: SurrogateState) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Standardised outputs of one (batch, site) bin and the next state (own spikes fed back)."""
        if self.training and self.config.dropout > 0:  # dropout: the sequence path on one bin
            zeros = x_t.new_zeros(x_t.shape[0], 1)
            raw, new = self._sequence(x_t[:, None, :].to(self.site_scale.dtype), state, zeros)
            out = {k: v[:, 0] for k, v in raw.items()}
        else:
            # one step without the sequence path's per-call set-up (fused conv / LSTM kernels cost more to
            # launch than their arithmetic at one step); equal to run() on a length-1 sequence (tested)
            feats, f1, f2 = self.features(x_t[:, None, :].to(self.site_scale.dtype), state)
            h, buffers = feats[:, 0], []
            if self.has_spike_history:
                h = torch.cat([h, state.spike_trace], dim=-1)
            for conv, buf in zip(self.convs, state.conv):
                h, new_buf = conv.step(h, buf)
                h = self.act(h)
                buffers.append(new_buf)
            h, hn, cn = lstm_step(self.lstm, h, state.h, state.c)
            out = self._heads(h)
            new = SurrogateState(f1, f2, tuple(buffers), hn, cn, state.spike_trace, state.spike_prob)
        p = self.spike_probability(out["spike_logit"])
        trace = state.spike_trace
        if self.has_spike_history:  # the engine's spike rule: an upward crossing of the threshold
            thr = self.spike_prob_threshold
            fired = ((p >= thr) & (state.spike_prob < thr)).to(p.dtype)
            trace = self.history_decay * trace + fired[:, None]
        return out, dataclasses.replace(new, spike_trace=trace, spike_prob=p)

    def _heads(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """The read-outs of the LSTM output ``h`` (any leading dims): standardised v, dipole, spike logit, ions."""
        out = {"v": self.v_head(h), "dipole": self.dipole_head(h), "spike_logit": self.spike_head(h)[..., 0]}
        if self.ion_head is not None:
            out["i_ion"] = self.ion_head(h)
        return out

    def spike_probability(self, logit: torch.Tensor) -> torch.Tensor:
        """The spike head's logit -> the probability of a spike in the bin (training's class weight removed)."""
        return torch.sigmoid(logit - torch.log(self.spike_pos_weight))

    def to_physical(self, out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Standardised outputs -> ``v`` (mV), ``dipole`` (nA um), ``spike_prob``.

        ``spike_prob`` removes the positive-class weight of training from the
        logit (``sigmoid(logit - log(pos_weight))``), so it estimates the
        probability of a spike in the bin.
        """
        phys = {
            "v": out["v"] * self.v_std + self.v_mean,
            "dipole": out["dipole"] * self.dipole_std * self.dipole_active + self.dipole_mean,
            "spike_prob": self.spike_probability(out["spike_logit"]),
        }
        if "i_ion" in out:
            phys["i_ion"] = out["i_ion"] * self.ion_std + self.ion_mean
        return phys

    def run(self, x: torch.Tensor, state: SurrogateState | None = None
            ) -> tuple[dict[str, torch.Tensor], SurrogateState]:
        """Run a whole sequence: (batch, time, site) drive in uS -> physical outputs.

        A model with spike history feeds back its own spikes here (bin by bin).

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

        Raises
        ------
        ValueError
            For non-finite inputs or state (refused before anything runs, so the
            result stays causal and no NaN state is handed on), or a non-finite
            output (naming the batch entry and time).
        """
        out, state = self(x, state)
        phys = self.to_physical(out)
        _predict.check_outputs(phys, self.dt)
        return phys, state

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
            ``v`` (batch, segment) mV, ``dipole`` (batch, 3) nA um, ``spike_prob`` (batch,),
            and ``spike_logit`` (batch,), the spike head's raw output (training in a network
            puts its loss there, as training on trials does).
        state : SurrogateState
        """
        if inputs_t.dim() == 1:
            inputs_t = inputs_t[None]
        if inputs_t.dim() != 2 or inputs_t.shape[-1] != self.n_sites:
            raise ValueError(f"inputs must be (batch, {self.n_sites} sites), got shape {tuple(inputs_t.shape)}")
        if state is None:
            state = self.initial_state(inputs_t.shape[0], inputs_t.device)
        out, state = self._advance(inputs_t, state)
        phys = {**self.to_physical(out), "spike_logit": out["spike_logit"]}
        if self.training and self.config.dropout > 0:
            _predict.check_outputs({k: v[:, None] for k, v in phys.items()}, self.dt)
        return phys, state

    # -- prediction (mtlneuron.surrogate.predict) -----------------------------------------------
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
        return _predict.predict(self, data, dt=dt, batch_size=batch_size, chunk=chunk,
                                spike_prob_threshold=spike_prob_threshold)

    # -- training (mtlneuron.training, imported at call time) -----------------------------------
    def fit(self, dataset, **kwargs: Any) -> "Surrogate":
        """Train this model on a dataset; see :func:`mtlneuron.training.fit` for the options.

        A call-time facade: :mod:`mtlneuron.training` is imported when ``fit``
        is called, never when :mod:`mtlneuron.surrogate` is imported (training
        builds on the surrogate, not the other way round).

        Returns ``self`` (with the best validation weights and ``training_info``).
        """
        from ..training import fit

        return fit(dataset, model=self, **kwargs)

    # -- checkpoints (mtlneuron.surrogate.checkpoint) -------------------------------------------
    def checkpoint(self, state_dict: Mapping | None = None, resume: Mapping | None = None) -> dict:
        """Everything needed to rebuild and use this model, as a plain dict.

        ``state_dict`` defaults to the current weights; ``resume`` is the
        training state added by :mod:`mtlneuron.training`.
        """
        return ckpt_io.checkpoint_dict(self, self.state_dict() if state_dict is None else state_dict, resume)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint atomically (temporary file, then ``os.replace``).

        Returns
        -------
        Path
            The written file.
        """
        return ckpt_io.write_checkpoint(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping, cell=None, *, check_version: bool = True,
                        source: str = "checkpoint") -> "Surrogate":
        """Rebuild a model from a dict returned by :func:`~mtlneuron.surrogate.read_checkpoint`."""
        if check_version:
            ckpt_io.check_version(str(ckpt["mtlneuron_version"]), source)
        if cell is not None:
            ckpt_io.check_cell(ckpt, cell, source)
        try:
            model = cls(meta=ckpt["meta"], dt=float(ckpt["dt"]), config=ckpt["config"])
            _load_weights(model, ckpt["state_dict"])
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
        ckpt = ckpt_io.read_checkpoint(path)
        return cls.from_checkpoint(ckpt, cell, check_version=check_version, source=f"checkpoint {str(path)!r}")

    @classmethod
    def pretrained(cls, name: str, cell=None) -> "Surrogate":
        """Load the pretrained surrogate ``data/<name>.pt`` shipped with mtlneuron.

        Looks in ``mtlneuron/data/`` (installed package) and the repository's
        ``data/`` folder (see :func:`~mtlneuron.surrogate.data_dirs`).

        Raises
        ------
        FileNotFoundError
            Listing the pretrained models that exist, if there is no ``<name>.pt``.
        """
        return cls.load(ckpt_io.pretrained_path(name), cell)


_OPTIONAL_BUFFERS = ("spike_waveform", "spike_waveform_lag0")  # absent from checkpoints before waveforms


def _load_weights(model: Surrogate, state: Mapping) -> None:
    """``load_state_dict`` that accepts checkpoints written before spike waveforms (the model has none)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in _OPTIONAL_BUFFERS]
    if missing or unexpected:
        raise RuntimeError(f"state_dict mismatch: missing {missing}, unexpected {list(unexpected)}")
