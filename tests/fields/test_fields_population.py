"""Placed populations: rotated dipoles at their somata, EEG and LFP summed over cells."""
import numpy as np
import pytest
import xarray as xr
from fields_helpers import rel_err
from lfpykit import eegmegcalc

from mtlneuron import fields

pytestmark = pytest.mark.neuron


def test_population_dipole_and_eeg(cell, trial):
    positions = [[0, 0, 77000], [3000, 0, 76900], [0, -4000, 76800]]
    pop = fields.place(cell, positions, rotations="radial")
    for pl, pos in zip(pop, positions):  # radial: the apical (+z) axis along the outward normal
        np.testing.assert_allclose(pl.rotation_matrix @ [0, 0, 1], np.asarray(pos) / np.linalg.norm(pos), atol=1e-12)
    pd = fields.population_dipole(trial, pop)
    p = trial["dipole"].values.astype(float)
    expected = sum(p @ pl.rotation_matrix.T for pl in pop)
    np.testing.assert_allclose(pd["total"].values, expected, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(pd["location"].values, positions)
    assert pd["dipole"].dims == ("time", "cell", "axis")
    out = fields.eeg(trial, electrodes="10-20", placement=pop)
    el = np.stack([out[c].values for c in "xyz"], axis=1)
    four = eegmegcalc.FourSphereVolumeConductor(el, list(fields.DEFAULT_RADII), list(fields.DEFAULT_SIGMAS))
    ref = sum(four.get_dipole_potential((p @ pl.rotation_matrix.T).T, np.asarray(pos, float))
              for pl, pos in zip(pop, positions)).T * 1e3
    assert rel_err(out.values, ref) < 1e-6
    # one row per cell (a 'cell' dim) is matched to the placements in order
    per_cell = xr.concat([trial[["dipole"]] * k for k in (1.0, 0.0, 0.0)], dim="cell")
    solo = fields.eeg(trial, electrodes="10-20", placement=pop[0])
    np.testing.assert_allclose(fields.eeg(per_cell, electrodes="10-20", placement=pop).values, solo.values,
                               rtol=1e-10, atol=1e-12)
    el = pop[0].transform(fields.laminar_probe(4, 500.0, origin=(60, 0, 1800)))
    per_cell_i = xr.concat([trial[["imem"]] * k for k in (1.0, 0.0, 0.0)], dim="cell")
    np.testing.assert_allclose(fields.lfp(per_cell_i, cell, el, placement=pop).values,
                               fields.lfp(trial, cell, el, placement=pop[0]).values, rtol=1e-10, atol=1e-15)
    geo = pop.geometry()
    assert geo.sizes["cell"] == 3 and np.allclose(geo["position"].values, positions)
