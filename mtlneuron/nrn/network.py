"""A whole network in one NEURON process: real cells, NetCons, TM synapses, drives.

:func:`simulate_network` takes plain arrays (the network description's
columns), builds every cell with :func:`~mtlneuron.nrn.build.build_cell` (the
same sites as single-cell ground truth), and runs at the fixed 0.025-ms step
with the same steady-state start. It is called inside a worker process (see
``mtlneuron.network.neuron_backend``), never in the user's process.

* drives: the same event queueing as single-cell trials (one NetCon per
  (site, weight), exact times);
* contacts: a NetCon from the presynaptic soma (threshold = the cell's spike
  threshold, delay from the threshold crossing) to the TM version of the
  site's synapse (``MtlTmExp2Syn`` for Exp2Syn sites, ``MtlTmAlphaSyn`` for
  MtlAlphaSyn sites: :data:`TM_MECHANISMS`) at the target site's segment with
  the site's kinetics and reversal and the contact's U, D, F (one point process
  per (cell, site), each NetCon with its own plasticity state); static contacts
  (U = NaN) go straight to the site's own synapse;
* records: spike times (NetCon threshold detection), somatic voltage and the
  summed current dipole as bin means, read chunk by chunk so memory stays
  bounded for long runs; with ``record_cells`` also every segment's voltage
  and every cell's own dipole (training data shaped like what networks feed).
"""
from __future__ import annotations

import json
import time as _time

import numpy as np

from ..conventions import NEURON_DT, n_bins as _n_bins, soma_index, steps_per_bin
from .build import build_cell
from .trial import queue_events, steady_state_init

__all__ = ["simulate_network", "tm_efficacies", "ChunkReader"]


# the TM version of each site point process: same conductance kinetics, plus short-term plasticity
TM_MECHANISMS = {"Exp2Syn": "MtlTmExp2Syn", "MtlAlphaSyn": "MtlTmAlphaSyn"}


def _tm_synapse(built, site: int):
    from neuron import h

    kind = str(built.site_table["point_process"].values[site])
    if kind not in TM_MECHANISMS:
        raise ValueError(f"site {site} of cell {built.cell.name!r} is a {kind}: Tsodyks-Markram contacts are "
                         f"available on {sorted(TM_MECHANISMS)} sites; use a static contact (U = NaN) there")
    row = json.loads(str(built.site_table["nrn_params"].values[site]))
    seg = built.segs[int(built.site_table["segment"].values[site])]
    syn = getattr(h, TM_MECHANISMS[kind])(seg)
    for name, value in row.items():  # the site's own kinetics (tau1/tau2 or tau) and reversal
        setattr(syn, name, value)
    return syn


class ChunkReader:
    """Bin means of recording vectors, read and emptied after every chunk of the run."""

    def __init__(self, vectors: list, n_sub: int) -> None:
        self.vectors, self.n_sub = vectors, n_sub
        self.carry: np.ndarray | None = None

    def read(self) -> np.ndarray:
        new = np.stack([vec.as_numpy().copy() for vec in self.vectors])
        for vec in self.vectors:
            vec.resize(0)
        buf = new if self.carry is None else np.concatenate([self.carry, new], axis=1)
        nb = buf.shape[1] // self.n_sub
        self.carry = buf[:, nb * self.n_sub:]
        return buf[:, :nb * self.n_sub].reshape(buf.shape[0], nb, self.n_sub).mean(axis=2)


def simulate_network(cells: list, pop_sizes: list[int], connections: dict, drives: dict, duration: float,
                     dt: float, record_v: bool = True, record_dipole: bool = True,
                     record_cells: bool = False, chunk_ms: float = 25.0) -> dict:
    """Simulate one network here; plain arrays in and out.

    Parameters
    ----------
    cells : list of Cell
        The cell model of each population.
    pop_sizes : list of int
        Cells per population (gids are numbered population after population).
    connections, drives : dict of arrays
        The description's columns (``pre, post, site, weight, delay, U, D, F``;
        ``gid, site, time, weight``).
    duration, dt : float
        ms; recordings are bin means on the ``dt`` grid.
    record_cells : bool
        Also return ``cell_v`` (cell, time, segment) mV and ``cell_dipole``
        (cell, time, 3) nA um of every cell (cells of one population share a
        segment count).

    Returns
    -------
    dict
        ``spike_times`` list per cell (ms), ``v_soma`` (time, cell) mV,
        ``dipole`` (time, 3) nA um, ``build_seconds``, ``neuron_seconds``
        (and ``cell_v``, ``cell_imem`` (cell, time, segment) nA, ``cell_dipole``).
    """
    import lfpykit
    from neuron import h

    t0 = _time.perf_counter()
    built = [build_cell(cell) for cell, n in zip(cells, pop_sizes) for _ in range(n)]
    pop_of = np.repeat(np.arange(len(cells)), pop_sizes)
    h.dt = NEURON_DT
    h.CVode().use_fast_imem(1)
    somas = [b.segs[soma_index(b.segment_table)] for b in built]

    # spike detection at every soma
    spike_t, spike_id = h.Vector(), h.Vector()
    detectors = []
    for gid, (b, seg) in enumerate(zip(built, somas)):
        nc = h.NetCon(seg._ref_v, None, sec=seg.sec)
        nc.threshold = b.cell.spike_threshold
        nc.record(spike_t, spike_id, gid)
        detectors.append(nc)

    # recurrent contacts
    keep, tm_syns = [], {}
    c = connections
    for k in range(len(c["pre"])):
        pre, post, site = int(c["pre"][k]), int(c["post"][k]), int(c["site"][k])
        if np.isfinite(c["U"][k]):
            key = (post, site, float(c["U"][k]), float(c["D"][k]), float(c["F"][k]))
            target = tm_syns.get(key)
            if target is None:
                target = tm_syns[key] = _tm_synapse(built[post], site)
                target.U, target.D, target.F = key[2], key[3], key[4]
        else:
            target = built[post].synapses[site]
        src = somas[pre]
        nc = h.NetCon(src._ref_v, target, sec=src.sec)
        nc.threshold = built[pre].cell.spike_threshold
        nc.delay = float(c["delay"][k])
        nc.weight[0] = float(c["weight"][k])
        keep.append(nc)

    # drives: per cell, the single-cell trial's event queueing
    events = []
    d = drives
    order = np.argsort(d["gid"], kind="stable")
    gids, starts = np.unique(d["gid"][order], return_index=True)
    bounds = list(starts[1:]) + [order.size]
    for gid, lo, hi in zip(gids, starts, bounds):
        idx = order[lo:hi]
        events += queue_events(built[int(gid)].synapses, d["time"][idx], d["site"][idx], d["weight"][idx])
    handler = h.FInitializeHandler(1, lambda: steady_state_init(events))

    n_sub, total_bins = steps_per_bin(dt), _n_bins(duration, dt)
    readers = {}
    if record_v:
        readers["v"] = ChunkReader([h.Vector().record(seg._ref_v) for seg in somas], n_sub)
    dipole_matrices = []
    if record_cells:
        readers["cell_v"] = ChunkReader([h.Vector().record(seg._ref_v) for b in built for seg in b.segs], n_sub)
    if record_dipole or record_cells:
        vecs = [h.Vector().record(seg._ref_i_membrane_) for b in built for seg in b.segs]
        readers["imem"] = ChunkReader(vecs, n_sub)
        first_of_pop = np.searchsorted(pop_of, np.arange(len(cells)))
        dipole_matrices = [lfpykit.CurrentDipoleMoment(built[i].lfpy).get_transformation_matrix()
                           for i in first_of_pop]
    build_seconds = _time.perf_counter() - t0

    t1 = _time.perf_counter()
    h.finitialize(cells[0].v_init)
    out_v, out_d, out_cv, out_cd, out_ci = [], [], [], [], []
    seg_counts = [len(b.segs) for b in built]
    t_end = 0.0
    while t_end < duration - 1e-9:
        t_end = min(duration, t_end + chunk_ms)
        h.continuerun(t_end)
        if record_v:
            out_v.append(readers["v"].read().T)
        if record_dipole or record_cells:
            imem = readers["imem"].read()  # (all segments of all cells, bins)
        if record_cells:
            out_cv.append(readers["cell_v"].read())
            out_cd.append(_per_cell_dipoles(imem, seg_counts, pop_of, dipole_matrices))
            out_ci.append(imem)
        if record_dipole:
            out_d.append(_summed_dipole(imem, seg_counts, pop_of, dipole_matrices))
    neuron_seconds = _time.perf_counter() - t1
    del handler

    st, sid = spike_t.as_numpy().copy(), spike_id.as_numpy().astype(np.int64)
    keep_mask = st >= 0  # (a crossing during the steady-state start would carry a negative time)
    spikes = [st[keep_mask & (sid == g)] for g in range(len(built))]
    result = {"spike_times": spikes, "build_seconds": build_seconds, "neuron_seconds": neuron_seconds}
    if record_v:
        result["v_soma"] = np.concatenate(out_v)[:total_bins].astype(np.float32)
    if record_dipole:
        result["dipole"] = np.concatenate(out_d)[:total_bins].astype(np.float32)
    if record_cells:
        cv = np.concatenate(out_cv, axis=1)[:, :total_bins]  # (all segments of all cells, time)
        result["cell_v"] = np.stack([m.T for m in _split_cells(cv, seg_counts)]).astype(np.float32)
        result["cell_dipole"] = np.concatenate(out_cd, axis=1)[:, :total_bins].astype(np.float32)
        result["cell_imem"] = np.stack([m[:, :total_bins].T for m in _split_cells(
            np.concatenate(out_ci, axis=1), seg_counts)]).astype(np.float32)
    for key in ("v_soma", "dipole", "cell_v", "cell_dipole"):  # NEURON integrates on through NaN: never hand it back
        arr = result.get(key)
        if arr is not None and not np.all(np.isfinite(arr)):
            where = np.argwhere(~np.isfinite(arr))[0]
            t, col = (int(where[1]), int(where[0])) if key.startswith("cell_") else (int(where[0]), int(where[1]))
            raise ValueError(f"the NEURON network produced a non-finite {key} at t = {t * dt:g} ms "
                             f"({'axis' if key == 'dipole' else 'cell'} {col}): weights or parameters far outside "
                             f"a physiological range")
    return result


def _split_cells(rows: np.ndarray, seg_counts: list[int]) -> list[np.ndarray]:
    """The (segment, ...) blocks of each cell in an (all segments of all cells, ...) array."""
    bounds = np.cumsum([0] + list(seg_counts))
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _per_cell_dipoles(imem: np.ndarray, seg_counts: list[int], pop_of: np.ndarray,
                      matrices: list[np.ndarray]) -> np.ndarray:
    """(cell, bins, 3) dipole of each cell from the (all segments, bins) membrane currents."""
    return np.stack([(matrices[pop_of[g]] @ block).T for g, block in enumerate(_split_cells(imem, seg_counts))])


def _summed_dipole(imem: np.ndarray, seg_counts: list[int], pop_of: np.ndarray,
                   matrices: list[np.ndarray]) -> np.ndarray:
    """(bins, 3) dipole of the whole network: one matrix per population, on its cells' summed currents."""
    blocks = _split_cells(imem, seg_counts)
    dip = np.zeros((imem.shape[1], 3))
    for pop in np.unique(pop_of):
        dip += (matrices[pop] @ sum(blocks[g] for g in np.flatnonzero(pop_of == pop))).T
    return dip


def tm_efficacies(times, U: float, D: float, F: float, weight: float = 0.001) -> np.ndarray:
    """Efficacy of each event of a train (ms) as ``MtlTmExp2Syn`` delivers it, measured in NEURON.

    One synapse on a passive section receives the train through one NetCon; the
    jump of its rise state at each event, divided by ``weight`` and the Exp2Syn
    peak factor, is the efficacy ``u_n R_n / U`` (compared against
    :func:`mtlneuron.network.tm.efficacies` in the tests).
    """
    from neuron import h

    from . import mechanisms

    h.load_file("stdrun.hoc")
    mechanisms.load()
    sec = h.Section(name="tm_probe")
    sec.insert("pas")
    syn = h.MtlTmExp2Syn(sec(0.5))
    syn.U, syn.D, syn.F = U, D, F
    nc = h.NetCon(None, syn)
    nc.weight[0] = weight
    a = h.Vector().record(syn._ref_A)
    h.dt = NEURON_DT
    h.finitialize(-65.0)
    for t in times:
        nc.event(float(t))
    h.continuerun(float(max(times)) + 1.0)
    trace = a.as_numpy().copy()
    decay_step = np.exp(-NEURON_DT / syn.tau1)
    steps = np.rint(np.asarray(times) / NEURON_DT).astype(int)
    # A jumps by weight * factor * efficacy as the event arrives, then decays for one step
    jumps = (trace[steps + 1] - trace[steps] * decay_step) / decay_step
    tau1, tau2 = syn.tau1, syn.tau2
    tp = tau1 * tau2 / (tau2 - tau1) * np.log(tau2 / tau1)
    factor = 1.0 / (np.exp(-tp / tau2) - np.exp(-tp / tau1))  # Exp2Syn's peak normalisation
    return jumps / (weight * factor)
