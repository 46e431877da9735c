"""Learned spike waveforms: recovered by least squares, stored in checkpoints, placed at predicted spikes."""
import numpy as np
import pytest
import torch
import xarray as xr

from mtlneuron.surrogate import Surrogate
from mtlneuron.surrogate.predict import to_dataset
from mtlneuron.surrogate.waveforms import fit_waveforms, lag_bins, place_waveforms, spike_bins
from mtlneuron.training import TrialArrays, fit_spike_waveforms


def _template(lags, n_ch):
    t = lags[:, None].astype(float)
    return np.exp(-0.5 * t ** 2) * (1 + np.arange(n_ch))[None, :] * 40 - 5 * (t > 2)


def test_fit_recovers_overlapping_templates():
    lags = lag_bins(1.0, 4.0, 0.5)
    assert lags[0] == -2 and lags[-1] == 8
    truth = _template(lags, 3)
    rng = np.random.default_rng(0)
    bins = [np.sort(rng.choice(np.arange(5, 995), 30, replace=False)) for _ in range(5)]
    bins[0] = np.concatenate([bins[0], bins[0][:5] + 3])  # bursts: templates overlap
    resid = [place_waveforms(1000, b, lags, truth) + 0.1 * rng.standard_normal((1000, 3)) for b in bins]
    est = fit_waveforms(resid, bins, lags, ridge=1e-6)
    assert np.abs(est - truth).max() < 0.15
    with pytest.raises(ValueError, match="no spikes"):
        fit_waveforms([np.zeros((10, 3))], [np.array([], int)], lags)


def test_placement_is_cut_at_the_edges_and_spike_bins_follow_detect():
    lags = np.arange(-2, 3)
    out = place_waveforms(5, np.array([0, 4]), lags, np.ones((5, 1)))
    assert out[:, 0].tolist() == [1, 1, 2, 1, 1]
    assert spike_bins(np.array([0.25, 1.75, np.nan, 99.0]), 0.5, 10).tolist() == [0, 3]


def test_model_learns_stores_and_applies_waveforms(tiny, random_drive, tmp_path):
    n_seg = tiny.n_segments
    x = random_drive(tiny.n_sites, batch=4, steps=200).numpy()
    with torch.no_grad():
        out = tiny.run(torch.as_tensor(x))[0]
    lags = lag_bins(1.0, 3.0, tiny.dt)
    spikes = np.zeros((4, 200), np.float32)
    spikes[:, [40, 120]] = 1
    shape = np.zeros((lags.size, n_seg + 3))
    shape[lags == 0, :n_seg], shape[lags == 1, n_seg:] = 90.0, 7.0  # the AP peak, a dipole transient
    add = np.stack([place_waveforms(200, np.flatnonzero(s), lags, shape) for s in spikes])
    # voltage: the AP rises from -65 to +25 mV, 65 mV above the -40-mV clip (the part the heads never see);
    # dipole: the model's prediction plus a transient it misses
    v = np.full(out["v"].shape, -65.0, np.float32) + add[..., :n_seg]
    arrays = TrialArrays(x, v, out["dipole"].numpy() + add[..., n_seg:], spikes, np.arange(4), tiny.dt)
    fit_spike_waveforms(tiny, arrays, [0, 1, 2, 3], pre_ms=1.0, post_ms=3.0, at="true")
    expected = shape.copy()
    expected[:, :n_seg] = np.maximum(shape[:, :n_seg] - 65.0 - (-40.0), 0.0)
    assert tiny.config.v_clip == -40.0
    assert np.abs(tiny.spike_waveform.numpy() - expected).max() < 0.2  # ridge shrinks by ~0.1 %
    assert tiny.spike_waveform_lags.tolist() == lags.tolist()

    tiny.save(tmp_path / "m.pt")
    back = Surrogate.load(tmp_path / "m.pt")
    assert torch.equal(back.spike_waveform, tiny.spike_waveform)
    assert int(back.spike_waveform_lag0) == lags[0]

    outs = {"v": out["v"].numpy(), "dipole": out["dipole"].numpy(), "spike_prob": np.zeros((4, 200), np.float32)}
    outs["spike_prob"][:, 60] = 0.9  # a predicted spike in bin 60
    ds = to_dataset(back, outs, 0.5)
    assert float(ds["v"].isel(trial=0, time=60, segment=0)) == pytest.approx(float(outs["v"][0, 60, 0]) + 65, abs=0.2)
    assert float(ds["dipole"].isel(trial=0, time=61, axis=2)) == pytest.approx(float(outs["dipole"][0, 61, 2]) + 7,
                                                                                abs=0.2)
    assert "spike waveforms" in ds["v"].attrs["long_name"]
    # the heads' clipped voltage stays apart, and the clipped metrics score it
    np.testing.assert_allclose(ds["v_clipped"].values, np.minimum(outs["v"], -40.0))
    truth = ds[["v"]].assign(v=ds["v_clipped"] - 1.0)
    from mtlneuron import evaluate

    assert float(evaluate(ds, truth)["soma_rmse_clipped"]) == pytest.approx(1.0, abs=1e-4)
    assert float(evaluate(ds.drop_vars("v_clipped"), truth)["soma_rmse_clipped"]) > 1.01


def test_default_waveforms_are_learned_at_the_predicted_spikes(tiny, random_drive, monkeypatch):
    """The default regresses on the model's own spikes: a predicted spike 1 bin late gets the AP 1 bin early."""
    from mtlneuron.training import spike_waveforms as sw

    n_seg, T = tiny.n_segments, 200
    x = random_drive(tiny.n_sites, batch=2, steps=T).numpy()
    true_bins, late = np.array([50, 130]), np.array([51, 131])
    v = np.full((2, T, n_seg), -65.0, np.float32)
    v[:, true_bins, :] = 20.0  # 60 mV above the clip
    spikes = np.zeros((2, T), np.float32)
    spikes[:, true_bins] = 1
    arrays = TrialArrays(x, v, np.zeros((2, T, 3), np.float32), spikes, np.arange(2), tiny.dt)
    prob = np.zeros((2, T), np.float32)
    prob[:, late] = 0.9
    fake = {"v": np.full((2, T, n_seg), -65.0, np.float32), "dipole": np.zeros((2, T, 3), np.float32),
            "spike_prob": prob}
    monkeypatch.setattr(sw, "predict_arrays", lambda *a, **k: fake)
    tiny.spike_prob_threshold.fill_(0.5)
    sw.fit_spike_waveforms(tiny, arrays, [0, 1], pre_ms=1.0, post_ms=1.0)
    wave = tiny.spike_waveform.numpy()[:, 0]
    assert tiny.spike_waveform_lags.tolist() == [-2, -1, 0, 1, 2]
    assert wave[1] == pytest.approx(60.0, rel=0.01) and abs(wave[2]) < 0.5
    with pytest.raises(ValueError, match="'predicted' or 'true'"):
        sw.fit_spike_waveforms(tiny, arrays, [0, 1], at="both")


def test_checkpoint_without_waveforms_still_loads(tiny, tmp_path):
    ckpt = tiny.checkpoint()
    for k in ("spike_waveform", "spike_waveform_lag0"):
        ckpt["state_dict"].pop(k)
    model = Surrogate.from_checkpoint(ckpt)
    assert model.spike_waveform.shape[0] == 0
    with pytest.raises(ValueError, match="consecutive"):
        model.set_spike_waveform(np.zeros((3, model.n_segments + 3)), np.array([0, 2, 3]))
    with pytest.raises(ValueError, match="NaN"):
        model.set_spike_waveform(np.full((2, model.n_segments + 3), np.nan), np.array([0, 1]))
