"""Equivalent current dipole fitting to EEG/MEG (fixed location, free moment over time)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import xarray as xr

from ..conventions import AXES
from ..geometry import fibonacci_cap
from .arrays import channel_coords
from .checks import check_choice, positive_int
from .eeg_model import apply_reference
from .head import FourSphere, as_head
from .kernels import four_sphere_gain, meg_gain
from .meg_model import project
from .montages import channels, eeg_channels

__all__ = ["fit_dipole"]


def _data_kind(data: xr.DataArray, kind: str | None) -> str:
    if kind is not None:
        return check_choice(kind, "kind", ["eeg", "meg"])
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
    names, xyz = (eeg_channels(source, head) if kind == "eeg" else channels(source, head.scalp_radius, "sensor"))
    if len(xyz) != data.sizes[ch_dim]:
        raise ValueError(f"{len(xyz)} sensors given but the data has {data.sizes[ch_dim]} {ch_dim}s: mismatched shapes")
    data = data if "time" in data.dims else data.expand_dims(time=[0.0])
    if kind == "eeg":
        y = data.transpose(ch_dim, "time").values.astype(float)
        ref = data.attrs.get("reference", "infinity")

        def forward(loc):
            g = four_sphere_gain(head.radii, head.sigmas, xyz, loc)
            return apply_reference(g, "average" if ref == "average" else None)
    else:
        model = data.attrs.get("model", "spherical")
        component = "xyz" if "component" in data.dims else "radial"
        y = data.transpose(ch_dim, *(["component"] if component == "xyz" else []), "time").values.astype(float)
        y = y.reshape(-1, y.shape[-1])

        def forward(loc):
            return project(meg_gain(xyz, loc, model), xyz, component).reshape(-1, 3)
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
    return np.concatenate([fibonacci_cap(c, np.pi) * f * rmax for f, c in zip(fractions, counts)])


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
    positive_int(n_starts, "n_starts")
    positive_int(n_grid, "n_grid")
    if "trial" in data.dims:
        fits = [fit_dipole(data.isel(trial=i), head, sensors, n_starts, noise_cov, kind, n_grid)
                for i in range(data.sizes["trial"])]
        return xr.concat(fits, dim="trial")
    kind = _data_kind(data, kind)
    head = as_head(head)
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
    ch = channel_coords(names, xyz, ch_dim)
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
