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
    ref = eegmegcalc.FourSphereVolumeConductor(el, radii=list(fields.DEFAULT_RADII),
                                               sigmas=list(fields.DEFAULT_SIGMAS))
    expected = ref.get_dipole_potential(trial["dipole"].values.T.astype(float), loc).T * 1e3  # mV -> uV
    assert out.dims == ("time", "electrode") and out.sizes["electrode"] == 64 and out.attrs["units"] == "uV"
    assert rel_err(out.values, expected) < 1e-6
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
    r = np.linalg.norm(np.stack([m64[c].values for c in "xyz"], axis=1), axis=1)
    np.testing.assert_allclose(r, HEAD.scalp_radius)
    assert float(m20["z"].sel(electrode="Cz")) == pytest.approx(90000.0)
    assert float(m20["y"].sel(electrode="Fz")) > 0 > float(m20["y"].sel(electrode="Pz"))  # nose = +y
    assert float(m20["x"].sel(electrode="C4")) > 0 > float(m20["x"].sel(electrode="C3"))  # right = +x
    assert float(m20["theta"].sel(electrode="T7")) == pytest.approx(90.0)
    assert list(fields.montage(["T3", "Cz"])["electrode"].values) == ["T7", "Cz"]
