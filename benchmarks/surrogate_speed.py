"""Surrogate vs NEURON speed on this machine, in one run.

    python benchmarks/surrogate_speed.py [--cells 1,1000] [--seconds 1] [--threads 2] [--device cpu]
                                         [--checkpoint data/l5pc.pt]

NEURON: the l5pc integrated for ``--seconds`` of biology under the default
Poisson drive (0.025-ms fixed step, ``simulate.run_trial``'s integration time,
recording included), mean of 3 runs. Surrogate: ``Surrogate.run`` on the same
binned drive replicated over N cells (materialised before the timing, as a real
batch of drives would be), in time chunks of 500 steps carrying the state (the
streaming engine's memory footprint), under ``torch.no_grad``; best of 3.
Without ``--checkpoint`` an untrained model of the default configuration is
timed: speed does not depend on the weights. Prints a markdown table.
"""
import argparse
import time

import numpy as np
import torch

import mtlneuron as mtl
from mtlneuron import simulate


def neuron_seconds(cell, drive, repeats=3):
    from mtlneuron.nrn import worker as _worker

    _worker.built(cell)  # build once, outside the timing
    times = [simulate.run_trial(cell, drive["time"].values, drive["site"].values, drive["weight"].values,
                                drive.attrs["duration"], 0.5)["neuron_seconds"] for _ in range(repeats)]
    return float(np.mean(times))


@torch.no_grad()
def surrogate_seconds(model, x, n_cells, device, chunk=500, repeats=3):
    xb = torch.as_tensor(x, dtype=torch.float32, device=device)[None].expand(n_cells, -1, -1)
    # the drives of all cells exist before prediction starts: materialise them outside the timing
    chunks = [xb[:, t0:t0 + chunk].contiguous() for t0 in range(0, xb.shape[1], chunk)]
    best = np.inf
    for _ in range(repeats):
        state = None
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for part in chunks:
            out, state = model.run(part, state)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", default="1,1000")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cell = mtl.cells.get("l5pc")
    drive = mtl.inputs.poisson(cell, args.seconds * 1000.0, seed=12345)
    t_neuron = neuron_seconds(cell, drive)
    model = mtl.Surrogate.load(args.checkpoint) if args.checkpoint else mtl.Surrogate(cell)
    model = model.to(device).float().eval()
    x = mtl.inputs.bin(drive, model.dt).values
    print(f"l5pc, {args.seconds:g} s of biology; NEURON {t_neuron:.3f} s per cell "
          f"(mean of 3); surrogate {model.n_parameters:,} parameters on {args.device}, "
          f"{args.threads} CPU threads\n")
    print("| cells | surrogate wall (s) | per cell-second (ms) | NEURON per cell-second (ms) | speed-up per cell |")
    print("|---|---|---|---|---|")
    for n in [int(c) for c in args.cells.split(",")]:
        t = surrogate_seconds(model, x, n, device)
        per = t / n / args.seconds
        print(f"| {n} | {t:.3f} | {per * 1e3:.3f} | {t_neuron / args.seconds * 1e3:.0f} | "
              f"{t_neuron / args.seconds / per:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
