"""Throughput of datasets.generate against bare NEURON for the same simulations.

    python benchmarks/generate_throughput.py [--n-trials 20] [--duration 1000]

1. bare NEURON: the same 20 l5pc drives run one after another in plain NEURON
   + hnn-core (benchmarks/bare_neuron_l5pc.py), summing the integration wall
   time of each run (cell build excluded, which favours bare NEURON);
2. ``datasets.generate`` with 1 worker, then with 2 workers: whole wall time,
   from the call to the merged netCDF file (worker start, cell build,
   recording, down-sampling, writing included).
Prints a markdown table for docs/benchmarks.md.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mtlneuron as mtl
from mtlneuron import datasets

HERE = Path(__file__).parent


def bare_neuron_seconds(cell, n_trials, duration, seed, tmp):
    plan = datasets.curriculum(n_trials, seed)
    drives = [datasets.trial_drive(cell, datasets.trial_seed(seed, i), plan[i][1], duration) for i in range(n_trials)]
    sites = cell.sites
    inp = Path(tmp) / "bare_in.npz"
    np.savez(inp, section=cell.segments["section"].values[sites["segment"].values].astype(str),
             sec_x=sites["sec_x"].values, point_process=sites["point_process"].values.astype(str),
             nrn_params=sites["nrn_params"].values.astype(str),
             time=np.concatenate([d["time"].values for d in drives]),
             site=np.concatenate([d["site"].values for d in drives]),
             weight=np.concatenate([d["weight"].values for d in drives]),
             trial=np.concatenate([np.full(d.sizes["event"], i) for i, d in enumerate(drives)]),
             duration=duration)
    out = Path(tmp) / "bare_out.npz"
    subprocess.run([sys.executable, str(HERE / "bare_neuron_l5pc.py"), str(inp), str(out)], check=True,
                   capture_output=True)
    return float(np.load(out)["seconds"].sum())


def generate_seconds(cell, n_trials, duration, seed, workers, tmp):
    start = time.perf_counter()
    datasets.generate(cell, n_trials, duration, Path(tmp) / f"gen{workers}.nc", seed=seed, n_workers=workers,
                      overwrite=True, progress=False)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--duration", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cell = mtl.cells.get("l5pc")
    with tempfile.TemporaryDirectory() as tmp:
        bare = bare_neuron_seconds(cell, args.n_trials, args.duration, args.seed, tmp)
        one = generate_seconds(cell, args.n_trials, args.duration, args.seed, 1, tmp)
        two = generate_seconds(cell, args.n_trials, args.duration, args.seed, 2, tmp)
    print(f"{args.n_trials} x {args.duration:.0f} ms l5pc trials on {os.cpu_count()} cores\n")
    print("| run | wall time (s) | vs bare NEURON |")
    print("|---|---|---|")
    print(f"| bare NEURON, sum of integration times | {bare:.1f} | 1.00 |")
    print(f"| `generate`, 1 worker | {one:.1f} | {one / bare:.2f} |")
    print(f"| `generate`, 2 workers | {two:.1f} | {two / bare:.2f} |")
    print(f"\nspeed-up 2 workers vs 1: {one / two:.2f}x")


if __name__ == "__main__":
    main()
