"""MEG: the magnetic field of current dipoles in a spherical or an infinite homogeneous conductor."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import Placement, Population, as_points, fibonacci_cap
from .arrays import channel_coords, per_cell
from .checks import as_float, check_choice, positive_int
from .dipoles import dipole_sources
from .kernels import meg_gain, meg_gain_along
from .head import FourSphere, as_head
from .montages import channels

__all__ = ["MEG_MODELS", "MEGModel", "helmet", "meg_sensors", "meg"]

MEG_MODELS = ("spherical", "infinite")


def helmet(n: int = 102, distance: float = 15000.0, head: FourSphere | None = None,
           max_polar_deg: float = 110.0) -> np.ndarray:
    """MEG sensor positions: a cap of points ``distance`` um above the scalp.

    Parameters
    ----------
    n : int
        Number of sensors (nearly uniform on the cap).
    distance : float
        Height above the scalp sphere (um), 10-20 mm in real helmets.
    head : FourSphere, optional
    max_polar_deg : float
        Cap extent: polar angle from the vertex (deg).

    Returns
    -------
    numpy.ndarray
        (n, 3) sensor positions (um).

    Examples
    --------
    >>> s = fields.helmet(102)
    >>> round(float(np.linalg.norm(s[0])))
    105000
    """
    n = positive_int(n, "n", "number of sensors")
    distance = as_float(distance, "distance", "um")
    if distance <= 0:
        raise ValueError(f"distance must be > 0 um above the scalp, got {distance!r}")
    max_polar = np.radians(as_float(max_polar_deg, "max_polar_deg", "deg"))
    if not 0 < max_polar <= np.pi:
        raise ValueError(f"max_polar_deg must be in (0, 180], got {max_polar_deg!r}")
    return fibonacci_cap(n, max_polar) * (as_head(head).scalp_radius + distance)


def meg_sensors(sensors: Any, head: FourSphere) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(names, positions um, coil normals or None) from an array, xarray, or an mne.Info / Evoked (magnetometers)."""
    from .mne_objects import is_mne, meg_positions

    if is_mne(sensors, "Info", "Evoked"):
        names, xyz, normals = meg_positions(sensors)
        return np.asarray(names), xyz * 1e6, normals
    if sensors is None:
        sensors = helmet(head=head)
    names, xyz = channels(sensors, head.scalp_radius, "sensor")
    return names, xyz, None


class MEGModel:
    """Magnetic field at sensors: ``meg (fT) = G(location) @ p (nA um)``.

    ``model="spherical"``: Sarvas (1987), the field outside a spherically
    symmetric conductor centred at the origin (radial dipoles are silent), as
    LFPykit's ``SphericallySymmetricVolCondMEG``; ``"infinite"``: Biot-Savart
    of the dipole alone, as ``InfiniteHomogeneousVolCondMEG``. Vectorized over
    locations by :func:`mtlneuron.fields.kernels.meg_gain`.

    Parameters
    ----------
    sensors : (n, 3) array (um), xarray with x/y/z, mne.Info or None (:func:`helmet`)
        Outside the brain sphere. An mne.Info gives its magnetometers (head frame) and their coil normals.
    head : FourSphere, optional
        Its brain radius bounds sensors and dipoles.
    model : {"spherical", "infinite"}
    component : {"radial", "xyz", "normal"}
        The field along each sensor's outward radius, all three components, or along
        ``orientations`` (the coil normals of an mne.Info).
    orientations : (n, 3) array, optional
        Sensor normals for ``component="normal"``.
    """

    def __init__(self, sensors: Any = None, head: FourSphere | None = None, model: str = "spherical",
                 component: str = "radial", orientations: Any = None):
        self.head = as_head(head)
        self.model = check_choice(model, "model", MEG_MODELS)
        self.names, self.sensors, coil_normals = meg_sensors(sensors, self.head)
        if component == "radial" and coil_normals is not None and orientations is None:
            component = "normal"  # MNE magnetometers measure along their coil normals
        self.component = check_choice(component, "component", ["radial", "xyz", "normal"])
        r = np.linalg.norm(self.sensors, axis=1)
        if r.max() < 0.01 * self.head.scalp_radius:
            raise ValueError(f"MEG sensors lie within {r.max():.3g} um of the head centre: positions are in um; "
                             f"positions in metres need x 1e6, in mm x 1e3 (or pass an mne.Info)")
        if np.any(r <= self.head.brain_radius):
            bad = self.names[r <= self.head.brain_radius][:5].tolist()
            raise ValueError(f"MEG sensors {bad} lie inside the brain sphere (|r| <= {self.head.brain_radius} um); "
                             f"put the sensors outside the head, e.g. fields.helmet()")
        if self.component == "radial":
            self.normals = self.sensors / r[:, None]
        elif self.component == "normal":
            normals = coil_normals if orientations is None else as_points(orientations, "orientations", "1")
            if normals is None or normals.shape != self.sensors.shape:
                raise ValueError(f"component='normal' needs orientations of shape {self.sensors.shape}")
            self.normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        else:
            self.normals = None

    def get_transformation_matrix(self, locations: Any) -> np.ndarray:
        """fT per nA um: (n_sensor, 3) (or (n_sensor, 3 field, 3 axis) for ``"xyz"``) per location; (L, ...) for (L, 3)."""
        locs = np.asarray(locations, dtype=float)
        checked = self.head.check_location(locs) if locs.ndim == 1 else self.head.check_locations(locs)
        if self.normals is None:
            return meg_gain(self.sensors, checked, self.model)
        return meg_gain_along(self.sensors, self.normals, checked, self.model)


def meg(ds: Any, sensors: Any = None, head: FourSphere | None = None, dipole_location: Any = None,
        placement: Placement | Population | None = None, cell: Any = None, model: str = "spherical",
        component: str = "radial", source: str = "auto") -> xr.DataArray:
    """MEG: magnetic field of the current dipole(s), in fT.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        ``dipole`` (nA um) or ``imem``/``v`` (with ``cell``).
    sensors : (n, 3) array, xarray, mne.Info or mne.Evoked, optional
        Sensor positions (um) outside the brain sphere; default :func:`helmet`.
        An MNE object gives its magnetometers (positions in MNE's head frame,
        whose origin must be the sphere centre) and their coil normals.
    head : FourSphere, optional
        Its brain radius bounds the dipole location.
    dipole_location, placement, cell, source
        As in :func:`eeg`.
    model : {"spherical", "infinite"}
        ``SphericallySymmetricVolCondMEG`` (Sarvas; radial dipoles are silent)
        or ``InfiniteHomogeneousVolCondMEG`` (Biot-Savart of the dipole alone).
    component : {"radial", "xyz"}
        The field along each sensor's outward radius (magnetometers), or all
        three components (extra ``component`` dim). With an mne.Info: along
        each coil normal (``"normal"``, coords nx/ny/nz).

    Returns
    -------
    xarray.DataArray
        ``meg`` (..., time, sensor[, component]) in fT.

    Examples
    --------
    >>> p = fields.dipole_dataset([10, 0, 0], units="nA m")  # tangential
    >>> b = fields.meg(p, dipole_location=(0, 0, 70000))
    >>> b.attrs["units"]
    'fT'
    """
    fwd = MEGModel(sensors, head, model, component)
    p, locs, kind = dipole_sources(ds, cell, placement, dipole_location, fwd.head, source)
    gains = fwd.get_transformation_matrix(locs)
    n_s = len(fwd.sensors)
    if fwd.component == "xyz":
        out = per_cell(p, gains.reshape(len(locs), n_s * 3, 3), "axis", "channel")
        out = xr.DataArray(out.values.reshape(out.shape[:-1] + (n_s, 3)), dims=out.dims[:-1] + ("sensor", "component"),
                           coords={**out.coords, "component": list(AXES)})
    else:
        out = per_cell(p, gains, "axis", "sensor")
    out = out.assign_coords(channel_coords(fwd.names, fwd.sensors, "sensor"))
    if fwd.component == "normal":
        out = out.assign_coords({f"n{c}": ("sensor", fwd.normals[:, i], {"units": "1", "long_name": "sensor normal"})
                                 for i, c in enumerate(AXES)})
    out.name = "meg"
    out.attrs = {"units": "fT", "long_name": f"magnetic field ({fwd.component})", "model": model,
                 "component": fwd.component, "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 "positions_units": "um", **fwd.head.attrs()}
    return out
