"""Multitask vs soma-only surrogate: same architecture, data, seed and epochs; held-out soma metrics.

    python benchmarks/ablation_multitask.py --arm multitask --data l5pc_train.nc --test l5pc_test.nc \
        --epochs 12 --out ablation_multitask.json &
    python benchmarks/ablation_multitask.py --arm soma --data l5pc_train.nc --test l5pc_test.nc \
        --epochs 12 --out ablation_soma.json &
    wait
    python benchmarks/ablation_multitask.py --report ablation_multitask.json ablation_soma.json

Arms (``train.fit`` loss weights, learned uncertainty weighting in both):

* ``multitask``: ``train.DEFAULT_LOSS_WEIGHTS`` (every segment's voltage, soma voltage,
  dipole, spikes).
* ``soma``: soma voltage and spikes only (``{"soma": 1, "spike": 1}``): the published
  CNN-LSTM's targets. The heads for the other segments and the dipole exist (same
  parameter count) but get no gradient.

Both use the default ``SurrogateConfig``, the same ``--seed`` (split, initialisation and trial
order), the same number of epochs (no early stopping: ``patience`` = epochs) and one CPU
thread each, so the two arms can run side by side on a 2-core machine with equal budgets.
The held-out file must come from a dataset seed never used for training.
"""
import argparse
import json
import time

import numpy as np
import torch

import mtlneuron as mtl
from mtlneuron import training as train

ARMS = {"multitask": dict(train.DEFAULT_LOSS_WEIGHTS), "soma": {"soma": 1.0, "spike": 1.0}}


def run_arm(args) -> dict:
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = train.fit(args.data if len(args.data) > 1 else args.data[0], loss_weights=ARMS[args.arm],
                      epochs=args.epochs, patience=args.epochs, seed=args.seed, progress=False)
    seconds = time.perf_counter() - start
    truth = mtl.datasets.open(args.test).load()
    score = mtl.evaluate(model.predict(truth), truth)
    f1 = score["spike_f1"].sel(window=5.0)
    region = {str(r): {"r": float(score["region_r_clipped"].sel(region=r)),
                       "rmse_mV": float(score["region_rmse_clipped"].sel(region=r)),
                       "ve": float(score["region_ve_clipped"].sel(region=r))} for r in score["region"].values}
    soma = int(np.flatnonzero(score["segment_region"].values == "soma")[0])
    return {"arm": args.arm, "seed": args.seed, "loss_weights": ARMS[args.arm], "epochs": args.epochs, "train_seconds": seconds,
            "n_parameters": model.n_parameters, "data": args.data, "test": args.test,
            "test_trials": int(truth.sizes["trial"]),
            "soma": {"ve_clipped": float(score["ve_clipped"][soma]), "r_clipped": float(score["r_clipped"][soma]),
                     "rmse_clipped_mV": float(score["rmse_clipped"][soma]), "spike_f1_5ms": float(f1),
                     "spike_precision_5ms": float(score["spike_precision"].sel(window=5.0)),
                     "spike_recall_5ms": float(score["spike_recall"].sel(window=5.0)),
                     "ve_raw": float(score["ve_raw"][soma])},
            "median_segment_r_clipped": float(np.nanmedian(score["r_clipped"].values)),
            "dipole_r_raw": [float(v) for v in score["dipole_r_raw"].values],
            "dipole_r_100hz": [float(v) for v in score["dipole_r"].values],
            "region": region}


def report(paths) -> None:
    res = [json.load(open(p)) for p in paths]
    print(f"{res[0]['epochs']} epochs each, {res[0]['n_parameters']:,} parameters, trained on {res[0]['data']}, "
          f"held-out {res[0]['test']} ({res[0]['test_trials']} trials)\n")
    print("| soma metric (held-out) | " + " | ".join(f"{r['arm']} (seed {r.get('seed', 0)})" for r in res) + " |")
    print("|---|" + "---|" * len(res))
    for key in ("ve_clipped", "r_clipped", "rmse_clipped_mV", "spike_f1_5ms", "spike_precision_5ms",
                "spike_recall_5ms", "ve_raw"):
        print(f"| {key} | " + " | ".join(f"{r['soma'][key]:.3f}" for r in res) + " |")
    print("| median segment r (clipped) | " + " | ".join(f"{r['median_segment_r_clipped']:.3f}" for r in res) + " |")
    # JSON files written before the band-limited metric existed hold the raw r as "dipole_r"
    print("| raw dipole r (z) | " + " | ".join(f"{r.get('dipole_r_raw', r.get('dipole_r'))[2]:.3f}" for r in res) + " |")
    print("| 100-Hz low-passed dipole r (z) | " + " | ".join(
        f"{r['dipole_r_100hz'][2]:.3f}" if "dipole_r_100hz" in r else "-" for r in res) + " |")
    print("| training wall time (s) | " + " | ".join(f"{r['train_seconds']:.0f}" for r in res) + " |")
    print("\nError by region (clipped voltage, region means over segments):\n")
    print("| region | " + " | ".join(f"{r['arm']} r | {r['arm']} RMSE (mV)" for r in res) + " |")
    print("|---|" + "---|---|" * len(res))
    for reg in res[0]["region"]:
        print(f"| {reg} | " + " | ".join(f"{r['region'][reg]['r']:.3f} | {r['region'][reg]['rmse_mV']:.2f}"
                                        for r in res) + " |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=list(ARMS))
    p.add_argument("--data", nargs="+")
    p.add_argument("--test")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0, help="split, initialisation and trial order (same in both arms)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--report", nargs="+")
    args = p.parse_args()
    if args.report:
        report(args.report)
        return
    if not (args.arm and args.data and args.test and args.out):
        p.error("an arm run needs --arm, --data, --test and --out")
    result = run_arm(args)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["soma"]))


if __name__ == "__main__":
    main()
