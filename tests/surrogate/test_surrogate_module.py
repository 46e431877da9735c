"""The Surrogate nn.Module and its layers: filters, causality, streaming == sequence, config checks."""
import copy

import numpy as np
import pytest
import torch

from mtlneuron.surrogate import Surrogate, SurrogateConfig, SurrogateState
from mtlneuron.surrogate.layers import exp_filter, kernel_gain


def test_exp_filter_equals_recursion():
    x = torch.rand(2, 150, 3, dtype=torch.float64)
    decay = torch.tensor([0.0, 0.5, 0.97], dtype=torch.float64)
    y0 = torch.rand(2, 3, dtype=torch.float64)
    y, last = exp_filter(x, decay, y0)
    ref, prev = [], y0
    for t in range(x.shape[1]):
        prev = decay * prev + x[:, t]
        ref.append(prev)
    torch.testing.assert_close(y, torch.stack(ref, 1))
    torch.testing.assert_close(last, prev)


def test_synaptic_filter_peaks_at_one(point_meta):
    model = Surrogate(meta=point_meta, dt=0.25)
    for a1, a2 in [(0.0, 0.9), (0.6, 0.95), (0.95, 0.95)]:
        x = torch.zeros(1, 400, 2, dtype=torch.float64)
        x[0, 0] = 1.0
        decay = torch.tensor([a1, a1], dtype=torch.float64), torch.tensor([a2, a2], dtype=torch.float64)
        g1, _ = exp_filter(x, decay[0], torch.zeros(1, 2, dtype=torch.float64))
        g2, _ = exp_filter(g1, decay[1], torch.zeros(1, 2, dtype=torch.float64))
        gain = kernel_gain(np.array([a1]), np.array([a2]))[0]
        assert float(g2.max()) * gain == pytest.approx(1.0)
    sites = point_meta["sites"]
    groups = set(zip(sites["tau1"], sites["tau2"]))
    assert model.kernel_gain.shape == (len(groups) * model.config.filter_channels,)


def test_projection_then_filter_equals_filter_then_projection(tiny, point_meta, random_drive):
    """The filtered features: projecting the drive first and filtering the few channels
    (what the model does) equals filtering every site with its own kernel and projecting."""
    model = copy.deepcopy(tiny).double()
    x = random_drive(model.n_sites).double()
    state = model.initial_state(x.shape[0])
    with torch.no_grad():
        feats, _, _ = model.features(x, state)
        u = x / model.site_scale
        tau1 = torch.tensor(point_meta["sites"]["tau1"], dtype=torch.float64)
        tau2 = torch.tensor(point_meta["sites"]["tau2"], dtype=torch.float64)
        zero = torch.zeros(x.shape[0], model.n_sites, dtype=torch.float64)
        g1, _ = exp_filter(u, torch.exp(-model.dt / tau1), zero)
        g2, _ = exp_filter(g1, torch.exp(-model.dt / tau2), zero)
        gain = torch.tensor(kernel_gain(torch.exp(-model.dt / tau1).numpy(), torch.exp(-model.dt / tau2).numpy()))
        expected = (g2 * gain) @ (model.filter_proj * model.filter_mask).T
    np.testing.assert_allclose(feats[..., model.config.input_channels:].numpy(), expected.numpy(), rtol=2e-5,
                               atol=1e-9)  # decays are float32 buffers


def test_step_matches_sequence(tiny, random_drive):
    x = random_drive(tiny.n_sites)
    with torch.no_grad():
        z_seq, _ = tiny(x)
        state, z_steps = None, []
        for t in range(x.shape[1]):
            z, state = tiny(x[:, t:t + 1], state)
            z_steps.append(z)
    for k in z_seq:  # float32, standardised outputs
        np.testing.assert_allclose(torch.cat([z[k] for z in z_steps], 1).numpy(), z_seq[k].numpy(), atol=1e-5)
    model = tiny.double()  # physical units (mV ~ 65: float32 rounding alone is 1e-5), in float64
    x = x.double()
    with torch.no_grad():
        seq, _ = model.run(x)
        state, steps = model.initial_state(x.shape[0]), []
        for t in range(x.shape[1]):
            out, state = model.step(x[:, t], state)
            steps.append(out)
        first, mid = model.run(x[:, :77])
        second, _ = model.run(x[:, 77:], mid)
    assert isinstance(state, SurrogateState)
    for k in seq:
        np.testing.assert_allclose(torch.stack([o[k] for o in steps], 1).numpy(), seq[k].numpy(), atol=1e-5)
        np.testing.assert_allclose(torch.cat([first[k], second[k]], 1).numpy(), seq[k].numpy(), atol=1e-5)


def test_fast_step_equals_the_sequence_path(tiny, random_drive):
    """``step`` (matrix-product conv taps, explicit LSTM cell) == ``run``, dilated convs and 2 layers included."""
    x = random_drive(tiny.n_sites, steps=30)
    with torch.no_grad():
        ref, ref_state = tiny.run(x)
        state, outs = None, []
        for t in range(x.shape[1]):
            out, state = tiny.step(x[:, t], state)
            outs.append(out)
    for key, value in ref.items():
        np.testing.assert_allclose(torch.stack([o[key] for o in outs], 1).numpy(), value.numpy(), rtol=1e-5,
                                   atol=1e-5)
    for a, b in zip((state.h, state.c, *state.conv), (ref_state.h, ref_state.c, *ref_state.conv)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_step_is_causal_and_differentiable(tiny, random_drive):
    x = random_drive(tiny.n_sites, steps=40).requires_grad_(True)
    out, _ = tiny.run(x)
    out["v"][:, 20].sum().backward()
    assert x.grad[:, :21].abs().sum() > 0
    assert x.grad[:, 21:].abs().sum() == 0  # the future cannot influence the present


def test_config_errors(point_meta):
    with pytest.raises(ValueError, match="dilations"):
        Surrogate(meta=point_meta, conv_channels=(4, 4), dilations=(1,))
    with pytest.raises(ValueError, match="unknown Surrogate config"):
        Surrogate(meta=point_meta, hidden=3)
    with pytest.raises(ValueError, match="dt"):
        Surrogate(meta=point_meta, dt=0.0)
    with pytest.raises(ValueError, match="exactly one of cell"):
        Surrogate()
    assert SurrogateConfig.from_dict(SurrogateConfig(hidden_size=8).to_dict()).hidden_size == 8
    assert SurrogateConfig().v_clip == -40.0


def test_state_dict_names_are_stable(tiny):
    """The parameter and buffer names are the keys of the shipped checkpoints: they must not change."""
    keys = set(tiny.state_dict())
    for name in ("site_scale", "v_mean", "v_std", "dipole_mean", "dipole_std", "dipole_active", "spike_pos_weight",
                 "spike_prob_threshold", "ion_mean", "ion_std", "input_proj.weight", "input_proj.bias",
                 "filter_proj", "convs.0.conv.weight", "convs.1.conv.bias", "lstm.weight_ih_l0", "lstm.bias_hh_l1",
                 "v_head.0.weight", "v_head.2.bias", "dipole_head.0.weight", "spike_head.2.weight"):
        assert name in keys, name
    assert not {"filter_mask", "decay1", "decay2", "kernel_gain"} & keys  # rebuilt from the site table
