"""Dipole fitting (fixed, moving, whitened, EEG references, MEG), the lead-field kernels, and fit_scale."""
import warnings

import numpy as np
import pytest
import xarray as xr
from fields_helpers import HEAD, random_location, simulated_eeg
from lfpykit.eegmegcalc import FourSphereVolumeConductor

from mtlneuron import fields
from mtlneuron.fields import kernels
from mtlneuron.geometry import fibonacci_cap


def test_kernels_match_lfpykit():
    """The vectorized series equals LFPykit's (run to convergence) for scalp, skull and CSF electrodes."""
    rng = np.random.default_rng(5)
    m = fields.montage("biosemi64")
    scalp = np.stack([m[c].values for c in "xyz"], axis=1) * (1 - 1e-12)
    unit = fibonacci_cap(8, np.pi)
    locs = np.array([random_location(rng) for _ in range(3)] + [[0.0, 3000.0, 78900.0]])
    for el in (scalp, unit * 79500.0, unit * 83000.0, np.r_[scalp, unit * 83000.0]):
        g = kernels.four_sphere_gain(HEAD.radii, HEAD.sigmas, el, locs)
        for loc, gl in zip(locs, g):
            ref = FourSphereVolumeConductor(el, list(HEAD.radii), list(HEAD.sigmas),
                                            iter_factor=1e-15).get_transformation_matrix(loc) * 1e3
            assert np.abs(gl - ref).max() / np.abs(ref).max() < 1e-10
    sensors = fields.helmet(20)
    from lfpykit.eegmegcalc import InfiniteHomogeneousVolCondMEG, SphericallySymmetricVolCondMEG

    for model, cls in (("spherical", SphericallySymmetricVolCondMEG), ("infinite", InfiniteHomogeneousVolCondMEG)):
        g = kernels.meg_gain(sensors, locs, model)
        for loc, gl in zip(locs, g):
            ref = cls(sensors)
            np.testing.assert_allclose(gl, ref.get_transformation_matrix(loc) * ref.mu * 1e12, rtol=1e-9, atol=1e-20)


def test_fit_dipole_noise_free_and_noisy():
    rng = np.random.default_rng(2024)
    for _ in range(2):
        loc = random_location(rng)
        data, amp, ori = simulated_eeg(rng, loc, 0.0)
        fit = fields.fit_dipole(data, n_starts=3)
        err = np.linalg.norm(fit["location"].values - loc)
        assert err < 1.0, f"noise-free location error {err:.4f} um"
        assert fit["gof"].item() > 99.99 and fit["location"].attrs["units"] == "um"
        np.testing.assert_allclose(fit["moment"].values, np.outer(amp, ori), rtol=1e-3, atol=1e-3 * np.abs(amp).max())
        noisy, _, ori = simulated_eeg(rng, loc, 0.05)
        fit = fields.fit_dipole(noisy, n_starts=3)
        err = np.linalg.norm(fit["location"].values - loc) / 1e3
        print(f"dipole at {np.round(loc / 1e3, 1)} mm: 5% noise location error {err:.3f} mm, GOF {fit['gof'].item():.2f}%")
        assert err <= 5.0
        assert fit["residual"].dims == ("time", "electrode") and fit["moment"].attrs["units"] == "nA m"
        assert abs(abs(float(fit["orientation"].values @ ori)) - 1) < 1e-2


def test_moving_dipole():
    rng = np.random.default_rng(11)
    loc = random_location(rng)
    data, amp, ori = simulated_eeg(rng, loc, 0.0, n_time=12)
    fit = fields.fit_dipole(data, mode="moving")
    assert fit["location"].dims == ("time", "axis") and fit.attrs["mode"] == "moving"
    big = np.abs(amp) > 0.05 * np.abs(amp).max()
    assert np.linalg.norm(fit["location"].values[big] - loc, axis=1).max() < 1.0  # um
    np.testing.assert_allclose(fit["moment"].values[big], np.outer(amp, ori)[big], rtol=1e-4, atol=1e-6)
    assert fit["gof_time"].values[big].min() > 99.999


def test_fit_dipole_whitened_and_meg():
    rng = np.random.default_rng(7)
    loc = np.array([20000.0, 30000.0, 50000.0])
    data, _, _ = simulated_eeg(rng, loc, 0.02)
    sd = np.linspace(0.5, 2.0, 64) * 0.02 * np.sqrt(np.mean(data.values ** 2))
    noisy = data.copy(data=data.values + sd * rng.normal(size=data.shape))
    fit = fields.fit_dipole(noisy, noise_cov=sd ** 2, n_starts=2)
    assert np.linalg.norm(fit["location"].values - loc) < 5000 and fit.attrs["whitened"] == 1
    p = fields.dipole_dataset(np.outer(np.hanning(20), [8.0, -3.0, 1.0]), units="nA m")
    b = fields.meg(p, fields.helmet(60), dipole_location=loc)
    fit = fields.fit_dipole(b, n_starts=2)
    assert np.linalg.norm(fit["location"].values - loc) < 100.0 and fit["gof"].item() > 99.9


LOC = np.array([25000.0, -20000.0, 55000.0])


def _fit_error(data, **kwargs):
    fit = fields.fit_dipole(data, n_starts=2, **kwargs)
    return fit, np.linalg.norm(fit["location"].values - LOC) / 1e3


def test_average_reference_stated_either_way_or_warned():
    rng = np.random.default_rng(8)
    free, _, _ = simulated_eeg(rng, LOC, 0.05)
    avg = free.copy(data=free.values - free.values.mean(axis=1, keepdims=True))
    avg.attrs["reference"] = "average"
    unstated = avg.copy()
    del unstated.attrs["reference"]
    _, ref_err = _fit_error(free)  # reference-free data fitted as such
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit, err_attr = _fit_error(avg)  # stated in the attrs: no warning
        _, err_arg = _fit_error(unstated, reference="average")  # stated by the argument: no warning
    assert fit.attrs["fit_reference"] == "average" and max(err_attr, err_arg) < 1.5
    with pytest.warns(UserWarning, match="reference is unknown"):
        _, err_unknown = _fit_error(unstated)
    assert err_unknown < 1.5  # the average reference is exact for any common reference
    wrong = avg.assign_attrs(reference="infinity")
    with pytest.warns(UserWarning, match="sum to ~0"):
        _, err_wrong = _fit_error(wrong)
    assert err_wrong < 1.5
    with pytest.raises(ValueError, match="sum to ~0"):
        fields.fit_dipole(unstated, reference=None)
    # referenced to an electrode (which is then zero): exact too
    cz = free.copy(data=free.values - free.sel(electrode="Cz").values[:, None]).assign_attrs(reference="Cz")
    _, err_cz = _fit_error(cz)
    print(f"location error (mm): reference-free {ref_err:.3f}, average stated {err_attr:.3f} / given {err_arg:.3f}, "
          f"unknown {err_unknown:.3f}, Cz {err_cz:.3f}")
    assert err_cz < 1.5


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
