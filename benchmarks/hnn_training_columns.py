"""The surrogate column, closed loop, on the hnn-core runs its cells were trained on: population spike counts.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hnn_training_columns.py ~/mtl-work/hnn/train --seeds 1000 1001 1004 1005 \\
        [--surrogates FOLDER] [--threshold l23pc=0.25]

Each seed's network is rebuilt from its plan (``generate_hnn_data.plan`` / ``build``:
the same gains and drives, 250 ms) and run on the surrogates; hnn-core's counts are
read from the recorded run (``hnn_s{seed}_{cell}.nc``: no hnn-core simulation). Open
loop the surrogates saw these very cells' inputs in training; closed loop their
errors feed each other through the column's recurrent connections. The gap between
the two is what closed-loop training has to close. ``--threshold cell=p`` replaces a
model's tuned spike-probability threshold.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from generate_hnn_data import build, plan  # noqa: E402

POPULATIONS = {"l23pc": ["L2_pyramidal"], "l5pc_hnn": ["L5_pyramidal"], "basket": ["L2_basket", "L5_basket"]}


def recorded_counts(folder: Path, seed: int) -> dict[str, int]:
    """hnn-core's spike count per population in the recorded run ``seed``."""
    counts = {}
    for cell, pops in POPULATIONS.items():
        with xr.open_dataset(folder / f"hnn_s{seed}_{cell}.nc") as d:
            times, types = d["spike_times"].values, d["hnn_cell_type"].values
        for pop in pops:
            counts[pop] = int(np.isfinite(times[types == pop]).sum())
    return counts


def main() -> None:
    import torch

    import mtlneuron as mtl

    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("data")
    a.add_argument("--seeds", type=int, nargs="+", required=True)
    a.add_argument("--surrogates", help="folder with basket.pt, l23pc.pt, l5pc_hnn.pt (default: shipped)")
    a.add_argument("--threshold", action="append", default=[], help="cell=probability, e.g. l23pc=0.25")
    args = a.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.data).expanduser()
    models = {}
    for cell in POPULATIONS:
        models[cell] = (mtl.Surrogate.load(Path(args.surrogates).expanduser() / f"{cell}.pt") if args.surrogates
                        else mtl.Surrogate.pretrained(cell))
    for item in args.threshold:
        cell, value = item.split("=")
        models[cell].spike_prob_threshold.fill_(float(value))
    pops = [p for ps in POPULATIONS.values() for p in ps]
    print("| seed | family | " + " | ".join(f"{p} sur / hnn" for p in pops) + " |")
    print("|---|---|" + "---|" * len(pops))
    for seed in args.seeds:
        p = plan(seed)
        col = mtl.network.from_hnn(build(p, 10, 250.0), tstop=250.0)
        out = col.run(250.0, surrogates=models)
        pop_of_cell, times = out["population"].values, out["spike_times"].values
        truth = recorded_counts(folder, seed)
        cells = " | ".join(f"{int(np.isfinite(times[pop_of_cell == q]).sum())} / {truth[q]}" for q in pops)
        print(f"| {seed} | {p['family']} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
