"""The figures behind tests/test_simulate.py's physics checks, printed.

    python benchmarks/physics_check.py [--duration 1000] [--seed 3]

l5pc under the default Poisson drive: soma voltage of ``mtl.simulate``
against the cell rebuilt by hand in plain NEURON + hnn-core
(benchmarks/bare_neuron_l5pc.py); our z dipole against hnn-core's dipole
mechanism (nA m); dipole from imem and from v (V->I_m matrix) against
lfpykit.CurrentDipoleMoment applied to imem (relative RMSE).
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import lfpykit
import numpy as np

import mtlneuron as mtl


def rel_rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    cell = mtl.cells.get("l5pc")
    drive = mtl.inputs.poisson(cell, args.duration, seed=args.seed)
    ds = mtl.simulate(cell, drive)
    sites = cell.sites
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, section=cell.segments["section"].values[sites["segment"].values].astype(str),
                 sec_x=sites["sec_x"].values, point_process=sites["point_process"].values.astype(str),
                 nrn_params=sites["nrn_params"].values.astype(str), time=drive["time"].values,
                 site=drive["site"].values, weight=drive["weight"].values, duration=args.duration)
        subprocess.run([sys.executable, str(Path(__file__).parent / "bare_neuron_l5pc.py"), str(inp), str(out)],
                       check=True, capture_output=True)
        ref = {k: v[0] for k, v in np.load(out).items()}
    n = ds.sizes["time"]
    v_ref = ref["v"][: n * 20].reshape(n, 20).mean(axis=1)
    v = ds["v"].values[:, cell.soma_index]
    hnn = ref["dipole_fAm"][: n * 20].reshape(n, 20).mean(axis=1) * 1e-6
    ours = ds["dipole"].sel(axis="z").values * 1e-6
    s = cell.segments
    geom = lfpykit.CellGeometry(x=np.c_[s["x0"], s["x1"]], y=np.c_[s["y0"], s["y1"]], z=np.c_[s["z0"], s["z1"]],
                                d=s["diam"].values)
    D = lfpykit.CurrentDipoleMoment(geom).get_transformation_matrix()
    p_imem = ds["imem"].values.astype(float) @ D.T
    p_v = (ds["v"].values.astype(float) @ cell.vmem_to_imem().T) @ D.T
    spikes = int(np.isfinite(ds["spike_times"].values).sum())
    print(f"l5pc, {args.duration:.0f} ms, drive seed {args.seed}, {spikes} spikes\n")
    print("| check | figure |")
    print("|---|---|")
    print(f"| soma v vs hand-built NEURON: r | {np.corrcoef(v, v_ref)[0, 1]:.6f} |")
    print(f"| soma v vs hand-built NEURON: max abs diff | {np.abs(v - v_ref).max():.2e} mV |")
    print(f"| dipole z vs hnn-core dipole mechanism: r | {np.corrcoef(ours, hnn)[0, 1]:.4f} |")
    print(f"| dipole z / hnn-core dipole: std ratio | {np.std(ours) / np.std(hnn):.3f} |")
    print(f"| `dipole` vs CurrentDipoleMoment(imem): rel. RMSE | {rel_rmse(ds['dipole'].values, p_imem):.2e} |")
    print(f"| dipole from v (V->I_m) vs from imem: rel. RMSE | {rel_rmse(p_v, p_imem):.2e} |")


if __name__ == "__main__":
    main()
