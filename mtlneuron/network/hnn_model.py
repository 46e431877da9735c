"""The HNN column read from hnn-core: ``from_hnn(net)`` -> a :class:`HNNColumn` (a :class:`Network`).

hnn-core describes its column as cell types on a grid, a connectivity list and
external drives; its builder turns each connectivity entry into NetCons (one
per source, target and section the entry's ``loc`` names) with weight
``A_weight * gain * exp(-d^2 / lamtha^2)`` and delay ``A_delay / exp(-d^2 /
lamtha^2)`` (``d`` the in-plane distance). :func:`from_hnn` reads exactly
those NetCons (hnn-core's own functions, see :mod:`mtlneuron.nrn.hnn`):

* populations ``L2_basket``, ``L2_pyramidal``, ``L5_basket``, ``L5_pyramidal``
  of the cells ``basket``, ``l23pc``, ``basket``, ``l5pc_hnn`` (hnn-core's
  cells with hnn-core's synapses), gids and positions as in hnn-core;
* one contact per cell-to-cell NetCon (site = the target's section x
  receptor), delays kept (rounded to the model grid by the engine); contacts
  whose delay is not shorter than the run (far cells under a narrow
  ``lamtha``) can never deliver a spike and are left out;
* the drives' events as hnn-core generates them for the run's ``tstop``
  (``Network._instantiate_drives``), each arriving at its NetCon's delay with
  its NetCon's weight.

Each contact and drive event remembers its connectivity entry
(``contact_entry``, ``event_entry``), so gains per entry scale the weights
(``mtl.optimize``) and :meth:`HNNColumn.to_hnn` writes them back into a new
``hnn_core.Network``.

``run(tstop, backend="surrogate" | "hnn")`` returns the same schema from both
backends: ``dipole`` (time, layer: agg / L2 / L5) in nA m with hnn-core's sign
and baseline, on the model grid (bin means), and ``spike_times`` (cell, spike)
with ``population`` and ``gid`` per cell.
"""
from __future__ import annotations

import copy
import time as _time
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import _util
from .._util import spike_matrix
from ..conventions import DEFAULT_DT, check_duration, check_number, n_bins as _n_bins
from ..nrn import hnn as _hnn
from ..nrn import worker as _worker
from .description import Network, PopulationSpec
from .hnn_data import site_index

__all__ = ["HNNColumn", "from_hnn", "jones_2009_column", "LAYERS", "DIPOLE_POPULATIONS", "smooth", "hnn_dipole", "with_gains"]

LAYERS = ("agg", "L2", "L5")
DIPOLE_POPULATIONS = {"L2": "L2_pyramidal", "L5": "L5_pyramidal"}  # hnn-core's layers: its pyramidal cells
HNN_DT = 0.025  # ms: hnn-core's integration step (simulate_dipole's default)
_SURROGATE_OPTIONS = {"surrogates", "device", "spike_rule", "threads", "progress"}
_HNN_OPTIONS = {"jitter_seed"}
jones_2009_column = _hnn.jones_2009_column  # hnn-core's column with ERP or Poisson drives (an hnn_core.Network)


def from_hnn(net, tstop: float = 170.0, dt: float = DEFAULT_DT) -> "HNNColumn":
    """Read an ``hnn_core.Network`` (cells, connectivity, drives) into a :class:`HNNColumn`.

    Parameters
    ----------
    net : hnn_core.Network
        E.g. ``hnn_core.jones_2009_model()`` with ``add_erp_drives_to_jones_model``,
        Poisson or bursty drives. Left unchanged.
    tstop : float
        ms: the drives' events are generated for this run length (hnn-core's
        Poisson and bursty trains depend on it). ``run`` with another ``tstop``
        reads the network again for that length.
    dt : float
        Model grid of the surrogate backend (ms).

    Raises
    ------
    ValueError
        A cell type with no surrogate (mtlneuron has ``L2_basket``,
        ``L2_pyramidal``, ``L5_basket``, ``L5_pyramidal`` with hnn-core's default
        templates), a synapse the cell has no site for, tonic biases, a
        connectivity entry with non-finite or negative weights, or a bad ``tstop``.
    """
    if not (hasattr(net, "connectivity") and hasattr(net, "cell_types") and hasattr(net, "external_drives")):
        raise ValueError(f"from_hnn takes an hnn_core.Network, got {type(net).__name__}")
    return HNNColumn(net, tstop, dt)


class HNNColumn(Network):
    """A :class:`Network` read from an ``hnn_core.Network`` (see the module docstring).

    Attributes
    ----------
    hnn_net : hnn_core.Network
        A copy of the network it was read from (the ``"hnn"`` backend runs it).
    tstop : float
        ms, the run length the drive events were generated for.
    entries : list of dict
        hnn-core's connectivity entries (src_type, target_type, loc, receptor,
        A_weight uS, A_delay ms, lamtha, gain, probability, is_drive).
    contact_entry, event_entry : ndarray
        The entry of each contact and of each drive event.

    Notes
    -----
    ``to_netcdf`` writes the plain :class:`Network` (populations, contacts, drive
    events): enough to run the surrogate backend, not to go back to hnn-core. Keep
    the ``hnn_core.Network`` (or pickle the column) for ``backend="hnn"`` and ``to_hnn``.
    """

    def __init__(self, hnn_net, tstop: float, dt: float = DEFAULT_DT) -> None:
        tstop = check_duration(tstop)
        _n_bins(tstop, dt)
        raw = _hnn.read_network(hnn_net, tstop)
        pops, site_maps = [], {}
        expected_first = 0
        for name, first, n, pos in raw["cell_types"]:
            if first != expected_first:
                raise ValueError(f"hnn-core cell type {name!r} starts at gid {first}, expected {expected_first}: "
                                 "cell gids must come first and in order")
            expected_first += n
            cell = _hnn.HNN_CELL_TYPES[name]
            pops.append(PopulationSpec(name, cell, n, pos))
            site_maps.setdefault(cell, site_index(cell))
        cell_of_gid = np.repeat([_hnn.HNN_CELL_TYPES[p.name] for p in pops], [p.n for p in pops])
        c, e = raw["contacts"], raw["events"]
        _check_weights(c["weight"], c["entry"], raw["entries"])
        _check_weights(e["weight"], e["entry"], raw["entries"])
        keep = c["delay"] < tstop  # a contact whose delay is not shorter than the run never delivers
        connections = {"pre": c["pre"][keep], "post": c["post"][keep],
                       "site": _sites(c["post"][keep], c["key"][keep], cell_of_gid, site_maps),
                       "weight": c["weight"][keep], "delay": c["delay"][keep]}
        drives = {"gid": e["post"], "site": _sites(e["post"], e["key"], cell_of_gid, site_maps),
                  "time": e["time"], "weight": e["weight"]}
        super().__init__(pops, connections, drives, dt=dt, record=("spikes", "dipole"),
                         attrs={"builder": "mtlneuron.network.from_hnn", "tstop": tstop,
                                "hnn_entries": len(raw["entries"])})
        self.hnn_net = copy.deepcopy(hnn_net)
        self.tstop = tstop
        self.entries = raw["entries"]
        self.contact_entry = c["entry"][keep]
        self.event_entry = e["entry"]
        self.n_pyr = raw["n_pyr"]
        self.dropped_contacts = int((~keep).sum())

    # -- description ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}: {p.n} x {p.cell}" for p in self.populations)
        return (f"<mtlneuron HNNColumn ({pops}); {len(self.entries)} connectivity entries, {self.n_contacts} "
                f"contacts, {self.drives['time'].size} drive events for tstop {self.tstop} ms, dt {self.dt} ms>")

    def entry_names(self) -> list[str]:
        """One label per connectivity entry: ``src -> target loc/receptor``."""
        return [f"{e['src_type']}->{e['target_type']} {e['loc']}/{e['receptor']}" for e in self.entries]

    def for_tstop(self, tstop: float) -> "HNNColumn":
        """This column with drive events generated for ``tstop`` (itself when they already are)."""
        tstop = check_duration(tstop)
        if abs(tstop - self.tstop) < 1e-9:
            return self
        return HNNColumn(self.hnn_net, tstop, self.dt)

    # -- running ----------------------------------------------------------------------------------------
    def run(self, tstop: float, backend: str = "surrogate", *, smooth_ms: float | None = None,
            scale: float | None = None, **kwargs: Any) -> xr.Dataset:
        """Simulate the column; the same schema from both backends.

        Parameters
        ----------
        tstop : float
            ms (drive events are regenerated by hnn-core when it differs from ``self.tstop``).
        backend : {"surrogate", "hnn"}
            ``"surrogate"``: the batched surrogate engine (keyword arguments
            ``surrogates``, ``spike_rule``, ``device``, ``threads``, ``progress``);
            ``"hnn"``: ``hnn_core.simulate_dipole`` on the same network (a worker process;
            keyword ``jitter_seed=int``: every drive event moved to a random time inside
            its arrival's bin of ``dt``, so that the surrogate's input is unchanged:
            how far hnn-core then moves is the ceiling of any binned-input surrogate).
        smooth_ms : float, optional
            Hamming-window smoothing of the dipole (hnn-core's ``Dipole.smooth``), ms.
        scale : float, optional
            Multiply the dipole (hnn-core's ``Dipole.scale``).

        Returns
        -------
        xarray.Dataset
            ``dipole`` (time, layer) nA m, ``spike_times`` (cell, spike) ms with
            coords ``population`` and ``gid``, ``spike_count`` (population_name,).
        """
        col = self.for_tstop(tstop)
        unknown = sorted(set(kwargs) - _SURROGATE_OPTIONS)
        if backend == "surrogate" and unknown:
            raise ValueError(f"unknown option(s) {unknown} of backend 'surrogate'; it takes {sorted(_SURROGATE_OPTIONS)}")
        if backend == "surrogate":
            dipole, spikes, attrs = col._run_surrogate(**kwargs)
        elif backend == "hnn":
            unknown = sorted(set(kwargs) - _HNN_OPTIONS)
            if unknown:
                raise ValueError(f"unknown option(s) {unknown} of backend 'hnn'; it takes {sorted(_HNN_OPTIONS)}")
            dipole, spikes, attrs = col._run_hnn(**kwargs)
        else:
            raise ValueError(f"backend must be 'surrogate' or 'hnn', got {backend!r}")
        return col._label(dipole, spikes, backend, attrs, smooth_ms, scale)

    def baseline(self, tstop: float | None = None) -> np.ndarray:
        """hnn-core's baseline per layer on the model grid (time, layer) nA m (bin means)."""
        n = _n_bins(self.tstop if tstop is None else tstop, self.dt)
        sub = int(round(self.dt / HNN_DT))
        base = _hnn.dipole_baseline(n * sub, HNN_DT, self.n_pyr)
        return base.reshape(n, sub, len(LAYERS)).mean(axis=1)

    def _run_surrogate(self, **kwargs):
        import torch

        from .engine import SurrogateEngine, spike_lists

        progress = kwargs.pop("progress", False)
        start = _time.perf_counter()
        engine = SurrogateEngine(self, **kwargs)
        with torch.inference_mode():
            out = engine.simulate(self.tstop, record_v=False, record_dipole=True, progress=progress)
        dipole = hnn_dipole(self, out["dipole_population"]).cpu().numpy()
        spikes = spike_lists(out["spikes"], self.dt)
        attrs = {"wall_seconds": _time.perf_counter() - start, "device": str(engine.device),
                 "surrogates": ", ".join(f"{k}: {m.cell_name}" for k, m in engine.models.items())}
        return dipole, spikes, attrs

    def _run_hnn(self, jitter_seed: int | None = None):
        if jitter_seed is not None and (isinstance(jitter_seed, bool) or not isinstance(jitter_seed, (int, np.integer))):
            raise ValueError(f"jitter_seed must be an int or None, got {jitter_seed!r}")
        start = _time.perf_counter()
        with _worker.pool(1) as pool:  # hnn-core's NEURON state is global: a fresh process per run
            raw = pool.submit(_hnn.simulate_dipole, self.hnn_net, self.tstop, HNN_DT,
                              0.0 if jitter_seed is None else self.dt, jitter_seed or 0).result()
        n = _n_bins(self.tstop, self.dt)
        sub = int(round(self.dt / HNN_DT))
        dipole = raw["dipole"][:n * sub].reshape(n, sub, len(LAYERS)).mean(axis=1)
        st, sg = raw["spike_times"], raw["spike_gids"]
        spikes = [st[sg == g] for g in range(self.n_cells)]
        attrs = {"wall_seconds": _time.perf_counter() - start, "hnn_seconds": raw["seconds"],
                 "hnn_dt": HNN_DT}
        if jitter_seed is not None:
            attrs["drive_events_jittered_in_bins_seed"] = int(jitter_seed)
        return dipole, spikes, attrs

    def _label(self, dipole: np.ndarray, spikes: Sequence[np.ndarray], backend: str, attrs: dict,
               smooth_ms: float | None, scale: float | None) -> xr.Dataset:
        if smooth_ms is not None:
            dipole = smooth(dipole, check_number(smooth_ms, "smooth_ms (ms)", positive=True), self.dt)
        if scale is not None:
            dipole = dipole * check_number(scale, "scale")
        names = [p.name for p in self.populations]
        pop_of = np.array(names, dtype=object)[self.cell_population]
        st = spike_matrix(spikes)
        counts = [int(np.isfinite(st[self.cell_population == k]).sum()) for k in range(len(names))]
        ds = xr.Dataset(
            {
                "dipole": (("time", "layer"), np.asarray(dipole, dtype=np.float64),
                           {"units": "nA m", "long_name": "current dipole, hnn-core's sign and baseline"
                            + (f", {smooth_ms:g}-ms Hamming smoothing" if smooth_ms else "")
                            + (f", scaled x{scale:g}" if scale is not None else "")}),
                "spike_times": (("cell", "spike"), st, {"units": "ms", "long_name": "somatic spike times (NaN-padded)"}),
                "spike_count": (("population_name",), np.asarray(counts), {"units": "1"}),
            },
            coords={"time": ("time", np.arange(dipole.shape[0]) * self.dt, {"units": "ms", "long_name": "bin start"}),
                    "layer": list(LAYERS), "cell": np.arange(self.n_cells),
                    "population": ("cell", pop_of), "gid": ("cell", np.arange(self.n_cells)),
                    "population_name": names},
            attrs={"backend": backend, "tstop": self.tstop, "dt": self.dt, "n_cells": self.n_cells,
                   "n_contacts": self.n_contacts, "command": _util.command_line(), **_util.versions(),
                   **{k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in attrs.items()}},
        )
        return ds

    # -- back to hnn-core -------------------------------------------------------------------------------
    def to_hnn(self, gains: Mapping[int, float] | Sequence[float] | np.ndarray | None = None):
        """A new ``hnn_core.Network`` with each connectivity entry's ``A_weight`` times its gain.

        Parameters
        ----------
        gains : sequence (one per entry) or dict entry index -> gain, optional
            Multiplicative, finite and > 0 (default: all 1).
        """
        return with_gains(self.hnn_net, self.gain_vector(gains))

    def gain_vector(self, gains) -> np.ndarray:
        """``gains`` (sequence or dict entry -> gain) as one finite, positive gain per entry."""
        n = len(self.entries)
        if gains is None:
            return np.ones(n)
        if isinstance(gains, Mapping):
            out = np.ones(n)
            for k, g in gains.items():
                if not (isinstance(k, (int, np.integer)) and 0 <= k < n):
                    raise ValueError(f"gain key {k!r} is not a connectivity entry index (0..{n - 1})")
                out[k] = g
        else:
            out = np.asarray(gains, dtype=float).reshape(-1)
            if out.size != n:
                raise ValueError(f"{out.size} gains for {n} connectivity entries")
        bad = np.flatnonzero(~np.isfinite(out) | (out <= 0))
        if bad.size:
            raise ValueError(f"gain of entry {bad[0]} ({self.entry_names()[bad[0]]}) is {float(out[bad[0]])}; "
                             "gains must be finite and > 0")
        return out


def with_gains(hnn_net, gains: np.ndarray):
    """A deep copy of ``hnn_net`` with connectivity entry ``k``'s ``A_weight`` times ``gains[k]``."""
    if len(gains) != len(hnn_net.connectivity):
        raise ValueError(f"{len(gains)} gains for {len(hnn_net.connectivity)} connectivity entries")
    new = copy.deepcopy(hnn_net)
    for conn, g in zip(new.connectivity, gains):
        conn["nc_dict"]["A_weight"] = float(conn["nc_dict"]["A_weight"] * g)
    return new


def _check_weights(weight: np.ndarray, entry: np.ndarray, entries: list[dict]) -> None:
    bad = np.flatnonzero(~np.isfinite(weight) | (weight < 0))
    if bad.size:
        e = entries[int(entry[bad[0]])]
        raise ValueError(f"connectivity entry {int(entry[bad[0]])} ({e['src_type']} -> {e['target_type']} "
                         f"{e['loc']}/{e['receptor']}) has weight {float(weight[bad[0]])}: weights must be finite and >= 0")


def _sites(gids: np.ndarray, keys: np.ndarray, cell_of_gid: np.ndarray, site_maps: dict) -> np.ndarray:
    out = np.empty(gids.size, dtype=np.int64)
    for k, (g, key) in enumerate(zip(gids.tolist(), keys.tolist())):
        cell = cell_of_gid[g]
        site = site_maps[cell].get(key)
        if site is None:
            raise ValueError(f"cell {g} ({cell}) has no synapse {key!r}: hnn-core's receptor / location is not "
                             f"one of its sites {sorted(site_maps[cell])}")
        out[k] = site
    return out


def hnn_dipole(col: HNNColumn, dipole_population):
    """(time, layer) nA m from the engine's per-population dipoles (time, population, 3) nA um.

    hnn-core's layers sum its pyramidal cells' dipoles along the apical axis
    (``z``), add its baseline and convert fA m (= nA um) to nA m. Works on numpy
    arrays and on torch tensors (differentiably).
    """
    names = [p.name for p in col.populations]
    T = dipole_population.shape[0]
    l2 = dipole_population[:, names.index(DIPOLE_POPULATIONS["L2"]), 2] * 1e-6
    l5 = dipole_population[:, names.index(DIPOLE_POPULATIONS["L5"]), 2] * 1e-6
    base = col.baseline(T * col.dt)
    if hasattr(dipole_population, "new_tensor"):
        import torch

        base_t = dipole_population.new_tensor(base)
        return torch.stack([l2 + l5, l2, l5], dim=1) + base_t
    return np.stack([l2 + l5, l2, l5], axis=1) + base


def smooth(dipole, window_ms: float, dt: float):
    """hnn-core's ``Dipole.smooth``: convolution with a normalised Hamming window, 'same' length, per layer.

    ``dipole`` (time, layer) numpy or torch (differentiable); window of
    ``round(window_ms / dt)`` samples.
    """
    n = int(round(window_ms / dt))
    if n < 1:
        raise ValueError(f"smoothing window {window_ms} ms is shorter than the grid step {dt} ms")
    win = np.hamming(n)
    win = win / win.sum()
    if hasattr(dipole, "new_tensor"):
        import torch

        x = dipole.T[:, None, :]  # (layer, 1, time)
        w = dipole.new_tensor(win[::-1].copy())[None, None, :]
        left = (n - 1) // 2
        xp = torch.nn.functional.pad(x, (n - 1 - left, left))
        return torch.nn.functional.conv1d(xp, w)[:, 0, :].T
    return np.stack([np.convolve(dipole[:, k], win, mode="same") for k in range(dipole.shape[1])], axis=1)
