"""Membrane currents and the current dipole moment: V -> I_m and I_m -> p matrices.

``imem (nA) = M @ v (mV)`` with LFPy's V -> I_m matrix ``M`` (``cell.vmem_to_imem``),
``dipole (nA um) = D @ imem (nA)`` with LFPykit's ``CurrentDipoleMoment``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..geometry import Placement, cell_geometry, segments_of
from .arrays import apply_matrix
from .checks import check_choice

__all__ = ["SOURCES", "vmem_to_imem_matrix", "dipole_matrix", "current_or_voltage_input", "pick_variable",
           "check_segments", "membrane_currents"]

SOURCES = ("auto", "dipole", "imem", "v")


def vmem_to_imem_matrix(cell: Any) -> np.ndarray:
    """LFPy's V -> I_m matrix of ``cell``: ``imem (nA) = M @ v (mV)``.

    Parameters
    ----------
    cell : Cell

    Returns
    -------
    numpy.ndarray
        (n_segment, n_segment), nA per mV; rows sum to zero (charge conservation).

    Examples
    --------
    >>> M = fields.vmem_to_imem_matrix(cell)
    >>> M.shape
    (55, 55)
    """
    n = segments_of(cell).sizes["segment"]
    m = np.asarray(cell.vmem_to_imem(), dtype=float)
    if m.shape != (n, n):
        raise ValueError(f"vmem_to_imem matrix has shape {m.shape}, expected ({n}, {n})")
    return m


def dipole_matrix(cell: Any, placement: Placement | None = None) -> np.ndarray:
    """Current dipole moment matrix D (3, n_segment): ``dipole (nA um) = D @ imem (nA)``.

    LFPykit's ``CurrentDipoleMoment`` on the cell's own geometry, rotated by
    ``placement`` (translation does not change a dipole of conserved currents).
    """
    import lfpykit

    if placement is not None and not isinstance(placement, Placement):
        raise TypeError(f"placement must be a fields.Placement, got {type(placement).__name__}")
    d = lfpykit.CurrentDipoleMoment(cell_geometry(cell)).get_transformation_matrix()
    return d if placement is None else placement.rotation_matrix @ d


def current_or_voltage_input(matrix: np.ndarray, cell: Any, from_voltage: bool) -> tuple[np.ndarray, str]:
    """A linear map on membrane currents (nA), or on voltages (mV) through I_m = M @ V."""
    if from_voltage:
        return matrix @ vmem_to_imem_matrix(cell), "mV"
    return matrix, "nA"


def check_segments(da: xr.DataArray, cell: Any, name: str) -> None:
    """``da`` has a ``segment`` dim matching ``cell`` (size and names)."""
    seg = segments_of(cell)
    n = seg.sizes["segment"]
    if "segment" not in da.dims:
        raise ValueError(f"{name} has no 'segment' dimension (dims {da.dims})")
    if da.sizes["segment"] != n:
        raise ValueError(f"{name} has {da.sizes['segment']} segments but cell "
                         f"{getattr(cell, 'name', '?')!r} has {n}: mismatched shapes")
    if "segment" in da.coords and not np.array_equal(da["segment"].values.astype(str),
                                                     seg["segment"].values.astype(str)):
        raise ValueError(f"{name} segment names differ from those of cell {getattr(cell, 'name', '?')!r}")


def pick_variable(data: Any, source: str, wanted: tuple[str, ...]) -> tuple[xr.DataArray, str]:
    """Pick ``v``/``imem``/``dipole`` from a Dataset (or classify a DataArray by its units)."""
    check_choice(source, "source", SOURCES)
    if isinstance(data, xr.DataArray):
        units = str(data.attrs.get("units", ""))
        kind = {"mV": "v", "nA": "imem", "nA um": "dipole"}.get(units, str(data.name))
        if kind not in wanted or (source != "auto" and source != kind):
            raise ValueError(f"cannot use DataArray {data.name!r} (units {units!r}) as {source!r}; "
                             f"expected one of {list(wanted)} (units mV, nA, nA um)")
        return data, kind
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"expected an xarray Dataset with {list(wanted)}, got {type(data).__name__}")
    order = wanted if source == "auto" else (source,)
    for name in order:
        if name in data.data_vars and name in wanted:
            return data[name], name
    raise ValueError(f"dataset has none of {list(order)} (variables: {list(data.data_vars)}); "
                     f"fields need 'imem' (nA) or 'v' (mV){' or dipole (nA um)' if 'dipole' in wanted else ''}")


def membrane_currents(data: Any, cell: Any, source: str = "auto") -> xr.DataArray:
    """Membrane currents ``imem`` (nA): from ``imem`` when present, else ``M @ v``.

    Parameters
    ----------
    data : xarray.Dataset or DataArray
        With ``imem`` (nA) and/or ``v`` (mV) over ``segment`` (any leading dims).
    cell : Cell
        The cell the data belong to.
    source : {"auto", "imem", "v"}
        Force the voltage route with ``"v"``.

    Returns
    -------
    xarray.DataArray
        ``imem`` (..., segment) in nA.
    """
    da, kind = pick_variable(data, source, ("imem", "v"))
    check_segments(da, cell, kind)
    if kind == "imem":
        out = da.astype(float)
    else:
        out = apply_matrix(da, vmem_to_imem_matrix(cell), "segment", "segment")
        out = out.assign_coords(segment=da["segment"]) if "segment" in da.coords else out
    out.name = "imem"
    out.attrs = {"units": "nA", "long_name": "transmembrane current", "source": kind}
    return out
