"""Issue 12.5 (surrogate): non-finite inputs are errors where they enter, outputs are checked, the
sequence path stays causal and no NaN state is handed on."""
import math

import numpy as np
import pytest
import torch
import xarray as xr

from mtlneuron.surrogate import Surrogate


def test_nan_input_is_refused_naming_the_step_and_the_state_is_untouched(tiny, random_drive):
    x = random_drive(tiny.n_sites, batch=2, steps=150)
    with torch.no_grad():
        ref, _ = tiny.run(x)
        bad = x.clone()
        bad[1, 70, 3] = math.nan
        with pytest.raises(ValueError, match="batch 1, step 70"):
            tiny.run(bad)
        again, _ = tiny.run(x)  # nothing was poisoned
    for k in ref:
        torch.testing.assert_close(ref[k], again[k])


@pytest.mark.parametrize("value", [math.inf, -math.inf, 1e300])
def test_infinite_or_float32_overflowing_input_is_refused(tiny, random_drive, value):
    x = random_drive(tiny.n_sites, batch=1, steps=80).double()
    x[0, 40, 0] = value
    with pytest.raises(ValueError, match="step 40"):
        tiny.run(x)


def test_a_nan_state_is_refused(tiny, random_drive):
    x = random_drive(tiny.n_sites, batch=1, steps=20)
    state = tiny.initial_state(1)
    state.h[0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="state passed in is not finite"):
        tiny.run(x, state)


def test_whole_sequence_path_is_causal_with_huge_inputs(tiny, random_drive):
    """Outputs before a bin do not depend on that bin, however large the (finite, float32) input there."""
    x = random_drive(tiny.n_sites, batch=1, steps=128)
    big = x.clone()
    big[0, 70, :] = 3e4  # finite; a huge drive
    with torch.no_grad():
        a, _ = tiny.run(x)
        try:
            b, _ = tiny.run(big)
        except ValueError as err:  # an overflow must be reported at its own step, never earlier
            assert "step 70" in str(err) or "t = 35 ms" in str(err), err
            return
    for k in a:
        torch.testing.assert_close(a[k][:, :70], b[k][:, :70])


def test_non_finite_outputs_are_reported_with_trial_and_time(tiny, random_drive):
    model = Surrogate(meta=tiny.meta, input_channels=4, filter_channels=3, conv_channels=(), hidden_size=8,
                      num_layers=1).eval()
    with torch.no_grad():
        model.v_head.weight.fill_(1e38)  # a broken model: its voltage read-out overflows
        model.v_head.bias.fill_(1e38)
    with pytest.raises(ValueError, match=r"non-finite v in trial 0 at t = 0 ms"):
        model.run(random_drive(model.n_sites, batch=1, steps=10))


def test_predict_refuses_absurd_weights_before_running(tiny):
    drive = xr.Dataset({"time": ("event", [25.0]), "site": ("event", np.array([0])),
                        "weight": ("event", [1e300])},
                       attrs={"duration": 50.0, "n_sites": tiny.n_sites, "cell": tiny.cell_name})
    with pytest.raises(ValueError, match="above MAX_WEIGHT"):
        tiny.predict(drive)


def test_predict_refuses_dataset_inputs_beyond_float32_naming_trial_and_time(tiny):
    x = np.zeros((2, 100, tiny.n_sites))
    x[1, 50, 0] = 1e300
    ds = xr.Dataset({"inputs": (("trial", "time", "site"), x)}, attrs={"dt": tiny.dt, "cell_key": tiny.cell_key})
    with pytest.raises(ValueError, match=r"1e\+300 uS at \{'trial': 1, 'time': '25 ms', 'site': 0\}"):
        tiny.predict(ds)
