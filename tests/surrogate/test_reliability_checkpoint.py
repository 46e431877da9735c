"""Issue 12.4: a checkpoint whose weights changed on disk is refused; hash-less files warn."""
import warnings
from pathlib import Path

import pytest
import torch

from mtlneuron.surrogate import Surrogate, add_weights_hash, checkpoint

DATA = Path(__file__).resolve().parents[2] / "data"  # this tree's shipped files (an editable install may map elsewhere)


def _flip_inside_largest_tensor(path, n_bytes=16):
    ckpt = torch.load(path, weights_only=True)
    name, tensor = max(ckpt["state_dict"].items(), key=lambda kv: kv[1].numel())
    raw = path.read_bytes()
    stored = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    at = raw.find(stored)
    assert at > 0, "tensor bytes not found in the file"
    mid = at + len(stored) // 2
    path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid:mid + n_bytes]) + raw[mid + n_bytes:])
    return name


def test_flipped_weight_bytes_are_refused(tmp_path):
    path = tmp_path / "point.pt"
    path.write_bytes((DATA / "point.pt").read_bytes())
    Surrogate.load(path)  # intact: loads
    _flip_inside_largest_tensor(path)
    torch.load(path, weights_only=True)  # torch itself does not notice
    with pytest.raises(ValueError, match="corrupted: its weights do not match the SHA-256"):
        Surrogate.load(path)


def test_saved_checkpoints_carry_the_hash(tiny, tmp_path):
    path = tiny.save(tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["weights_sha256"] == checkpoint.weights_hash(tiny.state_dict())
    ckpt["state_dict"]["v_mean"] = ckpt["state_dict"]["v_mean"] + 1.0  # an edited weight, valid file
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="corrupted"):
        Surrogate.load(path)


def test_hashless_files_warn_and_can_be_upgraded(tiny, tmp_path):
    ckpt = tiny.checkpoint()
    del ckpt["weights_sha256"]
    path = tmp_path / "old.pt"
    torch.save(ckpt, path)
    with pytest.warns(UserWarning, match="no weights hash"):
        Surrogate.load(path)
    add_weights_hash(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = Surrogate.load(path)
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


@pytest.mark.parametrize("name", ["point", "point_nmda", "l5pc"])
def test_shipped_checkpoints_are_verified(name):
    path = DATA / f"{name}.pt"
    ckpt = torch.load(path, weights_only=True)
    assert "weights_sha256" in ckpt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.read_checkpoint(path)


def test_non_finite_weights_are_refused_even_with_a_matching_hash(tiny, tmp_path):
    state = {k: v.clone() for k, v in tiny.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name].view(-1)[0] = float("nan")
    path = checkpoint.write_checkpoint(tiny.checkpoint(state_dict=state), tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=f"non-finite weights in '{name}'"):
        Surrogate.load(path)
