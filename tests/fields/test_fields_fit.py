"""Dipole fitting (EEG, MEG, whitened), the fast lead-field kernels, and fit_scale."""
import numpy as np
import pytest
import xarray as xr
from fields_helpers import HEAD, random_location, simulated_eeg

from mtlneuron import fields
from mtlneuron.fields import kernels
from mtlneuron.fields.eeg_model import EEGModel
from mtlneuron.fields.meg_model import MEGModel
from mtlneuron.geometry import fibonacci_cap


def test_fast_forward_models_match_lfpykit():
    rng = np.random.default_rng(5)
    m = fields.montage("biosemi64")
    scalp = np.stack([m[c].values for c in "xyz"], axis=1) * (1 - 1e-12)
    unit = fibonacci_cap(8, np.pi)
    for _ in range(3):
        loc = random_location(rng)
        for el in (scalp, unit * 79500.0, unit * 83000.0):  # scalp, CSF (ECoG), skull
            g = kernels.four_sphere_gain(HEAD.radii, HEAD.sigmas, el, loc)
            ref = EEGModel(HEAD, el).get_transformation_matrix(loc)
            assert np.abs(g - ref).max() / np.abs(ref).max() < 2e-5
        sensors = fields.helmet(20)
        for model in ("spherical", "infinite"):
            ref = MEGModel(sensors, HEAD, model, "xyz").get_transformation_matrix(loc)
            np.testing.assert_allclose(kernels.meg_gain(sensors, loc, model), ref, rtol=1e-9, atol=1e-20)


def test_fit_dipole_noise_free_and_noisy():
    rng = np.random.default_rng(2024)
    for _ in range(2):
        loc = random_location(rng)
        data, amp, ori = simulated_eeg(rng, loc, 0.0)
        fit = fields.fit_dipole(data, n_starts=3)
        err = np.linalg.norm(fit["location"].values * 1e3 - loc) / 1e3
        assert err < 0.1, f"noise-free location error {err:.4f} mm"
        assert fit["gof"].item() > 99.99 and fit["location"].attrs["units"] == "mm"
        np.testing.assert_allclose(fit["moment"].values, np.outer(amp, ori), rtol=1e-3, atol=1e-3 * np.abs(amp).max())
        noisy, _, ori = simulated_eeg(rng, loc, 0.05)
        fit = fields.fit_dipole(noisy, n_starts=3)
        err = np.linalg.norm(fit["location"].values * 1e3 - loc) / 1e3
        print(f"dipole at {np.round(loc / 1e3, 1)} mm: 5% noise location error {err:.3f} mm, GOF {fit['gof'].item():.2f}%")
        assert err <= 5.0
        assert fit["residual"].dims == ("time", "electrode") and fit["moment"].attrs["units"] == "nA m"
        assert abs(abs(float(fit["orientation"].values @ ori)) - 1) < 1e-2


def test_fit_dipole_whitened_and_meg():
    rng = np.random.default_rng(7)
    loc = np.array([20000.0, 30000.0, 50000.0])
    data, _, _ = simulated_eeg(rng, loc, 0.02)
    sd = np.linspace(0.5, 2.0, 64) * 0.02 * np.sqrt(np.mean(data.values ** 2))
    noisy = data.copy(data=data.values + sd * rng.normal(size=data.shape))
    fit = fields.fit_dipole(noisy, noise_cov=sd ** 2, n_starts=2)
    assert np.linalg.norm(fit["location"].values * 1e3 - loc) < 5000 and fit.attrs["whitened"] == 1
    p = fields.dipole_dataset(np.outer(np.hanning(20), [8.0, -3.0, 1.0]), units="nA m")
    b = fields.meg(p, fields.helmet(60), dipole_location=loc)
    fit = fields.fit_dipole(b, n_starts=2)
    assert np.linalg.norm(fit["location"].values * 1e3 - loc) < 100.0 and fit["gof"].item() > 99.9


def test_fit_scale():
    t = np.arange(200) * 0.5
    sim = fields.dipole_dataset(np.c_[0 * t, 0 * t, np.sin(t / 5)], t)  # nA um
    measured = xr.DataArray(np.c_[0 * t, 0 * t, 3e-5 * np.sin(t / 5) + 1e-6], dims=("time", "axis"),
                            coords={"time": t, "axis": list("xyz")}, attrs={"units": "nA m"})
    out = fields.fit_scale(sim, measured, offset=True)
    assert out["scale"].item() == pytest.approx(30.0, rel=1e-9)  # 30 cells of 1e-6 nA m
    assert out["offset"].values[2] == pytest.approx(1e-6, rel=1e-6)
    assert out["explained"].item() > 99.999 and out["fitted"].dims == ("time", "axis")
    assert fields.fit_scale(np.arange(5.0), 2 * np.arange(5.0))["scale"].item() == pytest.approx(2.0)
