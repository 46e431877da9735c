"""Training in the loop: the engine's Teacher (recorded spikes sent), recorded runs, loop losses, fine-tuning."""
import numpy as np
import pytest
import torch

import mtlneuron as mtl
from mtlneuron.network import Network, PopulationSpec
from mtlneuron.network.closed_loop import count_error, finetune_in_loop, loop_losses, recorded_run
from mtlneuron.network.engine import SurrogateEngine, Teacher


def _net(weight=0.004, seed=11):
    """Three point cells: cell 0 driven (it fires), contacts 0 -> 1 (TM) and 0 -> 2 (static)."""
    drive = mtl.inputs.poisson(mtl.cells.get("point"), 200.0, rate=(20.0, 40.0), seed=seed)
    n_ev = drive.sizes["event"]
    drives = {"gid": np.zeros(n_ev, int), "site": drive["site"].values, "time": drive["time"].values,
              "weight": drive["weight"].values}
    conns = {"pre": [0, 0], "post": [1, 2], "site": [0, 3], "weight": [weight, weight / 2], "delay": [2.0, 1.0],
             "U": [0.38, np.nan], "D": [365.6, np.nan], "F": [25.71, np.nan]}
    return Network([PopulationSpec("P", "point", 3)], conns, drives)


@pytest.fixture(scope="module")
def recorded():
    """One NEURON run of the network, every cell recorded, read back as a RecordedRun."""
    net = _net()
    return recorded_run(net, [mtl.network.cell_trials(net, 200.0)], name="neuron")


def test_teacher_sends_the_recorded_spikes_not_the_cells_own():
    net = _net()
    eng = SurrogateEngine(net, {"point": mtl.Surrogate.pretrained("point")})
    T = 400
    with torch.no_grad():
        own = eng.simulate(200.0, record_arrivals=True)
        assert own["spikes"][:, 0].sum() >= 2, "cell 0 must fire for this test"
        taught = torch.zeros(T, 3)
        taught[[40, 200], 0] = 1.0
        out = eng.simulate(200.0, record_arrivals=True, teacher=Teacher(taught, prob=1.0))
        free = eng.simulate(200.0, record_arrivals=True, teacher=Teacher(taught, prob=0.0))
    # static contact 0 -> 2 (1 ms = 2 bins): arrivals exactly at the recorded spikes + delay
    np.testing.assert_array_equal(np.flatnonzero(out["arrivals"][:, 1].numpy() > 0), [42, 202])
    torch.testing.assert_close(out["spikes"][:, 0], own["spikes"][:, 0])  # cell 0 itself is unchanged
    torch.testing.assert_close(free["arrivals"], own["arrivals"])  # prob 0: the free-running network


def test_teacher_refuses_bad_values():
    with pytest.raises(ValueError, match="prob"):
        Teacher(torch.zeros(4, 3), prob=1.5)
    with pytest.raises(ValueError, match="forced_ms"):
        Teacher(torch.zeros(4, 3), forced_ms=-1.0)
    eng = SurrogateEngine(_net(), {"point": mtl.Surrogate.pretrained("point")})
    with pytest.raises(ValueError, match="400 bins, 3 cells"):
        eng.simulate(200.0, teacher=Teacher(torch.zeros(10, 3)))


def test_recorded_run_matches_cells_by_gid_and_refuses_gaps(recorded):
    assert recorded.spikes.shape == (400, 3) and recorded.v["P"].shape[:2] == (3, 400)
    assert recorded.counts()["P"] == int(recorded.spikes.sum()) >= 2
    net = _net()
    ds = mtl.network.cell_trials(net, 200.0)
    with pytest.raises(ValueError, match="no trial for gids \\[1\\]"):
        recorded_run(net, [ds.isel(trial=[0, 2])])
    with pytest.raises(ValueError, match="repeated"):
        recorded_run(net, [ds, ds.isel(trial=[0])])
    with pytest.raises(ValueError, match="no 'gid'"):
        recorded_run(net, [ds.drop_vars("gid")])


def test_open_loop_reproduces_the_recorded_run_and_gradients_reach_the_model(recorded):
    model = mtl.Surrogate.pretrained("point")
    eng = SurrogateEngine(recorded.net, {"point": model})
    out = loop_losses(eng, recorded, 1.0, forced_ms=20.0)
    assert count_error(out["counts"], {"P": int(recorded.spikes[40:].sum())}) <= 0.25
    (out["task"] + out["rate"]).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    with torch.no_grad():  # a window: counts over 20-120 ms only
        window = loop_losses(eng, recorded, 1.0, forced_ms=20.0, until_ms=120.0)
    assert window["counts"]["P"] <= out["counts"]["P"]
    with pytest.raises(ValueError, match="until_ms"):
        loop_losses(eng, recorded, 1.0, forced_ms=150.0, until_ms=120.0)


def test_finetune_in_loop_lowers_the_loss_and_resumes(recorded, tmp_path):
    model = mtl.Surrogate.pretrained("point")
    eng = SurrogateEngine(recorded.net, {"point": model})
    with torch.no_grad():
        before = loop_losses(eng, recorded, 0.0)
    res = finetune_in_loop([recorded], {"point": model}, steps=3, lr=1e-3, teacher=(1.0, 0.0), out=tmp_path,
                           validation=[recorded], validate_every=3, progress=False)
    assert (tmp_path / "point.pt").exists() and (tmp_path / "in_loop_state.pt").exists()
    with torch.no_grad():
        after = loop_losses(eng, recorded, 0.0)
    assert float(after["task"] + after["rate"]) < float(before["task"] + before["rate"])
    assert res.best_step == 3 and [h["teacher_prob"] for h in res.history if "validation" not in h] == [1.0, 0.5, 0.0]
    again = finetune_in_loop([recorded], {"point": model}, steps=4, lr=1e-3, out=tmp_path, progress=False)
    assert [h["step"] for h in again.history if "validation" not in h] == [0, 1, 2, 3]  # continued at step 3
    with pytest.raises(ValueError, match="steps"):
        finetune_in_loop([recorded], {"point": model}, steps=0)
    with pytest.raises(ValueError, match="select must be one of"):
        finetune_in_loop([recorded], {"point": model}, steps=1, select="f1")


def test_selection_by_counts_keeps_the_step_with_the_best_count_error(recorded, tmp_path):
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=2, lr=1e-3, out=tmp_path, validation=[recorded],
                           validate_every=1, select="counts", snapshots=True, progress=False)
    errors = {h["step"]: count_error(h["counts"], h["truth"]) for h in res.history if "validation" in h}
    assert res.best_score == pytest.approx(min(errors.values())) and res.best_step == min(errors, key=errors.get)
    assert (tmp_path / "step_0001" / "point.pt").exists() and (tmp_path / "step_0002" / "point.pt").exists()


def test_selection_by_rate_keeps_the_step_with_the_lowest_rate_loss(recorded):
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=2, lr=1e-3, validation=[recorded],
                           validate_every=1, select="rate", progress=False)
    rates = {h["step"]: h["rate"] for h in res.history if "validation" in h}
    assert res.best_score == pytest.approx(min(rates.values())) and res.best_step == min(rates, key=rates.get)


def test_windowed_steps_log_the_windows_recorded_counts(recorded, tmp_path):
    whole, first, rest = recorded.counts(), recorded.counts(0.0, 100.0), recorded.counts(100.0)
    assert first["P"] + rest["P"] == whole["P"] > 0
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=2, lr=1e-4, window_ms=50.0, progress=False)
    for h in res.history:
        assert h["truth"]["P"] < whole["P"]  # the window's spikes, not the run's


def test_from_start_puts_every_window_at_the_runs_beginning(recorded):
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=3, lr=1e-4, window_ms=50.0, from_start=1.0,
                           forced_ms=10.0, progress=False)
    assert [h["window_ms"] for h in res.history] == [[10.0, 60.0]] * 3
    res = finetune_in_loop([recorded], {"point": model}, steps=3, lr=1e-4, window_ms=50.0, progress=False)
    assert all(h["window_ms"][1] - h["window_ms"][0] == pytest.approx(50.0) for h in res.history)
    assert len({h["window_ms"][0] for h in res.history}) > 1  # random starts
    with pytest.raises(ValueError, match="from_start"):
        finetune_in_loop([recorded], {"point": model}, steps=1, from_start=1.5, progress=False)


@pytest.mark.parametrize("name", ["l5pc_in_loop", "l5pc_w128", "l5pc_w128_in_loop"])
def test_l5pc_variants_are_pretrained_l5pc_models_with_a_card(name):
    from mtlneuron.surrogate.checkpoint import pretrained_path

    model = mtl.Surrogate.pretrained(name)
    assert model.cell_name == "l5pc"  # the same cell, sites and outputs as l5pc
    assert model.n_segments == mtl.cells.get("l5pc").n_segments
    assert model.spike_waveform.shape[0] > 0 and not mtl.surrogate.read_checkpoint(pretrained_path(name)).get("resume")
    assert pretrained_path(name).with_suffix(".md").exists()


@pytest.fixture(scope="module")
def point_trials(tmp_path_factory):
    """Six single-cell trials of the point cell (NEURON), as training arrays."""
    from mtlneuron.training.data import load_arrays

    path = tmp_path_factory.mktemp("single") / "point.nc"
    mtl.datasets.generate(mtl.cells.get("point"), 6, 200.0, path, seed=5, n_workers=1, progress=False)
    return load_arrays(mtl.datasets.open(path))


def test_single_cell_trials_are_mixed_into_every_step(recorded, point_trials):
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=4, lr=3e-4, teacher=(1.0, 1.0), rate_weight=0.0,
                           cell_trials={"point": point_trials}, cell_weight=100.0, cell_batch=6, progress=False)
    cell = [h["cell_task/point"] for h in res.history]
    assert len(cell) == 4 and cell[-1] < cell[0]  # the same six trials every step: their loss falls
    with pytest.raises(ValueError, match="none of the surrogates"):
        finetune_in_loop([recorded], {"point": model}, steps=1, cell_trials={"l5pc": point_trials}, progress=False)
    with pytest.raises(ValueError, match="cell_batch"):
        finetune_in_loop([recorded], {"point": model}, steps=1, cell_trials={"point": point_trials}, cell_batch=0,
                         progress=False)
    with pytest.raises(ValueError, match="cell_weight"):
        finetune_in_loop([recorded], {"point": model}, steps=1, cell_trials={"point": point_trials},
                         cell_weight=float("nan"), progress=False)


def test_the_start_is_validated_and_kept_when_no_step_beats_it(recorded, tmp_path):
    model = mtl.Surrogate.pretrained("point")
    res = finetune_in_loop([recorded], {"point": model}, steps=2, lr=0.0, validation=[recorded], validate_every=1,
                           out=tmp_path, progress=False)
    scores = [h["rate"] for h in res.history if "validation" in h]
    assert [h["step"] for h in res.history if "validation" in h] == [0, 1, 2] and len(set(scores)) == 1
    assert res.best_step == 0 and (tmp_path / "point.pt").exists()  # lr 0: no step beats the start
