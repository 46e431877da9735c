"""Resumable l5pc training data at scale: the Poisson curriculum plus network-shaped drive families.

    python benchmarks/generate_l5pc_data.py ~/mtl-work/l5pc/ [--files 100] [--trials-per-file 50] \
        [--duration 2000] [--seed 100] [--workers 1] [--mix quiet=0.075,subthreshold=0.125,...]

Writes ``--files`` netCDF files of ``--trials-per-file`` trials each into the output folder
(``l5pc_s<seed>_<n>x<duration>ms.nc``, file ``k`` generated with dataset seed ``--seed + k``, so
trial seeds are ``(seed + k) * 1e6 + i``: keep ``--seed`` clear of the seeds of held-out sets
(0-3 in docs/results.md), of other training sets (10: the curriculum run of issue 10) and of
benchmarks/binning_ceiling.py (900 and up)).
Every file holds the same mix of curriculum stages and drive families
(:mod:`mtlneuron.drive_families`: ``scaled``, ``volley``, ``proximal_strong``, ``recurrent``);
see ``DEFAULT_MIX`` below.

Resumable at two levels: finished files are skipped, and an interrupted file resumes from its
finished trials (``mtl.datasets.generate`` keeps each trial's shard in ``.<file>.parts/``). Run it
again with the same arguments after an interruption; ``--files`` may be raised later to add data.
After each file, ``manifest.json`` in the folder lists the files done and the simulated seconds
per stage / family (the data mix of a model card).

Cost: NEURON runs the l5pc at ~1 s of biology per core-second; 10,000 s of data is ~3 core-hours.
Example (100 files x 50 trials x 2 s = 10,000 s, 4 worker processes, in the background)::

    nohup python benchmarks/generate_l5pc_data.py ~/mtl-work/l5pc/ --files 100 --workers 4 \
        > ~/mtl-work/gen_l5pc.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


import mtlneuron as mtl

# 50 % the eLife-style curriculum (its own 15/25/60 proportions), 50 % network-shaped families.
DEFAULT_MIX = {"quiet": 0.075, "subthreshold": 0.125, "suprathreshold": 0.30,
               "scaled": 0.15, "volley": 0.10, "proximal_strong": 0.10, "recurrent": 0.15}


def parse_mix(text: str | None) -> dict:
    if not text:
        return dict(DEFAULT_MIX)
    mix = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--mix: expected name=fraction pairs separated by commas, got {part!r}") from None
    known = set(mtl.datasets.STAGES) | set(mtl.datasets.FAMILIES)
    unknown = set(mix) - known
    if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
        raise SystemExit(f"--mix: names must be among {sorted(known)} with fractions >= 0 summing to > 0; got {mix}")
    return mix


def file_name(cell: str, seed: int, n: int, duration: float) -> str:
    return f"{cell}_s{seed}_{n}x{duration:g}ms.nc"


def manifest(out: Path, cell: str, args, mix: dict) -> dict:
    """Files present and seconds per stage / family, read back from the files themselves."""
    files, seconds = [], {}
    for k in range(args.files):
        path = out / file_name(cell, args.seed + k, args.trials_per_file, args.duration)
        if not path.exists():
            continue
        with mtl.datasets.open(path) as ds:
            stages = ds["stage"].values.astype(str)
            dur = float(ds.sizes["time"] * ds.attrs["dt"]) / 1000.0
            file_mix = json.loads(ds.attrs.get("curriculum", "{}"))
        for s in stages:
            seconds[s] = seconds.get(s, 0.0) + dur
        if file_mix != mix:
            print(f"note: {path.name} was made with mix {file_mix}, not {mix}; kept", flush=True)
        files.append({"file": path.name, "dataset_seed": args.seed + k, "trials": int(stages.size), "mix": file_mix})
    info = {"cell": cell, "duration_ms": args.duration, "trials_per_file": args.trials_per_file,
            "mix_requested": mix, "files_planned": args.files, "files_done": len(files),
            "seconds_total": float(sum(seconds.values())), "seconds_per_kind": seconds, "files": files,
            "command": "python benchmarks/generate_l5pc_data.py " + " ".join(args.argv)}
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(out / "manifest.json")
    return info


def main(argv=None) -> dict:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output folder (created if missing)")
    parser.add_argument("--cell", default="l5pc")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--trials-per-file", type=int, default=50)
    parser.add_argument("--duration", type=float, default=2000.0, help="ms per trial")
    parser.add_argument("--seed", type=int, default=100, help="dataset seed of the first file")
    parser.add_argument("--workers", type=int, default=1, help="NEURON processes")
    parser.add_argument("--mix", default=None, help="name=fraction,... (default: DEFAULT_MIX)")
    parser.add_argument("--progress", action="store_true", help="tqdm bar per file")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.files < 1 or args.trials_per_file < 1:
        raise SystemExit("--files and --trials-per-file must be >= 1")
    mix = parse_mix(args.mix)
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    cell = mtl.cells.get(args.cell)
    start = time.perf_counter()
    for k in range(args.files):
        path = out / file_name(args.cell, args.seed + k, args.trials_per_file, args.duration)
        if path.exists():
            continue
        t0 = time.perf_counter()
        mtl.datasets.generate(cell, args.trials_per_file, args.duration, path, seed=args.seed + k,
                              n_workers=args.workers, mix=mix, progress=args.progress)
        info = manifest(out, args.cell, args, mix)
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s; {info['files_done']}/{args.files} files, "
              f"{info['seconds_total']:.0f} s of data", flush=True)
    info = manifest(out, args.cell, args, mix)
    print(f"done in {time.perf_counter() - start:.0f} s: {info['files_done']} files, {info['seconds_total']:.1f} s; "
          "per kind: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(info["seconds_per_kind"].items())))
    return info


if __name__ == "__main__":
    main()
