"""The four-sphere head model (brain, CSF, skull, scalp), centred at the origin.

x points right, y to the nose, z to the vertex; radii in um, conductivities in S/m.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..geometry import as_points, as_vector
from .checks import as_float, as_sigma

__all__ = ["DEFAULT_RADII", "DEFAULT_SIGMAS", "FourSphere", "as_head"]

DEFAULT_RADII = (79000.0, 80000.0, 85000.0, 90000.0)  # um: brain, CSF, skull, scalp
DEFAULT_SIGMAS = (0.47, 1.71, 0.02, 0.41)  # S/m (LFPykit's documented example)


@dataclass(frozen=True)
class FourSphere:
    """Four concentric spheres (brain, CSF, skull, scalp) for EEG and MEG.

    Parameters
    ----------
    radii : 4 floats
        Outer radii (um), increasing. Default (79000, 80000, 85000, 90000).
    sigmas : 4 floats
        Conductivities (S/m). Default (0.47, 1.71, 0.02, 0.41), LFPykit's
        documented example.

    Examples
    --------
    >>> head = fields.FourSphere()
    >>> head.brain_radius, head.scalp_radius
    (79000.0, 90000.0)
    """

    radii: tuple = DEFAULT_RADII
    sigmas: tuple = DEFAULT_SIGMAS

    def __post_init__(self):
        for name, units in (("radii", "um"), ("sigmas", "S/m")):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not isinstance(values, np.ndarray):
                raise TypeError(f"{name} must be 4 floats ({units}), got {values!r}")
            if len(values) != 4:
                raise ValueError(f"{name} must have 4 values (brain, CSF, skull, scalp), got {len(values)}: {values!r}")
            object.__setattr__(self, name, tuple(as_float(v, f"{name}[{i}]", units) for i, v in enumerate(values)))
        if not (0 < self.radii[0] < self.radii[1] < self.radii[2] < self.radii[3]):
            raise ValueError(f"radii must be positive and increasing (brain < CSF < skull < scalp), got {self.radii}")
        for i, s in enumerate(self.sigmas):
            as_sigma(s, f"sigmas[{i}]")

    @property
    def brain_radius(self) -> float:
        """Outer radius of the brain sphere (um)."""
        return self.radii[0]

    @property
    def scalp_radius(self) -> float:
        """Outer radius of the scalp (um)."""
        return self.radii[3]

    @property
    def default_location(self) -> np.ndarray:
        """Default dipole location: 1 mm below the brain surface at the vertex (um)."""
        return np.array([0.0, 0.0, self.brain_radius - 1000.0])

    def check_locations(self, locations: Any, name: str = "dipole_location") -> np.ndarray:
        """(L, 3) dipole locations (um), each strictly inside the brain sphere and plausible in um.

        A location closer to the centre than 1 % of the brain radius (0.79 mm in the default
        head) is refused as a unit mistake: positions are in um, so a location in metres or
        millimetres lands there (and the four-sphere series is singular at the centre).
        """
        locs = as_points(locations, name)
        r = np.linalg.norm(locs, axis=1)
        out = np.flatnonzero(~(r < self.brain_radius))
        if out.size:
            i = out[0]
            raise ValueError(f"{name} {locs[i].tolist()} um lies outside the brain sphere (|r| = {r[i]:.1f} um >= "
                             f"{self.brain_radius:.1f} um); dipoles must be inside the brain")
        tiny = np.flatnonzero(r < 0.01 * self.brain_radius)
        if tiny.size:
            i = tiny[0]
            raise ValueError(f"{name} {locs[i].tolist()} is {r[i]:.3g} um from the head centre: positions are in "
                             f"um (the brain radius is {self.brain_radius:.0f} um); a location in metres needs "
                             f"x 1e6, one in mm x 1e3")
        return locs

    def check_location(self, location: Any, name: str = "dipole_location") -> np.ndarray:
        """One (3,) location (um), checked as in :meth:`check_locations`."""
        return self.check_locations(as_vector(location, name, "um")[None, :], name)[0]

    def model(self, electrodes: Any):
        """``lfpykit.FourSphereVolumeConductor`` for these electrodes (um)."""
        from lfpykit.eegmegcalc import FourSphereVolumeConductor

        return FourSphereVolumeConductor(as_points(electrodes, "electrodes"), radii=list(self.radii),
                                         sigmas=list(self.sigmas))

    def attrs(self) -> dict:
        """The head's parameters as attrs of an output."""
        return {"head_radii_um": list(self.radii), "head_sigmas_S_per_m": list(self.sigmas)}


def as_head(head: Any) -> FourSphere:
    """``head``, or the default :class:`FourSphere` for None; TypeError for anything else."""
    if head is None:
        return FourSphere()
    if not isinstance(head, FourSphere):
        raise TypeError(f"head must be a fields.FourSphere, got {type(head).__name__}")
    return head
