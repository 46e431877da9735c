"""The search behind :func:`fit_dipole`: a grid filling the brain, then local nonlinear least squares.

The moment is linear in the data, so for every trial location it is solved by
least squares and projected out (variable projection): only the 3 location
parameters are searched. Lead fields are evaluated in batches (a whole grid,
or a point and its 3 finite-difference neighbours) by one vectorized call.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..geometry import fibonacci_cap

__all__ = ["candidates", "projection_costs", "residuals", "pick_starts", "local_fit", "to_ball", "from_ball"]

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
    """y - g q with the least-squares moments q, for each lead field g (L, n, 3): (L, n, k)."""
    gy = np.swapaxes(g, 1, 2) @ y
    return y[None] - g @ (_pinv_gram(g) @ gy)


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


class _Objective:
    """Variable-projection residual and its forward-difference Jacobian from one batched forward call."""

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], y: np.ndarray, rmax: float):
        self.forward, self.y, self.rmax = forward, y, rmax
        self.u = None
        self.n_calls = 0

    def _evaluate(self, u: np.ndarray) -> None:
        us = np.vstack([u, u + _FD_STEP * np.eye(3)])
        g = self.forward(to_ball(us, self.rmax))  # (4, n, 3)
        self.n_calls += 1
        r = residuals(g, self.y).reshape(4, -1)
        self.u, self.r, self.j = u.copy(), r[0], ((r[1:] - r[0]) / _FD_STEP).T

    def fun(self, u: np.ndarray) -> np.ndarray:
        if self.u is None or not np.array_equal(u, self.u):
            self._evaluate(u)
        return self.r

    def jac(self, u: np.ndarray) -> np.ndarray:
        if self.u is None or not np.array_equal(u, self.u):
            self._evaluate(u)
        return self.j


def local_fit(forward: Callable[[np.ndarray], np.ndarray], y: np.ndarray, start: np.ndarray,
              rmax: float) -> tuple[np.ndarray, float, int]:
    """Nonlinear least squares for the location from ``start``: (location um, residual SS, forward calls)."""
    from scipy.optimize import least_squares

    obj = _Objective(forward, y, rmax)
    res = least_squares(obj.fun, from_ball(start, rmax), jac=obj.jac, method="trf", x_scale="jac",
                        xtol=1e-8, ftol=1e-12, gtol=1e-12, max_nfev=100)
    return to_ball(res.x, rmax), 2 * float(res.cost), obj.n_calls
