"""Network description, surrogate engine, TM, delays, batching, gradients, bad input."""
import pickle

import numpy as np
import pytest
import torch

import mtlneuron as mtl
from mtlneuron.network import Network, PopulationSpec, concat, tm
from mtlneuron.network.engine import SurrogateEngine


def _point_net(seed=0, delay=3.0, n=2, weight=0.003, tm_params=(0.38, 365.6, 25.71)):
    """n point cells: cell 0 driven hard (it fires), contacts 0 -> k on an excitatory site."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 190, 60))
    drives = {"gid": np.zeros(times.size, int), "site": rng.integers(0, 8, times.size), "time": times,
              "weight": np.full(times.size, 0.003)}
    U, D, F = tm_params
    post = np.arange(1, n)
    conns = {"pre": np.zeros(n - 1, int), "post": post, "site": np.zeros(n - 1, int),
             "weight": np.full(n - 1, weight), "delay": np.full(n - 1, delay), "U": U, "D": D, "F": F}
    return Network([PopulationSpec("P", "point", n)], conns, drives)


@pytest.fixture(scope="module")
def point_model():
    return mtl.Surrogate.pretrained("point")


def test_tm_state_matches_the_analytic_recursion():
    rng = np.random.default_rng(1)
    for train in (np.arange(5.0, 500.0, 25.0), np.sort(rng.uniform(0, 1000, 40))):
        U, D, F = (torch.tensor([v]) for v in (0.38, 365.6, 25.71))
        state, got = tm.TMState(U, D, F), []
        for t in train:
            got.append(float(state.spike(torch.ones(1), float(t))))
        np.testing.assert_allclose(got, tm.efficacies(train, 0.38, 365.6, 25.71), rtol=1e-5)


def test_static_contacts_have_efficacy_one():
    state = tm.TMState(torch.ones(1), torch.zeros(1), torch.zeros(1))
    assert [float(state.spike(torch.ones(1), t)) for t in (1.0, 2.0, 3.5)] == [1.0, 1.0, 1.0]


def test_delay_arrives_exactly_d_later_with_tm_efficacy(point_model):
    net = _point_net(delay=3.0)
    eng = SurrogateEngine(net, {"point": point_model})
    with torch.inference_mode():
        out = eng.simulate(200.0, record_arrivals=True)
    spike_bins = np.flatnonzero(out["spikes"][:, 0].numpy() > 0.5)
    assert spike_bins.size >= 3, "the driven cell must fire for this test"
    arrivals = out["arrivals"][:, 0].numpy()
    arrival_bins = np.flatnonzero(arrivals > 0)
    np.testing.assert_array_equal(arrival_bins, spike_bins + 6)  # 3 ms / 0.5 ms
    expected = 0.003 * tm.efficacies((spike_bins + 0.5) * net.dt, 0.38, 365.6, 25.71)
    np.testing.assert_allclose(arrivals[arrival_bins], expected, rtol=1e-5)


def test_batched_networks_equal_one_by_one(point_model):
    nets = [_point_net(seed=s, n=3) for s in (0, 1, 2)]
    combined, gids = concat(nets)
    with torch.inference_mode():
        together = SurrogateEngine(combined, {"point": point_model}).simulate(150.0)
        for net, g in zip(nets, gids):
            alone = SurrogateEngine(net, {"point": point_model}).simulate(150.0)
            np.testing.assert_array_equal(together["spikes"][:, g].numpy(), alone["spikes"].numpy())
            np.testing.assert_allclose(together["v_soma"][:, g].numpy(), alone["v_soma"].numpy(), atol=1e-3)


def test_gradients_reach_contact_and_drive_weights(point_model):
    net = _point_net(n=3)
    eng = SurrogateEngine(net, {"point": point_model})
    w_c = torch.tensor(net.connections["weight"], requires_grad=True)
    w_d = torch.tensor(net.drives["weight"], requires_grad=True)
    out = eng.simulate(100.0, contact_weight=w_c, drive_weight=w_d)
    loss = out["v_soma"][:, 1:].mean() + out["spikes"].sum()
    loss.backward()
    assert torch.isfinite(w_c.grad).all() and w_c.grad.abs().sum() > 0
    assert torch.isfinite(w_d.grad).all() and w_d.grad.abs().sum() > 0


@pytest.mark.parametrize("tm_params", [(0.38, 365.6, 25.71), (np.nan, np.nan, np.nan)])
def test_checkpointed_gradients_equal_plain_ones(point_model, tm_params):
    """Gradient checkpointing recomputes chunks in the backward pass: same outputs, same gradients."""
    net = _point_net(n=3, tm_params=tm_params)
    eng = SurrogateEngine(net, {"point": point_model})
    grads, outs = [], []
    for checkpoint_ms in (None, 20.0):
        w_c = torch.tensor(net.connections["weight"], requires_grad=True)
        w_d = torch.tensor(net.drives["weight"], requires_grad=True)
        out = eng.simulate(100.0, contact_weight=w_c, drive_weight=w_d, checkpoint_ms=checkpoint_ms)
        (out["v_soma"][:, 1:].mean() + out["dipole"][:, 2].std() + out["spikes"].sum()).backward()
        grads.append((w_c.grad.clone(), w_d.grad.clone()))
        outs.append(out["v_soma"].detach())
    torch.testing.assert_close(outs[0], outs[1])
    assert grads[0][0].abs().sum() > 0 and grads[0][1].abs().sum() > 0
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-8)


def test_run_returns_labelled_result(point_model):
    res = _point_net(n=3).run(200.0, backend="surrogate", surrogates={"point": point_model})
    assert res["v_soma"].dims == ("time", "cell") and res["v_soma"].attrs["units"] == "mV"
    assert res["spike_times"].attrs["units"] == "ms" and res["rate"].attrs["units"] == "Hz"
    assert res["dipole"].dims == ("time", "axis")
    assert np.isfinite(res["spike_times"].values[0]).sum() >= 1


def test_description_round_trips_netcdf_and_pickle(tmp_path):
    net = mtl.network.rett(n_cells=6, p_connect=0.3, seed=3, duration=50.0, stim_time=20.0)
    path = net.to_netcdf(tmp_path / "net.nc")
    assert mtl.network.Network.from_netcdf(path) == net
    assert pickle.loads(pickle.dumps(net)) == net


def test_rett_connectivity_statistics():
    net = mtl.network.rett(n_cells=60, p_connect=0.1, seed=1, duration=50.0, stim_time=20.0)
    c = net.connections
    pairs = {(a, b) for a, b in zip(c["pre"], c["post"])}
    p_directed = len(pairs) / (60 * 59)
    assert 0.07 < p_directed < 0.13
    recip = [(a, b) for a, b in pairs if (b, a) in pairs]
    w = {(a, b): wt for a, b, wt in zip(c["pre"], c["post"], c["weight"])}
    assert all(np.isclose(w[p], 1.5 * mtl.network.rett_model.CONTACT_WEIGHT_US) for p in recip)
    assert np.all(np.bincount(np.unique(np.stack([c["pre"], c["post"], c["site"]]), axis=1)[0]) >= 0)
    assert set(np.unique(c["delay"])) == {1.0}


@pytest.mark.parametrize("kwargs, match", [
    ({"p_connect": 1.2}, "p_connect"), ({"p_connect": -0.1}, "p_connect"), ({"exc_scale": float("nan")}, "exc_scale"),
])
def test_rett_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mtl.network.rett(n_cells=4, **kwargs)


@pytest.mark.parametrize("change, match", [
    (lambda c, d: c.__setitem__("post", np.array([7])), "cell 7"),
    (lambda c, d: c.__setitem__("site", np.array([99])), "site 99 does not exist"),
    (lambda c, d: c.__setitem__("delay", np.array([-1.0])), "delay"),
    (lambda c, d: c.__setitem__("delay", np.array([0.25])), "shorter than dt"),
    (lambda c, d: c.__setitem__("weight", np.array([np.nan])), "weight nan"),
    (lambda c, d: d.__setitem__("weight", np.full(d["weight"].size, np.nan)), "drive weight nan"),
])
def test_bad_network_inputs_are_named(point_model, change, match):
    net = _point_net()
    change(net.connections, net.drives)
    with pytest.raises(ValueError, match=match):
        SurrogateEngine(net, {"point": point_model})


def test_surrogate_of_another_cell_is_refused(point_model):
    net = Network([PopulationSpec("P", "point_nmda", 2)])
    with pytest.raises(ValueError, match="trained for cell 'point'"):
        SurrogateEngine(net, {"point_nmda": point_model})


def test_sweep_over_a_grid_with_seeds():
    grid = {"exc_scale": [0.75, 1.25], "p_connect": [0.0, 0.2]}
    ds = mtl.network.sweep(mtl.network.rett, grid, seeds=[0, 1], n_cells=6, duration=60.0, stim_time=30.0,
                           progress=False, batch_size=3)
    assert dict(ds["pre_aps"].sizes) == {"exc_scale": 2, "p_connect": 2, "seed": 2}
    assert ds["rate"].attrs["units"] == "Hz"
    # the batched sweep equals single runs of the same networks
    net = mtl.network.rett(n_cells=6, p_connect=0.2, exc_scale=1.25, seed=1, duration=60.0, stim_time=30.0)
    alone = mtl.network.rett_metrics(net.run(60.0))
    for name in ("onset_aps", "pre_aps", "response_aps"):
        assert int(ds[name].sel(exc_scale=1.25, p_connect=0.2, seed=1)) == int(alone[name])
    with pytest.raises(ValueError, match="backend"):
        mtl.network.sweep(mtl.network.rett, grid, backend="gpu")


def test_rett_metrics_windows_and_stability_verdict():
    import xarray as xr

    n = 10
    st = np.full((n, 3), np.nan)
    st[:, 0] = 20.0                      # onset transient: every cell, not counted as pre-stimulus
    st[:3, 1] = 60.0                     # 3 of 10 cells in one 5-ms bin: a population burst (> 20 %)
    st[:, 2] = 101.0                     # the response
    res = xr.Dataset({"spike_times": (("cell", "spike"), st)}, attrs={"network_stim_time": 100.0})
    m = mtl.network.rett_metrics(res)
    assert (int(m.onset_aps), int(m.pre_aps), int(m.response_aps)) == (10, 3, 10)
    assert float(m.max_sync_fraction) == pytest.approx(0.3) and not bool(m.stable)
    st[2, 1] = 75.0                      # 2 cells per bin at most: 20 % is still stable
    assert bool(mtl.network.rett_metrics(res).stable)


def test_spike_waveforms_are_placed_at_network_spikes(point_model):
    import copy

    model = copy.deepcopy(point_model)
    lags = np.arange(-1, 3)
    wave = np.zeros((lags.size, model.n_segments + 3))
    wave[lags == 0, 0], wave[lags == 1, -1] = 80.0, 5.0  # soma AP peak; a z dipole transient one bin later
    model.set_spike_waveform(wave, lags)
    net = _point_net(n=3)
    with torch.inference_mode():
        plain = SurrogateEngine(net, {"point": point_model}).simulate(100.0)
        shaped = SurrogateEngine(net, {"point": model}).simulate(100.0)
    s = plain["spikes"].numpy()
    assert np.array_equal(shaped["spikes"].numpy(), s) and s.sum() >= 1
    dv = (shaped["v_soma"] - plain["v_soma"]).numpy()
    np.testing.assert_allclose(dv, 80.0 * s, atol=1e-4)
    dd = (shaped["dipole"] - plain["dipole"]).numpy()
    np.testing.assert_allclose(dd[1:, 2], 5.0 * s.sum(axis=1)[:-1], atol=1e-4)
    np.testing.assert_allclose(dd[:, :2], 0.0, atol=1e-5)


def test_engine_runs_in_its_surrogates_dtype(point_model):
    """model.double() makes the whole engine float64 (a finer finite-difference check); mixed dtypes are refused."""
    net = _point_net(n=3)
    with torch.no_grad():
        single = SurrogateEngine(net, {"point": point_model}).simulate(100.0)
        double = SurrogateEngine(net, {"point": mtl.Surrogate.pretrained("point").double()}).simulate(100.0)
    assert double["v_soma"].dtype == torch.float64 and single["v_soma"].dtype == torch.float32
    torch.testing.assert_close(double["v_soma"].float(), single["v_soma"], atol=1e-3, rtol=1e-4)
    two = Network([PopulationSpec("A", "point", 1), PopulationSpec("B", "point", 1)],
                  {"pre": [0], "post": [1], "site": [0], "weight": [0.003], "delay": [1.0]},
                  {"gid": [0], "site": [0], "time": [5.0], "weight": [0.003]})
    with pytest.raises(ValueError, match="share a dtype"):
        SurrogateEngine(two, {"A": point_model, "B": mtl.Surrogate.pretrained("point").double()})
