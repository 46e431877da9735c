import subprocess
import sys
from pathlib import Path

import lfpykit
import numpy as np
import pytest

import mtlneuron as mtl

BARE = Path(__file__).parents[1] / "benchmarks" / "bare_neuron_l5pc.py"


def test_schema_units_and_provenance(l5pc_trial, l5pc):
    drive, ds = l5pc_trial
    assert ds["v"].dims == ("time", "segment") and ds["v"].shape == (600, 55)
    assert ds["imem"].dims == ("time", "segment")
    assert ds["dipole"].dims == ("time", "axis") and list(ds["axis"].values) == ["x", "y", "z"]
    assert ds["inputs"].dims == ("time", "site") and ds.sizes["site"] == 200
    units = {"v": "mV", "imem": "nA", "dipole": "nA um", "spike_times": "ms", "inputs": "uS"}
    for name, unit in units.items():
        assert ds[name].attrs["units"] == unit
        assert ds[name].attrs["long_name"]
    assert ds["time"].attrs["units"] == "ms"
    for key in ["cell", "dt", "neuron_dt", "celsius", "v_init", "neuron_version", "lfpy_version",
                "hnn_core_version", "mtlneuron_version", "seed", "command", "downsampling"]:
        assert key in ds.attrs, key
    assert ds.attrs["celsius"] == 37.0 and ds.attrs["neuron_dt"] == 0.025 and ds.attrs["seed"] == 3
    np.testing.assert_allclose(ds["inputs"].values, mtl.inputs.bin(drive, 0.5).values, rtol=1e-6)


def test_spikes_are_soma_threshold_crossings(l5pc_trial, l5pc):
    _, ds = l5pc_trial
    spikes = ds["spike_times"].values
    soma = ds["v"].values[:, l5pc.soma_index]
    assert spikes.size > 0, "the default drive should make the l5pc fire in 300 ms"
    for t in spikes:
        k = int(t / 0.5)
        assert soma[max(k - 2, 0):k + 4].max() > 0.0


def test_matches_cell_built_by_hand_and_hnn_core_dipole(l5pc_trial, l5pc, tmp_path):
    """Rebuild the synapses from cell.sites in plain NEURON + hnn-core, same events."""
    drive, ds = l5pc_trial
    sites = l5pc.sites
    inp = tmp_path / "in.npz"
    np.savez(inp, section=l5pc.segments["section"].values[sites["segment"].values].astype(str),
             sec_x=sites["sec_x"].values, point_process=sites["point_process"].values.astype(str),
             nrn_params=sites["nrn_params"].values.astype(str), time=drive["time"].values,
             site=drive["site"].values, weight=drive["weight"].values, duration=drive.attrs["duration"])
    out = tmp_path / "out.npz"
    subprocess.run([sys.executable, str(BARE), str(inp), str(out)], check=True, capture_output=True)
    ref = {k: v[0] for k, v in np.load(out).items()}
    n = ds.sizes["time"]
    v_ref = ref["v"][: n * 20].reshape(n, 20).mean(axis=1)
    v = ds["v"].values[:, l5pc.soma_index]
    assert np.corrcoef(v, v_ref)[0, 1] > 0.999
    assert np.abs(v - v_ref).max() < 0.5  # mV
    # hnn-core's dipole mechanism (fAm) against our z dipole converted to nA m
    hnn_nAm = ref["dipole_fAm"][: n * 20].reshape(n, 20).mean(axis=1) * 1e-6
    ours_nAm = ds["dipole"].sel(axis="z").values * 1e-6
    r = np.corrcoef(ours_nAm, hnn_nAm)[0, 1]
    assert r > 0.99, r
    assert np.std(ours_nAm) == pytest.approx(np.std(hnn_nAm), rel=0.2)


def _geometry(cell):
    s = cell.segments
    return lfpykit.CellGeometry(x=np.c_[s["x0"], s["x1"]], y=np.c_[s["y0"], s["y1"]],
                                z=np.c_[s["z0"], s["z1"]], d=s["diam"].values)


def test_dipole_from_imem_and_from_voltages(l5pc_trial, l5pc):
    _, ds = l5pc_trial
    D = lfpykit.CurrentDipoleMoment(_geometry(l5pc)).get_transformation_matrix()
    imem = ds["imem"].values.astype(float)
    p_imem = imem @ D.T
    p = ds["dipole"].values

    def rel_rmse(a, b):
        return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))

    assert rel_rmse(p, p_imem) < 0.02
    M = l5pc.vmem_to_imem()
    assert M.shape == (55, 55)
    p_v = (ds["v"].values.astype(float) @ M.T) @ D.T
    assert rel_rmse(p_v, p_imem) < 0.02
    # charge conservation: membrane currents sum to ~0 at every step
    assert np.abs(imem.sum(axis=1)).max() < 1e-3 * np.abs(imem).max()


def test_rest_is_steady(point):
    ds = mtl.simulate(point, mtl.inputs.empty(point, 100.0))
    v = ds["v"].values[:, 0]
    assert np.ptp(v) < 0.01 and -70 < v[0] < -60
    assert ds.sizes["spike"] == 0


def test_somatic_ionic_currents(point):
    """At rest hh's sodium + potassium currents cancel its leak; in a spike sodium flows
    in first and potassium out after."""
    drive = mtl.inputs.volley(point, [20.0], sites=list(range(8)), weight=0.003, duration=60.0)
    ds = mtl.simulate(point, drive, dt=0.025)
    assert ds["i_ion"].attrs["units"] == "nA" and list(ds["ion"].values) == ["na", "k"]
    assert ds.sizes["spike"] == 1
    ina, ik = ds["i_ion"].sel(ion="na").values, ds["i_ion"].sel(ion="k").values
    v, t = ds["v"].values[:, 0], ds["time"].values
    area = np.pi * 25.0 * 25.0  # um2, L = diam = 25 um
    leak = 0.0003 * (v - (-54.3)) * area * 1e-2  # hh defaults, mA/cm2 * um2 -> nA
    rest = t < 15
    np.testing.assert_allclose((ina + ik + leak)[rest], 0.0, atol=1e-4)
    spike = float(ds["spike_times"].values[0])
    t_na, t_k = t[np.argmin(ina)], t[np.argmax(ik)]
    assert -0.5 < t_na - spike < 2.0 and ina.min() < -5.0  # hh at 6.3 degC: a slow upstroke
    assert 0.0 < t_k - t_na < 3.0 and ik.max() > 5.0


def test_one_alpha_site_takes_many_events(point):
    drive = mtl.inputs.volley(point, [10.0, 60.0], sites=[0], weight=0.0005, duration=100.0)
    v = mtl.simulate(point, drive, dt=0.025)["v"].values[:, 0]
    rest = v[0]
    t = np.arange(v.size) * 0.025
    # two separate EPSPs, each peaking a few ms after its event
    for onset in (10.0, 60.0):
        window = (t > onset) & (t < onset + 20)
        assert v[window].max() - rest > 1.0
        assert 1.0 < t[window][np.argmax(v[window])] - onset < 8.0
    assert v[(t > 45) & (t < 55)].max() - rest < 0.2  # back to rest in between


def test_nmda_component_outlasts_ampa():
    cell = mtl.cells.get("point_nmda")
    kinds = cell.sites["point_process"].values.astype(str)
    ampa, nmda = int(np.flatnonzero(kinds == "MtlAlphaSyn")[0]), int(np.flatnonzero(kinds == "MtlAmpaNmda")[0])
    responses = {}
    for name, site in (("ampa", ampa), ("nmda", nmda)):
        drive = mtl.inputs.volley(cell, [10.0], sites=[site], weight=0.0005, duration=100.0)
        responses[name] = mtl.simulate(cell, drive)["v"].values[:, 0]
    rest = responses["ampa"][0]
    late = slice(int(40 / 0.5), int(60 / 0.5))  # 30-50 ms after the event
    assert (responses["nmda"][late] - rest).mean() > 3 * max((responses["ampa"][late] - rest).mean(), 1e-3)


@pytest.mark.parametrize("dt", [0.0, -0.5, 0.3, 7.0])
def test_bad_dt(point, dt):
    drive = mtl.inputs.poisson(point, 100.0, seed=0)
    with pytest.raises(ValueError, match="dt"):
        mtl.simulate(point, drive, dt=dt)


def test_not_a_cell():
    with pytest.raises(TypeError, match="must be an mtlneuron Cell"):
        mtl.simulate("l5pc", None)


def test_plot(l5pc_trial, tmp_path):
    _, ds = l5pc_trial
    fig = mtl.simulate.plot(ds, tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 10_000
    assert len(fig.axes) >= 4


def test_short_trial_after_a_long_one(point):
    """Recorders are reused across trials of different lengths in one worker."""
    long = mtl.simulate(point, mtl.inputs.poisson(point, 400.0, seed=1))
    short = mtl.simulate(point, mtl.inputs.poisson(point, 50.0, seed=1))
    assert long.sizes["time"] == 800 and short.sizes["time"] == 100
