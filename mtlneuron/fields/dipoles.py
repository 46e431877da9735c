"""Current dipole moments: of one cell, of placed cells, and synthetic ones."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import Placement, Population, as_placements
from .arrays import apply_matrix
from .currents import dipole_matrix, membrane_currents, pick_variable

__all__ = ["DIPOLE_UNITS", "dipole_dataset", "cell_dipole", "rotated_dipoles", "dipole_attrs", "dipole",
           "population_dipole", "dipole_sources"]

# factor to nA um
DIPOLE_UNITS = {"nA um": 1.0, "nA*um": 1.0, "fA m": 1.0, "nA m": 1e6, "uA mm": 1e6, "pA m": 1e3}


def dipole_dataset(moment: Any, time: Any = None, units: str = "nA um") -> xr.Dataset:
    """Wrap a dipole time course as a Dataset the EEG/MEG functions accept.

    Parameters
    ----------
    moment : (n_time, 3) or (3,) array
        Dipole moment (x, y, z) in ``units``.
    time : (n_time,) array, optional
        Times (ms); default 0, 1, 2, ...
    units : {"nA um", "nA m", "fA m", "pA m", "uA mm"}

    Returns
    -------
    xarray.Dataset
        ``dipole`` (time, axis) in nA um.

    Examples
    --------
    >>> ds = fields.dipole_dataset([0, 0, 10], units="nA m")   # 10 nA m along z
    >>> float(ds["dipole"].sel(axis="z")[0])
    10000000.0
    """
    if units not in DIPOLE_UNITS:
        raise ValueError(f"units must be one of {list(DIPOLE_UNITS)}, got {units!r}")
    p = np.asarray(moment, dtype=float)
    p = p[None, :] if p.ndim == 1 else p
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"moment must have shape (n_time, 3), got {np.shape(moment)}")
    t = np.arange(p.shape[0], dtype=float) if time is None else np.asarray(time, dtype=float)
    if t.shape != (p.shape[0],):
        raise ValueError(f"time has shape {t.shape} but moment has {p.shape[0]} time points")
    return xr.Dataset(
        {"dipole": (("time", "axis"), p * DIPOLE_UNITS[units],
                    {"units": "nA um", "long_name": "current dipole moment (1 nA um = 1e-6 nA m)"})},
        coords={"time": ("time", t, {"units": "ms"}), "axis": list(AXES)})


def cell_dipole(ds: Any, cell: Any, source: str) -> tuple[xr.DataArray, str]:
    """Dipole (..., axis) in the cell's own frame, nA um, from dipole, imem or v."""
    da, kind = pick_variable(ds, source, ("dipole", "imem", "v"))
    if kind == "dipole":
        if "axis" not in da.dims or da.sizes["axis"] != 3:
            raise ValueError(f"dipole must have an 'axis' dim of size 3, got dims {dict(da.sizes)}")
        if "axis" in da.coords:
            da = da.sel(axis=list(AXES))
        return da.astype(float).transpose(..., "axis").drop_vars("axis", errors="ignore"), kind
    if cell is None:
        raise ValueError(f"computing the dipole from {kind!r} needs cell=")
    imem = membrane_currents(da, cell, kind)
    return apply_matrix(imem, dipole_matrix(cell), "segment", "axis"), kind


def rotated_dipoles(ds: Any, cell: Any, items: list[Placement], source: str) -> tuple[xr.DataArray, str]:
    """Per-cell dipoles rotated into space: (..., cell, axis) nA um."""
    p, kind = cell_dipole(ds, cell if cell is not None else items[0].cell, source)
    rots = np.stack([pl.rotation_matrix for pl in items])
    if "cell" in p.dims:
        if p.sizes["cell"] != len(items):
            raise ValueError(f"data has {p.sizes['cell']} cells but the placement has {len(items)}: mismatched shapes")
        p = p.transpose(..., "cell", "axis")
        vals = np.einsum("...ca,cba->...cb", p.values, rots)
        dims = p.dims
    else:
        vals = np.einsum("...a,cba->...cb", p.values, rots)
        dims = p.dims[:-1] + ("cell", "axis")
    coords = {k: v for k, v in p.coords.items() if "axis" not in v.dims and "cell" not in v.dims}
    return xr.DataArray(vals, dims=dims, coords=coords).assign_coords(axis=list(AXES)), kind


def dipole_attrs(kind: str) -> dict:
    """attrs of a dipole DataArray computed from ``kind`` ("dipole", "imem" or "v")."""
    return {"units": "nA um", "long_name": "current dipole moment (1 nA um = 1e-6 nA m)", "source": kind}


def dipole(ds: Any, cell: Any = None, placement: Placement | Population | None = None,
           source: str = "auto") -> xr.DataArray:
    """Current dipole moment, rotated by ``placement`` and summed over placed cells.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        With ``dipole`` (nA um), ``imem`` (nA) or ``v`` (mV).
    cell : Cell, optional
        Needed when the dipole comes from ``imem`` or ``v``.
    placement : Placement or Population, optional
    source : {"auto", "dipole", "imem", "v"}
        ``"auto"``: ``dipole`` if present, else ``imem``, else ``v``.

    Returns
    -------
    xarray.DataArray
        ``dipole`` (..., time, axis) in nA um.

    Examples
    --------
    >>> p_v = fields.dipole(ds, cell, source="v")   # from voltages alone
    """
    if placement is None:
        p, kind = cell_dipole(ds, cell, source)
        p = p.assign_coords(axis=list(AXES))
    else:
        p, kind = rotated_dipoles(ds, cell, as_placements(cell, placement), source)
        p = p.sum("cell")
    p.name = "dipole"
    p.attrs = dipole_attrs(kind)
    return p


def population_dipole(ds: Any, placement: Placement | Population, cell: Any = None,
                      source: str = "auto") -> xr.Dataset:
    """Per-cell rotated dipoles with their locations, and their sum.

    Parameters
    ----------
    ds : xarray.Dataset
        ``dipole``/``imem``/``v``; a ``cell`` dim gives one row per placed cell.
    placement : Placement or Population
    cell : Cell, optional
    source : {"auto", "dipole", "imem", "v"}

    Returns
    -------
    xarray.Dataset
        ``dipole`` (..., time, cell, axis) nA um, ``location`` (cell, axis) um,
        ``total`` (..., time, axis) nA um.

    Examples
    --------
    >>> pop = fields.place(cell, [[0, 0, 77000], [0, 3000, 76900]], rotations="radial")
    >>> fields.population_dipole(ds, pop)["total"].dims
    ('time', 'axis')
    """
    items = as_placements(cell, placement)
    p, kind = rotated_dipoles(ds, cell, items, source)
    loc = np.stack([pl.dipole_location for pl in items])
    return xr.Dataset(
        {"dipole": p.assign_attrs(dipole_attrs(kind)),
         "location": (("cell", "axis"), loc, {"units": "um", "long_name": "dipole (soma) location"}),
         "total": p.sum("cell").assign_attrs(dipole_attrs(kind))},
        coords={"axis": list(AXES), "cell": np.arange(len(items))})


def dipole_sources(ds: Any, cell: Any, placement: Any, dipole_location: Any, head: Any,
                   source: str) -> tuple[xr.DataArray, np.ndarray, str]:
    """Dipoles (..., cell, axis) in nA um and their locations (cell, 3) um, checked inside ``head``'s brain."""
    if placement is not None:
        if dipole_location is not None:
            raise ValueError("give either dipole_location= or placement= (placements carry their locations)")
        items = as_placements(cell, placement)
        p, kind = rotated_dipoles(ds, cell, items, source)
        locs = np.stack([pl.dipole_location for pl in items])
    else:
        p, kind = cell_dipole(ds, cell, source)
        p = p.expand_dims(cell=1, axis=-2).assign_coords(axis=list(AXES))
        locs = [head.default_location if dipole_location is None else dipole_location]
    locs = np.stack([head.check_location(loc, "dipole_location") for loc in locs])
    return p, locs, kind
