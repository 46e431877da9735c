"""Training end to end on a small point-neuron dataset (NEURON makes the data; well under 3 min on 1 core)."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import mtlneuron as mtl
from mtlneuron import evaluate as ev
from mtlneuron.surrogate import Surrogate
from mtlneuron.training import fit, main

pytestmark = pytest.mark.neuron
torch.set_num_threads(1)

TINY = dict(input_channels=8, filter_channels=4, conv_channels=(8,), kernel_size=3, hidden_size=16, num_layers=1,
            dropout=0.0)
FIT = dict(model_config=TINY, epochs=3, batch_size=2, window=250, lr=1e-2, progress=False)


@pytest.fixture(scope="module")
def cell():
    return mtl.cells.get("point")


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "point6.nc"
    return mtl.datasets.generate(mtl.cells.get("point"), n_trials=6, duration=500.0, path=path, seed=0,
                                 n_workers=1, overwrite=True, progress=False)


@pytest.fixture(scope="module")
def fitted(data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "model.pt"
    model = fit(data_path, out=out, **{**FIT, "epochs": 12})
    return model, out


def test_training_is_deterministic(data_path):
    a = fit(data_path, **FIT)
    b = fit(data_path, **FIT)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_continues_exactly(data_path, tmp_path):
    kw = {**FIT, "model_config": {**TINY, "num_layers": 2, "dropout": 0.1}}
    straight = fit(data_path, out=tmp_path / "a.pt", **{**kw, "epochs": 4})
    fit(data_path, out=tmp_path / "b.pt", **{**kw, "epochs": 2})
    kw.pop("model_config")
    resumed = fit(data_path, out=tmp_path / "b.pt", resume=True, **{**kw, "epochs": 4})
    assert [h["epoch"] for h in resumed.training_info["history"]] == [1, 2, 3, 4]
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_surrogate_fit_method(data_path, cell):
    model = Surrogate(cell, **TINY)
    assert model.fit(data_path, epochs=1, window=500, progress=False) is model
    assert model.training_info["epochs_done"] == 1
    assert float(model.site_scale.min()) > 0 and float(model.v_std[0]) > 0  # scalers fitted on training trials


def test_max_time_stops_after_a_batch(data_path):
    model = fit(data_path, **{**FIT, "epochs": 5, "max_time": 0.0})
    assert model.training_info["epochs_done"] == 1 and model.training_info["stopped"] == "max_time"


def test_fit_checks(data_path):
    no_config = {k: v for k, v in FIT.items() if k != "model_config"}
    with pytest.raises(ValueError, match="cell key"):
        fit(data_path, Surrogate(mtl.cells.get("point_nmda")), **no_config)
    with pytest.raises(ValueError, match="window"):
        fit(data_path, **{**FIT, "window": 0})
    with pytest.raises(ValueError, match="out="):
        fit(data_path, resume=True, **FIT)
    with pytest.raises(ValueError, match="predicts ionic currents"):
        fit(data_path, model=Surrogate(mtl.cells.get("point"), **{**TINY, "ions": ("ca",)}), epochs=1,
            progress=False)


def test_end_to_end(fitted, data_path, cell, tmp_path):
    model, path = fitted
    info = model.training_info
    history = info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_v"] < history[0]["train_v"]
    split = info["split"]
    assert not set(split["train"]) & set(split["val"]) and not set(split["train"]) & set(split["test"])
    loaded = Surrogate.load(path, cell)
    assert loaded.training_info["split"] == split
    assert float(loaded.spike_prob_threshold) == float(model.spike_prob_threshold)
    assert loaded.spike_waveform.shape[0] > 0 and torch.equal(loaded.spike_waveform, model.spike_waveform)
    truth = mtl.datasets.open(data_path).isel(trial=split["test"] + split["val"]).load()
    pred = loaded.predict(truth)
    assert pred["v"].dims == ("trial", "time", "segment") and pred.sizes["trial"] == truth.sizes["trial"]
    score = ev.evaluate(pred, truth)
    for name in ("r_clipped", "rmse_clipped", "ve_clipped", "r_raw", "rmse_raw"):
        assert np.isfinite(score[name].values).all(), name
    assert np.isfinite(score["spike_recall"].values).all()
    assert np.isnan(score["dipole_r"].values).all() and np.isnan(score["dipole_r_raw"].values).all()  # no dipole
    # the point neuron's recorded INa / IK get their own head, predicted and scored in nA
    assert loaded.config.ions == ("na", "k") and pred["i_ion"].attrs["units"] == "nA"
    assert list(score["ion"].values) == ["na", "k"] and np.isfinite(score["ion_r"].values).all()
    assert "ion" in history[-1]["task_weights"]
    fig = ev.plot(pred, truth, path=tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 0 and len(fig.axes) >= 5
    one = mtl.simulate(cell, mtl.inputs.poisson(cell, duration=200.0, seed=99))
    single = loaded.predict(one)
    assert "trial" not in single.dims
    assert np.isfinite(ev.evaluate(single, one)["rmse_clipped"].values).all()


def test_cli(data_path, tmp_path):
    out = tmp_path / "cli.pt"
    code = main(["--data", str(data_path), "--out", str(out), "--epochs", "1", "--window", "250",
                 "--batch-size", "2", "--conv-channels", "4", "--hidden-size", "8", "--num-layers", "1",
                 "--no-progress", "--loss-weighting", "fixed", "--loss-weights", "v=1,spike=0.5"])
    assert code == 0 and Surrogate.load(out).config.hidden_size == 8
    res = subprocess.run([sys.executable, "-m", "mtlneuron.train", "--data", str(data_path), "--out",
                          str(tmp_path / "m.pt"), "--epochs", "1", "--window", "500", "--conv-channels", "",
                          "--hidden-size", "4", "--num-layers", "1", "--no-progress", "--threads", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and Surrogate.load(tmp_path / "m.pt").config.conv_channels == ()


def test_cli_fine_tunes_from_init_without_a_stage(fitted, data_path, tmp_path):
    start, path = fitted
    stages = mtl.datasets.open(data_path)["stage"].values.astype(str)
    out = tmp_path / "ft.pt"
    code = main(["--data", str(data_path), "--out", str(out), "--init", str(path), "--epochs", "1", "--window", "250",
                 "--batch-size", "2", "--no-progress", "--exclude-stages", str(stages[0])])
    tuned = Surrogate.load(out)
    assert code == 0 and tuned.config == start.config
    assert torch.equal(tuned.v_mean, start.v_mean) and torch.equal(tuned.site_scale, start.site_scale)  # kept
    assert tuned.training_info["dataset"]["n_trials"] == int((stages != stages[0]).sum())
    assert tuned.training_info["config"]["exclude_stages"] == [str(stages[0])]


def test_cosine_schedule_falls_to_zero_over_the_epochs(data_path):
    model = fit(data_path, **{**FIT, "epochs": 4, "lr_schedule": "cosine"})
    lrs = [h["lr"] for h in model.training_info["history"]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < FIT["lr"] and lrs[-1] < 0.05 * FIT["lr"]
    with pytest.raises(ValueError, match="lr_schedule"):
        fit(data_path, **{**FIT, "lr_schedule": "step"})


def test_cli_widens_the_init_model_and_refuses_to_narrow_it(fitted, data_path, tmp_path, capsys):
    start, path = fitted
    out = tmp_path / "wide.pt"
    code = main(["--data", str(data_path), "--out", str(out), "--init", str(path), "--hidden-size", "24",
                 "--epochs", "1", "--window", "250", "--batch-size", "2", "--no-progress", "--lr-schedule", "cosine"])
    wide = Surrogate.load(out)
    assert code == 0 and wide.config.hidden_size == 24 and wide.training_info["widened_from"] == 16
    assert wide.training_info["config"]["lr_schedule"] == "cosine"
    code = main(["--data", str(data_path), "--out", str(tmp_path / "narrow.pt"), "--init", str(path),
                 "--hidden-size", "8", "--epochs", "1", "--no-progress"])
    assert code == 2 and "--hidden-size 8 is smaller than --init's 16" in capsys.readouterr().err


def test_validation_data_from_other_files_pick_the_epoch_and_resume(data_path, tmp_path, capsys):
    val_path = mtl.datasets.generate(mtl.cells.get("point"), n_trials=3, duration=500.0, path=tmp_path / "val.nc",
                                     seed=5, n_workers=1, overwrite=True, progress=False)
    model = fit(data_path, out=tmp_path / "v.pt", val_data=val_path, **{**FIT, "epochs": 2, "test_fraction": 0.0})
    info = model.training_info
    assert info["split"]["val"] == [6, 7, 8] and info["split"]["train"] == [0, 1, 2, 3, 4, 5]  # the pool trains
    assert info["config"]["val_data"]["n_trials"] == 3
    resumed = fit(data_path, out=tmp_path / "v.pt", val_data=val_path, resume=True,
                  **{**FIT, "epochs": 3, "test_fraction": 0.0, "model_config": None})
    assert [h["epoch"] for h in resumed.training_info["history"]] == [1, 2, 3]
    with pytest.raises(ValueError, match="shares 6 trial drive seeds"):
        fit(data_path, val_data=data_path, **FIT)
    short = mtl.datasets.generate(mtl.cells.get("point"), n_trials=1, duration=300.0, path=tmp_path / "short.nc",
                                  seed=6, n_workers=1, overwrite=True, progress=False)
    with pytest.raises(ValueError, match="val_data: trials of 600 bins"):
        fit(data_path, val_data=short, **FIT)
    code = main(["--data", str(data_path), "--out", str(tmp_path / "c.pt"), "--val-data", str(tmp_path / "nope.nc"),
                 "--epochs", "1", "--no-progress"])
    assert code == 2 and "--val-data" in capsys.readouterr().err


def test_cli_adds_spike_history_to_the_init_model(fitted, data_path, tmp_path, capsys):
    start, path = fitted
    out = tmp_path / "hist.pt"
    code = main(["--data", str(data_path), "--out", str(out), "--init", str(path), "--spike-history-ms", "2,20",
                 "--epochs", "1", "--window", "250", "--batch-size", "2", "--no-progress"])
    hist = Surrogate.load(out)
    assert code == 0 and hist.config.spike_history_ms == (2.0, 20.0)
    assert hist.convs[0].conv.weight[:, -2:].abs().max() > 0  # trained on the recorded spikes (teacher forcing)
    assert hist.training_info["spike_history_added"] == [2.0, 20.0]
    for bad in ["0", "a,b", ""]:
        code = main(["--data", str(data_path), "--out", str(tmp_path / "bad.pt"), "--spike-history-ms", bad,
                     "--epochs", "1", "--no-progress"])
        assert code == 2 and "--spike-history-ms must be a comma list" in capsys.readouterr().err
    code = main(["--data", str(data_path), "--out", str(tmp_path / "twice.pt"), "--init", str(out),
                 "--spike-history-ms", "5", "--epochs", "1", "--no-progress"])
    assert code == 2 and "reads its spike history already" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["point", "point_nmda"])
def test_shipped_point_models_match_neuron(name):
    """The pretrained weights in data/ still imitate NEURON on a fresh drive (their cards say
    F1 ~0.98 on 64 s; a 4-s drive here, so the bounds are loose)."""
    cell = mtl.cells.get(name)
    model = Surrogate.pretrained(name, cell)
    drive = mtl.inputs.poisson(cell, 4000.0, seed=424_242)
    truth = mtl.simulate(cell, drive)
    score = ev.evaluate(model.predict(drive), truth)
    assert int(score["n_spikes_true"]) > 10
    assert float(score["spike_f1"].sel(window=5.0)) > 0.85
    assert float(score["ve_clipped"][0]) > 0.75
    assert (score["ion_r"].values > 0.8).all()


def test_a_diverging_run_stops_with_a_clear_error(data_path, cell):
    """Issue 12.5: a NaN loss is an error naming the epoch, never a silent step to NaN weights."""
    model = Surrogate(cell, **TINY)
    with torch.no_grad():
        model.v_head.weight.view(-1)[0] = float("nan")
    no_config = {k: v for k, v in FIT.items() if k != "model_config"}
    with pytest.raises(FloatingPointError, match="training diverged at epoch 1: non-finite loss"):
        fit(data_path, model=model, **{**no_config, "epochs": 1})
