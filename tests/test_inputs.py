import numpy as np
import pytest
import xarray as xr

import mtlneuron as mtl


def test_poisson_is_reproducible_and_labelled(l5pc):
    a = mtl.inputs.poisson(l5pc, 500.0, seed=1)
    b = mtl.inputs.poisson(l5pc, 500.0, seed=1)
    c = mtl.inputs.poisson(l5pc, 500.0, seed=2)
    xr.testing.assert_identical(a, b)
    assert a.sizes["event"] != c.sizes["event"] or not np.array_equal(a["time"], c["time"])
    assert a["time"].attrs["units"] == "ms" and a["weight"].attrs["units"] == "uS"
    assert np.all(np.diff(a["time"].values) >= 0)
    assert a.attrs["duration"] == 500.0 and a.attrs["n_sites"] == 200
    mtl.inputs.validate(a, l5pc)


def test_poisson_rates_and_weights_follow_the_ranges(l5pc):
    drive = mtl.inputs.poisson(l5pc, 20000.0, rate=10.0, weight=(0.001, 0.002), seed=0, modulation_depth=0.0)
    rate = drive.sizes["event"] / l5pc.n_sites / 20.0
    assert rate == pytest.approx(10.0, rel=0.05)
    w = drive["weight"].values
    assert w.min() >= 0.001 and w.max() <= 0.002
    # one weight per site
    per_site = {s: set(w[drive["site"].values == s]) for s in range(5)}
    assert all(len(v) == 1 for v in per_site.values())


def test_modulation_gives_quiet_and_active_stretches(l5pc):
    drive = mtl.inputs.poisson(l5pc, 5000.0, seed=0)
    counts, _ = np.histogram(drive["time"].values, bins=np.arange(0, 5001, 250))
    assert counts.max() > 3 * max(counts.min(), 1)


def test_bin_sums_weights_per_bin(point):
    drive = mtl.inputs.volley(point, [1.2, 1.4, 7.0], sites=[0, 3], weight=0.002, duration=10.0)
    grid = mtl.inputs.bin(drive, 0.5)
    assert grid.dims == ("time", "site") and grid.shape == (20, point.n_sites)
    assert grid.attrs["units"] == "uS"
    assert grid.values[2, 0] == pytest.approx(0.004)  # 1.2 and 1.4 fall in [1.0, 1.5)
    assert grid.values[14, 3] == pytest.approx(0.002)
    assert grid.values.sum() == pytest.approx(6 * 0.002)


def test_regular_volley_concat(point):
    reg = mtl.inputs.regular(point, 100.0, sites="exc", rate=100.0, weight=0.001)
    assert reg.sizes["event"] == 8 * 10
    vol = mtl.inputs.volley(point, [50.0], sites="inh", duration=100.0)
    both = mtl.inputs.concat(reg, vol)
    assert both.sizes["event"] == 83 and both.attrs["duration"] == 100.0
    assert np.all(np.diff(both["time"].values) >= 0)


@pytest.mark.parametrize("duration", [0.0, -5.0, float("nan"), "long"])
def test_bad_duration(point, duration):
    with pytest.raises(ValueError, match="duration"):
        mtl.inputs.poisson(point, duration)


def _edit(drive, **changes):
    drive = drive.copy(deep=True)
    for name, (index, value) in changes.items():
        drive[name].values[index] = value
    return drive


@pytest.mark.parametrize("change, message", [
    ({"time": (0, -1.0)}, r"event time -1.0 ms is outside \[0, duration=100.0\)"),
    ({"time": (-1, 100.0)}, r"event time 100.0 ms is outside"),
    ({"weight": (0, np.nan)}, "event weight nan uS is NaN or negative"),
    ({"weight": (0, -0.001)}, "event weight -0.001 uS is NaN or negative"),
    ({"site": (0, 11)}, r"site index 11 out of range \[0, 11\)"),
    ({"site": (0, -1)}, r"site index -1 out of range"),
])
def test_bad_events_are_named(point, change, message):
    drive = _edit(mtl.inputs.poisson(point, 100.0, seed=0), **change)
    with pytest.raises(ValueError, match=message):
        mtl.inputs.validate(drive, point)
    with pytest.raises(ValueError, match=message):
        mtl.simulate(point, drive)


def test_drive_for_another_cell(point, l5pc):
    drive = mtl.inputs.poisson(l5pc, 100.0, seed=0)
    with pytest.raises(ValueError, match="made for 200 sites"):
        mtl.simulate(point, drive)


def test_bad_rate_specs(point):
    with pytest.raises(ValueError, match="rate must be finite and >= 0"):
        mtl.inputs.poisson(point, 100.0, rate=-1.0)
    with pytest.raises(ValueError, match="low <= high"):
        mtl.inputs.poisson(point, 100.0, weight=(0.002, 0.001))
    with pytest.raises(ValueError, match="one value per site"):
        mtl.inputs.poisson(point, 100.0, rate=np.ones(3))
