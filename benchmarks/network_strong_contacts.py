"""Rett network with stronger contacts (x4 and the paper's 3.6 nS = x14.4) in both backends.

    OPENBLAS_NUM_THREADS=1 python benchmarks/network_strong_contacts.py      # ~4 min on 2 free cores

Prints the metrics of both backends and the population-rate r; saves the runs in
``~/mtl-work/validation/strong_*.nc`` (docs/results.md, "NEURON finds no unstable network").
"""
import time
from pathlib import Path

import numpy as np

from mtlneuron.network import rett, rett_metrics, run_neuron_many
from mtlneuron.network.rett_model import CONTACT_WEIGHT_US

OUT = Path.home() / "mtl-work" / "validation"
OUT.mkdir(parents=True, exist_ok=True)
nets = [rett(n_cells=150, p_connect=0.10, seed=0, contact_weight=CONTACT_WEIGHT_US * f) for f in (4.0, 14.4)]
t = time.time()
ref = run_neuron_many(nets, 300.0, n_workers=2, progress=False)
for f, net, r in zip((4.0, 14.4), nets, ref):
    s = net.run(300.0, backend="surrogate")
    r.to_netcdf(str(OUT / f"strong_neuron_x{f:g}.nc")); s.to_netcdf(str(OUT / f"strong_surrogate_x{f:g}.nc"))
    mn, ms = rett_metrics(r), rett_metrics(s)
    print(f"contact weight x{f:g}:", {k: (float(mn[k]), float(ms[k])) for k in ("onset_aps", "pre_aps", "response_aps", "max_sync_fraction", "stable")},
          "rate r", round(float(np.corrcoef(r.rate.values[:, 0], s.rate.values[:, 0])[0, 1]), 3), flush=True)
print("wall", time.time() - t)
