import numpy as np
import pytest
import xarray as xr

import mtlneuron as mtl
from mtlneuron import datasets


def test_generate_writes_a_compressed_labelled_file(point, tmp_path):
    path = datasets.generate(point, 4, 200.0, tmp_path / "p.nc", seed=5, n_workers=2, progress=False)
    assert path.exists()
    assert not (tmp_path / ".p.nc.parts").exists()
    ds = datasets.open(path)
    assert ds.sizes["trial"] == 4 and ds["v"].dims == ("trial", "time", "segment")
    assert ds["v"].attrs["units"] == "mV" and ds["dipole"].attrs["units"] == "nA um"
    assert ds["spike_times"].dims == ("trial", "spike")
    assert ds["v"].encoding.get("zlib") is True
    assert list(ds["trial_seed"].values) == [5_000_000 + i for i in range(4)]
    assert set(ds["stage"].values) <= set(datasets.STAGES)
    # each trial equals a direct simulation with its seed and rate scale
    i = 2
    drive = datasets.trial_drive(point, int(ds["trial_seed"][i]), float(ds["rate_scale"][i]), 200.0)
    assert float(ds["rate_scale"][i]) == datasets.curriculum(4, 5)[i][1]
    direct = mtl.simulate(point, drive)
    np.testing.assert_allclose(ds["v"].values[i], direct["v"].values, atol=1e-4)


def test_curriculum_orders_stages():
    plan = datasets.curriculum(20, seed=0)
    stages = [s for s, _ in plan]
    assert stages == sorted(stages, key=list(datasets.STAGES).index)
    assert set(stages) == set(datasets.DEFAULT_MIX)
    for stage, scale in plan:
        lo, hi = datasets.STAGES[stage]
        assert lo <= scale <= hi


def test_resume_skips_finished_trials(point, tmp_path):
    path = tmp_path / "r.nc"
    config = datasets._config(point, 3, 100.0, 0.5, 0, None)
    parts = datasets._parts_dir(path, config)
    stage, scale = datasets.curriculum(3, 0)[1]
    shard = parts / "trial_000001.npz"
    datasets._trial_task(point, 1, datasets.trial_seed(0, 1), stage, scale, 100.0, 0.5, str(shard))
    # mark the finished shard so we can tell whether it was redone
    with np.load(shard) as raw:
        marked = {k: raw[k] for k in raw.files}
    marked["neuron_seconds"] = np.float64(-1.0)
    with open(shard, "wb") as f:
        np.savez(f, **marked)
    datasets.generate(point, 3, 100.0, path, n_workers=1, progress=False)
    ds = datasets.open(path)
    assert float(ds["neuron_seconds"][1]) == -1.0
    assert (ds["neuron_seconds"].values[[0, 2]] > 0).all()


def test_resume_with_other_settings_is_refused(point, tmp_path):
    path = tmp_path / "r.nc"
    datasets._parts_dir(path, datasets._config(point, 3, 100.0, 0.5, 0, None))
    with pytest.raises(ValueError, match="interrupted run with other settings"):
        datasets.generate(point, 5, 100.0, path, progress=False)


def test_dask_executor(point, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        path = datasets.generate(point, 2, 100.0, tmp_path / "d.nc", executor=client.get_executor(),
                                 progress=False)
    assert datasets.open(path).sizes["trial"] == 2


def test_existing_output_needs_overwrite(point, tmp_path):
    path = tmp_path / "x.nc"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        datasets.generate(point, 1, 100.0, path, progress=False)
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("directory", ["/nonexistent-dir-mtl", "/proc"])
def test_unwritable_directory(point, directory):
    with pytest.raises(PermissionError, match=directory):
        datasets.generate(point, 1, 100.0, f"{directory}/x.nc", progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_trials": 0}, "n_trials must be a positive integer, got 0"),
    ({"duration": -1.0}, "duration must be a positive"),
    ({"dt": 0.33}, "multiple of the NEURON step"),
])
def test_bad_arguments_leave_no_file(point, tmp_path, kwargs, message):
    args = {"n_trials": 1, "duration": 100.0, "dt": 0.5} | kwargs
    with pytest.raises(ValueError, match=message):
        datasets.generate(point, args["n_trials"], args["duration"], tmp_path / "y.nc", dt=args["dt"],
                          progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failure_during_merge_leaves_no_final_file(point, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        datasets.generate(point, 1, 100.0, tmp_path / "z.nc", n_workers=1, progress=False)
    assert not (tmp_path / "z.nc").exists()
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))


def test_open_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        datasets.open(tmp_path / "missing.nc")
