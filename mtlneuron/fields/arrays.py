"""Labelled linear algebra: contract xarray data with forward-model matrices."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["apply_matrix", "per_cell", "channel_coords"]


def apply_matrix(da: xr.DataArray, matrix: np.ndarray, dim: str, new_dim: str) -> xr.DataArray:
    """Contract ``da`` over ``dim`` with ``matrix`` (new, old): ``dim`` becomes ``new_dim`` (last)."""
    da = da.transpose(..., dim)
    out = np.asarray(da.values, dtype=float) @ np.asarray(matrix, dtype=float).T
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims}
    return xr.DataArray(out, dims=da.dims[:-1] + (new_dim,), coords=coords)


def per_cell(da: xr.DataArray, matrices: np.ndarray, dim: str, new_dim: str) -> xr.DataArray:
    """Sum over cells of ``matrices[c] @ da[..., c, :]`` (or shared data if ``da`` has no cell dim)."""
    n_cell = matrices.shape[0]
    if "cell" not in da.dims:
        return apply_matrix(da, matrices.sum(axis=0), dim, new_dim)
    if da.sizes["cell"] != n_cell:
        raise ValueError(f"data has {da.sizes['cell']} cells but the placement has {n_cell}: mismatched shapes")
    da = da.transpose(..., "cell", dim)
    out = np.einsum("...cs,ces->...e", np.asarray(da.values, dtype=float), matrices)
    coords = {k: v for k, v in da.coords.items() if dim not in v.dims and "cell" not in v.dims}
    return xr.DataArray(out, dims=da.dims[:-2] + (new_dim,), coords=coords)


def channel_coords(names: Any, xyz: np.ndarray, dim: str = "electrode") -> dict:
    """Coordinates of a channel dim: names plus x, y, z (um)."""
    return {
        dim: np.asarray(names),
        "x": (dim, xyz[:, 0], {"units": "um"}),
        "y": (dim, xyz[:, 1], {"units": "um"}),
        "z": (dim, xyz[:, 2], {"units": "um"}),
    }
