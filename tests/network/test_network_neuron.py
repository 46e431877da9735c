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
