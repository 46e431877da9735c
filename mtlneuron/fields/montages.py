"""EEG montages on the scalp sphere and the parsing of electrode/sensor arguments."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import as_points
from .arrays import channel_coords
from .checks import as_float
from .head import FourSphere, as_head

__all__ = ["MONTAGES", "montage", "channels", "eeg_channels"]

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
    radius = as_head(head).scalp_radius if radius is None else as_float(radius, "radius", "um")
    unit = np.stack([_TEN_TEN[n] for n in names])
    xyz = unit * radius
    theta = np.degrees(np.arccos(np.clip(unit[:, 2], -1, 1)))
    phi = np.degrees(np.arctan2(unit[:, 1], unit[:, 0]))
    ds = xr.Dataset(
        {"theta": ("electrode", theta, {"units": "deg", "long_name": "polar angle from the vertex (Cz)"}),
         "phi": ("electrode", phi, {"units": "deg", "long_name": "azimuth from +x (right) toward +y (nose)"})},
        coords=channel_coords(list(names), xyz))
    ds.attrs = {"montage": name if isinstance(name, str) else "custom", "radius_um": float(radius),
                "positions": "idealized spherical 10-10 (Oostenveld & Praamstra 2001 construction)"}
    return ds


def channels(electrodes: Any, radius: float, dim: str = "electrode") -> tuple[np.ndarray, np.ndarray]:
    """(names, xyz um) from a montage name, a list of names, a Dataset/DataArray with x/y/z, or an array."""
    if isinstance(electrodes, str) or (isinstance(electrodes, (list, tuple)) and electrodes
                                       and all(isinstance(e, str) for e in electrodes)):
        m = montage(electrodes, radius=radius)
        return m["electrode"].values, np.stack([m[c].values for c in AXES], axis=1)
    if isinstance(electrodes, (xr.Dataset, xr.DataArray)):
        known = electrodes.coords if isinstance(electrodes, xr.DataArray) else electrodes.variables
        if not all(c in known for c in AXES):
            raise ValueError("electrodes given as xarray need x, y, z variables or coords (um)")
        pos = np.stack([np.asarray(electrodes[c].values, dtype=float) for c in AXES], axis=1)
        pos = as_points(pos, "electrodes")
        edim = electrodes["x"].dims[0] if electrodes["x"].dims else dim
        names = electrodes[edim].values if edim in electrodes.coords else np.arange(len(pos))
        return np.asarray(names), pos
    pos = as_points(electrodes, "electrodes")
    return np.arange(len(pos)), pos


def eeg_channels(electrodes: Any, head: FourSphere) -> tuple[np.ndarray, np.ndarray]:
    """EEG electrodes: outside the brain sphere and not outside the scalp (snapped onto it)."""
    names, xyz = channels(electrodes, head.scalp_radius)
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
