"""Gradients of the surrogate HNN column against finite differences of the same surrogate network.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hnn_gradients.py [--tstop 170] [--surrogates DIR] [--loss band|waveform]
        [--float64] [--parts smooth surrogate slopes]

For a few connectivity entries (cell-to-cell and drives) of hnn-core's ERP
column (event seeds 90000+), the gradient of the loss with respect to each
log-gain, three ways:

* ``smooth``: backpropagation with the spike path switched off (fast-sigmoid
  slope 1e9: spikes pass no gradient), the exact derivative of the loss while
  no spike moves, against central differences in log-gain with the largest
  step of 1e-3, 5e-4, 2.5e-4, 1.25e-4 (in float64 also 1e-5, 1e-6) at which no spike of the network moves
  (checked: the spike trains at +h and -h equal the unperturbed run's);
* ``surrogate``: backpropagation with the fast-sigmoid surrogate (slope 25,
  the default used by the optimiser), against central differences with steps
  0.05 and 0.2 (5 % and 20 % in gain: spikes move, and the difference
  quotient measures what the optimiser's step will actually change).

* ``slopes``: the backpropagated gradient of each entry at fast-sigmoid slopes
  2, 5, 10, 25, 100 and 1e9 (how much the surrogate gradient depends on it).

``--float64`` runs the surrogates and the engine in double precision: a derivative
far below float32's resolution of a difference quotient at a spike-free step
(~0.006 for this loss) is then resolved too.

Printed per entry: the gradients, the finite differences, sign agreement and
relative difference. Peak memory and the time of one forward + backward pass
are printed for the same run.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from hnn_validation import build  # noqa: E402

ENTRIES = ["L2_pyramidal->L5_pyramidal distal/ampa", "L5_basket->L5_pyramidal soma/gabaa",
           "L2_basket->L2_pyramidal soma/gabaa", "L5_pyramidal->L5_pyramidal proximal/ampa",
           "evprox1->L5_pyramidal proximal/ampa", "evdist1->L2_pyramidal distal/nmda"]


def main() -> None:
    import mtlneuron as mtl

    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--tstop", type=float, default=170.0)
    a.add_argument("--surrogates", help="folder with basket.pt, l23pc.pt, l5pc_hnn.pt (default: shipped)")
    a.add_argument("--loss", choices=["band", "waveform"], default="band")
    a.add_argument("--float64", action="store_true", help="surrogates and engine in double precision")
    a.add_argument("--parts", nargs="+", choices=["smooth", "surrogate", "slopes"],
                   default=["smooth", "surrogate", "slopes"])
    args = a.parse_args()
    torch.set_num_threads(1)
    sur = None
    if args.surrogates:
        sur = {n: str(Path(args.surrogates).expanduser() / f"{n}.pt") for n in ("basket", "l23pc", "l5pc_hnn")}
    if args.float64:
        sur = {n: (mtl.Surrogate.load(sur[n]) if sur else mtl.Surrogate.pretrained(n)).double()
               for n in ("basket", "l23pc", "l5pc_hnn")}
    dtype = torch.float64 if args.float64 else torch.float32
    col = mtl.network.from_hnn(build("erp_s0", args.tstop), tstop=args.tstop)
    entries = np.array([col.entry_names().index(e) for e in ENTRIES])
    if args.loss == "band":
        loss = mtl.optimize.band_power(15, 60)
    else:  # distance to the column's own dipole with every gain x1.2: a smooth target
        ref = mtl.optimize.connectivity(col, mtl.optimize.band_power(15, 60), params=list(entries), steps=0,
                                        init=[1.2] * len(entries), surrogates=sur, progress=False)
        target = ref.history["dipole"].isel(step=0).assign_attrs(units="nA m")
        loss = mtl.optimize.waveform(target, metric="mse")

    def value_and_grad(run, x):
        lg = torch.tensor(x, dtype=dtype, requires_grad=True)
        v, _ = loss(run.outputs(lg))
        v.backward()
        return float(v), lg.grad.numpy().astype(float)

    def value(run, x):
        with torch.no_grad():
            out = run.outputs(torch.tensor(x, dtype=dtype))
            v, _ = loss(out)
        return float(v), out.spikes.numpy()

    def central(run, x0, k, h):
        xp, xm = x0.copy(), x0.copy()
        xp[k] += h
        xm[k] -= h
        (vp, sp), (vm, sm) = value(run, xp), value(run, xm)
        return (vp - vm) / (2 * h), sp, sm

    x0 = np.zeros(entries.size)
    if "smooth" in args.parts:
        steps = (1e-3, 5e-4, 2.5e-4, 1.25e-4) + ((1e-5, 1e-6) if args.float64 else ())
        smooth_part(col, entries, sur, value_and_grad, value, central, x0, steps)
    if "surrogate" in args.parts:
        surrogate_part(col, entries, sur, value_and_grad, central, x0)
    if "slopes" in args.parts:
        slopes_part(col, entries, sur, value_and_grad, x0)


def smooth_part(col, entries, sur, value_and_grad, value, central, x0, steps) -> None:
    """The exact gradient (spike path cut) against central differences at spike-free steps."""
    from mtlneuron.optimize.connectivity import GradientRun

    run = GradientRun(col, entries, sur, slope=1e9)
    v0, g = value_and_grad(run, x0)
    base_spikes = value(run, x0)[1]
    print(f"\nsmooth gradients (slope 1e9), loss {v0:.4f}")
    print("| entry | gradient | FD | step h | spikes at +-h | sign | rel. diff |")
    print("|---|---|---|---|---|---|---|")
    for k, name in enumerate(ENTRIES):
        for h in steps:
            fd, sp, sm = central(run, x0, k, h)
            still = np.array_equal(sp, base_spikes) and np.array_equal(sm, base_spikes)
            if still:
                break
        rel = abs(g[k] - fd) / max(abs(fd), 1e-12)
        print(f"| {name} | {g[k]:.4g} | {fd:.4g} | {h:g} | {'unchanged' if still else 'MOVED'} | "
              f"{'same' if np.sign(fd) == np.sign(g[k]) else 'DIFF'} | {rel:.1%} |", flush=True)



def surrogate_part(col, entries, sur, value_and_grad, central, x0) -> None:
    """The surrogate gradient (slope 25) against 5 % and 20 % steps."""
    from mtlneuron.optimize.connectivity import GradientRun

    slope, steps = 25.0, (0.05, 0.2)
    run = GradientRun(col, entries, sur, slope=slope)
    t0 = time.perf_counter()
    v0, g = value_and_grad(run, x0)
    seconds = time.perf_counter() - t0
    print(f"\nsurrogate gradients (slope {slope:g}), loss {v0:.4f}, forward + backward {seconds:.1f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    print("| entry | gradient | " + " | ".join(f"FD h={h:g} | sign | rel. diff" for h in steps) + " |")
    print("|---|---|" + "---|---|---|" * len(steps))
    for k, name in enumerate(ENTRIES):
        cells = []
        for h in steps:
            fd = central(run, x0, k, h)[0]
            rel = abs(g[k] - fd) / max(abs(fd), 1e-12)
            cells.append(f"{fd:.4g} | {'same' if np.sign(fd) == np.sign(g[k]) else 'DIFF'} | {rel:.0%}")
        print(f"| {name} | {g[k]:.4g} | " + " | ".join(cells) + " |", flush=True)



def slopes_part(col, entries, sur, value_and_grad, x0) -> None:
    """The backpropagated gradient at several fast-sigmoid slopes."""
    from mtlneuron.optimize.connectivity import GradientRun

    print("\ngradient by fast-sigmoid slope")
    slopes = (2.0, 5.0, 10.0, 25.0, 100.0, 1e9)
    grads = [value_and_grad(GradientRun(col, entries, sur, slope=sl), x0)[1] for sl in slopes]
    print("| entry | " + " | ".join(f"slope {sl:g}" for sl in slopes) + " |")
    print("|---|" + "---|" * len(slopes))
    for k, name in enumerate(ENTRIES):
        print(f"| {name} | " + " | ".join(f"{g[k]:.4g}" for g in grads) + " |", flush=True)


if __name__ == "__main__":
    main()
