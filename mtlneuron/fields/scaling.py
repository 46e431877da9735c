"""Scaling a simulated dipole to a measured one (HNN-style dipole scaling)."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .dipoles import DIPOLE_UNITS

__all__ = ["fit_scale"]


def _dipole_values(x: Any, name: str) -> tuple[np.ndarray, str | None, Any]:
    if isinstance(x, xr.Dataset):
        if "dipole" not in x:
            raise ValueError(f"{name} Dataset has no 'dipole' variable (variables: {list(x.data_vars)})")
        x = x["dipole"]
    if isinstance(x, xr.DataArray):
        return np.asarray(x.transpose("time", ...).values if "time" in x.dims else x.values, dtype=float), \
            x.attrs.get("units"), x
    try:
        return np.asarray(x, dtype=float), None, None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array or xarray of dipole values, got {type(x).__name__}") from None


def fit_scale(simulated: Any, measured: Any, offset: bool = False) -> xr.Dataset:
    """Fit ``measured ~ scale * simulated (+ offset)`` by linear least squares.

    The inverse use of a simulated dipole: how many such cells (or which gain)
    explain a measured dipole time course, as in HNN's dipole scaling.

    Parameters
    ----------
    simulated, measured : array, xarray.DataArray or Dataset with ``dipole``
        Same shape (time first, e.g. (time,) or (time, axis)). With ``units``
        attrs (nA um, nA m, fA m, ...) the simulated values are converted to
        the measured units first; otherwise they are used as they are.
    offset : bool
        Also fit a constant offset (one per non-time column).

    Returns
    -------
    xarray.Dataset
        ``scale`` (1), ``offset`` (measured units), ``fitted``, ``residual``,
        ``rmse``, ``r`` (Pearson) and ``explained`` (% variance).

    Examples
    --------
    >>> round(fields.fit_scale(np.sin(np.arange(50.)), 3 * np.sin(np.arange(50.)))["scale"].item(), 6)
    3.0
    """
    s, s_units, s_da = _dipole_values(simulated, "simulated")
    m, m_units, m_da = _dipole_values(measured, "measured")
    if (s_da is not None and m_da is not None and "time" in s_da.coords and "time" in m_da.coords
            and s_da.sizes["time"] == m_da.sizes["time"]
            and not np.allclose(s_da["time"].values, m_da["time"].values)):
        raise ValueError("simulated and measured have different time coordinates; resample one onto the other "
                         "first (e.g. simulated.interp(time=measured.time))")
    if s_units in DIPOLE_UNITS and m_units in DIPOLE_UNITS:
        s = s * DIPOLE_UNITS[s_units] / DIPOLE_UNITS[m_units]
    if s.shape != m.shape or s.size == 0:
        raise ValueError(f"simulated has shape {s.shape} but measured has shape {m.shape}: mismatched shapes "
                         f"(resample one onto the other's time grid first)")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(m))):
        raise ValueError("simulated and measured must be finite")
    s2, m2 = s.reshape(len(s), -1), m.reshape(len(m), -1)
    sc, mc = (s2 - s2.mean(0), m2 - m2.mean(0)) if offset else (s2, m2)
    denom = np.sum(sc ** 2)
    if denom == 0:
        raise ValueError("simulated dipole is constant (zero after removing the offset): no scale can be fitted")
    scale = float(np.sum(sc * mc) / denom)
    off = (m2.mean(0) - scale * s2.mean(0)) if offset else np.zeros(s2.shape[1])
    fitted = (scale * s2 + off).reshape(m.shape)
    resid = m - fitted
    r = float(np.corrcoef(s.ravel(), m.ravel())[0, 1]) if s.size > 1 else np.nan
    explained = 100 * (1 - np.sum(resid ** 2) / np.sum((m2 - m2.mean(0)) ** 2))
    units = m_units or "same as measured"
    template = m_da.transpose("time", ...) if m_da is not None and "time" in m_da.dims else m_da
    like = (lambda v, long: template.copy(data=v).assign_attrs(units=units, long_name=long)) if template is not None \
        else (lambda v, long: xr.DataArray(v, dims=[f"dim_{i}" for i in range(v.ndim)], attrs={"units": units, "long_name": long}))
    return xr.Dataset(
        {"scale": ((), scale, {"units": "1", "long_name": "measured / simulated scale factor"}),
         "offset": ("column", off, {"units": units}),
         "fitted": like(fitted, "scale * simulated + offset"),
         "residual": like(resid, "measured - fitted"),
         "rmse": ((), float(np.sqrt(np.mean(resid ** 2))), {"units": units}),
         "r": ((), r, {"units": "1", "long_name": "Pearson correlation"}),
         "explained": ((), explained, {"units": "%", "long_name": "variance explained"})},
        attrs={"offset_fitted": int(offset)})


