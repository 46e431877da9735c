"""EEG in the four-sphere head: the lead field of dipoles and scalp potentials as xarray."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import Placement, Population
from .arrays import channel_coords, per_cell
from .checks import check_choice
from .dipoles import dipole_sources
from .head import FourSphere, as_head
from .montages import eeg_channels

__all__ = ["EEGModel", "apply_reference", "lead_field", "eeg"]


def apply_reference(gain: np.ndarray, reference: str | None) -> np.ndarray:
    """Re-reference a lead field (..., electrode, axis): None (infinity) or "average"."""
    if reference is None:
        return gain
    check_choice(reference, "reference", ["average"])
    return gain - gain.mean(axis=-2, keepdims=True)


class EEGModel:
    """Four-sphere EEG at electrodes: ``eeg (uV) = G(location) @ p (nA um)``.

    LFPykit's ``FourSphereVolumeConductor`` (corrected four-sphere model).

    Parameters
    ----------
    head : FourSphere, optional
    electrodes : montage name, names, xarray or (n, 3) array (um)
        Between the brain surface and the scalp (snapped onto the scalp).
    reference : {None, "average"}
    """

    def __init__(self, head: FourSphere | None = None, electrodes: Any = "10-20", reference: str | None = None):
        self.head = as_head(head)
        self.names, self.electrodes = eeg_channels(electrodes, self.head)
        if reference is not None:
            check_choice(reference, "reference", ["average"])
        self.reference = reference

    def get_transformation_matrix(self, location: Any) -> np.ndarray:
        """(n_electrode, 3) in uV per nA um for a dipole at ``location`` (um, inside the brain)."""
        loc = self.head.check_location(location)
        g = self.head.model(self.electrodes).get_transformation_matrix(loc) * 1e3
        return apply_reference(g, self.reference)


def lead_field(electrodes: Any = "10-20", dipole_location: Any = None, head: FourSphere | None = None,
               reference: str | None = None) -> xr.DataArray:
    """EEG lead field of one dipole location: ``eeg (uV) = G @ p (nA um)``.

    Parameters
    ----------
    electrodes : montage name, names, xarray or (n, 3) array (um)
    dipole_location : (3,) float, optional
        Inside the brain sphere (um); default 1 mm below the brain surface at the vertex.
    head : FourSphere, optional
    reference : {None, "average"}

    Returns
    -------
    xarray.DataArray
        (electrode, axis) in uV per nA um.
    """
    model = EEGModel(head, electrodes, reference)
    loc = model.head.check_location(model.head.default_location if dipole_location is None else dipole_location)
    return xr.DataArray(model.get_transformation_matrix(loc), dims=("electrode", "axis"),
                        coords={**channel_coords(model.names, model.electrodes), "axis": list(AXES)},
                        name="lead_field", attrs={"units": "uV / (nA um)", "dipole_location_um": loc.tolist()})


def eeg(ds: Any, head: FourSphere | None = None, electrodes: Any = "10-20", dipole_location: Any = None,
        placement: Placement | Population | None = None, cell: Any = None, source: str = "auto",
        reference: str | None = None) -> xr.DataArray:
    """EEG in the four-sphere head model (LFPykit ``FourSphereVolumeConductor``).

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        ``dipole`` (nA um) or ``imem``/``v`` (with ``cell``); leading dims kept.
    head : FourSphere, optional
        Default radii (79, 80, 85, 90) mm, sigmas (0.47, 1.71, 0.02, 0.41) S/m.
    electrodes : str, list of str, xarray or (n, 3) array
        A montage name (``"10-20"``, ``"biosemi64"``, ``"10-10"``), electrode
        names, or positions (um) between the brain surface and the scalp.
    dipole_location : (3,) float, optional
        Dipole position (um) inside the brain sphere; the dipole is taken as
        given (cell frame = head frame). Default: 1 mm below the brain surface
        at the vertex, where the cell's +z axis is radial.
    placement : Placement or Population, optional
        Instead of ``dipole_location``: per-cell rotation and soma location.
    cell : Cell, optional
        Needed when the dipole comes from ``imem`` or ``v``.
    source : {"auto", "dipole", "imem", "v"}
    reference : {None, "average"}
        None: potential against infinity (LFPykit); "average": average reference.

    Returns
    -------
    xarray.DataArray
        ``eeg`` (..., time, electrode) in uV, with electrode x/y/z coords (um).

    Raises
    ------
    ValueError
        Electrodes inside the brain sphere or outside the scalp, a dipole
        outside the brain sphere, both ``dipole_location`` and ``placement``.

    Examples
    --------
    >>> p = fields.dipole_dataset([0, 0, 10], units="nA m")
    >>> float(fields.eeg(p, electrodes=[[0, 0, 90000]], dipole_location=(0, 0, 78000))[0, 0])  # uV
    7.37...
    """
    model = EEGModel(head, electrodes, reference)
    p, locs, kind = dipole_sources(ds, cell, placement, dipole_location, model.head, source)
    gains = np.stack([model.get_transformation_matrix(loc) for loc in locs])
    out = per_cell(p, gains, "axis", "electrode")
    out = out.assign_coords(channel_coords(model.names, model.electrodes))
    out.name = "eeg"
    out.attrs = {"units": "uV", "long_name": "scalp potential (four-sphere head)",
                 "reference": reference or "infinity", "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 **model.head.attrs()}
    return out
