"""Argument validation shared by the field modules: clear errors naming the bad value."""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["as_float", "as_sigma", "check_choice", "positive_int"]


def as_float(value: Any, name: str, units: str) -> float:
    """A real, finite number (not bool, str, list or array) as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float ({units}), got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite ({units}), got {value!r}")
    return value


def as_sigma(sigma: Any, name: str = "sigma") -> float:
    """Validate a conductivity: a positive float in S/m."""
    sigma = as_float(sigma, name, "S/m")
    if sigma <= 0:
        raise ValueError(f"{name} must be > 0 S/m, got {sigma!r}")
    return sigma


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; ValueError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def positive_int(value: Any, name: str, what: str = "") -> int:
    """A positive integer (not bool); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' ' + what if what else ''}, got {value!r}")
    return int(value)
