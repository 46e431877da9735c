"""EEG in the four-sphere head: lead fields of many dipoles at once and scalp potentials as xarray."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import Placement, Population
from .arrays import channel_coords, per_cell
from .dipoles import dipole_sources
from .head import FourSphere, as_head
from .kernels import four_sphere_gain
from .montages import eeg_channels

__all__ = ["EEGModel", "check_reference", "reference_matrix", "lead_field", "eeg"]


def check_reference(reference: Any, names: Any = None) -> str | None:
    """None (reference-free: against infinity), "average", or the name of one of ``names``."""
    if reference is None or reference == "average":
        return reference
    if isinstance(reference, str):
        if names is None or reference in [str(n) for n in names]:
            return reference
        raise ValueError(f"reference {reference!r} is not one of the electrodes {[str(n) for n in names][:10]}...; "
                         f"use None (reference-free), 'average' or an electrode name")
    raise ValueError(f"reference must be None (reference-free), 'average' or an electrode name, got {reference!r}")


def reference_matrix(reference: str | None, names: Any) -> np.ndarray:
    """(E, E) matrix R that re-references potentials against infinity: ``v_ref = R @ v``."""
    names = [str(n) for n in names]
    eye = np.eye(len(names))
    if reference is None:
        return eye
    if reference == "average":
        return eye - 1.0 / len(names)
    out = eye.copy()
    out[:, names.index(check_reference(reference, names))] -= 1.0
    return out


class EEGModel:
    """Four-sphere EEG at electrodes: ``eeg (uV) = G(location) @ p (nA um)``.

    The corrected four-sphere series of LFPykit's ``FourSphereVolumeConductor``
    (Naess et al. 2017), evaluated for many locations in one call by
    :func:`mtlneuron.fields.kernels.four_sphere_gain` (tested equal to LFPykit).

    Parameters
    ----------
    head : FourSphere, optional
    electrodes : montage name, names, xarray, (n, 3) array (um), mne.Info or DigMontage
        Between the brain surface and the scalp (snapped onto the scalp).
    reference : None, "average" or an electrode name
        None: potentials against infinity.

    Examples
    --------
    >>> g = fields.EEGModel(electrodes="biosemi64").get_transformation_matrix(locations)   # (L, 64, 3)
    """

    def __init__(self, head: FourSphere | None = None, electrodes: Any = "10-20", reference: str | None = None):
        self.head = as_head(head)
        self.names, self.electrodes = eeg_channels(electrodes, self.head)
        self.reference = check_reference(reference, self.names)
        self._ref = reference_matrix(self.reference, self.names)

    def get_transformation_matrix(self, locations: Any) -> np.ndarray:
        """uV per nA um: (n_electrode, 3) for one (3,) location (um), (L, n_electrode, 3) for (L, 3)."""
        locs = np.asarray(locations, dtype=float)
        checked = self.head.check_location(locs) if locs.ndim == 1 else self.head.check_locations(locs)
        g = four_sphere_gain(self.head.radii, self.head.sigmas, self.electrodes, checked)
        return g if self.reference is None else np.einsum("fe,...ea->...fa", self._ref, g)


def lead_field(electrodes: Any = "10-20", dipole_location: Any = None, head: FourSphere | None = None,
               reference: str | None = None) -> xr.DataArray:
    """EEG lead field: ``eeg (uV) = G @ p (nA um)``, for one or many dipole locations.

    Parameters
    ----------
    electrodes : montage name, names, xarray, (n, 3) array (um), mne.Info or DigMontage
    dipole_location : (3,) or (L, 3) float, optional
        Inside the brain sphere (um); default 1 mm below the brain surface at the vertex.
    head : FourSphere, optional
    reference : None, "average" or an electrode name

    Returns
    -------
    xarray.DataArray
        (electrode, axis), or (location, electrode, axis) for (L, 3) locations, in uV per nA um.

    Examples
    --------
    >>> locs = np.random.default_rng(0).uniform(-40000, 40000, (1000, 3))
    >>> fields.lead_field("biosemi64", locs).shape
    (1000, 64, 3)
    """
    model = EEGModel(head, electrodes, reference)
    locs = model.head.default_location if dipole_location is None else np.asarray(dipole_location, dtype=float)
    g = model.get_transformation_matrix(locs)
    coords = {**channel_coords(model.names, model.electrodes), "axis": list(AXES)}
    attrs = {"units": "uV / (nA um)", "reference": model.reference or "infinity", **model.head.attrs()}
    if g.ndim == 2:
        return xr.DataArray(g, dims=("electrode", "axis"), coords=coords, name="lead_field",
                            attrs={**attrs, "dipole_location_um": locs.tolist()})
    coords["location_x"] = ("location", locs[:, 0], {"units": "um"})
    coords["location_y"] = ("location", locs[:, 1], {"units": "um"})
    coords["location_z"] = ("location", locs[:, 2], {"units": "um"})
    return xr.DataArray(g, dims=("location", "electrode", "axis"), coords=coords, name="lead_field", attrs=attrs)


def eeg(ds: Any, head: FourSphere | None = None, electrodes: Any = "10-20", dipole_location: Any = None,
        placement: Placement | Population | None = None, cell: Any = None, source: str = "auto",
        reference: str | None = None) -> xr.DataArray:
    """EEG in the four-sphere head model (LFPykit's corrected four-sphere series).

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        ``dipole`` (nA um) or ``imem``/``v`` (with ``cell``); leading dims kept.
    head : FourSphere, optional
        Default radii (79, 80, 85, 90) mm, sigmas (0.47, 1.71, 0.02, 0.41) S/m.
    electrodes : str, list of str, xarray, (n, 3) array, mne.Info or DigMontage
        A montage name (``"10-20"``, ``"biosemi64"``, ``"10-10"`` or any MNE
        built-in montage), electrode names, positions (um) between the brain
        surface and the scalp, or an MNE object (projected onto the scalp).
    dipole_location : (3,) float, optional
        Dipole position (um) inside the brain sphere; the dipole is taken as
        given (cell frame = head frame). Default: 1 mm below the brain surface
        at the vertex, where the cell's +z axis is radial.
    placement : Placement or Population, optional
        Instead of ``dipole_location``: per-cell rotation and soma location.
    cell : Cell, optional
        Needed when the dipole comes from ``imem`` or ``v``.
    source : {"auto", "dipole", "imem", "v"}
    reference : None, "average" or an electrode name
        None: potential against infinity (reference-free); "average": average
        reference; a name: that electrode's potential is subtracted. Stored in
        ``attrs["reference"]`` ("infinity", "average" or the name).

    Returns
    -------
    xarray.DataArray
        ``eeg`` (..., time, electrode) in uV, with electrode x/y/z coords (um).

    Raises
    ------
    ValueError
        Electrodes inside the brain sphere or outside the scalp, a dipole
        outside the brain sphere or implausibly close to the centre (a unit
        mistake), both ``dipole_location`` and ``placement``, an unknown reference.

    Examples
    --------
    >>> p = fields.dipole_dataset([0, 0, 10], units="nA m")
    >>> float(fields.eeg(p, electrodes=[[0, 0, 90000]], dipole_location=(0, 0, 78000))[0, 0])  # uV
    7.37...
    """
    model = EEGModel(head, electrodes, reference)
    p, locs, kind = dipole_sources(ds, cell, placement, dipole_location, model.head, source)
    out = per_cell(p, model.get_transformation_matrix(locs), "axis", "electrode")
    out = out.assign_coords(channel_coords(model.names, model.electrodes))
    out.name = "eeg"
    out.attrs = {"units": "uV", "long_name": "scalp potential (four-sphere head)",
                 "reference": model.reference or "infinity", "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 "positions_units": "um", **model.head.attrs()}
    return out
