"""Process isolation for NEURON.

NEURON state is global (temperature, section names, mechanisms), and hnn-core
names every section of a cell type the same way, so mtlneuron never builds
NEURON cells in the user's process. Each cell gets one persistent worker
process; every build happens there and only numpy / xarray data come back.
On Linux workers are forked (instant start, no re-import of a user's script;
the child runs NEURON only, never torch); elsewhere they are spawned.

Inside any process (a worker here, a pool worker of ``datasets.generate`` or a
dask worker), :func:`built` keeps one built cell per cell key.
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

_pools: dict[str, ProcessPoolExecutor] = {}
_built: dict[str, Any] = {}


def context():
    """The multiprocessing context for NEURON workers (fork on Linux, else spawn)."""
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def pool_for(key: str) -> ProcessPoolExecutor:
    """The persistent single-process pool that hosts cell ``key``."""
    pool = _pools.get(key)
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context())
        _pools[key] = pool
    return pool


def call(key: str, fn: Callable, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in the worker of cell ``key`` and return its result."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return pool_for(key).submit(fn, *args, **kwargs).result()
    except BrokenProcessPool:
        # A crashed NEURON worker (segfault) must not poison later calls.
        _pools.pop(key, None)
        raise RuntimeError(f"the NEURON worker process for cell {key!r} died; it will be restarted on the next call")


def built(cell) -> Any:
    """The NEURON build of ``cell`` in *this* process, created once per key."""
    obj = _built.get(cell.key)
    if obj is None:
        clash = [k for k, b in _built.items() if b.template == cell.template]
        if clash:
            raise RuntimeError(
                f"this process already holds cell {clash[0]!r} of NEURON template {cell.template!r}; "
                f"{cell.key!r} would share its section names. Use one process per cell variant."
            )
        obj = cell._build_neuron()
        _built[cell.key] = obj
    return obj


@atexit.register
def shutdown() -> None:
    for pool in _pools.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _pools.clear()
