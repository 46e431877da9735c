"""Network-shaped training-drive families (mtlneuron.drive_families) and their place in datasets."""
import json

import numpy as np
import pytest

import mtlneuron as mtl
from mtlneuron import datasets
from mtlneuron import drive_families as fam
from mtlneuron.conventions import tm_efficacies

DURATION = 2000.0


def _events(d):
    return list(zip(d["time"].values.tolist(), d["site"].values.tolist(), d["weight"].values.tolist()))


def _extra(cell, d, seed):
    """Events of a family drive that are not in the default Poisson background of the same seed."""
    bg = set(_events(mtl.inputs.poisson(cell, d.attrs["duration"], seed=seed)))
    ev = _events(d)
    assert bg <= set(ev)  # the background is kept unchanged
    extra = [e for e in ev if e not in bg]
    return np.array(extra).reshape(-1, 3)


@pytest.mark.parametrize("family", sorted(fam.FAMILIES))
def test_family_is_valid_bounded_and_seeded(l5pc, family):
    a = fam.drive(l5pc, family, DURATION, seed=11)
    mtl.inputs.validate(a, l5pc)  # times in [0, duration), weights finite >= 0, sites in range
    t, w = a["time"].values, a["weight"].values
    assert np.isfinite(t).all() and (t >= 0).all() and (t < DURATION).all() and np.all(np.diff(t) >= 0)
    assert np.isfinite(w).all() and (w >= 0).all() and w.max() < 0.05
    assert a.attrs["family"] == family and json.loads(a.attrs["family_params"])
    b = fam.drive(l5pc, family, DURATION, seed=11)
    for k in ("time", "site", "weight"):
        np.testing.assert_array_equal(a[k].values, b[k].values)
    c = fam.drive(l5pc, family, DURATION, seed=12)
    assert c.sizes["event"] != a.sizes["event"] or not np.array_equal(c["time"].values, a["time"].values)


def test_unknown_family(l5pc):
    with pytest.raises(ValueError, match="unknown drive family"):
        fam.drive(l5pc, "bursty", 100.0, 0)


def test_scaled_weights_follow_the_drawn_factors(l5pc):
    d = fam.scaled(l5pc, DURATION, 3)
    p = json.loads(d.attrs["family_params"])
    assert fam.SCALED_EXC[0] <= p["exc_scale"] <= fam.SCALED_EXC[1]
    assert fam.SCALED_INH[0] <= p["inh_scale"] <= fam.SCALED_INH[1]
    kinds = l5pc.sites["kind"].values.astype(str)[d["site"].values]
    defaults = l5pc.drive_defaults
    for kind, scale, (lo, hi) in [("exc", p["exc_scale"], defaults.weight_exc), ("inh", p["inh_scale"], defaults.weight_inh)]:
        w = d["weight"].values[kinds == kind]
        assert w.size and (w >= lo * scale - 1e-12).all() and (w <= hi * scale + 1e-12).all()


def test_volleys_hit_random_subsets_once(l5pc):
    d = fam.volley(l5pc, DURATION, 5)
    p = json.loads(d.attrs["family_params"])
    extra = _extra(l5pc, d, 5)
    n_sites = l5pc.sites.sizes["site"]
    expected = sum(max(1, int(round(f * n_sites))) for f in p["fractions"])
    assert p["n_volleys"] == len(p["fractions"]) >= 1
    assert abs(extra.shape[0] - expected) <= 2  # jittered events may fall outside [0, duration)
    assert all(fam.VOLLEY_FRACTION[0] <= f <= fam.VOLLEY_FRACTION[1] for f in p["fractions"])


def test_proximal_strong_is_the_rett_stimulus_at_most(l5pc):
    from mtlneuron.network import rett_model

    assert fam.PROXIMAL_TOTAL_US[1] == rett_model.STIM_TOTAL_US
    prox = mtl.cells.proximal_sites(l5pc)
    np.testing.assert_array_equal(prox, rett_model.proximal_sites(l5pc))  # one rule for both
    d = fam.proximal_strong(l5pc, DURATION, 9)
    p = json.loads(d.attrs["family_params"])
    extra = _extra(l5pc, d, 9)
    assert set(extra[:, 1].astype(int)) == set(prox.tolist())
    assert extra.shape[0] == prox.size * len(p["onsets_ms"]) and len(p["onsets_ms"]) >= 1
    for onset, total in zip(p["onsets_ms"], p["total_us"]):
        stim = extra[(extra[:, 0] >= onset - 1e-3) & (extra[:, 0] < onset + fam.PROXIMAL_WIDTH_MS)]
        assert stim.shape[0] >= prox.size
        assert fam.PROXIMAL_TOTAL_US[0] <= total <= fam.PROXIMAL_TOTAL_US[1]
    assert extra[:, 2].sum() == pytest.approx(sum(p["total_us"]))


def test_recurrent_contacts_carry_tm_depression(l5pc):
    from mtlneuron.network import rett_model, tm

    defaults = rett_model.RettParameters()
    assert fam.RECURRENT_TM == {"U": defaults.U, "D": defaults.D, "F": defaults.F}
    assert fam.RECURRENT_CONTACT_US == rett_model.CONTACT_WEIGHT_US
    assert tm.efficacies is tm_efficacies  # the network's recursion is the shared one
    d = fam.recurrent(l5pc, DURATION, 4)
    p = json.loads(d.attrs["family_params"])
    prox = set(mtl.cells.proximal_sites(l5pc).tolist())
    extra = _extra(l5pc, d, 4)
    assert fam.RECURRENT_PARTNERS[0] <= len(p["partners"]) <= fam.RECURRENT_PARTNERS[1]
    assert set(extra[:, 1].astype(int)) <= prox
    assert extra[:, 2].max() <= fam.RECURRENT_WEIGHT_SCALE[1] * fam.RECURRENT_CONTACT_US + 1e-15
    # each partner's first spike has efficacy 1: its contact weight appears on all 5 of its contacts
    for partner in p["partners"]:
        if partner["n_spikes"]:
            w0 = partner["weight_scale"] * fam.RECURRENT_CONTACT_US
            assert len(set(partner["sites"])) == fam.RECURRENT_CONTACTS
            for site in partner["sites"]:
                assert np.isclose(extra[extra[:, 1] == site, 2], w0, rtol=1e-12, atol=0).any()
    # within a burst of 10-ms intervals the TM efficacy falls (depression beats facilitation)
    eff = tm_efficacies(fam.RECURRENT_ISI_MS * np.arange(4), **fam.RECURRENT_TM)
    assert eff[0] == 1.0 and np.all(np.diff(eff) < 0) and eff[-1] < 0.7
    n_extra = sum(q["n_spikes"] for q in p["partners"]) * fam.RECURRENT_CONTACTS
    assert extra.shape[0] <= n_extra and extra.shape[0] >= n_extra - fam.RECURRENT_CONTACTS  # last spike + 1 ms


def test_curriculum_and_trial_drive_know_the_families(l5pc):
    mix = {"quiet": 1, "scaled": 1, "volley": 1, "proximal_strong": 1, "recurrent": 1}
    plan = datasets.curriculum(10, seed=0, mix=mix)
    assert [s for s, _ in plan] == ["quiet"] * 2 + ["scaled"] * 2 + ["volley"] * 2 + ["proximal_strong"] * 2 \
        + ["recurrent"] * 2
    assert all(scale == 1.0 for s, scale in plan if s in datasets.FAMILIES)
    # the existing stages' draws do not change when families join the mix
    assert plan[:2] == datasets.curriculum(2, seed=0, mix={"quiet": 1})
    d = datasets.trial_drive(l5pc, 123, 1.0, 200.0, "volley")
    np.testing.assert_array_equal(d["time"].values, fam.volley(l5pc, 200.0, 123)["time"].values)
    with pytest.raises(ValueError, match="unknown curriculum stages"):
        datasets.curriculum(4, 0, {"nope": 1})


def test_generate_with_families(point, tmp_path):
    mix = {"scaled": 1, "volley": 1, "proximal_strong": 1, "recurrent": 1}
    path = datasets.generate(point, 4, 100.0, tmp_path / "f.nc", seed=3, n_workers=1, mix=mix, progress=False)
    ds = datasets.open(path).load()
    assert list(ds["stage"].values) == ["scaled", "volley", "proximal_strong", "recurrent"]
    i = 3
    drive = datasets.trial_drive(point, int(ds["trial_seed"][i]), 1.0, 100.0, "recurrent")
    np.testing.assert_allclose(ds["inputs"].values[i], mtl.inputs.bin(drive, 0.5).values, atol=1e-7)
    direct = mtl.simulate(point, drive)
    np.testing.assert_allclose(ds["v"].values[i], direct["v"].values, atol=1e-4)
