"""Firing regime of every built-in cell under its default Poisson drive.

    python benchmarks/drive_regimes.py [--seeds 6] [--duration 2000]

For each cell: mean firing rate over seeds 100.. (range over seeds) and the
fraction of 250-ms windows without a spike. Prints the table of docs/data_format.md.
"""
import argparse

import numpy as np

import mtlneuron as mtl


def regime(name, n_seeds, duration):
    cell = mtl.cells.get(name)
    rates, silent = [], []
    for seed in range(100, 100 + n_seeds):
        ds = mtl.simulate(cell, mtl.inputs.poisson(cell, duration, seed=seed))
        st = ds["spike_times"].values
        rates.append(st.size / duration * 1000.0)
        counts, _ = np.histogram(st, bins=np.arange(0.0, duration + 1.0, 250.0))
        silent.append(np.mean(counts == 0))
    return cell, np.array(rates), float(np.mean(silent))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2000.0)
    args = parser.parse_args()
    print("| cell | exc rate (Hz/site) | inh rate | exc weight (uS) | inh weight | mean firing | silent 250-ms windows |")
    print("|---|---|---|---|---|---|---|")
    for name in mtl.cells.available():
        cell, rates, silent = regime(name, args.seeds, args.duration)
        d = cell.drive_defaults
        print(f"| {name} | {d.rate_exc[0]:g}-{d.rate_exc[1]:g} | {d.rate_inh[0]:g}-{d.rate_inh[1]:g} | "
              f"{d.weight_exc[0]:g}-{d.weight_exc[1]:g} | {d.weight_inh[0]:g}-{d.weight_inh[1]:g} | "
              f"{rates.mean():.1f} Hz ({rates.min():.1f}-{rates.max():.1f}) | {silent * 100:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
