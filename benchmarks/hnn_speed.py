"""Speed and memory of the surrogate HNN column against hnn-core, one run each, same machine, same run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hnn_speed.py [--tstop 170 500] [--surrogates DIR]

For hnn-core's ERP column (270 cells; ``hnn_validation.build("erp_s0")``), each
measurement in a fresh process (its peak resident memory is the process's):

* ``hnn-core``: ``hnn_core.simulate_dipole`` (one core, dt 0.025 ms);
* ``surrogate forward``: ``col.run(tstop)`` (torch, one thread);
* ``forward + backward``: the band-power loss and its gradient with respect to
  the 16 cell-to-cell log-gains, with gradient checkpointing every 50 ms (the
  optimiser's default) and without;
* ``optimisation step``: one step of ``mtl.optimize.connectivity`` (forward,
  backward, Adam, history).
"""
import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from hnn_validation import build  # noqa: E402


def _measure(kind: str, tstop: float, surrogates, queue) -> None:
    import numpy as np
    import torch

    import mtlneuron as mtl
    from mtlneuron.optimize.connectivity import GradientRun

    torch.set_num_threads(1)
    net = build("erp_s0", tstop)
    col = mtl.network.from_hnn(net, tstop=tstop)
    entries = np.array([k for k, e in enumerate(col.entries) if not e["is_drive"]])
    if kind == "hnn-core":
        t0 = time.perf_counter()
        res = col.run(tstop, backend="hnn")
        seconds = float(res.attrs["hnn_seconds"])
    elif kind == "surrogate forward":
        col.run(10.0, surrogates=surrogates)  # models loaded outside the timing
        t0 = time.perf_counter()
        col.run(tstop, surrogates=surrogates)
        seconds = time.perf_counter() - t0
    elif kind.startswith("forward + backward"):
        checkpoint = 50.0 if "checkpoint 50" in kind else None
        run = GradientRun(col, entries, surrogates, checkpoint_ms=checkpoint)
        loss = mtl.optimize.band_power(15, 60)
        t0 = time.perf_counter()
        x = torch.zeros(entries.size, requires_grad=True)
        value, _ = loss(run.outputs(x))
        value.backward()
        seconds = time.perf_counter() - t0
    else:  # one optimisation step
        t0 = time.perf_counter()
        mtl.optimize.connectivity(col, mtl.optimize.band_power(15, 60), params=list(entries), steps=1,
                                  surrogates=surrogates, progress=False)
        seconds = (time.perf_counter() - t0) / 2  # two evaluations: one step and the final evaluation
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    from mtlneuron.nrn import worker

    worker.shutdown()  # the cells' NEURON workers would keep this process from exiting
    queue.put({"kind": kind, "tstop": tstop, "seconds": seconds,
               "peak_rss_gb": None if kind == "hnn-core" else peak})  # hnn-core runs in its own worker


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--tstop", type=float, nargs="*", default=[170.0, 500.0])
    a.add_argument("--surrogates", help="folder with basket.pt, l23pc.pt, l5pc_hnn.pt (default: shipped)")
    a.add_argument("--only", nargs="*")
    args = a.parse_args()
    sur = None
    if args.surrogates:
        sur = {n: str(Path(args.surrogates).expanduser() / f"{n}.pt") for n in ("basket", "l23pc", "l5pc_hnn")}
    kinds = args.only or ["hnn-core", "surrogate forward", "forward + backward (checkpoint 50 ms)",
                          "forward + backward (no checkpoint)", "optimisation step"]
    ctx = mp.get_context("spawn")  # a fresh interpreter per measurement (a fork here can inherit held locks)
    rows = []
    for tstop in args.tstop:
        for kind in kinds:
            q = ctx.Queue()
            p = ctx.Process(target=_measure, args=(kind, tstop, sur, q))
            p.start()
            row = q.get()
            p.join(60)
            if p.is_alive():
                p.terminate()
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| tstop (ms) | what | wall time (s) | peak memory (GB) |\n|---|---|---|---|")
    for r in rows:
        peak = "-" if r["peak_rss_gb"] is None else f"{r['peak_rss_gb']:.2f}"
        print(f"| {r['tstop']:g} | {r['kind']} | {r['seconds']:.1f} | {peak} |")


if __name__ == "__main__":
    main()
