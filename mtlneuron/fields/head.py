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

    def check_location(self, location: Any, name: str = "dipole_location") -> np.ndarray:
        """Return ``location`` (3,) if strictly inside the brain sphere, else raise ValueError."""
        loc = as_vector(location, name, "um")
        r = np.linalg.norm(loc)
        if not r < self.brain_radius:
            raise ValueError(f"{name} {loc.tolist()} um lies outside the brain sphere (|r| = {r:.1f} um >= "
                             f"{self.brain_radius:.1f} um); dipoles must be inside the brain")
        if r == 0:
            raise ValueError(f"{name} must not be the head centre (the four-sphere series is singular there)")
        return loc

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
