"""Vectorized numerics of the four-sphere EEG and the spherical / infinite MEG lead fields.

Re-implementations of LFPykit's formulas (corrected four-sphere series, Naess
et al. 2017; Sarvas 1987; Biot-Savart), vectorized over sensors and tested
equal to LFPykit. Units: positions in um, lead fields in uV or fT per nA um.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MU0", "four_sphere_coefficients", "four_sphere_terms", "four_sphere_gain", "meg_gain"]

MU0 = 4e-7 * np.pi  # T m / A, permeability of free space (LFPykit's default)


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


def four_sphere_gain(radii, sigmas, xyz: np.ndarray, loc: np.ndarray) -> np.ndarray:
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
            k = four_sphere_terms(radii, four_sphere_coefficients(radii, sigmas, rz, n), n, radius)
            if abs(n[-1] * k[-1]) <= 1e-13 * np.abs(n * k).sum() or n_max >= 1 << 15:
                break
            n_max *= 2
        coef = np.r_[0.0, k]
        radial = L.legval(cos_t[idx], coef * np.arange(n_max + 1))
        # sum_n K_n P_n^1(x) with scipy's lpmv convention P_n^1 = -(1-x^2)^(1/2) P_n'(x)
        tangential = -np.sqrt(1 - cos_t[idx] ** 2) * L.legval(cos_t[idx], L.legder(coef))
        gain[idx] = radial[:, None] * zhat - tangential[:, None] * e_perp[idx]
    return gain / (4 * np.pi * sigmas[0] * rz ** 2) * 1e3


def meg_gain(xyz: np.ndarray, loc: np.ndarray, model: str) -> np.ndarray:
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
