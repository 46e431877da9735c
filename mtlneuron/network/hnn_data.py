"""Training data from hnn-core network runs: every cell of the HNN column as a single-cell trial.

The hnn-core twin of :func:`mtlneuron.network.cell_trials`. :func:`hnn_cell_trials`
runs an ``hnn_core.Network`` through hnn-core's own builder (in a worker
process), records every cell, and returns, per mtlneuron cell (``l23pc``,
``l5pc_hnn``, ``basket``), one trial per cell in the ``mtl.datasets`` schema:

* ``inputs``: every synaptic event the cell received — each NetCon's source
  spike time (a drive's event or a cell's spike) plus its delay, with its
  weight — binned per site (section x receptor, hnn-core's synapse);
* ``v`` / ``imem``: every segment, bin means on the model grid;
* ``dipole``: hnn-core's own dipole of the cell (``dipole.mod``: axial currents
  along the apical trunk; fA m = nA um) on axis ``z``, ``x`` and ``y`` zero
  (basket cells carry no dipole in hnn-core); this is the quantity hnn-core
  sums into its ``L2`` / ``L5`` / ``agg`` dipoles, so a surrogate trained on
  it predicts hnn-core's dipole;
* ``spike_times``: the somatic threshold crossings hnn-core records.

Trials start where hnn-core starts (``finitialize`` at the sections' initial
voltage, no steady state), as the cells of the column do.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import cells as _cells
from .. import inputs as _inputs
from .. import simulate as _simulate
from .._util import spike_matrix
from ..conventions import DEFAULT_DT, check_duration
from ..nrn import hnn as _hnn
from ..nrn import worker as _worker

__all__ = ["hnn_cell_trials", "site_index"]

STAGE = "hnn_network"


def site_index(cell_name: str) -> dict[str, int]:
    """hnn-core synapse key (``apical_tuft_ampa``) -> site index of ``mtl.cells.get(cell_name)``."""
    cell = _cells.get(cell_name)
    sections = cell.segments["section"].values.astype(str)[cell.sites["segment"].values]
    receptors = cell.sites["receptor"].values.astype(str)
    return {_hnn.site_key(s, r): i for i, (s, r) in enumerate(zip(sections, receptors))}


def hnn_cell_trials(net, tstop: float, dt: float = DEFAULT_DT) -> dict[str, xr.Dataset]:
    """Run ``net`` (an ``hnn_core.Network``) in hnn-core and return its cells as training trials.

    Parameters
    ----------
    net : hnn_core.Network
        With its drives; left unchanged.
    tstop : float
        ms, a multiple of ``dt``.
    dt : float
        Model grid (ms).

    Returns
    -------
    dict of str -> xarray.Dataset
        mtlneuron cell name -> trials (``trial`` = cell) in the ``mtl.datasets``
        schema, with ``gid`` and ``hnn_cell_type`` per trial and ``stage``
        ``"hnn_network"``.
    """
    tstop = check_duration(tstop)
    for name in set(_hnn.HNN_CELL_TYPES.values()):
        _cells.get(name).sites  # tables built in the cells' workers before the run's process forks
    with _worker.pool(1) as pool:  # a fresh NEURON process per run (hnn-core's state is global)
        raw = pool.submit(_hnn.record_cells, net, tstop, dt).result()
    by_cell: dict[str, list[int]] = {}
    for i, t in enumerate(raw["cell_type"]):
        by_cell.setdefault(_hnn.HNN_CELL_TYPES[t], []).append(i)
    return {name: _trials(name, idx, raw, tstop, dt) for name, idx in by_cell.items()}


def _trials(name: str, idx: list[int], raw: dict, tstop: float, dt: float) -> xr.Dataset:
    cell = _cells.get(name)
    sites = site_index(name)
    trials = []
    for i in idx:
        ev = raw["events"][i]
        unknown = sorted(set(ev["key"]) - set(sites))
        if unknown:
            raise ValueError(f"cell {name!r} received events at hnn-core synapses {unknown} it has no site for")
        site = np.array([sites[k] for k in ev["key"]], dtype=np.int64)
        drive = _inputs.from_events(cell, ev["time"], site, ev["weight"], tstop, kind="hnn_network",
                                    gid=int(raw["gids"][i]))
        dip = np.zeros((raw["dipole"][i].size, 3), dtype=np.float32)
        dip[:, 2] = raw["dipole"][i]
        res = {"v": raw["v"][i], "imem": raw["imem"][i], "dipole": dip, "spike_times": raw["spike_times"][i]}
        trials.append(_simulate.to_dataset(cell, drive, res, dt))
    ds = xr.concat([t.drop_vars("spike_times") for t in trials], dim="trial", combine_attrs="override")
    ds["spike_times"] = (("trial", "spike"), spike_matrix([raw["spike_times"][i] for i in idx]),
                         trials[0]["spike_times"].attrs)
    ds["dipole"].attrs["long_name"] = ("hnn-core's current dipole of the cell (dipole.mod, along the apical trunk) "
                                       "on z; x, y zero")
    gids = np.asarray(raw["gids"])[idx]
    ds = ds.assign(stage=("trial", np.full(gids.size, STAGE)), trial_seed=("trial", gids),
                   gid=("trial", gids, {"long_name": "hnn-core gid"}),
                   hnn_cell_type=("trial", np.array([raw["cell_type"][i] for i in idx], dtype=object)))
    ds.attrs = {**trials[0].attrs, "drive_kind": "hnn_network", "seed": -1, "n_trials": int(gids.size),
                "start": "hnn-core's finitialize (no steady state)", "hnn_seconds": float(raw["seconds"])}
    return ds.assign_coords(trial=np.arange(gids.size))
