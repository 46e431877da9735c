"""Network speed: the surrogate engine against NEURON on this machine, in one run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/network_speed.py [--threads 1] [--sweep-runs 300]
                                                            [--unconnected 1,50,1000,5000] [--memory-cells 5000]

Parts (each printed as a markdown table):

1. **Rett microcircuit** (150 l5pc, p 0.10, 300 ms): one network in NEURON (one
   fresh worker process, build and run timed apart) and in the surrogate engine
   (model loading, compilation and the run; best of 3).
2. **Unconnected l5pc** under the Rett background drive, 100 ms: NEURON for the
   sizes up to ``--neuron-max`` cells (one process), the surrogate for all;
   NEURON beyond that is extrapolated per cell from the largest measured size
   (marked "extrapolated").
3. **A sweep** of at least ``--sweep-runs`` Rett networks (exc_scale 0.75-1.25
   x 5 p_connect values in 5.2-10 % x 10 seeds, 150 cells, 300 ms) through ``mtl.network.sweep``; the
   NEURON figure is the measured single-network time x runs / cores (every run
   in its own process, all cores busy), i.e. extrapolated.
4. **Memory**: peak resident memory of a fresh process that builds and runs
   ``--memory-cells`` unconnected l5pc for 1 s on the surrogate.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

import mtlneuron as mtl
from mtlneuron.network import Network, PopulationSpec, rett, run_neuron, sweep


THREADS = 1


def surrogate_run(net, duration: float, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        net.run(duration, backend="surrogate", threads=THREADS)
        best = min(best, time.perf_counter() - start)
    return best


def unconnected(n: int, duration: float) -> Network:
    """``n`` l5pc without connections, each under its own default Poisson drive (the Rett background)."""
    cell = mtl.cells.get("l5pc")
    cols = {"gid": [], "site": [], "time": [], "weight": []}
    for gid in range(n):
        bg = mtl.inputs.poisson(cell, duration, seed=gid)
        cols["gid"].append(np.full(bg.sizes["event"], gid))
        for k in ("site", "time", "weight"):
            cols[k].append(bg[k].values)
    drives = {k: np.concatenate(v) for k, v in cols.items()}
    return Network([PopulationSpec("L5PC", "l5pc", n)], drives=drives, record=("v_soma",))


def part_rett(threads: int) -> float:
    net = rett(n_cells=150, p_connect=0.10, seed=0)
    ref = run_neuron(net, 300.0)
    t_sur = surrogate_run(net, 300.0)
    t_nrn = float(ref.attrs["wall_seconds"])
    print("\n| Rett 150 cells, 300 ms | wall (s) | NEURON / surrogate |\n|---|---|---|")
    print(f"| NEURON, 1 process (build {ref.attrs['build_seconds']:.1f} s + run {ref.attrs['neuron_seconds']:.1f} s)"
          f" | {t_nrn:.1f} | 1 |")
    print(f"| surrogate, {threads} thread(s) | {t_sur:.2f} | {t_nrn / t_sur:.0f}x |")
    return t_nrn


def part_unconnected(sizes: list[int], neuron_max: int, duration: float = 100.0) -> None:
    print(f"\n| unconnected l5pc, {duration:g} ms | NEURON (s) | surrogate (s) | ratio | per cell-second: NEURON / "
          "surrogate |\n|---|---|---|---|---|")
    per_cell = None
    for n in sizes:
        net = unconnected(n, duration)
        n_real = net.n_cells
        t_sur = surrogate_run(net, duration, repeats=1 if n_real > 1000 else 3)
        if n_real <= neuron_max:
            t_nrn = float(run_neuron(net, duration).attrs["neuron_seconds"])
            per_cell, label = t_nrn / n_real, f"{t_nrn:.2f}"
        else:
            t_nrn = per_cell * n_real
            label = f"{t_nrn:.0f} (extrapolated)"
        print(f"| {n_real} | {label} | {t_sur:.2f} | {t_nrn / t_sur:.1f}x | {t_nrn / t_sur:.1f}x |")


def part_sweep(runs: int, t_nrn_one: float) -> None:
    # the map: exc_scale 0.75-1.25 x p_connect 5.2-10 %, >= 10 seeds a point
    seeds = 10
    n_exc = max(2, int(np.ceil(runs / seeds / 5)))
    grid = {"exc_scale": list(np.round(np.linspace(0.75, 1.25, n_exc), 3)),
            "p_connect": list(np.round(np.linspace(0.052, 0.10, 5), 3))}
    n = n_exc * 5 * seeds
    start = time.perf_counter()
    ds = sweep(rett, grid, seeds=range(seeds), batch_size=16, progress=True, threads=THREADS)
    t_sur = time.perf_counter() - start
    cores = os.cpu_count() or 1
    t_nrn = t_nrn_one * n / cores
    print(f"\n| sweep: {n} Rett networks (150 cells, 300 ms) | wall |\n|---|---|")
    print(f"| surrogate, batched 16 per step | {t_sur:.0f} s ({t_sur / n:.2f} s per network) |")
    print(f"| NEURON, {cores} processes (extrapolated from one network: {t_nrn_one:.0f} s) | {t_nrn:.0f} s "
          f"({t_nrn / 3600:.1f} h) |")
    print(f"| ratio | {t_nrn / t_sur:.0f}x |")
    print(f"(pre-stimulus APs over the grid: {int(ds['pre_aps'].min())}-{int(ds['pre_aps'].max())})")


def part_memory(n: int) -> None:
    code = (f"import resource, time, torch; "
            f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); from network_speed import unconnected; "
            f"net = unconnected({n}, 1000.0); t = time.perf_counter(); r = net.run(1000.0, backend='surrogate', threads={THREADS}); "
            f"print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "
            f"int((r.spike_times.notnull()).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(f"\n| {n} unconnected l5pc, 1 s, surrogate | wall {float(out[0]):.0f} s | peak RSS {float(out[1]):.2f} GiB "
          f"| {out[2]} spikes |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--unconnected", default="1,50,1000,5000")
    p.add_argument("--neuron-max", type=int, default=50)
    p.add_argument("--sweep-runs", type=int, default=300)
    p.add_argument("--memory-cells", type=int, default=5000)
    p.add_argument("--parts", default="rett,unconnected,sweep,memory")
    a = p.parse_args()
    global THREADS
    THREADS = a.threads
    parts = a.parts.split(",")
    print(f"torch {torch.__version__}, {a.threads} thread(s), {os.cpu_count()} cores; mtlneuron {mtl.__version__}")
    t_one = part_rett(a.threads) if "rett" in parts or "sweep" in parts else None
    if "unconnected" in parts:
        part_unconnected([int(n) for n in a.unconnected.split(",")], a.neuron_max)
    if "sweep" in parts:
        part_sweep(a.sweep_runs, t_one)
    if "memory" in parts:
        part_memory(a.memory_cells)
    print(f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
