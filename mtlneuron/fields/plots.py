"""Plots: scalp topographies (EEG/MEG) and laminar LFP images (matplotlib, imported on use)."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .checks import as_float
from .head import DEFAULT_RADII
from .montages import channels

__all__ = ["plot_topography", "plot_laminar"]


def _plane(xyz: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection from the vertex; the equator maps to radius 1."""
    unit = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    theta = np.arccos(np.clip(unit[:, 2], -1, 1)) / (np.pi / 2)
    az = np.arctan2(unit[:, 1], unit[:, 0])
    return np.stack([theta * np.cos(az), theta * np.sin(az)], axis=1)


def _figure(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        return fig, ax
    return ax.figure, ax


def plot_topography(eeg_at_time: Any, montage: Any = None, ax: Any = None, cmap: str = "RdBu_r",
                    vmax: float | None = None, names: bool = False, title: str | None = None):
    """Scalp topography of EEG (or MEG) values at one time.

    Parameters
    ----------
    eeg_at_time : xarray.DataArray or array
        One value per electrode, e.g. ``fields.eeg(...).sel(time=10.0)``.
    montage : montage name, Dataset or (n, 3) array, optional
        Electrode positions; default the DataArray's x/y/z coords.
    ax : matplotlib Axes, optional
    cmap : str
    vmax : float, optional
        Symmetric color limit; default max |value|.
    names : bool
        Label the electrodes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fields.plot_topography(out.isel(time=100), "biosemi64")
    """
    from scipy.interpolate import RBFInterpolator

    vals, labels, xyz, units = _topo_inputs(eeg_at_time, montage)
    fig, ax = _figure(ax)
    pts = _plane(xyz)
    lim = max(1.0, float(np.abs(pts).max()) * 1.05)
    gx, gy = np.meshgrid(np.linspace(-lim, lim, 101), np.linspace(-lim, lim, 101))
    inside = np.hypot(gx, gy) <= lim
    z = np.full(gx.shape, np.nan)
    z[inside] = RBFInterpolator(pts, vals, kernel="thin_plate_spline", smoothing=1e-9)(
        np.c_[gx[inside], gy[inside]])
    vmax = float(np.abs(vals).max()) if vmax is None else as_float(vmax, "vmax", units)
    im = ax.contourf(gx, gy, z, levels=np.linspace(-vmax, vmax, 21) if vmax > 0 else 21, cmap=cmap, extend="both")
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), "k", lw=1.5)
    ax.plot([-0.1, 0, 0.1], [0.99, 1.12, 0.99], "k", lw=1.5)  # nose
    ax.plot(pts[:, 0], pts[:, 1], "k.", ms=3)
    if names:
        for (px, py), label in zip(pts, labels):
            ax.annotate(str(label), (px, py), fontsize=6, ha="center", va="bottom")
    ax.set_aspect("equal")
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.8, label=units)
    ax.set_title(title or "")
    return fig


def _topo_inputs(values: Any, montage_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    if isinstance(values, xr.DataArray):
        extra = [d for d in values.dims if values.sizes[d] > 1 and d not in ("electrode", "sensor")]
        if extra:
            raise ValueError(f"plot_topography needs one value per electrode; select one time first "
                             f"(e.g. eeg.sel(time=...)), got dims {values.dims}")
        source = values if montage_ is None else montage_
        units = str(values.attrs.get("units", ""))
        vals = np.asarray(values.squeeze().values, dtype=float).ravel()
    else:
        if montage_ is None:
            raise ValueError("plot_topography needs montage= when values are a plain array")
        source, units, vals = montage_, "", np.asarray(values, dtype=float).ravel()
    labels, xyz = channels(source, DEFAULT_RADII[3])
    if len(xyz) != vals.size:
        raise ValueError(f"{vals.size} values but {len(xyz)} electrode positions: mismatched shapes")
    return vals, labels, xyz, units


def plot_laminar(data: xr.DataArray, ax: Any = None, cmap: str = "RdBu_r", vmax: float | None = None,
                 title: str | None = None):
    """Laminar LFP image: time on x, contact depth (z, um) on y.

    Parameters
    ----------
    data : xarray.DataArray
        ``lfp`` (time, electrode) from :func:`lfp` with a laminar probe.
    ax : matplotlib Axes, optional
    cmap : str
    vmax : float, optional
        Symmetric color limit (data units); default the 99th percentile of
        |value|, so that spikes near the soma do not wash out synaptic fields.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fields.plot_laminar(fields.lfp(ds, cell, fields.laminar_probe(20, 100.0, origin=(50, 0, 1900))))
    """
    if not isinstance(data, xr.DataArray) or set(data.dims) != {"time", "electrode"}:
        raise ValueError(f"plot_laminar needs an lfp DataArray with dims (time, electrode), got "
                         f"{getattr(data, 'dims', type(data).__name__)}; select one trial first")
    fig, ax = _figure(ax)
    da = data.transpose("electrode", "time")
    depth = np.asarray(da["z"].values if "z" in da.coords else np.arange(da.sizes["electrode"]), dtype=float)
    order = np.argsort(depth)
    vals = da.values[order]
    vmax = float(np.percentile(np.abs(vals), 99)) if vmax is None else as_float(vmax, "vmax", "mV")
    im = ax.pcolormesh(da["time"].values, depth[order], vals, cmap=cmap, vmin=-vmax, vmax=vmax, shading="nearest")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("z (um)")
    fig.colorbar(im, ax=ax, label=f"LFP ({data.attrs.get('units', 'mV')})", extend="both")
    ax.set_title(title or "")
    return fig
