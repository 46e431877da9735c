"""Training data, split, scalers and losses on synthetic arrays (no NEURON)."""
import numpy as np
import pytest
import torch

from mtlneuron.surrogate import data_dirs, read_checkpoint, Surrogate
from mtlneuron.training import DEFAULT_LOSS_WEIGHTS, TASKS, TaskWeighting, TrialArrays, compute_scalers, split_trials, \
    task_losses
from mtlneuron.training.data import check_split, concat_arrays


def _arrays(n_trials: int = 4, n_time: int = 100, n_sites: int = 5, n_seg: int = 2, seed: int = 0) -> TrialArrays:
    rng = np.random.default_rng(seed)
    inputs = ((rng.random((n_trials, n_time, n_sites)) < 0.1) * 0.002).astype(np.float32)
    inputs[..., -1] = 0.0  # a site never driven
    v = (-65 + 5 * rng.standard_normal((n_trials, n_time, n_seg))).astype(np.float32)
    v[:, 10, 0] = 30.0  # a spike peak, clipped away in the scalers
    dipole = np.zeros((n_trials, n_time, 3), np.float32)
    dipole[..., 2] = rng.standard_normal((n_trials, n_time))  # only z is active
    dipole[..., 0] = 1e-6 * rng.standard_normal((n_trials, n_time))  # negligible
    spikes = np.zeros((n_trials, n_time), np.float32)
    spikes[:, 10] = 1.0
    return TrialArrays(inputs, v, dipole, spikes, np.arange(n_trials), 0.5)


def test_split_trials():
    s = split_trials(10, 0.2, 0.1, seed=3)
    every = s["train"] + s["val"] + s["test"]
    assert sorted(every) == list(range(10)) and len(s["val"]) == 2 and len(s["test"]) == 1
    assert split_trials(10, 0.2, 0.1, seed=3) == s
    with pytest.raises(ValueError, match="at least 2 trials"):
        split_trials(1)
    with pytest.raises(ValueError, match="val_fraction"):
        split_trials(10, 1.0)


def test_check_split():
    assert check_split({"train": [2, 0], "val": [1]}, 3) == {"train": [0, 2], "val": [1], "test": []}
    with pytest.raises(ValueError, match="more than one"):
        check_split({"train": [0, 1], "val": [1]}, 3)
    with pytest.raises(ValueError, match="out of range"):
        check_split({"train": [0], "val": [3]}, 3)


def test_compute_scalers():
    arrays = _arrays()
    s = compute_scalers(arrays, [0, 1, 2], v_clip=-40.0, max_pos_weight=50.0)
    assert s["site_scale"].shape == (5,) and np.allclose(s["site_scale"][:4], 0.002)
    assert s["site_scale"][4] == pytest.approx(0.002)  # never driven: the median of the driven sites
    v = np.minimum(arrays.v[:3].reshape(-1, 2).astype(float), -40.0)
    np.testing.assert_allclose(s["v_mean"], v.mean(axis=0), rtol=1e-6)
    assert s["dipole_active"].tolist() == [0.0, 0.0, 1.0] and s["dipole_std"][0] == 1.0
    assert s["spike_pos_weight"] == pytest.approx(50.0)  # 99 : 1, capped
    raw = compute_scalers(arrays, [0, 1, 2], v_clip=None, max_pos_weight=200.0)
    assert raw["v_mean"][0] > s["v_mean"][0] and raw["spike_pos_weight"] == pytest.approx(99.0)


def test_concat_arrays_pools_trials():
    a, b = _arrays(seed=0), _arrays(n_trials=2, seed=1)
    both = concat_arrays([a, b])
    assert both.n_trials == 6 and both.ions is None
    np.testing.assert_array_equal(both.v[4:], b.v)


def test_task_weighting():
    losses = {"v": torch.tensor(2.0), "spike": torch.tensor(1.0)}
    fixed = TaskWeighting(DEFAULT_LOSS_WEIGHTS, "fixed")
    assert float(fixed(losses)) == pytest.approx(3.0) and not fixed.log_vars.requires_grad
    learned = TaskWeighting({"v": 1.0, "spike": 0.5})
    assert learned(losses).item() == pytest.approx(2.5)  # log-variances start at 0
    assert learned.effective(["v"]) == {"v": 1.0} and set(TASKS) >= set(learned.effective())
    with pytest.raises(ValueError, match="unknown loss weights"):
        TaskWeighting({"volt": 1.0})
    with pytest.raises(ValueError, match="loss_weighting"):
        TaskWeighting({"v": 1.0}, "learned")


def test_task_losses_are_zero_for_perfect_outputs():
    meta = read_checkpoint(data_dirs()[0] / "point.pt")["meta"]
    model = Surrogate(meta=meta, input_channels=2, filter_channels=2, conv_channels=(), hidden_size=4, num_layers=1)
    v = torch.full((1, 5, 1), -70.0)
    v[0, 2] = 20.0  # clipped at -40 mV before standardising
    vz = (torch.clamp(v, max=-40.0) - model.v_mean) / model.v_std
    out = {"v": vz, "dipole": torch.zeros(1, 5, 3), "spike_logit": torch.full((1, 5), -30.0)}
    losses = task_losses(model, out, v, torch.zeros(1, 5, 3), torch.zeros(1, 5), DEFAULT_LOSS_WEIGHTS)
    assert set(losses) == {"v", "soma", "dipole", "spike"}  # no ionic-current head
    assert all(float(val) < 1e-9 for val in losses.values())


def test_sparse_inputs_equal_the_dense_array():
    from mtlneuron.training.data import SparseInputs

    a = _arrays(n_trials=3)
    dense = np.stack([a.inputs[k] for k in range(3)])
    assert isinstance(a.inputs, SparseInputs) and a.inputs.shape == dense.shape
    assert np.array_equal(a.inputs[np.array([2, 0])], dense[[2, 0]]) and np.array_equal(a.inputs[1:], dense[1:])
    count, total = a.inputs.site_sums([0, 2])
    assert np.array_equal(count, (dense[[0, 2]] > 0).sum(axis=(0, 1)))
    assert np.allclose(total, dense[[0, 2]].sum(axis=(0, 1)))
    both = concat_arrays([a, _arrays(n_trials=2, seed=1)])
    assert both.inputs.shape == (5,) + dense.shape[1:] and np.array_equal(both.inputs[:3], dense)


def test_select_stages():
    import xarray as xr
    from mtlneuron.training.data import select_stages

    ds = xr.Dataset({"stage": ("trial", ["quiet", "volley", "recurrent"])})
    assert select_stages(ds, ["volley"])["stage"].values.tolist() == ["quiet", "recurrent"]
    assert select_stages(ds, []) is ds
    with pytest.raises(ValueError, match="leaves no trials"):
        select_stages(ds, ["quiet", "volley", "recurrent"])
    with pytest.raises(ValueError, match="no 'stage'"):
        select_stages(ds.drop_vars("stage"), ["volley"])


def test_shift_tolerant_spike_loss_prefers_a_near_miss():
    meta = read_checkpoint(data_dirs()[0] / "point.pt")["meta"]
    point_model = Surrogate(meta=meta, input_channels=2, filter_channels=2, conv_channels=(), hidden_size=4,
                            num_layers=1)
    point_model.spike_pos_weight.fill_(20.0)
    spikes = torch.zeros(1, 60)
    spikes[0, 30] = 1.0
    pw = float(point_model.spike_pos_weight)

    def loss(at):
        logit = torch.full((1, 60), -20.0)
        logit[0, at] = 20.0 + np.log(pw)  # calibrated probability ~1 in bin `at`
        out = {"spike_logit": logit}
        return task_losses(point_model, out, torch.zeros(1, 60, 1), torch.zeros(1, 60, 3), spikes,
                           {"spike_shift": 1.0})["spike_shift"].item()

    assert loss(30) < 1e-6 < loss(31) < loss(34) < loss(50) + 1e-9
