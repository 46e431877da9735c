"""mtl.evaluate on synthetic data with known answers (surrogate outputs against ground truth)."""
import numpy as np
import pytest
import xarray as xr

from mtlneuron import evaluate as ev


def _trial(v: np.ndarray, spikes, dipole: np.ndarray, dt: float = 0.5) -> xr.Dataset:
    n_time, n_seg = v.shape
    return xr.Dataset(
        {"v": (("time", "segment"), v, {"units": "mV"}), "dipole": (("time", "axis"), dipole, {"units": "nA um"}),
         "spike_times": ("spike", np.asarray(spikes, float), {"units": "ms"})},
        coords={"time": np.arange(n_time) * dt, "segment": [f"seg[{i}]" for i in range(n_seg)],
                "region": ("segment", ["soma"] + ["apical_tuft"] * (n_seg - 1)), "axis": ["x", "y", "z"]},
        attrs={"dt": dt, "cell": "synthetic"})


@pytest.fixture
def synthetic():
    rng = np.random.default_rng(0)
    v = -65 + 5 * rng.standard_normal((2000, 3))
    v[[200, 600, 1400], 0] = 30.0  # spikes in the soma trace
    dipole = np.stack([rng.standard_normal(2000), 100 * rng.standard_normal(2000), np.zeros(2000)], axis=1)
    return _trial(v, [100.0, 300.0, 700.0], dipole)


def test_evaluate_perfect(synthetic):
    score = ev.evaluate(synthetic, synthetic)
    np.testing.assert_allclose(score["r_clipped"].values, 1.0)
    np.testing.assert_allclose(score["rmse_raw"].values, 0.0, atol=1e-12)
    np.testing.assert_allclose(score["ve_clipped"].values, 1.0)
    np.testing.assert_allclose(score["spike_f1"].values, 1.0)
    np.testing.assert_allclose(score["spike_mean_abs_shift"].values, 0.0)
    np.testing.assert_allclose(score["dipole_r"].values[:2], 1.0)
    assert np.isnan(score["dipole_r"].values[2])  # zero-variance axis is not scored
    assert list(score["region"].values) == ["soma", "apical_tuft"]
    assert float(score["soma_r_clipped"]) == pytest.approx(1.0)
    assert np.isnan(float(score["drift_ratio"]))  # 1 s is too short for the 2 x 5 s comparison
    assert score.attrs["v_clip"] == -40.0
    assert ev(synthetic, synthetic)["spike_f1"].shape == (2,)  # the module itself is callable


def test_evaluate_uses_the_recorded_soma_index(synthetic):
    """The soma is the segment recorded as soma_index when the data have one, not the first 'soma' region."""
    pred = synthetic.copy(deep=True)
    pred["v"].values[:, 0] += np.random.default_rng(2).standard_normal(2000)  # segment 0 now imperfect
    by_region = ev.evaluate(pred, synthetic)
    assert float(by_region["soma_r_clipped"]) < 0.99
    recorded = ev.evaluate(pred, synthetic.assign_attrs(soma_index=2))
    assert float(recorded["soma_r_clipped"]) == pytest.approx(1.0)
    assert float(ev.evaluate(pred.assign_attrs(soma_index=1), synthetic)["soma_r_clipped"]) == pytest.approx(1.0)


def test_evaluate_shifted_spikes_and_matching(synthetic):
    pred = synthetic.assign(spike_times=("spike", np.array([107.0, 307.0, 703.0])))
    score = ev.evaluate(pred, synthetic, windows=(5.0, 10.0))
    np.testing.assert_allclose(score["spike_f1"].values, [1 / 3, 1.0])
    np.testing.assert_allclose(score["spike_mean_abs_shift"].values, [3.0, 17 / 3])
    t, p = ev.match_spikes(np.array([100.0]), np.array([98.0, 101.0]), 5.0)
    assert t.tolist() == [0] and p.tolist() == [1]  # one to one, nearest first
    t, p = ev.match_spikes(np.array([100.0, 104.0]), np.array([103.0]), 5.0)
    assert t.tolist() == [1] and p.tolist() == [0]
    s = ev.spike_scores([np.array([100.0])], [np.array([98.0, 101.0])], 5.0)
    assert (s["precision"], s["recall"]) == (0.5, 1.0)
    none = ev.spike_scores([np.array([np.nan])], [np.array([])], 5.0)
    assert np.isnan(none["f1"]) and np.isnan(none["precision"])


def test_evaluate_drift_and_errors():
    n = 12000  # 12 s at 1 ms
    rng = np.random.default_rng(1)
    v = -65 + 3 * rng.standard_normal((n, 1))
    zeros = np.zeros((n, 3))
    truth = _trial(v, [], zeros, dt=1.0)
    growing = _trial(v + np.linspace(0.5, 3.0, n)[:, None], [], zeros, dt=1.0)
    steady = _trial(v + 0.5, [], zeros, dt=1.0)
    assert float(ev.evaluate(growing, truth)["drift_ratio"]) > 1.5
    assert float(ev.evaluate(growing, truth)["drift_ok"]) == 0.0
    assert float(ev.evaluate(steady, truth)["drift_ok"]) == 1.0
    assert float(ev.evaluate(steady, truth)["drift_ratio"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(steady.isel(time=slice(0, 100)), truth)
    with pytest.raises(ValueError, match="dt"):
        ev.evaluate(steady.assign_attrs(dt=0.5), truth)
