"""Cells placed in space: :class:`Placement`, :class:`Population`, :func:`place`.

A cell is described in its own frame (``cell.segments``; the hnn-core
pyramidal cells have the soma at the origin and the apical dendrite along +z).
A :class:`Placement` rotates it about its soma and moves the soma to
``position`` (um). Networks and the field forward models (``mtlneuron.fields``,
which re-exports these names) share this module.

Only numpy and xarray are imported here; ``lfpykit`` is imported when
:func:`cell_geometry` is first called.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .conventions import AXES, soma_index

__all__ = ["Placement", "Population", "place", "as_placements", "rotation_matrix", "radial_rotation",
           "fibonacci_cap", "cell_geometry", "segments_of", "as_points", "as_vector"]


# ----------------------------------------------------------------------------
# validation of positions
# ----------------------------------------------------------------------------
def as_points(points: Any, name: str, units: str = "um") -> np.ndarray:
    """An (n, 3) float array of positions; a single (3,) point becomes (1, 3)."""
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an (n, 3) array of positions in {units}, "
                        f"got {type(points).__name__}") from None
    if arr.ndim == 1 and arr.size == 3:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, 3) (x, y, z in {units}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return arr


def as_vector(value: Any, name: str, units: str) -> np.ndarray:
    """A (3,) finite float vector."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be 3 numbers ({units}), got {value!r}") from None
    if arr.shape != (3,):
        raise ValueError(f"{name} must have 3 components (x, y, z in {units}), got shape {arr.shape}: {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


def segments_of(cell: Any) -> xr.Dataset:
    """``cell.segments`` of an mtlneuron Cell; TypeError for anything else."""
    seg = getattr(cell, "segments", None)
    if not isinstance(seg, xr.Dataset):
        raise TypeError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    return seg


def _soma_point(seg: xr.Dataset) -> np.ndarray:
    i = soma_index(seg)
    return np.array([float(seg[c].values[i]) for c in AXES])


# ----------------------------------------------------------------------------
# rotations and point sets
# ----------------------------------------------------------------------------
def rotation_matrix(rotation: Any) -> np.ndarray:
    """R = Rz @ Ry @ Rx for rotations (rad) about x, then y, then z (extrinsic), as LFPy."""
    rx, ry, rz = as_vector(rotation, "rotation", "rad")
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def radial_rotation(position: Any) -> np.ndarray:
    """Rotation (rad about x, y, z) that turns the +z axis along the outward radius of ``position``."""
    pos = as_vector(position, "position", "um")
    norm = np.linalg.norm(pos)
    if norm == 0:
        raise ValueError("position (0, 0, 0) has no radial direction")
    n = pos / norm
    # R = Ry(b) Rx(a) maps z to (cos a sin b, -sin a, cos a cos b) = n
    a = -np.arcsin(np.clip(n[1], -1.0, 1.0))
    b = np.arctan2(n[0], n[2])
    return np.array([a, b, 0.0])


def fibonacci_cap(n: int, max_polar: float) -> np.ndarray:
    """n nearly uniform unit vectors with polar angle <= ``max_polar`` (rad) from +z."""
    k = np.arange(n) + 0.5
    cos_t = 1 - k / n * (1 - np.cos(max_polar))
    phi = np.pi * (1 + 5 ** 0.5) * k
    s = np.sqrt(1 - cos_t ** 2)
    return np.stack([s * np.cos(phi), s * np.sin(phi), cos_t], axis=1)


def cell_geometry(cell_or_segments: Any):
    """``lfpykit.CellGeometry`` from a cell, its ``segments`` table or a placed geometry."""
    import lfpykit

    seg = cell_or_segments if isinstance(cell_or_segments, xr.Dataset) else segments_of(cell_or_segments)
    ends = {c: np.c_[seg[f"{c}0"].values, seg[f"{c}1"].values].astype(float) for c in AXES}
    return lfpykit.CellGeometry(x=ends["x"], y=ends["y"], z=ends["z"], d=np.asarray(seg["diam"].values, dtype=float))


# ----------------------------------------------------------------------------
# placement
# ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Placement:
    """One cell placed in space: rotated about its soma, soma moved to ``position``.

    Parameters
    ----------
    cell : Cell
        From ``mtl.cells.get``; its geometry comes from ``cell.segments``.
    position : (3,) float
        Soma position (um), e.g. in head coordinates for EEG/MEG.
    rotation : (3,) float
        Rotation (rad) about the x, y and z axes, applied in that order
        (``R = Rz @ Ry @ Rx``) about the soma, as ``LFPy.Cell.set_rotation``.

    Examples
    --------
    >>> import mtlneuron as mtl
    >>> from mtlneuron import fields
    >>> cell = mtl.cells.get("l5pc")
    >>> pl = fields.Placement(cell, position=(0, 0, 77000), rotation=(0, 0.3, 0))
    >>> pl.geometry()["z0"].max() > 77000
    True
    """

    cell: Any
    position: tuple = (0.0, 0.0, 0.0)
    rotation: tuple = (0.0, 0.0, 0.0)

    def __post_init__(self):
        segments_of(self.cell)
        object.__setattr__(self, "position", tuple(as_vector(self.position, "position", "um")))
        object.__setattr__(self, "rotation", tuple(as_vector(self.rotation, "rotation", "rad")))

    @classmethod
    def radial(cls, cell: Any, position: Any) -> "Placement":
        """Place ``cell`` at ``position`` with its +z (apical) axis along the outward radius.

        On a spherical cortex centred at the origin this puts the apical
        dendrite along the cortical normal.
        """
        return cls(cell, position=as_vector(position, "position", "um"), rotation=radial_rotation(position))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) rotation matrix applied to the cell's own coordinates."""
        return rotation_matrix(self.rotation)

    @property
    def dipole_location(self) -> np.ndarray:
        """Where this cell's dipole sits for EEG/MEG: the soma position (um)."""
        return np.asarray(self.position, dtype=float)

    def transform(self, points: Any) -> np.ndarray:
        """Map (n, 3) points from the cell's frame into space (um)."""
        pts = as_points(points, "points")
        soma = _soma_point(segments_of(self.cell))
        return (pts - soma) @ self.rotation_matrix.T + np.asarray(self.position)

    def geometry(self) -> xr.Dataset:
        """``cell.segments`` with rotated and translated ends and midpoints (um)."""
        seg = segments_of(self.cell)
        out = seg.copy()
        for ends in (("x0", "y0", "z0"), ("x1", "y1", "z1"), ("x", "y", "z")):
            moved = self.transform(np.stack([seg[c].values for c in ends], axis=1))
            for k, c in enumerate(ends):
                out[c] = ("segment", moved[:, k], seg[c].attrs)
        out.attrs.update(position_um=list(self.position), rotation_rad=list(self.rotation))
        return out

    def cell_geometry(self):
        """``lfpykit.CellGeometry`` of the placed cell."""
        return cell_geometry(self.geometry())


class Population(Sequence):
    """Several placements of the same cell model (a ``cell`` dimension).

    Build with :func:`place`. Data with a ``cell`` dimension (one row of
    ``v``/``imem``/``dipole`` per placed cell) is matched to the placements in
    order; data without it is taken to be the same in every cell.
    """

    def __init__(self, placements: Sequence[Placement]):
        placements = list(placements)
        if not placements:
            raise ValueError("a Population needs at least one Placement")
        for p in placements:
            if not isinstance(p, Placement):
                raise TypeError(f"Population items must be Placement, got {type(p).__name__}")
        n_seg = {p.cell.segments.sizes["segment"] for p in placements}
        if len(n_seg) != 1:
            raise ValueError(f"all cells of a Population must have the same segments, got sizes {sorted(n_seg)}")
        self._placements = placements

    def __getitem__(self, i):
        return self._placements[i]

    def __len__(self) -> int:
        return len(self._placements)

    def __repr__(self) -> str:
        return f"<mtlneuron.fields.Population of {len(self)} placed {self[0].cell.name!r} cells>"

    @property
    def cell(self) -> Any:
        """The (common) cell model."""
        return self[0].cell

    @property
    def positions(self) -> np.ndarray:
        """(n_cell, 3) soma positions (um)."""
        return np.array([p.position for p in self], dtype=float)

    @property
    def rotations(self) -> np.ndarray:
        """(n_cell, 3) rotations about x, y, z (rad)."""
        return np.array([p.rotation for p in self], dtype=float)

    def geometry(self) -> xr.Dataset:
        """Placed segment tables stacked over a ``cell`` dimension."""
        geo = xr.concat([p.geometry() for p in self], dim="cell", data_vars="all", coords="minimal",
                        compat="override")
        geo = geo.assign_coords(cell=np.arange(len(self)))
        geo["position"] = (("cell", "axis"), self.positions, {"units": "um", "long_name": "soma position"})
        geo["rotation"] = (("cell", "axis"), self.rotations, {"units": "rad", "long_name": "rotation about x, y, z"})
        return geo.assign_coords(axis=list(AXES))


def place(cell: Any, positions: Any, rotations: Any = None) -> Population:
    """Place copies of ``cell`` at many soma positions.

    Parameters
    ----------
    cell : Cell
        The cell model.
    positions : (n, 3) array
        Soma positions (um).
    rotations : (n, 3) array, "radial" or None
        Rotations about x, y, z (rad) per cell; ``"radial"`` orients each
        cell's +z axis along its outward radius (head models); None: none.

    Returns
    -------
    Population

    Examples
    --------
    >>> pop = fields.place(cell, [[0, 0, 77000], [2000, 0, 76900]], rotations="radial")
    >>> pop.geometry().sizes["cell"]
    2
    """
    pos = as_points(positions, "positions")
    if isinstance(rotations, str):
        if rotations != "radial":
            raise ValueError(f"rotations must be one of ['radial'], an (n, 3) array or None, got {rotations!r}")
        return Population([Placement.radial(cell, p) for p in pos])
    rot = np.zeros_like(pos) if rotations is None else as_points(rotations, "rotations", "rad")
    if rot.shape != pos.shape:
        raise ValueError(f"rotations has shape {rot.shape} but positions has shape {pos.shape}")
    return Population([Placement(cell, p, r) for p, r in zip(pos, rot)])


def as_placements(cell: Any, placement: Any) -> list[Placement]:
    """Normalize ``placement`` (None, Placement, Population) to a list of placements of ``cell``."""
    if placement is None:
        if cell is None:
            raise ValueError("give cell= or placement= (the geometry is needed here)")
        return [Placement(cell)]
    if isinstance(placement, Placement):
        items = [placement]
    elif isinstance(placement, Population):
        items = list(placement)
    else:
        raise TypeError(f"placement must be a fields.Placement or fields.Population, got {type(placement).__name__}")
    if cell is not None:
        n = segments_of(cell).sizes["segment"]
        if items[0].cell.segments.sizes["segment"] != n:
            raise ValueError(f"placement is for cell {items[0].cell.name!r}, which does not match cell {cell.name!r}")
    return items
