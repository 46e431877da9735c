"""LFP and dipoles of one cell and of placed cells: against LFPykit called directly, and analytic."""
import lfpykit
import numpy as np
import pytest
import xarray as xr
from fields_helpers import lfpykit_geometry, rel_err
from scipy.spatial.transform import Rotation

from mtlneuron import fields
from mtlneuron.geometry import fibonacci_cap

pytestmark = pytest.mark.neuron


@pytest.mark.parametrize("method, model", [("linesource", lfpykit.LineSourcePotential),
                                           ("pointsource", lfpykit.PointSourcePotential)])
def test_lfp_identical_to_lfpykit(cell, trial, method, model):
    el = np.r_[fields.laminar_probe(20, 100.0, origin=(50, 0, 1900)), fields.grid(x=[-300, 300], z=[0, 1000])]
    out = fields.lfp(trial, cell, el, method=method, sigma=0.3)
    m = model(lfpykit_geometry(cell.segments), x=el[:, 0], y=el[:, 1], z=el[:, 2],
              sigma=0.3).get_transformation_matrix()
    ref = (m @ trial["imem"].values.T.astype(float)).T
    assert out.dims == ("time", "electrode") and out.attrs["units"] == "mV"
    assert out["z"].attrs["units"] == "um" and np.allclose(out["z"].values, el[:, 2])
    assert rel_err(out.values, ref) < 1e-6


def test_lfp_of_placed_cell_matches_lfpykit_on_rotated_geometry(cell, trial):
    rot, pos = (0.3, -0.7, 1.1), np.array([100.0, -50.0, 400.0])
    placement = fields.Placement(cell, position=pos, rotation=rot)
    seg = cell.segments
    r = Rotation.from_euler("xyz", rot)  # extrinsic x, then y, then z: an independent implementation
    ends = [r.apply(np.c_[seg[f"x{k}"], seg[f"y{k}"], seg[f"z{k}"]]) + pos for k in (0, 1)]
    geo = lfpykit.CellGeometry(x=np.c_[ends[0][:, 0], ends[1][:, 0]], y=np.c_[ends[0][:, 1], ends[1][:, 1]],
                               z=np.c_[ends[0][:, 2], ends[1][:, 2]], d=seg.diam.values.astype(float))
    el = fields.grid(x=[-400, 400], y=[-100, 100], z=[0, 800, 1600])
    out = fields.lfp(trial, cell, el, placement=placement)
    m = lfpykit.LineSourcePotential(geo, x=el[:, 0], y=el[:, 1], z=el[:, 2], sigma=0.3).get_transformation_matrix()
    assert rel_err(out.values, trial["imem"].values.astype(float) @ m.T) < 1e-6
    # the rotated dipole is D(rotated geometry) @ imem
    d_ref = lfpykit.CurrentDipoleMoment(geo).get_transformation_matrix() @ trial["imem"].values.T.astype(float)
    d_out = fields.dipole(trial, cell, placement=placement, source="imem")
    assert rel_err(d_out.values, d_ref.T) < 1e-3  # float32 imem: sum(imem) ~ 1e-4 nA x 400 um shift


def test_far_field_matches_analytic_dipole(cell, trial):
    """phi = p.r / (4 pi sigma |r|^3), 20 cm from the soma in 40 directions, within 1%."""
    dist = 2e5
    el = fibonacci_cap(40, np.pi) * dist
    out = fields.lfp(trial, cell, el, source="v", sigma=0.3)
    p = fields.dipole(trial, cell, source="v").values
    analytic = p @ el.T / (4 * np.pi * 0.3 * dist ** 3)
    err = rel_err(out.values, analytic)
    print(f"far-field LFP vs analytic dipole at 20 cm: relative RMSE {100 * err:.2f}%")
    assert err < 0.01


def test_lfp_and_dipole_from_v_agree_with_imem(cell, trial):
    el = fields.laminar_probe(20, 100.0, origin=(30, 0, 1900))
    lfp_i = fields.lfp(trial, cell, el, source="imem")
    lfp_v = fields.lfp(trial, cell, el, source="v")
    d_i = fields.dipole(trial, cell, source="imem")
    d_v = fields.dipole(trial, cell, source="v")
    e_lfp, e_dip = rel_err(lfp_v, lfp_i), rel_err(d_v, d_i)
    print(f"from v vs from imem: LFP relative RMSE {100 * e_lfp:.4f}%, dipole {100 * e_dip:.4f}%")
    assert e_lfp < 0.02 and e_dip < 0.02
    assert lfp_v.attrs["current_source"] == "v"
    # the recorded dipole is D @ imem
    assert rel_err(d_i, trial["dipole"]) < 1e-5


def test_surrogate_like_data_with_trials(cell, trial):
    """Predictions may hold only v and dipole, with a leading trial dim."""
    pred = xr.concat([trial[["v", "dipole"]], trial[["v", "dipole"]] * 2], dim="trial")
    el = fields.laminar_probe(5, 300.0, origin=(50, 0, 1500))
    out = fields.lfp(pred, cell, el)
    assert out.dims == ("trial", "time", "electrode") and out.attrs["current_source"] == "v"
    np.testing.assert_allclose(out.isel(trial=1), 2 * out.isel(trial=0), rtol=1e-6, atol=1e-12)
    e = fields.eeg(pred, electrodes="10-20")
    assert e.dims == ("trial", "time", "electrode") and e.attrs["dipole_source"] == "dipole"
