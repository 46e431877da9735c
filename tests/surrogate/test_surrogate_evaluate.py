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


def _sine_trials(noise_amp: float, n: int = 4000, dt: float = 0.5, seed: int = 3) -> tuple[xr.Dataset, xr.Dataset]:
    """Truth: a 20-Hz sine on the dipole's z axis; pred: the same plus a 300-Hz oscillation."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt / 1000.0
    sine = np.sin(2 * np.pi * 20.0 * t)
    hf = noise_amp * np.sin(2 * np.pi * 300.0 * t + rng.uniform(0, 2 * np.pi))
    v = -65 + rng.standard_normal((n, 2))
    zeros = np.zeros(n)
    truth = _trial(v, [], np.stack([zeros, zeros, sine], axis=1), dt=dt)
    pred = _trial(v, [], np.stack([zeros, zeros, sine + hf], axis=1), dt=dt)
    return pred, truth


def test_dipole_r_is_scored_in_the_eeg_band():
    """300-Hz noise on a 20-Hz dipole: raw r is low, the 100-Hz low-passed (primary) r is ~1."""
    pred, truth = _sine_trials(noise_amp=3.0)
    score = ev.evaluate(pred, truth)
    raw, band = float(score["dipole_r_raw"].sel(axis="z")), float(score["dipole_r"].sel(axis="z"))
    assert raw == pytest.approx(1 / np.sqrt(1 + 9 / 1), abs=0.03)  # sine power 1/2 vs noise 9/2
    assert band > 0.99
    assert float(score["dipole_rel_rmse"].sel(axis="z")) < 0.1 < float(score["dipole_rel_rmse_raw"].sel(axis="z"))
    assert np.isnan(score["dipole_r"].sel(axis="x")) and np.isnan(score["dipole_r_raw"].sel(axis="x"))
    assert score.attrs["dipole_lowpass_hz"] == 100.0 and score.attrs["dipole_lowpass_order"] == 4
    unfiltered = ev.evaluate(pred, truth, dipole_lowpass=None)
    np.testing.assert_allclose(unfiltered["dipole_r"].values, score["dipole_r_raw"].values)
    # a cutoff above 300 Hz lets the noise through
    assert float(ev.evaluate(pred, truth, dipole_lowpass=400.0)["dipole_r"].sel(axis="z")) < 0.5


def test_lowpass_is_zero_phase():
    """A 20-Hz sine passes the 100-Hz low-pass without lag (a causal filter would delay it ~2.6 ms)."""
    dt = 0.5
    t = np.arange(4000) * dt / 1000.0
    sine = np.sin(2 * np.pi * 20.0 * t)
    out = ev.lowpass(np.stack([sine, 2 * sine], axis=1), dt, 100.0, 4, axis=0)
    inner = slice(200, -200)
    np.testing.assert_allclose(out[inner, 0], sine[inner], atol=0.01)
    np.testing.assert_allclose(out[inner, 1], 2 * sine[inner], atol=0.02)
    lags = np.arange(-20, 21)
    xc = [np.dot(np.roll(out[:, 0], k)[inner], sine[inner]) for k in lags]
    assert lags[int(np.argmax(xc))] == 0
    # at or above Nyquist (dt 5 ms: 100 Hz) the signal is returned unchanged
    np.testing.assert_array_equal(ev.lowpass(sine, 5.0, 100.0, 4), sine)
    with pytest.raises(ValueError, match="cutoff"):
        ev.lowpass(sine, dt, 0.0, 4)


def test_lowpass_filters_each_trial_apart():
    """Trials are filtered one by one: a trial's score does not depend on its neighbours."""
    pred, truth = _sine_trials(noise_amp=3.0)
    pred2, truth2 = _sine_trials(noise_amp=0.0, seed=4)
    both_p = xr.concat([pred, pred2], dim="trial")
    both_t = xr.concat([truth, truth2], dim="trial")
    lp = ev.lowpass(both_p["dipole"].values, 0.5, 100.0, 4, axis=1)
    one = ev.lowpass(pred["dipole"].values, 0.5, 100.0, 4, axis=0)
    np.testing.assert_allclose(lp[0], one)
    assert float(ev.evaluate(both_p, both_t)["dipole_r"].sel(axis="z")) > 0.99


def test_soma_scalars_on_raw_and_clipped_voltage(synthetic):
    pred = synthetic.copy(deep=True)
    pred["v"].values[[200, 600, 1400], 0] = -65.0  # spikes missed: raw soma v suffers, clipped hardly
    score = ev.evaluate(pred, synthetic)
    assert float(score["soma_ve_raw"]) < 0.8 < 0.9 < float(score["soma_ve_clipped"])
    assert float(score["soma_ve_clipped"]) == pytest.approx(float(score["ve_clipped"][0]))
    assert float(score["soma_r_raw"]) == pytest.approx(float(score["r_raw"][0]))
    assert float(score["soma_rmse_raw"]) > float(score["soma_rmse_clipped"])
