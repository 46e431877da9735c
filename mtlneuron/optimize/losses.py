"""Losses on a column run, minimised by :func:`mtlneuron.optimize.connectivity`; they add up with weights.

A loss sees the run's outputs as torch tensors (:class:`RunOutputs`): the
dipole (time, layer agg / L2 / L5) in nA m with hnn-core's sign and baseline,
and the spikes (time, cell) with their surrogate gradients.

* :func:`band_power` — minus the power of a layer's dipole in a band, in dB
  (minimising it raises the power);
* :func:`waveform` — distance to a target dipole (an hnn-core ``Dipole`` or an
  xarray): mean squared error (nA m^2) or ``1 - r``;
* :func:`rate_bounds` — squared excess of a population's mean firing rate
  outside [low, high] Hz.

``band_power(15, 60) + 0.1 * rate_bounds("L5_pyramidal", 0.5, 30)`` is one loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..conventions import check_number
from ..network.hnn_model import LAYERS, smooth

__all__ = ["Loss", "RunOutputs", "band_power", "waveform", "rate_bounds", "spectrum_torch", "layer_index",
           "target_array", "on_model_grid"]


@dataclass
class RunOutputs:
    """What a loss sees: ``dipole`` (time, layer) nA m, ``spikes`` (time, cell), the grid and the column."""

    dipole: torch.Tensor
    spikes: torch.Tensor
    dt: float
    column: Any


class Loss:
    """A weighted sum of named terms; each term maps :class:`RunOutputs` to a scalar tensor."""

    def __init__(self, terms: list[tuple[float, str, Callable, Callable | None]]):
        self.terms = terms  # (weight, name, fn(outputs) -> scalar, check(dt, n_bins) or None)

    def __add__(self, other: "Loss") -> "Loss":
        if not isinstance(other, Loss):
            return NotImplemented
        return Loss(self.terms + other.terms)

    def __mul__(self, factor: float) -> "Loss":
        factor = check_number(factor, "loss weight")
        return Loss([(w * factor, n, f, c) for w, n, f, c in self.terms])

    __rmul__ = __mul__

    @property
    def names(self) -> list[str]:
        return [n for _, n, _, _ in self.terms]

    def check(self, dt: float, n_bins: int, column: Any) -> None:
        """Refuse a term that cannot be computed on this run (band above Nyquist, target of another length,
        unknown population), before any step is taken."""
        for _, _, _, chk in self.terms:
            if chk is not None:
                chk(dt, n_bins, column)

    def __call__(self, outputs: RunOutputs) -> tuple[torch.Tensor, dict[str, float]]:
        total, parts = 0.0, {}
        for weight, name, fn, _ in self.terms:
            value = fn(outputs)
            parts[name] = float(value.detach())
            total = total + weight * value
        return total, parts

    def __repr__(self) -> str:
        return " + ".join(f"{w:g} * {n}" for w, n, _, _ in self.terms)


def layer_index(layer: str) -> int:
    """Index of ``layer`` ("agg", "L2", "L5") in the run's dipole; other names are refused."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {list(LAYERS)}, got {layer!r}")
    return LAYERS.index(layer)


def spectrum_torch(x: torch.Tensor, dt: float) -> tuple[np.ndarray, torch.Tensor]:
    """Hann-windowed periodogram of a (time,) signal: frequencies (Hz) and power ((nA m)^2 / Hz)."""
    n = x.shape[0]
    win = torch.hann_window(n, periodic=False, dtype=x.dtype, device=x.device)
    fs = 1000.0 / dt
    spec = torch.fft.rfft((x - x.mean()) * win)
    power = (spec.real ** 2 + spec.imag ** 2) / (fs * (win ** 2).sum())
    return np.fft.rfftfreq(n, dt / 1000.0), power


def band_power(fmin: float, fmax: float, layer: str = "agg", smooth_ms: float | None = None,
               relative: bool = False) -> Loss:
    """Minus the power of ``layer``'s dipole in [fmin, fmax] Hz, in dB (minimise it to raise the power).

    Parameters
    ----------
    fmin, fmax : float
        Hz, 0 < fmin < fmax < Nyquist of the model grid (1 kHz at dt 0.5 ms).
    layer : {"agg", "L2", "L5"}
    smooth_ms : float, optional
        Smooth the dipole first (hnn-core's Hamming window), ms.
    relative : bool
        Power in the band relative to the whole spectrum's (as hnn-core's
        ``maximize_psd`` objective), still in dB.
    """
    fmin = check_number(fmin, "fmin (Hz)", positive=True)
    fmax = check_number(fmax, "fmax (Hz)", positive=True)
    if not fmax > fmin:
        raise ValueError(f"the band needs fmin < fmax, got fmin {fmin} Hz, fmax {fmax} Hz")
    k = layer_index(layer)

    def check(dt: float, n_bins: int, column: Any = None) -> None:
        nyquist = 500.0 / dt
        if fmax >= nyquist:
            raise ValueError(f"band {fmin}-{fmax} Hz reaches the Nyquist frequency {nyquist:g} Hz of the "
                             f"{dt} ms grid: choose fmax < {nyquist:g} Hz")
        resolution = 1000.0 / (n_bins * dt)
        if fmax - fmin < resolution and math.floor(fmax / resolution) < math.ceil(fmin / resolution):
            raise ValueError(f"band {fmin}-{fmax} Hz holds no frequency of a {n_bins * dt:g}-ms run "
                             f"(resolution {resolution:g} Hz)")

    def fn(out: RunOutputs) -> torch.Tensor:
        x = out.dipole[:, k]
        if smooth_ms:
            x = smooth(out.dipole, smooth_ms, out.dt)[:, k]
        freqs, power = spectrum_torch(x, out.dt)
        band = torch.as_tensor((freqs >= fmin) & (freqs <= fmax), device=power.device)
        total = power.sum() if relative else 1.0
        return -10.0 * torch.log10(power[band].sum() / total + 1e-30)

    kind = "relative_" if relative else ""
    return Loss([(1.0, f"{kind}band_power_{fmin:g}_{fmax:g}Hz_{layer}_neg_dB", fn, check)])


def on_model_grid(values: np.ndarray, step: float, t0: float, dt: float, n_bins: int) -> np.ndarray:
    """A target sampled every ``step`` ms from ``t0`` as ``n_bins`` bin means on the model grid ``dt`` (ms)."""
    ratio = dt / step
    sub = int(round(ratio))
    if sub < 1 or abs(ratio - sub) > 1e-6:
        raise ValueError(f"target dipole step {step:g} ms does not divide the model grid {dt:g} ms")
    if abs(t0) > 1e-9:
        raise ValueError(f"target dipole starts at {t0:g} ms; it must start at 0 ms like the run")
    if values.size < n_bins * sub:
        raise ValueError(f"target dipole covers {values.size * step:g} ms ({values.size} samples of {step:g} ms); "
                         f"the run is {n_bins * dt:g} ms")
    return values[:n_bins * sub].reshape(n_bins, sub).mean(axis=1)


def target_array(target, layer: str) -> tuple[np.ndarray, float, float]:
    """(values nA m, dt ms, t0 ms) of a target dipole: an hnn-core Dipole or an xarray (DataArray/Dataset)."""
    if hasattr(target, "data") and hasattr(target, "times") and isinstance(getattr(target, "data"), dict):
        times = np.asarray(target.times, dtype=float)
        values = np.asarray(target.data[layer], dtype=float)
    elif hasattr(target, "dims"):
        da = target["dipole"] if hasattr(target, "data_vars") else target
        if "layer" in da.dims:
            da = da.sel(layer=layer)
        if da.dims != ("time",):
            raise ValueError(f"target dipole must have one dim 'time' (after choosing the layer), got {da.dims}")
        units = da.attrs.get("units", "nA m")
        if units != "nA m":
            raise ValueError(f"target dipole units must be 'nA m', got {units!r}")
        times = np.asarray(da["time"].values, dtype=float)
        values = np.asarray(da.values, dtype=float)
    else:
        raise ValueError(f"target must be an hnn_core Dipole or an xarray DataArray/Dataset, got {type(target).__name__}")
    if times.size < 2:
        raise ValueError("target dipole has fewer than 2 samples")
    steps = np.diff(times)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        raise ValueError("target dipole is not sampled on a regular time grid")
    if not np.all(np.isfinite(values)):
        raise ValueError("target dipole holds NaN or infinite values")
    return values, float(steps[0]), float(times[0])


def waveform(target, metric: str = "mse", layer: str = "agg", smooth_ms: float | None = None,
             scale: float | None = None) -> Loss:
    """Distance between the column's dipole and ``target`` (mean squared error in (nA m)^2, or ``1 - r``).

    Parameters
    ----------
    target : hnn_core.Dipole or xarray.DataArray / Dataset
        nA m, sampled at the model grid ``dt`` or at a step that divides it
        (hnn-core's 0.025 ms: bin means are taken); it must cover the run.
    metric : {"mse", "corr"}
    layer : {"agg", "L2", "L5"}
    smooth_ms, scale : float, optional
        Applied to the column's dipole before the comparison (as hnn-core's
        ``Optimizer`` does with ``smooth_window_len`` and ``scale_factor``);
        the target is used as given.
    """
    if metric not in ("mse", "corr"):
        raise ValueError(f"metric must be 'mse' or 'corr', got {metric!r}")
    k = layer_index(layer)
    values, step, t0 = target_array(target, layer)
    if scale is not None:
        scale = check_number(scale, "scale")
    cache: dict[tuple[float, int], torch.Tensor] = {}

    def resampled(dt: float, n_bins: int) -> np.ndarray:
        return on_model_grid(values, step, t0, dt, n_bins)

    def check(dt: float, n_bins: int, column: Any = None) -> None:
        resampled(dt, n_bins)

    def fn(out: RunOutputs) -> torch.Tensor:
        key = (out.dt, out.dipole.shape[0])
        if key not in cache:
            cache[key] = out.dipole.new_tensor(resampled(*key))
        y = cache[key]
        x = smooth(out.dipole, smooth_ms, out.dt)[:, k] if smooth_ms else out.dipole[:, k]
        if scale is not None:
            x = x * scale
        if metric == "mse":
            return ((x - y) ** 2).mean()
        xc, yc = x - x.mean(), y - y.mean()
        return 1.0 - (xc * yc).sum() / torch.sqrt((xc ** 2).sum() * (yc ** 2).sum() + 1e-30)

    return Loss([(1.0, f"waveform_{metric}_{layer}", fn, check)])


def rate_bounds(population: str, low_hz: float = 0.0, high_hz: float = math.inf) -> Loss:
    """Squared distance (Hz^2) of a population's mean firing rate from [low_hz, high_hz]; 0 inside."""
    low_hz = check_number(low_hz, "low_hz (Hz)")
    high_hz = float(high_hz)
    if not (low_hz >= 0 and high_hz > low_hz):
        raise ValueError(f"rate bounds need 0 <= low_hz < high_hz, got {low_hz}, {high_hz}")

    def check(dt: float, n_bins: int, column: Any) -> None:
        names = [p.name for p in column.populations]
        if population not in names:
            raise ValueError(f"no population {population!r}; the column has {names}")

    def fn(out: RunOutputs) -> torch.Tensor:
        k = [p.name for p in out.column.populations].index(population)
        first, stop = (int(i) for i in out.column.offsets[k:k + 2])
        seconds = out.spikes.shape[0] * out.dt / 1000.0
        rate = out.spikes[:, first:stop].sum() / ((stop - first) * seconds)
        return torch.relu(low_hz - rate) ** 2 + torch.relu(rate - high_hz) ** 2

    return Loss([(1.0, f"rate_{population}_{low_hz:g}_{high_hz:g}Hz", fn, check)])
