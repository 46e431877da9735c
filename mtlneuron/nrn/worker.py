"""Process isolation for NEURON.

NEURON state is global (temperature, mechanisms, the event queue), so
mtlneuron never builds NEURON cells in the user's process. Each cell variant
gets one persistent worker process; every build happens there and only numpy /
xarray data come back. On Linux workers are forked (instant start, no
re-import of a user's script; the child runs NEURON only, never torch);
elsewhere they are spawned.

Inside any process (a worker here, a pool worker of ``datasets.generate``, a
dask worker) :func:`built` keeps one built cell per cell key for trials, with
its :class:`~mtlneuron.nrn.trial.Recorder`. A process may hold any number of
other cells besides (the NEURON network backend builds hundreds with
:func:`~mtlneuron.nrn.build.build_cell`).
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import numpy as np

__all__ = ["context", "call", "built", "describe", "vmem_to_imem", "shutdown"]

_pools: dict[str, ProcessPoolExecutor] = {}
_built: dict[str, Any] = {}


def context():
    """The multiprocessing context for NEURON workers (fork on Linux, else spawn)."""
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _pool_for(key: str) -> ProcessPoolExecutor:
    pool = _pools.get(key)
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context())
        _pools[key] = pool
    return pool


def call(key: str, fn: Callable, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in the worker process named ``key`` and return its result."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return _pool_for(key).submit(fn, *args, **kwargs).result()
    except BrokenProcessPool:
        # A crashed NEURON worker (segfault) must not poison later calls.
        _pools.pop(key, None)
        raise RuntimeError(f"the NEURON worker process {key!r} died; it will be restarted on the next call")


def built(cell) -> Any:
    """The trial instance of ``cell`` in *this* process, built once per cell key."""
    from .build import build_cell

    obj = _built.get(cell.key)
    if obj is None:
        obj = build_cell(cell)
        _built[cell.key] = obj
    return obj


def _describe_here(cell):
    b = built(cell)
    return b.segment_table, b.site_table


def _vmem_to_imem_here(cell) -> np.ndarray:
    return np.asarray(built(cell).lfpy.get_transformation_matrix_vmem_to_imem())


def describe(cell):
    """``(segments, sites)`` tables of ``cell``, computed in its worker process."""
    return call(cell.key, _describe_here, cell)


def vmem_to_imem(cell) -> np.ndarray:
    """LFPy's V -> I_m matrix of ``cell`` (nA per mV), computed in its worker process."""
    return call(cell.key, _vmem_to_imem_here, cell)


@atexit.register
def shutdown() -> None:
    """Stop every worker process (also run at interpreter exit)."""
    for pool in _pools.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _pools.clear()
