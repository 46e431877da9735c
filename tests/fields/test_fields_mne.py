"""MNE-Python: our EEG/MEG forward vs MNE's sphere model, fits of MNE-simulated data, objects both ways."""
import warnings

import numpy as np
import pytest
from fields_helpers import HEAD

from mtlneuron import fields

mne = pytest.importorskip("mne")  # a dependency of mtlneuron: skipped only in a broken install

LOCS = np.array([[20000.0, -30000.0, 50000.0], [-45000.0, 10000.0, 40000.0], [5000.0, 35000.0, 62000.0],
                 [0.0, -20000.0, 74000.0]])  # um


@pytest.fixture(scope="module")
def infos():
    zero = fields.dipole_dataset(np.zeros((1, 3)))
    eeg = fields.eeg(zero, electrodes="biosemi64", dipole_location=LOCS[0])
    meg = fields.meg(zero, fields.helmet(102), dipole_location=LOCS[0])
    return fields.to_mne(eeg).info, fields.to_mne(meg).info


@pytest.fixture(scope="module")
def sphere():
    return mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=HEAD.scalp_radius * 1e-6,
                                 relative_radii=tuple(r / HEAD.scalp_radius for r in HEAD.radii),
                                 sigmas=HEAD.sigmas, verbose=False)


def mne_gain(info, sphere, locs):
    """MNE's lead field (L, n_channel, 3), V or T per A m, for x, y, z dipoles at locs (um)."""
    pos = np.repeat(locs * 1e-6, 3, axis=0)
    dip = mne.Dipole(np.arange(len(pos)) * 1e-3, pos, np.ones(len(pos)), np.tile(np.eye(3), (len(locs), 1)),
                     np.ones(len(pos)))
    fwd, _ = mne.make_forward_dipole(dip, sphere, info, verbose=False)
    return fwd["sol"]["data"].reshape(-1, len(locs), 3).transpose(1, 0, 2)


def test_forward_matches_mne_sphere_model(infos, sphere):
    info_eeg, info_meg = infos
    g_mne = mne_gain(info_eeg, sphere, LOCS) * 1e-9  # V / (A m) -> uV / (nA um)
    g = fields.EEGModel(HEAD, info_eeg, reference="average").get_transformation_matrix(LOCS)
    g_mne -= g_mne.mean(axis=1, keepdims=True)
    rel = np.linalg.norm(g - g_mne, axis=(1, 2)) / np.linalg.norm(g_mne, axis=(1, 2))
    print(f"EEG vs MNE (Berg-Scherg approximation): relative error median {np.median(rel):.2e}, worst {rel.max():.2e}")
    assert rel.max() < 0.01
    b_mne = mne_gain(info_meg, sphere, LOCS)  # T / (A m) = fT / (nA um)
    b = fields.MEGModel(info_meg, HEAD).get_transformation_matrix(LOCS)
    rel = np.linalg.norm(b - b_mne, axis=(1, 2)) / np.linalg.norm(b_mne, axis=(1, 2))
    print(f"MEG vs MNE (Sarvas): relative error median {np.median(rel):.2e}, worst {rel.max():.2e}")
    assert rel.max() < 1e-6


def test_fit_of_mne_simulated_average_referenced_eeg(infos, sphere):
    info_eeg, _ = infos
    rng = np.random.default_rng(4)
    t = np.arange(30) * 0.5
    amp = 20.0 * np.exp(-t / 10) * np.sin(2 * np.pi * t / 15)  # nA m
    peak = int(np.argmax(np.abs(amp)))
    gains = mne_gain(info_eeg, sphere, LOCS[:2])  # V / (A m)
    for loc, g in zip(LOCS[:2], gains):
        ori = rng.normal(size=3)
        ori /= np.linalg.norm(ori)
        clean = (g @ ori)[:, None] * amp[None, :] * 1e-9  # V
        sd = 0.05 * np.sqrt(np.mean((clean - clean.mean(0)) ** 2))
        evoked = mne.EvokedArray(clean + sd * rng.normal(size=clean.shape), info_eeg, tmin=0.0, verbose=False)
        evoked.set_eeg_reference("average", projection=True, verbose=False).apply_proj(verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the reference is known from the projector: no warning
            fit = fields.fit_dipole(evoked, n_starts=2)
        assert fit.attrs["reference"] == "average"
        cov = mne.make_ad_hoc_cov(evoked.info, std=dict(eeg=sd), verbose=False)
        theirs, _ = mne.fit_dipole(evoked.copy().crop(evoked.times[peak], evoked.times[peak]), cov, sphere,
                                   verbose=False)
        ours_peak = fields.fit_dipole(evoked.copy().crop(evoked.times[peak], evoked.times[peak]), mode="moving")
        err = np.linalg.norm(fit["location"].values - loc) / 1e3
        err_peak = np.linalg.norm(ours_peak["location"].values[0] - loc) / 1e3
        err_mne = np.linalg.norm(theirs.pos[0] * 1e6 - loc) / 1e3
        print(f"MNE-simulated EEG at {loc / 1e3} mm: ours fixed {err:.3f} mm, ours at the peak {err_peak:.3f} mm, "
              f"MNE at the peak {err_mne:.3f} mm")
        assert err < 1.0 and err_peak < 2.0 and abs(err_peak - err_mne) < 1.0
        dip = fit.to_mne()
        assert isinstance(dip, mne.Dipole)
        np.testing.assert_allclose(dip.pos[peak], fit["location"].values * 1e-6)
        np.testing.assert_allclose(dip.amplitude, np.linalg.norm(fit["moment"].values, axis=1) * 1e-9)


def test_unknown_reference_of_mne_data_warns_and_still_fits(infos, sphere):
    info_eeg, _ = infos
    g = mne_gain(info_eeg, sphere, LOCS[2:3])[0]
    clean = (g @ [0.2, 0.5, 0.8])[:, None] * np.hanning(10)[None, :] * 2e-8
    evoked = mne.EvokedArray(clean - clean.mean(axis=0), info_eeg, verbose=False)  # average-referenced, unsaid
    with pytest.warns(UserWarning, match="reference is unknown"):
        fit = fields.fit_dipole(evoked, n_starts=2)
    assert np.linalg.norm(fit["location"].values - LOCS[2]) < 1000.0  # um: model error of MNE's approximation


def test_to_mne_and_back():
    p = fields.dipole_dataset(np.outer(np.hanning(8), [3.0, -2.0, 8.0]), np.arange(8) * 0.5, units="nA m")
    e = fields.eeg(p, electrodes="biosemi64", dipole_location=LOCS[0], reference="average")
    evoked = fields.to_mne(e)
    assert evoked.get_channel_types(unique=True) == ["eeg"] and evoked.info["sfreq"] == 2000.0
    np.testing.assert_allclose(evoked.data, e.values.T * 1e-6)  # uV -> V
    assert fields.from_mne(evoked).attrs["reference"] == "average"
    pos = np.array([ch["loc"][:3] for ch in evoked.info["chs"]])
    np.testing.assert_allclose(pos, np.stack([e[c].values for c in "xyz"], 1) * 1e-6)
    back = fields.from_mne(evoked)
    np.testing.assert_allclose(back.values, e.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back["x"].values, e["x"].values, rtol=1e-9, atol=1e-6)
    b = fields.meg(p, fields.helmet(40), dipole_location=LOCS[0])
    ev_b = fields.to_mne(b)
    assert ev_b.get_channel_types(unique=True) == ["mag"]
    np.testing.assert_allclose(ev_b.data, b.values.T * 1e-15)  # fT -> T
    b2 = fields.meg(p, sensors=ev_b.info, dipole_location=LOCS[0])  # an Info as the sensors
    assert b2.attrs["component"] == "normal"
    np.testing.assert_allclose(b2.values, b.values, rtol=1e-9, atol=1e-9)
    fit = fields.fit_dipole(ev_b, n_starts=2)
    assert np.linalg.norm(fit["location"].values - LOCS[0]) < 1.0  # um
    e_info = fields.eeg(p, electrodes=evoked.info, dipole_location=LOCS[0], reference="average")
    np.testing.assert_allclose(e_info.values, e.values, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="select or average"):
        fields.to_mne(e.expand_dims(trial=2))
