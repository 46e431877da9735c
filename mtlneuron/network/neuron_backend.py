"""The NEURON backend: the same network description, real cells, in worker processes.

Each network runs in a fresh worker process (NEURON's state is global, and a
finished network's sections are freed with the process). :func:`run_neuron`
runs one; :func:`run_neuron_many` spreads many over a process pool (all
cores) or any ``concurrent.futures.Executor`` (a dask cluster).
"""
from __future__ import annotations

import os
import time as _time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Sequence

import xarray as xr

from .. import cells as _cells
from ..conventions import check_duration, n_bins as _n_bins
from ..nrn import worker as _worker
from ..nrn.network import simulate_network
from .results import to_result

__all__ = ["run_neuron", "run_neuron_many", "run_neuron_cells"]


def _task(net, duration: float, record_cells: bool = False) -> dict:
    cell_list = [_cells.get(p.cell) for p in net.populations]
    return simulate_network(cell_list, [p.n for p in net.populations], net.connections, net.drives, duration,
                            net.dt, record_v="v_soma" in net.record, record_dipole="dipole" in net.record,
                            record_cells=record_cells)


def _check(net, duration: float) -> float:
    duration = check_duration(duration)
    _n_bins(duration, net.dt)
    for p in net.populations:
        _cells.get(p.cell).sites  # tables built (in the cell's worker) before the network's process forks
    net.validate(duration)
    return duration


def _label(net, duration: float, raw: dict, wall: float) -> xr.Dataset:
    attrs = {"wall_seconds": wall, "build_seconds": raw["build_seconds"], "neuron_seconds": raw["neuron_seconds"],
             "spike_rule": "somatic NetCon threshold crossing (cell.spike_threshold) at the 0.025-ms step"}
    return to_result(net, duration, raw["spike_times"], raw.get("v_soma"), raw.get("dipole"), "neuron", attrs)


def run_neuron(net, duration: float) -> xr.Dataset:
    """Run ``net`` in NEURON (one fresh worker process) and label the result."""
    duration = _check(net, duration)
    start = _time.perf_counter()
    with _worker.pool(1) as pool:  # dies with this process
        raw = pool.submit(_task, net, duration).result()
    return _label(net, duration, raw, _time.perf_counter() - start)


def run_neuron_cells(net, duration: float) -> dict:
    """Run ``net`` in NEURON (one fresh worker) recording every cell: the raw arrays of
    :func:`mtlneuron.nrn.network.simulate_network` with ``record_cells=True``."""
    duration = _check(net, duration)
    with _worker.pool(1) as pool:
        return pool.submit(_task, net, duration, True).result()


def run_neuron_many(nets: Sequence, duration: float, *, executor: Executor | None = None,
                    n_workers: int | None = None, progress: bool = True) -> list[xr.Dataset]:
    """Run many networks in NEURON, each in its own process; results in input order.

    Parameters
    ----------
    executor : concurrent.futures.Executor, optional
        Where to run (e.g. a dask client's executor). Default: ``n_workers``
        at a time, each network in a fresh process.
    n_workers : int, optional
        Pool size (default: all cores).
    """
    from tqdm.auto import tqdm

    nets = list(nets)
    duration = max(_check(net, duration) for net in nets) if nets else check_duration(duration)
    start = _time.perf_counter()
    if executor is None:
        # threads only wait: each run forks its own fresh NEURON process (run_neuron)
        workers = max(1, min(n_workers or os.cpu_count() or 1, len(nets) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_neuron, net, duration) for net in nets]
            return [f.result() for f in tqdm(futures, desc="NEURON networks", disable=not progress)]
    futures = [executor.submit(_task, net, duration) for net in nets]
    return [_label(net, duration, f.result(), _time.perf_counter() - start)
            for net, f in tqdm(list(zip(nets, futures)), desc="NEURON networks", disable=not progress)]
