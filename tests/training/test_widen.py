"""Widening a surrogate's LSTM keeps what it computes and leaves the new units trainable."""
import pytest
import torch

import mtlneuron as mtl
from mtlneuron.surrogate import Surrogate
from mtlneuron.training.widen import widen

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
