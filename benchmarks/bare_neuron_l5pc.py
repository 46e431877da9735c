"""Bare NEURON: the l5pc built by hand in plain NEURON + hnn-core, no mtlneuron.

Used two ways:
* by tests/test_simulate.py as an independent reference (one trial);
* by benchmarks/generate_throughput.py as the "bare NEURON" cost of the same
  simulations ``datasets.generate`` runs.

Usage: python bare_neuron_l5pc.py IN.npz OUT.npz

IN.npz holds the site table (section, sec_x, point_process, nrn_params) and
events (time, site, weight, trial) plus duration. The cell (with hnn-core's
own dipole mechanism) is built once; per trial, one Exp2Syn per site gets
one NetCon per event, the steady-state initialisation runs, then 0.025-ms
fixed steps to ``duration``. OUT.npz: soma voltage and hnn-core dipole (fAm)
of every trial at full resolution, and the wall time of each run (s).
"""
import json
import sys
import time

import numpy as np
from hnn_core import cells_default
from hnn_core.network_builder import load_custom_mechanisms
from neuron import h


def build(inp):
    load_custom_mechanisms()
    h.load_file("stdrun.hoc")
    h.celsius = 37.0
    cell = cells_default.pyramidal("L5_pyramidal")
    cell.build(sec_name_apical="apical_trunk")
    secs = cell._nrn_sections
    syns = []
    for section, sec_x, pp, params in zip(inp["section"], inp["sec_x"], inp["point_process"], inp["nrn_params"]):
        syn = getattr(h, str(pp))(secs[str(section)](float(sec_x)))
        for k, v in json.loads(str(params)).items():
            setattr(syn, k, v)
        syns.append(syn)
    return cell, syns


def run(cell, syns, times, sites, weights, duration):
    netcons = []
    for t, s, w in zip(times, sites, weights):
        nc = h.NetCon(None, syns[int(s)])
        nc.weight[0] = float(w)
        netcons.append((nc, float(t)))

    def init():
        for nc, t in netcons:
            nc.event(t)
        h.t, dt = -1e10, h.dt
        h.dt = 1e9
        for _ in range(10):
            h.fadvance()
        h.dt, h.t = dt, 0.0
        h.fcurrent()

    fih = h.FInitializeHandler(1, init)  # noqa: F841 (kept alive during the run)
    h.dt = 0.025
    soma_v = h.Vector().record(cell._nrn_sections["soma"](0.5)._ref_v)
    start = time.perf_counter()
    h.finitialize(-65.0)
    h.continuerun(float(duration))
    seconds = time.perf_counter() - start
    return np.array(soma_v), np.array(cell.dipole), seconds


def main(path_in, path_out):
    inp = np.load(path_in, allow_pickle=True)
    cell, syns = build(inp)
    trial = inp["trial"] if "trial" in inp else np.zeros(inp["time"].size, dtype=int)
    out = {"v": [], "dipole_fAm": [], "seconds": []}
    for k in range(int(trial.max()) + 1 if trial.size else 1):
        sel = trial == k
        v, dpl, seconds = run(cell, syns, inp["time"][sel], inp["site"][sel], inp["weight"][sel], inp["duration"])
        out["v"].append(v)
        out["dipole_fAm"].append(dpl)
        out["seconds"].append(seconds)
    np.savez(path_out, v=np.array(out["v"]), dipole_fAm=np.array(out["dipole_fAm"]), seconds=np.array(out["seconds"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
