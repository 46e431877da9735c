"""Bad input gives clear errors naming the value."""
import numpy as np
import pytest
import xarray as xr

import mtlneuron as mtl
from mtlneuron import fields


def test_bad_head_and_channel_input():
    p = fields.dipole_dataset([0, 0, 10.0], units="nA m")
    with pytest.raises(ValueError, match="inside the brain sphere"):
        fields.eeg(p, electrodes=[[0, 0, 70000.0]])
    with pytest.raises(ValueError, match="outside the head"):
        fields.eeg(p, electrodes=[[0, 0, 95000.0]])
    with pytest.raises(ValueError, match="outside the brain sphere"):
        fields.eeg(p, electrodes="10-20", dipole_location=(0, 0, 80000.0))
    with pytest.raises(ValueError, match="outside the brain sphere"):
        fields.meg(p, dipole_location=(0, 85000.0, 0))
    with pytest.raises(ValueError, match="inside the brain sphere"):
        fields.meg(p, sensors=[[0, 0, 50000.0]], dipole_location=(0, 0, 40000.0))
    with pytest.raises(TypeError, match=r"sigmas\[1\] must be a float"):
        fields.FourSphere(sigmas=(0.47, "1.71", 0.02, 0.41))
    with pytest.raises(ValueError, match="radii must be positive and increasing"):
        fields.FourSphere(radii=(80000, 79000, 85000, 90000))
    data = fields.eeg(p, electrodes="10-20")
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.fit_dipole(data, sensors="biosemi64")
    with pytest.raises(ValueError, match="noise_cov must be"):
        fields.fit_dipole(data, noise_cov=np.eye(3))
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.fit_scale(np.zeros(10), np.zeros(12))
    with pytest.raises(ValueError, match="unknown montage"):
        fields.montage("10-5")
    with pytest.raises(ValueError, match="unknown electrode"):
        fields.montage(["Cz", "Xx1"])
    with pytest.raises(ValueError, match="n must be a positive integer number of sensors"):
        fields.helmet(0)
    with pytest.raises(ValueError, match="n must be a positive integer number of contacts"):
        fields.laminar_probe(1.5)


@pytest.mark.neuron
def test_bad_cell_input(cell, trial):
    el = fields.laminar_probe(3)
    with pytest.raises(ValueError, match="either dipole_location= or placement="):
        fields.eeg(trial, placement=fields.Placement(cell, (0, 0, 70000)), dipole_location=(0, 0, 70000))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        fields.lfp(trial, cell, np.zeros((4, 2)))
    point = mtl.cells.get("point")
    with pytest.raises(ValueError, match="mismatched shapes"):
        fields.lfp(trial, point, el)
    with pytest.raises(ValueError, match="'imem' \\(nA\\) or 'v' \\(mV\\)"):
        fields.lfp(trial[["dipole", "spike_times"]], cell, el)
    with pytest.raises(ValueError, match="'imem' \\(nA\\) or 'v' \\(mV\\)"):
        fields.dipole(trial[["spike_times"]], cell)
    for bad in ("0.3", [0.3], np.array([0.3, 0.3]), None, True):
        with pytest.raises(TypeError, match="sigma must be a float"):
            fields.lfp(trial, cell, el, sigma=bad)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        fields.lfp(trial, cell, el, sigma=-0.3)
    with pytest.raises(ValueError, match="method must be one of"):
        fields.lfp(trial, cell, el, method="linear")
    with pytest.raises(ValueError, match="position must have 3 components"):
        fields.Placement(cell, position=(0, 0))
    with pytest.raises(TypeError, match="placement must be"):
        fields.lfp(trial, cell, el, placement=(0, 0, 0))
    with pytest.raises(ValueError, match="cells but the placement has"):
        fields.eeg(xr.concat([trial[["dipole"]]] * 2, dim="cell"), placement=fields.place(cell, [[0, 0, 70000]] * 3))
