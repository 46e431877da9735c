"""The ceiling of any surrogate that sees its drive binned: NEURON against NEURON, events jittered in their bins.

    python benchmarks/binning_ceiling.py [--cell l5pc] [--trials 6] [--duration 2000] [--seed 0] [--dt 0.5] \
        [--json ceiling.json] [--model l5pc]

A surrogate receives the drive summed into ``dt``-ms bins (``mtl.inputs.bin``): it cannot
know where inside its bin an event fell. For each trial this script simulates the cell
(``mtl.simulate``) under a default Poisson drive (``mtl.inputs.poisson(cell, duration,
seed=mtl.datasets.trial_seed(SEED_OFFSET + seed, trial))``: dataset seeds 900 and up are kept
for this benchmark, so no training or held-out set shares a drive with it) and again under the same drive with every event moved to a
uniformly random time inside its own bin (same site, same weight, so the binned input is
identical; jitter seed ``[seed, trial, 1]``). The jittered run plays the role of a perfect
binned-input surrogate and is scored against the original with ``mtl.evaluate`` — exactly the
metrics a surrogate gets (pooled over all trials, as ``mtl.evaluate`` pools them): clipped
soma variance explained, median over segments of r (clipped v), soma spike F1 (+-5 ms), and
the dipole r on its dominant axis, raw and after the 100-Hz zero-phase low-pass (EEG band).
Per-trial means and ranges are given too. The cell is deterministic; every difference comes
from the sub-bin timing of the inputs.

``--model NAME_OR_PATH`` also scores a surrogate (``mtl.Surrogate.pretrained(NAME)`` or
``.load(PATH)``) on the very same NEURON trials, and prints it beside the ceiling with the
fraction of the ceiling it reaches.

Cost: two NEURON runs per trial in the cell's worker process; the l5pc runs at ~1 s of
biology per core-second, so the default (6 x 2 s) takes about a minute.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import xarray as xr

import mtlneuron as mtl

SEED_OFFSET = 900  # drive seeds are those of dataset seed SEED_OFFSET + --seed (datasets.trial_seed)
METRICS = {  # key: (label, how to read it from an mtl.evaluate result, given the dominant dipole axis)
    "soma_ve_clipped": ("clipped soma VE", lambda s, ax: float(s["soma_ve_clipped"])),
    "soma_ve_raw": ("raw soma VE", lambda s, ax: float(s["soma_ve_raw"])),
    "median_segment_r": ("median segment r (clipped)", lambda s, ax: float(np.nanmedian(s["r_clipped"].values))),
    "spike_f1_5ms": ("spike F1 (+-5 ms)", lambda s, ax: float(s["spike_f1"].sel(window=5.0))),
    "dipole_r_raw": ("raw dipole r", lambda s, ax: float(s["dipole_r_raw"].sel(axis=ax))),
    "dipole_r": ("100-Hz low-passed dipole r", lambda s, ax: float(s["dipole_r"].sel(axis=ax))),
}


def jitter_times(t: np.ndarray, dt: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Each time (ms) moved to a uniformly random time inside its own ``[k dt, (k+1) dt)`` bin."""
    k = np.floor(t / dt)
    new = (k + rng.uniform(0.0, 1.0, t.size)) * dt
    new = np.where(np.floor(new / dt) == k, new, k * dt)  # guard against rounding into the next bin
    return np.minimum(new, np.nextafter(float(duration), 0.0))


def jitter_within_bins(drive: xr.Dataset, dt: float, rng: np.random.Generator) -> xr.Dataset:
    """The same events, each moved to a uniformly random time inside its own bin (:func:`jitter_times`)."""
    new = jitter_times(drive["time"].values, dt, float(drive.attrs["duration"]), rng)
    out = drive.copy(deep=True)
    out["time"].values[:] = new
    out = out.isel(event=np.argsort(new, kind="stable"))
    out.attrs["kind"] = f"{drive.attrs.get('kind', 'drive')}, jittered within {dt:g}-ms bins"
    return out


def run(cell_name: str, n_trials: int, duration: float, seed: int, dt: float, progress: bool = True,
        model: str | None = None) -> dict:
    cell = mtl.cells.get(cell_name)
    cell.sites  # build the cell once, outside the loop
    truths, jittered = [], []
    start = time.perf_counter()
    for i in range(n_trials):
        drive = mtl.inputs.poisson(cell, duration, seed=mtl.datasets.trial_seed(SEED_OFFSET + seed, i))
        moved = jitter_within_bins(drive, dt, np.random.default_rng([seed, i, 1]))
        if not np.allclose(mtl.inputs.bin(drive, dt).values, mtl.inputs.bin(moved, dt).values, rtol=1e-12, atol=0):
            raise AssertionError("jittering changed the binned input")
        truths.append(mtl.simulate(cell, drive, dt=dt))
        jittered.append(mtl.simulate(cell, moved, dt=dt))
        if progress:
            print(f"  trial {i + 1}/{n_trials}: {np.isfinite(truths[-1]['spike_times'].values).sum()} spikes "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    wall = time.perf_counter() - start
    pooled_truth, pooled_jit = _stack(truths), _stack(jittered)
    sd = pooled_truth["dipole"].transpose(..., "axis").values.reshape(-1, 3).std(axis=0)
    axis = str(pooled_truth["axis"].values[int(np.argmax(sd))])
    score = mtl.evaluate(pooled_jit, pooled_truth)
    per_trial = [_metrics(mtl.evaluate(b, a), axis) for a, b in zip(truths, jittered)]
    surrogate = _surrogate(model, cell, truths, pooled_truth, axis) if model else None
    return {
        "surrogate": surrogate,
        "cell": cell_name, "trials": n_trials, "duration_ms": duration, "seed": seed, "dt_ms": dt,
        "drive": f"mtl.inputs.poisson(cell, duration, seed=mtl.datasets.trial_seed({SEED_OFFSET} + seed, trial)), "
                 "cell defaults",
        "jitter": "each event uniform inside its own dt bin; rng seed [seed, trial, 1]",
        "dominant_axis": axis,
        "dipole_lowpass": f"order {score.attrs['dipole_lowpass_order']} Butterworth, zero phase (sosfiltfilt), "
                          f"{score.attrs['dipole_lowpass_hz']} Hz",
        "spikes_true": int(score["n_spikes_true"]), "spikes_jittered": int(score["n_spikes_pred"]),
        "pooled": _metrics(score, axis),
        "per_trial": per_trial,
        "dipole_r_all_axes": {str(ax): float(score["dipole_r"].sel(axis=ax)) for ax in score["axis"].values},
        "dipole_r_raw_all_axes": {str(ax): float(score["dipole_r_raw"].sel(axis=ax)) for ax in score["axis"].values},
        "neuron_wall_seconds": wall,
        "versions": {k: str(v) for k, v in pooled_truth.attrs.items() if "version" in k},
        "command": " ".join(sys.argv),
    }


def _surrogate(model: str, cell, truths: list[xr.Dataset], pooled_truth: xr.Dataset, axis: str) -> dict:
    """The surrogate's metrics on the same NEURON trials (pooled and per trial)."""
    from pathlib import Path

    surrogate = mtl.Surrogate.load(model, cell) if Path(model).is_file() else mtl.Surrogate.pretrained(model, cell)
    preds = [surrogate.predict(t) for t in truths]
    return {"model": model, "pooled": _metrics(mtl.evaluate(_stack(preds), pooled_truth), axis),
            "per_trial": [_metrics(mtl.evaluate(p, t), axis) for p, t in zip(preds, truths)]}


def _stack(trials: list[xr.Dataset]) -> xr.Dataset:
    """Trials along a new ``trial`` dim, spike times NaN-padded to the longest train."""
    n = max(ds.sizes.get("spike", 0) for ds in trials)
    padded = []
    for ds in trials:
        st = np.full(n, np.nan)
        st[: ds.sizes.get("spike", 0)] = ds["spike_times"].values
        keep = ds[["v", "dipole"]]
        padded.append(keep.assign(spike_times=("spike", st, ds["spike_times"].attrs)))
    out = xr.concat(padded, dim="trial")
    out.attrs = dict(trials[0].attrs)
    return out


def _metrics(score: xr.Dataset, axis: str) -> dict:
    return {k: fn(score, axis) for k, (_, fn) in METRICS.items()}


def table(res: dict) -> str:
    trials = res["per_trial"]
    sur = res.get("surrogate")
    lines = [f"{res['cell']}: NEURON vs NEURON with events jittered inside their {res['dt_ms']:g}-ms bins, "
             f"{res['trials']} x {res['duration_ms']:g} ms default Poisson drives (seed {res['seed']}), "
             f"{res['spikes_true']} spikes; dipole axis {res['dominant_axis']}; "
             f"{res['neuron_wall_seconds']:.0f} s of NEURON",
             "", "| metric | pooled (as mtl.evaluate) | per-trial mean | per-trial median | per-trial range |"
             + (f" surrogate {sur['model']} (pooled) | fraction of ceiling |" if sur else ""),
             "|---|---|---|---|---|" + ("---|---|" if sur else "")]
    for key, (label, _) in METRICS.items():
        vals = np.array([t[key] for t in trials], float)
        fin = vals[np.isfinite(vals)]
        rng_ = f"{fin.min():.3f}-{fin.max():.3f}" if fin.size else "-"
        mean = f"{fin.mean():.3f}" if fin.size else "-"
        median = f"{np.median(fin):.3f}" if fin.size else "-"
        row = f"| {label} | {res['pooled'][key]:.3f} | {mean} | {median} | {rng_} |"
        if sur:
            row += f" {sur['pooled'][key]:.3f} | {sur['pooled'][key] / res['pooled'][key]:.2f} |"
        lines.append(row)
    return "\n".join(lines)


def report(paths: list[str]) -> str:
    """Each JSON's table, then per-trial statistics over all their trials together."""
    runs = [json.load(open(p)) for p in paths]
    parts = [table(r) for r in runs]
    trials = [t for r in runs for t in r["per_trial"]]
    sur = [t for r in runs if r.get("surrogate") for t in r["surrogate"]["per_trial"]]
    lines = ["", f"All {len(trials)} trials of {len(runs)} runs, per trial:", "",
             "| metric | median | 10th percentile | mean | share of trials >= 0.95 |"
             + (" surrogate median |" if len(sur) == len(trials) else ""), "|---|---|---|---|---|"
             + ("---|" if len(sur) == len(trials) else "")]
    for key, (label, _) in METRICS.items():
        v = np.array([t[key] for t in trials], float)
        v = v[np.isfinite(v)]
        if v.size == 0:  # e.g. the dipole of a single compartment
            row = f"| {label} | - | - | - | - |"
        else:
            row = (f"| {label} | {np.median(v):.3f} | {np.percentile(v, 10):.3f} | {v.mean():.3f} | "
                   f"{np.mean(v >= 0.95):.2f} |")
        if len(sur) == len(trials):
            sv = np.array([t[key] for t in sur], float)
            row += f" {np.nanmedian(sv):.3f} |" if np.isfinite(sv).any() else " - |"
        lines.append(row)
    return "\n\n".join(parts) + "\n" + "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", default="l5pc")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2000.0, help="ms per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dt", type=float, default=mtl.conventions.DEFAULT_DT, help="bin width (ms)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--model", default=None, help="also score this surrogate (pretrained name or checkpoint path)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--report", nargs="+", default=None, metavar="JSON",
                        help="print the tables of earlier --json results and their trials pooled; run nothing")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report))
        return {}
    res = run(args.cell, args.trials, args.duration, args.seed, args.dt, progress=not args.quiet, model=args.model)
    print(table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
