"""LFP: line- and point-source potentials of placed cells (LFPykit), probes and grids."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..geometry import Placement, Population, as_placements, as_points, as_vector
from .arrays import channel_coords, per_cell
from .checks import as_float, as_sigma, check_choice, positive_int
from .currents import membrane_currents

__all__ = ["LFP_METHODS", "LFPModel", "laminar_probe", "grid", "lfp"]

LFP_METHODS = ("linesource", "pointsource")


class LFPModel:
    """Extracellular potential at electrodes of one placed cell: ``lfp (mV) = M @ imem (nA)``.

    ``lfpykit.LineSourcePotential`` (``method="linesource"``) or
    ``PointSourcePotential`` in an infinite homogeneous medium.

    Parameters
    ----------
    placement : Placement
    electrodes : (n, 3) array
        Electrode positions (um).
    method : {"linesource", "pointsource"}
    sigma : float
        Extracellular conductivity (S/m).
    """

    def __init__(self, placement: Placement, electrodes: Any, method: str = "linesource", sigma: float = 0.3):
        if not isinstance(placement, Placement):
            raise TypeError(f"placement must be a fields.Placement, got {type(placement).__name__}")
        self.placement = placement
        self.sigma = as_sigma(sigma)
        self.method = check_choice(method, "method", LFP_METHODS)
        self.electrodes = as_points(electrodes, "electrodes")

    def get_transformation_matrix(self) -> np.ndarray:
        """(n_electrode, n_segment) in mV per nA."""
        import lfpykit

        cls = lfpykit.LineSourcePotential if self.method == "linesource" else lfpykit.PointSourcePotential
        xyz = self.electrodes
        return cls(self.placement.cell_geometry(), x=xyz[:, 0].copy(), y=xyz[:, 1].copy(), z=xyz[:, 2].copy(),
                   sigma=self.sigma).get_transformation_matrix()


def laminar_probe(n: int = 16, spacing: float = 100.0, origin: Any = (0.0, 0.0, 0.0),
                  direction: Any = (0.0, 0.0, -1.0)) -> np.ndarray:
    """Contacts of a linear (laminar) probe.

    Parameters
    ----------
    n : int
        Number of contacts.
    spacing : float
        Inter-contact distance (um).
    origin : (3,) float
        Position of contact 0 (um).
    direction : (3,) float
        Direction from contact 0 to the next (normalized); default downward.

    Returns
    -------
    numpy.ndarray
        (n, 3) contact positions (um).

    Examples
    --------
    >>> fields.laminar_probe(3, 100.0, origin=(50, 0, 200)).tolist()
    [[50.0, 0.0, 200.0], [50.0, 0.0, 100.0], [50.0, 0.0, 0.0]]
    """
    n = positive_int(n, "n", "number of contacts")
    spacing = as_float(spacing, "spacing", "um")
    if spacing <= 0:
        raise ValueError(f"spacing must be > 0 um, got {spacing!r}")
    d = as_vector(direction, "direction", "1")
    if not np.linalg.norm(d) > 0:
        raise ValueError(f"direction must be non-zero, got {direction!r}")
    d = d / np.linalg.norm(d)
    return as_vector(origin, "origin", "um") + spacing * np.arange(n)[:, None] * d


def grid(x: Any = 0.0, y: Any = 0.0, z: Any = 0.0) -> np.ndarray:
    """All combinations of the given x, y, z coordinates (um) as an (n, 3) array.

    Examples
    --------
    >>> fields.grid(x=[-100, 100], y=0, z=[0, 500, 1000]).shape
    (6, 3)
    """
    axes = []
    for name, v in (("x", x), ("y", y), ("z", z)):
        arr = np.atleast_1d(np.asarray(v, dtype=float))
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"grid {name} must be a number or a 1-D array of finite um values, got {v!r}")
        axes.append(arr)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def lfp(ds: Any, cell: Any, electrodes: Any, method: str = "linesource", sigma: float = 0.3,
        placement: Placement | Population | None = None, source: str = "auto") -> xr.DataArray:
    """Extracellular potential (LFP) at electrodes, with LFPykit.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Trial(s) with ``imem`` (nA) or ``v`` (mV) over ``segment``; leading
        dims (``trial``, ``time``) are kept. With a :class:`Population`, an
        optional ``cell`` dim holds one row per placed cell.
    cell : Cell
        The simulated cell (geometry from ``cell.segments``).
    electrodes : (n, 3) array
        Electrode positions (um), e.g. :func:`laminar_probe` or :func:`grid`.
    method : {"linesource", "pointsource"}
        ``lfpykit.LineSourcePotential`` or ``PointSourcePotential``.
    sigma : float
        Extracellular conductivity (S/m).
    placement : Placement or Population, optional
        Where the cell(s) are; default: the cell's own frame.
    source : {"auto", "imem", "v"}
        ``"auto"`` uses ``imem`` when present, else ``v`` through
        :func:`vmem_to_imem_matrix`.

    Returns
    -------
    xarray.DataArray
        ``lfp`` (..., time, electrode) in mV with electrode x/y/z coords (um).

    Raises
    ------
    TypeError
        ``sigma`` is not a real number.
    ValueError
        Bad ``method``/``source``, electrodes not (n, 3), no ``v``/``imem``,
        or a segment count that does not match ``cell``.

    Examples
    --------
    >>> out = fields.lfp(ds, cell, fields.laminar_probe(20, 100.0, origin=(50, 0, 1900)))
    >>> out.attrs["units"]
    'mV'
    """
    sigma = as_sigma(sigma)
    check_choice(method, "method", LFP_METHODS)
    xyz = as_points(electrodes, "electrodes")
    items = as_placements(cell, placement)
    imem = membrane_currents(ds, items[0].cell if cell is None else cell, source)
    mats = np.stack([LFPModel(p, xyz, method, sigma).get_transformation_matrix() for p in items])
    out = per_cell(imem, mats, "segment", "electrode")
    out = out.assign_coords(channel_coords(np.arange(len(xyz)), xyz))
    out.name = "lfp"
    out.attrs = {"units": "mV", "long_name": "extracellular potential", "method": method, "sigma": sigma,
                 "sigma_units": "S/m", "current_source": imem.attrs["source"], "n_cells": len(items)}
    return out
