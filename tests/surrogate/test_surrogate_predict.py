"""Prediction to xarray: schema, input checks, spike detection."""
import numpy as np
import pytest
import xarray as xr

import mtlneuron as mtl
from mtlneuron.surrogate import detect_spikes


@pytest.mark.neuron
def test_predict_schema(tiny):
    cell = mtl.cells.get("point")
    drive = mtl.inputs.poisson(cell, duration=200.0, seed=1)
    pred = tiny.predict(drive)
    assert pred["v"].dims == ("time", "segment") and pred["v"].attrs["units"] == "mV"
    assert pred["dipole"].dims == ("time", "axis") and pred["dipole"].attrs["units"] == "nA um"
    assert pred["spike_prob"].dims == ("time",) and pred["spike_prob"].attrs["units"] == "1"
    assert pred["spike_times"].dims == ("spike",) and pred["spike_times"].attrs["units"] == "ms"
    assert pred.sizes["time"] == 400 and pred["time"].attrs["units"] == "ms"
    assert list(pred["axis"].values) == ["x", "y", "z"] and list(pred["segment"].values) == ["soma[0]"]
    assert pred.attrs["dt"] == 0.5 and pred.attrs["cell_key"] == cell.key
    batch = tiny.predict([drive, mtl.inputs.poisson(cell, duration=200.0, seed=2)])
    assert batch["v"].dims == ("trial", "time", "segment") and batch.sizes["trial"] == 2
    assert batch["spike_times"].dims == ("trial", "spike")
    np.testing.assert_allclose(batch["v"].values[0], pred["v"].values, atol=1e-5)
    # a chunked prediction is the same prediction
    np.testing.assert_allclose(tiny.predict(drive, chunk=37)["v"].values, pred["v"].values, atol=1e-5)
    rest = tiny.predict(mtl.inputs.empty(cell, 100.0))  # no events is a legal drive
    assert np.isfinite(rest["v"].values).all()


@pytest.mark.neuron
def test_predict_bad_drives(tiny):
    cell = mtl.cells.get("point")
    with pytest.raises(ValueError, match="15 sites"):
        tiny.predict(mtl.inputs.poisson(mtl.cells.get("point_nmda"), duration=100.0, seed=0))
    drive = mtl.inputs.poisson(cell, duration=100.0, seed=0)
    with pytest.raises(ValueError, match="dt 0.25"):
        tiny.predict(drive, dt=0.25)
    bad = drive.copy(deep=True)
    bad["weight"].values[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny.predict(bad)
    with pytest.raises(ValueError, match="duration"):
        tiny.predict(mtl.inputs.empty(cell, 100.0).assign_attrs(duration=0.0))
    with pytest.raises(ValueError, match="multiple of dt"):
        tiny.predict(mtl.inputs.empty(cell, 100.2))
    with pytest.raises(ValueError, match="same duration"):
        tiny.predict([drive, mtl.inputs.empty(cell, 50.0)])


def test_predict_bad_datasets(tiny):
    rng = np.random.default_rng(0)
    binned = (rng.random((200, tiny.n_sites)) < 0.05) * 0.003
    ds = xr.Dataset({"inputs": (("time", "site"), binned)}, attrs={"dt": 0.25, "cell_key": tiny.cell_key})
    with pytest.raises(ValueError, match="dataset dt 0.25"):
        tiny.predict(ds)
    nan_inputs = ds.assign_attrs(dt=0.5).copy(deep=True)
    nan_inputs["inputs"].values[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny.predict(nan_inputs)
    with pytest.raises(ValueError, match="cell key"):
        tiny.predict(ds.assign_attrs(dt=0.5, cell_key="l5pc-0123456789"))
    with pytest.raises(ValueError, match="has 3 sites"):
        tiny.predict(ds.assign_attrs(dt=0.5).isel(site=slice(0, 3)))
    with pytest.raises(ValueError, match="xarray.Dataset"):
        tiny.predict(np.zeros((10, tiny.n_sites)))
    good = ds.assign_attrs(dt=0.5)
    pred = tiny.predict(good)
    assert pred["v"].dims == ("time", "segment") and pred.sizes["time"] == 200
    trials = tiny.predict(good.expand_dims(trial=[7, 8]))
    assert trials["trial"].values.tolist() == [7, 8]
    np.testing.assert_allclose(trials["v"].values[1], pred["v"].values, atol=1e-5)


def test_detect_spikes():
    p = np.array([0, 0.2, 0.7, 0.9, 0.6, 0.1, 0, 0.8, 0])
    np.testing.assert_allclose(detect_spikes(p, 0.5, 0.5), [3.5 * 0.5, 7.5 * 0.5])
    assert detect_spikes(np.zeros(5), 0.5, 0.5).size == 0
