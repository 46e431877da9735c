"""Rett microcircuit: surrogate vs NEURON on identical networks (connectivity, drives, stimulus).

    python benchmarks/network_validation.py [--cells 150] [--seeds 0 1 2] [--out ~/mtl-work/validation]
    python benchmarks/network_validation.py --report          # table from the saved runs only

Every grid point (exc_scale x p_connect) and seed runs in both backends on the same
description. NEURON results are saved one netCDF per network as they finish, so a
killed run resumes where it stopped. The report prints, per network, pre-stimulus
and response APs, both ``stable`` verdicts and the correlation of the population
rate (5-ms bins), then per grid point the seed means (the coarse parameter map of
both backends), and writes ``table.csv`` and ``map.csv`` next to the runs.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from mtlneuron.network import rett, rett_metrics, run_neuron_many
from mtlneuron.network.sweeps import run_batched

EXC_SCALES = (1.0, 2.0, 3.0)
P_CONNECTS = (0.05, 0.10, 0.20)


def _tag(e: float, pc: float, s: int) -> str:
    return f"e{e:g}_p{pc:g}_s{s}"


def run_missing_neuron(points, nets, duration: float, out: Path, workers: int) -> None:
    """NEURON runs not yet on disk, ``workers`` at a time, each saved when done."""
    todo = [(pt, net) for pt, net in zip(points, nets) if not (out / f"neuron_{_tag(*pt)}.nc").exists()]
    print(f"NEURON: {len(points) - len(todo)} networks on disk, {len(todo)} to run", flush=True)
    for k in range(0, len(todo), workers):
        chunk = todo[k:k + workers]
        t0 = time.perf_counter()
        results = run_neuron_many([net for _, net in chunk], duration, n_workers=workers, progress=False)
        for (pt, _), r in zip(chunk, results):
            tmp = out / f".neuron_{_tag(*pt)}.nc.part"
            r.to_netcdf(tmp)
            tmp.rename(out / f"neuron_{_tag(*pt)}.nc")
        print(f"  {[_tag(*pt) for pt, _ in chunk]} {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    import xarray as xr

    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--report", action="store_true", help="no NEURON runs: report what is on disk")
    p.add_argument("--out", default=str(Path.home() / "mtl-work" / "validation"))
    a = p.parse_args()
    out = Path(a.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    points = [(e, pc, s) for e in EXC_SCALES for pc in P_CONNECTS for s in a.seeds]
    nets = [rett(n_cells=a.cells, p_connect=pc, exc_scale=e, seed=s, duration=a.duration) for e, pc, s in points]
    if not a.report:
        run_missing_neuron(points, nets, a.duration, out, a.workers)
    done = [i for i, pt in enumerate(points) if (out / f"neuron_{_tag(*pt)}.nc").exists()]
    t0 = time.perf_counter()
    sur = run_batched([nets[i] for i in done], a.duration)
    t_sur = time.perf_counter() - t0
    rows = ["exc_scale,p_connect,seed,pre_nrn,pre_sur,resp_nrn,resp_sur,sync_nrn,sync_sur,stable_nrn,stable_sur,"
            "rate_r,neuron_s"]
    for i, s in zip(done, sur):
        e, pc, seed = points[i]
        r = xr.load_dataset(out / f"neuron_{_tag(*points[i])}.nc")
        s.to_netcdf(out / f"surrogate_{_tag(*points[i])}.nc")
        m_n, m_s = rett_metrics(r), rett_metrics(s)
        rate_r = float(np.corrcoef(r["rate"].values[:, 0], s["rate"].values[:, 0])[0, 1])
        rows.append(f"{e},{pc},{seed},{int(m_n.pre_aps)},{int(m_s.pre_aps)},{int(m_n.response_aps)},"
                    f"{int(m_s.response_aps)},{float(m_n.max_sync_fraction):.3f},{float(m_s.max_sync_fraction):.3f},"
                    f"{bool(m_n.stable)},{bool(m_s.stable)},{rate_r:.3f},{float(r.attrs['wall_seconds']):.1f}")
        print(rows[-1], flush=True)
    (out / "table.csv").write_text("\n".join(rows) + "\n")
    print(f"surrogate: {len(done)} networks batched in {t_sur:.1f} s")


if __name__ == "__main__":
    main()
