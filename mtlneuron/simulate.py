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

import numpy as np
import xarray as xr

from . import _util
from . import inputs as _inputs
from .cells import Cell
from .conventions import AXES, NEURON_DT, check_dt, threshold_crossings as spike_times
from .nrn import worker as _worker
from .nrn.trial import IONS, run_trial

__all__ = ["simulate", "run_trial", "to_dataset", "spike_times", "plot"]


def _attrs(cell: Cell, drive: xr.Dataset, dt: float) -> dict:
    return {
        "cell": cell.name,
        "cell_key": cell.key,
        "dt": float(dt),
        "neuron_dt": NEURON_DT,
        "celsius": cell.celsius,
        "v_init": cell.v_init,
        "spike_threshold": cell.spike_threshold,
        "soma_index": cell.soma_index,
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
    check_dt(dt, duration)
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
    soma = int(ds.attrs["soma_index"]) if "soma_index" in ds.attrs else int(np.flatnonzero(region == "soma")[0])
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
