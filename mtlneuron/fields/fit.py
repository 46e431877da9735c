"""Equivalent current dipole fitting to EEG/MEG: one fixed dipole, or one per time sample (moving)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr

from ..conventions import AXES
from .arrays import channel_coords
from .checks import check_choice, positive_int
from .eeg_model import check_reference, reference_matrix
from .fit_search import candidates, local_fit, pick_starts, projection_costs, projection_costs_each
from .head import FourSphere, as_head
from .kernels import four_sphere_gain, meg_gain, meg_gain_along
from .mne_interop import dipole_to_mne, from_mne, is_mne
from .montages import channels, eeg_channels

__all__ = ["DipoleFit", "fit_dipole"]

_COMMON_TOL = 1e-6  # data whose channel mean is below this fraction of their RMS "sum to zero"


class DipoleFit(xr.Dataset):
    """The xarray Dataset returned by :func:`fit_dipole`, plus :meth:`to_mne`."""

    __slots__ = ()

    def to_mne(self, name: str | None = None):
        """This fit as an ``mne.Dipole`` (positions in m in the head frame, amplitudes in A m, times in s)."""
        return dipole_to_mne(self, name)


@dataclass
class _Problem:
    """What a fit needs: data rows (channels), the forward model and the re-referencing applied to both."""

    data: xr.DataArray
    y: np.ndarray  # (n_row, n_time), data units, in the fit's reference
    names: np.ndarray
    xyz: np.ndarray
    forward: Callable[[np.ndarray], np.ndarray]  # (L, 3) um -> (L, n_row, 3), data units per nA um
    grid_key: tuple
    reference: str  # as stated or given
    fit_reference: str  # "average", "infinity" (EEG) or "none" (MEG)
    ref: np.ndarray | None  # (n_row, n_row) re-referencing applied to data and forward (EEG)


def _data_kind(data: xr.DataArray, kind: str | None) -> str:
    if kind is not None:
        return check_choice(kind, "kind", ["eeg", "meg"])
    units = str(data.attrs.get("units", ""))
    if data.name == "eeg" or units == "uV":
        return "eeg"
    if data.name == "meg" or units == "fT":
        return "meg"
    raise ValueError(f"cannot tell EEG from MEG for DataArray {data.name!r} (units {units!r}); pass kind='eeg' or 'meg'")


def _fit_reference(data: xr.DataArray, reference: Any, names: np.ndarray, y: np.ndarray) -> tuple[str, str]:
    """(stated reference, reference the fit uses): "average" unless the data are known to be reference-free.

    Average-referencing data and lead field is exact for data with any common reference
    (an electrode, linked mastoids, the average), so only reference-free potentials keep theirs.
    """
    stated = data.attrs.get("reference")
    explicit = not (isinstance(reference, str) and reference == "auto")
    if explicit:
        given = "infinity" if reference is None else check_reference(reference, names)
        if stated not in (None, "unknown", given):
            warnings.warn(f"reference={reference!r} overrides the data's stated reference {stated!r}", stacklevel=3)
        stated = given
    elif stated is None:
        stated = "unknown"
    mean = y.mean(axis=0)
    sums_to_zero = bool(np.any(y)) and np.sqrt(np.mean(mean ** 2)) < _COMMON_TOL * np.sqrt(np.mean(y ** 2))
    if stated == "infinity":
        if not sums_to_zero:
            return stated, "infinity"
        msg = ("the EEG data sum to ~0 over electrodes, as average-referenced data do, but the reference is "
               "stated as reference-free (against infinity)")
        if explicit:
            raise ValueError(msg + "; pass reference='average' (or the electrode they are referenced to)")
        warnings.warn(msg + " in their attrs; fitting them in the average reference", stacklevel=3)
        return "average", "average"
    if stated == "unknown":
        warnings.warn("the EEG reference is unknown (no reference= argument, no 'reference' attr): fitting in the "
                      "average reference, which is exact for data with any common reference; pass "
                      "reference=None if they are reference-free potentials (against infinity)"
                      + (" (they sum to ~0 over electrodes: average reference?)" if sums_to_zero else ""),
                      stacklevel=3)
    return stated, "average"


def _setup(data: xr.DataArray, head: FourSphere, sensors: Any, kind: str, reference: Any) -> _Problem:
    ch_dim = "electrode" if kind == "eeg" else "sensor"
    if ch_dim not in data.dims:
        raise ValueError(f"{kind.upper()} data needs a {ch_dim!r} dimension, got dims {data.dims}")
    extra = set(data.dims) - {ch_dim, "time", "component"}
    if extra:
        raise ValueError(f"fit_dipole takes (time, {ch_dim}) data; select or average dims {sorted(extra)} first")
    source = data if sensors is None else sensors
    data = data if "time" in data.dims else data.expand_dims(time=[0.0])
    if kind == "eeg":
        names, xyz = eeg_channels(source, head)
        if len(xyz) != data.sizes[ch_dim]:
            raise ValueError(f"{len(xyz)} electrodes given but the data has {data.sizes[ch_dim]}: mismatched shapes")
        y = data.transpose(ch_dim, "time").values.astype(float)
        if not np.all(np.isfinite(y)):
            raise ValueError("data contains NaN or infinite values")
        stated, fit_ref = _fit_reference(data, reference, names, y)
        ref = reference_matrix("average", names) if fit_ref == "average" else None
        y = y if ref is None else ref @ y
        radii, sigmas = head.radii, head.sigmas

        def forward(locs):
            return four_sphere_gain(radii, sigmas, xyz, locs)
        key = ("eeg", radii, sigmas, xyz.tobytes())
        return _Problem(data, y, names, xyz, forward, key, stated, fit_ref, ref)
    names, xyz = channels(source, head.scalp_radius, "sensor")
    if len(xyz) != data.sizes[ch_dim]:
        raise ValueError(f"{len(xyz)} sensors given but the data has {data.sizes[ch_dim]}: mismatched shapes")
    model = data.attrs.get("model", "spherical")
    component = "xyz" if "component" in data.dims else data.attrs.get("component", "radial")
    if component == "normal":
        src = data if sensors is None else sensors
        normals = np.stack([np.asarray(src[f"n{c}"].values, dtype=float) for c in AXES], axis=1)
    else:
        normals = None if component == "xyz" else xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    y = data.transpose(ch_dim, *(["component"] if component == "xyz" else []), "time").values.astype(float)
    y = y.reshape(-1, y.shape[-1])
    if not np.all(np.isfinite(y)):
        raise ValueError("data contains NaN or infinite values")
    if reference not in ("auto", None):
        raise ValueError(f"reference={reference!r} is for EEG; MEG has no reference")

    def forward(locs):
        if normals is not None:
            return meg_gain_along(xyz, normals, locs, model)
        g = meg_gain(xyz, locs, model)
        return g.reshape(g.shape[0], -1, 3)
    key = ("meg", model, xyz.tobytes(), None if normals is None else normals.tobytes())
    return _Problem(data, y, names, xyz, forward, key, "none", "none", None)


def _whitener(noise_cov: Any, n: int, ref: np.ndarray | None) -> np.ndarray | None:
    """W = C^(-1/2) of the (re-referenced) noise covariance (pseudo-inverse square root); None without one."""
    if noise_cov is None:
        return None
    c = np.asarray(noise_cov, dtype=float)
    c = np.diag(c) if c.ndim == 1 else c
    if c.shape != (n, n):
        raise ValueError(f"noise_cov must be ({n}, {n}) (or {n} variances), got shape {np.shape(noise_cov)}")
    if not np.allclose(c, c.T, rtol=1e-8, atol=1e-12 * np.abs(c).max()):
        raise ValueError("noise_cov must be symmetric")
    lam, vec = np.linalg.eigh(c)
    if lam.min() < -1e-8 * lam.max() or lam.max() <= 0:
        raise ValueError("noise_cov must be positive semi-definite and non-zero")
    if ref is not None:
        lam, vec = np.linalg.eigh(ref @ c @ ref.T)
    keep = lam > 1e-10 * lam.max()
    return (vec[:, keep] / np.sqrt(lam[keep])) @ vec[:, keep].T


_GRID_CACHE: dict = {}  # (sensors, head, grid) -> (grid points, raw lead fields); the last 16


def _grid_for(problem: _Problem, rmax: float, n_grid: int) -> tuple[np.ndarray, np.ndarray]:
    key = (problem.grid_key, rmax, n_grid)
    if key not in _GRID_CACHE:
        if len(_GRID_CACHE) >= 16:
            _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
        pts = candidates(rmax, n_grid)
        _GRID_CACHE[key] = (pts, problem.forward(pts))
    return _GRID_CACHE[key]


def _weighting(problem: _Problem, w: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """Lead fields (..., n, 3) -> re-referenced (average: minus the channel mean) and whitened."""
    def apply(g):
        if problem.ref is not None:
            g = g - g.mean(axis=-2, keepdims=True)
        return g if w is None else w @ g
    return apply


def _fit_fixed(problem: _Problem, w: np.ndarray | None, rmax: float, n_starts: int, n_grid: int) -> np.ndarray:
    """One location for all samples: grid, then ``n_starts`` local fits from the best distinct grid points."""
    weigh = _weighting(problem, w)
    yw = problem.y if w is None else w @ problem.y
    u, s, _ = np.linalg.svd(yw, full_matrices=False)
    keep = s > (s[0] * 1e-12 if s.size and s[0] > 0 else np.inf)
    if not keep.any():
        raise ValueError("data are all zero: nothing to fit")
    yc = u[:, keep] * s[keep]  # the data's column space: same residual for every location, fewer columns

    def forward(locs):
        return weigh(problem.forward(locs))

    pts, g = _grid_for(problem, rmax, n_grid)
    costs = projection_costs(weigh(g), yc).sum(axis=1)
    locs, final = local_fit(forward, yc, np.stack(pick_starts(pts, costs, n_starts, 0.2 * rmax)), rmax)
    return locs[int(np.argmin(final))]


def _fit_moving(problem: _Problem, w: np.ndarray | None, rmax: float, n_grid: int) -> np.ndarray:
    """One location per sample, all samples fitted together from their best grid points; samples that a
    neighbouring sample's location explains better are fitted again from there."""
    weigh = _weighting(problem, w)
    yw = problem.y if w is None else w @ problem.y

    def forward(locs):
        return weigh(problem.forward(locs))

    pts, g = _grid_for(problem, rmax, n_grid)
    costs = projection_costs(weigh(g), yw)  # (L, T)
    live = np.flatnonzero(np.any(yw, axis=0))
    if not live.size:
        raise ValueError("data are all zero: nothing to fit")
    y = np.swapaxes(yw[:, live], 0, 1)[:, :, None]  # (T', n, 1): one fit per sample, all at once
    locs, cost = local_fit(forward, y, pts[np.argmin(costs[:, live], axis=0)], rmax)
    for _ in range(3):  # a sample that its neighbour's location explains better restarts from there
        trial = np.concatenate([locs[:1], locs[:-1]]), np.concatenate([locs[1:], locs[-1:]])
        retry, better_start = np.zeros(len(live), dtype=bool), locs.copy()
        for other in trial:
            c = projection_costs_each(forward(other), y)
            take = c < cost * (1 - 1e-9) - 1e-300
            retry |= take
            better_start[take] = other[take]
        if not retry.any():
            break
        new_locs, new_cost = local_fit(forward, y[retry], better_start[retry], rmax)
        keep = new_cost < cost[retry]
        locs[np.flatnonzero(retry)[keep]], cost[np.flatnonzero(retry)[keep]] = new_locs[keep], new_cost[keep]
    out = np.full((yw.shape[1], 3), np.nan)
    out[live] = locs
    return out


FREE_PARAMETERS = 6  # a dipole at one time: 3 location + 3 moment coordinates


def check_channel_count(n_independent: int, kind: str) -> None:
    """Refuse a fit with no more independent signals than a dipole's free parameters.

    With ``n <= 6`` a dipole can explain the data exactly from many wrong
    locations (goodness of fit 100 %); average-referenced EEG has one signal
    fewer than electrodes, each MEG vector sensor gives three.
    """
    if n_independent <= FREE_PARAMETERS:
        raise ValueError(f"fit_dipole needs more than {FREE_PARAMETERS} independent {kind.upper()} signals (a "
                         f"dipole has {FREE_PARAMETERS} free parameters: location and moment) but the data give "
                         f"{n_independent}; with so few channels any location fits perfectly. Use more channels")


def fit_dipole(data: Any, head: FourSphere | None = None, sensors: Any = None, n_starts: int = 5,
               noise_cov: Any = None, kind: str | None = None, n_grid: int = 200, reference: Any = "auto",
               mode: str = "fixed") -> DipoleFit:
    """Fit an equivalent current dipole to EEG or MEG.

    ``mode="fixed"``: one location for the whole time course, a free moment
    per sample. ``mode="moving"``: a location and moment per sample (MNE's
    ``fit_dipole``). Locations are found by nonlinear least squares
    (Levenberg-Marquardt, all starts or all samples in one batch) from the best
    points of a grid filling the brain (lead fields of the grid are computed in
    one vectorized call and kept for the next fit with the same sensors), constrained inside the brain
    sphere (radius ``0.995 * head.brain_radius``) by a smooth map of R^3 onto
    that ball. At every trial location the moment time course is solved by
    linear least squares and projected out (variable projection), so only 3
    parameters are searched.

    EEG references: average-referencing data and lead field is exact for data
    with any common reference (an electrode, the average, linked mastoids), so
    the fit uses the average reference unless the data are known to be
    reference-free (against infinity), which keeps their common mode.

    Parameters
    ----------
    data : xarray.DataArray or mne.Evoked
        ``eeg`` (time, electrode) in uV or ``meg`` (time, sensor[, component])
        in fT, e.g. from :func:`eeg` / :func:`meg` (their attrs give the
        reference and MEG model), or an ``mne.Evoked`` (EEG, or magnetometers;
        see :func:`from_mne`); a ``trial`` dim is fitted trial by trial.
    head : FourSphere, optional
    sensors : optional
        Electrode/sensor positions (um), a montage or an mne.Info; default the data's coords.
    n_starts : int
        Local optimizations from the best, mutually distant grid points (fixed mode).
    noise_cov : (n_channel, n_channel) or (n_channel,) array, optional
        Noise covariance (data units squared) for whitening.
    kind : {"eeg", "meg"}, optional
        Default from the data's name or units.
    n_grid : int
        Size of the starting grid.
    reference : "auto", None, "average" or an electrode name
        EEG only. "auto" (default): the data's ``reference`` attr; without one
        the fit warns and uses the average reference (exact for any common
        reference). None: reference-free potentials; data that sum to ~0 over
        electrodes raise ValueError then (they look average-referenced).
    mode : {"fixed", "moving"}

    Returns
    -------
    DipoleFit (an xarray.Dataset with ``.to_mne()`` -> ``mne.Dipole``)
        ``location`` (axis) um, or (time, axis) when moving; ``moment`` (time,
        axis) nA m; ``orientation`` (axis) or (time, axis); ``amplitude`` (time)
        nA m; ``gof`` (%) and ``gof_time`` (time) %, ``fitted`` and
        ``residual`` in data units, in the fit's reference (``attrs["fit_reference"]``).

    Raises
    ------
    ValueError
        For NaN or infinite data, or no more than 6 independent channel signals
        (:func:`check_channel_count`: the fit would be exact at wrong locations).

    Examples
    --------
    >>> p = fields.dipole_dataset(np.outer(np.hanning(40), [3, -2, 8]), units="nA m")
    >>> data = fields.eeg(p, electrodes="biosemi64", dipole_location=(10000, -20000, 60000))
    >>> fit = fields.fit_dipole(data)
    >>> fit["location"].values.round()
    array([ 10000., -20000.,  60000.])
    """
    if is_mne(data, "Evoked"):
        data = from_mne(data, kind, head)
    if not isinstance(data, xr.DataArray):
        raise TypeError(f"data must be an xarray.DataArray (eeg or meg) or an mne.Evoked, got {type(data).__name__}")
    positive_int(n_starts, "n_starts")
    positive_int(n_grid, "n_grid")
    check_choice(mode, "mode", ["fixed", "moving"])
    if "trial" in data.dims:
        fits = [fit_dipole(data.isel(trial=i), head, sensors, n_starts, noise_cov, kind, n_grid, reference, mode)
                for i in range(data.sizes["trial"])]
        return xr.concat(fits, dim="trial")
    kind = _data_kind(data, kind)
    head = as_head(head)
    problem = _setup(data, head, sensors, kind, reference)
    check_channel_count(problem.y.shape[0] - (problem.ref is not None), kind)
    w = _whitener(noise_cov, problem.y.shape[0], problem.ref)
    rmax = 0.995 * head.brain_radius
    if mode == "fixed":
        loc = _fit_fixed(problem, w, rmax, int(n_starts), n_grid)
    else:
        loc = _fit_moving(problem, w, rmax, n_grid)
    return _fit_result(problem, w, loc, kind, n_starts, noise_cov is not None, mode)


def _fit_result(problem: _Problem, w: np.ndarray, loc: np.ndarray, kind: str, n_starts: int, whitened: bool,
                mode: str) -> DipoleFit:
    """Moments by (whitened) linear least squares at ``loc``, GOF and residuals, labelled."""
    y, data = problem.y, problem.data
    weigh = _weighting(problem, w)
    yw = y if w is None else w @ y
    if mode == "fixed":
        g = problem.forward(loc[None])[0]
        q = np.linalg.lstsq(weigh(g), yw, rcond=1e-8)[0]  # (3, n_time) nA um
        fitted = _weighting(problem, None)(g) @ q
        uo, _, _ = np.linalg.svd(q, full_matrices=False)
        orient = uo[:, 0] * (np.sign(uo[:, 0] @ loc) or 1.0)  # outward radial part positive
        amplitude = orient @ q
        loc_var = ("axis", loc, {"units": "um", "long_name": "dipole location (head frame)"})
        orient_var = ("axis", orient, {"units": "1", "long_name": "principal moment direction"})
    else:
        ok = ~np.isnan(loc[:, 0])
        q = np.zeros((3, y.shape[1]))
        g = problem.forward(loc[ok])  # (T_ok, n, 3)
        gr, gw = _weighting(problem, None)(g), weigh(g)
        for i, t in enumerate(np.flatnonzero(ok)):
            q[:, t] = np.linalg.lstsq(gw[i], yw[:, t], rcond=1e-8)[0]
        fitted = np.zeros_like(y)
        fitted[:, ok] = np.einsum("tna,at->nt", gr, q[:, ok])
        amp = np.linalg.norm(q, axis=0)
        orient = np.where(amp > 0, q / np.where(amp > 0, amp, 1.0), np.nan).T
        amplitude = amp
        loc_var = (("time", "axis"), loc, {"units": "um", "long_name": "dipole location per sample (head frame)"})
        orient_var = (("time", "axis"), orient, {"units": "1", "long_name": "moment direction per sample"})
    resid = y - fitted
    gof = 100 * (1 - np.sum(resid ** 2) / np.sum(y ** 2))
    gof_t = 100 * (1 - np.sum(resid ** 2, axis=0) / np.maximum(np.sum(y ** 2, axis=0), 1e-300))
    ch_dim = "electrode" if kind == "eeg" else "sensor"
    shape = data.transpose("time", ch_dim, ...).shape
    units = "uV" if kind == "eeg" else "fT"
    t = data["time"]
    ch = channel_coords(problem.names, problem.xyz, ch_dim)
    if "component" in data.dims:
        ch["component"] = list(AXES)
    dims = ("time", ch_dim) + (("component",) if "component" in data.dims else ())

    def as_data(v, long):
        return dims, v.T.reshape(shape), {"units": units, "long_name": long}

    return DipoleFit(
        {"location": loc_var,
         "moment": (("time", "axis"), q.T * 1e-6, {"units": "nA m", "long_name": "dipole moment"}),
         "orientation": orient_var,
         "amplitude": ("time", amplitude * 1e-6, {"units": "nA m", "long_name": "moment along orientation"}),
         "gof": ((), gof, {"units": "%", "long_name": "goodness of fit, 1 - SSR/SS (unwhitened)"}),
         "gof_time": ("time", gof_t, {"units": "%", "long_name": "goodness of fit per time"}),
         "fitted": as_data(fitted, "fitted data"),
         "residual": as_data(resid, "data - fitted")},
        coords={"axis": list(AXES), "time": t, **ch},
        attrs={"kind": kind, "mode": mode, "n_starts": int(n_starts), "whitened": int(whitened),
               "reference": problem.reference, "fit_reference": problem.fit_reference, "positions_units": "um",
               "method": "variable projection: grid, then Levenberg-Marquardt on the location in the brain sphere"})
