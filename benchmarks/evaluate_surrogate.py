"""Held-out metrics of a trained surrogate, as a markdown table for its model card.

    python benchmarks/evaluate_surrogate.py --model data/point.pt --data point_test.nc [--plot out/eval.png]

The held-out file must come from ``mtl.datasets.generate(..., seed=S, mix={"default": 1})``
with a seed never used for training data (plain ``inputs.poisson`` defaults).
"""
import argparse
import time

import numpy as np
import torch

import mtlneuron as mtl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = mtl.Surrogate.load(args.model)
    truth = mtl.datasets.open(args.data).load()
    start = time.perf_counter()
    pred = model.predict(truth)
    seconds = time.perf_counter() - start
    score = mtl.evaluate(pred, truth)
    n, dur = truth.sizes["trial"], truth.sizes["time"] * truth.attrs["dt"] / 1000.0
    print(f"held-out: {args.data}, {n} trials x {dur:g} s = {n * dur:g} s, dataset seed "
          f"{truth.attrs.get('dataset_seed')}; prediction took {seconds:.1f} s\n")
    print("| metric | value |")
    print("|---|---|")
    for name in sorted(score.data_vars):
        var = score[name]
        if var.ndim == 0:
            print(f"| {name} | {float(var):.4g} |")
        elif var.dims == ("window",):
            for w in var["window"].values:
                print(f"| {name} (+-{w:g} ms) | {float(var.sel(window=w)):.4g} |")
        elif var.dims == ("region",) and name.endswith("_clipped"):
            for reg in var["region"].values:
                print(f"| {name} [{reg}] | {float(var.sel(region=reg)):.4g} |")
        elif var.dims == ("ion",):
            for ion in var["ion"].values:
                print(f"| {name} [{ion}] | {float(var.sel(ion=ion)):.4g} |")
        elif var.dims == ("axis",):
            for ax in var["axis"].values:
                print(f"| {name} [{ax}] | {float(var.sel(axis=ax)):.4g} |")
        elif var.dims == ("segment",) and name == "r_clipped":
            print(f"| median over segments of r_clipped | {float(np.nanmedian(var.values)):.4g} |")
    if args.plot:
        mtl.evaluate.plot(pred, truth, args.plot)


if __name__ == "__main__":
    main()
