"""Fixtures of the surrogate tests. Models are built from the cell description stored in the
shipped point checkpoint, so most tests need no NEURON; those that build a cell are marked."""
import pytest
import torch

from mtlneuron.surrogate import Surrogate, data_dirs, read_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def point_meta():
    """The point cell's description (site table, segments) as saved in data/point.pt."""
    return read_checkpoint(data_dirs()[0] / "point.pt")["meta"]


@pytest.fixture
def tiny(point_meta):
    torch.manual_seed(0)
    return Surrogate(meta=point_meta, input_channels=4, filter_channels=3, conv_channels=(6, 5), kernel_size=3,
                     dilations=(1, 2), hidden_size=12, num_layers=2, head_hidden=7, dropout=0.2).eval()


@pytest.fixture(scope="session")
def random_drive():
    """``random_drive(n_sites, batch=2, steps=150, seed=0)``: sparse binned events of 3 nS."""
    def make(n_sites: int, batch: int = 2, steps: int = 150, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(batch, steps, n_sites, generator=g) < 0.05).float() * 0.003

    return make
