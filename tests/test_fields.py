"""mtlneuron.fields: LFP / EEG / MEG forward models, V -> I_m, dipole fitting.

Every forward model is checked against LFPykit called directly on the same
geometry and currents, plus analytic and unit checks. One 200-ms l5pc
simulation is shared by the whole module.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import lfpykit
import numpy as np
import pytest
import xarray as xr
from lfpykit import eegmegcalc
from scipy.spatial.transform import Rotation

import mtlneuron as mtl
from mtlneuron import fields

HEAD = fields.FourSphere()


@pytest.fixture(scope="module")
def cell():
    return mtl.cells.get("l5pc")


@pytest.fixture(scope="module")
def trial(cell):
    drive = mtl.inputs.poisson(cell, duration=200.0, seed=0)
    return mtl.simulate(cell, drive, dt=0.5)


def geometry(seg):
    return lfpykit.CellGeometry(x=np.c_[seg.x0, seg.x1], y=np.c_[seg.y0, seg.y1], z=np.c_[seg.z0, seg.z1],
                                d=seg.diam.values.astype(float))


def rel_err(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


def random_location(rng, rmax=70000.0, zmin=10000.0):
    while True:
        loc = rng.uniform(-rmax, rmax, 3)
        if np.linalg.norm(loc) < rmax and loc[2] > zmin:
            return loc


# ----------------------------------------------------------------------------- LFP
@pytest.mark.parametrize("method, model", [("linesource", lfpykit.LineSourcePotential),
                                           ("pointsource", lfpykit.PointSourcePotential)])
def test_lfp_identical_to_lfpykit(cell, trial, method, model):
    el = np.r_[fields.laminar_probe(20, 100.0, origin=(50, 0, 1900)), fields.grid(x=[-300, 300], z=[0, 1000])]
    out = fields.lfp(trial, cell, el, method=method, sigma=0.3)
    m = model(geometry(cell.segments), x=el[:, 0], y=el[:, 1], z=el[:, 2], sigma=0.3).get_transformation_matrix()
    ref = (m @ trial["imem"].values.T.astype(float)).T
    assert out.dims == ("time", "electrode") and out.attrs["units"] == "mV"
    assert out["z"].attrs["units"] == "um" and np.allclose(out["z"].values, el[:, 2])
    assert rel_err(out.values, ref) < 1e-6


def test_lfp_of_placed_cell_matches_lfpykit_on_rotated_geometry(cell, trial):
    rot, pos = (0.3, -0.7, 1.1), np.array([100.0, -50.0, 400.0])
    placement = fields.Placement(cell, position=pos, rotation=rot)
    seg = cell.segments
    r = Rotation.from_euler("xyz", rot)  # extrinsic x, then y, then z: an independent implementation
    ends = [r.apply(np.c_[seg[f"x{k}"], seg[f"y{k}"], seg[f"z{k}"]]) + pos for k in (0, 1)]
    geo = lfpykit.CellGeometry(x=np.c_[ends[0][:, 0], ends[1][:, 0]], y=np.c_[ends[0][:, 1], ends[1][:, 1]],
                               z=np.c_[ends[0][:, 2], ends[1][:, 2]], d=seg.diam.values.astype(float))
    el = fields.grid(x=[-400, 400], y=[-100, 100], z=[0, 800, 1600])
    out = fields.lfp(trial, cell, el, placement=placement)
    m = lfpykit.LineSourcePotential(geo, x=el[:, 0], y=el[:, 1], z=el[:, 2], sigma=0.3).get_transformation_matrix()
    assert rel_err(out.values, trial["imem"].values.astype(float) @ m.T) < 1e-6
    # the rotated dipole is D(rotated geometry) @ imem
    d_ref = lfpykit.CurrentDipoleMoment(geo).get_transformation_matrix() @ trial["imem"].values.T.astype(float)
    d_out = fields.dipole(trial, cell, placement=placement, source="imem")
    assert rel_err(d_out.values, d_ref.T) < 1e-3  # float32 imem: sum(imem) ~ 1e-4 nA x 400 um shift


def test_far_field_matches_analytic_dipole(cell, trial):
    """phi = p.r / (4 pi sigma |r|^3), 20 cm from the soma in 40 directions, within 1%."""
    dist = 2e5
    el = fields._fibonacci_cap(40, np.pi) * dist
    out = fields.lfp(trial, cell, el, source="v", sigma=0.3)
    p = fields.dipole(trial, cell, source="v").values
    analytic = p @ el.T / (4 * np.pi * 0.3 * dist ** 3)
    err = rel_err(out.values, analytic)
    print(f"far-field LFP vs analytic dipole at 20 cm: relative RMSE {100 * err:.2f}%")
    assert err < 0.01


def test_lfp_and_dipole_from_v_agree_with_imem(cell, trial):
    el = fields.laminar_probe(20, 100.0, origin=(30, 0, 1900))
    lfp_i = fields.lfp(trial, cell, el, source="imem")
    lfp_v = fields.lfp(trial, cell, el, source="v")
    d_i = fields.dipole(trial, cell, source="imem")
    d_v = fields.dipole(trial, cell, source="v")
    e_lfp, e_dip = rel_err(lfp_v, lfp_i), rel_err(d_v, d_i)
    print(f"from v vs from imem: LFP relative RMSE {100 * e_lfp:.4f}%, dipole {100 * e_dip:.4f}%")
    assert e_lfp < 0.02 and e_dip < 0.02
    assert lfp_v.attrs["current_source"] == "v"
    # the recorded dipole is D @ imem
    assert rel_err(d_i, trial["dipole"]) < 1e-5


def test_surrogate_like_data_with_trials(cell, trial):
    """Predictions may hold only v and dipole, with a leading trial dim."""
    pred = xr.concat([trial[["v", "dipole"]], trial[["v", "dipole"]] * 2], dim="trial")
    el = fields.laminar_probe(5, 300.0, origin=(50, 0, 1500))
    out = fields.lfp(pred, cell, el)
    assert out.dims == ("trial", "time", "electrode") and out.attrs["current_source"] == "v"
    np.testing.assert_allclose(out.isel(trial=1), 2 * out.isel(trial=0), rtol=1e-6, atol=1e-12)
    e = fields.eeg(pred, electrodes="10-20")
    assert e.dims == ("trial", "time", "electrode") and e.attrs["dipole_source"] == "dipole"


# ----------------------------------------------------------------------------- EEG / MEG
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


def test_population_dipole_and_eeg(cell, trial):
    positions = [[0, 0, 77000], [3000, 0, 76900], [0, -4000, 76800]]
    pop = fields.place(cell, positions, rotations="radial")
    for pl, pos in zip(pop, positions):  # radial: the apical (+z) axis along the outward normal
        np.testing.assert_allclose(pl.rotation_matrix @ [0, 0, 1], np.asarray(pos) / np.linalg.norm(pos), atol=1e-12)
    pd = fields.population_dipole(trial, pop)
    p = trial["dipole"].values.astype(float)
    expected = sum(p @ pl.rotation_matrix.T for pl in pop)
    np.testing.assert_allclose(pd["total"].values, expected, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(pd["location"].values, positions)
    assert pd["dipole"].dims == ("time", "cell", "axis")
    out = fields.eeg(trial, electrodes="10-20", placement=pop)
    el = np.stack([out[c].values for c in "xyz"], axis=1)
    four = eegmegcalc.FourSphereVolumeConductor(el, list(fields.DEFAULT_RADII), list(fields.DEFAULT_SIGMAS))
    ref = sum(four.get_dipole_potential((p @ pl.rotation_matrix.T).T, np.asarray(pos, float))
              for pl, pos in zip(pop, positions)).T * 1e3
    assert rel_err(out.values, ref) < 1e-6
    # one row per cell (a 'cell' dim) is matched to the placements in order
    per_cell = xr.concat([trial[["dipole"]] * k for k in (1.0, 0.0, 0.0)], dim="cell")
    solo = fields.eeg(trial, electrodes="10-20", placement=pop[0])
    np.testing.assert_allclose(fields.eeg(per_cell, electrodes="10-20", placement=pop).values, solo.values,
                               rtol=1e-10, atol=1e-12)
    el = pop[0].transform(fields.laminar_probe(4, 500.0, origin=(60, 0, 1800)))
    per_cell_i = xr.concat([trial[["imem"]] * k for k in (1.0, 0.0, 0.0)], dim="cell")
    np.testing.assert_allclose(fields.lfp(per_cell_i, cell, el, placement=pop).values,
                               fields.lfp(trial, cell, el, placement=pop[0]).values, rtol=1e-10, atol=1e-15)
    geo = pop.geometry()
    assert geo.sizes["cell"] == 3 and np.allclose(geo["position"].values, positions)


# ----------------------------------------------------------------------------- dipole fitting
def test_fast_forward_models_match_lfpykit():
    rng = np.random.default_rng(5)
    m = fields.montage("biosemi64")
    scalp = np.stack([m[c].values for c in "xyz"], axis=1) * (1 - 1e-12)
    unit = fields._fibonacci_cap(8, np.pi)
    for _ in range(3):
        loc = random_location(rng)
        for el in (scalp, unit * 79500.0, unit * 83000.0):  # scalp, CSF (ECoG), skull
            g = fields._fast_eeg_gain(HEAD, el, loc)
            ref = HEAD.model(el).get_transformation_matrix(loc) * 1e3
            assert np.abs(g - ref).max() / np.abs(ref).max() < 2e-5
        sensors = fields.helmet(20)
        for model in ("spherical", "infinite"):
            np.testing.assert_allclose(fields._fast_meg_gain(sensors, loc, model),
                                       fields._meg_gain(sensors, loc, model), rtol=1e-9, atol=1e-20)


def _simulated_eeg(rng, loc, noise, head=HEAD, n_time=40):
    t = np.arange(n_time) * 0.5
    ori = rng.normal(size=3)
    ori /= np.linalg.norm(ori)
    amp = 20.0 * np.exp(-t / 10) * np.sin(2 * np.pi * t / 15)  # nA m
    clean = fields.eeg(fields.dipole_dataset(np.outer(amp, ori), t, units="nA m"), head, "biosemi64",
                       dipole_location=loc)
    sd = noise * np.sqrt(np.mean(clean.values ** 2))
    return clean.copy(data=clean.values + sd * rng.normal(size=clean.shape)), amp, ori


def test_fit_dipole_noise_free_and_noisy():
    rng = np.random.default_rng(2024)
    for _ in range(2):
        loc = random_location(rng)
        data, amp, ori = _simulated_eeg(rng, loc, 0.0)
        fit = fields.fit_dipole(data, n_starts=3)
        err = np.linalg.norm(fit["location"].values * 1e3 - loc) / 1e3
        assert err < 0.1, f"noise-free location error {err:.4f} mm"
        assert fit["gof"].item() > 99.99 and fit["location"].attrs["units"] == "mm"
        np.testing.assert_allclose(fit["moment"].values, np.outer(amp, ori), rtol=1e-3, atol=1e-3 * np.abs(amp).max())
        noisy, _, ori = _simulated_eeg(rng, loc, 0.05)
        fit = fields.fit_dipole(noisy, n_starts=3)
        err = np.linalg.norm(fit["location"].values * 1e3 - loc) / 1e3
        print(f"dipole at {np.round(loc / 1e3, 1)} mm: 5% noise location error {err:.3f} mm, GOF {fit['gof'].item():.2f}%")
        assert err <= 5.0
        assert fit["residual"].dims == ("time", "electrode") and fit["moment"].attrs["units"] == "nA m"
        assert abs(abs(float(fit["orientation"].values @ ori)) - 1) < 1e-2


def test_fit_dipole_whitened_and_meg():
    rng = np.random.default_rng(7)
    loc = np.array([20000.0, 30000.0, 50000.0])
    data, _, _ = _simulated_eeg(rng, loc, 0.02)
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


# ----------------------------------------------------------------------------- torch
def test_torch_operators_gradcheck_and_match_numpy(cell, trial):
    import torch

    v = torch.tensor(trial["v"].values[:3], dtype=torch.float64, requires_grad=True)
    el = fields.laminar_probe(4, 400.0, origin=(50, 0, 1500))
    ops = [fields.VmemToImem(cell), fields.CurrentDipole(cell, from_voltage=True),
           fields.LFPOperator(cell, el, from_voltage=True)]
    for op in ops:
        assert torch.autograd.gradcheck(op, (v,), eps=1e-6, atol=1e-6)
    imem, dip, lfp_t = (op(v).detach().numpy() for op in ops)
    np.testing.assert_allclose(imem, trial["v"].values[:3].astype(float) @ fields.vmem_to_imem_matrix(cell).T)
    ref = fields.lfp(trial.isel(time=slice(0, 3)), cell, el, source="v").values
    np.testing.assert_allclose(lfp_t, ref, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dip, fields.dipole(trial.isel(time=slice(0, 3)), cell, source="v").values,
                               rtol=1e-10, atol=1e-9)
    eeg_op = fields.EEGOperator(electrodes="10-20")
    p = torch.tensor(trial["dipole"].values[:4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(eeg_op, (p,), eps=1e-6, atol=1e-6)
    np.testing.assert_allclose(eeg_op(p).detach().numpy(),
                               fields.eeg(trial.isel(time=slice(0, 4)), electrodes="10-20").values, rtol=1e-10)
    assert ops[0](v.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="last axis"):
        ops[0](torch.zeros(3, 10, dtype=torch.float64))


# ----------------------------------------------------------------------------- plots
def test_plots_return_figures(cell, trial):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = fields.eeg(trial, electrodes="biosemi64")
    fig = fields.plot_topography(e.isel(time=100), names=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    fig2 = fields.plot_topography(e.isel(time=100).values, "biosemi64")
    lfp = fields.lfp(trial, cell, fields.laminar_probe(20, 100.0, origin=(50, 0, 1900)))
    fig3 = fields.plot_laminar(lfp)
    assert isinstance(fig3, matplotlib.figure.Figure)
    plt.close("all")
    with pytest.raises(ValueError, match="select one time"):
        fields.plot_topography(e)
    plt.close(fig2)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_clear_errors(cell, trial):
    p = fields.dipole_dataset([0, 0, 10.0], units="nA m")
    with pytest.raises(ValueError, match="inside the brain sphere"):
        fields.eeg(p, electrodes=[[0, 0, 70000.0]])
    with pytest.raises(ValueError, match="outside the head"):
        fields.eeg(p, electrodes=[[0, 0, 95000.0]])
    with pytest.raises(ValueError, match="outside the brain sphere"):
        fields.eeg(p, electrodes="10-20", dipole_location=(0, 0, 80000.0))
    with pytest.raises(ValueError, match="outside the brain sphere"):
        fields.meg(p, dipole_location=(0, 85000.0, 0))
    with pytest.raises(ValueError, match="inside the brain sphere"):
        fields.meg(p, sensors=[[0, 0, 50000.0]], dipole_location=(0, 0, 40000.0))
    with pytest.raises(ValueError, match="either dipole_location= or placement="):
        fields.eeg(trial, placement=fields.Placement(cell, (0, 0, 70000)), dipole_location=(0, 0, 70000))
    el = fields.laminar_probe(3)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        fields.lfp(trial, cell, np.zeros((4, 2)))
    point = mtl.cells.get("point")
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.lfp(trial, point, el)
    with pytest.raises(ValueError, match="'imem' \\(nA\\) or 'v' \\(mV\\)"):
        fields.lfp(trial[["dipole", "spike_times"]], cell, el)
    with pytest.raises(ValueError, match="'imem' \\(nA\\) or 'v' \\(mV\\)"):
        fields.dipole(trial[["spike_times"]], cell)
    for bad in ("0.3", [0.3], np.array([0.3, 0.3]), None, True):
        with pytest.raises(TypeError, match="sigma must be a float"):
            fields.lfp(trial, cell, el, sigma=bad)
    with pytest.raises(TypeError, match=r"sigmas\[1\] must be a float"):
        fields.FourSphere(sigmas=(0.47, "1.71", 0.02, 0.41))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        fields.lfp(trial, cell, el, sigma=-0.3)
    with pytest.raises(ValueError, match="method must be one of"):
        fields.lfp(trial, cell, el, method="linear")
    with pytest.raises(ValueError, match="radii must be positive and increasing"):
        fields.FourSphere(radii=(80000, 79000, 85000, 90000))
    data = fields.eeg(p, electrodes="10-20")
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.fit_dipole(data, sensors="biosemi64")
    with pytest.raises(ValueError, match="noise_cov must be"):
        fields.fit_dipole(data, noise_cov=np.eye(3))
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.fit_scale(np.zeros(10), np.zeros(12))
    with pytest.raises(ValueError, match="unknown montage"):
        fields.montage("10-5")
    with pytest.raises(ValueError, match="unknown electrode"):
        fields.montage(["Cz", "Xx1"])
    with pytest.raises(ValueError, match="position must have 3 components"):
        fields.Placement(cell, position=(0, 0))
    with pytest.raises(TypeError, match="placement must be"):
        fields.lfp(trial, cell, el, placement=(0, 0, 0))
    with pytest.raises(ValueError, match="cells but the placement has"):
        fields.eeg(xr.concat([trial[["dipole"]]] * 2, dim="cell"), placement=fields.place(cell, [[0, 0, 70000]] * 3))
