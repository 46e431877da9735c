"""Extracellular fields: LFP, EEG and MEG from voltages or membrane currents.

Forward models come from LFPykit: line- and point-source LFP
(``LineSourcePotential``, ``PointSourcePotential``), the current dipole moment
(``CurrentDipoleMoment``), the corrected four-sphere head model for EEG
(``FourSphereVolumeConductor``) and MEG in a spherically symmetric or an
infinite homogeneous conductor (``SphericallySymmetricVolCondMEG``,
``InfiniteHomogeneousVolCondMEG``). Membrane currents can come from NEURON
(``imem``) or from voltages alone through LFPy's V -> I_m matrix, so a
surrogate that predicts only ``v`` still gives LFP, dipole, EEG and MEG.

Units (every output is an xarray object with ``units`` attrs)

============================  =========================================
positions, electrodes         um (dipole-fit locations: mm)
conductivity ``sigma``        S/m (a real number; strings/arrays rejected)
``v`` / ``imem``              mV / nA
``dipole``                    nA um (1 nA m = 1e6 nA um)
``lfp``                       mV
``eeg``                       uV
``meg``                       fT
fitted dipole moment          nA m
============================  =========================================

Coordinates: cells are described in their own frame (``cell.segments``; the
hnn-core pyramidal cells have the soma at the origin and the apical dendrite
along +z). A :class:`Placement` rotates a cell about its soma and moves the
soma to ``position``. Head models are centred at the origin; x points right,
y to the nose, z to the vertex.

Dipoles are always computed in the cell's own frame (soma at the origin) and
then rotated: translating a geometry by ~80 mm before applying
``CurrentDipoleMoment`` would amplify the tiny float32 charge-conservation
error of recorded currents (sum(imem) != 0) into the dipole.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr

__all__ = [
    # placement
    "Placement", "Population", "place",
    # operators
    "vmem_to_imem_matrix", "dipole_matrix", "membrane_currents", "cell_geometry",
    # LFP
    "lfp", "laminar_probe", "grid",
    # dipoles
    "dipole", "population_dipole", "dipole_dataset",
    # EEG / MEG
    "FourSphere", "montage", "MONTAGES", "eeg", "lead_field", "meg", "helmet",
    # inverse
    "fit_dipole", "fit_scale",
    # plots
    "plot_topography", "plot_laminar",
    # torch layers (imported lazily: torch is only loaded when one is used)
    "LinearOperator", "VmemToImem", "CurrentDipole", "LFPOperator", "EEGOperator",
]

AXES = ("x", "y", "z")
MU0 = 4e-7 * np.pi  # T m / A, permeability of free space (LFPykit's default)
DEFAULT_RADII = (79000.0, 80000.0, 85000.0, 90000.0)  # um: brain, CSF, skull, scalp
DEFAULT_SIGMAS = (0.47, 1.71, 0.02, 0.41)  # S/m (LFPykit's documented example)
_LFP_METHODS = ("linesource", "pointsource")
_SOURCES = ("auto", "dipole", "imem", "v")
_DIPOLE_UNITS = {"nA um": 1.0, "nA*um": 1.0, "fA m": 1.0, "nA m": 1e6, "uA mm": 1e6, "pA m": 1e3}


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------
def _as_float(value: Any, name: str, units: str) -> float:
    """A real, finite number (not bool, str, list or array) as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float ({units}), got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite ({units}), got {value!r}")
    return value


def _as_sigma(sigma: Any, name: str = "sigma") -> float:
    """Validate a conductivity: a positive float in S/m."""
    sigma = _as_float(sigma, name, "S/m")
    if sigma <= 0:
        raise ValueError(f"{name} must be > 0 S/m, got {sigma!r}")
    return sigma


def _as_points(points: Any, name: str) -> np.ndarray:
    """An (n, 3) float array of positions (um); a single (3,) point becomes (1, 3)."""
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an (n, 3) array of positions in um, got {type(points).__name__}") from None
    if arr.ndim == 1 and arr.size == 3:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, 3) (x, y, z in um), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return arr


def _as_vector(value: Any, name: str, units: str) -> np.ndarray:
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


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _segments_of(cell: Any) -> xr.Dataset:
    seg = getattr(cell, "segments", None)
    if not isinstance(seg, xr.Dataset):
        raise TypeError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    return seg


def _soma_point(seg: xr.Dataset) -> np.ndarray:
    i = int(seg.attrs.get("soma_index", 0))
    return np.array([float(seg[c].values[i]) for c in AXES])


# ----------------------------------------------------------------------------
# placement
# ----------------------------------------------------------------------------
def _rotation_matrix(rotation: np.ndarray) -> np.ndarray:
    """R = Rz @ Ry @ Rx: rotate about x first, then y, then z (radians, extrinsic)."""
    rx, ry, rz = rotation
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


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
        _segments_of(self.cell)
        object.__setattr__(self, "position", tuple(_as_vector(self.position, "position", "um")))
        object.__setattr__(self, "rotation", tuple(_as_vector(self.rotation, "rotation", "rad")))

    @classmethod
    def radial(cls, cell: Any, position: Any) -> "Placement":
        """Place ``cell`` at ``position`` with its +z (apical) axis along the outward radius.

        On a spherical cortex centred at the origin this puts the apical
        dendrite along the cortical normal.
        """
        pos = _as_vector(position, "position", "um")
        norm = np.linalg.norm(pos)
        if norm == 0:
            raise ValueError("position (0, 0, 0) has no radial direction")
        n = pos / norm
        # R = Ry(b) Rx(a) maps z to (cos a sin b, -sin a, cos a cos b) = n
        a = -np.arcsin(np.clip(n[1], -1.0, 1.0))
        b = np.arctan2(n[0], n[2])
        return cls(cell, position=pos, rotation=(a, b, 0.0))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) rotation matrix applied to the cell's own coordinates."""
        return _rotation_matrix(np.asarray(self.rotation))

    @property
    def dipole_location(self) -> np.ndarray:
        """Where this cell's dipole sits for EEG/MEG: the soma position (um)."""
        return np.asarray(self.position, dtype=float)

    def transform(self, points: Any) -> np.ndarray:
        """Map (n, 3) points from the cell's frame into space (um)."""
        pts = _as_points(points, "points")
        soma = _soma_point(_segments_of(self.cell))
        return (pts - soma) @ self.rotation_matrix.T + np.asarray(self.position)

    def geometry(self) -> xr.Dataset:
        """``cell.segments`` with rotated and translated ends and midpoints (um)."""
        seg = _segments_of(self.cell)
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
    pos = _as_points(positions, "positions")
    if isinstance(rotations, str):
        _check_choice(rotations, "rotations", ["radial"])
        return Population([Placement.radial(cell, p) for p in pos])
    rot = np.zeros_like(pos) if rotations is None else _as_points(rotations, "rotations")
    if rot.shape != pos.shape:
        raise ValueError(f"rotations has shape {rot.shape} but positions has shape {pos.shape}")
    return Population([Placement(cell, p, r) for p, r in zip(pos, rot)])


def _placements(cell: Any, placement: Any) -> list[Placement]:
    """Normalize ``placement`` (None, Placement, Population) to a list of placements."""
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
        n = _segments_of(cell).sizes["segment"]
        if items[0].cell.segments.sizes["segment"] != n:
            raise ValueError(f"placement is for cell {items[0].cell.name!r}, which does not match cell {cell.name!r}")
    return items


# ----------------------------------------------------------------------------
# operators: geometry, V -> I_m, dipole
# ----------------------------------------------------------------------------
def cell_geometry(cell_or_segments: Any):
    """``lfpykit.CellGeometry`` from a cell, its ``segments`` table or a placed geometry."""
    import lfpykit

    seg = cell_or_segments if isinstance(cell_or_segments, xr.Dataset) else _segments_of(cell_or_segments)
    ends = {c: np.c_[seg[f"{c}0"].values, seg[f"{c}1"].values].astype(float) for c in AXES}
    return lfpykit.CellGeometry(x=ends["x"], y=ends["y"], z=ends["z"], d=np.asarray(seg["diam"].values, dtype=float))


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
    n = _segments_of(cell).sizes["segment"]
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


def _apply_matrix(da: xr.DataArray, matrix: np.ndarray, dim: str, new_dim: str) -> xr.DataArray:
    """Contract ``da`` over ``dim`` with ``matrix`` (new, old): ``dim`` becomes ``new_dim`` (last)."""
    da = da.transpose(..., dim)
    out = np.asarray(da.values, dtype=float) @ np.asarray(matrix, dtype=float).T
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims}
    return xr.DataArray(out, dims=da.dims[:-1] + (new_dim,), coords=coords)


def _check_segments(da: xr.DataArray, cell: Any, name: str) -> None:
    seg = _segments_of(cell)
    n = seg.sizes["segment"]
    if "segment" not in da.dims:
        raise ValueError(f"{name} has no 'segment' dimension (dims {da.dims})")
    if da.sizes["segment"] != n:
        raise ValueError(f"{name} has {da.sizes['segment']} segments but cell "
                         f"{getattr(cell, 'name', '?')!r} has {n}: mismatched shapes")
    if "segment" in da.coords and not np.array_equal(da["segment"].values.astype(str),
                                                     seg["segment"].values.astype(str)):
        raise ValueError(f"{name} segment names differ from those of cell {getattr(cell, 'name', '?')!r}")


def _pick_variable(data: Any, source: str, wanted: tuple[str, ...]) -> tuple[xr.DataArray, str]:
    """Pick ``v``/``imem``/``dipole`` from a Dataset (or classify a DataArray)."""
    _check_choice(source, "source", _SOURCES)
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
    da, kind = _pick_variable(data, source, ("imem", "v"))
    _check_segments(da, cell, kind)
    if kind == "imem":
        out = da.astype(float)
    else:
        out = _apply_matrix(da, vmem_to_imem_matrix(cell), "segment", "segment")
        out = out.assign_coords(segment=da["segment"]) if "segment" in da.coords else out
    out.name = "imem"
    out.attrs = {"units": "nA", "long_name": "transmembrane current", "source": kind}
    return out


# ----------------------------------------------------------------------------
# LFP
# ----------------------------------------------------------------------------
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
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer number of contacts, got {n!r}")
    spacing = _as_float(spacing, "spacing", "um")
    if spacing <= 0:
        raise ValueError(f"spacing must be > 0 um, got {spacing!r}")
    d = _as_vector(direction, "direction", "1")
    if not np.linalg.norm(d) > 0:
        raise ValueError(f"direction must be non-zero, got {direction!r}")
    d = d / np.linalg.norm(d)
    return _as_vector(origin, "origin", "um") + spacing * np.arange(n)[:, None] * d


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


def _electrode_coords(names: Any, xyz: np.ndarray, dim: str = "electrode") -> dict:
    return {
        dim: np.asarray(names),
        "x": (dim, xyz[:, 0], {"units": "um"}),
        "y": (dim, xyz[:, 1], {"units": "um"}),
        "z": (dim, xyz[:, 2], {"units": "um"}),
    }


def _per_cell(da: xr.DataArray, matrices: np.ndarray, dim: str, new_dim: str) -> xr.DataArray:
    """Sum over cells of ``matrices[c] @ da[..., c, :]`` (or shared data if ``da`` has no cell dim)."""
    n_cell = matrices.shape[0]
    if "cell" not in da.dims:
        return _apply_matrix(da, matrices.sum(axis=0), dim, new_dim)
    if da.sizes["cell"] != n_cell:
        raise ValueError(f"data has {da.sizes['cell']} cells but the placement has {n_cell}: mismatched shapes")
    da = da.transpose(..., "cell", dim)
    out = np.einsum("...cs,ces->...e", np.asarray(da.values, dtype=float), matrices)
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims and "cell" not in v.dims}
    return xr.DataArray(out, dims=da.dims[:-2] + (new_dim,), coords=coords)


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
    import lfpykit

    sigma = _as_sigma(sigma)
    _check_choice(method, "method", _LFP_METHODS)
    xyz = _as_points(electrodes, "electrodes")
    items = _placements(cell, placement)
    imem = membrane_currents(ds, items[0].cell if cell is None else cell, source)
    model = lfpykit.LineSourcePotential if method == "linesource" else lfpykit.PointSourcePotential
    mats = np.stack([model(p.cell_geometry(), x=xyz[:, 0].copy(), y=xyz[:, 1].copy(), z=xyz[:, 2].copy(),
                           sigma=sigma).get_transformation_matrix() for p in items])
    out = _per_cell(imem, mats, "segment", "electrode")
    out = out.assign_coords(_electrode_coords(np.arange(len(xyz)), xyz))
    out.name = "lfp"
    out.attrs = {"units": "mV", "long_name": "extracellular potential", "method": method, "sigma": sigma,
                 "sigma_units": "S/m", "current_source": imem.attrs["source"], "n_cells": len(items)}
    return out


# ----------------------------------------------------------------------------
# dipoles
# ----------------------------------------------------------------------------
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
    if units not in _DIPOLE_UNITS:
        raise ValueError(f"units must be one of {list(_DIPOLE_UNITS)}, got {units!r}")
    p = np.asarray(moment, dtype=float)
    p = p[None, :] if p.ndim == 1 else p
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"moment must have shape (n_time, 3), got {np.shape(moment)}")
    t = np.arange(p.shape[0], dtype=float) if time is None else np.asarray(time, dtype=float)
    if t.shape != (p.shape[0],):
        raise ValueError(f"time has shape {t.shape} but moment has {p.shape[0]} time points")
    return xr.Dataset(
        {"dipole": (("time", "axis"), p * _DIPOLE_UNITS[units],
                    {"units": "nA um", "long_name": "current dipole moment (1 nA um = 1e-6 nA m)"})},
        coords={"time": ("time", t, {"units": "ms"}), "axis": list(AXES)})


def _cell_dipole(ds: Any, cell: Any, source: str) -> tuple[xr.DataArray, str]:
    """Dipole (..., axis) in the cell's own frame, nA um, from dipole, imem or v."""
    da, kind = _pick_variable(ds, source, ("dipole", "imem", "v"))
    if kind == "dipole":
        if "axis" not in da.dims or da.sizes["axis"] != 3:
            raise ValueError(f"dipole must have an 'axis' dim of size 3, got dims {dict(da.sizes)}")
        if "axis" in da.coords:
            da = da.sel(axis=list(AXES))
        return da.astype(float).transpose(..., "axis").drop_vars("axis", errors="ignore"), kind
    if cell is None:
        raise ValueError(f"computing the dipole from {kind!r} needs cell=")
    imem = membrane_currents(da, cell, kind)
    return _apply_matrix(imem, dipole_matrix(cell), "segment", "axis"), kind


def _rotated_dipoles(ds: Any, cell: Any, items: list[Placement], source: str) -> tuple[xr.DataArray, str]:
    """Per-cell dipoles rotated into space: (..., cell, axis) nA um."""
    p, kind = _cell_dipole(ds, cell if cell is not None else items[0].cell, source)
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


def _dipole_attrs(kind: str) -> dict:
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
        p, kind = _cell_dipole(ds, cell, source)
        p = p.assign_coords(axis=list(AXES))
    else:
        p, kind = _rotated_dipoles(ds, cell, _placements(cell, placement), source)
        p = p.sum("cell")
    p.name = "dipole"
    p.attrs = _dipole_attrs(kind)
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
    items = _placements(cell, placement)
    p, kind = _rotated_dipoles(ds, cell, items, source)
    loc = np.stack([pl.dipole_location for pl in items])
    return xr.Dataset(
        {"dipole": p.assign_attrs(_dipole_attrs(kind)),
         "location": (("cell", "axis"), loc, {"units": "um", "long_name": "dipole (soma) location"}),
         "total": p.sum("cell").assign_attrs(_dipole_attrs(kind))},
        coords={"axis": list(AXES), "cell": np.arange(len(items))})


# ----------------------------------------------------------------------------
# head model and montages
# ----------------------------------------------------------------------------
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
            object.__setattr__(self, name, tuple(_as_float(v, f"{name}[{i}]", units) for i, v in enumerate(values)))
        if not (0 < self.radii[0] < self.radii[1] < self.radii[2] < self.radii[3]):
            raise ValueError(f"radii must be positive and increasing (brain < CSF < skull < scalp), got {self.radii}")
        for i, s in enumerate(self.sigmas):
            _as_sigma(s, f"sigmas[{i}]")

    @property
    def brain_radius(self) -> float:
        """Outer radius of the brain sphere (um)."""
        return self.radii[0]

    @property
    def scalp_radius(self) -> float:
        """Outer radius of the scalp (um)."""
        return self.radii[3]

    def check_location(self, location: Any, name: str = "dipole_location") -> np.ndarray:
        """Return ``location`` (3,) if strictly inside the brain sphere, else raise ValueError."""
        loc = _as_vector(location, name, "um")
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

        return FourSphereVolumeConductor(_as_points(electrodes, "electrodes"), radii=list(self.radii),
                                         sigmas=list(self.sigmas))

    @property
    def default_location(self) -> np.ndarray:
        """Default dipole location: 1 mm below the brain surface at the vertex (um)."""
        return np.array([0.0, 0.0, self.brain_radius - 1000.0])


def _check_head(head: Any) -> FourSphere:
    if head is None:
        return FourSphere()
    if not isinstance(head, FourSphere):
        raise TypeError(f"head must be a fields.FourSphere, got {type(head).__name__}")
    return head


# Idealized spherical 10-10 positions (Oostenveld & Praamstra 2001 construction
# on a sphere): the Fpz-T8-Oz-T7 circumference is the equator, and every row is
# the circle through its two circumference points and its midline point,
# divided into equal arcs. Row: (midline polar angle from Cz in deg, + = front;
# azimuth of the row's circumference point from the nose in deg).
_ROWS = {"Fp": (90.0, 18.0), "AF": (67.5, 36.0), "F": (45.0, 54.0), "FC": (22.5, 72.0), "C": (0.0, 90.0),
         "CP": (-22.5, 108.0), "P": (-45.0, 126.0), "PO": (-67.5, 144.0), "O": (-90.0, 162.0)}
_RING_NAMES = {"FC": "FT", "C": "T", "CP": "TP"}  # names of circumference / below-circumference columns
_EXTENDED_ROWS = ("F", "FC", "C", "CP", "P")  # rows with a column below the circumference (9/10)
MONTAGES = {
    "10-20": ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
              "P7", "P3", "Pz", "P4", "P8", "O1", "O2"),
    "biosemi64": ("Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1", "C3", "C5",
                  "T7", "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "P9", "PO7", "PO3", "O1", "Iz",
                  "Oz", "POz", "Pz", "CPz", "Fpz", "Fp2", "AF8", "AF4", "AFz", "Fz", "F2", "F4", "F6", "F8",
                  "FT8", "FC6", "FC4", "FC2", "FCz", "Cz", "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4", "CP2",
                  "P2", "P4", "P6", "P8", "P10", "PO8", "PO4", "O2"),
}
_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8", "64": "biosemi64", "10-10-64": "biosemi64"}


def _arc(a: np.ndarray, m: np.ndarray, b: np.ndarray, steps: Sequence[float]) -> list[np.ndarray]:
    """Points on the circle through a, m, b, from m toward b, at fractions of the m->b arc."""
    u, w = a - b, m - b
    cross = np.cross(u, w)
    centre = b + np.cross(np.dot(u, u) * w - np.dot(w, w) * u, cross) / (2 * np.dot(cross, cross))
    v0, v1 = m - centre, b - centre
    axis = np.cross(v0, v1)
    axis /= np.linalg.norm(axis)
    angle = np.arctan2(np.linalg.norm(np.cross(v0, v1)), np.dot(v0, v1))
    return [centre + np.cos(f * angle) * v0 + np.sin(f * angle) * np.cross(axis, v0) for f in steps]


def _ten_ten() -> dict[str, np.ndarray]:
    """Unit vectors of the idealized 10-10 positions (x right, y nose, z vertex)."""
    pos: dict[str, np.ndarray] = {}
    for row, (polar, az) in _ROWS.items():
        t, a = np.radians(polar), np.radians(az)
        mid = np.array([0.0, np.sin(t), np.cos(t)])
        right = np.array([np.sin(a), np.cos(a), 0.0])
        ks = (4,) if row in ("Fp", "O") else (1, 2, 3, 4, 5) if row in _EXTENDED_ROWS else (1, 2, 3, 4)
        pts = _arc(right * [-1, 1, 1], mid, right, [k / 4 for k in ks])
        pos[row + "z"] = mid
        for k, p in zip(ks, pts):
            prefix = _RING_NAMES.get(row, row) if k >= 4 else row
            odd, even = (1, 2) if row in ("Fp", "O") else (2 * k - 1, 2 * k)
            pos[f"{prefix}{even}"] = p / np.linalg.norm(p)
            pos[f"{prefix}{odd}"] = pos[f"{prefix}{even}"] * [-1, 1, 1]
    below = np.radians(112.5)
    pos["Nz"] = np.array([0.0, np.sin(below), np.cos(below)])
    pos["Iz"] = np.array([0.0, -np.sin(below), np.cos(below)])
    return pos


_TEN_TEN = _ten_ten()
MONTAGES["10-10"] = tuple(_TEN_TEN)


def montage(name: str | Sequence[str] = "10-20", radius: float | None = None,
            head: FourSphere | None = None) -> xr.Dataset:
    """Standard EEG electrode positions projected on the scalp sphere.

    Positions are the idealized spherical 10-10 system (Oostenveld &
    Praamstra 2001 construction, Fpz-T7-Oz-T8 on the equator), computed in
    code; no files are read. Real heads differ from a sphere.

    Parameters
    ----------
    name : str or list of str
        ``"10-20"`` (19 electrodes), ``"biosemi64"`` (alias ``"64"``, the
        64-channel 10-10 layout), ``"10-10"`` (all 81 positions), or a list of
        electrode names (old names T3/T4/T5/T6 accepted).
    radius : float, optional
        Sphere radius (um); default the scalp radius of ``head``.
    head : FourSphere, optional

    Returns
    -------
    xarray.Dataset
        Over ``electrode`` (names): x, y, z (um), theta (polar angle from the
        vertex, deg), phi (azimuth from +x toward the nose, deg).

    Examples
    --------
    >>> m = fields.montage("biosemi64")
    >>> m.sizes["electrode"], float(m["z"].sel(electrode="Cz"))
    (64, 90000.0)
    """
    names = _montage_names(name)
    radius = _check_head(head).scalp_radius if radius is None else _as_float(radius, "radius", "um")
    unit = np.stack([_TEN_TEN[n] for n in names])
    xyz = unit * radius
    theta = np.degrees(np.arccos(np.clip(unit[:, 2], -1, 1)))
    phi = np.degrees(np.arctan2(unit[:, 1], unit[:, 0]))
    ds = xr.Dataset(
        {"theta": ("electrode", theta, {"units": "deg", "long_name": "polar angle from the vertex (Cz)"}),
         "phi": ("electrode", phi, {"units": "deg", "long_name": "azimuth from +x (right) toward +y (nose)"})},
        coords=_electrode_coords(list(names), xyz))
    ds.attrs = {"montage": name if isinstance(name, str) else "custom", "radius_um": float(radius),
                "positions": "idealized spherical 10-10 (Oostenveld & Praamstra 2001 construction)"}
    return ds


def _montage_names(name: Any) -> tuple[str, ...]:
    if isinstance(name, str):
        key = _ALIASES.get(name, name)
        if key not in MONTAGES:
            raise ValueError(f"unknown montage {name!r}; choose from {sorted(MONTAGES) + sorted(_ALIASES)[:1]} "
                             f"or give a list of electrode names")
        return MONTAGES[key]
    names = tuple(_ALIASES.get(str(n), str(n)) for n in name)
    unknown = [n for n in names if n not in _TEN_TEN]
    if unknown:
        raise ValueError(f"unknown electrode name(s) {unknown}; known: {sorted(_TEN_TEN)}")
    return names


def _channels(electrodes: Any, radius: float, dim: str = "electrode") -> tuple[np.ndarray, np.ndarray]:
    """(names, xyz) from a montage name, a list of names, a Dataset/DataArray with x/y/z, or an array."""
    if isinstance(electrodes, str) or (isinstance(electrodes, (list, tuple)) and electrodes
                                       and all(isinstance(e, str) for e in electrodes)):
        m = montage(electrodes, radius=radius)
        return m["electrode"].values, np.stack([m[c].values for c in AXES], axis=1)
    if isinstance(electrodes, (xr.Dataset, xr.DataArray)):
        known = electrodes.coords if isinstance(electrodes, xr.DataArray) else electrodes.variables
        if not all(c in known for c in AXES):
            raise ValueError("electrodes given as xarray need x, y, z variables or coords (um)")
        pos = np.stack([np.asarray(electrodes[c].values, dtype=float) for c in AXES], axis=1)
        pos = _as_points(pos, "electrodes")
        edim = electrodes["x"].dims[0] if electrodes["x"].dims else dim
        names = electrodes[edim].values if edim in electrodes.coords else np.arange(len(pos))
        return np.asarray(names), pos
    pos = _as_points(electrodes, "electrodes")
    return np.arange(len(pos)), pos


def _eeg_channels(electrodes: Any, head: FourSphere) -> tuple[np.ndarray, np.ndarray]:
    """EEG electrodes: outside the brain sphere and not outside the scalp (snapped onto it)."""
    names, xyz = _channels(electrodes, head.scalp_radius)
    r = np.linalg.norm(xyz, axis=1)
    inside = np.flatnonzero(r <= head.brain_radius)
    if inside.size:
        raise ValueError(f"EEG electrodes {names[inside][:5].tolist()} lie inside the brain sphere "
                         f"(|r| = {r[inside][:5].round(1).tolist()} um <= {head.brain_radius} um); put them on "
                         f"the scalp (|r| = {head.scalp_radius} um)")
    outside = np.flatnonzero(r > head.scalp_radius * (1 + 1e-9))
    if outside.size:
        raise ValueError(f"EEG electrodes {names[outside][:5].tolist()} lie outside the head "
                         f"(|r| = {r[outside][:5].round(1).tolist()} um > scalp {head.scalp_radius} um)")
    on_scalp = r > head.scalp_radius * (1 - 1e-12)  # rounding: LFPykit rejects r > r4 by one ulp
    xyz = xyz.copy()
    xyz[on_scalp] *= (head.scalp_radius * (1 - 1e-12) / r[on_scalp])[:, None]
    return names, xyz


# ----------------------------------------------------------------------------
# EEG
# ----------------------------------------------------------------------------
def _sources(ds: Any, cell: Any, placement: Any, dipole_location: Any, head: FourSphere,
             source: str) -> tuple[xr.DataArray, np.ndarray, str]:
    """Dipoles (..., cell, axis) in nA um and their locations (cell, 3) um, inside the brain."""
    if placement is not None:
        if dipole_location is not None:
            raise ValueError("give either dipole_location= or placement= (placements carry their locations)")
        items = _placements(cell, placement)
        p, kind = _rotated_dipoles(ds, cell, items, source)
        locs = np.stack([pl.dipole_location for pl in items])
    else:
        p, kind = _cell_dipole(ds, cell, source)
        p = p.expand_dims(cell=1, axis=-2).assign_coords(axis=list(AXES))
        locs = [head.default_location if dipole_location is None else dipole_location]
    locs = np.stack([head.check_location(loc, "dipole_location") for loc in locs])
    return p, locs, kind


def _eeg_gain(head: FourSphere, xyz: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """LFPykit four-sphere lead field (n_electrode, 3) in uV per nA um."""
    return head.model(xyz).get_transformation_matrix(np.asarray(loc, dtype=float)) * 1e3


def _apply_reference(gain: np.ndarray, reference: str | None) -> np.ndarray:
    if reference is None:
        return gain
    _check_choice(reference, "reference", ["average"])
    return gain - gain.mean(axis=-2, keepdims=True)


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
    head = _check_head(head)
    names, xyz = _eeg_channels(electrodes, head)
    loc = head.check_location(head.default_location if dipole_location is None else dipole_location)
    g = _apply_reference(_eeg_gain(head, xyz, loc), reference)
    return xr.DataArray(g, dims=("electrode", "axis"),
                        coords={**_electrode_coords(names, xyz), "axis": list(AXES)},
                        name="lead_field", attrs={"units": "uV / (nA um)", "dipole_location_um": loc.tolist()})


def _head_attrs(head: FourSphere) -> dict:
    return {"head_radii_um": list(head.radii), "head_sigmas_S_per_m": list(head.sigmas)}


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
    head = _check_head(head)
    names, xyz = _eeg_channels(electrodes, head)
    p, locs, kind = _sources(ds, cell, placement, dipole_location, head, source)
    gains = np.stack([_apply_reference(_eeg_gain(head, xyz, loc), reference) for loc in locs])
    out = _per_cell(p, gains, "axis", "electrode")
    out = out.assign_coords(_electrode_coords(names, xyz))
    out.name = "eeg"
    out.attrs = {"units": "uV", "long_name": "scalp potential (four-sphere head)",
                 "reference": reference or "infinity", "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 **_head_attrs(head)}
    return out


# ----------------------------------------------------------------------------
# MEG
# ----------------------------------------------------------------------------
def _fibonacci_cap(n: int, max_polar: float) -> np.ndarray:
    """n nearly uniform unit vectors with polar angle <= max_polar (rad) from +z."""
    k = np.arange(n) + 0.5
    cos_t = 1 - k / n * (1 - np.cos(max_polar))
    phi = np.pi * (1 + 5 ** 0.5) * k
    s = np.sqrt(1 - cos_t ** 2)
    return np.stack([s * np.cos(phi), s * np.sin(phi), cos_t], axis=1)


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
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer number of sensors, got {n!r}")
    distance = _as_float(distance, "distance", "um")
    if distance <= 0:
        raise ValueError(f"distance must be > 0 um above the scalp, got {distance!r}")
    max_polar = np.radians(_as_float(max_polar_deg, "max_polar_deg", "deg"))
    if not 0 < max_polar <= np.pi:
        raise ValueError(f"max_polar_deg must be in (0, 180], got {max_polar_deg!r}")
    return _fibonacci_cap(int(n), max_polar) * (_check_head(head).scalp_radius + distance)


def _meg_gain(xyz: np.ndarray, loc: np.ndarray, model: str) -> np.ndarray:
    """LFPykit MEG lead field (n_sensor, 3 field components, 3 dipole axes) in fT per nA um."""
    from lfpykit.eegmegcalc import InfiniteHomogeneousVolCondMEG, SphericallySymmetricVolCondMEG

    cls = SphericallySymmetricVolCondMEG if model == "spherical" else InfiniteHomogeneousVolCondMEG
    meg_model = cls(xyz)
    # H in nA/um per nA um; B = mu0 H; x 1e12 gives fT (see DESIGN.md, LFPykit notes)
    return meg_model.get_transformation_matrix(np.asarray(loc, dtype=float)) * meg_model.mu * 1e12


def _project(gain: np.ndarray, xyz: np.ndarray, component: str) -> np.ndarray:
    if component == "xyz":
        return gain
    normal = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    return np.einsum("sk,ska->sa", normal, gain)


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
    head = _check_head(head)
    _check_choice(model, "model", ["spherical", "infinite"])
    _check_choice(component, "component", ["radial", "xyz"])
    names, xyz = _channels(helmet(head=head) if sensors is None else sensors, head.scalp_radius, "sensor")
    r = np.linalg.norm(xyz, axis=1)
    if np.any(r <= head.brain_radius):
        bad = names[r <= head.brain_radius][:5].tolist()
        raise ValueError(f"MEG sensors {bad} lie inside the brain sphere (|r| <= {head.brain_radius} um); "
                         f"put the sensors outside the head, e.g. fields.helmet()")
    p, locs, kind = _sources(ds, cell, placement, dipole_location, head, source)
    gains = np.stack([_project(_meg_gain(xyz, loc, model), xyz, component) for loc in locs])
    if component == "xyz":
        n_s = len(xyz)
        out = _per_cell(p, gains.reshape(len(locs), n_s * 3, 3), "axis", "channel")
        out = xr.DataArray(out.values.reshape(out.shape[:-1] + (n_s, 3)), dims=out.dims[:-1] + ("sensor", "component"),
                           coords={**out.coords, "component": list(AXES)})
    else:
        out = _per_cell(p, gains, "axis", "sensor")
    out = out.assign_coords(_electrode_coords(names, xyz, "sensor"))
    out.name = "meg"
    out.attrs = {"units": "fT", "long_name": f"magnetic field ({component})", "model": model,
                 "component": component, "dipole_source": kind, "n_sources": len(locs),
                 "dipole_location_um": locs[0].tolist() if len(locs) == 1 else "per cell (placement)",
                 **_head_attrs(head)}
    return out


# ----------------------------------------------------------------------------
# fast forward models for dipole fitting (vectorized; equal to LFPykit's)
# ----------------------------------------------------------------------------
def _four_sphere_coefficients(head: FourSphere, rz: float, n: np.ndarray) -> dict:
    """LFPykit's corrected four-sphere series coefficients, vectorized over n (Naess et al. 2017)."""
    r1, r2, r3, r4 = head.radii
    s1, s2, s3, s4 = head.sigmas
    r12, r23, r34 = r1 / r2, r2 / r3, r3 / r4
    s12, s23, s34 = s1 / s2, s2 / s3, s3 / s4
    rz1 = rz / r1
    q, q1 = n / (n + 1), (n + 1) / n
    with np.errstate(under="ignore", over="ignore"):
        a34, a23, a12 = r34 ** (2 * n + 1), r23 ** (2 * n + 1), r12 ** (2 * n + 1)
        rc = (a34 - 1) / (q1 * a34 + 1)
        vn = (q * s34 - rc) / (s34 + rc)
        rc2 = (q * a23 - vn) / (a23 + vn)
        yn = (q * s23 - rc2) / (s23 + rc2)
        zn = (a12 - q1 * yn) / (a12 + yn)
        rzn = rz1 ** (n + 1)
        c1 = (q1 * s12 + zn) / (s12 - zn) * rzn
        c2 = (c1 + rzn) * r12 ** (n + 1) / (a12 + yn)
        c3 = (c2 + yn * c2) * r23 ** (n + 1) / (a23 + vn)
        c4 = q1 * r34 ** (n + 1) * (c3 + vn * c3) / (q1 * a34 + 1)
    return {"c1": c1, "yn": yn, "c3": c3, "d3": vn * c3, "c4": c4, "d4": q * c4, "rzn": rzn}


def _four_sphere_terms(head: FourSphere, co: dict, n: np.ndarray, r: float) -> np.ndarray:
    """Series terms K_n(r) at electrode radius r (CSF, skull or scalp)."""
    r1, r2, r3, r4 = head.radii
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        if r <= r2:
            ratio = (r1 * r / r2 ** 2) ** n
            t1 = (co["c1"] + co["rzn"]) * (r1 / r2) * ratio / ((r1 / r2) ** (2 * n + 1) + co["yn"])
            t2 = co["yn"] * (co["c1"] + co["rzn"]) / (r / r2 * ratio + (r / r1) ** (n + 1) * co["yn"])
            k = t1 + t2
        elif r <= r3:
            k = co["c3"] * (r / r3) ** n + co["d3"] * (r3 / r) ** (n + 1)
        else:
            k = co["c4"] * (r / r4) ** n + co["d4"] * (r4 / r) ** (n + 1)
    return np.nan_to_num(k)


def _fast_eeg_gain(head: FourSphere, xyz: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """Four-sphere lead field (n, 3) in uV per nA um, vectorized over electrodes."""
    from numpy.polynomial import legendre as L

    rz = float(np.linalg.norm(loc))
    zhat = loc / rz
    r = np.linalg.norm(xyz, axis=1)
    cos_t = np.clip(xyz @ zhat / r, -1.0, 1.0)
    perp = xyz - np.outer(xyz @ zhat, zhat)
    perp_n = np.linalg.norm(perp, axis=1)
    e_perp = np.divide(perp, perp_n[:, None], out=np.zeros_like(perp), where=perp_n[:, None] > 1e-9 * r[:, None])
    n_max = 64
    gain = np.zeros((len(xyz), 3))
    for radius in np.unique(r):
        idx = r == radius
        while True:
            n = np.arange(1, n_max + 1, dtype=float)
            k = _four_sphere_terms(head, _four_sphere_coefficients(head, rz, n), n, radius)
            if abs(n[-1] * k[-1]) <= 1e-13 * np.abs(n * k).sum() or n_max >= 1 << 15:
                break
            n_max *= 2
        coef = np.r_[0.0, k]
        radial = L.legval(cos_t[idx], coef * np.arange(n_max + 1))
        # sum_n K_n P_n^1(x) with scipy's lpmv convention P_n^1 = -(1-x^2)^(1/2) P_n'(x)
        tangential = -np.sqrt(1 - cos_t[idx] ** 2) * L.legval(cos_t[idx], L.legder(coef))
        gain[idx] = radial[:, None] * zhat - tangential[:, None] * e_perp[idx]
    return gain / (4 * np.pi * head.sigmas[0] * rz ** 2) * 1e3


def _fast_meg_gain(xyz: np.ndarray, loc: np.ndarray, model: str) -> np.ndarray:
    """MEG lead field (n_sensor, 3, 3) in fT per nA um (Sarvas 1987 / Biot-Savart), vectorized."""
    scale = MU0 * 1e12 / (4 * np.pi)
    eye = np.eye(3)
    if model == "infinite":
        d = xyz - loc
        cr = np.cross(eye[None, :, :], d[:, None, :])  # (s, j, k): e_j x R
        return np.transpose(cr, (0, 2, 1)) / np.linalg.norm(d, axis=1)[:, None, None] ** 3 * scale
    a = xyz - loc
    a_n = np.linalg.norm(a, axis=1)
    r_n = np.linalg.norm(xyz, axis=1)
    ar = np.einsum("sk,sk->s", a, xyz)
    f = a_n * (r_n * a_n + r_n ** 2 - xyz @ loc)
    grad_f = ((a_n ** 2 / r_n + ar / a_n + 2 * a_n + 2 * r_n)[:, None] * xyz
              - (a_n + 2 * r_n + ar / a_n)[:, None] * loc)
    c = np.cross(eye, loc)  # (j, k): e_j x r_p
    h = (f[:, None, None] * c[None, :, :] - (xyz @ c.T)[:, :, None] * grad_f[:, None, :]) / (f ** 2)[:, None, None]
    return np.transpose(h, (0, 2, 1)) * scale


# ----------------------------------------------------------------------------
# dipole fitting
# ----------------------------------------------------------------------------
def _data_kind(data: xr.DataArray, kind: str | None) -> str:
    if kind is not None:
        return _check_choice(kind, "kind", ["eeg", "meg"])
    units = str(data.attrs.get("units", ""))
    if data.name == "eeg" or units == "uV":
        return "eeg"
    if data.name == "meg" or units == "fT":
        return "meg"
    raise ValueError(f"cannot tell EEG from MEG for DataArray {data.name!r} (units {units!r}); pass kind='eeg' or 'meg'")


def _fit_setup(data: xr.DataArray, head: FourSphere, sensors: Any, kind: str) -> tuple:
    """Channel matrix Y (n_channel, n_time), channel names/xyz and the forward function."""
    ch_dim = "electrode" if kind == "eeg" else "sensor"
    if ch_dim not in data.dims:
        raise ValueError(f"{kind.upper()} data needs a {ch_dim!r} dimension, got dims {data.dims}")
    extra = set(data.dims) - {ch_dim, "time", "component"}
    if extra:
        raise ValueError(f"fit_dipole takes (time, {ch_dim}) data; select or average dims {sorted(extra)} first")
    source = data if sensors is None else sensors
    names, xyz = (_eeg_channels(source, head) if kind == "eeg" else _channels(source, head.scalp_radius, "sensor"))
    if len(xyz) != data.sizes[ch_dim]:
        raise ValueError(f"{len(xyz)} sensors given but the data has {data.sizes[ch_dim]} {ch_dim}s: mismatched shapes")
    data = data if "time" in data.dims else data.expand_dims(time=[0.0])
    if kind == "eeg":
        y = data.transpose(ch_dim, "time").values.astype(float)
        ref = data.attrs.get("reference", "infinity")

        def forward(loc):
            return _apply_reference(_fast_eeg_gain(head, xyz, loc), "average" if ref == "average" else None)
    else:
        model = data.attrs.get("model", "spherical")
        component = "xyz" if "component" in data.dims else "radial"
        y = data.transpose(ch_dim, *(["component"] if component == "xyz" else []), "time").values.astype(float)
        y = y.reshape(-1, y.shape[-1])

        def forward(loc):
            return _project(_fast_meg_gain(xyz, loc, model), xyz, component).reshape(-1, 3)
    if not np.all(np.isfinite(y)):
        raise ValueError("data contains NaN or infinite values")
    return data, y, names, xyz, forward


def _whitener(noise_cov: Any, n: int) -> np.ndarray:
    """W = C^(-1/2) (pseudo-inverse square root; rank-deficient covariances allowed)."""
    if noise_cov is None:
        return np.eye(n)
    c = np.asarray(noise_cov, dtype=float)
    c = np.diag(c) if c.ndim == 1 else c
    if c.shape != (n, n):
        raise ValueError(f"noise_cov must be ({n}, {n}) (or {n} variances), got shape {np.shape(noise_cov)}")
    if not np.allclose(c, c.T, rtol=1e-8, atol=1e-12 * np.abs(c).max()):
        raise ValueError("noise_cov must be symmetric")
    lam, vec = np.linalg.eigh(c)
    if lam.min() < -1e-8 * lam.max() or lam.max() <= 0:
        raise ValueError("noise_cov must be positive semi-definite and non-zero")
    keep = lam > 1e-10 * lam.max()
    return (vec[:, keep] / np.sqrt(lam[keep])) @ vec[:, keep].T


def _projection_residual(g: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Residual of the best linear fit of yc (n, k) by the columns of g (n, 3)."""
    u, s, _ = np.linalg.svd(g, full_matrices=False)
    u = u[:, s > s[0] * 1e-8] if s[0] > 0 else u[:, :0]
    return yc - u @ (u.T @ yc)


def _to_ball(u: np.ndarray, rmax: float) -> np.ndarray:
    """Smooth map of R^3 onto the open ball |r| < rmax (the location constraint)."""
    loc = rmax * u / np.sqrt(1 + u @ u)
    n = np.linalg.norm(loc)
    return loc if n > 1.0 else np.array([0.0, 0.0, 1.0])  # keep 1 um from the singular centre


def _from_ball(loc: np.ndarray, rmax: float) -> np.ndarray:
    x = loc / rmax
    return x / np.sqrt(1 - min(x @ x, 1 - 1e-12))


def _candidates(rmax: float, n_grid: int) -> np.ndarray:
    """Starting grid: Fibonacci shells filling the ball (points per shell ~ r^2)."""
    fractions = np.array([0.2, 0.4, 0.6, 0.75, 0.88, 0.97])
    counts = np.maximum(4, np.round(n_grid * fractions ** 2 / (fractions ** 2).sum())).astype(int)
    return np.concatenate([_fibonacci_cap(c, np.pi) * f * rmax for f, c in zip(fractions, counts)])


def _pick_starts(points: np.ndarray, costs: np.ndarray, n_starts: int, min_sep: float) -> list[np.ndarray]:
    """The best-fitting grid points that are at least ``min_sep`` apart (then the next best)."""
    order = np.argsort(costs)
    chosen: list[int] = []
    for i in order:
        if all(np.linalg.norm(points[i] - points[j]) >= min_sep for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n_starts:
            break
    chosen += [int(i) for i in order if i not in chosen][: n_starts - len(chosen)]
    return [points[i] for i in chosen]


def _fit_location(forward: Callable, yc: np.ndarray, w: np.ndarray, rmax: float, n_starts: int,
                  n_grid: int) -> np.ndarray:
    """Multi-start nonlinear least squares for the location (moments projected out)."""
    from scipy.optimize import least_squares

    def residual(u):
        return _projection_residual(w @ forward(_to_ball(u, rmax)), yc).ravel()

    cand = _candidates(rmax, n_grid)
    costs = np.array([np.sum(_projection_residual(w @ forward(c), yc) ** 2) for c in cand])
    best_loc, best_cost = None, np.inf
    for start in _pick_starts(cand, costs, n_starts, 0.2 * rmax):
        res = least_squares(residual, _from_ball(start, rmax), method="trf", x_scale="jac",
                            xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=200)
        if res.cost < best_cost:
            best_loc, best_cost = _to_ball(res.x, rmax), res.cost
    return best_loc


def fit_dipole(data: xr.DataArray, head: FourSphere | None = None, sensors: Any = None, n_starts: int = 5,
               noise_cov: Any = None, kind: str | None = None, n_grid: int = 200) -> xr.Dataset:
    """Fit one equivalent current dipole (fixed location, free moment over time).

    The location is found by nonlinear least squares (``scipy.optimize.
    least_squares``) from ``n_starts`` starts (the best-fitting, mutually
    distant points of a grid filling the brain); it is constrained inside the
    brain sphere (radius ``0.995 * head.brain_radius``) by a smooth map of R^3
    onto that ball. For every trial location the moment time course is solved
    by linear least squares (variable projection), so only 3 parameters are
    searched. The forward models are vectorized re-implementations of
    LFPykit's four-sphere and MEG formulas (tested equal to LFPykit).

    Parameters
    ----------
    data : xarray.DataArray
        ``eeg`` (time, electrode) in uV or ``meg`` (time, sensor[, component])
        in fT, e.g. from :func:`eeg` / :func:`meg` (their attrs give the
        reference and MEG model); a ``trial`` dim is fitted trial by trial.
    head : FourSphere, optional
    sensors : optional
        Electrode/sensor positions (um) or montage; default the data's x/y/z coords.
    n_starts : int
        Number of local optimizations.
    noise_cov : (n_channel, n_channel) or (n_channel,) array, optional
        Noise covariance (data units squared) for whitening.
    kind : {"eeg", "meg"}, optional
        Default from the data's name or units.
    n_grid : int
        Size of the starting grid.

    Returns
    -------
    xarray.Dataset
        ``location`` (axis) mm, ``moment`` (time, axis) nA m, ``orientation``
        (axis), ``amplitude`` (time) nA m (moment along the orientation),
        ``gof`` (%) and ``gof_time`` (time) %, ``fitted`` and ``residual`` in
        data units.

    Examples
    --------
    >>> p = fields.dipole_dataset(np.outer(np.hanning(40), [3, -2, 8]), units="nA m")
    >>> data = fields.eeg(p, electrodes="biosemi64", dipole_location=(10000, -20000, 60000))
    >>> fit = fields.fit_dipole(data)
    >>> fit["location"].values.round(2)
    array([ 10., -20.,  60.])
    """
    if not isinstance(data, xr.DataArray):
        raise TypeError(f"data must be an xarray.DataArray (eeg or meg), got {type(data).__name__}")
    for name, value in (("n_starts", n_starts), ("n_grid", n_grid)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if "trial" in data.dims:
        fits = [fit_dipole(data.isel(trial=i), head, sensors, n_starts, noise_cov, kind, n_grid)
                for i in range(data.sizes["trial"])]
        return xr.concat(fits, dim="trial")
    kind = _data_kind(data, kind)
    head = _check_head(head)
    data, y, names, xyz, forward = _fit_setup(data, head, sensors, kind)
    w = _whitener(noise_cov, y.shape[0])
    yw = w @ y
    u, s, _ = np.linalg.svd(yw, full_matrices=False)
    keep = s > (s[0] * 1e-12 if s.size and s[0] > 0 else np.inf)
    if not keep.any():
        raise ValueError("data are all zero: nothing to fit")
    loc = _fit_location(forward, u[:, keep] * s[keep], w, 0.995 * head.brain_radius, int(n_starts), n_grid)
    return _fit_result(data, y, w, forward(loc), loc, names, xyz, kind, n_starts, noise_cov is not None)


def _fit_result(data: xr.DataArray, y: np.ndarray, w: np.ndarray, g: np.ndarray, loc: np.ndarray,
                names: np.ndarray, xyz: np.ndarray, kind: str, n_starts: int, whitened: bool) -> xr.Dataset:
    """Moments by (whitened) linear least squares at ``loc``, GOF and residuals, labelled."""
    q = np.linalg.lstsq(w @ g, w @ y, rcond=1e-8)[0]  # (3, n_time) nA um
    fitted = g @ q
    resid = y - fitted
    gof = 100 * (1 - np.sum(resid ** 2) / np.sum(y ** 2))
    gof_t = 100 * (1 - np.sum(resid ** 2, axis=0) / np.maximum(np.sum(y ** 2, axis=0), 1e-300))
    uo, _, _ = np.linalg.svd(q, full_matrices=False)
    orient = uo[:, 0] * (np.sign(uo[:, 0] @ loc) or 1.0)  # outward radial part positive
    ch_dim = "electrode" if kind == "eeg" else "sensor"
    shape = data.transpose("time", ch_dim, ...).shape
    units = "uV" if kind == "eeg" else "fT"
    t = data["time"]
    ch = _electrode_coords(names, xyz, ch_dim)
    if "component" in data.dims:
        ch["component"] = list(AXES)
    dims = ("time", ch_dim) + (("component",) if "component" in data.dims else ())

    def as_data(v, long):
        return xr.DataArray(v.T.reshape(shape), dims=dims, coords={"time": t, **ch}, attrs={"units": units, "long_name": long})

    return xr.Dataset(
        {"location": ("axis", loc * 1e-3, {"units": "mm", "long_name": "dipole location"}),
         "moment": (("time", "axis"), q.T * 1e-6, {"units": "nA m", "long_name": "dipole moment"}),
         "orientation": ("axis", orient, {"units": "1", "long_name": "principal moment direction"}),
         "amplitude": ("time", (orient @ q) * 1e-6, {"units": "nA m", "long_name": "moment along orientation"}),
         "gof": ((), gof, {"units": "%", "long_name": "goodness of fit, 1 - SSR/SS (unwhitened)"}),
         "gof_time": ("time", gof_t, {"units": "%", "long_name": "goodness of fit per time"}),
         "fitted": as_data(fitted, "fitted data"),
         "residual": as_data(resid, "data - fitted")},
        coords={"axis": list(AXES), "time": t},
        attrs={"kind": kind, "n_starts": int(n_starts), "whitened": int(whitened),
               "method": "variable projection + multi-start scipy least_squares, location in the brain sphere"})


def _dipole_values(x: Any, name: str) -> tuple[np.ndarray, str | None, Any]:
    if isinstance(x, xr.Dataset):
        if "dipole" not in x:
            raise ValueError(f"{name} Dataset has no 'dipole' variable (variables: {list(x.data_vars)})")
        x = x["dipole"]
    if isinstance(x, xr.DataArray):
        return np.asarray(x.transpose("time", ...).values if "time" in x.dims else x.values, dtype=float), \
            x.attrs.get("units"), x
    try:
        return np.asarray(x, dtype=float), None, None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array or xarray of dipole values, got {type(x).__name__}") from None


def fit_scale(simulated: Any, measured: Any, offset: bool = False) -> xr.Dataset:
    """Fit ``measured ~ scale * simulated (+ offset)`` by linear least squares.

    The inverse use of a simulated dipole: how many such cells (or which gain)
    explain a measured dipole time course, as in HNN's dipole scaling.

    Parameters
    ----------
    simulated, measured : array, xarray.DataArray or Dataset with ``dipole``
        Same shape (time first, e.g. (time,) or (time, axis)). With ``units``
        attrs (nA um, nA m, fA m, ...) the simulated values are converted to
        the measured units first; otherwise they are used as they are.
    offset : bool
        Also fit a constant offset (one per non-time column).

    Returns
    -------
    xarray.Dataset
        ``scale`` (1), ``offset`` (measured units), ``fitted``, ``residual``,
        ``rmse``, ``r`` (Pearson) and ``explained`` (% variance).

    Examples
    --------
    >>> round(fields.fit_scale(np.sin(np.arange(50.)), 3 * np.sin(np.arange(50.)))["scale"].item(), 6)
    3.0
    """
    s, s_units, s_da = _dipole_values(simulated, "simulated")
    m, m_units, m_da = _dipole_values(measured, "measured")
    if (s_da is not None and m_da is not None and "time" in s_da.coords and "time" in m_da.coords
            and s_da.sizes["time"] == m_da.sizes["time"]
            and not np.allclose(s_da["time"].values, m_da["time"].values)):
        raise ValueError("simulated and measured have different time coordinates; resample one onto the other "
                         "first (e.g. simulated.interp(time=measured.time))")
    if s_units in _DIPOLE_UNITS and m_units in _DIPOLE_UNITS:
        s = s * _DIPOLE_UNITS[s_units] / _DIPOLE_UNITS[m_units]
    if s.shape != m.shape or s.size == 0:
        raise ValueError(f"simulated has shape {s.shape} but measured has shape {m.shape}: mismatched shapes "
                         f"(resample one onto the other's time grid first)")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(m))):
        raise ValueError("simulated and measured must be finite")
    s2, m2 = s.reshape(len(s), -1), m.reshape(len(m), -1)
    sc, mc = (s2 - s2.mean(0), m2 - m2.mean(0)) if offset else (s2, m2)
    denom = np.sum(sc ** 2)
    if denom == 0:
        raise ValueError("simulated dipole is constant (zero after removing the offset): no scale can be fitted")
    scale = float(np.sum(sc * mc) / denom)
    off = (m2.mean(0) - scale * s2.mean(0)) if offset else np.zeros(s2.shape[1])
    fitted = (scale * s2 + off).reshape(m.shape)
    resid = m - fitted
    r = float(np.corrcoef(s.ravel(), m.ravel())[0, 1]) if s.size > 1 else np.nan
    explained = 100 * (1 - np.sum(resid ** 2) / np.sum((m2 - m2.mean(0)) ** 2))
    units = m_units or "same as measured"
    template = m_da.transpose("time", ...) if m_da is not None and "time" in m_da.dims else m_da
    like = (lambda v, long: template.copy(data=v).assign_attrs(units=units, long_name=long)) if template is not None \
        else (lambda v, long: xr.DataArray(v, dims=[f"dim_{i}" for i in range(v.ndim)], attrs={"units": units, "long_name": long}))
    return xr.Dataset(
        {"scale": ((), scale, {"units": "1", "long_name": "measured / simulated scale factor"}),
         "offset": ("column", off, {"units": units}),
         "fitted": like(fitted, "scale * simulated + offset"),
         "residual": like(resid, "measured - fitted"),
         "rmse": ((), float(np.sqrt(np.mean(resid ** 2))), {"units": units}),
         "r": ((), r, {"units": "1", "long_name": "Pearson correlation"}),
         "explained": ((), explained, {"units": "%", "long_name": "variance explained"})},
        attrs={"offset_fitted": int(offset)})


# ----------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------
def _plane(xyz: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection from the vertex; the equator maps to radius 1."""
    unit = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    theta = np.arccos(np.clip(unit[:, 2], -1, 1)) / (np.pi / 2)
    az = np.arctan2(unit[:, 1], unit[:, 0])
    return np.stack([theta * np.cos(az), theta * np.sin(az)], axis=1)


def _figure(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        return fig, ax
    return ax.figure, ax


def plot_topography(eeg_at_time: Any, montage: Any = None, ax: Any = None, cmap: str = "RdBu_r",
                    vmax: float | None = None, names: bool = False, title: str | None = None):
    """Scalp topography of EEG (or MEG) values at one time.

    Parameters
    ----------
    eeg_at_time : xarray.DataArray or array
        One value per electrode, e.g. ``fields.eeg(...).sel(time=10.0)``.
    montage : montage name, Dataset or (n, 3) array, optional
        Electrode positions; default the DataArray's x/y/z coords.
    ax : matplotlib Axes, optional
    cmap : str
    vmax : float, optional
        Symmetric color limit; default max |value|.
    names : bool
        Label the electrodes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fields.plot_topography(out.isel(time=100), "biosemi64")
    """
    from scipy.interpolate import RBFInterpolator

    vals, labels, xyz, units = _topo_inputs(eeg_at_time, montage)
    fig, ax = _figure(ax)
    pts = _plane(xyz)
    lim = max(1.0, float(np.abs(pts).max()) * 1.05)
    gx, gy = np.meshgrid(np.linspace(-lim, lim, 101), np.linspace(-lim, lim, 101))
    inside = np.hypot(gx, gy) <= lim
    z = np.full(gx.shape, np.nan)
    z[inside] = RBFInterpolator(pts, vals, kernel="thin_plate_spline", smoothing=1e-9)(
        np.c_[gx[inside], gy[inside]])
    vmax = float(np.abs(vals).max()) if vmax is None else _as_float(vmax, "vmax", units)
    im = ax.contourf(gx, gy, z, levels=np.linspace(-vmax, vmax, 21) if vmax > 0 else 21, cmap=cmap, extend="both")
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), "k", lw=1.5)
    ax.plot([-0.1, 0, 0.1], [0.99, 1.12, 0.99], "k", lw=1.5)  # nose
    ax.plot(pts[:, 0], pts[:, 1], "k.", ms=3)
    if names:
        for (px, py), label in zip(pts, labels):
            ax.annotate(str(label), (px, py), fontsize=6, ha="center", va="bottom")
    ax.set_aspect("equal")
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.8, label=units)
    ax.set_title(title or "")
    return fig


def _topo_inputs(values: Any, montage_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    if isinstance(values, xr.DataArray):
        extra = [d for d in values.dims if values.sizes[d] > 1 and d not in ("electrode", "sensor")]
        if extra:
            raise ValueError(f"plot_topography needs one value per electrode; select one time first "
                             f"(e.g. eeg.sel(time=...)), got dims {values.dims}")
        source = values if montage_ is None else montage_
        units = str(values.attrs.get("units", ""))
        vals = np.asarray(values.squeeze().values, dtype=float).ravel()
    else:
        if montage_ is None:
            raise ValueError("plot_topography needs montage= when values are a plain array")
        source, units, vals = montage_, "", np.asarray(values, dtype=float).ravel()
    labels, xyz = _channels(source, DEFAULT_RADII[3])
    if len(xyz) != vals.size:
        raise ValueError(f"{vals.size} values but {len(xyz)} electrode positions: mismatched shapes")
    return vals, labels, xyz, units


def plot_laminar(data: xr.DataArray, ax: Any = None, cmap: str = "RdBu_r", vmax: float | None = None,
                 title: str | None = None):
    """Laminar LFP image: time on x, contact depth (z, um) on y.

    Parameters
    ----------
    data : xarray.DataArray
        ``lfp`` (time, electrode) from :func:`lfp` with a laminar probe.
    ax : matplotlib Axes, optional
    cmap : str
    vmax : float, optional
        Symmetric color limit (data units); default the 99th percentile of
        |value|, so that spikes near the soma do not wash out synaptic fields.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fields.plot_laminar(fields.lfp(ds, cell, fields.laminar_probe(20, 100.0, origin=(50, 0, 1900))))
    """
    if not isinstance(data, xr.DataArray) or set(data.dims) != {"time", "electrode"}:
        raise ValueError(f"plot_laminar needs an lfp DataArray with dims (time, electrode), got "
                         f"{getattr(data, 'dims', type(data).__name__)}; select one trial first")
    fig, ax = _figure(ax)
    da = data.transpose("electrode", "time")
    depth = np.asarray(da["z"].values if "z" in da.coords else np.arange(da.sizes["electrode"]), dtype=float)
    order = np.argsort(depth)
    vals = da.values[order]
    vmax = float(np.percentile(np.abs(vals), 99)) if vmax is None else _as_float(vmax, "vmax", "mV")
    im = ax.pcolormesh(da["time"].values, depth[order], vals, cmap=cmap, vmin=-vmax, vmax=vmax, shading="nearest")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("z (um)")
    fig.colorbar(im, ax=ax, label=f"LFP ({data.attrs.get('units', 'mV')})", extend="both")
    ax.set_title(title or "")
    return fig


# ----------------------------------------------------------------------------
# torch layers (built on first use so that importing mtlneuron does not load torch)
# ----------------------------------------------------------------------------
_TORCH_CLASSES = ("LinearOperator", "VmemToImem", "CurrentDipole", "LFPOperator", "EEGOperator")


def _build_torch_classes() -> dict:
    import torch

    class LinearOperator(torch.nn.Module):
        """A fixed linear map over the last axis, ``y = x @ matrix.T`` (no trainable parameters).

        The matrix is a float64 buffer (moves with ``.to(device)``); inputs of
        any float dtype are accepted and the output has the input's dtype.
        Differentiable, so losses on LFP/EEG can train a voltage surrogate.

        Parameters
        ----------
        matrix : (n_out, n_in) array
        in_units, out_units : str
            Documentation of the units.
        """

        def __init__(self, matrix: Any, in_units: str = "", out_units: str = ""):
            super().__init__()
            m = np.asarray(matrix, dtype=np.float64)
            if m.ndim != 2:
                raise ValueError(f"matrix must be 2-D (n_out, n_in), got shape {m.shape}")
            self.register_buffer("matrix", torch.as_tensor(m))
            self.in_units, self.out_units = in_units, out_units

        @property
        def in_features(self) -> int:
            return int(self.matrix.shape[1])

        @property
        def out_features(self) -> int:
            return int(self.matrix.shape[0])

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
                raise TypeError(f"{type(self).__name__} expects a floating-point torch.Tensor, got "
                                f"{getattr(x, 'dtype', type(x).__name__)}")
            if x.shape[-1] != self.in_features:
                raise ValueError(f"{type(self).__name__}: last axis of the input has size {x.shape[-1]}, "
                                 f"expected {self.in_features} ({self.in_units})")
            return x @ self.matrix.to(dtype=x.dtype).T

        def extra_repr(self) -> str:
            return f"in_features={self.in_features} ({self.in_units}), out_features={self.out_features} ({self.out_units})"

    class VmemToImem(LinearOperator):
        """Membrane currents from voltages: ``imem (nA) = v (mV) @ M.T`` over the last (segment) axis.

        Parameters
        ----------
        cell : Cell
        """

        def __init__(self, cell: Any):
            super().__init__(vmem_to_imem_matrix(cell), "mV per segment", "nA per segment")

    class CurrentDipole(LinearOperator):
        """Current dipole moment (nA um, x/y/z) from ``imem`` (nA), or from ``v`` (mV).

        Parameters
        ----------
        cell : Cell
        placement : Placement, optional
            Rotates the dipole.
        from_voltage : bool
            Input is ``v`` (mV): the matrix is ``D @ M``.
        """

        def __init__(self, cell: Any, placement: Placement | None = None, from_voltage: bool = False):
            super().__init__(*_current_or_voltage_input(dipole_matrix(cell, placement), cell, from_voltage),
                             "nA um")

    class LFPOperator(LinearOperator):
        """LFP (mV) at electrodes from ``imem`` (nA) or ``v`` (mV), same model as :func:`lfp`.

        Parameters
        ----------
        cell : Cell
        electrodes : (n, 3) array (um)
        method : {"linesource", "pointsource"}
        sigma : float (S/m)
        placement : Placement, optional
        from_voltage : bool
        """

        def __init__(self, cell: Any, electrodes: Any, method: str = "linesource", sigma: float = 0.3,
                     placement: Placement | None = None, from_voltage: bool = False):
            import lfpykit

            sigma = _as_sigma(sigma)
            _check_choice(method, "method", _LFP_METHODS)
            xyz = _as_points(electrodes, "electrodes")
            pl = placement if placement is not None else Placement(cell)
            if not isinstance(pl, Placement):
                raise TypeError(f"placement must be a fields.Placement, got {type(pl).__name__}")
            model = lfpykit.LineSourcePotential if method == "linesource" else lfpykit.PointSourcePotential
            m = model(pl.cell_geometry(), x=xyz[:, 0].copy(), y=xyz[:, 1].copy(), z=xyz[:, 2].copy(),
                      sigma=sigma).get_transformation_matrix()
            super().__init__(*_current_or_voltage_input(m, cell, from_voltage), "mV")

    class EEGOperator(LinearOperator):
        """EEG (uV) from a dipole (nA um, x/y/z) at a fixed location in the four-sphere head.

        Parameters
        ----------
        head : FourSphere, optional
        electrodes : montage name, names, xarray or (n, 3) array
        dipole_location : (3,) float, optional (um)
        reference : {None, "average"}
        """

        def __init__(self, head: FourSphere | None = None, electrodes: Any = "10-20",
                     dipole_location: Any = None, reference: str | None = None):
            g = lead_field(electrodes, dipole_location, head, reference)
            super().__init__(g.values, "nA um", "uV")
            self.electrodes = list(g["electrode"].values)

    classes = {c.__name__: c for c in (LinearOperator, VmemToImem, CurrentDipole, LFPOperator, EEGOperator)}
    for name, cls in classes.items():  # picklable as mtlneuron.fields.<name>
        cls.__module__, cls.__qualname__ = __name__, name
    return classes


def _current_or_voltage_input(matrix: np.ndarray, cell: Any, from_voltage: bool) -> tuple[np.ndarray, str]:
    """A linear map on membrane currents (nA), or on voltages (mV) through I_m = M @ V."""
    if from_voltage:
        return matrix @ vmem_to_imem_matrix(cell), "mV"
    return matrix, "nA"


def __getattr__(name: str):
    if name in _TORCH_CLASSES:
        classes = _build_torch_classes()
        globals().update(classes)
        return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_TORCH_CLASSES))
