"""Training data for the HNN column's surrogates: hnn-core column runs, every cell recorded.

    OPENBLAS_NUM_THREADS=1 python benchmarks/generate_hnn_data.py ~/mtl-work/hnn/train \\
        --runs 100 [--seed 1000] [--tstop 250] [--mesh 10] [--families poisson mixed]

Run ``k`` is hnn-core's ``jones_2009_model()`` (a ``mesh`` x ``mesh`` grid) with
drives and connection weights drawn from seed ``seed + k`` (:func:`plan`):

* every cell-to-cell connectivity entry's ``A_weight`` times a gain drawn
  log-uniform in [0.25, 4] (with probability 0.7, else 1): the range the
  connectivity optimiser explores (``--default-weights``: every gain 1);
* one drive family: ``erp`` (hnn-core's evoked ERP drives with their times
  moved +-15 ms, spreads x0.5-2 and weights x0.5-2 per drive), ``poisson``
  (proximal and distal Poisson drives, 10-60 Hz per cell type), ``bursty``
  (alpha / beta / gamma bursts, proximal and distal), or ``mixed`` (ERP drives
  over a weak Poisson background);
* event seeds from the run's seed.

``mtl.network.hnn_cell_trials`` records the cells; one netCDF per run and cell
(``hnn_s{seed}_{cell}.nc``), written atomically; finished runs are skipped
(resumable). ~70-100 s of one core per 250-ms run; each run yields 100 l23pc,
100 l5pc_hnn and 70 basket trials. Seeds >= 9000 are kept for held-out sets.
"""
import argparse
import time
from pathlib import Path

import numpy as np

CELL_ENTRIES_GAIN = (0.25, 4.0)
FAMILIES = ("erp", "poisson", "bursty", "mixed")
CELL_TYPES = ("L2_basket", "L2_pyramidal", "L5_basket", "L5_pyramidal")


# Poisson drive ranges (rate Hz per cell type, weight uS): version 2 is drawn now; the first runs
# recorded (seeds 1000-1016 of ~/mtl-work/hnn/train) drew version 1. The draws are the same, so
# ``plan(seed, poisson_version=1)`` rebuilds those runs' networks exactly.
POISSON_RANGES = {1: ((2.0, 20.0), (2e-4, 2e-3)), 2: ((10.0, 60.0), (5e-4, 5e-3))}


def plan(seed: int, poisson_version: int = 2, default_weights: bool = False) -> dict:
    """The random choices of one run (all from ``seed``; ``poisson_version``: see ``POISSON_RANGES``).

    ``default_weights`` keeps every cell-to-cell gain at 1 (hnn-core's own column, the one users run);
    the drives are drawn as without it.
    """
    rates, weights = POISSON_RANGES[poisson_version]
    rng = np.random.default_rng([seed, 18])
    family = FAMILIES[seed % len(FAMILIES)]
    gains = [float(np.exp(rng.uniform(*np.log(CELL_ENTRIES_GAIN)))) if rng.random() < 0.7 else 1.0
             for _ in range(16)]
    if default_weights:
        gains = [1.0] * len(gains)
    erp = {name: {"shift": float(rng.uniform(-15, 15)), "sigma": float(np.exp(rng.uniform(np.log(0.5), np.log(2)))),
                  "weight": float(np.exp(rng.uniform(np.log(0.5), np.log(2))))}
           for name in ("evprox1", "evdist1", "evprox2")}
    poisson = {loc: {t: float(rng.uniform(*rates)) for t in CELL_TYPES} for loc in ("proximal", "distal")}
    poisson_w = {loc: float(np.exp(rng.uniform(*np.log(weights)))) for loc in ("proximal", "distal")}
    bursty = {loc: {"rate": float(rng.choice([10.0, 20.0, 40.0])), "tstart": float(rng.uniform(0, 40)),
                    "weight": float(np.exp(rng.uniform(np.log(5e-4), np.log(5e-3)))),
                    "numspikes": int(rng.integers(2, 4))} for loc in ("proximal", "distal")}
    return {"seed": seed, "family": family, "poisson_version": poisson_version, "default_weights": default_weights,
            "gains": gains, "erp": erp,
            "poisson": poisson,
            "poisson_weight": poisson_w, "bursty": bursty}


def build(p: dict, mesh: int, tstop: float):
    """The ``hnn_core.Network`` of plan ``p``."""
    from hnn_core import jones_2009_model
    from hnn_core.network_models import add_erp_drives_to_jones_model

    net = jones_2009_model(add_drives_from_params=False, mesh_shape=(mesh, mesh))
    cell_entries = [c for c in net.connectivity if c["src_type"] in net.cell_types]
    for conn, g in zip(cell_entries, p["gains"]):
        conn["nc_dict"]["A_weight"] *= g
    seed = p["seed"]
    if p["family"] in ("erp", "mixed"):
        add_erp_drives_to_jones_model(net)
        for k, (name, change) in enumerate(p["erp"].items()):
            drive = net.external_drives[name]
            drive["dynamics"]["mu"] = max(5.0, drive["dynamics"]["mu"] + change["shift"])
            drive["dynamics"]["sigma"] *= change["sigma"]
            drive["event_seed"] = seed * 10 + k
            for conn in net.connectivity:
                if conn["src_type"] == name:
                    conn["nc_dict"]["A_weight"] *= change["weight"]
    if p["family"] in ("poisson", "mixed"):
        scale = 0.3 if p["family"] == "mixed" else 1.0
        for k, loc in enumerate(("proximal", "distal")):
            targets = [t for t in CELL_TYPES if not (loc == "distal" and t == "L5_basket")]
            net.add_poisson_drive(f"poisson_{loc}", tstart=0.0, tstop=tstop, location=loc,
                                  rate_constant={t: p["poisson"][loc][t] * scale for t in targets},
                                  weights_ampa={t: p["poisson_weight"][loc] for t in targets},
                                  synaptic_delays=0.1, event_seed=seed * 10 + 5 + k)
    if p["family"] == "bursty":
        for k, loc in enumerate(("proximal", "distal")):
            b = p["bursty"][loc]
            targets = [t for t in CELL_TYPES if not (loc == "distal" and t == "L5_basket")]
            net.add_bursty_drive(f"bursty_{loc}", tstart=b["tstart"], tstart_std=5.0, tstop=tstop, location=loc,
                                 burst_rate=b["rate"], burst_std=10.0, numspikes=b["numspikes"],
                                 spike_isi=min(10.0, 0.8 * 1000.0 / b["rate"] / b["numspikes"]),
                                 n_drive_cells=10, weights_ampa={t: b["weight"] for t in targets},
                                 synaptic_delays=0.1, event_seed=seed * 10 + 7 + k)
    return net


def one(out: Path, p: dict, mesh: int, tstop: float) -> str:
    import mtlneuron as mtl
    from mtlneuron._util import atomic_path

    names = ("l23pc", "l5pc_hnn", "basket")
    paths = {n: out / f"hnn_s{p['seed']}_{n}.nc" for n in names}
    if all(path.exists() for path in paths.values()):
        return f"s{p['seed']}: on disk"
    t0 = time.perf_counter()
    net = build(p, mesh, tstop)
    data = mtl.network.hnn_cell_trials(net, tstop)
    spikes = {}
    for name, ds in data.items():
        ds.attrs.update({"hnn_family": p["family"], "hnn_seed": p["seed"], "hnn_gains": str(p["gains"]),
                         "hnn_default_weights": int(p["default_weights"]), "hnn_mesh": mesh})
        with atomic_path(paths[name]) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", encoding={v: {"zlib": True, "complevel": 4}
                                                           for v in ds.data_vars if ds[v].dtype.kind == "f"})
        spikes[name] = int(np.isfinite(ds["spike_times"].values).sum())
    return f"s{p['seed']} {p['family']}: {time.perf_counter() - t0:.0f} s, spikes {spikes}"


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("out")
    a.add_argument("--runs", type=int, default=100)
    a.add_argument("--seed", type=int, default=1000)
    a.add_argument("--tstop", type=float, default=250.0)
    a.add_argument("--mesh", type=int, default=10)
    a.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                   help="only seeds whose family is one of these (a seed's family is FAMILIES[seed % 4])")
    a.add_argument("--default-weights", action="store_true",
                   help="every cell-to-cell gain 1 (hnn-core's default column); drives drawn as usual")
    args = a.parse_args()
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    seeds = (s for s in range(args.seed, args.seed + 4 * args.runs) if plan(s)["family"] in args.families)
    for seed, _ in zip(seeds, range(args.runs)):
        print(one(out, plan(seed, default_weights=args.default_weights), args.mesh, args.tstop), flush=True)


if __name__ == "__main__":
    main()
