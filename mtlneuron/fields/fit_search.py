"""The search behind :func:`fit_dipole`: a grid filling the brain, then local nonlinear least squares.

The moment is linear in the data, so for every trial location it is solved by
least squares and projected out (variable projection): only the 3 location
parameters are searched, by Levenberg-Marquardt. Lead fields are evaluated in
batches by one vectorized call: a whole grid, or every unfinished fit (all
starts, or all samples of a moving dipole) with its 3 finite-difference
neighbours.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..geometry import fibonacci_cap

__all__ = ["candidates", "projection_costs", "projection_costs_each", "residuals", "pick_starts", "local_fit",
           "to_ball", "from_ball"]

_FD_STEP = 1e-7  # finite-difference step in the unbounded coordinates (~0.01 um in the default head)


def to_ball(u: np.ndarray, rmax: float) -> np.ndarray:
    """Smooth map of R^3 onto the open ball |r| < rmax (the location constraint); rows of (..., 3)."""
    u = np.asarray(u, dtype=float)
    loc = rmax * u / np.sqrt(1 + np.sum(u * u, axis=-1, keepdims=True))
    small = np.linalg.norm(loc, axis=-1) <= 1.0  # keep 1 um from the singular centre
    if np.any(small):
        loc = np.where(small[..., None], np.array([0.0, 0.0, 1.0]), loc)
    return loc


def from_ball(loc: np.ndarray, rmax: float) -> np.ndarray:
    """Inverse of :func:`to_ball` for one location."""
    x = np.asarray(loc, dtype=float) / rmax
    return x / np.sqrt(1 - min(float(x @ x), 1 - 1e-12))


def candidates(rmax: float, n_grid: int) -> np.ndarray:
    """Starting grid: Fibonacci shells filling the ball (points per shell ~ r^2)."""
    fractions = np.array([0.2, 0.4, 0.6, 0.75, 0.88, 0.97])
    counts = np.maximum(4, np.round(n_grid * fractions ** 2 / (fractions ** 2).sum())).astype(int)
    return np.concatenate([fibonacci_cap(c, np.pi) * f * rmax for f, c in zip(fractions, counts)])


def _pinv_gram(g: np.ndarray) -> np.ndarray:
    """Pseudo-inverses of the 3 x 3 Gram matrices of lead fields g (L, n, 3), null directions dropped.

    A rank-deficient lead field (the spherical MEG of a radial dipole is exactly zero) loses
    the directions whose eigenvalue is below 1e-12 of the largest.
    """
    lam, vec = np.linalg.eigh(np.swapaxes(g, 1, 2) @ g)
    keep = lam > lam[:, -1:] * 1e-12
    inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
    return (vec * inv[:, None, :]) @ np.swapaxes(vec, 1, 2)


def projection_costs(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residual sum of squares of y (n, k) after the best fit by each lead field g (L, n, 3): (L, k) per column."""
    gy = np.swapaxes(g, 1, 2) @ y  # (L, 3, k)
    return np.sum(y * y, axis=0)[None, :] - np.sum(gy * (_pinv_gram(g) @ gy), axis=1)


def residuals(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y - g q with the least-squares moments q, for lead fields g (B, n, 3) and data y (n, k) or (B, n, k)."""
    y = y if y.ndim == 3 else y[None]
    return y - g @ (_pinv_gram(g) @ (np.swapaxes(g, 1, 2) @ y))


def projection_costs_each(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residual sum of squares of each data y[b] (B, n, k) after the best fit by its lead field g[b] (B, n, 3)."""
    r = residuals(g, y)
    return np.sum(r * r, axis=(1, 2))


def pick_starts(points: np.ndarray, costs: np.ndarray, n_starts: int, min_sep: float) -> list[np.ndarray]:
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


def _residuals_and_jacobians(forward: Callable[[np.ndarray], np.ndarray], y: np.ndarray, u: np.ndarray,
                             rmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Residual vectors (B, m) at u (B, 3) and their forward-difference Jacobians (B, m, 3): one forward call."""
    b = len(u)
    us = (u[:, None, :] + np.concatenate([np.zeros((1, 3)), _FD_STEP * np.eye(3)])[None]).reshape(-1, 3)
    g = forward(to_ball(us, rmax)).reshape(b, 4, -1, 3)  # (B, 4, n, 3)
    r = residuals(g.reshape(b * 4, -1, 3), np.repeat(y, 4, axis=0)).reshape(b, 4, -1)
    return r[:, 0], np.swapaxes((r[:, 1:] - r[:, :1]) / _FD_STEP, 1, 2)


def local_fit(forward: Callable[[np.ndarray], np.ndarray], y: np.ndarray, starts: np.ndarray, rmax: float,
              max_iter: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt for many location fits at once: (locations (B, 3) um, residual sums of squares (B,)).

    ``y`` (B, n, k) or (n, k) (shared by all) holds the data each fit explains; ``starts`` (B, 3) um.
    Every iteration evaluates all unfinished fits (and their Jacobians) in one forward call.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    b = len(starts)
    y = np.broadcast_to(y, (b,) + y.shape[-2:]) if y.ndim == 2 else y
    u = np.stack([from_ball(s, rmax) for s in starts])
    r, jac = _residuals_and_jacobians(forward, y, u, rmax)
    cost = np.sum(r * r, axis=1)
    lam = np.full(b, 1e-3)
    active = np.ones(b, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        jt = np.swapaxes(jac[idx], 1, 2)
        a = jt @ jac[idx]  # (B', 3, 3)
        grad = (jt @ r[idx][..., None])[..., 0]
        damp = lam[idx, None, None] * (a * np.eye(3) + 1e-30 * np.eye(3))
        step = -np.linalg.solve(a + damp, grad[..., None])[..., 0]
        u_new = u[idx] + step
        r_new, j_new = _residuals_and_jacobians(forward, y[idx], u_new, rmax)
        c_new = np.sum(r_new * r_new, axis=1)
        better = c_new < cost[idx]
        moved = np.linalg.norm(to_ball(u_new, rmax) - to_ball(u[idx], rmax), axis=1)  # um
        # converged: the proposed step moves < 0.1 nm, or an accepted one gains < 1e-12 of the cost
        done = (moved < 1e-4) | (better & (cost[idx] - c_new <= 1e-12 * cost[idx])) | (lam[idx] > 1e10)
        ok = idx[better]
        u[ok], r[ok], jac[ok], cost[ok] = u_new[better], r_new[better], j_new[better], c_new[better]
        lam[idx] = np.where(better, lam[idx] / 3, lam[idx] * 4)
        active[idx[done]] = False
    return to_ball(u, rmax), cost
