"""Rett microcircuit: surrogate vs NEURON on identical networks (connectivity, drives, stimulus).

    python benchmarks/network_validation.py [--cells 150] [--seeds 0 1 2] [--out ~/mtl-work/validation]

For each grid point (exc_scale, p_connect) and seed, both backends run the same
description; printed: pre-stimulus and response APs, stable verdicts, the
correlation of the population rate (5-ms bins) and wall times. Results are
written as netCDF next to a CSV table.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import mtlneuron as mtl
from mtlneuron.network import rett, rett_metrics, run_neuron_many

GRID = [(0.75, 0.052), (1.0, 0.10), (1.25, 0.10)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--out", default=str(Path.home() / "mtl-work" / "validation"))
    a = p.parse_args()
    out = Path(a.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    points = [(e, pc, s) for e, pc in GRID for s in a.seeds]
    nets = [rett(n_cells=a.cells, p_connect=pc, exc_scale=e, seed=s, duration=a.duration) for e, pc, s in points]
    t0 = time.perf_counter()
    ref = run_neuron_many(nets, a.duration)
    t_nrn = time.perf_counter() - t0
    rows = ["exc_scale,p_connect,seed,pre_nrn,pre_sur,resp_nrn,resp_sur,stable_nrn,stable_sur,rate_r,"
            "neuron_s,surrogate_s"]
    for (e, pc, s), net, r in zip(points, nets, ref):
        t1 = time.perf_counter()
        sur = net.run(a.duration, backend="surrogate")
        t_sur = time.perf_counter() - t1
        m_n, m_s = rett_metrics(r), rett_metrics(sur)
        rate_r = float(np.corrcoef(r["rate"].values[:, 0], sur["rate"].values[:, 0])[0, 1])
        tag = f"e{e}_p{pc}_s{s}"
        r.to_netcdf(out / f"neuron_{tag}.nc")
        sur.to_netcdf(out / f"surrogate_{tag}.nc")
        rows.append(f"{e},{pc},{s},{int(m_n.pre_aps)},{int(m_s.pre_aps)},{int(m_n.response_aps)},"
                    f"{int(m_s.response_aps)},{bool(m_n.stable)},{bool(m_s.stable)},{rate_r:.3f},"
                    f"{float(r.attrs['wall_seconds']):.1f},{t_sur:.2f}")
        print(rows[-1], flush=True)
    (out / "table.csv").write_text("\n".join(rows) + "\n")
    print(f"NEURON total {t_nrn:.0f} s for {len(nets)} networks on 2 processes")


if __name__ == "__main__":
    main()
