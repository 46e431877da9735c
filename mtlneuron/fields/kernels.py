"""Vectorized numerics of the four-sphere EEG and the spherical / infinite MEG lead fields.

EEG: the corrected four-sphere series of Naess et al. (2017), as in LFPykit's
``FourSphereVolumeConductor``. Every series coefficient is proportional to
``(rz / r1) ** (n + 1)`` (rz: the dipole's distance from the centre, r1: the
brain radius), so the location-free part is tabulated once per electrode
radius and the Legendre sums run by recurrence over all (location, electrode)
pairs at once. MEG: Sarvas (1987) for the spherical conductor, Biot-Savart for
the infinite one, in closed form. Units: positions in um, lead fields in uV or
fT per nA um. Both are tested against LFPykit and MNE-Python.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["MU0", "SERIES_TOL", "four_sphere_coefficients", "four_sphere_terms", "series_table", "series_length",
           "four_sphere_gain", "meg_gain", "meg_gain_along"]

MU0 = 4e-7 * np.pi  # T m / A, permeability of free space (LFPykit's default)
SERIES_TOL = 1e-12  # relative size of the neglected tail of the four-sphere series
_N_CAP = 1 << 14  # most terms ever summed (dipoles within ~1 um of a CSF electrode need more)


def four_sphere_coefficients(radii, sigmas, rz: float, n: np.ndarray) -> dict:
    """LFPykit's corrected four-sphere series coefficients, vectorized over n (Naess et al. 2017)."""
    r1, r2, r3, r4 = radii
    s1, s2, s3, s4 = sigmas
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


def four_sphere_terms(radii, co: dict, n: np.ndarray, r: float) -> np.ndarray:
    """Series terms K_n(r) at electrode radius r (CSF, skull or scalp)."""
    r1, r2, r3, r4 = radii
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


@lru_cache(maxsize=64)
def series_table(radii: tuple, sigmas: tuple, r: float) -> np.ndarray:
    """K_n(r) / (rz / r1) ** (n + 1) for n = 1 .. 2**14: the location-free part of the series."""
    n = np.arange(1, _N_CAP + 1, dtype=float)
    table = four_sphere_terms(radii, four_sphere_coefficients(radii, sigmas, radii[0], n), n, r)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=64)
def _log_weights(radii: tuple, sigmas: tuple, r: float) -> np.ndarray:
    """log of the bound |K_n| n (n + 1) / 2 on term n of the sums (the largest P_n' is n (n + 1) / 2)."""
    n = np.arange(1, _N_CAP + 1, dtype=float)
    with np.errstate(divide="ignore"):
        out = np.log(np.abs(series_table(radii, sigmas, r)) * n * (n + 1) / 2 + 1e-300)
    out.setflags(write=False)
    return out


def series_length(radii, sigmas, electrode_radii, rho_max: float, tol: float = SERIES_TOL) -> int:
    """Terms needed so that the neglected tail is below ``tol`` of the sum, at every electrode radius."""
    radii, sigmas = tuple(map(float, radii)), tuple(map(float, sigmas))
    log_rho = np.log(max(float(rho_max), 1e-300))
    needed = 1
    for r in np.unique(np.asarray(electrode_radii, dtype=float)):
        full = _log_weights(radii, sigmas, float(r))
        for length in (512, _N_CAP):  # most series end early: look at the first terms first
            log_w = full[:length] + np.arange(2, length + 2) * log_rho
            w = np.exp(log_w - log_w.max())
            tail = np.cumsum(w[::-1])[::-1]  # tail[k]: sum of terms k+1 .. length
            if length == _N_CAP or tail[-1] < tol * tail[0]:
                break
        big = np.flatnonzero(tail > tol * tail[0])
        needed = max(needed, int(min(length, big[-1] + 2 if big.size else 1)))
    return needed


def four_sphere_gain(radii, sigmas, electrodes: np.ndarray, locations: np.ndarray) -> np.ndarray:
    """Four-sphere lead field in uV per nA um: (L, E, 3) for (L, 3) locations, (E, 3) for one (3,).

    Electrodes (E, 3) um outside the brain sphere; locations inside it, not at the centre.
    """
    radii, sigmas = tuple(map(float, radii)), tuple(map(float, sigmas))
    el = np.asarray(electrodes, dtype=float)
    locs = np.asarray(locations, dtype=float)
    single = locs.ndim == 1
    locs = np.atleast_2d(locs)
    rz = np.linalg.norm(locs, axis=1)
    zhat = locs / rz[:, None]
    rho = (rz / radii[0])[:, None]  # (L, 1)
    r_el = np.linalg.norm(el, axis=1)
    radius, inverse = np.unique(r_el, return_inverse=True)
    n_terms = series_length(radii, sigmas, radius, float(rho.max()))
    tables = np.stack([series_table(radii, sigmas, float(r))[:n_terms] for r in radius], axis=1)[:, inverse]
    along = zhat @ el.T  # (L, E): r_el cos(theta)
    x = np.clip(along / r_el, -1.0, 1.0)
    # Legendre recurrences: P_{n+1} = ((2n+1) x P_n - n P_{n-1}) / (n+1); P'_{n+1} = P'_{n-1} + (2n+1) P_n
    p_prev, p = np.ones_like(x), x.copy()
    d_prev, d = np.zeros_like(x), np.ones_like(x)
    power = rho ** 2  # (rz / r1) ** (n + 1) at n = 1
    s_rad = np.zeros_like(x)  # sum_n n K_n P_n(x)
    s_tan = np.zeros_like(x)  # sum_n K_n P_n'(x)
    a, tmp = np.empty_like(x), np.empty_like(x)
    for k in range(1, n_terms + 1):
        np.multiply(tables[k - 1], power, out=a)
        s_tan += np.multiply(a, d, out=tmp)
        a *= k
        s_rad += np.multiply(a, p, out=tmp)
        d_prev += (2 * k + 1) * p  # becomes P'_{k+1}
        np.multiply(x, p, out=tmp)
        tmp *= (2 * k + 1) / (k + 1)
        p_prev *= k / (k + 1)
        tmp -= p_prev  # P_{k+1}
        p_prev, p, tmp = p, tmp, p_prev
        d_prev, d = d, d_prev
        power *= rho
    # radial part along zhat; tangential sqrt(1 - x^2) sum K_n P_n'(x) along the unit vector
    # perpendicular to zhat toward the electrode, i.e. (el - along zhat) / r_el
    perp = (el[None, :, :] - along[:, :, None] * zhat[:, None, :]) / r_el[None, :, None]
    gain = s_rad[:, :, None] * zhat[:, None, :] + s_tan[:, :, None] * perp
    gain *= (1e3 / (4 * np.pi * sigmas[0] * rz ** 2))[:, None, None]
    return gain[0] if single else gain


def meg_gain(sensors: np.ndarray, locations: np.ndarray, model: str) -> np.ndarray:
    """MEG lead field in fT per nA um, (L, S, 3 field, 3 axis) for (L, 3) locations; (S, 3, 3) for one (3,).

    ``model="spherical"``: Sarvas (1987), the field outside a spherically symmetric
    conductor centred at the origin; ``"infinite"``: Biot-Savart of the dipole alone.
    """
    xyz = np.asarray(sensors, dtype=float)
    locs = np.asarray(locations, dtype=float)
    single = locs.ndim == 1
    locs = np.atleast_2d(locs)
    scale = MU0 * 1e12 / (4 * np.pi)
    eye = np.eye(3)
    if model == "infinite":
        d = xyz[None, :, :] - locs[:, None, :]  # (L, S, 3)
        cr = np.cross(eye[None, None, :, :], d[:, :, None, :])  # (L, S, j, k): e_j x R
        g = np.swapaxes(cr, 2, 3) / np.linalg.norm(d, axis=2)[:, :, None, None] ** 3 * scale
        return g[0] if single else g
    a = xyz[None, :, :] - locs[:, None, :]  # (L, S, 3)
    a_n = np.linalg.norm(a, axis=2)
    r_n = np.linalg.norm(xyz, axis=1)[None, :]
    ar = np.einsum("lsk,sk->ls", a, xyz)
    rp = locs @ xyz.T  # (L, S): r . r_p
    f = a_n * (r_n * a_n + r_n ** 2 - rp)
    grad_f = ((a_n ** 2 / r_n + ar / a_n + 2 * a_n + 2 * r_n)[:, :, None] * xyz[None, :, :]
              - (a_n + 2 * r_n + ar / a_n)[:, :, None] * locs[:, None, :])
    c = np.cross(eye[None, :, :], locs[:, None, :])  # (L, j, k): e_j x r_p
    rc = np.einsum("sk,ljk->lsj", xyz, c)  # (L, S, j): r . (e_j x r_p)
    h = (f[:, :, None, None] * c[:, None, :, :] - rc[:, :, :, None] * grad_f[:, :, None, :]) / (f ** 2)[:, :, None, None]
    g = np.swapaxes(h, 2, 3) * scale
    return g[0] if single else g


def meg_gain_along(sensors: np.ndarray, normals: np.ndarray, locations: np.ndarray, model: str) -> np.ndarray:
    """The MEG lead field along each sensor's unit normal, fT per nA um: (L, S, 3), or (S, 3) for one (3,) location.

    Equals ``einsum("sk,lska->lsa", normals, meg_gain(...))`` at a fraction of the cost: with
    B = mu0 / (4 pi F^2) (F q x r0 - (q x r0 . r) grad F) (Sarvas), n . B is linear in q with the
    coefficients (F (r0 x n) - (grad F . n) (r0 x r)) / F^2; Biot-Savart gives (R x n) / |R|^3.
    """
    xyz = np.asarray(sensors, dtype=float)
    nrm = np.asarray(normals, dtype=float)
    locs = np.asarray(locations, dtype=float)
    single = locs.ndim == 1
    locs = np.atleast_2d(locs)
    scale = MU0 * 1e12 / (4 * np.pi)
    if model == "infinite":
        d = xyz[None, :, :] - locs[:, None, :]  # R = r - r0
        g = np.cross(d, nrm[None, :, :]) / np.linalg.norm(d, axis=2)[:, :, None] ** 3 * scale
        return g[0] if single else g
    a = xyz[None, :, :] - locs[:, None, :]
    a_n = np.linalg.norm(a, axis=2)
    r_n = np.linalg.norm(xyz, axis=1)[None, :]
    ar = np.einsum("lsk,sk->ls", a, xyz)
    rp = locs @ xyz.T
    f = a_n * (r_n * a_n + r_n ** 2 - rp)
    xn = np.einsum("sk,sk->s", xyz, nrm)[None, :]  # r . n
    pn = locs @ nrm.T  # r0 . n
    grad_f_n = (a_n ** 2 / r_n + ar / a_n + 2 * a_n + 2 * r_n) * xn - (a_n + 2 * r_n + ar / a_n) * pn
    r0_n = np.cross(locs[:, None, :], nrm[None, :, :])  # (L, S, 3)
    r0_r = np.cross(locs[:, None, :], xyz[None, :, :])
    g = (f[:, :, None] * r0_n - grad_f_n[:, :, None] * r0_r) / (f ** 2)[:, :, None] * scale
    return g[0] if single else g
