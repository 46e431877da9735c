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

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from .. import cells as _cells
from .. import inputs as _inputs
from ..cells import PROXIMAL_UM, proximal_sites  # noqa: F401 - the proximal rule, shared with the training drives
from ..cells import RETT_CONTACT_WEIGHT_US as CONTACT_WEIGHT_US
from ..cells import RETT_STIM_TOTAL_US as STIM_TOTAL_US
from .description import Network, PopulationSpec
from .results import RATE_BIN_MS

__all__ = ["rett", "rett_metrics", "RettParameters", "proximal_sites"]

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
        checks = {
            "n_cells": (self.n_cells, int(self.n_cells) == self.n_cells and self.n_cells >= 2),
            "p_connect": (self.p_connect, np.isfinite(self.p_connect) and 0.0 <= self.p_connect <= 1.0),
            "exc_scale": (self.exc_scale, np.isfinite(self.exc_scale) and self.exc_scale >= 0),
            "inh_scale": (self.inh_scale, np.isfinite(self.inh_scale) and self.inh_scale >= 0),
            "duration": (self.duration, np.isfinite(self.duration) and self.duration > 0),
            "contacts": (self.contacts, int(self.contacts) == self.contacts and self.contacts >= 1),
            "contact_weight": (self.contact_weight, np.isfinite(self.contact_weight) and self.contact_weight >= 0),
            "stim_total": (self.stim_total, np.isfinite(self.stim_total) and self.stim_total >= 0),
        }
        for name, (value, ok) in checks.items():
            if not ok:
                raise ValueError(f"rett: {name} = {value!r} is out of range")
        if 1.5 * self.p_connect > 1.0:
            raise ValueError(f"rett: p_connect = {self.p_connect!r} needs 1.5 * p <= 1 (reciprocal 0.5 p + one-way p)")
        if not 0.0 <= self.stim_time < self.duration:
            raise ValueError(f"rett: stim_time {self.stim_time!r} must lie in [0, duration {self.duration})")


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
         **overrides) -> Network:
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
    **overrides
        Any other :class:`RettParameters` field (``contacts``, ``delay``, ``contact_weight``, ...).

    Returns
    -------
    Network
    """
    params = RettParameters(n_cells=n_cells, p_connect=p_connect, exc_scale=exc_scale, inh_scale=inh_scale,
                            seed=int(seed), duration=float(duration), stim_time=float(stim_time), **overrides)
    cell = _cells.get("l5pc")
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
    drives = _drives(cell, params, prox, rng)
    side = 50.0 * np.ceil(np.sqrt(n))
    positions = np.column_stack([rng.uniform(0, side, n), rng.uniform(0, side, n), np.zeros(n)])
    return Network([PopulationSpec("L5PC", "l5pc", n, positions)], conns, drives, dt=dt,
                   attrs={"builder": "mtlneuron.network.rett", **asdict(params)})


def _drives(cell, params: RettParameters, prox: np.ndarray, rng: np.random.Generator) -> dict:
    d = cell.drive_defaults
    weight = {"exc": (d.weight_exc[0] * params.exc_scale, d.weight_exc[1] * params.exc_scale),
              "inh": (d.weight_inh[0] * params.inh_scale, d.weight_inh[1] * params.inh_scale)}
    seeds = rng.integers(0, 2**31 - 1, size=params.n_cells)
    cols = {"gid": [], "site": [], "time": [], "weight": []}
    for gid in range(params.n_cells):
        bg = _inputs.poisson(cell, params.duration, weight=weight, seed=int(seeds[gid]))
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
    if stim_time is None:
        stim_time = float(result.attrs.get("network_stim_time", 100.0))
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
