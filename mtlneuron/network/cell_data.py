"""Training data shaped like what networks feed: every cell of a NEURON network run as a single-cell trial.

:func:`cell_trials` runs a network in NEURON recording every segment of every
cell, and returns one trial per cell in the schema of ``mtl.datasets`` (so
``mtl.train.fit`` takes it like any dataset): the cell's ``inputs`` are its
own drive events plus every recurrent arrival — the presynaptic cell's NEURON
spike time plus the contact's delay, with the contact's weight times its
Tsodyks-Markram efficacy (:func:`mtlneuron.network.tm.efficacies`, the
recursion ``MtlTmExp2Syn`` runs) — binned like any drive, and its ``v``,
``imem``, ``dipole`` and ``spike_times`` are what NEURON recorded in the
network. :func:`cell_drives` gives those per-cell events exactly (replaying
one in ``mtl.simulate`` reproduces the cell's network trace; tested).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import cells as _cells
from .. import inputs as _inputs
from .. import simulate as _simulate
from .._util import spike_matrix
from .neuron_backend import run_neuron_cells
from .tm import efficacies

__all__ = ["cell_trials", "cell_drives"]

STAGE = "network"  # the ``stage`` of these trials (exclude_stages=["network"] leaves them out)


def cell_drives(net, spike_times, duration: float) -> list[xr.Dataset]:
    """Each cell's events in a network run: its drives plus recurrent arrivals (weights x TM efficacy).

    Parameters
    ----------
    net : Network
        The description that ran.
    spike_times : sequence of arrays
        Somatic spike times (ms) of every cell in that run (gid order).
    duration : float
        ms; arrivals at or after it are dropped.

    Returns
    -------
    list of xarray.Dataset
        One ``mtl.inputs`` events drive per cell (gid order).
    """
    c, d = net.connections, net.drives
    t_parts, s_parts, w_parts, g_parts = [d["time"]], [d["site"]], [d["weight"]], [d["gid"]]
    for k in range(len(c["pre"])):
        t_pre = np.asarray(spike_times[int(c["pre"][k])], dtype=float)
        t_pre = t_pre[np.isfinite(t_pre)]
        if not t_pre.size:
            continue
        eff = efficacies(t_pre, c["U"][k], c["D"][k], c["F"][k]) if np.isfinite(c["U"][k]) else np.ones(t_pre.size)
        arrive = t_pre + float(c["delay"][k])
        keep = arrive < duration
        t_parts.append(arrive[keep])
        s_parts.append(np.full(keep.sum(), int(c["site"][k])))
        w_parts.append(float(c["weight"][k]) * eff[keep])
        g_parts.append(np.full(keep.sum(), int(c["post"][k])))
    time, site, weight, gid = (np.concatenate(p) for p in (t_parts, s_parts, w_parts, g_parts))
    pop = net.population_of(np.arange(net.n_cells))
    return [_inputs.from_events(_cells.get(net.populations[pop[g]].cell), time[gid == g], site[gid == g],
                                weight[gid == g], duration, kind="network", gid=int(g))
            for g in range(net.n_cells)]


def cell_trials(net, duration: float, population: str | None = None) -> xr.Dataset:
    """Run ``net`` in NEURON and return its cells as single-cell trials (``trial`` = cell).

    Parameters
    ----------
    net : Network
        Any network description (e.g. ``mtl.network.rett(...)``).
    duration : float
        ms.
    population : str, optional
        Which population's cells (default: the only one; required when there are several,
        since trials of one file share a cell).

    Returns
    -------
    xarray.Dataset
        The ``mtl.datasets`` schema with a leading ``trial`` dim: ``inputs``
        (uS), ``v`` (mV), ``imem`` (nA), ``dipole`` (nA um), ``spike_times``
        (ms, NaN-padded), ``stage`` (``"network"``), ``trial_seed`` (the gid),
        ``gid``; attrs of the cell and the network. Save with ``to_netcdf``.
    """
    names = [p.name for p in net.populations]
    if population is None and len(names) > 1:
        raise ValueError(f"the network has populations {names}: name the one to record (population=...)")
    if population is not None and population not in names:
        raise ValueError(f"no population {population!r}; the network has {names}")
    k = 0 if population is None else names.index(population)
    raw = run_neuron_cells(net, duration)
    first, stop = (int(i) for i in net.offsets[k:k + 2])
    cell = _cells.get(net.populations[k].cell)
    drives = cell_drives(net, raw["spike_times"], duration)
    trials = []
    for g in range(first, stop):
        res = {"v": raw["cell_v"][g], "imem": raw["cell_imem"][g], "dipole": raw["cell_dipole"][g],
               "spike_times": raw["spike_times"][g]}
        trials.append(_simulate.to_dataset(cell, drives[g], res, net.dt))
    ds = xr.concat([t.drop_vars("spike_times") for t in trials], dim="trial", combine_attrs="override")
    ds["spike_times"] = (("trial", "spike"), spike_matrix(raw["spike_times"][first:stop]),
                         trials[0]["spike_times"].attrs)
    gids = np.arange(first, stop)
    ds = ds.assign(stage=("trial", np.full(gids.size, STAGE)), trial_seed=("trial", gids),
                   gid=("trial", gids, {"long_name": "cell id in the network"}))
    ds.attrs = {**trials[0].attrs, "drive_kind": "network", "seed": -1, "n_trials": int(gids.size),
                "network": f"{net.n_cells} cells, {len(net.connections['pre'])} contacts, population "
                           f"{names[k]!r}", "neuron_seconds": float(raw["neuron_seconds"])}
    return ds.assign_coords(trial=np.arange(gids.size))
