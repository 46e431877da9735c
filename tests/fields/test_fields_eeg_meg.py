"""EEG (four-sphere) and MEG (spherical, infinite) forward models: LFPykit, analytic values, montages."""
import numpy as np
import pytest
from fields_helpers import HEAD, rel_err
from lfpykit import eegmegcalc

from mtlneuron import fields


@pytest.mark.neuron
def test_eeg_identical_to_lfpykit(trial):
    loc = np.array([10000.0, -5000.0, 77000.0])
    out = fields.eeg(trial, electrodes="biosemi64", dipole_location=loc)
    el = np.stack([out[c].values for c in "xyz"], axis=1)
    # LFPykit stops its series when a term falls below iter_factor x the partial sum (2e-8 by default)
    ref = eegmegcalc.FourSphereVolumeConductor(el, radii=list(fields.DEFAULT_RADII),
                                               sigmas=list(fields.DEFAULT_SIGMAS), iter_factor=1e-15)
    expected = ref.get_dipole_potential(trial["dipole"].values.T.astype(float), loc).T * 1e3  # mV -> uV
    assert out.dims == ("time", "electrode") and out.sizes["electrode"] == 64 and out.attrs["units"] == "uV"
    assert rel_err(out.values, expected) < 1e-10
    avg = fields.eeg(trial, electrodes="biosemi64", dipole_location=loc, reference="average")
    np.testing.assert_allclose(avg.values, expected - expected.mean(axis=1, keepdims=True), rtol=1e-6, atol=1e-12)


@pytest.mark.neuron
@pytest.mark.parametrize("model, cls", [("spherical", eegmegcalc.SphericallySymmetricVolCondMEG),
                                        ("infinite", eegmegcalc.InfiniteHomogeneousVolCondMEG)])
def test_meg_identical_to_lfpykit(trial, model, cls):
    loc = np.array([20000.0, 0.0, 70000.0])
    sensors = fields.helmet(30)
    p = trial["dipole"].values.T.astype(float)
    xyz = fields.meg(trial, sensors, dipole_location=loc, model=model, component="xyz")
    ref = cls(sensors)
    b = ref.calculate_B(p, loc) * 1e12  # LFPykit's B x 1e12 = fT
    assert xyz.dims == ("time", "sensor", "component") and xyz.attrs["units"] == "fT"
    assert rel_err(xyz.transpose("sensor", "component", "time").values, b) < 1e-6
    radial = fields.meg(trial, sensors, dipole_location=loc, model=model)
    normal = sensors / np.linalg.norm(sensors, axis=1, keepdims=True)
    assert rel_err(radial.values.T, np.einsum("sk,skt->st", normal, b)) < 1e-6


def test_ten_nAm_radial_dipole_gives_microvolts():
    """10 nA m radial dipole under the vertex electrode, default four-sphere head.

    The brain radius is 79 mm and the scalp 90 mm, so the closest a dipole gets to
    the scalp inside the brain is 11 mm; we put it 12 mm below the scalp (1 mm
    below the brain surface).
    """
    p = fields.dipole_dataset([0.0, 0.0, 10.0], units="nA m")
    out = fields.eeg(p, electrodes=[[0.0, 0.0, 90000.0]], dipole_location=(0.0, 0.0, 78000.0))
    value = float(out.values[0, 0])
    print(f"10 nA m radial dipole 12 mm below the scalp (default head): {value:.2f} uV at the vertex")
    assert 1.0 < value < 100.0
    assert value == pytest.approx(7.37, abs=0.01)


def test_meg_units_against_biot_savart_in_si():
    """Infinite-medium MEG in fT equals mu0/(4 pi) p x R / R^3 in SI units."""
    p_nam = np.array([10.0, 0.0, 0.0])  # nA m, tangential
    loc = np.array([0.0, 0.0, 70000.0])  # um
    sensor = np.array([[0.0, 30000.0, 105000.0]])
    out = fields.meg(fields.dipole_dataset(p_nam, units="nA m"), sensor, dipole_location=loc, model="infinite",
                     component="xyz")
    r_si = (sensor[0] - loc) * 1e-6
    b_si = 1e-7 * np.cross(p_nam * 1e-9, r_si) / np.linalg.norm(r_si) ** 3  # tesla
    np.testing.assert_allclose(out.values[0, 0], b_si * 1e15, rtol=1e-10)
    sph = fields.meg(fields.dipole_dataset(p_nam, units="nA m"), sensor, dipole_location=loc)
    print(f"10 nA m tangential dipole at 70 mm, sensor 35 mm away: |B| infinite {np.linalg.norm(b_si) * 1e15:.0f} fT, "
          f"spherical radial {float(sph.values[0, 0]):.0f} fT")
    assert 10 < abs(float(sph.values[0, 0])) < 10000


def test_radial_dipole_is_silent_in_spherical_meg():
    out = fields.meg(fields.dipole_dataset([0, 0, 10.0], units="nA m"), dipole_location=(0, 0, 60000.0))
    assert np.abs(out.values).max() < 1e-9


def test_montages_on_scalp():
    m20, m64 = fields.montage("10-20"), fields.montage("biosemi64")
    assert m20.sizes["electrode"] == 19 and m64.sizes["electrode"] == 64
    for m in (m20, m64, fields.montage("10-10"), fields.montage("GSN-HydroCel-129")):
        r = np.linalg.norm(np.stack([m[c].values for c in "xyz"], axis=1), axis=1)
        np.testing.assert_allclose(r, HEAD.scalp_radius)
    assert float(m20["z"].sel(electrode="Cz")) == pytest.approx(90000.0)
    assert float(m20["y"].sel(electrode="Fz")) > 0 > float(m20["y"].sel(electrode="Pz"))  # nose = +y
    assert float(m20["x"].sel(electrode="C4")) > 0 > float(m20["x"].sel(electrode="C3"))  # right = +x
    # MNE's spherical 10-20: the T7 ring is 10 % of the nasion-inion arc (18 deg) above the equator
    assert float(m20["theta"].sel(electrode="T7")) == pytest.approx(72.0, abs=0.01)
    # BioSemi's published positions: P9/P10 lie 25 deg below the T7-T8 circle
    assert float(m64["theta"].sel(electrode="P9")) == pytest.approx(115.0, abs=0.5)
    assert list(fields.montage(["T3", "Cz"])["electrode"].values) == ["T7", "Cz"]
    assert m64.attrs["source"] == "MNE biosemi64" and "projection" in m64.attrs
    assert fields.MONTAGES["biosemi64"] == tuple(m64["electrode"].values) and "easycap-M1" in fields.MONTAGES


def test_montages_from_mne_objects_are_projected_onto_the_scalp():
    mne = pytest.importorskip("mne")
    dig = mne.channels.make_standard_montage("biosemi64")
    m = fields.montage(dig)
    ours = fields.montage("biosemi64")
    np.testing.assert_allclose(np.stack([m[c].values for c in "xyz"], 1),
                               np.stack([ours[c].values for c in "xyz"], 1), atol=1e-6)
    info = mne.create_info(list(dig.ch_names), 1000.0, "eeg")
    info.set_montage(dig)  # MNE moves it into its head frame (origin between the ears, ~40 mm below the centre)
    from_info = fields.montage(info)
    xyz = np.stack([from_info[c].values for c in "xyz"], 1)
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), HEAD.scalp_radius)
    cos = np.sum(xyz * np.stack([ours[c].values for c in "xyz"], 1), axis=1) / HEAD.scalp_radius ** 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5  # the fitted centre undoes MNE's shift
    colin = fields.montage("colin27_1020")  # MRI-based: not a sphere, recorded in the attrs
    assert 0.002 < colin.attrs["source_sphere_rms"] < 0.01  # m
    p = fields.dipole_dataset([0.0, 0.0, 10.0], units="nA m")
    np.testing.assert_allclose(fields.eeg(p, electrodes=info).values, fields.eeg(p, electrodes="biosemi64").values,
                               rtol=0.05, atol=0.02)


def test_lead_field_of_many_locations_in_one_call():
    rng = np.random.default_rng(3)
    locs = rng.normal(size=(200, 3))
    locs *= (78000 * rng.uniform(0.1, 1, 200) / np.linalg.norm(locs, axis=1))[:, None]
    many = fields.lead_field("biosemi64", locs, reference="average")
    assert many.dims == ("location", "electrode", "axis") and many.shape == (200, 64, 3)
    for i in (0, 57, 199):
        np.testing.assert_allclose(many.values[i], fields.lead_field("biosemi64", locs[i], reference="average").values,
                                   rtol=1e-12, atol=1e-15)
    meg = fields.MEGModel(fields.helmet(30)).get_transformation_matrix(locs)
    assert meg.shape == (200, 30, 3)
    np.testing.assert_allclose(meg[57], fields.MEGModel(fields.helmet(30)).get_transformation_matrix(locs[57]))


def test_electrode_reference():
    p = fields.dipole_dataset(np.outer(np.hanning(5), [3.0, -2.0, 8.0]), units="nA m")
    free = fields.eeg(p, electrodes="10-20", dipole_location=(10000, 20000, 60000))
    cz = fields.eeg(p, electrodes="10-20", dipole_location=(10000, 20000, 60000), reference="Cz")
    np.testing.assert_allclose(cz.values, free.values - free.sel(electrode="Cz").values[:, None], atol=1e-12)
    assert cz.attrs["reference"] == "Cz" and free.attrs["reference"] == "infinity"
    with pytest.raises(ValueError, match="not one of the electrodes"):
        fields.eeg(p, electrodes="10-20", reference="Xx")


def test_positions_in_the_wrong_unit_are_refused():
    p = fields.dipole_dataset([0.0, 0.0, 10.0], units="nA m")
    with pytest.raises(ValueError, match="positions are in um"):
        fields.eeg(p, dipole_location=(0.0, 0.0, 0.07))  # metres
    with pytest.raises(ValueError, match="positions are in um"):
        fields.eeg(p, dipole_location=(0.0, 0.0, 70.0))  # mm
    with pytest.raises(ValueError, match="positions are in um"):
        fields.eeg(p, electrodes=[[0.0, 0.0, 0.09]])
    with pytest.raises(ValueError, match="positions are in um"):
        fields.meg(p, sensors=[[0.0, 0.0, 0.105]], dipole_location=(0, 0, 70000.0))
