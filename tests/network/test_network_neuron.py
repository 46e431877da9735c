"""The NEURON backend: TM synapse vs the analytic recursion, and consistency with single-cell runs."""
import numpy as np
import pytest

import mtlneuron as mtl
from mtlneuron.network import Network, PopulationSpec, tm
from mtlneuron.nrn import worker
from mtlneuron.nrn.network import tm_efficacies

pytestmark = pytest.mark.neuron


@pytest.mark.parametrize("train", [np.arange(10.0, 400.0, 20.0),
                                   np.sort(np.random.default_rng(4).uniform(0, 800, 30)).round(3)])
def test_neuron_tm_synapse_matches_the_analytic_recursion(train):
    got = worker.call("tm-check", tm_efficacies, train, 0.38, 365.6, 25.71)
    np.testing.assert_allclose(got, tm.efficacies(train, 0.38, 365.6, 25.71), rtol=1e-6)


def test_neuron_network_matches_single_cell_ground_truth():
    cell = mtl.cells.get("point")
    drive = mtl.inputs.poisson(cell, 200.0, seed=11)
    n_ev = drive.sizes["event"]
    drives = {"gid": np.zeros(n_ev, int), "site": drive["site"].values, "time": drive["time"].values,
              "weight": drive["weight"].values}
    conns = {"pre": [0], "post": [1], "site": [0], "weight": [0.003], "delay": [2.0],
             "U": [0.38], "D": [365.6], "F": [25.71]}
    net = Network([PopulationSpec("P", "point", 2)], conns, drives)
    res = net.run(200.0, backend="neuron")
    truth = mtl.simulate(cell, drive)
    ref = truth["spike_times"].values
    got = res["spike_times"].values[0]
    got = got[np.isfinite(got)]
    assert ref.size >= 1 and got.size == ref.size
    np.testing.assert_allclose(got, ref, atol=0.03)  # NetCon detection at the 0.025-ms step
    np.testing.assert_allclose(res["v_soma"].values[:, 0], truth["v"].values[:, 0], atol=1e-3)
    # the postsynaptic cell sees an EPSP 2 ms after each presynaptic spike
    v1 = res["v_soma"].values[:, 1]
    k = int((ref[0] + 2.0) / net.dt)
    assert v1[k + 4] > v1[k - 2] + 0.5


@pytest.mark.parametrize("name, weight", [("l5pc", 0.02), ("point", 0.004)])
def test_cell_trials_replay_each_cell_of_a_network_run(name, weight):
    """Every cell's trial (drive + recurrent arrivals with TM efficacy) replayed alone gives its network trace:
    the TM contact has its site's kinetics (Exp2Syn on l5pc, alpha on the point cell)."""
    cell = mtl.cells.get(name)
    drive = mtl.inputs.poisson(cell, 300.0, seed=11)
    n_ev = drive.sizes["event"]
    drives = {"gid": np.zeros(n_ev, int), "site": drive["site"].values, "time": drive["time"].values,
              "weight": drive["weight"].values}
    conns = {"pre": [0, 0], "post": [1, 2], "site": [0, 3], "weight": [weight, weight / 2], "delay": [2.0, 1.0],
             "U": [0.38, np.nan], "D": [365.6, np.nan], "F": [25.71, np.nan]}
    net = Network([PopulationSpec("P", name, 3)], conns, drives)
    ds = mtl.network.cell_trials(net, 300.0)
    assert ds.sizes["trial"] == 3 and set(ds["stage"].values) == {"network"}
    assert ds["v"].attrs["units"] == "mV" and ds["inputs"].attrs["units"] == "uS"
    n_pre = int(np.isfinite(ds["spike_times"].values[0]).sum())
    assert n_pre >= 2
    # cell 1 receives one arrival per presynaptic spike, TM-depressed; cell 2 static
    cd = mtl.network.cell_drives(net, [ds["spike_times"].values[k] for k in range(3)], 300.0)
    w1 = cd[1]["weight"].values
    assert w1.size == n_pre and w1[0] == pytest.approx(weight) and w1[1] < w1[0]
    np.testing.assert_allclose(cd[2]["weight"].values, weight / 2)
    np.testing.assert_allclose(ds["inputs"].isel(trial=1).sum().item(), w1.sum(), rtol=1e-5)
    for k in (1, 2):  # the replayed cell matches its network trace
        alone = mtl.simulate(cell, cd[k])
        np.testing.assert_allclose(alone["v"].values, ds["v"].isel(trial=k).values, atol=1e-3)
        # (from bin 1: at t = 0 the fast i_membrane_ is not yet computed in the network's first sample)
        np.testing.assert_allclose(alone["dipole"].values[1:], ds["dipole"].isel(trial=k).values[1:], rtol=1e-3,
                                   atol=0.5)
    if name == "l5pc":  # the network's summed dipole (one matrix per population) is the sum of its cells' dipoles
        from mtlneuron.network.neuron_backend import run_neuron_cells

        raw = run_neuron_cells(net, 300.0)
        assert np.abs(raw["dipole"]).max() > 1.0
        np.testing.assert_allclose(raw["dipole"], raw["cell_dipole"].sum(0), rtol=1e-4, atol=1e-3)
    # and the file is a training dataset like any other
    from mtlneuron.training.data import load_arrays

    arrays = load_arrays(ds)
    assert arrays.n_trials == 3 and arrays.spikes[0].sum() == n_pre


def test_tm_contact_on_a_site_without_a_tm_mechanism_is_refused():
    cell = mtl.cells.get("point_nmda")
    site = int(np.flatnonzero(cell.sites.point_process.values.astype(str) == "MtlAmpaNmda")[0])
    conns = {"pre": [0], "post": [1], "site": [site], "weight": [0.003], "delay": [2.0],
             "U": [0.38], "D": [365.6], "F": [25.71]}
    drives = {"gid": [0], "site": [0], "time": [5.0], "weight": [0.001]}
    net = Network([PopulationSpec("P", "point_nmda", 2)], conns, drives)
    with pytest.raises(ValueError, match="Tsodyks-Markram contacts are available on"):
        net.run(20.0, backend="neuron")
