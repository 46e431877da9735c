"""Plots return matplotlib figures and refuse ambiguous input."""
import pytest

from mtlneuron import fields

pytestmark = pytest.mark.neuron


def test_plots_return_figures(cell, trial):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = fields.eeg(trial, electrodes="biosemi64")
    fig = fields.plot_topography(e.isel(time=100), names=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    fig2 = fields.plot_topography(e.isel(time=100).values, "biosemi64")
    lfp = fields.lfp(trial, cell, fields.laminar_probe(20, 100.0, origin=(50, 0, 1900)))
    fig3 = fields.plot_laminar(lfp)
    assert isinstance(fig3, matplotlib.figure.Figure)
    plt.close("all")
    with pytest.raises(ValueError, match="select one time"):
        fields.plot_topography(e)
    plt.close(fig2)
