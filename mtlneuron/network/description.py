"""The network description: plain data that every backend consumes unchanged.

A :class:`Network` lists

* **populations**: a name, a cell model (``mtl.cells.get`` name), a count and
  positions (um). Cells are numbered globally (``gid``) in population order.
* **connections**, one row per synaptic *contact*: presynaptic cell, postsynaptic
  cell, the target site (index into the postsynaptic cell's ``sites``), weight
  (uS, the peak-conductance scale of the first spike after rest), delay (ms,
  from the presynaptic somatic threshold crossing) and optional Tsodyks-Markram
  parameters ``U`` (1), ``D`` and ``F`` (ms); ``U = NaN`` marks a static
  synapse. A connection of five contacts is five rows with one ``pre``/``post``.
* **drives**: events per cell and site (``gid``, ``site``, ``time`` ms,
  ``weight`` uS) — background from :mod:`mtlneuron.inputs`, stimuli.
* what to **record** and the model grid ``dt``.

It is saved to and loaded from netCDF (:meth:`Network.to_netcdf`,
:meth:`Network.from_netcdf`), pickles, and can be concatenated into one
larger, block-diagonal network (:func:`concat`): that is how sweeps batch many
independent networks into one step.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from .. import _util
from ..conventions import DEFAULT_DT, ParameterError, check_dt, check_duration, check_memory

__all__ = ["Network", "PopulationSpec", "concat", "RECORDABLE", "BACKENDS", "RUN_COPIES", "run_memory"]

RECORDABLE = ("spikes", "v_soma", "dipole")
BACKENDS = ("surrogate", "neuron")
RUN_COPIES = 3  # a run's (time, cell) recordings exist about this many times at once (bins, stacked, labelled)
_CONN_FIELDS = ("pre", "post", "site", "weight", "delay", "U", "D", "F")
_DRIVE_FIELDS = ("gid", "site", "time", "weight")


@dataclass
class PopulationSpec:
    """One population: ``n`` cells of model ``cell`` (a ``mtl.cells.get`` name) at ``positions`` (um)."""

    name: str
    cell: str
    n: int
    positions: np.ndarray = field(default=None)  # (n, 3) um

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"population name must be a non-empty string, got {self.name!r}")
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(f"population {self.name!r}: n must be a positive integer, got {self.n!r}")
        self.n = int(self.n)
        if self.positions is None:
            self.positions = np.zeros((self.n, 3))
        self.positions = np.asarray(self.positions, dtype=float).reshape(-1, 3)
        if self.positions.shape[0] != self.n:
            raise ValueError(f"population {self.name!r}: {self.positions.shape[0]} positions for {self.n} cells")


def _columns(values: dict | None, fields: Sequence[str], defaults: dict) -> dict[str, np.ndarray]:
    values = dict(values or {})
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}; expected {list(fields)}")
    n = max([np.size(v) for v in values.values()] + [0])
    out = {}
    for name in fields:
        if name in values:
            col = np.asarray(values[name])
        elif name in defaults:
            col = np.full(n, defaults[name])
        elif n == 0:
            col = np.zeros(0)
        else:
            raise ValueError(f"missing column {name!r}")
        out[name] = np.broadcast_to(col, (n,)).copy() if col.ndim == 0 else col.ravel().copy()
        if out[name].size != n:
            raise ValueError(f"column {name!r} has {out[name].size} entries, others {n}")
    return out


class Network:
    """A network of cells, contacts and drives (plain data; see the module docstring).

    Parameters
    ----------
    populations : sequence of PopulationSpec
    connections : dict of arrays, optional
        Columns ``pre``, ``post`` (gid), ``site`` (int), ``weight`` (uS),
        ``delay`` (ms) and optionally ``U``, ``D``, ``F`` (TM; NaN: static).
    drives : dict of arrays, optional
        Columns ``gid``, ``site``, ``time`` (ms), ``weight`` (uS).
    dt : float
        Model grid (ms) of the surrogate backend and of recorded arrays.
    record : sequence of str
        Any of ``"spikes"``, ``"v_soma"``, ``"dipole"``.
    attrs : dict, optional
        Free-form provenance (builder name, parameters, seed).
    """

    def __init__(self, populations: Sequence[PopulationSpec], connections: dict | None = None,
                 drives: dict | None = None, *, dt: float = DEFAULT_DT,
                 record: Sequence[str] = RECORDABLE, attrs: dict | None = None) -> None:
        self.populations = list(populations)
        if not self.populations:
            raise ValueError("a network needs at least one population")
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError(f"population names must be unique, got {names}")
        nan = float("nan")
        self.connections = _columns(connections, _CONN_FIELDS, {"U": nan, "D": nan, "F": nan})
        self.drives = _columns(drives, _DRIVE_FIELDS, {})
        self.dt = check_dt(dt)
        bad = set(record) - set(RECORDABLE)
        if bad:
            raise ValueError(f"cannot record {sorted(bad)}; choose from {list(RECORDABLE)}")
        self.record = tuple(record)
        self.attrs = dict(attrs or {})
        self._cast()

    # -- structure -------------------------------------------------------------------------------
    def _cast(self) -> None:
        c, d = self.connections, self.drives
        for name in ("pre", "post", "site"):
            c[name] = c[name].astype(np.int64)
        for name in ("weight", "delay", "U", "D", "F"):
            c[name] = c[name].astype(float)
        d["gid"], d["site"] = d["gid"].astype(np.int64), d["site"].astype(np.int64)
        d["time"], d["weight"] = d["time"].astype(float), d["weight"].astype(float)

    @property
    def n_cells(self) -> int:
        """Total number of cells."""
        return sum(p.n for p in self.populations)

    @property
    def n_contacts(self) -> int:
        return int(self.connections["pre"].size)

    @property
    def offsets(self) -> np.ndarray:
        """First gid of each population (and the total at the end)."""
        return np.concatenate([[0], np.cumsum([p.n for p in self.populations])]).astype(np.int64)

    def population_of(self, gid: np.ndarray) -> np.ndarray:
        """Population index of each gid."""
        return np.searchsorted(self.offsets, np.asarray(gid), side="right") - 1

    @property
    def cell_population(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.populations)), [p.n for p in self.populations])

    @property
    def positions(self) -> np.ndarray:
        return np.concatenate([p.positions for p in self.populations])

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}: {p.n} x {p.cell}" for p in self.populations)
        return (f"<mtlneuron.network.Network ({pops}); {self.n_contacts} contacts, "
                f"{self.drives['time'].size} drive events, dt {self.dt} ms>")

    # -- validation ------------------------------------------------------------------------------
    def validate(self, duration: float | None = None, n_sites: dict[str, int] | None = None) -> None:
        """Check every column against the network; a clear error naming the first bad value.

        ``n_sites`` maps each population's cell name to its number of sites
        (looked up from ``mtl.cells`` when not given).
        """
        n = self.n_cells
        c, d = self.connections, self.drives
        n_sites = n_sites or _site_counts(self)
        cell_sites = np.array([n_sites[p.cell] for p in self.populations])[self.cell_population]
        for what, gids in (("connection pre", c["pre"]), ("connection post", c["post"]), ("drive gid", d["gid"])):
            _in_range(gids, 0, n, f"{what} cell", f"this network has cells 0..{n - 1}")
        for what, gid, site in (("connection", c["post"], c["site"]), ("drive", d["gid"], d["site"])):
            if site.size:
                bad = np.flatnonzero((site < 0) | (site >= cell_sites[gid]))
                if bad.size:
                    k = bad[0]
                    raise ValueError(f"{what} {k}: site {site[k]} does not exist on cell {gid[k]} "
                                     f"({cell_sites[gid[k]]} sites)")
        for what, col in (("connection weight", c["weight"]), ("drive weight", d["weight"]),
                          ("connection delay", c["delay"]), ("drive time", d["time"])):
            _finite_nonneg(col, what)
        if c["delay"].size:
            k = int(np.argmin(c["delay"]))
            if c["delay"][k] < self.dt - 1e-9:
                raise ValueError(f"connection {k}: delay {c['delay'][k]} ms is shorter than dt {self.dt} ms "
                                 "(a spike must arrive in a later bin)")
        tm = np.isfinite(c["U"])
        for name, lo, hi in (("U", 0.0, 1.0), ("D", 0.0, math.inf), ("F", 0.0, math.inf)):
            col = c[name][tm]
            bad = np.flatnonzero(~np.isfinite(col) | (col < lo) | (col > hi) | ((col <= 0) & (name != "F")))
            if bad.size:
                k = np.flatnonzero(tm)[bad[0]]
                raise ValueError(f"connection {k}: Tsodyks-Markram {name} = {c[name][k]!r} is outside its range")
        if duration is not None:
            duration = check_duration(duration)
            late = np.flatnonzero(d["time"] >= duration)
            if late.size:
                raise ValueError(f"drive event {late[0]} at {d['time'][late[0]]} ms is not before the "
                                 f"run's end ({duration} ms)")

    # -- running -----------------------------------------------------------------------------------
    def check_run(self, duration: float, max_memory: float | None = None) -> float:
        """The one rule of every backend for a run of ``duration`` ms; returns it as float.

        Refuses (``ValueError`` naming the value) a duration that is not a
        positive multiple of ``dt``, a drive event at or after the run's end,
        and a run whose recordings would need more than ``max_memory`` bytes
        (:func:`run_memory`; default :data:`~mtlneuron.conventions.MAX_MEMORY_BYTES`).
        Warns (``UserWarning``) when the run is longer than the drives were
        made for (the builder's ``duration`` attr): legitimate, e.g. to watch
        the network fall silent, but the rest of the run has no background drive.
        """
        duration = check_duration(duration)
        try:
            check_dt(self.dt, duration)
        except ValueError as err:
            raise ParameterError("duration", f"{err} (the network's grid)") from None
        check_memory(run_memory(self, duration), f"a {duration:g}-ms run of {self.n_cells} cells", max_memory)
        late = np.flatnonzero(self.drives["time"] >= duration)
        if late.size:
            raise ParameterError("duration", f"drive event {late[0]} at {self.drives['time'][late[0]]} ms is not "
                                 f"before the run's end ({duration} ms): run at least until the last event "
                                 f"(duration > {self.drives['time'].max()} ms) or build the network for "
                                 f"{duration} ms")
        made_for = self.attrs.get("duration")
        if made_for is not None and duration > float(made_for) + 1e-9:
            warnings.warn(f"duration {duration} ms is longer than the {float(made_for):g} ms this network's drives "
                          f"were made for: after {float(made_for):g} ms the cells get no background drive "
                          f"(build it with duration={duration:g} for a driven run)", UserWarning, stacklevel=3)
        return duration

    def run(self, duration: float, backend: str = "surrogate", *, max_memory: float | None = None,
            **kwargs: Any) -> xr.Dataset:
        """Simulate the network; returns spikes, somatic voltages, dipole and rates as xarray.

        Parameters
        ----------
        duration : float
            ms, a multiple of ``dt``; every drive event must lie before it (:meth:`check_run`,
            the same rule for both backends).
        backend : {"surrogate", "neuron"}
            ``"surrogate"``: batched surrogate engine (:func:`mtlneuron.network.engine.run_surrogate`;
            keyword arguments ``surrogates``, ``device``, ``spike_rule``, ``threads`` and
            ``progress=True``, a progress bar over the time bins).
            ``"neuron"``: the real cells in NEURON, one worker process
            (:func:`mtlneuron.network.neuron_backend.run_neuron`; no keyword arguments).
        max_memory : float, optional
            Bytes a run may need (:func:`run_memory`); default
            :data:`~mtlneuron.conventions.MAX_MEMORY_BYTES`.

        Returns
        -------
        xarray.Dataset
            ``spike_times`` (cell, spike), ``v_soma`` (time, cell), ``dipole`` (time, axis), ``rate``
            (rate_bin, population_name) and provenance attrs (:mod:`mtlneuron.network.results`).
        """
        if backend not in BACKENDS:
            raise ParameterError("backend", f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        duration = self.check_run(duration, max_memory)
        if backend == "surrogate":
            from .engine import run_surrogate

            return run_surrogate(self, duration, **kwargs)
        from .neuron_backend import run_neuron

        return run_neuron(self, duration, **kwargs)

    # -- files -------------------------------------------------------------------------------------
    def to_dataset(self) -> xr.Dataset:
        """The whole description as one xarray Dataset (what :meth:`to_netcdf` writes)."""
        pops = self.populations
        ds = xr.Dataset(
            {
                "population_name": ("population", np.array([p.name for p in pops], dtype=object)),
                "population_cell": ("population", np.array([p.cell for p in pops], dtype=object)),
                "population_size": ("population", np.array([p.n for p in pops], dtype=np.int64)),
                "position": (("cell", "xyz"), self.positions, {"units": "um"}),
                **{f"connection_{k}": ("contact", v, {"units": _UNITS.get(k, "1")})
                   for k, v in self.connections.items()},
                **{f"drive_{k}": ("event", v, {"units": _UNITS.get(k, "1")}) for k, v in self.drives.items()},
            },
            attrs={"dt": self.dt, "record": ",".join(self.record), "format": "mtlneuron.network.Network",
                   **{f"attr_{k}": (v if isinstance(v, (int, float, str)) else str(v))
                      for k, v in self.attrs.items()}},
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "Network":
        if ds.attrs.get("format") != "mtlneuron.network.Network":
            raise ValueError("not a network description (attr format != 'mtlneuron.network.Network')")
        pos, pops, start = ds["position"].values, [], 0
        for name, cell, n in zip(ds["population_name"].values, ds["population_cell"].values,
                                 ds["population_size"].values):
            pops.append(PopulationSpec(str(name), str(cell), int(n), pos[start:start + int(n)]))
            start += int(n)
        conns = {k: ds[f"connection_{k}"].values for k in _CONN_FIELDS}
        drives = {k: ds[f"drive_{k}"].values for k in _DRIVE_FIELDS}
        record = tuple(r for r in str(ds.attrs.get("record", "")).split(",") if r)
        attrs = {k[5:]: v for k, v in ds.attrs.items() if k.startswith("attr_")}
        return cls(pops, conns, drives, dt=float(ds.attrs["dt"]), record=record, attrs=attrs)

    def to_netcdf(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the description to a netCDF4 file (atomically)."""
        path = _util.check_output_path(path, overwrite)
        with _util.atomic_path(path) as tmp:
            self.to_dataset().to_netcdf(tmp, engine="netcdf4")
        return path

    @classmethod
    def from_netcdf(cls, path: str | os.PathLike) -> "Network":
        """Read a description written by :meth:`to_netcdf`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"network file {str(path)!r} does not exist")
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return cls.from_dataset(ds.load())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        a, b = self.to_dataset(), other.to_dataset()
        return a.equals(b) and {k: str(v) for k, v in a.attrs.items()} == {k: str(v) for k, v in b.attrs.items()}


def run_memory(net: Network, duration: float) -> float:
    """Bytes a run of ``net`` for ``duration`` ms needs, estimated before it starts.

    Per ``dt`` bin: spikes (float32) of every cell, somatic voltages when
    recorded, the dipole per population; :data:`RUN_COPIES` copies of each
    exist at once (per-bin list, stacked tensor, labelled result).
    """
    per_bin = net.n_cells * 4 * (1 + ("v_soma" in net.record)) + 12 * (len(net.populations) + 1)
    return RUN_COPIES * float(duration) / net.dt * per_bin


_UNITS = {"weight": "uS", "delay": "ms", "time": "ms", "D": "ms", "F": "ms"}


def _in_range(values: np.ndarray, lo: int, hi: int, what: str, hint: str) -> None:
    bad = np.flatnonzero((values < lo) | (values >= hi))
    if bad.size:
        raise ValueError(f"{what} {int(values[bad[0]])} (entry {bad[0]}) does not exist: {hint}")


def _finite_nonneg(values: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise ValueError(f"{what} {float(values[bad[0]])!r} (entry {bad[0]}) must be finite and >= 0")


def _site_counts(net: Network) -> dict[str, int]:
    from .. import cells

    return {p.cell: cells.get(p.cell).n_sites for p in net.populations}


def concat(networks: Sequence[Network]) -> tuple[Network, list[np.ndarray]]:
    """One block-diagonal network of independent ``networks`` (same populations, same dt).

    Returns the combined network (population ``p`` holds population ``p`` of
    every network, network after network) and, per network, the combined gid
    of each of its cells (``gids[k][old_gid]``). Used to batch sweeps into one
    engine step.
    """
    networks = list(networks)
    if not networks:
        raise ValueError("concat needs at least one network")
    first = networks[0]
    shape = [(p.name, p.cell) for p in first.populations]
    for k, net in enumerate(networks):
        if [(p.name, p.cell) for p in net.populations] != shape:
            raise ValueError(f"network {k} has populations {[(p.name, p.cell) for p in net.populations]}, "
                             f"network 0 has {shape}: only networks of the same populations batch together")
        if abs(net.dt - first.dt) > 1e-12:
            raise ValueError(f"network {k} has dt {net.dt} ms, network 0 has {first.dt} ms")
    pops, new_gid = [], []
    n_pop = len(first.populations)
    # new gid of (network k, population p, local index i): population-major layout
    sizes = np.array([[net.populations[p].n for p in range(n_pop)] for net in networks])  # (net, pop)
    pop_start = np.concatenate([[0], np.cumsum(sizes.sum(axis=0))])[:-1]
    within = np.cumsum(sizes, axis=0) - sizes  # offset of network k inside population p
    for k, net in enumerate(networks):
        old_pop = net.cell_population
        local = np.arange(net.n_cells) - net.offsets[old_pop]
        new_gid.append(pop_start[old_pop] + within[k, old_pop] + local)
    for p in range(n_pop):
        pos = np.concatenate([net.populations[p].positions for net in networks])
        pops.append(PopulationSpec(first.populations[p].name, first.populations[p].cell, int(sizes[:, p].sum()), pos))
    conns = {f: [] for f in _CONN_FIELDS}
    drives = {f: [] for f in _DRIVE_FIELDS}
    for k, net in enumerate(networks):
        for f in _CONN_FIELDS:
            col = net.connections[f]
            conns[f].append(new_gid[k][col] if f in ("pre", "post") else col)
        for f in _DRIVE_FIELDS:
            col = net.drives[f]
            drives[f].append(new_gid[k][col] if f == "gid" else col)
    combined = Network(pops, {f: np.concatenate(v) for f, v in conns.items()},
                       {f: np.concatenate(v) for f, v in drives.items()}, dt=first.dt,
                       record=first.record, attrs={"batched_networks": len(networks)})
    return combined, new_gid
