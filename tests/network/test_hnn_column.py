"""The HNN column: cells with hnn-core's synapses, from_hnn against hnn-core, gradients, optimisation, bad input.

Small columns (hnn-core's ``mesh_shape=(3, 3)``) keep hnn-core runs to seconds.
"""
import numpy as np
import pytest
import torch
import xarray as xr

import mtlneuron as mtl
from mtlneuron.network.hnn_model import LAYERS, smooth

hnn_core = pytest.importorskip("hnn_core")
from hnn_core.network_models import add_erp_drives_to_jones_model  # noqa: E402

TSTOP = 60.0


def _column_net(mesh=3, erp=True):
    net = hnn_core.jones_2009_model(add_drives_from_params=False, mesh_shape=(mesh, mesh))
    if erp:
        add_erp_drives_to_jones_model(net)
        for drive in net.external_drives.values():  # all three drives inside a short run
            drive["dynamics"]["mu"] = {"evprox1": 10.0, "evdist1": 25.0, "evprox2": 40.0}[drive["name"]]
    return net


@pytest.fixture(scope="module")
def hnn_net():
    return _column_net()


@pytest.fixture(scope="module")
def column(hnn_net):
    return mtl.network.from_hnn(hnn_net, tstop=TSTOP)


@pytest.fixture(scope="module")
def hnn_run(column):
    return column.run(TSTOP, backend="hnn")


# -- cells -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,hnn_type", [("l23pc", "L2_pyramidal"), ("l5pc_hnn", "L5_pyramidal"),
                                           ("basket", "L2_basket"), ("basket", "L5_basket")])
def test_cell_sites_are_hnn_cores_synapses(name, hnn_type):
    from hnn_core import cells_default

    factory = cells_default.basket if "basket" in hnn_type else cells_default.pyramidal
    template = factory(hnn_type)
    cell = mtl.cells.get(name)
    sites, seg = cell.sites, cell.segments
    got = {(str(seg["section"].values[s]), str(r)): (float(e), float(t1), float(t2))
           for s, r, e, t1, t2 in zip(sites["segment"].values, sites["receptor"].values, sites["e"].values,
                                      sites["tau1"].values, sites["tau2"].values)}
    want = {}
    reachable = {"soma", *template.sect_loc["proximal"], *template.sect_loc["distal"]}  # where hnn-core's locs go
    for sec_name, sec in template.sections.items():
        if sec_name not in reachable:
            continue
        for receptor in sec.syns:
            p = template.synapses[receptor]
            want[(sec_name, receptor)] = (float(p["e"]), float(p["tau1"]), float(p["tau2"]))
    assert got == want
    assert len(got) == sites.sizes["site"]  # one site per (section, receptor), none twice
    assert set(sites["point_process"].values.astype(str)) == {"Exp2Syn"}


def test_l5pc_keeps_the_elife_layout():
    assert mtl.cells.get("l5pc").n_sites == 200
    assert mtl.cells.get("l5pc_hnn").n_sites < 200


# -- reading hnn-core ------------------------------------------------------------------------------

def test_from_hnn_reads_populations_contacts_and_drive_events(hnn_net, column):
    assert [p.name for p in column.populations] == ["L2_basket", "L2_pyramidal", "L5_basket", "L5_pyramidal"]
    assert [p.cell for p in column.populations] == ["basket", "l23pc", "basket", "l5pc_hnn"]
    for p in column.populations:
        assert p.n == len(hnn_net.gid_ranges[p.name])
        np.testing.assert_allclose(p.positions, np.asarray(hnn_net.pos_dict[p.name], dtype=float))
    # hnn-core's law on one entry: L5 basket -> L5 pyramidal soma GABA-A
    k = column.entry_names().index("L5_basket->L5_pyramidal soma/gabaa")
    e = column.entries[k]
    rows = np.flatnonzero(column.contact_entry == k)
    pos = column.positions
    pre, post = column.connections["pre"][rows], column.connections["post"][rows]
    d2 = ((pos[pre, :2] - pos[post, :2]) ** 2).sum(axis=1)
    fall = np.exp(-d2 / e["lamtha"] ** 2)
    np.testing.assert_allclose(column.connections["weight"][rows], e["A_weight"] * fall)
    np.testing.assert_allclose(column.connections["delay"][rows], e["A_delay"] / fall)
    # proximal expands to every proximal section of the target
    k = column.entry_names().index("L2_pyramidal->L2_pyramidal proximal/ampa")
    per_pair = np.unique(column.connections["pre"][column.contact_entry == k] * 10_000
                         + column.connections["post"][column.contact_entry == k], return_counts=True)[1]
    assert set(per_pair) == {len(hnn_net.cell_types["L2_pyramidal"]["cell_object"].sect_loc["proximal"])}
    # drive events are hnn-core's own (its event generation on a copy), each at its NetCon's delay
    from hnn_core.cell import _get_gaussian_connection

    work = hnn_net.copy()
    work._instantiate_drives(tstop=TSTOP, n_trials=1)
    k = column.entry_names().index("evprox1->L5_pyramidal proximal/ampa")
    conn = work.connectivity[k]
    n_sections = len(hnn_net.cell_types["L5_pyramidal"]["cell_object"].sect_loc["proximal"])
    first = work.gid_ranges["evprox1"][0]
    checked = 0
    for src, targets in conn["gid_pairs"].items():
        events = np.asarray(work.external_drives["evprox1"]["events"][0][src - first])
        for target in targets:
            pos_src = work.pos_dict["evprox1"][src - first]
            pos_t = work.pos_dict["L5_pyramidal"][target - work.gid_ranges["L5_pyramidal"][0]]
            w, d = _get_gaussian_connection(pos_src, pos_t, {**conn["nc_dict"], "pos_src": pos_src})
            want = np.sort(np.repeat(events + d, n_sections))
            want = want[want < TSTOP]
            rows = (column.event_entry == k) & (column.drives["gid"] == target)
            np.testing.assert_allclose(np.sort(column.drives["time"][rows]), want)
            np.testing.assert_allclose(column.drives["weight"][rows], w)
            checked += want.size
    assert checked > 0


def _simulate_dipole_here(net):
    """hnn-core's own run, in a worker process: a NEURON network built in the test process would stay in
    every NEURON worker forked from it later."""
    dpl = hnn_core.simulate_dipole(net, tstop=TSTOP, dt=0.025, n_trials=1)[0]
    return {layer: np.asarray(dpl.data[layer]) for layer in LAYERS}


def test_hnn_backend_is_simulate_dipole(hnn_net, column, hnn_run):
    with mtl.nrn.worker.pool(1) as pool:
        data = pool.submit(_simulate_dipole_here, hnn_net.copy()).result()
    n = hnn_run.sizes["time"]
    for layer in LAYERS:
        ref = data[layer][:n * 20].reshape(n, 20).mean(axis=1)
        np.testing.assert_allclose(hnn_run["dipole"].sel(layer=layer).values, ref, rtol=1e-9, atol=1e-12)
    assert hnn_run["dipole"].attrs["units"] == "nA m"
    assert set(hnn_run["population"].values) == {"L2_basket", "L2_pyramidal", "L5_basket", "L5_pyramidal"}
    assert hnn_run["spike_count"].sum() > 0


def test_recorded_cells_sum_to_hnn_cores_dipole(hnn_net, hnn_run):
    data = mtl.network.hnn_cell_trials(hnn_net, TSTOP)
    assert set(data) == {"l23pc", "l5pc_hnn", "basket"}
    col = mtl.network.from_hnn(hnn_net, tstop=TSTOP)
    base = col.baseline()
    l2 = data["l23pc"]["dipole"].sel(axis="z").sum("trial").values * 1e-6
    l5 = data["l5pc_hnn"]["dipole"].sel(axis="z").sum("trial").values * 1e-6
    np.testing.assert_allclose(l2 + base[:, 1], hnn_run["dipole"].sel(layer="L2").values, atol=1e-9)
    np.testing.assert_allclose(l5 + base[:, 2], hnn_run["dipole"].sel(layer="L5").values, atol=1e-9)
    ds = data["l5pc_hnn"]
    assert ds["v"].sizes["segment"] == mtl.cells.get("l5pc_hnn").n_segments
    assert float(ds["inputs"].sum()) > 0
    n_spikes = int(np.isfinite(ds["spike_times"].values).sum())
    assert n_spikes == int(hnn_run["spike_count"].sel(population_name="L5_pyramidal"))


def test_to_hnn_writes_gains_and_leaves_the_input(hnn_net, column):
    before = [c["nc_dict"]["A_weight"] for c in hnn_net.connectivity]
    gains = np.linspace(0.5, 2.0, len(column.entries))
    new = column.to_hnn(gains)
    np.testing.assert_allclose([c["nc_dict"]["A_weight"] for c in new.connectivity], np.asarray(before) * gains)
    assert [c["nc_dict"]["A_weight"] for c in hnn_net.connectivity] == before
    again = mtl.network.from_hnn(new, tstop=TSTOP)
    k = 4
    np.testing.assert_allclose(again.connections["weight"][again.contact_entry == k],
                               column.connections["weight"][column.contact_entry == k] * gains[k])


def test_smoothing_matches_hnn_core():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    from hnn_core.dipole import Dipole

    dpl = Dipole(np.arange(400) * 0.5, x.copy())
    dpl.smooth(30.0)
    ref = np.stack([dpl.data[k] for k in ("agg", "L2", "L5")], axis=1)
    np.testing.assert_allclose(smooth(x, 30.0, 0.5), ref, atol=1e-12)
    np.testing.assert_allclose(smooth(torch.tensor(x), 30.0, 0.5).numpy(), ref, atol=1e-12)


# -- bad input -------------------------------------------------------------------------------------

def test_unknown_or_changed_cell_type_is_refused():
    net = _column_net()
    net.cell_types["L2_basket"]["cell_object"].modify_section("soma", L=5.0)
    with pytest.raises(ValueError, match="L2_basket.*differs from hnn-core's default"):
        mtl.network.from_hnn(net, tstop=TSTOP)
    net = _column_net()
    net._rename_cell_types({"L2_basket": "L2_chandelier"})
    with pytest.raises(ValueError, match="L2_chandelier.*no mtlneuron surrogate"):
        mtl.network.from_hnn(net, tstop=TSTOP)


def test_tonic_bias_nan_weight_and_not_a_network_are_refused():
    net = _column_net()
    net.add_tonic_bias(cell_type="L2_pyramidal", amplitude=1.0)
    with pytest.raises(ValueError, match="tonic biases"):
        mtl.network.from_hnn(net, tstop=TSTOP)
    net = _column_net()
    net.connectivity[3]["nc_dict"]["A_weight"] = float("nan")
    with pytest.raises(ValueError, match="connectivity entry 3 .* weight nan"):
        mtl.network.from_hnn(net, tstop=TSTOP)
    with pytest.raises(ValueError, match="takes an hnn_core.Network"):
        mtl.network.from_hnn("jones", tstop=TSTOP)


def test_unsupported_receptor_is_refused():
    net = _column_net(erp=False)  # hnn-core refuses this receptor when asked; an edited entry gets through
    k = next(i for i, c in enumerate(net.connectivity) if c["target_type"] == "L2_basket")
    net.connectivity[k]["receptor"] = "gabab"
    with pytest.raises(ValueError, match="no synapse 'soma_gabab'"):
        mtl.network.from_hnn(net, tstop=TSTOP)


def test_bad_gains_and_backends_are_refused(column):
    with pytest.raises(ValueError, match="gain of entry 2 .* nan"):
        column.to_hnn([1.0, 1.0, float("nan")] + [1.0] * (len(column.entries) - 3))
    with pytest.raises(ValueError, match="gains for"):
        column.to_hnn([1.0, 2.0])
    with pytest.raises(ValueError, match="backend must be 'surrogate' or 'hnn'"):
        column.run(TSTOP, backend="neuron")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['surrogate'\]"):
        column.run(TSTOP, surrogate={})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['threads'\] of backend 'hnn'"):
        column.run(TSTOP, backend="hnn", threads=2)
    with pytest.raises(ValueError, match="jitter_seed must be an int"):
        column.run(TSTOP, backend="hnn", jitter_seed=0.5)


def test_jittered_drive_events_stay_in_their_bins(column):
    """The jitter ceiling's perturbation: drive events move, the binned input of the surrogate does not."""
    from mtlneuron.nrn.hnn import _drive_cell_delays, _jitter_drive_events

    plain, moved = _column_net(), _column_net()
    _jitter_drive_events(moved, column.dt, seed=1)
    plain._instantiate_drives(tstop=TSTOP, n_trials=1)
    moved._instantiate_drives(tstop=TSTOP, n_trials=1)
    delays = _drive_cell_delays(plain, column.dt)
    n_moved = 0
    for name, drive in plain.external_drives.items():
        first = plain.gid_ranges[name][0]
        for k, (a, b) in enumerate(zip(drive["events"][0], moved.external_drives[name]["events"][0])):
            a, b, d = np.sort(a), np.asarray(b), delays.get(first + k, 0.0)
            np.testing.assert_array_equal(np.floor((a + d) / column.dt), np.floor((b + d) / column.dt))
            n_moved += int(np.sum(np.abs(a - b) > 1e-6))
    assert n_moved > 50


def test_loss_inputs_are_refused_by_name(column):
    with pytest.raises(ValueError, match="Nyquist"):
        mtl.optimize.band_power(15, 1500).check(0.5, 120, column)
    with pytest.raises(ValueError, match="fmin < fmax"):
        mtl.optimize.band_power(60, 15)
    with pytest.raises(ValueError, match="fmin"):
        mtl.optimize.band_power(0, 15)
    short = xr.DataArray(np.zeros(50), dims="time", coords={"time": np.arange(50) * 0.5}, attrs={"units": "nA m"})
    with pytest.raises(ValueError, match="covers 25 ms"):
        mtl.optimize.waveform(short).check(0.5, 120, column)
    odd = xr.DataArray(np.zeros(400), dims="time", coords={"time": np.arange(400) * 0.3}, attrs={"units": "nA m"})
    with pytest.raises(ValueError, match="does not divide the model grid"):
        mtl.optimize.waveform(odd).check(0.5, 120, column)
    with pytest.raises(ValueError, match="metric must be"):
        mtl.optimize.waveform(short, metric="rmse")
    with pytest.raises(ValueError, match="no population 'L6'"):
        mtl.optimize.rate_bounds("L6", 1, 10).check(0.5, 120, column)
    with pytest.raises(ValueError, match="neither an entry index"):
        mtl.optimize.connectivity(column, mtl.optimize.band_power(15, 60), params=["nope"], steps=0)


# -- the surrogate column, gradients, optimisation --------------------------------------------------

def test_surrogate_backend_has_the_hnn_schema(column, hnn_run):
    res = column.run(TSTOP, backend="surrogate")
    assert res["dipole"].dims == hnn_run["dipole"].dims == ("time", "layer")
    assert dict(res.sizes) == {**hnn_run.sizes, "spike": res.sizes["spike"]}
    np.testing.assert_array_equal(res["population"].values, hnn_run["population"].values)
    assert res["dipole"].attrs["units"] == "nA m" and np.all(np.isfinite(res["dipole"].values))
    smoothed = column.run(TSTOP, backend="surrogate", smooth_ms=10.0, scale=3000.0)
    np.testing.assert_allclose(smoothed["dipole"].values, smooth(res["dipole"].values, 10.0, 0.5) * 3000.0,
                               rtol=1e-6)
    cmp = mtl.network.compare(res, hnn_run)
    assert set(cmp["dipole_r"]["layer"].values) == set(LAYERS)
    assert cmp["spike_count"].sizes["backend"] == 2


def test_smooth_gradient_equals_finite_differences(column):
    """With the spike path cut (slope 1e9) the backward pass is the derivative of the run while no spike
    moves: central differences with a step too small to move one must agree (float64: the step can be
    small enough whatever the surrogates' margins to threshold are)."""
    from mtlneuron.optimize.connectivity import GradientRun

    names = column.entry_names()
    entries = np.array([names.index("evprox1->L5_pyramidal proximal/ampa"),
                        names.index("L2_basket->L2_pyramidal soma/gabaa"),
                        names.index("evdist1->L2_pyramidal distal/nmda")])
    surrogates = {c: mtl.Surrogate.pretrained(c).double() for c in ("basket", "l23pc", "l5pc_hnn")}
    run = GradientRun(column, entries, surrogates=surrogates, slope=1e9, checkpoint_ms=None)
    loss = mtl.optimize.band_power(15, 60) + mtl.optimize.band_power(60, 200, layer="L5")
    x = torch.zeros(entries.size, dtype=torch.float64, requires_grad=True)
    value, _ = loss(run.outputs(x))
    value.backward()
    for k in range(entries.size):
        h = 1e-6
        with torch.no_grad():
            up, _ = loss(run.outputs(torch.eye(entries.size, dtype=torch.float64)[k] * h))
            down, _ = loss(run.outputs(-torch.eye(entries.size, dtype=torch.float64)[k] * h))
        fd = float(up - down) / (2 * h)
        assert np.sign(fd) == np.sign(float(x.grad[k]))
        assert abs(float(x.grad[k]) - fd) <= 0.01 * abs(fd) + 1e-6


def test_connectivity_steps_records_history_and_writes_back(hnn_net, column):
    cell_entries = [k for k, e in enumerate(column.entries) if not e["is_drive"]][:4]
    result = mtl.optimize.connectivity(column, mtl.optimize.band_power(15, 60)
                                       + 0.1 * mtl.optimize.rate_bounds("L5_pyramidal", 0.0, 200.0),
                                       params=cell_entries, steps=2, lr=0.2, progress=False)
    h = result.history
    assert h.sizes["step"] == 3 and h.sizes["param"] == 4 and h.sizes["term_name"] == 2
    assert np.all(np.isfinite(h["gradient"].values[:2])) and np.abs(h["gradient"].values[:2]).sum() > 0
    assert not np.allclose(h["gain"].values[1], 1.0)  # a step was taken
    assert np.all((h["gain"].values >= 0.25) & (h["gain"].values <= 4.0))
    new = result.to_hnn(hnn_net)
    for k in cell_entries:
        np.testing.assert_allclose(new.connectivity[k]["nc_dict"]["A_weight"],
                                   hnn_net.connectivity[k]["nc_dict"]["A_weight"] * result.gains[k])
    fig = result.plot()
    assert len(fig.axes) == 4


def test_corrected_target_takes_out_the_surrogates_error(column, hnn_run):
    """hnn-core's own dipole at the starting gains, corrected, is the surrogate's: the fit starts at zero
    error and moves only by what separates the target from hnn-core's start."""
    sur = smooth(column.run(TSTOP)["dipole"].sel(layer="L5").values[:, None], 10.0, column.dt)[:, 0]
    ref = hnn_run["dipole"].sel(layer="L5")
    target = ref.copy(data=smooth(ref.values[:, None], 10.0, column.dt)[:, 0])  # a recorded ERP comes smoothed
    goal = mtl.optimize.corrected_target(column, target, layer="L5", smooth_ms=10.0)
    np.testing.assert_allclose(goal.values, sur, atol=1e-9)
    assert goal.attrs["units"] == "nA m" and goal.sizes["time"] == sur.size
    with pytest.raises(ValueError, match="covers"):
        mtl.optimize.corrected_target(column, hnn_run.isel(time=slice(0, 10)))
    with pytest.raises(ValueError, match="layer"):
        mtl.optimize.corrected_target(column, hnn_run, layer="L4")
