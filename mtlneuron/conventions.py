"""The rules every pipeline step shares, each defined once.

Axes, NEURON's integration step, the voltage clip level, the soma index,
"same dt", "duration is a multiple of dt", the active dipole axes, the dipole
low-pass of the evaluation, the Tsodyks-Markram recursion (networks and the
recurrent-like training drives). Pure Python and numpy: every module of
mtlneuron may import this one.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["AXES", "NEURON_DT", "DEFAULT_DT", "V_CLIP", "DIPOLE_REL_TOL", "check_duration", "check_dt",
           "steps_per_bin", "n_bins", "same_dt", "soma_index", "active_axes", "clip_voltage", "check_finite",
           "check_number", "check_seed", "MAX_EVENTS", "MAX_MEMORY_BYTES", "ParameterError", "check_memory",
           "format_bytes",
           "threshold_crossings", "DIPOLE_LOWPASS_HZ", "DIPOLE_LOWPASS_ORDER", "tm_decay", "tm_efficacies",
           "SPIKE_WAVEFORM_PRE_MS", "SPIKE_WAVEFORM_POST_MS"]

AXES = ("x", "y", "z")  # dipole and position axes, in this order everywhere
NEURON_DT = 0.025  # ms: the fixed integration step of every ground-truth simulation
DEFAULT_DT = 0.5  # ms: the model grid of datasets and surrogates unless told otherwise
V_CLIP = -40.0  # mV: voltages are scored and learned as min(v, V_CLIP); spikes are scored on their own
DIPOLE_REL_TOL = 1e-3  # a dipole axis whose SD is below this fraction of the largest axis's is inactive
DIPOLE_LOWPASS_HZ = 100.0  # Hz: the primary dipole metrics are scored after this zero-phase low-pass (EEG band)
SPIKE_WAVEFORM_PRE_MS = 1.0  # ms before the spike bin covered by a learned spike waveform
SPIKE_WAVEFORM_POST_MS = 8.0  # ms after it (the AP, its back-propagation and the fast dipole transient)
DIPOLE_LOWPASS_ORDER = 4  # order of that Butterworth low-pass (applied forward and backward: sosfiltfilt)
MAX_EVENTS = 50_000_000  # events per drive above which inputs refuse to draw (override: max_events=)
MAX_MEMORY_BYTES = 8 * 2**30  # estimated memory of a network or a run above which it is refused (override: max_memory=)
_DT_TOL = 1e-9  # relative tolerance of "the same dt" and "a whole number of bins"


class ParameterError(ValueError):
    """A bad value of one named parameter (``.parameter``): a ``ValueError`` a command line can map to its flag."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` as a short human-readable size (``"90.9 TiB"``)."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1024
    return f"{value:.3g} TiB"  # pragma: no cover - the loop always returns


def check_memory(n_bytes: float, what: str, max_memory: Any = None) -> None:
    """Refuse work estimated to need more than ``max_memory`` bytes (default :data:`MAX_MEMORY_BYTES`).

    Parameters
    ----------
    n_bytes : float
        The estimate (bytes), made before anything is allocated.
    what : str
        What needs it, for the message (e.g. ``"rett(n_cells=20000)"``).
    max_memory : float, optional
        The bound (bytes); pass a larger one to go beyond the default on purpose.

    Raises
    ------
    ParameterError
        Naming ``max_memory``, the estimate and the bound.
    """
    limit = MAX_MEMORY_BYTES if max_memory is None else check_number(max_memory, "max_memory (bytes)",
                                                                     positive=True)
    if n_bytes > limit:
        raise ParameterError("max_memory", f"{what} would need about {format_bytes(n_bytes)} of memory, more "
                             f"than max_memory = {format_bytes(limit)} (mtlneuron.conventions.MAX_MEMORY_BYTES); "
                             f"make it smaller, or pass a larger max_memory (bytes) on purpose")


def _parameter_name(name: str) -> str:
    """The parameter in a label such as ``"smooth_ms (ms)"``: its first word."""
    return name.split(" ")[0]


def check_duration(duration: Any, name: str = "duration") -> float:
    """A positive, finite duration in ms as float; a clear error naming the value otherwise."""
    try:
        value = float(duration)
    except (TypeError, ValueError):
        raise ParameterError(_parameter_name(name), f"{name} must be a positive number of ms, "
                             f"got {duration!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(_parameter_name(name), f"{name} must be a positive, finite number of ms, "
                             f"got {duration!r}")
    return value


def _is_whole(ratio: float) -> bool:
    return abs(ratio - round(ratio)) <= _DT_TOL * max(1.0, abs(ratio))


def check_dt(dt: Any, duration: float | None = None) -> float:
    """Validate a model grid ``dt`` (ms): a positive multiple of :data:`NEURON_DT` that divides ``duration``."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a positive number of ms, got {dt!r}") from None
    if not (math.isfinite(value) and value > 0) or not _is_whole(value / NEURON_DT):
        raise ValueError(f"dt must be a positive multiple of the NEURON step {NEURON_DT} ms, got {dt!r}")
    if duration is not None and not _is_whole(float(duration) / value):
        raise ValueError(f"duration {duration} ms must be a multiple of dt {value} ms")
    return value


def steps_per_bin(dt: float) -> int:
    """NEURON steps in one model bin of ``dt`` ms."""
    return int(round(check_dt(dt) / NEURON_DT))


def n_bins(duration: float, dt: float) -> int:
    """Number of ``dt`` bins in ``duration`` (both ms; checked to divide)."""
    check_dt(dt, duration)
    return int(round(float(duration) / float(dt)))


def same_dt(a: Any, b: Any) -> bool:
    """True when two grids (ms) are the same within floating-point noise."""
    try:
        return abs(float(a) - float(b)) <= _DT_TOL * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return False


def soma_index(segments: Any) -> int:
    """Index of the somatic segment, as recorded in a segment table's ``soma_index`` attr.

    Accepts a segment table (``cell.segments``), any Dataset carrying the attr,
    or a mapping with the key (a checkpoint's cell description).
    """
    attrs = getattr(segments, "attrs", segments)
    try:
        return int(attrs["soma_index"])
    except (KeyError, TypeError):
        raise ValueError("no 'soma_index' recorded: pass cell.segments (or a checkpoint's meta)") from None


def active_axes(sd: np.ndarray, rel_tol: float = DIPOLE_REL_TOL) -> np.ndarray:
    """Boolean mask of dipole axes whose SD is non-zero and >= ``rel_tol`` x the largest SD."""
    sd = np.asarray(sd, dtype=float)
    if sd.size == 0:
        return sd > 0
    return (sd > 0) & (sd >= rel_tol * sd.max())


def clip_voltage(v, v_clip: float | None = V_CLIP):
    """``min(v, v_clip)`` for numpy arrays and torch tensors alike; ``v_clip=None`` returns ``v``."""
    if v_clip is None:
        return v
    if hasattr(v, "clamp"):  # torch tensor, without importing torch here
        return v.clamp(max=v_clip)
    return np.minimum(v, v_clip)


def check_finite(values: Any, name: str) -> np.ndarray:
    """``values`` as a float array; an error naming the first non-finite entry otherwise."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite; entry {where if len(where) > 1 else where[0]} "
                         f"is {arr[bad][0]!r}")
    return arr


def check_number(value: Any, name: str, *, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a finite float (``>= minimum``, ``> 0`` if ``positive``); an error naming ``name`` otherwise."""
    key = _parameter_name(name)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(key, f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out):
        raise ParameterError(key, f"{name} must be a finite number, got {value!r}")
    if positive and out <= 0:
        raise ParameterError(key, f"{name} must be > 0, got {value!r}")
    if minimum is not None and out < minimum:
        raise ParameterError(key, f"{name} must be >= {minimum}, got {value!r}")
    return out


def check_seed(seed: Any, name: str = "seed") -> int:
    """A random seed as a non-negative int; an error naming ``name`` otherwise (1.5, -1, "0", True)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(_parameter_name(name), f"{name} must be an integer >= 0, got {seed!r}")
    return int(seed)


def threshold_crossings(v: np.ndarray, t: np.ndarray, threshold: float) -> np.ndarray:
    """Spike times: upward crossings of ``threshold`` (mV) by ``v``, linearly interpolated (ms).

    The one spike rule of ground truth (single cells and NEURON networks).
    """
    above = v >= threshold
    idx = np.flatnonzero(~above[:-1] & above[1:]) + 1
    v0, v1 = v[idx - 1], v[idx]
    frac = (threshold - v0) / np.where(v1 != v0, v1 - v0, 1.0)
    return t[idx - 1] + frac * (t[idx] - t[idx - 1])


def tm_decay(delta, tau):
    """``exp(-delta / tau)`` with ``tau = 0`` read as instantaneous decay (works on numpy and torch)."""
    if hasattr(delta, "clamp"):
        import torch

        safe = torch.where(tau > 0, tau, torch.ones_like(tau))
        return torch.where(tau > 0, torch.exp(-delta / safe), torch.zeros_like(delta))
    tau = np.asarray(tau, dtype=float)
    safe = np.where(tau > 0, tau, 1.0)
    return np.where(tau > 0, np.exp(-np.asarray(delta, dtype=float) / safe), 0.0)


def tm_efficacies(spike_times, U: float, D: float, F: float) -> np.ndarray:
    """Tsodyks-Markram efficacy ``u_n R_n / U`` of each spike of a presynaptic train (ms).

    Spike ``n`` after an interval ``delta`` since spike ``n - 1`` (Tsodyks &
    Markram 1997; the form of the eLife 2022 network and of NEURON's tmgsyn)::

        u_n = U + u_{n-1} (1 - U) exp(-delta / F)               (u_1 = U)
        R_n = 1 + (R_{n-1} (1 - u_{n-1}) - 1) exp(-delta / D)    (R_1 = 1)

    so the first spike after rest has efficacy 1; ``F = 0`` means no
    facilitation. The reference of ``mtlneuron.network.tm`` (engine and NEURON
    backend) and of the ``recurrent`` training drives.
    """
    t = np.asarray(spike_times, dtype=float)
    out = np.empty(t.size)
    u, R = U, 1.0
    for n in range(t.size):
        if n > 0:
            delta = t[n] - t[n - 1]
            R = 1.0 + (R * (1.0 - u) - 1.0) * float(tm_decay(delta, D))
            u = U + u * (1.0 - U) * float(tm_decay(delta, F))
        out[n] = u * R / U
    return out
