"""Parameter sweeps: many networks, batched into one engine step, metrics as xarray.

>>> grid = {"exc_scale": [0.75, 1.0, 1.25], "p_connect": [0.052, 0.078, 0.10]}
>>> ds = mtl.network.sweep(mtl.network.rett, grid, seeds=range(10))     # doctest: +SKIP
>>> ds["pre_aps"].mean("seed").plot()                                      # doctest: +SKIP
"""
from __future__ import annotations

import itertools
from concurrent.futures import Executor
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..conventions import ParameterError, check_duration, check_seed
from .description import BACKENDS, concat
from .results import to_result

__all__ = ["sweep", "run_batched", "check_grid", "RESERVED"]


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


RESERVED = ("seed", "duration")  # sweep's own arguments: never a grid key


def check_grid(grid: Mapping[str, Sequence], seeds: Sequence[int], fixed: Mapping[str, Any]) -> tuple[dict, list]:
    """``grid`` and ``seeds`` as plain lists, checked before any network is built.

    Refuses (``ParameterError`` naming the key) a grid that is not a mapping, a
    key that is sweep's own argument (``seed``, ``duration``) or also given as
    a fixed keyword, an empty or repeated value list, and empty, repeated or
    invalid ``seeds``. An empty grid is allowed: a sweep over seeds only.
    """
    if not isinstance(grid, Mapping):
        raise ParameterError("grid", f"grid must be a dict of parameter name -> list of values, got "
                             f"{type(grid).__name__}")
    out = {}
    for name, values in grid.items():
        if name in RESERVED:
            raise ParameterError("grid", f"grid key {name!r} is sweep's own argument: pass "
                                 f"{'seeds=[...]' if name == 'seed' else 'duration=...'} instead")
        if name in fixed:
            raise ParameterError("grid", f"grid key {name!r} is also given as a fixed keyword ({name}="
                                 f"{fixed[name]!r}): give it in one place")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ParameterError("grid", f"grid[{name!r}] must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise ParameterError("grid", f"grid[{name!r}] is empty: give at least one value")
        if len(set(map(repr, values))) != len(values):
            raise ParameterError("grid", f"grid[{name!r}] repeats a value: {values}")
        out[str(name)] = values
    if isinstance(seeds, (int, np.integer)):
        seeds = [seeds]
    seeds = [check_seed(s, "seeds entry") for s in seeds]
    if not seeds:
        raise ParameterError("seeds", "seeds is empty: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ParameterError("seeds", f"seeds repeats a seed: {seeds}")
    return out, seeds


def sweep(builder: Callable[..., Any], grid: Mapping[str, Sequence], seeds: Sequence[int] = (0,), *,
          duration: float = 300.0, backend: str = "surrogate", metrics: Callable | None = None,
          executor: Executor | None = None, batch_size: int = 10, surrogates: Mapping[str, Any] | None = None,
          progress: bool = True, threads: int | None = None, **fixed) -> xr.Dataset:
    """Run ``builder(**point, seed=seed, duration=duration, **fixed)`` for every grid point and seed.

    Parameters
    ----------
    builder : callable
        Returns a Network (e.g. :func:`mtlneuron.network.rett`).
    grid : dict of sequences
        Parameter name -> values (non-empty, distinct); every combination is
        run. ``{}`` sweeps over ``seeds`` only. ``seed`` and ``duration`` are
        sweep's own arguments, never grid keys (:func:`check_grid`).
    seeds : sequence of int
        Non-empty, distinct.
    duration : float
        ms.
    backend : {"surrogate", "neuron"}
        Surrogate networks run ``batch_size`` at a time as one batched network.
    metrics : callable, optional
        Result Dataset -> Dataset of scalars (default :func:`rett_metrics`).
    executor : concurrent.futures.Executor, optional
        Spreads batches (surrogate) or single networks (NEURON) over workers, e.g. a dask client's.
    batch_size : int
        Networks per batched surrogate run.
    surrogates : dict, optional
        Cell name -> Surrogate or checkpoint path (default: the pretrained models).
    progress : bool
        Progress bars counted in networks: one while building, one while running.
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
    if backend not in BACKENDS:
        raise ParameterError("backend", f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ParameterError("batch_size", f"batch_size must be an integer >= 1, got {batch_size!r}")
    grid, seeds = check_grid(grid, seeds, fixed)
    metrics = metrics or rett_metrics
    names = list(grid)
    points = list(itertools.product(*[grid[n] for n in names], seeds))
    nets = []
    for pt in tqdm(points, desc="sweep: building", unit="network", disable=not progress):
        net = builder(**dict(zip(names, pt[:-1])), seed=int(pt[-1]), duration=duration, **fixed)
        net.check_run(duration)
        nets.append(net)
    results = _run_all(nets, duration, backend, executor, int(batch_size), surrogates, threads, progress)
    per_run = [metrics(r).assign(rate=r["rate"].isel(population_name=0, drop=True)) for r in results]
    stacked = xr.concat(per_run, dim="run")
    index = {n: ("run", [pt[i] for pt in points]) for i, n in enumerate(names)}
    index["seed"] = ("run", [int(pt[-1]) for pt in points])
    stacked = stacked.assign_coords(index)
    if names:
        out = stacked.set_index(run=names + ["seed"]).unstack("run")
    else:
        out = stacked.swap_dims(run="seed")
    out.attrs.update({"backend": backend, "duration": duration, "n_runs": len(points),
                      "builder": getattr(builder, "__name__", str(builder))})
    return out


def _run_all(nets: list, duration: float, backend: str, executor: Executor | None, batch_size: int,
             surrogates: Mapping[str, Any] | None, threads: int | None, progress: bool) -> list[xr.Dataset]:
    """Results of every network in order; the bar advances by the networks each batch finishes."""
    from tqdm.auto import tqdm

    if backend == "neuron":
        from .neuron_backend import run_neuron_many

        return run_neuron_many(nets, duration, executor=executor, progress=progress)
    chunks = [nets[i:i + batch_size] for i in range(0, len(nets), batch_size)]
    results: list[xr.Dataset] = []
    with tqdm(total=len(nets), desc="sweep: running", unit="network", disable=not progress) as bar:
        if executor is None:
            for chunk in chunks:
                results += run_batched(chunk, duration, surrogates, threads=threads)
                bar.update(len(chunk))
        else:
            futures = [executor.submit(run_batched, chunk, duration, surrogates, threads=threads) for chunk in chunks]
            for chunk, f in zip(chunks, futures):
                results += f.result()
                bar.update(len(chunk))
    return results
