"""The batched, differentiable surrogate engine.

Every population of same-type cells advances together: one batched
``Surrogate.step`` per population per ``dt`` bin. Per bin, with no Python loop
over cells, contacts or spikes:

1. **inputs**: the bin's drive events (sorted by bin once, a slice per step)
   plus the recurrent releases arriving in this bin are scatter-added into one
   flat (cell, site) vector, viewed per population as (cells, sites) in uS;
2. **cells**: each population's surrogate steps once -> somatic voltage,
   dipole, spike probability;
3. **spike rule**: a cell spikes in bin ``t`` when its spike probability
   crosses the model's ``spike_prob_threshold`` upward (``p_t >= thr >
   p_{t-1}``) and it has not spiked within ``refractory_ms``; the spike is
   placed at the bin centre. Forward it is 0/1; backward a fast-sigmoid
   surrogate gradient ``1 / (1 + slope |p - thr|)^2`` lets gradients reach
   connection and drive weights;
4. **synapses**: for every contact of a spiking cell the Tsodyks-Markram state
   is updated by the analytic recursion (:mod:`mtlneuron.network.tm`; static
   contacts are U = 1, D = F = 0) and ``weight * efficacy`` is released; it
   arrives exactly ``round(delay / dt)`` bins later (a ring of the last
   releases, read per contact at its own delay).

Many independent networks run as one block-diagonal network
(:func:`~mtlneuron.network.description.concat`): sweeps cost one step per bin.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from ..conventions import check_duration, n_bins as _n_bins, same_dt, soma_index
from ..surrogate import Surrogate
from . import tm
from .results import to_result

__all__ = ["SpikeRule", "SurrogateEngine", "Teacher", "run_surrogate", "spike_fn", "spike_lists"]


class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; fast-sigmoid derivative ``1 / (1 + slope |x|)^2`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * x.abs()) ** 2, None


def spike_fn(x: torch.Tensor, slope: float) -> torch.Tensor:
    """Heaviside of ``x`` with a fast-sigmoid surrogate gradient of ``slope``."""
    return _FastSigmoidSpike.apply(x, float(slope))


@dataclass(frozen=True)
class SpikeRule:
    """How the engine turns spike probabilities into spikes (see the module docstring).

    Attributes
    ----------
    threshold : float or None
        Probability threshold (default: each model's tuned ``spike_prob_threshold``).
    refractory_ms : float
        No second spike of a cell within this time (ms).
    slope : float
        Slope of the fast-sigmoid surrogate gradient (per unit probability).
    """

    threshold: float | None = None
    refractory_ms: float = 2.0
    slope: float = 25.0

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < float(self.threshold) < 1.0:
            raise ValueError(f"spike threshold must be in (0, 1), got {self.threshold!r}")
        if not float(self.refractory_ms) >= 0.0:
            raise ValueError(f"refractory_ms must be >= 0, got {self.refractory_ms!r}")
        if not float(self.slope) > 0.0:
            raise ValueError(f"surrogate-gradient slope must be > 0, got {self.slope!r}")


@dataclass(frozen=True)
class Teacher:
    """Recurrent input taken from a recorded run of the same network (training in the loop).

    In each bin each cell sends its targets, with probability ``prob``, the
    recorded spikes instead of its own (scheduled sampling): ``prob = 1`` gives
    every cell the recorded network's recurrent input (the open loop of
    training on cell trials), ``prob = 0`` is the free-running network.

    Attributes
    ----------
    spikes : torch.Tensor
        (time, cell) 0/1, the recorded spikes on the engine's bins.
    prob : float
        Probability, per cell and bin, of sending the recorded spikes.
    seed : int
        Seed of the draw of who sends what.
    forced_ms : float
        Before this time (ms) every cell sends the recorded spikes and no gradient
        is kept: a warm-up that brings the network to the recorded run's state.
    """

    spikes: torch.Tensor
    prob: float = 1.0
    seed: int = 0
    forced_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.prob) <= 1.0:
            raise ValueError(f"teacher prob must be in [0, 1], got {self.prob!r}")
        if not float(self.forced_ms) >= 0.0:
            raise ValueError(f"teacher forced_ms must be >= 0, got {self.forced_ms!r}")
        if self.spikes.dim() != 2:
            raise ValueError(f"teacher spikes must be (time, cell), got shape {tuple(self.spikes.shape)}")

    def mask(self, n_time: int, n_cells: int, dt: float, device) -> tuple[torch.Tensor, int]:
        """(time, cell) 1 where the recorded spike is sent, and the number of forced bins."""
        if tuple(self.spikes.shape) != (n_time, n_cells):
            raise ValueError(f"teacher spikes must be ({n_time} bins, {n_cells} cells) for this run, got "
                             f"{tuple(self.spikes.shape)}")
        g = torch.Generator().manual_seed(int(self.seed))
        m = (torch.rand(n_time, n_cells, generator=g) < float(self.prob)).float()
        forced = min(n_time, int(round(float(self.forced_ms) / dt)))
        m[:forced] = 1.0
        return m.to(device), forced


def _load_surrogates(net, surrogates: Mapping[str, Any] | None) -> dict[str, Surrogate]:
    from .. import cells

    out = {}
    for pop in net.populations:
        model = (surrogates or {}).get(pop.cell, (surrogates or {}).get(pop.name))
        if model is None:
            model = Surrogate.pretrained(pop.cell)
        elif isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            model = Surrogate.load(model)
        if not isinstance(model, Surrogate):
            raise ValueError(f"population {pop.name!r}: surrogate must be a Surrogate or a checkpoint path, "
                             f"got {type(model).__name__}")
        cell = cells.get(pop.cell)
        if model.cell_key != cell.key:
            raise ValueError(f"population {pop.name!r} is made of cell {pop.cell!r} (key {cell.key}) but its "
                             f"surrogate was trained for cell {model.cell_name!r} (key {model.cell_key})")
        if not same_dt(model.dt, net.dt):
            raise ValueError(f"population {pop.name!r}: surrogate dt {model.dt} ms differs from the network's "
                             f"dt {net.dt} ms")
        out[pop.name] = model
    return out


class SurrogateEngine:
    """A network compiled for the surrogate backend (tensors on one device).

    Parameters
    ----------
    net : Network
    surrogates : dict, optional
        Cell name (or population name) -> :class:`Surrogate` or checkpoint path;
        default ``Surrogate.pretrained(cell)``.
    device : str or torch.device
    spike_rule : SpikeRule, optional
    threads : int, optional
        CPU threads torch may use while stepping (default 1; restored afterwards).
        One step works on small tensors, where intra-op threads gain little and,
        when another process keeps a core busy (a NEURON run beside it), their
        spin-waits at every operation slowed a 150-cell run 100-fold here;
        ``benchmarks/network_speed.py --threads`` measures both.
    """

    def __init__(self, net, surrogates: Mapping[str, Any] | None = None, device: str | torch.device = "cpu",
                 spike_rule: SpikeRule | None = None, threads: int | None = None) -> None:
        self.net = net
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' asked for, but torch sees no CUDA device here")
        if threads is not None and not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        self.threads = threads or 1
        self.rule = spike_rule or SpikeRule()
        self.models = {k: m.to(self.device).eval() for k, m in _load_surrogates(net, surrogates).items()}
        # the engine computes in its surrogates' dtype (float32; model.double() for float64 everywhere)
        dtypes = {m.site_scale.dtype for m in self.models.values()}
        if len(dtypes) != 1:
            raise ValueError(f"the surrogates of one network must share a dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop()
        net.validate(n_sites={p.cell: self.models[p.name].n_sites for p in net.populations})
        self._compile()

    # -- compilation (numpy -> tensors, once) ---------------------------------------------------------
    def _compile(self) -> None:
        net, dev = self.net, self.device
        pops = net.populations
        self.n_sites = np.array([self.models[p.name].n_sites for p in pops])
        sizes = np.array([p.n for p in pops])
        self.flat_offset = np.concatenate([[0], np.cumsum(sizes * self.n_sites)])  # per population
        cell_pop = net.cell_population
        local = np.arange(net.n_cells) - net.offsets[cell_pop]
        self.cell_flat = self.flat_offset[cell_pop] + local * self.n_sites[cell_pop]  # flat index of site 0

        c = net.connections
        self.contact_target = torch.as_tensor(self.cell_flat[c["post"]] + c["site"], device=dev)
        self.contact_pre = torch.as_tensor(c["pre"], device=dev)
        self.delay_bins = np.rint(c["delay"] / net.dt).astype(np.int64)
        self.ring_len = int(self.delay_bins.max()) + 1 if self.delay_bins.size else 1
        self.delay_t = torch.as_tensor(self.delay_bins, device=dev)
        static = ~np.isfinite(c["U"])
        f32 = self.dtype
        self.U = torch.as_tensor(np.where(static, 1.0, c["U"]), dtype=f32, device=dev)
        self.D = torch.as_tensor(np.where(static, 0.0, c["D"]), dtype=f32, device=dev)
        self.F = torch.as_tensor(np.where(static, 0.0, c["F"]), dtype=f32, device=dev)
        self.contact_weight = torch.as_tensor(c["weight"], dtype=f32, device=dev)
        # all contacts static (the HNN column): arrivals read from a history of spikes (cells) instead of a
        # ring of releases (contacts), which costs ring_len x contacts per bin with hnn-core's long delays
        self.all_static = bool(static.all())

        d = net.drives
        bins = np.floor(d["time"] / net.dt + 1e-9).astype(np.int64)
        order = np.argsort(bins, kind="stable")
        self.drive_order = torch.as_tensor(order, device=dev)
        self.drive_bins = bins[order]
        self.drive_target = torch.as_tensor(self.cell_flat[d["gid"]][order] + d["site"][order], device=dev)
        self.drive_weight = torch.as_tensor(d["weight"][order], dtype=f32, device=dev)
        self.n_flat = int(self.flat_offset[-1])

    # -- the run --------------------------------------------------------------------------------------
    def simulate(self, duration: float, *, contact_weight: torch.Tensor | None = None,
                 drive_weight: torch.Tensor | None = None, record_v: bool = True, record_dipole: bool = True,
                 record_arrivals: bool = False, progress: bool = False,
                 checkpoint_ms: float | None = None, teacher: Teacher | None = None,
                 record_cells: bool = False) -> dict[str, torch.Tensor]:
        """Run for ``duration`` ms; tensors out (differentiable when weights require grad).

        Parameters
        ----------
        contact_weight : tensor (contact,), optional
            uS; replaces the description's connection weights (e.g. a parameter to optimise).
        drive_weight : tensor (event,), optional
            uS; replaces the drive weights, in the description's event order.
        checkpoint_ms : float, optional
            With autograd on: recompute the run chunk by chunk of this length in the
            backward pass instead of keeping every bin's activations (gradient
            checkpointing; the gradient is the same, memory grows with one chunk
            instead of the whole run, the backward pass repeats the forward once).
        teacher : Teacher, optional
            Recurrent input partly or wholly from a recorded run (training in the loop).
        record_cells : bool
            Also return every cell's outputs per population (see Returns); with
            autograd on they carry gradients to the surrogates' parameters.

        Returns
        -------
        dict
            ``spikes`` (time, cell) 0/1, ``v_soma`` (time, cell) mV and ``dipole``
            (time, 3) nA um summed over cells when recorded, with ``dipole_population``
            (time, population, 3) nA um, the sum over each population's cells; ``arrivals`` (time, contact)
            uS, what each contact delivered in each bin, with ``record_arrivals``;
            with ``record_cells``, per population ``"<name>/v"`` (time, cell, segment) mV,
            ``"<name>/dipole"`` (time, cell, 3) nA um and ``"<name>/spike_logit"`` (time, cell).
        """
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._simulate(duration, contact_weight=contact_weight, drive_weight=drive_weight,
                                  record_v=record_v, record_dipole=record_dipole, record_arrivals=record_arrivals,
                                  progress=progress, checkpoint_ms=checkpoint_ms, teacher=teacher,
                                  record_cells=record_cells)
        finally:
            torch.set_num_threads(previous)

    def _simulate(self, duration: float, *, contact_weight: torch.Tensor | None = None,
                  drive_weight: torch.Tensor | None = None, record_v: bool = True, record_dipole: bool = True,
                  record_arrivals: bool = False, progress: bool = False,
                  checkpoint_ms: float | None = None, teacher: Teacher | None = None,
                  record_cells: bool = False) -> dict[str, torch.Tensor]:
        """The chunks of :meth:`simulate` (same arguments)."""
        from torch.utils.checkpoint import checkpoint
        from tqdm.auto import tqdm

        net, dev = self.net, self.device
        T = _n_bins(check_duration(duration), net.dt)
        f32 = self.dtype
        w_c = self.contact_weight if contact_weight is None else contact_weight.to(dev, f32).reshape(-1)
        w_d = self.drive_weight if drive_weight is None else drive_weight.to(dev, f32).reshape(-1)[self.drive_order]
        if w_c.numel() != net.n_contacts or w_d.numel() != self.drive_target.numel():
            raise ValueError(f"contact_weight needs {net.n_contacts} and drive_weight "
                             f"{self.drive_target.numel()} entries")
        N = net.n_cells
        ctx = {"ptr": np.searchsorted(self.drive_bins, np.arange(T + 1)), "record_v": record_v,
               "record_dipole": record_dipole, "record_arrivals": record_arrivals, "record_cells": record_cells,
               "thr": {p.name: float(self.rule.threshold if self.rule.threshold is not None
                                     else self.models[p.name].spike_prob_threshold) for p in net.populations},
               # without autograd a bin without spikes changes no synapse; skipping it is exact (on CUDA the
               # test would synchronise the device every bin, so it is made on CPU only)
               "skip_quiet": dev.type == "cpu" and not torch.is_grad_enabled()}
        forced = 0
        if teacher is not None:
            mask, forced = teacher.mask(T, N, net.dt, dev)
            ctx["teacher"] = (teacher.spikes.to(dev, f32), mask)
        synapses = tm.TMState(self.U, self.D, self.F)
        carry = {"states": {p.name: self.models[p.name].initial_state(p.n, dev) for p in net.populations},
                 "prev_p": torch.zeros(N, dtype=f32, device=dev),
                 "last_spike": torch.full((N,), -1e9, dtype=f32, device=dev),
                 "tm": (synapses.u, synapses.R, synapses.t_last),
                 "releases": [torch.zeros_like(self.U)] * self.ring_len,
                 "history": [torch.zeros(N, dtype=f32, device=dev)] * self.ring_len}  # spikes of the last bins
        chunk = T
        use_checkpoint = checkpoint_ms is not None and torch.is_grad_enabled()
        if use_checkpoint:
            chunk = max(1, int(round(check_duration(checkpoint_ms) / net.dt)))
        parts: list[dict[str, torch.Tensor]] = []
        # the teacher's forced warm-up is one piece without gradient; chunks start after it
        pieces = ([(0, forced)] if forced else []) + [(t0, min(T, t0 + chunk)) for t0 in range(forced, T, chunk)]
        with tqdm(total=T, disable=not progress, desc="network", unit="bin", mininterval=1.0) as bar:
            for t0, t1 in pieces:
                if t1 <= forced:
                    with torch.no_grad():
                        part, carry = self._bins(t0, t1, carry, w_c, w_d, ctx)
                elif use_checkpoint:
                    part, carry = checkpoint(self._bins, t0, t1, carry, w_c, w_d, ctx, use_reentrant=False)
                else:
                    part, carry = self._bins(t0, t1, carry, w_c, w_d, ctx)
                parts.append(part)
                bar.update(t1 - t0)
        out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {"spikes": torch.zeros(0, N)}
        if record_arrivals and "arrivals" not in out:
            out["arrivals"] = torch.zeros(T, 0)
        self._add_spike_waveforms(out)
        if record_dipole and "dipole_population" in out:
            out["dipole"] = out["dipole_population"].sum(dim=1)
        return out

    def _bins(self, t0: int, t1: int, carry: dict, w_c: torch.Tensor, w_d: torch.Tensor, ctx: dict):
        """Bins ``t0 .. t1 - 1`` from state ``carry``: (their stacked outputs, the new carry).

        A pure function of its arguments (the TM state travels in ``carry``), so that
        gradient checkpointing can run it again in the backward pass.
        """
        net, dev, dt = self.net, self.device, self.net.dt
        ptr, thr = ctx["ptr"], ctx["thr"]
        states = dict(carry["states"])
        prev_p, last_spike = carry["prev_p"], carry["last_spike"]
        releases, history = list(carry["releases"]), list(carry["history"])
        synapses = tm.TMState(self.U, self.D, self.F)
        synapses.u, synapses.R, synapses.t_last = carry["tm"]
        spikes, v_rec, d_rec, arrivals = [], [], [], []
        cells_rec = {pop.name: [] for pop in net.populations} if ctx["record_cells"] else None
        teacher = ctx.get("teacher")
        arange_c = torch.arange(self.U.numel(), device=dev)
        zero_release = torch.zeros_like(self.U)
        for t in range(t0, t1):
            # 1. inputs of this bin: drive events + recurrent releases arriving now
            x = torch.zeros(self.n_flat, dtype=self.dtype, device=dev)
            lo, hi = ptr[t], ptr[t + 1]
            if hi > lo:
                x = x.index_add(0, self.drive_target[lo:hi], w_d[lo:hi])
            if self.U.numel() and self.all_static:
                past = torch.stack(history)  # (ring_len, cell); row k holds bin t - ring_len + k
                arrived = w_c * past[self.ring_len - self.delay_t, self.contact_pre]
                x = x.index_add(0, self.contact_target, arrived)
            elif self.U.numel():
                ring = torch.stack(releases)  # (ring_len, contact); row k holds bin t - ring_len + k
                arrived = ring[self.ring_len - self.delay_t, arange_c] if self.ring_len > 1 else ring[0] * 0
                x = x.index_add(0, self.contact_target, arrived)
            # 2. every population steps once
            p_all, v_all, d_all = [], [], []
            for k, pop in enumerate(net.populations):
                model = self.models[pop.name]
                xs = x[self.flat_offset[k]:self.flat_offset[k + 1]].view(pop.n, int(self.n_sites[k]))
                out, states[pop.name] = model.step(xs, states[pop.name])
                p_all.append(out["spike_prob"] - thr[pop.name])
                if cells_rec is not None:
                    cells_rec[pop.name].append(out)
                if ctx["record_v"]:
                    v_all.append(out["v"][:, soma_index(model.meta)])
                if ctx["record_dipole"]:
                    d_all.append(out["dipole"])
            p = torch.cat(p_all)
            # 3. spike rule: upward crossing, refractory, surrogate gradient
            ready = ((t - last_spike) * dt >= self.rule.refractory_ms).to(p.dtype)
            s = spike_fn(p, self.rule.slope) * (1.0 - (prev_p >= 0).to(p.dtype)) * ready
            prev_p = p.detach()
            last_spike = torch.where(s > 0.5, torch.full_like(last_spike, t), last_spike)
            spikes.append(s)
            if teacher is not None:  # what the cells send: the recorded spikes where the mask says so
                m = teacher[1][t]
                s = m * teacher[0][t] + (1.0 - m) * s
            if ctx["record_v"]:
                v_rec.append(torch.cat(v_all))
            if ctx["record_dipole"]:
                d_rec.append(torch.stack([d.sum(dim=0) for d in d_all]))  # (population, 3)
            # 4. synapses: TM update of every contact of a spiking cell, release now, arrive later
            if self.U.numel() and self.all_static:
                history = history[1:] + [s]
                if ctx["record_arrivals"]:
                    arrivals.append(arrived)
            elif self.U.numel():
                if ctx["skip_quiet"] and not bool(s.any()):
                    released = zero_release  # no spike, no gradient wanted: TM state unchanged, nothing released
                else:
                    released = w_c * synapses.spike(s[self.contact_pre], (t + 0.5) * dt)
                releases = releases[1:] + [released]
                if ctx["record_arrivals"]:
                    arrivals.append(arrived)
        part = {"spikes": torch.stack(spikes)}
        if ctx["record_arrivals"] and arrivals:
            part["arrivals"] = torch.stack(arrivals)
        if ctx["record_v"]:
            part["v_soma"] = torch.stack(v_rec)
        if ctx["record_dipole"]:
            part["dipole_population"] = torch.stack(d_rec)  # (time, population, 3)
        for name, outs in (cells_rec or {}).items():
            for key in ("v", "dipole", "spike_logit"):
                part[f"{name}/{key}"] = torch.stack([o[key] for o in outs])
        carry = {"states": states, "prev_p": prev_p, "last_spike": last_spike,
                 "tm": (synapses.u, synapses.R, synapses.t_last), "releases": releases, "history": history}
        return part, carry

    def _add_spike_waveforms(self, out: dict[str, torch.Tensor]) -> None:
        """Each population's learned spike waveforms (if its surrogate has them) placed at its spikes, in place."""
        for k, pop in enumerate(self.net.populations):
            model = self.models[pop.name]
            if not model.spike_waveform.shape[0]:
                continue
            wave, lags = model.spike_waveform, model.spike_waveform_lags
            first, stop = (int(i) for i in self.net.offsets[k:k + 2])
            s = out["spikes"][:, first:stop]
            if "v_soma" in out:
                soma = soma_index(model.meta)
                out["v_soma"] = out["v_soma"] + torch.nn.functional.pad(
                    _placed(s, wave[:, soma], lags), (first, self.net.n_cells - stop))
            if "dipole_population" in out:
                placed = _placed(s.sum(dim=1, keepdim=True), wave[:, -3:], lags)  # (time, 3)
                out["dipole_population"] = out["dipole_population"] + torch.nn.functional.pad(
                    placed[:, None, :], (0, 0, k, len(self.net.populations) - k - 1))


def _placed(spikes: torch.Tensor, wave: torch.Tensor, lags: np.ndarray) -> torch.Tensor:
    """``sum_l wave[l] * spikes[t - lags[l]]``: (time, n) spikes, (lag,) or (lag, channel) waveform ->
    (time, n) or (time, channel) (n = 1); differentiable in both."""
    T = spikes.shape[0]
    out = 0.0
    for l, lag in enumerate(lags.tolist()):
        if abs(lag) >= T:
            continue
        shifted = torch.zeros_like(spikes)
        if lag >= 0:
            shifted[lag:] = spikes[:T - lag]
        else:
            shifted[:T + lag] = spikes[-lag:]
        out = out + shifted * wave[l]  # (time, n) x scalar, or (time, 1) x (channel,)
    return out


def spike_lists(spikes: torch.Tensor, dt: float) -> list[np.ndarray]:
    """Spike times (ms, at bin centres) per cell from the engine's (time, cell) 0/1 spikes."""
    s = spikes.detach().cpu().numpy()
    t_idx, cell = np.nonzero(s > 0.5)
    times = (t_idx + 0.5) * dt
    return [times[cell == i] for i in range(s.shape[1])]


def run_surrogate(net, duration: float, *, surrogates: Mapping[str, Any] | None = None,
                  device: str = "cpu", spike_rule: SpikeRule | None = None, threads: int | None = None,
                  progress: bool = False):
    """Run ``net`` on surrogates and label the result (see :mod:`mtlneuron.network.results`)."""
    duration = net.check_run(duration)  # the one run rule of every backend (late drive events, memory)
    start = _time.perf_counter()
    engine = SurrogateEngine(net, surrogates, device, spike_rule, threads)
    with torch.inference_mode():
        out = engine.simulate(duration, record_v="v_soma" in net.record, record_dipole="dipole" in net.record,
                              progress=progress)
    seconds = _time.perf_counter() - start
    spikes = spike_lists(out["spikes"], net.dt)
    v = out["v_soma"].cpu().numpy() if "v_soma" in out else None
    d = out["dipole"].cpu().numpy() if "dipole" in out else None
    rule = engine.rule
    attrs = {"device": str(engine.device), "wall_seconds": seconds, "threads": engine.threads,
             "spike_rule": f"upward crossing of spike_prob threshold "
                           f"({'model' if rule.threshold is None else rule.threshold}), refractory "
                           f"{rule.refractory_ms} ms, spike at bin centre",
             "surrogates": ", ".join(f"{k}: {m.cell_name} ({m.n_parameters} parameters)"
                                     for k, m in engine.models.items())}
    return to_result(net, duration, spikes, v, d, "surrogate", attrs)
