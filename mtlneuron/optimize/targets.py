"""Targets for :func:`~mtlneuron.optimize.waveform` with the surrogate column's own error taken out.

A fit on the surrogate column is pulled toward the target by two things: what
the weights change, and what the surrogate gets wrong at any weights (a
difference from hnn-core that does not depend much on the weights). When the
target is near the starting dipole, the second dominates and the fit chases it
(docs/hnn.md: ERP fit). :func:`corrected_target` adds the surrogate's error at
the starting weights (surrogate minus hnn-core, one hnn-core run) to the
target, so that the fit moves the dipole by what hnn-core says separates the
start from the target.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import n_bins as bins_in
from ..network.hnn_model import HNNColumn, from_hnn, smooth
from .losses import layer_index, target_array, on_model_grid

__all__ = ["corrected_target"]


def corrected_target(col: HNNColumn, target: Any, *, gains: Any = None, layer: str = "agg",
                     smooth_ms: float | None = None, surrogates=None) -> xr.DataArray:
    """``target`` plus the surrogate column's error (surrogate minus hnn-core) at the starting gains.

    Parameters
    ----------
    col : HNNColumn
        The column to fit (its ``tstop`` is the run's).
    target : hnn_core.Dipole or xarray.DataArray / Dataset
        nA m, as for :func:`~mtlneuron.optimize.waveform`.
    gains : sequence or dict entry -> gain, optional
        The gains the fit starts from (``connectivity(init=...)``; default all 1).
    layer : {"agg", "L2", "L5"}
    smooth_ms : float, optional
        Smoothing applied to both runs before their difference is taken: the
        ``smooth_ms`` the loss will use. The target is used as given (as by
        :func:`~mtlneuron.optimize.waveform`): pass it smoothed the same way.
    surrogates : dict, optional
        As for :meth:`HNNColumn.run`.

    Returns
    -------
    xarray.DataArray
        (time,) nA m on the column's grid: bin means of the target plus the
        correction. Costs one hnn-core run and one surrogate run.
    """
    k = layer_index(layer)
    values, step, t0 = target_array(target, layer)
    n_bins = bins_in(col.tstop, col.dt)
    goal = on_model_grid(values, step, t0, col.dt, n_bins)
    start = from_hnn(col.to_hnn(gains), tstop=col.tstop, dt=col.dt)
    runs = {"surrogate": start.run(col.tstop, surrogates=surrogates), "hnn": start.run(col.tstop, backend="hnn")}
    runs = {b: r["dipole"].values[:n_bins, k] for b, r in runs.items()}
    if smooth_ms:
        runs = {b: smooth(v[:, None], smooth_ms, col.dt)[:, 0] for b, v in runs.items()}
    time = np.arange(n_bins) * col.dt
    return xr.DataArray(goal + runs["surrogate"] - runs["hnn"], dims=("time",),
                        coords={"time": ("time", time, {"units": "ms"})}, name="dipole",
                        attrs={"units": "nA m", "layer": layer,
                               "long_name": f"{layer} target dipole + surrogate error at the starting gains"})
