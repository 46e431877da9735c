"""Issues 12.3 and 12.6 (inputs): bounded work, and every bad parameter refused by its own name."""
from __future__ import annotations

import math

import numpy as np
import pytest

import mtlneuron as mtl
from mtlneuron import inputs


def test_poisson_with_an_absurd_rate_is_refused_before_drawing(point):
    with pytest.raises(ValueError, match="max_events"):
        inputs.poisson(point, 100.0, rate=1e9)


def test_regular_with_an_absurd_rate_is_refused_before_allocating(point):
    with pytest.raises(ValueError, match="max_events"):
        inputs.regular(point, 1000.0, rate=1e9)


def test_volley_bound(point):
    with pytest.raises(ValueError, match="max_events"):
        inputs.volley(point, np.arange(100.0), max_events=10)


def test_the_bound_is_documented_and_overridable(point):
    assert "max_events" in inputs.poisson.__doc__ and inputs.MAX_EVENTS == mtl.conventions.MAX_EVENTS
    drive = inputs.poisson(point, 1000.0, rate=20.0, seed=0)
    with pytest.raises(ValueError, match="max_events=5"):
        inputs.poisson(point, 1000.0, rate=20.0, seed=0, max_events=5)
    assert inputs.poisson(point, 1000.0, rate=20.0, seed=0, max_events=10**9).identical(drive)
    assert inputs.regular(point, 100.0, rate=1e5, max_events=10**6).sizes["event"] > 0  # 1e4 events: allowed


BAD = [
    ("regular", {"rate": math.nan}, "rate"),
    ("regular", {"rate": math.inf}, "rate"),
    ("regular", {"rate": 0.0}, "rate"),
    ("regular", {"rate": "fast"}, "rate"),
    ("regular", {"start": math.inf}, "start"),
    ("regular", {"start": math.nan}, "start"),
    ("regular", {"start": -5.0}, "start"),
    ("regular", {"jitter": math.nan}, "jitter"),
    ("regular", {"jitter": -1.0}, "jitter"),
    ("regular", {"weight": math.nan}, "weight"),
    ("regular", {"weight": -1.0}, "weight"),
    ("regular", {"seed": 1.5}, "seed"),
    ("regular", {"seed": -1}, "seed"),
    ("poisson", {"modulation_depth": math.nan}, "modulation_depth"),
    ("poisson", {"modulation_depth": -0.5}, "modulation_depth"),
    ("poisson", {"modulation_tau": math.nan}, "modulation_tau"),
    ("poisson", {"modulation_tau": 0.0}, "modulation_tau"),
    ("poisson", {"modulation_tau": math.inf}, "modulation_tau"),
    ("poisson", {"seed": 1.5}, "seed"),
    ("poisson", {"seed": -3}, "seed"),
    ("poisson", {"seed": "7"}, "seed"),
    ("poisson", {"rate": math.nan}, "rate"),
    ("poisson", {"rate": (1.0, math.inf)}, "rate"),
    ("poisson", {"weight": {"exc": math.nan}}, "weight"),
    ("poisson", {"max_events": math.nan}, "max_events"),
    ("volley", {"weight": math.nan}, "weight"),
    ("volley", {"weight": math.inf}, "weight"),
    ("volley", {"times": [math.nan]}, "time"),
]


@pytest.mark.parametrize("fn,kwargs,name", BAD, ids=[f"{f}-{k}" for f, k, _ in BAD])
def test_bad_parameters_are_refused_by_name(point, fn, kwargs, name):
    args = {"times": [10.0]} if fn == "volley" else {"duration": 100.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        getattr(inputs, fn)(point, **args)
