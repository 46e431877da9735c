"""Network results as xarray: the same layout from every backend.

``spike_times`` (cell, spike) ms, NaN-padded; ``v_soma`` (time, cell) mV;
``dipole`` (time, axis) nA um, the sum over cells of each cell's current
dipole (cells are not rotated: every cell's apical axis is z); ``rate``
(rate_bin, population) Hz, the population firing rate in bins of
``rate_bin_ms``; and provenance attrs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from .. import _util
from .._util import spike_matrix
from ..conventions import AXES

__all__ = ["to_result", "population_rate", "RATE_BIN_MS", "plot"]

RATE_BIN_MS = 5.0  # ms: bins of the population rate (and of the rate comparison between backends)


def population_rate(spike_times: np.ndarray, cell_population: np.ndarray, n_populations: int,
                    duration: float, bin_ms: float = RATE_BIN_MS) -> tuple[np.ndarray, np.ndarray]:
    """Rates (bin, population) in Hz per cell and the bin starts (ms)."""
    edges = np.arange(0.0, duration + 1e-9, bin_ms)
    if edges[-1] < duration:
        edges = np.append(edges, duration)
    counts = np.zeros((edges.size - 1, n_populations))
    sizes = np.bincount(cell_population, minlength=n_populations).astype(float)
    for p in range(n_populations):
        st = spike_times[cell_population == p]
        st = st[np.isfinite(st)]
        counts[:, p] = np.histogram(st, edges)[0]
    width_s = np.diff(edges)[:, None] * 1e-3
    return counts / np.maximum(sizes, 1) / width_s, edges[:-1]


def to_result(net, duration: float, spikes: Sequence[np.ndarray], v_soma: np.ndarray | None,
              dipole: np.ndarray | None, backend: str, attrs: dict | None = None) -> xr.Dataset:
    """Label one network run: see the module docstring."""
    st = spike_matrix(spikes)
    n_pop = len(net.populations)
    rate, starts = population_rate(st, net.cell_population, n_pop, duration)
    pops = [p.name for p in net.populations]
    coords = {
        "cell": np.arange(net.n_cells),
        "population": ("cell", np.array(pops, dtype=object)[net.cell_population]),
        "rate_bin": ("rate_bin", starts, {"units": "ms", "long_name": "rate bin start"}),
        "population_name": ("population_name", np.array(pops, dtype=object)),
    }
    data = {
        "spike_times": (("cell", "spike"), st, {"units": "ms", "long_name": "somatic spike times (NaN-padded)"}),
        "rate": (("rate_bin", "population_name"), rate,
                 {"units": "Hz", "long_name": f"population firing rate per cell, {RATE_BIN_MS:g}-ms bins"}),
    }
    n_bins = int(round(duration / net.dt))
    if v_soma is not None:
        coords["time"] = ("time", np.arange(n_bins) * net.dt, {"units": "ms", "long_name": "bin start"})
        data["v_soma"] = (("time", "cell"), np.asarray(v_soma, dtype=np.float32),
                          {"units": "mV", "long_name": "somatic membrane potential (bin mean)"})
    if dipole is not None:
        coords.setdefault("time", ("time", np.arange(n_bins) * net.dt, {"units": "ms", "long_name": "bin start"}))
        coords["axis"] = list(AXES)
        data["dipole"] = (("time", "axis"), np.asarray(dipole, dtype=np.float32),
                          {"units": "nA um", "long_name": "summed current dipole moment (1 nA um = 1e-6 nA m)"})
    base = {"backend": backend, "duration": float(duration), "dt": net.dt, "n_cells": net.n_cells,
            "n_contacts": net.n_contacts, "command": _util.command_line(), **_util.versions()}
    base.update({f"network_{k}": (v if isinstance(v, (int, float, str)) else str(v)) for k, v in net.attrs.items()})
    base.update(attrs or {})
    return xr.Dataset(data, coords=coords, attrs=base)


def plot(result: xr.Dataset, path=None, *, title: str | None = None):
    """Spike raster and population rate of one network run (either backend); returns the figure.

    Parameters
    ----------
    result : xarray.Dataset
        From ``Network.run``.
    path : str or Path, optional
        Also save the figure there (PNG, PDF, ... by suffix).
    title : str, optional
        Default: backend, cells and duration.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not isinstance(result, xr.Dataset) or "rate" not in result or "spike_times" not in result:
        raise ValueError("plot needs a network result (Network.run): spike_times and rate")
    st = result["spike_times"].values
    fig, (ax_r, ax_p) = plt.subplots(2, 1, sharex=True, figsize=(8, 5), height_ratios=(3, 1))
    cell, k = np.nonzero(np.isfinite(st))
    ax_r.plot(st[cell, k], cell, "|", ms=3, color="k")
    ax_r.set_ylabel("cell")
    ax_r.set_title(title or f"{result.attrs.get('backend', '')}: {st.shape[0]} cells, "
                            f"{float(result.attrs.get('duration', np.nan)):g} ms")
    for name in result["population_name"].values:
        ax_p.step(result["rate_bin"].values, result["rate"].sel(population_name=name).values, where="post",
                  label=str(name))
    ax_p.set_xlabel("time (ms)")
    ax_p.set_ylabel("rate (Hz)")
    ax_p.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
