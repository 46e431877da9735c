"""Gradient descent on the HNN column's connection gains: :func:`connectivity`.

The parameters are log-gains, one per chosen hnn-core connectivity entry
(cell-to-cell and drive entries alike): every contact and drive event of
entry ``k`` has weight ``w0 * exp(log_gain_k)``. Each step runs the column on
the surrogates with gradients (fast-sigmoid spikes, delays kept), evaluates
the loss on the dipole and spikes, backpropagates through the whole run and
takes one Adam step; log-gains are clipped to ``log(bounds)``. The result's
``to_hnn`` writes the gains into a new ``hnn_core.Network``, which is where a
result is confirmed.
"""
from __future__ import annotations

import time as _time
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr

from .. import _util
from ..conventions import check_duration, check_number, check_seed, n_bins as _n_bins
from ..network.engine import SpikeRule, SurrogateEngine
from ..network.hnn_model import HNNColumn, hnn_dipole, with_gains
from .losses import Loss, RunOutputs, spectrum_torch

__all__ = ["connectivity", "OptimizationResult", "spectrum", "GradientRun"]

REPORT_BAND_HZ = (15.0, 60.0)  # the band whose power every history reports (the Tolley & Jones target)
CHECKPOINT_MS = 50.0  # gradient checkpointing chunk: peak memory of a backward pass grows with 50 ms, not the run


def _entries(col: HNNColumn, params) -> np.ndarray:
    """Entry indices of ``params`` (None: every entry; ints or ``col.entry_names()`` labels)."""
    names = col.entry_names()
    if params is None:
        return np.arange(len(names))
    if isinstance(params, (str, int, np.integer)):
        params = [params]
    out = []
    for p in params:
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            if not 0 <= p < len(names):
                raise ValueError(f"parameter {p} is not a connectivity entry index (0..{len(names) - 1})")
            out.append(int(p))
        elif isinstance(p, str) and p in names:
            out.append(names.index(p))
        else:
            raise ValueError(f"parameter {p!r} is neither an entry index nor one of col.entry_names(): {names}")
    if len(set(out)) != len(out):
        raise ValueError(f"parameters name an entry twice: {params}")
    return np.asarray(out, dtype=np.int64)


class GradientRun:
    """The column compiled once for differentiable runs: gains in, loss and gradient out.

    Parameters
    ----------
    col : HNNColumn
    entries : array of int
        Connectivity entries with a gain parameter (the others keep gain 1).
    surrogates, device, threads
        As for :class:`~mtlneuron.network.engine.SurrogateEngine`.
    slope : float
        Slope of the fast-sigmoid surrogate gradient of spikes.
    checkpoint_ms : float or None
        Gradient checkpointing chunk (ms): memory grows with one chunk, not the run.
    """

    def __init__(self, col: HNNColumn, entries: np.ndarray, surrogates=None, device: str = "cpu",
                 threads: int | None = None, slope: float = SpikeRule.slope,
                 checkpoint_ms: float | None = CHECKPOINT_MS) -> None:
        self.col = col
        self.checkpoint_ms = checkpoint_ms
        self.entries = np.asarray(entries, dtype=np.int64)
        self.engine = SurrogateEngine(col, surrogates, device, SpikeRule(slope=check_number(slope, "slope",
                                                                                                  positive=True)),
                                      threads)
        dev = self.engine.device
        slot = np.full(len(col.entries), -1, dtype=np.int64)
        slot[self.entries] = np.arange(self.entries.size)
        self.contact_slot = torch.as_tensor(slot[col.contact_entry], device=dev)
        self.event_slot = torch.as_tensor(slot[col.event_entry], device=dev)
        self.w_contact = torch.as_tensor(col.connections["weight"], dtype=self.engine.dtype, device=dev)
        self.w_event = torch.as_tensor(col.drives["weight"], dtype=self.engine.dtype, device=dev)

    def weights(self, log_gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contact and drive-event weights (uS) for these log-gains (differentiable)."""
        padded = torch.cat([log_gain, log_gain.new_zeros(1)])  # slot -1 -> the appended 0 (gain 1)
        return (self.w_contact * torch.exp(padded[self.contact_slot]),
                self.w_event * torch.exp(padded[self.event_slot]))

    def outputs(self, log_gain: torch.Tensor) -> RunOutputs:
        """Run the column with these log-gains; what the losses see."""
        wc, wd = self.weights(log_gain)
        out = self.engine.simulate(self.col.tstop, contact_weight=wc, drive_weight=wd, record_v=False,
                                   record_dipole=True, checkpoint_ms=self.checkpoint_ms)
        return RunOutputs(hnn_dipole(self.col, out["dipole_population"]), out["spikes"], self.col.dt, self.col)


def spectrum(dipole: xr.DataArray | np.ndarray, dt: float | None = None) -> xr.DataArray:
    """Hann-windowed periodogram of a (time,) dipole in nA m: power ((nA m)^2/Hz) over ``frequency`` (Hz)."""
    if isinstance(dipole, xr.DataArray):
        dt = float(dipole["time"].values[1] - dipole["time"].values[0])
        values = dipole.values
    else:
        values = np.asarray(dipole)
        if dt is None:
            raise ValueError("dt (ms) is needed for a plain array")
    freqs, power = spectrum_torch(torch.as_tensor(values, dtype=torch.float64), dt)
    return xr.DataArray(power.numpy(), dims=("frequency",), coords={"frequency": ("frequency", freqs, {"units": "Hz"})},
                        attrs={"units": "(nA m)^2/Hz", "long_name": "dipole power spectral density (Hann periodogram)"})


def band_power_db(dipole: np.ndarray, dt: float, band: tuple[float, float] = REPORT_BAND_HZ) -> float:
    """Power of a (time,) dipole in ``band`` Hz, dB re 1 (nA m)^2 (the periodogram summed over the band)."""
    spec = spectrum(np.asarray(dipole, dtype=float), dt)
    f = spec["frequency"].values
    return float(10.0 * np.log10(spec.values[(f >= band[0]) & (f <= band[1])].sum() + 1e-30))


def connectivity(col: HNNColumn, loss: Loss, params: Sequence[int | str] | None = None, *,
                 tstop: float | None = None, steps: int = 20, lr: float = 0.1, seed: int = 0,
                 bounds: tuple[float, float] = (0.25, 4.0), init: Any = None, slope: float = SpikeRule.slope,
                 checkpoint_ms: float | None = CHECKPOINT_MS, surrogates=None, device: str = "cpu",
                 threads: int | None = None, progress: bool = True) -> "OptimizationResult":
    """Optimise connection gains of an HNN column by gradient descent on its surrogate network.

    Parameters
    ----------
    col : HNNColumn
        From ``mtl.network.from_hnn``.
    loss : Loss
        E.g. ``mtl.optimize.band_power(15, 60)``; terms add up with weights.
    params : sequence of int or str, optional
        Connectivity entries to optimise (indices or ``col.entry_names()`` labels;
        default: every entry, cell-to-cell and drives).
    tstop : float, optional
        ms (default: the column's).
    steps : int
        Adam steps (the loss is evaluated ``steps + 1`` times: the last is the result).
    lr : float
        Adam learning rate on log-gains (0.1 ~ 10 % per step).
    seed : int
        torch seed (the run itself is deterministic).
    bounds : (float, float)
        Gains stay in [low, high].
    init : sequence or dict, optional
        Starting gains of the chosen entries (default 1).
    slope : float
        Fast-sigmoid slope of the spike surrogate gradient.
    checkpoint_ms : float or None
        Gradient checkpointing chunk (ms; None keeps every bin's activations:
        faster, memory grows with the run).
    surrogates, device, threads
        As for ``col.run``.

    Returns
    -------
    OptimizationResult
    """
    if not isinstance(col, HNNColumn):
        raise ValueError(f"connectivity optimises an HNNColumn (mtl.network.from_hnn), got {type(col).__name__}")
    if not isinstance(loss, Loss):
        raise ValueError(f"loss must be an mtl.optimize loss (band_power, waveform, rate_bounds), got {loss!r}")
    col = col.for_tstop(col.tstop if tstop is None else check_duration(tstop))
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    lr = check_number(lr, "lr", positive=True)
    lo, hi = (check_number(b, "bounds", positive=True) for b in bounds)
    if not hi > lo:
        raise ValueError(f"bounds need low < high, got {bounds}")
    torch.manual_seed(check_seed(seed))
    entries = _entries(col, params)
    loss.check(col.dt, _n_bins(col.tstop, col.dt), col)
    run = GradientRun(col, entries, surrogates, device, threads, slope, checkpoint_ms)
    start_gains = np.ones(entries.size) if init is None else col.gain_vector(
        dict(zip(entries.tolist(), np.broadcast_to(np.asarray(init, dtype=float), entries.shape))))[entries]
    log_gain = torch.tensor(np.log(np.clip(start_gains, lo, hi)), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([log_gain], lr=lr)
    rows = []
    from tqdm.auto import tqdm

    t0 = _time.perf_counter()
    previous = torch.get_num_threads()
    torch.set_num_threads(run.engine.threads)
    try:
        for step in tqdm(range(steps + 1), desc="optimise", disable=not progress):
            t_step = _time.perf_counter()
            opt.zero_grad()
            out = run.outputs(log_gain)
            value, parts = loss(out)
            if step < steps:
                value.backward()
                grad = log_gain.grad.detach().numpy().copy()
            else:
                grad = np.full(entries.size, np.nan)
            rows.append(_history_row(step, float(value.detach()), parts, log_gain, grad, out,
                                     _time.perf_counter() - t_step))
            if step < steps:
                opt.step()
                with torch.no_grad():
                    log_gain.clamp_(float(np.log(lo)), float(np.log(hi)))
    finally:
        torch.set_num_threads(previous)
    history = _history(rows, col, entries)
    return OptimizationResult(col, entries, history, loss, _time.perf_counter() - t0)


def _history_row(step, value, parts, log_gain, grad, out: RunOutputs, seconds):
    dip = out.dipole.detach().cpu().numpy()
    spikes = out.spikes.detach().cpu().numpy()
    return {"step": step, "loss": value, "parts": parts, "gain": np.exp(log_gain.detach().numpy().copy()),
            "grad": grad, "dipole": dip[:, 0], "band_db": band_power_db(dip[:, 0], out.dt),
            "spike_count": spikes.sum(axis=0), "seconds": seconds}


def _history(rows: list[dict], col: HNNColumn, entries: np.ndarray) -> xr.Dataset:
    names = [col.entry_names()[k] for k in entries]
    spec = [spectrum(r["dipole"], col.dt) for r in rows]
    pops = [p.name for p in col.populations]
    counts = np.stack([[r["spike_count"][col.cell_population == k].sum() for k in range(len(pops))] for r in rows])
    terms = list(rows[0]["parts"])
    ds = xr.Dataset(
        {
            "loss": ("step", [r["loss"] for r in rows], {"long_name": "total loss (minimised)"}),
            "term": (("step", "term_name"), [[r["parts"][t] for t in terms] for r in rows],
                     {"long_name": "value of each loss term"}),
            "gain": (("step", "param"), np.stack([r["gain"] for r in rows]), {"units": "1"}),
            "gradient": (("step", "param"), np.stack([r["grad"] for r in rows]),
                         {"long_name": "d loss / d log-gain"}),
            "band_power": ("step", [r["band_db"] for r in rows],
                           {"units": "dB re 1 (nA m)^2", "long_name": f"agg dipole power {REPORT_BAND_HZ[0]:g}-"
                                                                      f"{REPORT_BAND_HZ[1]:g} Hz (surrogate)"}),
            "spectrum": (("step", "frequency"), np.stack([s.values for s in spec]),
                         {"units": "(nA m)^2/Hz", "long_name": "agg dipole power spectral density (surrogate)"}),
            "dipole": (("step", "time"), np.stack([r["dipole"] for r in rows]),
                       {"units": "nA m", "long_name": "agg dipole (surrogate)"}),
            "spike_count": (("step", "population_name"), counts, {"units": "1"}),
            "seconds": ("step", [r["seconds"] for r in rows], {"units": "s", "long_name": "wall time of the step"}),
        },
        coords={"step": np.arange(len(rows)), "param": names, "entry": ("param", entries),
                "term_name": terms, "frequency": ("frequency", spec[0]["frequency"].values, {"units": "Hz"}),
                "time": ("time", np.arange(rows[0]["dipole"].size) * col.dt, {"units": "ms"}),
                "population_name": pops},
        attrs={"command": _util.command_line(), **_util.versions()},
    )
    return ds


class OptimizationResult:
    """What :func:`connectivity` returns.

    Attributes
    ----------
    history : xarray.Dataset
        Over ``step``: ``loss``, ``term`` (per loss term), ``gain`` and ``gradient``
        (per parameter), ``band_power`` (dB, 15-60 Hz), ``spectrum``, ``dipole``,
        ``spike_count`` per population, ``seconds``.
    params : dict
        Entry label -> gain at the step with the lowest loss.
    gains : ndarray
        One gain per connectivity entry of the column (1 where not optimised).
    best_step : int
    wall_seconds : float
    """

    def __init__(self, col: HNNColumn, entries: np.ndarray, history: xr.Dataset, loss: Loss, seconds: float):
        self.column = col
        self.entries = entries
        self.history = history
        self.loss = loss
        self.wall_seconds = seconds
        self.best_step = int(np.nanargmin(history["loss"].values))
        best = history["gain"].values[self.best_step]
        self.params = dict(zip(history["param"].values.tolist(), best.tolist()))
        self.gains = np.ones(len(col.entries))
        self.gains[entries] = best

    def __repr__(self) -> str:
        h = self.history
        return (f"<OptimizationResult {len(self.entries)} gains, {h.sizes['step'] - 1} steps, loss "
                f"{float(h['loss'][0]):.4g} -> {float(h['loss'][self.best_step]):.4g} (best step {self.best_step}), "
                f"15-60 Hz power {float(h['band_power'][0]):.2f} -> {float(h['band_power'][self.best_step]):.2f} dB, "
                f"{self.wall_seconds:.0f} s>")

    def to_hnn(self, net=None):
        """A new ``hnn_core.Network`` with the optimised gains on ``A_weight`` (``net`` left unchanged).

        ``net`` defaults to the network the column was read from; another network
        must have the same connectivity entries in the same order.
        """
        if net is None:
            return self.column.to_hnn(self.gains)
        mine = [(e["src_type"], e["target_type"], e["loc"], e["receptor"]) for e in self.column.entries]
        theirs = [(c["src_type"], c["target_type"], c["loc"], c["receptor"]) for c in net.connectivity]
        if mine != theirs:
            raise ValueError("net's connectivity entries differ from the column's (source, target, loc, receptor "
                             "in order); pass the network the column was read from")
        return with_gains(net, self.gains)

    def plot(self, show: bool = False):
        """Loss, band power, gains per step and the first / best spectra; returns the figure."""
        import matplotlib.pyplot as plt

        h = self.history
        fig, ax = plt.subplots(2, 2, figsize=(11, 7))
        ax[0, 0].plot(h["step"], h["loss"], "o-")
        ax[0, 0].set(xlabel="step", ylabel="loss", title="loss (surrogate)")
        ax[0, 1].plot(h["step"], h["band_power"], "o-")
        ax[0, 1].set(xlabel="step", ylabel="dB re 1 (nA m)$^2$", title="agg dipole power 15-60 Hz (surrogate)")
        for k, name in enumerate(h["param"].values):
            ax[1, 0].plot(h["step"], h["gain"][:, k], label=str(name))
        ax[1, 0].set(xlabel="step", ylabel="gain", yscale="log", title="connection gains")
        if h.sizes["param"] <= 12:
            ax[1, 0].legend(fontsize=6)
        f = h["frequency"].values
        keep = (f > 0) & (f <= 100)
        for step, label in ((0, "start"), (self.best_step, f"best (step {self.best_step})")):
            ax[1, 1].semilogy(f[keep], h["spectrum"][step].values[keep], label=label)
        ax[1, 1].axvspan(*REPORT_BAND_HZ, color="0.9")
        ax[1, 1].set(xlabel="Hz", ylabel="(nA m)$^2$/Hz", title="agg dipole spectrum")
        ax[1, 1].legend()
        fig.tight_layout()
        if show:
            plt.show()
        return fig
