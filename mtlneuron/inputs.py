"""Synaptic drive: exact event lists per site, and their binning.

A drive is an ``xarray.Dataset`` over dim ``event`` with variables ``time``
(ms), ``site`` (int index into ``cell.sites``) and ``weight`` (uS, the peak
conductance scale given to the site's point process), sorted by time, and
attrs ``duration`` (ms), ``cell`` and ``n_sites``. It is exact: simulators
deliver every event at its own time; surrogates bin it with :func:`bin`.

Work is bounded: a drive may hold at most ``max_events`` events (default
:data:`~mtlneuron.conventions.MAX_EVENTS`, 5e7, about 1.2 GB of events), checked
*before* anything is drawn; pass ``max_events=`` to go beyond it on purpose.
Every parameter is checked by name (NaN, inf, negative, a non-integer seed).
"""
from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np
import xarray as xr

from .conventions import MAX_EVENTS, check_duration, check_number, check_seed

__all__ = ["MAX_EVENTS", "MAX_WEIGHT", "poisson", "regular", "volley", "concat", "bin", "validate", "empty",
           "rate_modulation", "from_events"]

RangeLike = Union[float, tuple, Mapping, np.ndarray, None]
MAX_WEIGHT = 1e30  # uS: event weights above it are refused (binned inputs are stored as float32, max 3.4e38)


def _make(time, site, weight, duration: float, cell_name: str, n_sites: int, **attrs) -> xr.Dataset:
    time = np.asarray(time, dtype=float)
    order = np.argsort(time, kind="stable")
    ds = xr.Dataset(
        {
            "time": ("event", time[order], {"units": "ms", "long_name": "event time"}),
            "site": ("event", np.asarray(site, dtype=np.int64)[order], {"long_name": "site index into cell.sites"}),
            "weight": ("event", np.asarray(weight, dtype=float)[order],
                       {"units": "uS", "long_name": "peak conductance scale of the event"}),
        },
        attrs={"duration": float(duration), "cell": cell_name, "n_sites": int(n_sites), **attrs},
    )
    return ds


def _check_size(n_events: float, max_events: int | None, what: str) -> None:
    """Refuse a drive of more than ``max_events`` events (default :data:`MAX_EVENTS`) before it is drawn."""
    limit = MAX_EVENTS if max_events is None else int(check_number(max_events, "max_events", positive=True))
    if not n_events <= limit:
        raise ValueError(f"{what} would hold about {n_events:.3g} events, more than max_events={limit:.3g} "
                         f"(~{24 * n_events / 1e9:.3g} GB); lower the rate or duration, or pass a larger max_events")


def _per_site(value: RangeLike, kinds: np.ndarray, defaults: Mapping[str, tuple], rng, what: str) -> np.ndarray:
    """Resolve a rate/weight spec into one value per site.

    ``None``: the cell's default range per kind; a number: all sites; a
    ``(lo, hi)`` tuple: uniform per site; a mapping ``{"exc": ..., "inh": ...}``
    of numbers or ranges; or an array with one value per site.
    """
    n = kinds.size
    if value is None:
        value = dict(defaults)
    if isinstance(value, Mapping):
        unknown = set(value) - {"exc", "inh"}
        if unknown:
            raise ValueError(f"{what}: unknown site kinds {sorted(unknown)}; use 'exc' and 'inh'")
        out = np.zeros(n)
        for kind in ("exc", "inh"):
            mask = kinds == kind
            spec = value.get(kind, defaults[kind])
            out[mask] = _per_site(spec, kinds[mask], defaults, rng, what)
        return out
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{what}: a range must be (low, high), got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi < lo:
            raise ValueError(f"{what}: range must satisfy 0 <= low <= high, got {value!r}")
        return rng.uniform(lo, hi, size=n)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected one value per site ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        bad = arr[~np.isfinite(arr) | (arr < 0)][0]
        raise ValueError(f"{what} must be finite and >= 0, got {float(bad)!r}")
    return arr


def rate_modulation(duration: float, depth: float, tau: float, rng, step: float = 1.0) -> np.ndarray:
    """A slow, positive, mean-one rate multiplier on a ``step``-ms grid.

    ``exp(s * z - s**2 / 2)`` with ``z`` an Ornstein-Uhlenbeck process of unit
    variance and correlation time ``tau`` (ms) and ``s = depth``. With the
    default depth 0.8 the drive passes through quiet (x0.2) and active (x3)
    stretches lasting a few hundred ms.
    """
    n = int(np.ceil(duration / step)) + 1
    if depth <= 0:
        return np.ones(n)
    a = np.exp(-step / tau)
    z = np.empty(n)
    z[0] = rng.standard_normal()
    noise = rng.standard_normal(n) * np.sqrt(1 - a * a)
    for i in range(1, n):
        z[i] = a * z[i - 1] + noise[i]
    return np.exp(depth * z - depth * depth / 2)


def poisson(cell, duration: float = 1000.0, rate: RangeLike = None, weight: RangeLike = None, seed: int = 0,
            *, modulation_depth: float | None = None, modulation_tau: float | None = None,
            max_events: int | None = None) -> xr.Dataset:
    """Independent Poisson events on every site, with slowly varying rates.

    Per-site rates (Hz) and weights (uS) are drawn once from ranges; all
    rates are then multiplied by one shared slow fluctuation
    (:func:`rate_modulation`), giving quiet and active stretches.

    Parameters
    ----------
    cell : Cell
        The cell whose ``sites`` receive the events.
    duration : float
        Length of the drive (ms), > 0.
    rate, weight : None, float, (low, high), {"exc": ..., "inh": ...} or array
        Per-site mean rate (Hz) and event weight (uS). ``None`` uses
        ``cell.drive_defaults``, which makes the built-in cells fire at a few Hz.
    seed : int
        Random seed; the same seed gives the same drive.
    modulation_depth, modulation_tau : float, optional
        Log-normal depth and correlation time (ms) of the shared rate
        fluctuation; 0 depth gives homogeneous Poisson trains.
    max_events : int, optional
        Refuse drives expected to hold more events (default :data:`MAX_EVENTS`).

    Returns
    -------
    xarray.Dataset
        Events over dim ``event`` (``time`` ms, ``site``, ``weight`` uS).
    """
    duration = check_duration(duration)
    seed = check_seed(seed)
    d = cell.drive_defaults
    depth = d.modulation_depth if modulation_depth is None else check_number(modulation_depth, "modulation_depth",
                                                                             minimum=0.0)
    tau = d.modulation_tau if modulation_tau is None else check_number(modulation_tau, "modulation_tau",
                                                                       positive=True)
    rng = np.random.default_rng(seed)
    kinds = cell.sites["kind"].values.astype(str)
    rates = _per_site(rate, kinds, {"exc": d.rate_exc, "inh": d.rate_inh}, rng, "rate")
    weights = _per_site(weight, kinds, {"exc": d.weight_exc, "inh": d.weight_inh}, rng, "weight")
    _check_size(rates.sum() * duration / 1000.0, max_events, "poisson drive")  # the mean count, before drawing
    mod = rate_modulation(duration, depth, tau, rng)
    peak = mod.max()
    _check_size(rates.sum() * peak * duration / 1000.0, max_events, "poisson drive (before thinning)")
    # Thinning: homogeneous trains at rate * peak, kept with probability mod(t) / peak.
    counts = rng.poisson(rates * peak * duration / 1000.0)
    site = np.repeat(np.arange(kinds.size), counts)
    time = rng.uniform(0.0, duration, size=site.size)
    keep = rng.uniform(size=site.size) < mod[np.floor(time).astype(int)] / peak
    site, time = site[keep], time[keep]
    return _make(time, site, weights[site], duration, cell.name, kinds.size, seed=int(seed), kind="poisson",
                 modulation_depth=depth, modulation_tau=tau)


def _site_list(cell, sites) -> np.ndarray:
    n = cell.sites.sizes["site"]
    if sites is None:
        return np.arange(n)
    if isinstance(sites, str):
        kinds = cell.sites["kind"].values.astype(str)
        regions = cell.sites["region"].values.astype(str)
        sel = np.flatnonzero((kinds == sites) | (regions == sites))
        if sel.size == 0:
            raise ValueError(f"no site has kind or region {sites!r}")
        return sel
    arr = np.atleast_1d(np.asarray(sites))
    if arr.dtype.kind not in "iu":
        raise ValueError(f"sites must be integer indices, got {sites!r}")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"site index {int(bad[0])} out of range [0, {n})")
    return arr.astype(np.int64)


def regular(cell, duration: float, sites=None, rate: float = 10.0, weight: float = 0.001, start: float = 0.0,
            jitter: float = 0.0, seed: int = 0, *, max_events: int | None = None) -> xr.Dataset:
    """Regular trains at ``rate`` (Hz) on the chosen sites, optionally jittered (ms SD).

    ``sites``: None (all), a kind (``"exc"``/``"inh"``), a region name, or indices.
    ``max_events``: refuse drives of more events (default :data:`MAX_EVENTS`).
    """
    duration = check_duration(duration)
    rate = check_number(rate, "rate (Hz)", positive=True)
    weight = check_number(weight, "weight (uS)", minimum=0.0)
    start = check_number(start, "start (ms)", minimum=0.0)
    jitter = check_number(jitter, "jitter (ms)", minimum=0.0)
    seed = check_seed(seed)
    chosen = _site_list(cell, sites)
    _check_size(chosen.size * max(0.0, duration - start) * rate / 1000.0, max_events, "regular drive")
    rng = np.random.default_rng(seed)
    base = np.arange(start, duration, 1000.0 / rate)
    time = np.tile(base, chosen.size) + (rng.normal(0, jitter, base.size * chosen.size) if jitter > 0 else 0.0)
    site = np.repeat(chosen, base.size)
    keep = (time >= 0) & (time < duration)
    ds = _make(time[keep], site[keep], np.full(keep.sum(), float(weight)), duration, cell.name,
               cell.sites.sizes["site"], kind="regular")
    validate(ds, cell)
    return ds


def volley(cell, times: Sequence[float], sites=None, weight: float = 0.005, duration: float | None = None, *,
           max_events: int | None = None) -> xr.Dataset:
    """Synchronous events: every chosen site receives one event at each time in ``times`` (ms)."""
    times = np.atleast_1d(np.asarray(times, dtype=float))
    bad = np.flatnonzero(~np.isfinite(times) | (times < 0))
    if bad.size:
        raise ValueError(f"volley times must be finite and >= 0 ms; times[{bad[0]}] is {times[bad[0]]!r}")
    weight = check_number(weight, "weight (uS)", minimum=0.0)
    chosen = _site_list(cell, sites)
    _check_size(float(times.size) * chosen.size, max_events, "volley")
    if duration is None:
        duration = float(times.max()) + 100.0 if times.size else 100.0
    duration = check_duration(duration)
    time = np.repeat(times, chosen.size)
    site = np.tile(chosen, times.size)
    ds = _make(time, site, np.full(time.size, float(weight)), duration, cell.name, cell.sites.sizes["site"],
               kind="volley")
    validate(ds, cell)
    return ds


def empty(cell, duration: float) -> xr.Dataset:
    """A drive with no events (the cell at rest)."""
    return _make([], [], [], check_duration(duration), cell.name, cell.sites.sizes["site"], kind="empty")


def concat(*drives: xr.Dataset, duration: float | None = None) -> xr.Dataset:
    """Merge drives for the same cell into one (events sorted by time)."""
    if not drives:
        raise ValueError("concat needs at least one drive")
    cells = {d.attrs.get("cell") for d in drives}
    n_sites = {d.attrs.get("n_sites") for d in drives}
    if len(cells) > 1 or len(n_sites) > 1:
        raise ValueError(f"cannot concatenate drives for different cells: {sorted(map(str, cells))}")
    duration = max(d.attrs["duration"] for d in drives) if duration is None else check_duration(duration)
    return _make(np.concatenate([d["time"].values for d in drives]),
                 np.concatenate([d["site"].values for d in drives]),
                 np.concatenate([d["weight"].values for d in drives]),
                 duration, cells.pop(), n_sites.pop(), kind="+".join(d.attrs.get("kind", "?") for d in drives))


def validate(drive: xr.Dataset, cell=None) -> None:
    """Raise ``ValueError`` naming the first bad value of a drive.

    Checks: the variables exist, duration > 0, times in [0, duration),
    weights finite, >= 0 and <= :data:`MAX_WEIGHT`, site indices in range (when ``cell`` is given,
    also that the drive was made for that cell: same name and number of sites).
    """
    if not isinstance(drive, xr.Dataset) or not {"time", "site", "weight"} <= set(drive.data_vars):
        raise ValueError("a drive must be an xarray.Dataset with variables 'time', 'site' and 'weight'")
    duration = check_duration(drive.attrs.get("duration"))
    t = drive["time"].values
    w = drive["weight"].values
    s = drive["site"].values
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0) | (t >= duration))
    if bad.size:
        raise ValueError(f"event time {float(t[bad[0]])!r} ms is outside [0, duration={duration}) (event {bad[0]})")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"event weight {float(w[bad[0]])!r} uS is NaN or negative (event {bad[0]})")
    bad = np.flatnonzero(w > MAX_WEIGHT)
    if bad.size:
        raise ValueError(f"event weight {float(w[bad[0]])!r} uS is above MAX_WEIGHT={MAX_WEIGHT:g} uS "
                         f"(event {bad[0]}); stored inputs are float32")
    n_sites = cell.sites.sizes["site"] if cell is not None else drive.attrs.get("n_sites")
    if cell is not None and drive.attrs.get("n_sites") not in (None, n_sites):
        raise ValueError(f"drive was made for {drive.attrs['n_sites']} sites "
                         f"(cell {drive.attrs.get('cell')!r}) but cell {cell.name!r} has {n_sites}")
    if cell is not None and drive.attrs.get("cell") not in (None, cell.name):
        raise ValueError(f"drive was made for cell {drive.attrs['cell']!r}, not for cell {cell.name!r}; "
                         f"make it with mtl.inputs.*({cell.name!r} cell, ...)")
    if s.size and s.dtype.kind not in "iu":
        raise ValueError(f"site indices must be integers, got dtype {s.dtype}")
    if n_sites is not None:
        bad = np.flatnonzero((s < 0) | (s >= n_sites))
        if bad.size:
            raise ValueError(f"site index {int(s[bad[0]])} out of range [0, {n_sites}) (event {bad[0]})")


def bin(drive: xr.Dataset, dt: float, n_sites: int | None = None) -> xr.DataArray:
    """Sum event weights into bins ``[k dt, (k+1) dt)``: a (time, site) array in uS."""
    if not dt > 0:
        raise ValueError(f"dt must be > 0 ms, got {dt!r}")
    validate(drive)
    duration = float(drive.attrs["duration"])
    n_bins = int(round(duration / dt))
    if abs(n_bins * dt - duration) > 1e-6 * max(1.0, duration):
        raise ValueError(f"duration {duration} ms is not a multiple of dt {dt} ms")
    n_sites = int(drive.attrs["n_sites"] if n_sites is None else n_sites)
    idx = np.minimum((drive["time"].values / dt).astype(np.int64), n_bins - 1)
    grid = np.zeros((n_bins, n_sites))
    np.add.at(grid, (idx, drive["site"].values), drive["weight"].values)
    return xr.DataArray(
        grid, dims=("time", "site"),
        coords={"time": ("time", np.arange(n_bins) * dt, {"units": "ms", "long_name": "bin start"}),
                "site": np.arange(n_sites)},
        attrs={"units": "uS", "long_name": "summed event weight per bin"}, name="inputs",
    )


def from_events(cell, time, site, weight, duration: float, kind: str = "events", **attrs) -> xr.Dataset:
    """A drive from explicit arrays: event times (ms), site indices, weights (uS); sorted and validated.

    Extra keyword ``attrs`` are stored on the Dataset (plain strings or numbers).
    """
    ds = _make(time, site, weight, check_duration(duration), cell.name, cell.sites.sizes["site"], kind=kind,
               **attrs)
    validate(ds, cell)
    return ds
