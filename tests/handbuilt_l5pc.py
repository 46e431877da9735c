"""Reference run for test_simulate: the l5pc built by hand in plain NEURON + hnn-core.

Reads a .npz with the site table and events, builds hnn-core's L5 pyramidal
cell (with hnn-core's own dipole mechanism), puts one Exp2Syn per site at
``section(sec_x)`` with the site's parameters, queues every event on its own
NetCon, runs 0.025-ms fixed steps after the steady-state initialisation, and
writes the soma voltage and hnn-core's dipole (fAm) at full resolution.
Run as a separate process: hnn-core section names must not clash.
"""
import json
import sys

import numpy as np
from hnn_core import cells_default
from hnn_core.network_builder import load_custom_mechanisms
from neuron import h

inp = np.load(sys.argv[1], allow_pickle=True)
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

netcons = []
for t, s, w in zip(inp["time"], inp["site"], inp["weight"]):
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


fih = h.FInitializeHandler(1, init)
h.dt = 0.025
soma_v = h.Vector().record(secs["soma"](0.5)._ref_v)
h.finitialize(-65.0)
h.continuerun(float(inp["duration"]))
np.savez(sys.argv[2], v=np.array(soma_v), dipole_fAm=np.array(cell.dipole))
