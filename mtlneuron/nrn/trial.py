"""One NEURON trial of one cell: recorders, event delivery, steady-state start, bin means.

See :mod:`mtlneuron.simulate` for what the arrays mean; this module runs them.
"""
from __future__ import annotations

import time as _time

import numpy as np

from ..conventions import NEURON_DT, n_bins as _n_bins, steps_per_bin, soma_index, threshold_crossings
from . import worker

__all__ = ["IONS", "Recorder", "check_output", "run_trial", "queue_events", "steady_state_init"]

IONS = ("na", "k")  # somatic ionic currents recorded when the soma has these ions


def steady_state_init(netcons_events) -> None:
    """Queue each NetCon's events, then relax to rest: ten 1e9-ms steps from t = -1e10 ms.

    Runs as an ``FInitializeHandler`` (Carnevale & Hines 2006; eLife 2022 Methods).
    """
    from neuron import h

    for nc, times in netcons_events:
        for t in times:
            nc.event(float(t))
    dt_saved = h.dt
    h.t = -1e10
    h.dt = 1e9
    for _ in range(10):
        h.fadvance()
    h.dt = dt_saved
    h.t = 0.0
    h.fcurrent()


def queue_events(synapses: list, time: np.ndarray, site: np.ndarray, weight: np.ndarray) -> list:
    """One NetCon per (site, weight) pair with its event times: ``[(netcon, times), ...]``.

    NetCon weights are fixed per connection, so every distinct weight at a site
    gets its own NetCon.
    """
    from neuron import h

    if time.size == 0:
        return []
    pairs, inverse = np.unique(np.stack([site.astype(float), weight]), axis=1, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    out = []
    for k in range(pairs.shape[1]):
        nc = h.NetCon(None, synapses[int(pairs[0, k])])
        nc.weight[0] = float(pairs[1, k])
        out.append((nc, time[inverse == k]))
    return out


class Recorder:
    """Per-step recorders of one built cell, made once and reused by every trial.

    ``v`` and ``i_membrane_`` (nA) of every segment, and the soma segment's
    ``ina`` / ``ik`` (mA/cm2) when it has both ions. Plain ``Vector.record(ref)``
    samples at every fixed step; LFPy's own ``rec_vmem``/``rec_imem`` pass a
    sampling interval, which NEURON serves with one discrete event per vector
    per step and costs ~20 % of the run.
    """

    def __init__(self, built) -> None:
        import lfpykit
        from neuron import h

        h.CVode().use_fast_imem(1)
        self.soma = soma_index(built.segment_table)
        soma = built.segs[self.soma]
        has_ions = all(h.ismembrane(f"{ion}_ion", sec=soma.sec) for ion in IONS)
        self.v = [h.Vector().record(seg._ref_v) for seg in built.segs]
        self.imem = [h.Vector().record(seg._ref_i_membrane_) for seg in built.segs]
        self.ions = [h.Vector().record(getattr(soma, f"_ref_i{ion}")) for ion in IONS] if has_ions else []
        self.soma_area = soma.area()  # um2
        self.dipole_matrix = lfpykit.CurrentDipoleMoment(built.lfpy).get_transformation_matrix()

    def reserve(self, duration: float) -> None:
        """Room for every sample of a ``duration``-ms run up front: no regrowth during the run."""
        needed = int(round(duration / NEURON_DT)) + 2
        for vec in self.v + self.imem + self.ions:
            vec.resize(0)  # buffer_size refuses a capacity below the current length
            if vec.buffer_size() < needed:
                vec.buffer_size(needed)

    @staticmethod
    def bin_means(recs: list, n_bins: int, n_sub: int) -> np.ndarray:
        """(time, channel) means over bins of ``n_sub`` steps, read straight from NEURON's buffers."""
        n = n_bins * n_sub
        return np.stack([vec.as_numpy()[:n].reshape(n_bins, n_sub).mean(axis=1) for vec in recs], axis=1)


_recorders: dict[str, Recorder] = {}


def check_output(cell, built, result: dict, dt: float) -> None:
    """Raise ``ValueError`` naming the cell, time (ms) and segment of the first non-finite output.

    NEURON integrates on through NaN and overflow (absurd weights, a NaN
    parameter), and float32 storage turns huge currents into inf; a trial must
    never come back with either.
    """
    names = {"v": "voltage", "imem": "membrane current", "dipole": "current dipole", "i_ion": "ionic current"}
    for key, what in names.items():
        arr = result.get(key)
        if arr is None:
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            t, col = (int(k) for k in np.argwhere(bad)[0])
            where = f"segment {built.segment_table['segment'].values[col]}" if key in ("v", "imem") else \
                f"component {col}"
            raise ValueError(f"NEURON produced a non-finite {what} ({key}, or beyond float32) in cell {cell.name!r} "
                             f"at t = {t * dt:g} ms, {where}: the drive's weights or the cell's parameters are "
                             f"far outside a physiological range")


def _recorder(cell, built) -> Recorder:
    rec = _recorders.get(cell.key)
    if rec is None:
        rec = _recorders[cell.key] = Recorder(built)
    return rec


def run_trial(cell, time: np.ndarray, site: np.ndarray, weight: np.ndarray, duration: float,
              dt: float) -> dict:
    """Simulate one trial in *this* process (building the cell here once).

    Used by ``mtl.simulate`` inside the cell's worker and by
    ``datasets.generate`` inside pool / dask workers. Returns plain numpy
    arrays on the ``dt`` grid (see :mod:`mtlneuron.simulate`) plus
    ``neuron_seconds``, the wall time of the NEURON integration alone.
    """
    from neuron import h

    built = worker.built(cell)
    rec = _recorder(cell, built)
    lc = built.lfpy
    lc.tstop = float(duration)
    n_sub, n_bins = steps_per_bin(dt), _n_bins(duration, dt)

    netcons_events = queue_events(built.synapses, time, site, weight)
    handler = h.FInitializeHandler(1, lambda: steady_state_init(netcons_events))
    rec.reserve(duration)
    try:
        start = _time.perf_counter()
        lc.simulate()  # LFPy's own run loop; our recorders sample every 0.025-ms step
        neuron_seconds = _time.perf_counter() - start
    finally:
        del handler
        netcons_events.clear()

    n = n_bins * n_sub
    v, i = rec.bin_means(rec.v, n_bins, n_sub), rec.bin_means(rec.imem, n_bins, n_sub)
    soma_v = rec.v[rec.soma].as_numpy()[:n].copy()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by check_output below
        result = _float32_result(rec, v, i, soma_v, n, n_bins, n_sub, cell, neuron_seconds)
    check_output(cell, built, result, dt)
    return result


def _float32_result(rec, v, i, soma_v, n, n_bins, n_sub, cell, neuron_seconds) -> dict:
    result = {
        "v": v.astype(np.float32),
        "imem": i.astype(np.float32),
        "dipole": (i @ rec.dipole_matrix.T).astype(np.float32),
        "spike_times": threshold_crossings(soma_v, np.arange(n) * NEURON_DT, cell.spike_threshold),
        "neuron_seconds": neuron_seconds,
    }
    if rec.ions:  # mA/cm2 * um2 = 1e-2 nA
        result["i_ion"] = (rec.bin_means(rec.ions, n_bins, n_sub) * rec.soma_area * 1e-2).astype(np.float32)
    return result
