"""Training data from NEURON network runs: every l5pc of Rett networks as a single-cell trial.

    OPENBLAS_NUM_THREADS=1 python benchmarks/generate_network_data.py ~/mtl-work/l5pc/network \\
        --networks 8 --workers 2 [--cells 150] [--duration 2000] [--seed 200] [--only 2 5] [--regime strong]

Network ``k`` is ``mtl.network.rett(n_cells, p_connect, exc_scale, seed=seed + k,
contact_weight=CONTACT_WEIGHT_US * c, duration=...)`` with (exc_scale, p_connect, c) drawn from
exc_scale U(1, 3), p_connect U(0.05, 0.2), contacts x1 / x4 / x14.4 (one in three each), so
the cells see what they see in the networks of docs/results.md: the 50-nS stimulus,
recurrent bursts through TM-depressed proximal contacts, up to the paper's unstable regime.
``mtl.network.cell_trials`` records them (``stage = "network"``; trials of one file are the
cells of one network). One netCDF per network, written atomically; finished ones are skipped
(resumable). ~150 cells x 2 s = 300 s of data per network, ~15-25 min of one core each.
``--exc-scale X`` sets exc_scale (the rest drawn as usual; the file's ``rett_exc_scale`` attr
says which value was run, so keep such files in their own folder or use unused ``--only`` indices).
"""
import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

CONTACT_SCALES = (1.0, 4.0, 14.4)
# the netCDF C library is not thread-safe: two workers finishing together crashed the process
# (segfault in libnetcdf) and lost both networks; one write at a time
NETCDF_LOCK = threading.Lock()


def plan(k: int, seed: int, regime: str = "mixed") -> dict:
    """The parameters of network ``k`` (drawn from its own seed).

    ``regime="strong"``: the paper's unstable regime only, exc_scale U(0.75, 1.5), p_connect
    U(0.05, 0.15), contacts x U(8, 14.4).
    """
    rng = np.random.default_rng([seed + k, 7])
    if regime == "strong":
        return {"exc_scale": float(rng.uniform(0.75, 1.5)), "p_connect": float(rng.uniform(0.05, 0.15)),
                "contact_scale": float(rng.uniform(8.0, 14.4)), "seed": seed + k}
    return {"exc_scale": float(rng.uniform(1.0, 3.0)), "p_connect": float(rng.uniform(0.05, 0.2)),
            "contact_scale": CONTACT_SCALES[k % len(CONTACT_SCALES)], "seed": seed + k}


def network(p: dict, cells: int, duration: float):
    """The Rett network of plan ``p`` (also how a recorded file's network is rebuilt from its ``rett_*`` attrs)."""
    import mtlneuron as mtl
    from mtlneuron.network.rett_model import CONTACT_WEIGHT_US

    return mtl.network.rett(n_cells=cells, p_connect=p["p_connect"], exc_scale=p["exc_scale"], seed=p["seed"],
                            duration=duration, contact_weight=CONTACT_WEIGHT_US * p["contact_scale"])


def recorded_network(ds):
    """The network of a recorded file (an open dataset of :func:`one`), rebuilt from its ``rett_*`` attrs.

    Returns (plan, network); the network's drives are made for the whole recording.
    """
    p = {k[len("rett_"):]: ds.attrs[k] for k in ds.attrs if k.startswith("rett_")}
    p["seed"] = int(p["seed"])
    return p, network(p, ds.sizes["trial"], ds.sizes["time"] * float(ds.attrs["dt"]))


def seed_ranges(items: list[str]) -> list[int]:
    """``300-306`` and ``400`` style items -> seeds."""
    out = []
    for item in items:
        lo, _, hi = item.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def one(out: str, cells: int, duration: float, p: dict) -> str:
    import mtlneuron as mtl
    from mtlneuron._util import atomic_path

    path = Path(out) / f"rett_s{p['seed']}_{cells}x{duration:g}ms.nc"
    if path.exists():
        return f"{path.name}: on disk"
    t0 = time.perf_counter()
    net = network(p, cells, duration)
    ds = mtl.network.cell_trials(net, duration)
    ds.attrs.update({f"rett_{k}": v for k, v in p.items()})
    with NETCDF_LOCK, atomic_path(path) as tmp:  # a killed run leaves no half-written file behind
        ds.to_netcdf(tmp, engine="netcdf4", encoding={v: {"zlib": True, "complevel": 4} for v in ds.data_vars
                                                       if ds[v].dtype.kind == "f"})
    n_spk = int(np.isfinite(ds["spike_times"].values).sum())
    return f"{path.name}: {time.perf_counter() - t0:.0f} s, {n_spk} spikes, {p}"


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("out")
    a.add_argument("--networks", type=int, default=8)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--cells", type=int, default=150)
    a.add_argument("--duration", type=float, default=2000.0)
    a.add_argument("--seed", type=int, default=200)
    a.add_argument("--only", type=int, nargs="*", help="make only these network indices (e.g. 2 5 8: the x14.4 ones)")
    a.add_argument("--exc-scale", type=float,
                   help="set every network's exc_scale to this (the rest drawn as usual): reach a corner of the "
                        "range, e.g. 0.75, that the draw rarely gives")
    a.add_argument("--regime", choices=["mixed", "strong"], default="mixed",
                   help="mixed: contacts x1/x4/x14.4, exc 1-3, p 0.05-0.2; strong: contacts x8-x14.4, exc 0.75-1.5, "
                        "p 0.05-0.15 (the paper's unstable regime; use another --seed, e.g. 300)")
    args = a.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    plans = [plan(k, args.seed, args.regime) for k in (args.only if args.only else range(args.networks))]
    if args.exc_scale is not None:
        if not 0 < args.exc_scale < 10:
            raise SystemExit(f"--exc-scale must lie in (0, 10), got {args.exc_scale}")
        plans = [{**p, "exc_scale": args.exc_scale} for p in plans]
    with ThreadPoolExecutor(args.workers) as pool:  # threads only wait: each network runs in its own NEURON process
        for line in pool.map(one, [args.out] * len(plans), [args.cells] * len(plans), [args.duration] * len(plans),
                             plans):
            print(line, flush=True)


if __name__ == "__main__":
    main()
