"""Train and score the HNN column's three surrogates (l5pc_hnn, l23pc, basket) on hnn-core column data.

    # data: benchmarks/generate_hnn_data.py (training seeds 1000+, 2000+; held-out seeds 9000+)
    OPENBLAS_NUM_THREADS=1 python benchmarks/hnn_surrogates.py train l5pc_hnn ~/mtl-work/hnn/train \\
        ~/mtl-work/hnn/models [--max-time 1500] [--epochs 200] [--init data/l5pc_hnn.pt]
    OPENBLAS_NUM_THREADS=1 python benchmarks/hnn_surrogates.py score ~/mtl-work/hnn/models ~/mtl-work/hnn/test

``train`` fits ``mtl.train`` on every ``hnn_s*_{cell}.nc`` in the training
folder (whole 250-ms trials as windows, they start at hnn-core's own start),
resumable from its checkpoint. ``score`` predicts every held-out file's trials
and prints, per cell, the Tolley & Jones figures (soma r, apical-tuft r, dipole
r; on the raw voltage) and ours (spike F1 +-5 ms, clipped soma r and VE,
median segment r, 100-Hz dipole r), with the seconds of data behind them.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

CELLS = ("l5pc_hnn", "l23pc", "basket")


def train(args) -> None:
    from mtlneuron.training.cli import main as train_main

    files = sorted(str(p) for p in Path(args.data).expanduser().glob(f"hnn_s*_{args.cell}.nc"))
    if not files:
        sys.exit(f"no hnn_s*_{args.cell}.nc in {args.data}")
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    argv = ["--data", *files, "--out", str(out / f"{args.cell}.pt"), "--cell", args.cell, "--window", "500",
            "--epochs", str(args.epochs), "--patience", "12", "--threads", "1", "--seed", "0", "--resume",
            "--no-progress"]
    if args.max_time:
        argv += ["--max-time", str(args.max_time)]
    if args.lr:
        argv += ["--lr", str(args.lr)]
    if args.init:  # fine-tune a checkpoint (e.g. the shipped model) on the files found now
        argv += ["--init", str(Path(args.init).expanduser())]
    print(f"training {args.cell} on {len(files)} files", flush=True)
    t0 = time.perf_counter()
    train_main(argv)
    print(f"{args.cell}: {time.perf_counter() - t0:.0f} s", flush=True)


def score(args) -> None:
    import torch

    import mtlneuron as mtl
    from mtlneuron._metrics import pearson_r

    torch.set_num_threads(1)
    folder = Path(args.data).expanduser()
    print("| cell | held-out s | soma r (raw) | apical tuft r (raw) | dipole r (raw) | spike F1 +-5 ms | "
          "clipped soma r | clipped soma VE | median segment r | dipole r 100 Hz |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell in CELLS:
        files = sorted(folder.glob(f"hnn_s*_{cell}.nc"))
        if not files:
            continue
        model = mtl.Surrogate.load(Path(args.models).expanduser() / f"{cell}.pt")
        parts = [xr.load_dataset(f) for f in files]
        n_spike = max(p.sizes["spike"] for p in parts)  # NaN-padded to one length before concatenating
        parts = [p.pad(spike=(0, n_spike - p.sizes["spike"]), constant_values=np.nan) for p in parts]
        truth = xr.concat(parts, dim="trial", combine_attrs="override")
        truth = truth.assign_coords(trial=np.arange(truth.sizes["trial"]))
        pred = model.predict(truth)
        s = mtl.evaluate(pred, truth)
        soma = truth["segment"].values[truth["region"].values == "soma"][0]
        v_t, v_p = truth["v"].sel(segment=soma).values, pred["v"].sel(segment=soma).values
        soma_r = float(np.nanmean([pearson_r(a, b) for a, b in zip(v_t, v_p)]))
        tuft = [s for s in truth["segment"].values if str(s).startswith("apical_tuft")]
        tuft_r = (float(np.nanmean([pearson_r(a, b) for a, b in zip(truth["v"].sel(segment=tuft[-1]).values,
                                                             pred["v"].sel(segment=tuft[-1]).values)]))
                  if tuft else float("nan"))
        d_t, d_p = truth["dipole"].sel(axis="z").values, pred["dipole"].sel(axis="z").values
        dip_r = float(np.nanmean([pearson_r(a, b) for a, b in zip(d_t, d_p)])) if np.abs(d_t).max() > 0 else float("nan")
        seconds = truth.sizes["trial"] * truth.sizes["time"] * truth.attrs["dt"] / 1000.0

        f1 = float(s["spike_f1"].sel(window=5.0)) if "spike_f1" in s else float("nan")
        dip100 = float(s["dipole_r"].sel(axis="z")) if "dipole_r" in s and dip_r == dip_r else float("nan")
        print(f"| {cell} | {seconds:.0f} | {soma_r:.3f} | {tuft_r:.3f} | {dip_r:.3f} | {f1:.3f} | "
              f"{float(s['r_clipped'].sel(segment=soma)):.3f} | {float(s['ve_clipped'].sel(segment=soma)):.3f} | "
              f"{float(np.nanmedian(s['r_clipped'].values)):.3f} | {dip100:.3f} |", flush=True)


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = a.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("cell", choices=CELLS)
    t.add_argument("data")
    t.add_argument("out")
    t.add_argument("--epochs", type=int, default=200)
    t.add_argument("--max-time", type=float)
    t.add_argument("--init", help="checkpoint to fine-tune instead of a new model (ignored when resuming)")
    t.add_argument("--lr", type=float, help="learning rate (default: mtl.train's; lower it to fine-tune)")
    s = sub.add_parser("score")
    s.add_argument("models")
    s.add_argument("data")
    args = a.parse_args()
    train(args) if args.what == "train" else score(args)


if __name__ == "__main__":
    main()
