"""Parameter sweeps: many networks, batched into one engine step, metrics as xarray.

>>> grid = {"exc_scale": [0.75, 1.0, 1.25], "p_connect": [0.052, 0.078, 0.10]}
>>> ds = mtl.network.sweep(mtl.network.rett, grid, seeds=range(10))     # doctest: +SKIP
>>> ds["pre_aps"].mean("seed").plot()                                      # doctest: +SKIP
"""
from __future__ import annotations

import itertools
from concurrent.futures import Executor
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..conventions import check_duration
from .description import concat
from .results import to_result

__all__ = ["sweep", "run_batched"]


def run_batched(nets: Sequence, duration: float, surrogates: Mapping[str, Any] | None = None,
                device: str = "cpu", threads: int | None = None) -> list[xr.Dataset]:
    """Run independent networks as one block-diagonal network (one step per bin); results per network."""
    import torch

    from .engine import SurrogateEngine

    combined, gids = concat(nets)
    engine = SurrogateEngine(combined, surrogates, device, threads=threads)
    with torch.inference_mode():
        out = engine.simulate(duration)
    s = out["spikes"].cpu().numpy() > 0.5
    v = out["v_soma"].cpu().numpy()
    results = []
    for net, g in zip(nets, gids):
        t_idx, cell = np.nonzero(s[:, g])
        times = (t_idx + 0.5) * net.dt
        spikes = [times[cell == i] for i in range(net.n_cells)]
        # the summed dipole of a batched run mixes networks: recompute per network is not possible
        # from the sum, so sweeps report no dipole
        results.append(to_result(net, duration, spikes, v[:, g], None, "surrogate",
                                 {"batched_with": len(nets), "device": str(engine.device)}))
    return results


def sweep(builder: Callable[..., Any], grid: Mapping[str, Sequence], seeds: Sequence[int] = (0,), *,
          duration: float = 300.0, backend: str = "surrogate", metrics: Callable | None = None,
          executor: Executor | None = None, batch_size: int = 10, surrogates: Mapping[str, Any] | None = None,
          progress: bool = True, threads: int | None = None, **fixed) -> xr.Dataset:
    """Run ``builder(**point, seed=seed, **fixed)`` for every grid point and seed; metrics over the grid.

    Parameters
    ----------
    builder : callable
        Returns a Network (e.g. :func:`mtlneuron.network.rett`).
    grid : dict of sequences
        Parameter name -> values; every combination is run.
    seeds : sequence of int
    duration : float
        ms.
    backend : {"surrogate", "neuron"}
        Surrogate networks run ``batch_size`` at a time as one batched network.
    metrics : callable, optional
        Result Dataset -> Dataset of scalars (default :func:`rett_metrics`).
    executor : concurrent.futures.Executor, optional
        Spreads batches (surrogate) or single networks (NEURON) over workers, e.g. a dask client's.
    threads : int, optional
        CPU threads of the surrogate engine (see :class:`~mtlneuron.network.engine.SurrogateEngine`).
    **fixed
        Passed to every ``builder`` call.

    Returns
    -------
    xarray.Dataset
        The metrics and the population ``rate`` over the grid dims and ``seed``.
    """
    from tqdm.auto import tqdm

    from .rett_model import rett_metrics

    duration = check_duration(duration)
    if backend not in ("surrogate", "neuron"):
        raise ValueError(f"backend must be 'surrogate' or 'neuron', got {backend!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    metrics = metrics or rett_metrics
    names = list(grid)
    points = list(itertools.product(*[list(grid[n]) for n in names], list(seeds)))
    nets = [builder(**dict(zip(names, pt[:-1])), seed=int(pt[-1]), duration=duration, **fixed) for pt in points]
    if backend == "neuron":
        from .neuron_backend import run_neuron_many

        results = run_neuron_many(nets, duration, executor=executor, progress=progress)
    else:
        chunks = [nets[i:i + int(batch_size)] for i in range(0, len(nets), int(batch_size))]
        if executor is None:
            results = []
            for chunk in tqdm(chunks, desc="sweep batches", disable=not progress):
                results += run_batched(chunk, duration, surrogates, threads=threads)
        else:
            futures = [executor.submit(run_batched, chunk, duration, surrogates, threads=threads) for chunk in chunks]
            results = [r for f in tqdm(futures, desc="sweep batches", disable=not progress) for r in f.result()]
    per_run = [metrics(r).assign(rate=r["rate"].isel(population_name=0, drop=True)) for r in results]
    stacked = xr.concat(per_run, dim="run")
    index = {n: ("run", [pt[i] for pt in points]) for i, n in enumerate(names)}
    index["seed"] = ("run", [int(pt[-1]) for pt in points])
    out = stacked.assign_coords(index).set_index(run=names + ["seed"]).unstack("run")
    out.attrs.update({"backend": backend, "duration": duration, "n_runs": len(points),
                      "builder": getattr(builder, "__name__", str(builder))})
    return out
