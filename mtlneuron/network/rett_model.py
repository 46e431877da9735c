"""The Rett L5 microcircuit of Oláh, Pedersen & Rowan (eLife 2022), on our ``l5pc``.

Built as the paper's Methods describe, with our choices stated where the paper
leaves one open:

* ``n_cells`` L5 pyramidal cells (``mtl.cells.get("l5pc")``, 200 sites each)
  on a 2-D sheet (positions carry no physics here).
* **Connectivity** (Hay & Segev 2015): every unordered pair is reciprocally
  connected with probability ``0.5 p`` (both directions, weight x 1.5),
  otherwise connected one way (direction at random) with probability ``p``;
  so the probability of a directed connection is ``p``.
* Each connection has **5 contacts** on proximal excitatory sites (sites
  within ``PROXIMAL_UM`` of the soma centre, drawn without replacement), a
  **1-ms delay** from the presynaptic threshold crossing, and
  **Tsodyks-Markram** U = 0.38, D = 365.6 ms, F = 25.71 ms.
* **Contact weight** ``CONTACT_WEIGHT_US`` is calibrated so that one
  connection (5 contacts, first spike) gives a ~1 mV somatic unitary EPSP at
  rest, as in paired recordings of L5 thick-tufted cells (Markram et al. 1997:
  1.3 +- 1.1 mV); measured 0.87 +- 0.01 mV over 3 contact draws (1 nS per
  contact: 3.89 mV). Command: ``python benchmarks/rett_calibration.py``. (The
  paper's code used 3.6 nS per contact on its own cell.)
* **Background**: ``mtl.inputs.poisson`` on all 200 sites with the cell's
  default rate and weight ranges; ``exc_scale`` scales excitatory background
  weights and the recurrent contact weight, ``inh_scale`` the inhibitory
  background weights.
* **Stimulus**: at ``stim_time`` (100 ms) every proximal excitatory site gets
  one event inside 1 ms, ``STIM_TOTAL_US`` (50 nS) in all: every cell fires
  within 10 ms of it in NEURON.

:func:`rett_metrics` counts pre-stimulus APs in ``[WARMUP_MS, stim_time)``
(50-100 ms: the drive's onset fires every cell together at ~17, 27 and 38 ms,
in NEURON as in the surrogate, and counting that transient would swamp the
recurrent activity the map is about; ``onset_aps`` reports it apart), response
APs (``[stim_time, stim_time + 50)``), and decides ``stable``: a network is
**stable** when no 5-ms bin in ``[WARMUP_MS, stim_time)`` holds spikes from
more than ``SYNC_FRACTION`` (20 %) of the cells — i.e. no population burst runs
through the circuit on its own after the onset. The paper's code gives no
definition.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from .. import cells as _cells
from .. import inputs as _inputs
from ..cells import PROXIMAL_UM, proximal_sites  # noqa: F401 - the proximal rule, shared with the training drives
from ..cells import RETT_CONTACT_WEIGHT_US as CONTACT_WEIGHT_US
from ..cells import RETT_STIM_TOTAL_US as STIM_TOTAL_US
from ..conventions import MAX_EVENTS, MAX_MEMORY_BYTES, ParameterError, check_memory, check_number, check_seed
from .description import Network, PopulationSpec
from .results import RATE_BIN_MS

__all__ = ["rett", "rett_metrics", "RettParameters", "proximal_sites", "rett_memory"]

SYNC_FRACTION = 0.2  # stable: no pre-stimulus 5-ms bin with spikes from more than this fraction of cells
RESPONSE_MS = 50.0  # ms after the stimulus in which response APs are counted
WARMUP_MS = 50.0  # ms: the drive's onset makes every cell fire together at ~17, 27, 38 ms (in NEURON too);
# the stability verdict looks at [WARMUP_MS, stim_time) only


@dataclass(frozen=True)
class RettParameters:
    """Everything :func:`rett` was built with (saved in the network's attrs)."""

    n_cells: int = 150
    p_connect: float = 0.10
    exc_scale: float = 1.0
    inh_scale: float = 1.0
    seed: int = 0
    duration: float = 300.0
    stim_time: float = 100.0
    contacts: int = 5
    delay: float = 1.0
    reciprocal_factor: float = 1.5
    contact_weight: float = CONTACT_WEIGHT_US
    U: float = 0.38
    D: float = 365.6
    F: float = 25.71
    stim_total: float = STIM_TOTAL_US

    def __post_init__(self) -> None:
        for name, (kind, low, high, text) in _RANGES.items():
            _check_range(name, getattr(self, name), kind, low, high, text)
        if not 0.0 <= self.stim_time < self.duration:
            raise ParameterError("stim_time", f"rett: stim_time = {self.stim_time!r} must lie in [0, duration "
                                 f"{self.duration:g}) ms")


# every checked field: (int or float, low, high, the range as the message states it); p_connect <= 2/3 because
# a pair is reciprocal with 0.5 p and one-way with p (1.5 p <= 1)
_RANGES = {
    "n_cells": ("int", 2, math.inf, "an integer >= 2"),
    "p_connect": ("float", 0.0, 2.0 / 3.0, "in [0, 2/3] (reciprocal 0.5 p + one-way p <= 1)"),
    "exc_scale": ("float", 0.0, math.inf, ">= 0"),
    "inh_scale": ("float", 0.0, math.inf, ">= 0"),
    "duration": ("float", 0.0, math.inf, "> 0 ms"),
    "stim_time": ("float", 0.0, math.inf, ">= 0 ms"),
    "contacts": ("int", 1, math.inf, "an integer >= 1"),
    "delay": ("float", 0.0, math.inf, "> 0 ms"),
    "reciprocal_factor": ("float", 0.0, math.inf, ">= 0"),
    "contact_weight": ("float", 0.0, math.inf, ">= 0 uS"),
    "U": ("float", 0.0, 1.0, "in (0, 1]"),
    "D": ("float", 0.0, math.inf, "> 0 ms"),
    "F": ("float", 0.0, math.inf, ">= 0 ms"),
    "stim_total": ("float", 0.0, math.inf, ">= 0 uS"),
}
_OPEN_LOW = {"duration", "delay", "U", "D"}  # these must be > low, the others >= low


def _check_range(name: str, value, kind: str, low: float, high: float, text: str) -> None:
    """Refuse a non-number, NaN, non-integer (``kind == "int"``) or out-of-range field, naming its range."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = not isinstance(value, bool) and math.isfinite(x) and low <= x <= high
    ok = ok and (kind != "int" or x == int(x)) and not (name in _OPEN_LOW and x <= low)
    if not ok:
        raise ParameterError(name, f"rett: {name} = {value!r} is out of range: it must be {text}")


# bytes of building one network, estimated before anything is drawn (rett_memory)
PAIR_BYTES = 48  # per unordered pair of cells: indices, draws and masks of the connection scheme
CONTACT_BYTES = 128  # per contact: 8 columns of 8 bytes, twice (drawn, then the Network's copy)
EVENT_BYTES = 100  # per drive event: the drawn drive, its columns and their concatenation


def rett_memory(params: "RettParameters", n_sites: int, mean_rate_hz: float) -> float:
    """Bytes :func:`rett` needs to build ``params`` (pairs, contacts, drive events), estimated."""
    n = float(params.n_cells)
    pairs = n * (n - 1) / 2
    contacts = params.p_connect * n * (n - 1) * params.contacts
    events = n * n_sites * mean_rate_hz * params.duration / 1000.0
    return pairs * PAIR_BYTES + contacts * CONTACT_BYTES + events * EVENT_BYTES


def _pairs(n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed (pre, post, weight factor) of the reciprocal / one-way scheme of the module docstring."""
    i, j = np.triu_indices(n, k=1)
    r = rng.random(i.size)
    recip = r < 0.5 * p
    oneway = (r >= 0.5 * p) & (r < 1.5 * p)
    flip = rng.random(i.size) < 0.5
    pre = np.concatenate([i[recip], j[recip], np.where(flip, j, i)[oneway]])
    post = np.concatenate([j[recip], i[recip], np.where(flip, i, j)[oneway]])
    factor = np.concatenate([np.full(2 * recip.sum(), 1.5), np.ones(oneway.sum())])
    order = np.lexsort((post, pre))
    return pre[order], post[order], factor[order]


def rett(n_cells: int = 150, p_connect: float = 0.10, exc_scale: float = 1.0, inh_scale: float = 1.0,
         seed: int = 0, *, duration: float = 300.0, stim_time: float = 100.0, dt: float = 0.5,
         max_memory: float | None = None, **overrides) -> Network:
    """Build the Rett L5 microcircuit (see the module docstring for every choice).

    Parameters
    ----------
    n_cells : int
        Number of L5 pyramidal cells.
    p_connect : float
        Directed connection probability, in [0, 2/3].
    exc_scale, inh_scale : float
        Scale of excitatory background and recurrent quantal size / of inhibitory background.
    seed : int
        Seeds connectivity, contact sites, positions and background drives.
    duration, stim_time : float
        Run length the drives are made for, and stimulus time (ms).
    dt : float
        Model grid (ms).
    max_memory : float, optional
        Bytes the network may need to build (:func:`rett_memory`, checked before
        anything is drawn); default :data:`~mtlneuron.conventions.MAX_MEMORY_BYTES`.
    **overrides
        Any other :class:`RettParameters` field (``contacts``, ``delay``, ``contact_weight``, ...).

    Returns
    -------
    Network
    """
    unknown = sorted(set(overrides) - set(RettParameters.__dataclass_fields__))
    if unknown:
        raise ParameterError(unknown[0], f"rett: unknown parameter(s) {unknown}; known: "
                             f"{sorted(RettParameters.__dataclass_fields__)} and dt, max_memory")
    params = RettParameters(n_cells=n_cells, p_connect=p_connect, exc_scale=exc_scale, inh_scale=inh_scale,
                            seed=check_seed(seed), duration=duration, stim_time=stim_time, **overrides)
    cell = _cells.get("l5pc")
    d = cell.drive_defaults
    kinds = cell.sites["kind"].values.astype(str)
    mean_rate = float(np.where(kinds == "exc", np.mean(d.rate_exc), np.mean(d.rate_inh)).mean())
    check_memory(rett_memory(params, kinds.size, mean_rate), f"rett(n_cells={n_cells!r}, duration={duration!r})",
                 max_memory)
    # the memory bound covers every drive event, so the per-drive event bound of inputs must not bite first
    max_events = max(MAX_EVENTS, (MAX_MEMORY_BYTES if max_memory is None else float(max_memory)) / EVENT_BYTES)
    rng = np.random.default_rng([int(seed), 2022])
    prox = proximal_sites(cell)
    if prox.size < params.contacts:
        raise ValueError(f"rett: only {prox.size} proximal sites for {params.contacts} contacts per connection")
    n = int(params.n_cells)
    pre, post, factor = _pairs(n, params.p_connect, rng)
    n_conn = pre.size
    sites = np.stack([rng.choice(prox, params.contacts, replace=False) for _ in range(n_conn)]) \
        if n_conn else np.zeros((0, params.contacts), dtype=np.int64)
    k = params.contacts
    conns = {
        "pre": np.repeat(pre, k), "post": np.repeat(post, k), "site": sites.ravel(),
        "weight": np.repeat(factor, k) * params.contact_weight * params.exc_scale,
        "delay": np.full(n_conn * k, params.delay),
        "U": np.full(n_conn * k, params.U), "D": np.full(n_conn * k, params.D), "F": np.full(n_conn * k, params.F),
    }
    drives = _drives(cell, params, prox, rng, max_events)
    side = 50.0 * np.ceil(np.sqrt(n))
    positions = np.column_stack([rng.uniform(0, side, n), rng.uniform(0, side, n), np.zeros(n)])
    return Network([PopulationSpec("L5PC", "l5pc", n, positions)], conns, drives, dt=dt,
                   attrs={"builder": "mtlneuron.network.rett", **asdict(params)})


def _drives(cell, params: RettParameters, prox: np.ndarray, rng: np.random.Generator, max_events: float) -> dict:
    d = cell.drive_defaults
    weight = {"exc": (d.weight_exc[0] * params.exc_scale, d.weight_exc[1] * params.exc_scale),
              "inh": (d.weight_inh[0] * params.inh_scale, d.weight_inh[1] * params.inh_scale)}
    seeds = rng.integers(0, 2**31 - 1, size=params.n_cells)
    cols = {"gid": [], "site": [], "time": [], "weight": []}
    for gid in range(params.n_cells):
        bg = _inputs.poisson(cell, params.duration, weight=weight, seed=int(seeds[gid]), max_events=max_events)
        stim_t = params.stim_time + rng.uniform(0.0, 1.0, prox.size)
        times = np.concatenate([bg["time"].values, stim_t])
        cols["gid"].append(np.full(times.size, gid))
        cols["site"].append(np.concatenate([bg["site"].values, prox]))
        cols["time"].append(times)
        cols["weight"].append(np.concatenate([bg["weight"].values, np.full(prox.size, params.stim_total / prox.size)]))
    return {k: np.concatenate(v) for k, v in cols.items()}


def rett_metrics(result: xr.Dataset, stim_time: float | None = None) -> xr.Dataset:
    """Onset, pre-stimulus and response APs, synchrony and the ``stable`` verdict (module docstring).

    Parameters
    ----------
    result : xarray.Dataset
        From ``Network.run`` (either backend) of a :func:`rett` network.
    stim_time : float, optional
        ms; default: the network's own (from the result's attrs).
    """
    if not isinstance(result, xr.Dataset) or "spike_times" not in result or \
            result["spike_times"].dims != ("cell", "spike"):
        dims = result["spike_times"].dims if isinstance(result, xr.Dataset) and "spike_times" in result else None
        raise ValueError(f"rett_metrics needs a network result (net.run(...): spike_times over (cell, spike)); got "
                         f"{type(result).__name__} with spike_times dims {dims} - a single-cell result of "
                         f"mtl.simulate is scored with mtl.evaluate")
    if stim_time is None:
        stim_time = float(result.attrs.get("network_stim_time", 100.0))
    stim_time = check_number(stim_time, "stim_time (ms)", minimum=0.0)
    st = result["spike_times"].values
    n_cells = st.shape[0]
    start = min(WARMUP_MS, stim_time)
    onset = np.isfinite(st) & (st < start)
    pre = np.isfinite(st) & (st >= start) & (st < stim_time)
    resp = np.isfinite(st) & (st >= stim_time) & (st < stim_time + RESPONSE_MS)
    edges = np.arange(start, stim_time + 1e-9, RATE_BIN_MS)
    # cells with at least one spike in each pre-stimulus bin
    cells_per_bin = np.zeros(max(edges.size - 1, 0))
    for k in range(edges.size - 1):
        in_bin = np.isfinite(st) & (st >= edges[k]) & (st < edges[k + 1])
        cells_per_bin[k] = in_bin.any(axis=1).sum()
    max_frac = float(cells_per_bin.max() / n_cells) if cells_per_bin.size else 0.0
    return xr.Dataset({
        "onset_aps": ((), int(onset.sum()), {"units": "1", "long_name": f"APs of the drive onset [0, {start:g}) ms"}),
        "pre_aps": ((), int(pre.sum()),
                    {"units": "1", "long_name": f"pre-stimulus APs [{start:g}, {stim_time:g}) ms"}),
        "response_aps": ((), int(resp.sum()),
                         {"units": "1", "long_name": f"APs in [{stim_time}, {stim_time + RESPONSE_MS}) ms"}),
        "responding_fraction": ((), float(resp.any(axis=1).mean()),
                                {"units": "1", "long_name": "fraction of cells firing after the stimulus"}),
        "max_sync_fraction": ((), max_frac, {"units": "1", "long_name":
                              f"largest fraction of cells firing in one {RATE_BIN_MS:g}-ms bin in [{WARMUP_MS:g}, stim) ms"}),
        "stable": ((), bool(max_frac <= SYNC_FRACTION),
                   {"long_name": f"no pre-stimulus {RATE_BIN_MS:g}-ms bin with > {SYNC_FRACTION:.0%} of cells firing"}),
    })
