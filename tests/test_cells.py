import json
from pathlib import Path

import numpy as np
import pytest

import mtlneuron as mtl

DATA = Path(__file__).parent / "data"


def test_unknown_cell_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown cell name 'l6pc'"):
        mtl.cells.get("l6pc")


def test_segment_table_schema(l5pc):
    seg = l5pc.segments
    for name in ["section", "region", "sec_x", "x", "y", "z", "x0", "x1", "y0", "y1", "z0", "z1",
                 "diam", "length", "area", "parent"]:
        assert name in seg, name
    for name in ["x", "y", "z", "diam", "length"]:
        assert seg[name].attrs["units"] == "um"
    assert seg["area"].attrs["units"] == "um2"
    assert seg.sizes["segment"] == 55
    assert str(seg["segment"].values[l5pc.soma_index]) == "soma[0]"
    assert (seg["parent"].values < seg.sizes["segment"]).all()
    assert (seg["parent"].values == -1).sum() == 1  # one root
    # midpoints are the mean of the ends
    np.testing.assert_allclose(seg["z"], (seg["z0"] + seg["z1"]) / 2)
    assert set(seg["region"].values) >= {"soma", "basal", "apical_trunk", "apical_oblique", "apical_tuft"}


def test_l5pc_sites_follow_the_elife_layout(l5pc):
    sites = l5pc.sites
    assert sites.sizes["site"] == 200
    table = sites.to_dataframe()
    counts = table.groupby(["region", "kind"]).size().to_dict()
    assert counts == {("apical", "exc"): 100, ("apical", "inh"): 30, ("basal", "exc"): 50, ("basal", "inh"): 20}
    exc = table[table.kind == "exc"]
    inh = table[table.kind == "inh"]
    assert (exc.point_process == "Exp2Syn").all() and (inh.point_process == "Exp2Syn").all()
    assert set(zip(exc.tau1, exc.tau2, exc.e)) == {(0.5, 5.0, 0.0)}
    assert set(zip(inh.tau1, inh.tau2, inh.e)) == {(0.5, 5.0, -80.0)}
    regions = l5pc.segments["region"].values[sites["segment"].values]
    apical = table.region.values == "apical"
    assert all(r.startswith("apical") for r in regions[apical])
    assert all(r == "basal" for r in regions[~apical])
    # the layout is fixed: the same cell gives the same sites
    assert json.loads(table.nrn_params.iloc[0]) == {"e": 0.0, "tau1": 0.5, "tau2": 5.0}


def test_l5pc_placement_is_length_weighted(l5pc):
    seg = l5pc.segments
    sites = l5pc.sites
    apical = np.flatnonzero(np.char.startswith(seg["region"].values.astype(str), "apical"))
    counts = np.bincount(sites["segment"].values[sites["region"].values == "apical"], minlength=seg.sizes["segment"])
    length = seg["length"].values
    # longer apical segments get more sites (correlation, 130 draws)
    assert np.corrcoef(counts[apical], length[apical])[0, 1] > 0.2


def test_point_neuron_sites_are_event_driven_alpha_synapses(point):
    table = point.sites.to_dataframe()
    assert point.n_segments == 1
    assert (table.point_process == "MtlAlphaSyn").all()
    assert (table.kind == "exc").sum() == 8 and (table.kind == "inh").sum() == 3
    exc = table[table.kind == "exc"].iloc[0]
    inh = table[table.kind == "inh"].iloc[0]
    assert (exc.tau1, exc.e) == (2.0, 0.0) and (inh.tau1, inh.e) == (1.0, -90.0)
    seg = point.segments
    assert float(seg["length"][0]) == pytest.approx(25.0) and float(seg["diam"][0]) == pytest.approx(25.0)


def test_point_nmda_has_ampa_nmda_sites():
    cell = mtl.cells.get("point_nmda")
    table = cell.sites.to_dataframe()
    nmda = table[table.point_process == "MtlAmpaNmda"]
    assert len(nmda) == 4
    assert json.loads(nmda.nrn_params.iloc[0])["mg"] == 1.0


@pytest.mark.parametrize("name, n_sites, regions", [
    ("l23pc", 18, {"proximal", "distal", "soma"}),
    ("basket", 3, {"soma"}),
])
def test_hnn_cells_have_hnn_core_synapses(name, n_sites, regions):
    cell = mtl.cells.get(name)
    table = cell.sites.to_dataframe()
    assert len(table) == n_sites
    assert set(table.region) == regions
    assert set(table.receptor) <= {"ampa", "nmda", "gabaa", "gabab"}
    nmda = table[table.receptor == "nmda"].iloc[0]
    assert (nmda.tau1, nmda.tau2, nmda.e) == (1.0, 20.0, 0.0)


def test_from_morphology(tmp_path):
    cell = mtl.cells.from_morphology(DATA / "ball_and_stick.hoc", n_exc=10, n_inh=4, site_seed=1)
    assert cell.n_sites == 14
    assert "soma" in set(cell.segments["region"].values)
    assert (cell.segments["region"].values[cell.sites["segment"].values] != "soma").all()
    drive = mtl.inputs.poisson(cell, 50.0, rate=20.0, weight=0.002, seed=0)
    ds = mtl.simulate(cell, drive)
    assert ds["v"].shape == (100, cell.n_segments)


def test_from_morphology_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.swc"):
        mtl.cells.from_morphology(tmp_path / "nope.swc")
    with pytest.raises(ValueError, match="n_exc=0, n_inh=0"):
        mtl.cells.from_morphology(DATA / "ball_and_stick.hoc", n_exc=0, n_inh=0)
