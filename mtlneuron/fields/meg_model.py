"""MEG: the magnetic field of current dipoles in a spherical or an infinite homogeneous conductor."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import Placement, Population, fibonacci_cap
from .arrays import channel_coords, per_cell
from .checks import as_float, check_choice, positive_int
from .dipoles import dipole_sources
from .head import FourSphere, as_head
from .montages import channels

__all__ = ["MEG_MODELS", "MEGModel", "helmet", "project", "meg"]

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


def project(gain: np.ndarray, xyz: np.ndarray, component: str) -> np.ndarray:
    """MEG lead field (sensor, field component, axis) -> along each sensor's outward radius, or kept."""
    if component == "xyz":
        return gain
    normal = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    return np.einsum("sk,ska->sa", normal, gain)


class MEGModel:
    """Magnetic field at sensors: ``meg (fT) = G(location) @ p (nA um)``.

    LFPykit's ``SphericallySymmetricVolCondMEG`` (``model="spherical"``,
    Sarvas: radial dipoles are silent) or ``InfiniteHomogeneousVolCondMEG``.

    Parameters
    ----------
    sensors : (n, 3) array (um), xarray with x/y/z, or None (:func:`helmet`)
        Outside the brain sphere.
    head : FourSphere, optional
        Its brain radius bounds sensors and dipoles.
    model : {"spherical", "infinite"}
    component : {"radial", "xyz"}
    """

    def __init__(self, sensors: Any = None, head: FourSphere | None = None, model: str = "spherical",
                 component: str = "radial"):
        self.head = as_head(head)
        self.model = check_choice(model, "model", MEG_MODELS)
        self.component = check_choice(component, "component", ["radial", "xyz"])
        self.names, self.sensors = channels(helmet(head=self.head) if sensors is None else sensors,
                                            self.head.scalp_radius, "sensor")
        r = np.linalg.norm(self.sensors, axis=1)
        if np.any(r <= self.head.brain_radius):
            bad = self.names[r <= self.head.brain_radius][:5].tolist()
            raise ValueError(f"MEG sensors {bad} lie inside the brain sphere (|r| <= {self.head.brain_radius} um); "
                             f"put the sensors outside the head, e.g. fields.helmet()")

    def get_transformation_matrix(self, location: Any) -> np.ndarray:
        """(n_sensor, 3) for ``component="radial"``, else (n_sensor, 3 field, 3 axis); fT per nA um."""
        from lfpykit.eegmegcalc import InfiniteHomogeneousVolCondMEG, SphericallySymmetricVolCondMEG

        loc = self.head.check_location(location)
        cls = SphericallySymmetricVolCondMEG if self.model == "spherical" else InfiniteHomogeneousVolCondMEG
        meg_model = cls(self.sensors)
        # H in nA/um per nA um; B = mu0 H; x 1e12 gives fT (see DESIGN.md, LFPykit notes)
        g = meg_model.get_transformation_matrix(np.asarray(loc, dtype=float)) * meg_model.mu * 1e12
        return project(g, self.sensors, self.component)


def meg(ds: Any, sensors: Any = None, head: FourSphere | None = None, dipole_location: Any = None,
        placement: Placement | Population | None = None, cell: Any = None, model: str = "spherical",
        component: str = "radial", source: str = "auto") -> xr.DataArray:
    """MEG: magnetic field of the current dipole(s), in fT.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        ``dipole`` (nA um) or ``imem``/``v`` (with ``cell``).
    sensors : (n, 3) array, optional
        Sensor positions (um) outside the brain sphere; default :func:`helmet`.
    head : FourSphere, optional
        Its brain radius bounds the dipole location.
    dipole_location, placement, cell, source
        As in :func:`eeg`.
    model : {"spherical", "infinite"}
        ``SphericallySymmetricVolCondMEG`` (Sarvas; radial dipoles are silent)
        or ``InfiniteHomogeneousVolCondMEG`` (Biot-Savart of the dipole alone).
    component : {"radial", "xyz"}
        The field along each sensor's outward radius (magnetometers), or all
        three components (extra ``component`` dim).

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
    gains = np.stack([fwd.get_transformation_matrix(loc) for loc in locs])
    if component == "xyz":
        n_s = len(fwd.sensors)
        out = per_cell(p, gains.reshape(len(locs), n_s * 3, 3), "axis", "channel")
        out = xr.DataArray(out.values.reshape(out.shape[:-1] + (n_s, 3)), dims=out.dims[:-1] + ("sensor", "component"),
                           coords={**out.coords, "component": list(AXES)})
    else:
        out = per_cell(p, gains, "axis", "sensor")
    out = out.assign_coords(channel_coords(fwd.names, fwd.sensors, "sensor"))
    out.name = "meg"
    out.attrs = {"units": "fT", "long_name": f"magnetic field ({component})", "model": model,
                 "component": component, "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 **fwd.head.attrs()}
    return out
