"""Widening a surrogate's LSTM keeps what it computes and leaves the new units trainable."""
import pytest
import torch

import mtlneuron as mtl
from mtlneuron.surrogate import Surrogate
from mtlneuron.training.widen import add_spike_history, widen

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = Surrogate(mtl.cells.get("l23pc"), input_channels=8, filter_channels=4, conv_channels=(8,), hidden_size=12,
                  num_layers=2, dropout=0.1)
    with torch.no_grad():  # a "trained" model: no parameter left at a special value
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def _inputs(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 200, model.n_sites, generator=g) * (torch.rand(3, 200, model.n_sites, generator=g) < 0.05)


@pytest.mark.parametrize("head_hidden", [0, 6])
def test_widened_model_computes_the_same_outputs(head_hidden):
    torch.manual_seed(0)
    m = Surrogate(mtl.cells.get("l23pc"), input_channels=8, filter_channels=4, conv_channels=(8,), hidden_size=12,
                  num_layers=2, head_hidden=head_hidden).eval()
    wide = widen(m, 20)
    x = _inputs(m)
    with torch.no_grad():
        a, _ = m(x)
        b, state = wide(x)
    assert wide.config.hidden_size == 20 and state.h.shape[-1] == 20
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_new_units_are_active_and_their_readout_gets_gradients(model):
    wide = widen(model, 20, init_std=0.05).train()
    out, _ = wide(_inputs(model))
    (out["v"].pow(2).mean() + out["spike_logit"].pow(2).mean()).backward()
    assert wide.v_head.weight.grad[:, 12:].abs().max() > 0      # the heads can learn to read the new units
    assert wide.lstm.weight_hh_l0.grad[:, 12:].abs().max() > 0  # and the old units to listen to them
    assert model.config.hidden_size == 12 and model.lstm.weight_hh_l0.shape == (48, 12)  # the input is untouched


def test_widen_checks_its_arguments(model):
    with pytest.raises(ValueError, match="hidden_size must be an int >= the model's 12"):
        widen(model, 8)
    with pytest.raises(ValueError, match="init_std"):
        widen(model, 16, init_std=-1.0)
    same = widen(model, 12)
    assert same is not model and all(torch.equal(a, b) for a, b in zip(same.parameters(), model.parameters()))


# -- the spike-history input -------------------------------------------------------------------------

def _with_history(model, taus=(2.0, 10.0)):
    """add_spike_history, with history weights made non-zero so that the history matters."""
    h = add_spike_history(model, taus)
    with torch.no_grad():
        h.convs[0].conv.weight[:, -len(taus):] = 3.0 * torch.randn(h.convs[0].conv.weight[:, -len(taus):].shape)
        h.spike_head.weight.mul_(30.0)  # p crosses the threshold often, so the feedback carries information
    return h


def test_adding_spike_history_keeps_the_outputs(model):
    hist = add_spike_history(model, [2.0, 10.0, 50.0])
    x = _inputs(model)
    with torch.no_grad():
        a, _ = model(x)
        b, state = hist(x)  # free-running: its own spikes fed back, read with weight 0
    assert hist.config.spike_history_ms == (2.0, 10.0, 50.0) and state.spike_trace.shape == (3, 3)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    assert hist.training_info["spike_history_added"] == [2.0, 10.0, 50.0]
    with pytest.raises(ValueError, match="reads its spike history already"):
        add_spike_history(hist, [5.0])
    with pytest.raises(ValueError, match="at least one time constant"):
        add_spike_history(model, [])


def test_teacher_forcing_with_its_own_spikes_equals_free_running(model):
    hist = _with_history(model)
    x = _inputs(model)
    with torch.no_grad():
        free, state = hist(x)
        p = hist.spike_probability(free["spike_logit"])
        thr = hist.spike_prob_threshold
        previous = torch.cat([torch.zeros(3, 1), p[:, :-1]], dim=1)
        own = ((p >= thr) & (previous < thr)).float()  # the network engine's rule
        forced, forced_state = hist(x, spikes=own)
        other, _ = hist(x, spikes=torch.zeros_like(own))
    assert own.sum() > 5
    assert torch.allclose(free["v"], forced["v"], atol=1e-4)
    assert torch.allclose(state.spike_trace, forced_state.spike_trace, atol=1e-5)
    assert (free["v"] - other["v"]).abs().max() > 1e-2  # the history is read: other spikes, other outputs


def test_spike_history_steps_like_runs_and_survives_a_checkpoint(model, tmp_path):
    hist = _with_history(model)
    x = _inputs(model)
    with torch.no_grad():
        whole, _ = hist.run(x)
        first, state = hist.run(x[:, :70])
        rest, _ = hist.run(x[:, 70:], state)
        state, steps = None, []
        for t in range(x.shape[1]):
            out, state = hist.step(x[:, t], state)
            steps.append(out["v"])
    assert torch.allclose(whole["v"], torch.cat([first["v"], rest["v"]], dim=1), atol=1e-4)
    assert torch.allclose(whole["v"], torch.stack(steps, dim=1), atol=1e-4)
    hist.save(tmp_path / "h.pt")
    back = Surrogate.load(tmp_path / "h.pt")
    with torch.no_grad():
        again, _ = back.run(x)
    assert back.config.spike_history_ms == (2.0, 10.0) and torch.allclose(whole["v"], again["v"], atol=1e-5)


def test_spike_history_needs_recorded_spikes_of_the_right_shape_to_run_in_parallel(model):
    hist = _with_history(model)
    x = _inputs(model)
    with pytest.raises(ValueError, match=r"spikes of shape \(3, 200\)"):
        hist(x, spikes=torch.zeros(3, 199))
    with pytest.raises(ValueError, match="spike_history_ms must be time constants > 0"):
        Surrogate(mtl.cells.get("l23pc"), spike_history_ms=(0.0,))
