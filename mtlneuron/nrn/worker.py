"""Process isolation for NEURON.

NEURON state is global (temperature, mechanisms, the event queue), so
mtlneuron never builds NEURON cells in the user's process. Each cell variant
gets one persistent worker process; every build happens there and only numpy /
xarray data come back. On Linux workers are forked (instant start, no
re-import of a user's script; the child runs NEURON only, never torch);
elsewhere they are spawned.

Workers die with their parent (:func:`die_with_parent`, the initializer of
every pool made by :func:`pool`): on Linux the kernel sends them SIGKILL when
the parent dies (``prctl(PR_SET_PDEATHSIG)``), and on every platform a
watchdog thread exits them once their parent pid changes. A SIGKILL or
SIGTERM of the user's process therefore leaves no NEURON process running.

Inside any process (a worker here, a pool worker of ``datasets.generate``, a
dask worker) :func:`built` keeps one built cell per cell key for trials, with
its :class:`~mtlneuron.nrn.trial.Recorder`. A process may hold any number of
other cells besides (the NEURON network backend builds hundreds with
:func:`~mtlneuron.nrn.build.build_cell`).
"""
from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import numpy as np

__all__ = ["context", "pool", "die_with_parent", "WATCHDOG_PERIOD", "call",
           "built", "describe", "vmem_to_imem", "shutdown"]

_pools: dict[str, ProcessPoolExecutor] = {}
_built: dict[str, Any] = {}
WATCHDOG_PERIOD = 0.2  # s: how often a worker's watchdog checks that its parent still lives
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def context():
    """The multiprocessing context for NEURON workers (fork on Linux, else spawn)."""
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _watchdog(parent: int) -> None:
    while True:
        time.sleep(WATCHDOG_PERIOD)
        if os.getppid() != parent:
            os._exit(1)  # the parent died: nobody will read our results


def die_with_parent(parent: int, parent_main_thread: int | None = None) -> None:
    """Make this (worker) process exit when process ``parent`` dies; a pool initializer.

    On Linux, when the fork came from the parent's main thread (``threading.get_ident()``
    in a forked child is the forking thread's ident), the kernel kills this process
    the moment the parent dies (``PR_SET_PDEATHSIG``; the signal is tied to the
    forking *thread*, hence the check). The parent pid is checked right after, in case
    the parent died before the call. Everywhere, a daemon thread checks the parent
    pid every :data:`WATCHDOG_PERIOD` s and exits the process when it changed
    (re-parented to init or a subreaper).
    """
    if sys.platform.startswith("linux") and parent_main_thread == threading.get_ident():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl (unusual libc): the watchdog still works
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watchdog, args=(parent,), name="mtlneuron-parent-watchdog", daemon=True).start()


def pool(max_workers: int) -> ProcessPoolExecutor:
    """A process pool for NEURON work whose processes die with this process (:func:`die_with_parent`)."""
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=context(), initializer=die_with_parent,
                               initargs=(os.getpid(), threading.main_thread().ident))


def _pool_for(key: str) -> ProcessPoolExecutor:
    found = _pools.get(key)
    if found is None:
        found = _pools[key] = pool(1)
    return found


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
