"""NEURON ground truth through LFPy: voltages, membrane currents, dipole, spikes.

``mtl.simulate(cell, drive, dt=0.5)`` integrates the cell in NEURON at
0.025 ms (fixed step, implicit Euler) inside the cell's worker process and
returns one trial as an ``xarray.Dataset``.

Initialisation: ``finitialize(v_init)`` followed by NEURON's steady-state
procedure (Carnevale & Hines 2006; eLife 2022 Methods): ten steps of 1e9 ms
from t = -1e10 ms, so every trial starts from the cell's true resting state
instead of a start-up transient. Events are queued before this and delivered
at their exact times from t = 0.

Down-sampling to the model grid ``dt``: every time series (``v``, ``imem``,
``dipole``) is the **mean over its bin** ``[t, t + dt)`` of the 0.025-ms
samples (``v`` and ``i_membrane_`` recorded at every NEURON step). Averaging is linear, so ``imem = M @ v`` and ``dipole = D @ imem``
still hold exactly on the coarse grid. Spike times are upward crossings of
``cell.spike_threshold`` by the somatic voltage at full 0.025-ms resolution,
linearly interpolated. ``inputs`` is the summed event weight per bin.

Somatic ionic currents: when the soma carries sodium and potassium ions
(``hh`` in ``point`` / ``point_nmda``, ``hh2`` and friends in hnn-core cells),
``i_ion`` (time, ion) is the total sodium and potassium current of the soma
segment, ``ina`` / ``ik`` (mA/cm2, all mechanisms) times the segment area,
in nA with NEURON's sign (outward positive), bin means like ``v``.
"""
from __future__ import annotations

import time as _time

import numpy as np
import xarray as xr

from . import _util, _worker
from . import inputs as _inputs
from .cells import NEURON_DT, Cell

__all__ = ["simulate", "run_trial", "to_dataset", "spike_times", "plot"]

AXES = ("x", "y", "z")
IONS = ("na", "k")  # somatic ionic currents recorded when the soma has these ions


def _check_dt(dt, duration: float) -> int:
    """Validate the model grid; return the number of NEURON steps per bin."""
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a positive number of ms, got {dt!r}") from None
    ratio = dt / NEURON_DT
    if not dt > 0 or abs(ratio - round(ratio)) > 1e-9:
        raise ValueError(f"dt must be a positive multiple of the NEURON step {NEURON_DT} ms, got {dt!r}")
    n_bins = duration / dt
    if abs(n_bins - round(n_bins)) > 1e-9:
        raise ValueError(f"duration {duration} ms must be a multiple of dt {dt} ms")
    return int(round(ratio))


def spike_times(v: np.ndarray, t: np.ndarray, threshold: float) -> np.ndarray:
    """Upward crossings of ``threshold`` (mV) by ``v``, linearly interpolated (ms)."""
    above = v >= threshold
    idx = np.flatnonzero(~above[:-1] & above[1:]) + 1
    v0, v1 = v[idx - 1], v[idx]
    frac = (threshold - v0) / np.where(v1 != v0, v1 - v0, 1.0)
    return t[idx - 1] + frac * (t[idx] - t[idx - 1])


def _steady_state_init(netcons_events) -> None:
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


def _recorders(built) -> tuple[list, list, list]:
    """Per-step recorders, made once per cell: v and i_membrane_ (nA) of every segment,
    and the soma segment's ``ina``, ``ik`` (mA/cm2) when it has both ions (else empty).

    Plain ``Vector.record(ref)`` samples at every fixed step; LFPy's own
    ``rec_vmem``/``rec_imem`` pass a sampling interval, which NEURON serves with
    one discrete event per vector per step and costs ~20 % of the run.
    """
    from neuron import h

    if not hasattr(built, "recorders"):
        h.CVode().use_fast_imem(1)
        soma = built.segs[int(built.segment_table.attrs["soma_index"])]
        has_ions = all(h.ismembrane(f"{ion}_ion", sec=soma.sec) for ion in IONS)
        built.recorders = ([h.Vector().record(seg._ref_v) for seg in built.segs],
                           [h.Vector().record(seg._ref_i_membrane_) for seg in built.segs],
                           [h.Vector().record(getattr(soma, f"_ref_i{ion}")) for ion in IONS] if has_ions else [])
        built.soma_area = soma.area()  # um2
    return built.recorders


def run_trial(cell: Cell, time: np.ndarray, site: np.ndarray, weight: np.ndarray, duration: float,
              dt: float) -> dict:
    """Simulate one trial in *this* process (building the cell here once).

    Used by :func:`simulate` inside the cell's worker and by
    ``datasets.generate`` inside pool / dask workers. Returns plain numpy
    arrays on the ``dt`` grid (see the module docstring) plus ``neuron_seconds``,
    the wall time of the NEURON integration alone.
    """
    import lfpykit
    from neuron import h

    built = _worker.built(cell)
    lc = built.lfpy
    lc.tstop = float(duration)
    n_sub = _check_dt(dt, duration)
    n_bins = int(round(duration / dt))

    # One NetCon per (site, weight) pair: NetCon weights are fixed per connection.
    pairs, inverse = np.unique(np.stack([site.astype(float), weight]), axis=1, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    netcons_events = []
    for k in range(pairs.shape[1]):
        nc = h.NetCon(None, built.synapses[int(pairs[0, k])])
        nc.weight[0] = float(pairs[1, k])
        netcons_events.append((nc, time[inverse == k]))
    handler = h.FInitializeHandler(1, lambda: _steady_state_init(netcons_events))
    v_rec, i_rec, ion_rec = _recorders(built)
    needed = int(round(duration / NEURON_DT)) + 2
    for vec in v_rec + i_rec + ion_rec:  # room for every sample up front: no regrowth during the run
        vec.resize(0)  # buffer_size refuses a capacity below the current length
        if vec.buffer_size() < needed:
            vec.buffer_size(needed)
    try:
        start = _time.perf_counter()
        lc.simulate()  # LFPy's own run loop; our recorders sample every 0.025-ms step
        neuron_seconds = _time.perf_counter() - start
    finally:
        del handler
        netcons_events.clear()

    n = n_bins * n_sub

    def bin_means(recs):  # (time, segment) bin means, read straight from NEURON's buffers
        return np.stack([vec.as_numpy()[:n].reshape(n_bins, n_sub).mean(axis=1) for vec in recs], axis=1)

    v, i = bin_means(v_rec), bin_means(i_rec)
    soma_v = v_rec[built.segment_table.attrs["soma_index"]].as_numpy()[:n].copy()
    t_full = np.arange(n) * NEURON_DT
    if not hasattr(built, "dipole_matrix"):
        built.dipole_matrix = lfpykit.CurrentDipoleMoment(lc).get_transformation_matrix()
    result = {
        "v": v.astype(np.float32),
        "imem": i.astype(np.float32),
        "dipole": (i @ built.dipole_matrix.T).astype(np.float32),
        "spike_times": spike_times(soma_v, t_full, cell.spike_threshold),
        "neuron_seconds": neuron_seconds,
    }
    if ion_rec:  # mA/cm2 * um2 = 1e-2 nA
        result["i_ion"] = (bin_means(ion_rec) * built.soma_area * 1e-2).astype(np.float32)
    return result


def _attrs(cell: Cell, drive: xr.Dataset, dt: float) -> dict:
    return {
        "cell": cell.name,
        "cell_key": cell.key,
        "dt": float(dt),
        "neuron_dt": NEURON_DT,
        "celsius": cell.celsius,
        "v_init": cell.v_init,
        "spike_threshold": cell.spike_threshold,
        "duration": float(drive.attrs["duration"]),
        "seed": int(drive.attrs.get("seed", -1)),
        "drive_kind": str(drive.attrs.get("kind", "unknown")),
        "downsampling": "v, imem, dipole: mean over [t, t+dt) of 0.025-ms samples; "
                        "spike_times: threshold crossings at 0.025 ms; inputs: summed weights per bin",
        "initialisation": "finitialize(v_init) + steady-state (10 x 1e9 ms from t=-1e10)",
        "command": _util.command_line(),
        **_util.versions(),
    }


def to_dataset(cell: Cell, drive: xr.Dataset, result: dict, dt: float) -> xr.Dataset:
    """Label the arrays of :func:`run_trial` with the schema's dims, units and attrs."""
    n_bins = result["v"].shape[0]
    seg = cell.segments
    sites = cell.sites
    time = np.arange(n_bins) * dt
    coords = {
        "time": ("time", time, {"units": "ms", "long_name": "bin start"}),
        "segment": seg["segment"].values,
        "region": ("segment", seg["region"].values.astype(str)),
        "site": sites["site"].values,
        "site_kind": ("site", sites["kind"].values.astype(str)),
        "axis": list(AXES),
    }
    spikes = np.asarray(result["spike_times"], dtype=float)
    ds = xr.Dataset(
        {
            "v": (("time", "segment"), result["v"], {"units": "mV", "long_name": "membrane potential"}),
            "imem": (("time", "segment"), result["imem"], {"units": "nA", "long_name": "transmembrane current"}),
            "dipole": (("time", "axis"), result["dipole"],
                       {"units": "nA um", "long_name": "current dipole moment (1 nA um = 1e-6 nA m)"}),
            "spike_times": ("spike", spikes, {"units": "ms", "long_name": "somatic spike times (NaN-padded)"}),
            "inputs": (("time", "site"), _inputs.bin(drive, dt, sites.sizes["site"]).values.astype(np.float32),
                       {"units": "uS", "long_name": "summed event weight per bin"}),
        },
        coords=coords,
        attrs=_attrs(cell, drive, dt),
    )
    if "i_ion" in result:
        ds["i_ion"] = xr.DataArray(
            np.asarray(result["i_ion"], dtype=np.float32), dims=("time", "ion"), coords={"ion": list(IONS)},
            attrs={"units": "nA", "long_name": "somatic sodium / potassium current (soma segment, outward +)"})
    return ds


def simulate(cell: Cell, drive: xr.Dataset, dt: float = 0.5) -> xr.Dataset:
    """Simulate ``cell`` under ``drive`` in NEURON and return one labelled trial.

    Parameters
    ----------
    cell : Cell
        From ``mtl.cells.get`` or ``mtl.cells.from_morphology``.
    drive : xarray.Dataset
        Events from ``mtl.inputs`` (``time`` ms, ``site``, ``weight`` uS).
    dt : float
        Model grid (ms), a multiple of the 0.025-ms NEURON step that divides
        the drive's duration.

    Returns
    -------
    xarray.Dataset
        ``v`` (time, segment) mV, ``imem`` (time, segment) nA, ``dipole``
        (time, axis) nA um, ``spike_times`` (spike) ms, ``inputs`` (time, site)
        uS, and ``i_ion`` (time, ion) nA where the soma has sodium and
        potassium ions, with provenance attrs (see the module docstring for
        down-sampling).

    Raises
    ------
    ValueError
        For a drive with bad events (times outside [0, duration), NaN or
        negative weights, site indices out of range, another cell's sites) or
        a bad ``dt``.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    _inputs.validate(drive, cell)
    duration = float(drive.attrs["duration"])
    _check_dt(dt, duration)
    result = _worker.call(cell.key, run_trial, cell, drive["time"].values, drive["site"].values,
                          drive["weight"].values, duration, float(dt))
    return to_dataset(cell, drive, result, dt)


def plot(ds: xr.Dataset, path=None, title: str | None = None):
    """One-figure overview of a trial: soma and dendrite voltages, all-segment heat map, dipole.

    Returns the matplotlib Figure; saves it to ``path`` when given.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if "trial" in ds.dims:
        ds = ds.isel(trial=0)
    t = ds["time"].values
    region = ds["region"].values.astype(str)
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 1.2, 1.6, 1]})
    soma = int(np.flatnonzero(region == "soma")[0])
    axes[0].plot(t, ds["v"].values[:, soma], color="k", lw=0.8)
    for st in ds["spike_times"].values[np.isfinite(ds["spike_times"].values)]:
        axes[0].axvline(st, color="r", lw=0.4, alpha=0.4)
    axes[0].set_ylabel("soma v (mV)")
    for reg, color in [("basal", "tab:green"), ("apical_trunk", "tab:blue"), ("apical_tuft", "tab:purple")]:
        idx = np.flatnonzero(region == reg)
        if idx.size:
            seg = idx[len(idx) // 2]
            axes[1].plot(t, ds["v"].values[:, seg], lw=0.7, color=color, label=str(ds["segment"].values[seg]))
    axes[1].set_ylabel("dendrite v (mV)")
    if axes[1].lines:
        axes[1].legend(loc="upper right", fontsize=7)
    im = axes[2].imshow(ds["v"].values.T, aspect="auto", origin="lower", cmap="viridis",
                        extent=[t[0], t[-1] + (t[1] - t[0] if t.size > 1 else 1), 0, ds.sizes["segment"]],
                        vmin=-85, vmax=-20)
    axes[2].set_ylabel("segment")
    # an inset colorbar keeps this axis as wide as the others, so time lines up
    fig.colorbar(im, cax=axes[2].inset_axes([1.005, 0.0, 0.012, 1.0]), label="v (mV)")
    for k, axis in enumerate(ds["axis"].values):
        axes[3].plot(t, ds["dipole"].values[:, k] * 1e-3, lw=0.7, label=str(axis))  # nA um -> uA um
    axes[3].set_ylabel("dipole (uA um)")
    axes[3].legend(loc="upper right", fontsize=7)
    axes[3].set_xlabel("time (ms)")
    n_spk = int(np.isfinite(ds["spike_times"].values).sum())
    fig.suptitle(title or f"{ds.attrs.get('cell', '')}: {n_spk} spikes in {ds.attrs.get('duration', t[-1]):.0f} ms")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


_util.make_module_callable(__name__, simulate)
