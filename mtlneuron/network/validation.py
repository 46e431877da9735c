"""One-line comparisons of two network runs (a surrogate run against its reference).

:func:`compare` takes two results of the same network (``col.run(...,
backend="surrogate")`` and ``backend="hnn"``, or a Rett network's
``"surrogate"`` and ``"neuron"`` runs) and returns the agreement as an
xarray Dataset: spike counts per population and their relative difference,
and, for HNN-column results, the Pearson r of each dipole layer after
hnn-core's Hamming smoothing; for Rett results, the population-rate r.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .._metrics import pearson_r
from ..conventions import check_number

__all__ = ["compare", "COUNT_TOLERANCE", "COUNT_SLACK"]

COUNT_TOLERANCE = 0.25  # spike counts per population agree within 25 % ...
COUNT_SLACK = 10  # ... or within 10 spikes


def _counts(res: xr.Dataset) -> xr.DataArray:
    if "spike_count" in res:
        return res["spike_count"]
    st = res["spike_times"]
    pops = list(dict.fromkeys(res["population"].values.tolist()))
    counts = [int(np.isfinite(st.values[res["population"].values == p]).sum()) for p in pops]
    return xr.DataArray(counts, dims="population_name", coords={"population_name": pops})


def compare(result: xr.Dataset, reference: xr.Dataset, smooth_ms: float = 30.0) -> xr.Dataset:
    """Agreement of ``result`` with ``reference`` (two runs of one network on one grid).

    Parameters
    ----------
    result, reference : xarray.Dataset
        Network results (``HNNColumn.run`` or ``Network.run``).
    smooth_ms : float
        Hamming smoothing of HNN dipoles before r (hnn-core's examples use 30 ms).

    Returns
    -------
    xarray.Dataset
        ``spike_count`` (backend, population_name), ``count_ratio`` (result /
        reference), ``count_ok`` (within 25 % or 10 spikes); ``dipole_r``
        (layer) for HNN results, ``rate_r`` (population_name) for others.
    """
    smooth_ms = check_number(smooth_ms, "smooth_ms (ms)", positive=True)
    for name, res in (("result", result), ("reference", reference)):
        if not isinstance(res, xr.Dataset) or "spike_times" not in res:
            raise ValueError(f"{name} must be a network result (an xarray.Dataset with spike_times)")
    if result.sizes.get("time") != reference.sizes.get("time") or result.attrs.get("dt") != reference.attrs.get("dt"):
        raise ValueError(f"the runs differ in length or grid: {result.sizes.get('time')} vs "
                         f"{reference.sizes.get('time')} bins, dt {result.attrs.get('dt')} vs {reference.attrs.get('dt')}")
    a, b = _counts(result), _counts(reference)
    out = xr.Dataset(
        {"spike_count": xr.concat([a, b], dim="backend").assign_coords(
            backend=[str(result.attrs.get("backend", "result")), str(reference.attrs.get("backend", "reference"))]),
         "count_ratio": a / b.where(b > 0),
         "count_ok": np.abs(a - b) <= np.maximum(COUNT_TOLERANCE * b, COUNT_SLACK)},
        attrs={"smooth_ms": smooth_ms, "count_rule": f"within {COUNT_TOLERANCE:.0%} or {COUNT_SLACK} spikes"})
    if "layer" in result.dims:
        from .hnn_model import smooth

        dt = float(result.attrs["dt"])
        x, y = smooth(result["dipole"].values, smooth_ms, dt), smooth(reference["dipole"].values, smooth_ms, dt)
        out["dipole_r"] = ("layer", [pearson_r(x[:, k], y[:, k]) for k in range(x.shape[1])],
                           {"long_name": f"Pearson r of the dipole after {smooth_ms:g}-ms smoothing"})
        out = out.assign_coords(layer=result["layer"].values)
    elif "rate" in result:
        ra, rb = result["rate"].values, reference["rate"].values
        out["rate_r"] = ("population_name", [pearson_r(ra[:, k], rb[:, k]) for k in range(ra.shape[1])])
    return out
