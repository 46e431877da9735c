"""What trips up a new user (a fresh clone, the README's snippets): each defect found, refused or fixed."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import mtlneuron as mtl
from mtlneuron.conventions import MAX_MEMORY_BYTES, ParameterError, check_memory


# -- 1. every advertised name resolves ----------------------------------------------------------------------------
def _packages_and_modules():
    """mtlneuron and every module below it, but the NEURON door (mtlneuron.nrn imports NEURON)."""
    names = ["mtlneuron"]
    for info in pkgutil.walk_packages(mtl.__path__, "mtlneuron."):
        if not info.name.startswith("mtlneuron.nrn") and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _packages_and_modules())
def test_every_name_in_every_all_resolves(name):
    module = importlib.import_module(name)
    missing = []
    for attr in getattr(module, "__all__", []):
        try:
            getattr(module, attr)
        except (AttributeError, ImportError) as err:
            missing.append(f"{attr} ({err})")
    assert not missing, f"{name}.__all__ advertises names that do not resolve: {missing}"
    assert set(getattr(module, "__all__", [])) <= set(dir(module)) | set(getattr(module, "__all__", []))


def test_star_import_of_network_works():
    namespace: dict = {}
    exec("from mtlneuron.network import *", namespace)
    assert callable(namespace["compare"]) and callable(namespace["rett"])


# -- 4. sweep refuses a bad grid before running anything ----------------------------------------------------------
@pytest.mark.parametrize("grid, seeds, fixed, match", [
    ({"exc_scale": []}, [0], {}, r"grid\['exc_scale'\] is empty"),
    ({"exc_scale": [1.0]}, [], {}, "seeds is empty"),
    ({"seed": [0, 1]}, [0], {}, "grid key 'seed' is sweep's own argument"),
    ({"duration": [100.0]}, [0], {}, "grid key 'duration' is sweep's own argument"),
    ({"n_cells": [4]}, [0], {"n_cells": 6}, "also given as a fixed keyword"),
    ({"exc_scale": [1.0, 1.0]}, [0], {}, "repeats a value"),
    ({"exc_scale": [1.0]}, [0, 0], {}, "repeats a seed"),
    ({"exc_scale": 1.0}, [0], {}, "must be a list of values"),
    ([("exc_scale", [1.0])], [0], {}, "grid must be a dict"),
])
def test_sweep_refuses_a_bad_grid_by_name(grid, seeds, fixed, match):
    def builder(**kwargs):  # never reached: the grid is refused before any network is built
        raise AssertionError("a network was built for a bad grid")

    with pytest.raises(ParameterError, match=match):
        mtl.network.sweep(builder, grid, seeds=seeds, progress=False, **fixed)


def test_sweep_with_an_empty_grid_sweeps_seeds():
    ds = mtl.network.sweep(mtl.network.rett, {}, seeds=[0, 1], n_cells=4, duration=40.0, stim_time=20.0,
                           progress=False)
    assert dict(ds["pre_aps"].sizes) == {"seed": 2}
    assert list(ds["seed"].values) == [0, 1]


# -- 5. size bounds ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"n_cells": 10**7}, {"n_cells": 20000}, {"n_cells": 20, "duration": 1e9}])
def test_rett_refuses_networks_too_large_for_memory(kwargs):
    with pytest.raises(ParameterError, match=r"max_memory = 8 GiB") as info:
        mtl.network.rett(**kwargs)
    assert info.value.parameter == "max_memory"


def test_memory_bound_is_overridable():
    check_memory(2 * MAX_MEMORY_BYTES, "something big", max_memory=4 * MAX_MEMORY_BYTES)  # allowed on purpose
    with pytest.raises(ParameterError, match="something big would need about 16 GiB"):
        check_memory(2 * MAX_MEMORY_BYTES, "something big")
    net = mtl.network.rett(n_cells=4, duration=40.0, stim_time=20.0, max_memory=2**27)  # 128 MiB is plenty
    assert net.n_cells == 4
    with pytest.raises(ParameterError, match="max_memory"):
        mtl.network.rett(n_cells=4, duration=40.0, stim_time=20.0, max_memory=1e3)


def test_a_run_too_long_for_memory_is_refused_before_it_starts():
    net = mtl.network.rett(n_cells=20, duration=40.0, stim_time=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # longer than the drives: warned, then refused for its size
        for backend in ("surrogate", "neuron"):
            with pytest.raises(ParameterError, match="1e\\+09-ms run of 20 cells would need about"):
                net.run(1e9, backend=backend)


# -- 6. one rule for drives and run length, both backends ------------------------------------------------------
@pytest.fixture(scope="module")
def small_net():
    return mtl.network.rett(n_cells=3, duration=40.0, stim_time=20.0, seed=2)


@pytest.mark.parametrize("backend", ["surrogate", "neuron"])
def test_drive_event_after_the_run_is_refused_by_both_backends(small_net, backend):
    with pytest.raises(ParameterError, match=r"drive event \d+ at [\d.]+ ms is not before the run's end \(20.0 ms\)"):
        small_net.run(20.0, backend=backend)


def test_running_past_the_drives_warns_by_name(small_net):
    with pytest.warns(UserWarning, match="duration 60.0 ms is longer than the 40 ms this network's drives"):
        res = small_net.run(60.0, backend="surrogate")
    assert res.attrs["duration"] == 60.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run as long as the drives: no warning
        small_net.run(40.0, backend="surrogate")


# -- 7. errors that say what is wrong --------------------------------------------------------------------------
def test_rett_metrics_refuses_a_single_cell_result():
    cell = mtl.cells.get("point")
    truth = mtl.simulate(cell, mtl.inputs.poisson(cell, 50.0, seed=0))
    with pytest.raises(ValueError, match="rett_metrics needs a network result .* mtl.evaluate"):
        mtl.network.rett_metrics(truth)


@pytest.mark.parametrize("kwargs, match", [
    ({"p_connect": 2.0}, r"p_connect = 2.0 is out of range: it must be in \[0, 2/3\]"),
    ({"p_connect": -0.1}, r"p_connect = -0.1 is out of range: it must be in \[0, 2/3\]"),
    ({"n_cells": float("nan")}, r"n_cells = nan is out of range: it must be an integer >= 2"),
    ({"n_cells": 2.5}, r"n_cells = 2.5 is out of range: it must be an integer >= 2"),
    ({"exc_scale": float("inf")}, r"exc_scale = inf is out of range: it must be >= 0"),
    ({"duration": 0.0}, r"duration = 0.0 is out of range: it must be > 0 ms"),
    ({"stim_time": 500.0}, r"stim_time = 500.0 must lie in \[0, duration 300\) ms"),
    ({"U": 1.5}, r"U = 1.5 is out of range: it must be in \(0, 1\]"),
    ({"contacts": 0}, r"contacts = 0 is out of range: it must be an integer >= 1"),
    ({"conacts": 5}, r"unknown parameter\(s\) \['conacts'\]"),
])
def test_rett_range_errors_state_the_range(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        mtl.network.rett(**{"n_cells": 4, **kwargs})


def test_rett_long_duration_names_an_argument_rett_accepts():
    with pytest.raises(ParameterError) as info:
        mtl.network.rett(n_cells=4, duration=1e9)
    assert "max_events" not in str(info.value) and "max_memory" in str(info.value)
    import inspect

    assert "max_memory" in inspect.signature(mtl.network.rett).parameters


# -- 2. the API and the training CLI build the same model ------------------------------------------------------
def test_api_fit_and_training_cli_build_the_same_model(tmp_path):
    from mtlneuron.training.cli import main as train_main

    cell = mtl.cells.get("point")
    path = mtl.datasets.generate(cell, n_trials=4, duration=200.0, path=tmp_path / "p.nc", seed=0, n_workers=1,
                                 progress=False)
    arch = dict(input_channels=4, filter_channels=4, conv_channels=(8,), hidden_size=8, num_layers=1)
    model = mtl.Surrogate(cell, **arch).fit(path, epochs=1, window=200, progress=False)
    assert train_main(["--data", str(path), "--out", str(tmp_path / "m.pt"), "--epochs", "1", "--window", "200",
                       "--input-channels", "4", "--filter-channels", "4", "--conv-channels", "8",
                       "--hidden-size", "8", "--num-layers", "1", "--no-progress"]) == 0
    cli_model = mtl.Surrogate.load(tmp_path / "m.pt")
    assert model.config.ions == cli_model.config.ions == ("na", "k")  # the point neuron's INa / IK head in both
    assert model.n_parameters == cli_model.n_parameters
    assert [k for k, _ in model.named_parameters()] == [k for k, _ in cli_model.named_parameters()]
    assert "i_ion" in model.predict(mtl.inputs.poisson(cell, 20.0, seed=1))


def test_fixed_ions_are_kept_by_fit(tmp_path):
    cell = mtl.cells.get("point")
    model = mtl.Surrogate(cell, input_channels=4, filter_channels=4, conv_channels=(8,), hidden_size=8,
                          num_layers=1, ions=())
    assert model.config.ions == ()
    with pytest.raises(ValueError, match="fixed already"):
        model.set_ions(("na", "k"))


# -- 11. minor: the early-stopping word, hnn-core's banner, documentation ---------------------------------------
def test_training_says_it_stopped_early(tmp_path, capsys):
    cell = mtl.cells.get("point")
    path = mtl.datasets.generate(cell, n_trials=3, duration=100.0, path=tmp_path / "p.nc", seed=0, n_workers=1,
                                 progress=False)
    model = mtl.Surrogate(cell, input_channels=4, filter_channels=4, conv_channels=(8,), hidden_size=8,
                          num_layers=1, dropout=0.0)
    # a learning rate below float precision leaves the weights (and the validation loss) unchanged: no improvement
    model.fit(path, epochs=20, window=200, lr=1e-30, weight_decay=0.0, patience=2, loss_weighting="fixed",
              progress=True)
    out = capsys.readouterr()
    assert model.training_info["stopped"] == "early_stopping"
    assert "stopped early after epoch 3 of 20 (no validation improvement in 2 epochs)" in out.out + out.err


def test_hnn_core_banner_is_silenced(tmp_path):
    fake = tmp_path / "hnn_core"
    fake.mkdir()
    (fake / "__init__.py").write_text("print('Thank you for installing HNN-Core! (banner)')\n")
    code = "from mtlneuron.nrn import mechanisms; m = mechanisms.import_hnn_core(); print('imported', m.__name__)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert "imported hnn_core" in res.stdout and "banner" not in res.stdout


def test_run_progress_is_documented():
    from mtlneuron.network import Network

    doc = Network.run.__doc__
    assert "progress=True" in doc and "max_memory" in doc


def test_sweep_progress_counts_networks(capsys):
    mtl.network.sweep(mtl.network.rett, {"exc_scale": [1.0, 1.25, 1.5]}, seeds=[0], n_cells=3, duration=40.0,
                      stim_time=20.0, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "network" in err


def test_setup_config_lists_every_package_and_an_spdx_license():
    """``make setup`` printed setuptools warnings: a license table, and folders missing from ``packages``."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert isinstance(config["project"]["license"], str)
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {".".join(p.relative_to(root).parts) for p in (root / "mtlneuron").rglob("*")
               if p.is_dir() and "__pycache__" not in p.parts and any(f.is_file() for f in p.iterdir())}
    assert folders <= listed, f"not in pyproject's packages: {sorted(folders - listed)}"
