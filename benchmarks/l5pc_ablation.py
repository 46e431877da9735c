"""L5PC surrogate ablation: fine-tune the shipped ``l5pc`` under one wall-clock budget per row, score held out.

    python benchmarks/l5pc_ablation.py --work ~/mtl-work/ablation --budget 900 \\
        --curriculum ~/mtl-work/l5pc/curriculum_s10_2000.nc --families ~/mtl-work/l5pc/families/l5pc_s1{00..15}_*.nc \\
        --test ~/mtl-work/l5pc/test/default_s1_32x2000.nc --family-test ~/mtl-work/l5pc/test/volley_s901_30x2000.nc
    python benchmarks/l5pc_ablation.py --work ~/mtl-work/ablation --report   # the markdown table
    python benchmarks/l5pc_ablation.py --work ~/mtl-work/capacity --budget 2400 --rows families,cosine \
        --families ~/mtl-work/l5pc/families/l5pc_s1*.nc --test ... --family-test ...   # capacity / lr decay

Each row starts from ``--start`` (default ``data/l5pc.pt``; the table in
docs/results.md started from the session-3 model, kept in git history and at
``~/mtl-work/final/l5pc_v1_shipped.pt``) with its architecture and scalers, trains
``--budget`` seconds on one CPU thread (``python -m mtlneuron.train --init``)
and changes one thing against the row it names. The drive family ``volley`` is
left out of every row's training data (``--exclude-stages volley``): it is the
held-out family. Rows already trained (their checkpoint exists and says why it
stopped) are not trained again; scores are cached per model file content and test file.
Test files must come from dataset seeds never used in training.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHIPPED = HERE.parent / "data" / "l5pc.pt"  # default starting point
HELD_OUT_FAMILY = "volley"

# name -> (what changes, data ("curriculum", "all" or "half": the first half of the families files), extra
# train arguments)
ROWS = {
    "curriculum": ("fine-tune on the curriculum only", "curriculum", []),
    "families": ("+ network-shaped drive families (scaled, proximal_strong, recurrent)", "all", []),
    "shift_loss": ("+ shift-tolerant spike loss (Gaussian SD 1 ms)", "all",
                   ["--loss-weights", "v=1,soma=1,dipole=0.5,spike=1,ion=0.5,spike_shift=1"]),
    "long_window": ("+ whole-trial windows (4000 steps instead of 1000)", "all", ["--window", "4000"]),
    # capacity and learning-rate decay (issue 19): each against `families` (constant lr: patience 1000)
    "cosine": ("`families` with the lr on a half cosine to 0 over the budget", "all", ["--lr-schedule", "cosine"]),
    "wide128": ("`families` with the LSTM widened to 128 units (same outputs at the start)", "all",
                ["--hidden-size", "128"]),
    "wide128_cosine": ("`wide128` with the cosine lr", "all", ["--hidden-size", "128", "--lr-schedule", "cosine"]),
    "half_data": ("`families` on the first half of the families files", "half", []),
    "spike_history": ("`families` with the spike-history input (traces of its own past spikes, 2 / 10 / 50 ms: "
                      "the recorded spikes in training, its own when scored)", "all",
                      ["--spike-history-ms", "2,10,50"]),
}


def train_row(name: str, args) -> Path:
    """Train one row (skipped when its checkpoint says training ended)."""
    out = Path(args.work) / f"{name}.pt"
    if out.exists() and _training_info(out).get("stopped"):
        return out
    _, data, extra = ROWS[name]
    if data == "curriculum" and not args.curriculum:
        raise SystemExit(f"row {name!r} needs --curriculum")
    families = {"all": list(args.families), "half": list(args.families)[:len(args.families) // 2]}.get(data, [])
    files = ([args.curriculum] if args.curriculum else []) + families
    cmd = [sys.executable, "-m", "mtlneuron.train", "--data", *files, "--out", str(out), "--init", str(args.start),
           "--exclude-stages", HELD_OUT_FAMILY, "--lr", str(args.lr), "--max-time", str(args.budget),
           "--threads", "1", "--epochs", "1000", "--patience", "1000", "--val-fraction", "0.05",
           "--test-fraction", "0", "--no-progress", *extra]
    if out.exists():
        cmd.append("--resume")
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return out


def _training_info(path: Path) -> dict:
    """The ``training`` record of a checkpoint (empty if it has none)."""
    from mtlneuron.surrogate import read_checkpoint

    return read_checkpoint(path).get("training") or {}


def score(model_path: Path, test: str, cache: Path, last: bool = False) -> dict:
    """Held-out metrics of one model on one test file (cached as JSON).

    ``last``: score the weights of the run's last epoch (the checkpoint's resume
    state) instead of the best validation epoch's, with the same spike threshold
    and waveforms.
    """
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:10]  # a retrained file is scored anew
    key = cache / f"{Path(model_path).stem}_{digest}{'_last' if last else ''}__{Path(test).stem}.json"
    if key.exists():
        return json.loads(key.read_text())
    import torch

    import mtlneuron as mtl
    from mtlneuron.surrogate import read_checkpoint

    torch.set_num_threads(1)
    ckpt = read_checkpoint(model_path)
    model = mtl.Surrogate.from_checkpoint(ckpt, source=str(model_path))
    if last:
        current = ckpt["resume"]["model"]
        kept = ("spike_prob_threshold", "spike_waveform", "spike_waveform_lag0")  # tuned after training
        model.load_state_dict({**model.state_dict(), **{k: v for k, v in current.items() if k not in kept}})
    truth = mtl.datasets.open(test).load()
    s = mtl.evaluate(model.predict(truth), truth)
    out = {"spike_f1": float(s["spike_f1"].sel(window=5.0)), "soma_ve_clipped": float(s["soma_ve_clipped"]),
           "median_r_clipped": float(np.nanmedian(s["r_clipped"].values)),
           "dipole_r_z": float(s["dipole_r"].sel(axis="z")), "dipole_r_raw_z": float(s["dipole_r_raw"].sel(axis="z")),
           "mean_abs_shift_ms": float(s["spike_mean_abs_shift"].sel(window=5.0)),
           "n_spikes_true": int(s["n_spikes_true"]), "n_spikes_pred": int(s["n_spikes_pred"])}
    key.write_text(json.dumps(out, indent=1))
    return out


def report(args) -> str:
    """The ablation table (markdown) from the cached scores."""
    cache = Path(args.work)
    rows = [("shipped", "the start (no fine-tuning)")] + [(k, v[0]) for k, v in ROWS.items()]
    lines = ["| row | change | epochs | F1 +-5 ms | soma VE (clipped) | median seg r | dipole r z (100 Hz) | "
             f"{HELD_OUT_FAMILY} F1 | {HELD_OUT_FAMILY} median r |", "|---|---|---|---|---|---|---|---|---|"]
    for name, what in rows:
        path = Path(args.start) if name == "shipped" else cache / f"{name}.pt"
        if not path.exists():
            continue
        d = score(path, args.test, cache)
        f = score(path, args.family_test, cache)
        info = {} if name == "shipped" else _training_info(path)
        epochs = "-" if name == "shipped" else f"{info.get('epochs_done')} (best {info.get('best_epoch')})"
        lines.append(_row(name, what, epochs, d, f))
        if args.last_epoch and name != "shipped":
            d, f = score(path, args.test, cache, last=True), score(path, args.family_test, cache, last=True)
            lines.append(_row(name, "(its last epoch's weights)", f"{info.get('epochs_done')}", d, f))
    return "\n".join(lines)


def _row(name: str, what: str, epochs: str, d: dict, f: dict) -> str:
    return (f"| {name} | {what} | {epochs} | {d['spike_f1']:.3f} | {d['soma_ve_clipped']:.3f} | "
            f"{d['median_r_clipped']:.3f} | {d['dipole_r_z']:.3f} | {f['spike_f1']:.3f} | "
            f"{f['median_r_clipped']:.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for checkpoints, logs and cached scores")
    p.add_argument("--curriculum", help="curriculum dataset (netCDF); rows on 'all' data train on the families alone "
                   "without it")
    p.add_argument("--families", nargs="*", default=[], help="drive-family datasets (netCDF)")
    p.add_argument("--test", help="held-out default-drive dataset")
    p.add_argument("--family-test", help=f"held-out {HELD_OUT_FAMILY} dataset")
    p.add_argument("--rows", default=",".join(ROWS), help="comma list of rows to train")
    p.add_argument("--start", default=str(SHIPPED), help="the checkpoint every row fine-tunes (row 'shipped')")
    p.add_argument("--budget", type=float, default=900.0, help="training seconds per row")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--report", action="store_true", help="only score and print the table")
    p.add_argument("--last-epoch", action="store_true", help="also score each row's last-epoch weights")
    args = p.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if not args.report:
        for name in [r.strip() for r in args.rows.split(",") if r.strip()]:
            train_row(name, args)
    if args.test and args.family_test:
        print(report(args))


if __name__ == "__main__":
    main()
