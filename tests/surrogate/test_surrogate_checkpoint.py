"""Checkpoints: round trip, refusals (cell, version, corrupted or foreign files), pretrained lookup,
and the shipped checkpoints' numbers."""
import os

import numpy as np
import pytest
import torch
import xarray as xr

import mtlneuron as mtl
from mtlneuron.surrogate import Surrogate, checkpoint


def test_save_load_roundtrip(tiny, random_drive, tmp_path):
    tiny.set_scalers(site_scale=np.full(tiny.n_sites, 2e-3), v_mean=[-60.0], v_std=[5.0])
    path = tiny.save(tmp_path / "m.pt")
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]  # atomic: no temporary file left behind
    loaded = Surrogate.load(path)
    x = random_drive(tiny.n_sites)
    with torch.no_grad():
        a, _ = tiny.run(x)
        b, _ = loaded.run(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    ckpt = torch.load(path, weights_only=True)
    for key in ("meta", "dt", "scalers", "spike_threshold", "config", "mtlneuron_version", "cell_key"):
        assert key in ckpt
    assert ckpt["meta"]["sites"]["tau1"] == tiny.meta["sites"]["tau1"]
    assert ckpt["meta"]["segment_names"] == ["soma[0]"]
    assert ckpt["scalers"]["v_mean"] == [-60.0]
    assert ckpt["mtlneuron_version"] == mtl.__version__ and ckpt["cell_key"] == tiny.cell_key


@pytest.mark.neuron
def test_load_checks_the_cell(tiny, tmp_path):
    cell = mtl.cells.get("point")
    model = Surrogate(cell, input_channels=4, filter_channels=3, conv_channels=(), hidden_size=8, num_layers=1)
    assert model.meta["soma_index"] == cell.soma_index
    path = model.save(tmp_path / "m.pt")
    assert Surrogate.load(path, cell).cell_key == cell.key
    with pytest.raises(ValueError, match="trained for cell 'point'"):
        Surrogate.load(path, mtl.cells.get("point_nmda"))


def test_load_refuses_wrong_version(tiny, tmp_path):
    ckpt = tiny.checkpoint()
    ckpt["mtlneuron_version"] = "99.0.0"
    path = tmp_path / "old.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="mtlneuron 99.0.0"):
        Surrogate.load(path)
    assert Surrogate.load(path, check_version=False).n_sites == tiny.n_sites


def test_load_refuses_corrupted_and_foreign_files(tiny, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable mtlneuron checkpoint"):
        Surrogate.load(junk)
    good = tiny.save(tmp_path / "good.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        Surrogate.load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not an mtlneuron Surrogate checkpoint"):
        Surrogate.load(foreign)
    torch.save(torch.zeros(3), foreign)
    with pytest.raises(ValueError, match="not an mtlneuron Surrogate checkpoint"):
        Surrogate.load(foreign)
    with pytest.raises(FileNotFoundError):
        Surrogate.load(tmp_path / "missing.pt")
    old = tiny.checkpoint()
    old["format_version"] = 1
    torch.save(old, tmp_path / "v1.pt")
    with pytest.raises(ValueError, match="format version 1 .*retrain"):
        Surrogate.load(tmp_path / "v1.pt")
    incomplete = tiny.checkpoint()
    del incomplete["scalers"]
    torch.save(incomplete, tmp_path / "incomplete.pt")
    with pytest.raises(ValueError, match="missing \\['scalers'\\]"):
        Surrogate.load(tmp_path / "incomplete.pt")


def test_pretrained(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "data_dirs", lambda: [tmp_path / "pkg", tmp_path])
    with pytest.raises(FileNotFoundError, match="available: none"):
        Surrogate.pretrained("l5pc")
    tiny.save(tmp_path / "point.pt")
    with pytest.raises(FileNotFoundError, match="available: point"):
        Surrogate.pretrained("l5pc")
    assert Surrogate.pretrained("point").cell_name == "point"
    with pytest.raises(ValueError, match="plain name"):
        Surrogate.pretrained("../point")


# Recorded with the code before the surrogate/ and training/ split (mtlneuron.model at d0bcfc7):
# Surrogate.pretrained(name).run(x) on x = (rand(1, 200, n_sites) < 0.05) * 3 * site_scale from
# torch.Generator().manual_seed(1234); soma v, spike_prob, all v, dipole, ionic currents, and the
# spike times predict() finds on the same input.
SHIPPED = {
    "point": dict(soma_v_sum=-12335.335468292236,
                  soma_v_first3=[-62.85539627075195, -57.6410026550293, -53.2644157409668],
                  spike_prob_sum=8.345182026954717, spike_prob_max=0.5163543224334717, v_sum=-12335.335468292236,
                  dipole_sum=0.0, i_ion_sum=52.027756839990616, spike_times=[13.75, 24.25, 43.75, 70.25, 80.25]),
    "point_nmda": dict(soma_v_sum=-11197.38977432251,
                       soma_v_first3=[-62.19093704223633, -55.19213104248047, -48.018428802490234],
                       spike_prob_sum=4.917098632256966, spike_prob_max=0.3847150504589081,
                       v_sum=-11197.38977432251, dipole_sum=0.0, i_ion_sum=20.97329407930374,
                       spike_times=[66.75, 94.75]),
    # l5pc re-recorded when its weights changed (issue 10 fine-tune with network cell trials, session 6), same code
    "l5pc": dict(soma_v_sum=-9867.231307983398,
                 soma_v_first3=[-69.48717498779297, -68.34480285644531, -67.07850646972656],
                 spike_prob_sum=9.727003383159172, spike_prob_max=0.2639089822769165, v_sum=-551070.6014022827,
                 dipole_sum=-20163.125121951103, i_ion_sum=None,
                 spike_times=[3.25, 11.75, 19.75, 27.75, 35.75, 44.25, 53.25, 60.75, 69.25, 77.75, 85.75, 93.25,
                              99.75]),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoints_give_the_recorded_numbers(name):
    ref = SHIPPED[name]
    model = Surrogate.pretrained(name)
    g = torch.Generator().manual_seed(1234)
    x = (torch.rand(1, 200, model.n_sites, generator=g) < 0.05).float() * 3.0 * model.site_scale
    with torch.no_grad():
        out, _ = model.run(x)
    soma_v = out["v"][0, :, model.soma_index].double()
    approx = lambda value: pytest.approx(value, rel=1e-5, abs=1e-5)  # noqa: E731
    assert float(soma_v.sum()) == approx(ref["soma_v_sum"])
    assert [float(v) for v in soma_v[:3]] == approx(ref["soma_v_first3"])
    assert float(out["spike_prob"].double().sum()) == approx(ref["spike_prob_sum"])
    assert float(out["spike_prob"].max()) == approx(ref["spike_prob_max"])
    assert float(out["v"].double().sum()) == approx(ref["v_sum"])
    assert float(out["dipole"].double().sum()) == approx(ref["dipole_sum"])
    if ref["i_ion_sum"] is None:
        assert "i_ion" not in out
    else:
        assert float(out["i_ion"].double().sum()) == approx(ref["i_ion_sum"])
    ds = xr.Dataset({"inputs": (("time", "site"), x[0].numpy())}, attrs={"dt": model.dt, "cell_key": model.cell_key})
    pred = model.predict(ds)
    assert pred["spike_times"].values.tolist() == ref["spike_times"]
    assert pred.attrs["soma_index"] == model.soma_index
