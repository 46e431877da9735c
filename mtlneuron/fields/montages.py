"""EEG montages from MNE-Python, projected onto the scalp sphere, and the parsing of electrode arguments.

Positions come from ``mne.channels.make_standard_montage`` (files shipped
with MNE, no downloads). Every montage is put on the model's scalp sphere the
same way: a sphere is fitted to the montage's electrode positions (least
squares), and each electrode keeps its direction from that centre at the scalp
radius. MNE's spherical montages (``spherical_10xx``, ``biosemi*``,
``easycap-*``) already lie on a 95-mm sphere centred at the origin, so only
their radius changes; MRI-based ones (``colin27_*``, ``GSN-HydroCel-*``) move
by their deviation from a sphere (RMS ~6 mm), recorded in the attrs.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import as_points
from .arrays import channel_coords
from .checks import as_float
from .head import FourSphere, as_head
from .mne_objects import eeg_positions, is_mne

__all__ = ["MONTAGES", "montage", "fit_sphere", "project_to_scalp", "channels", "eeg_channels"]

# our montage names -> (MNE montage, channel subset or None for all of them)
_NAMED = {
    "10-20": ("spherical_1020", ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
                                 "P7", "P3", "Pz", "P4", "P8", "O1", "O2")),
    "10-10": ("spherical_1010", None),
    "biosemi64": ("biosemi64", None),
}
_ALIASES = {"64": "biosemi64", "10-10-64": "biosemi64"}
_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_BY_NAME = "spherical_1005"  # positions of electrodes given by their 10-05 names
_MIN_FIT = 8  # electrodes needed to fit a sphere to a user's positions


def _mne_name(name: str) -> tuple[str, tuple | None]:
    key = _ALIASES.get(name, name)
    if key in _NAMED:
        return _NAMED[key]
    import mne

    builtin = mne.channels.get_builtin_montages()
    if key not in builtin:
        raise ValueError(f"unknown montage {name!r}; choose from {sorted(_NAMED) + sorted(_ALIASES)}, one of "
                         f"MNE's {builtin}, or give a list of electrode names, an mne.Info or an mne DigMontage")
    return key, None


@lru_cache(maxsize=32)
def _mne_positions(mne_name: str) -> tuple[tuple, np.ndarray]:
    """(names, (n, 3) positions in m) of an MNE built-in montage."""
    import mne

    with warnings.catch_warnings():  # MNE renames its MRI-based montages; the old names still work
        warnings.simplefilter("ignore", FutureWarning)
        pos = mne.channels.make_standard_montage(mne_name).get_positions()["ch_pos"]
    xyz = np.array(list(pos.values()), dtype=float)
    xyz.setflags(write=False)
    return tuple(pos), xyz


class _Montages(Mapping):
    """Montage name -> channel names: ours ("10-20", "10-10", "biosemi64") and MNE's built-in ones (lazy)."""

    def _keys(self) -> list[str]:
        import mne

        return list(_NAMED) + [k for k in mne.channels.get_builtin_montages() if k not in _NAMED]

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if not isinstance(name, str) or name not in self._keys():
            raise KeyError(name)
        mne_name, subset = _mne_name(name)
        return subset if subset is not None else _mne_positions(mne_name)[0]

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"<mtlneuron.fields.MONTAGES: {', '.join(_NAMED)} and MNE's built-in montages>"


MONTAGES = _Montages()


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere through (n, 3) points: centre, radius and RMS distance of the points from it."""
    pts = np.asarray(points, dtype=float)
    a = np.c_[2 * pts, np.ones(len(pts))]
    sol = np.linalg.lstsq(a, (pts ** 2).sum(axis=1), rcond=None)[0]
    centre = sol[:3]
    radius = float(np.sqrt(sol[3] + centre @ centre))
    rms = float(np.sqrt(np.mean((np.linalg.norm(pts - centre, axis=1) - radius) ** 2)))
    return centre, radius, rms


def project_to_scalp(xyz: np.ndarray, radius: float, fit_to: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Electrode positions (any unit) -> directions from a fitted sphere centre, times ``radius`` (um).

    The sphere is fitted to ``fit_to`` (default ``xyz``); with fewer than 8 points the centre is
    taken at the origin. Returns the positions and attrs describing the projection.
    """
    pts = np.asarray(xyz, dtype=float)
    ref = pts if fit_to is None else np.asarray(fit_to, dtype=float)
    if len(ref) >= _MIN_FIT:
        centre, r_fit, rms = fit_sphere(ref)
    else:
        centre = np.zeros(3)
        r_fit = float(np.median(np.linalg.norm(ref, axis=1)))
        rms = float(np.std(np.linalg.norm(ref, axis=1)))
    d = pts - centre
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("an electrode sits at the centre of the fitted head sphere: positions are not on a head")
    attrs = {"projection": "direction from the fitted sphere centre, at the scalp radius"
             if len(ref) >= _MIN_FIT else "direction from the origin (too few electrodes to fit a sphere)",
             "source_sphere_centre": centre.tolist(), "source_sphere_radius": r_fit,
             "source_sphere_rms": rms}
    return d / norm * radius, attrs


def _from_mne(name: Any) -> tuple[list[str], np.ndarray, dict] | None:
    """Names, positions (m) and attrs of a montage given as a name, list of names or MNE object; None otherwise."""
    if isinstance(name, str):
        mne_name, subset = _mne_name(name)
        names, xyz = _mne_positions(mne_name)
        keep = [names.index(n) for n in subset] if subset is not None else list(range(len(names)))
        return [names[i] for i in keep], xyz[keep], {"montage": name, "source": f"MNE {mne_name}", "fit_to": xyz}
    if is_mne(name, "Info", "DigMontage", "Evoked"):
        names, xyz = eeg_positions(name)
        return names, xyz, {"montage": "custom", "source": f"mne.{type(name).__name__}", "fit_to": xyz}
    if isinstance(name, Sequence) and len(name) and all(isinstance(n, str) for n in name):
        all_names, all_xyz = _mne_positions(_BY_NAME)
        lookup = {n.lower(): i for i, n in enumerate(all_names)}
        wanted = [_OLD_NAMES.get(n, n) for n in name]
        unknown = [n for n in wanted if n.lower() not in lookup]
        if unknown:
            raise ValueError(f"unknown electrode name(s) {unknown}; known: the 10-05 names of MNE's {_BY_NAME}")
        idx = [lookup[n.lower()] for n in wanted]
        return [all_names[i] for i in idx], all_xyz[idx], {"montage": "custom", "source": f"MNE {_BY_NAME}",
                                                            "fit_to": all_xyz}
    return None


def montage(name: Any = "10-20", radius: float | None = None, head: FourSphere | None = None) -> xr.Dataset:
    """EEG electrode positions from MNE-Python, projected onto the scalp sphere.

    Parameters
    ----------
    name : str, list of str, mne.Info, mne DigMontage or mne.Evoked
        ``"10-20"`` (the 19 classic electrodes of MNE's ``spherical_1020``),
        ``"10-10"`` (``spherical_1010``, 70), ``"biosemi64"`` (alias ``"64"``:
        BioSemi's published positions as MNE ships them), any MNE built-in
        montage name (``"easycap-M1"``, ``"GSN-HydroCel-128"``, ...), a list of
        10-05 electrode names (old names T3/T4/T5/T6 accepted), or an MNE
        object with EEG positions (its EEG channels, in MNE's head frame).
    radius : float, optional
        Sphere radius (um); default the scalp radius of ``head``.
    head : FourSphere, optional

    Returns
    -------
    xarray.Dataset
        Over ``electrode`` (names): x, y, z (um), theta (polar angle from +z,
        deg), phi (azimuth from +x toward the nose, deg); attrs say where the
        positions come from and how they were projected (``source_sphere_*``
        in the source's units: m for MNE).

    Examples
    --------
    >>> m = fields.montage("biosemi64")
    >>> m.sizes["electrode"], round(float(m["z"].sel(electrode="Cz")))
    (64, 90000)
    """
    radius = as_head(head).scalp_radius if radius is None else as_float(radius, "radius", "um")
    parsed = _from_mne(name)
    if parsed is None:
        raise TypeError(f"montage name must be a str, a list of str or an MNE Info/DigMontage/Evoked, "
                        f"got {type(name).__name__}")
    names, src, attrs = parsed
    xyz, proj = project_to_scalp(src, radius, attrs.pop("fit_to"))
    unit = xyz / radius
    theta = np.degrees(np.arccos(np.clip(unit[:, 2], -1, 1)))
    phi = np.degrees(np.arctan2(unit[:, 1], unit[:, 0]))
    ds = xr.Dataset(
        {"theta": ("electrode", theta, {"units": "deg", "long_name": "polar angle from +z (the vertex)"}),
         "phi": ("electrode", phi, {"units": "deg", "long_name": "azimuth from +x (right) toward +y (nose)"})},
        coords=channel_coords(list(names), xyz))
    ds.attrs = {**attrs, "radius_um": float(radius), "source_units": "m", **proj}
    return ds


def channels(electrodes: Any, radius: float, dim: str = "electrode") -> tuple[np.ndarray, np.ndarray]:
    """(names, xyz um) from a montage (name, names, MNE object), a Dataset/DataArray with x/y/z, or an array."""
    if isinstance(electrodes, (xr.Dataset, xr.DataArray)):
        known = electrodes.coords if isinstance(electrodes, xr.DataArray) else electrodes.variables
        if not all(c in known for c in AXES):
            raise ValueError("electrodes given as xarray need x, y, z variables or coords (um)")
        pos = np.stack([np.asarray(electrodes[c].values, dtype=float) for c in AXES], axis=1)
        pos = as_points(pos, "electrodes")
        edim = electrodes["x"].dims[0] if electrodes["x"].dims else dim
        names = electrodes[edim].values if edim in electrodes.coords else np.arange(len(pos))
        return np.asarray(names), pos
    if isinstance(electrodes, str) or (isinstance(electrodes, (list, tuple)) and electrodes
                                       and all(isinstance(e, str) for e in electrodes)) \
            or type(electrodes).__module__.startswith("mne"):
        m = montage(electrodes, radius=radius)
        return m["electrode"].values, np.stack([m[c].values for c in AXES], axis=1)
    pos = as_points(electrodes, "electrodes")
    return np.arange(len(pos)), pos


def eeg_channels(electrodes: Any, head: FourSphere) -> tuple[np.ndarray, np.ndarray]:
    """EEG electrodes: outside the brain sphere and not outside the scalp (snapped onto it)."""
    names, xyz = channels(electrodes, head.scalp_radius)
    r = np.linalg.norm(xyz, axis=1)
    if r.max() < 0.01 * head.scalp_radius:
        raise ValueError(f"EEG electrodes lie within {r.max():.3g} um of the head centre: positions are in um "
                         f"(the scalp radius is {head.scalp_radius:.0f} um); positions in metres need x 1e6, "
                         f"in mm x 1e3 (or pass an mne.Info / DigMontage, which carry their units)")
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
