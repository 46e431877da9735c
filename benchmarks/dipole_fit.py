"""Dipole fitting and EEG/MEG forward models of ``mtlneuron.fields``, alone and against MNE-Python.

Random dipoles (fixed seed): locations uniform in the upper half of a 70-mm
ball (z >= 10 mm) inside the default four-sphere head (brain radius 79 mm),
random orientations, a 25-ms damped 67-Hz oscillation peaking near 20 nA m
(50 samples at 0.5 ms). Electrodes: MNE's BioSemi-64 and spherical 10-20
positions on the 90-mm scalp, passed as arrays so that older versions of
mtlneuron fit the very same data. Noise: white Gaussian per channel and
sample, SD = the stated fraction of the RMS of the noise-free data.

Sections (``--sections``):

- ``fit``: fits by ``fields.fit_dipole`` (fixed location unless "moving";
  location error at the peak sample for moving dipoles). Run it with an older
  checkout on ``PYTHONPATH`` to time the old fit on the same data.
- ``mne``: our forward vs MNE's sphere model (``make_sphere_model`` with the
  same radii and conductivities, ``make_forward_dipole``), and fits of
  MNE-simulated, average-referenced EEG by ours and by ``mne.fit_dipole``.
- ``leadfield``: lead fields of 1,000 locations in one call.

Run::

    python benchmarks/dipole_fit.py                      # all sections, 20 dipoles, seed 0
    python benchmarks/dipole_fit.py --sections fit --n 50 --seed 1
    git worktree add /tmp/old d0bcfc7 && PYTHONPATH=/tmp/old python benchmarks/dipole_fit.py --sections fit
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mtlneuron import fields

CONDITIONS = [  # (label, kind, channels, noise fraction, samples fitted, variant)
    ("EEG biosemi64, noise-free", "eeg", "biosemi64", 0.0, "all", ""),
    ("EEG biosemi64, 5% noise", "eeg", "biosemi64", 0.05, "all", ""),
    ("EEG biosemi64, 5% noise, peak sample only", "eeg", "biosemi64", 0.05, "peak", ""),
    ("EEG 10-20 (19 ch), 5% noise", "eeg", "10-20", 0.05, "all", ""),
    ("MEG 102 radial magnetometers, 5% noise", "meg", 102, 0.05, "all", ""),
    ("EEG biosemi64, 5% noise, average reference, no reference attr", "eeg", "biosemi64", 0.05, "all", "avgref"),
    ("EEG biosemi64, 5% noise, moving dipole (error at the peak)", "eeg", "biosemi64", 0.05, "all", "moving"),
]
TEN_TWENTY = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4",
              "P8", "O1", "O2")


def electrodes(name: str, radius: float = 90000.0) -> np.ndarray:
    """MNE's montage positions (on a 95-mm sphere at the origin) scaled onto the scalp (um), as an array."""
    import mne

    mont = mne.channels.make_standard_montage("biosemi64" if name == "biosemi64" else "spherical_1020")
    pos = mont.get_positions()["ch_pos"]
    names = list(pos) if name == "biosemi64" else list(TEN_TWENTY)
    xyz = np.array([pos[n] for n in names])
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True) * radius * (1 - 1e-12)


def random_dipoles(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (location um, unit orientation) pairs."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        loc = rng.uniform(-70000.0, 70000.0, 3)
        if np.linalg.norm(loc) <= 70000.0 and loc[2] >= 10000.0:
            ori = rng.normal(size=3)
            out.append((loc, ori / np.linalg.norm(ori)))
    return out


def time_course() -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(50) * 0.5  # ms
    return t, 20.0 * np.exp(-t / 10.0) * np.sin(2 * np.pi * t / 15.0)  # nA m


def simulate(kind, channels, loc, ori, noise, samples, variant, rng):
    t, amp = time_course()
    p = fields.dipole_dataset(np.outer(amp, ori), t, units="nA m")
    if kind == "eeg":
        clean = fields.eeg(p, electrodes=electrodes(channels), dipole_location=loc)
    else:
        clean = fields.meg(p, fields.helmet(channels), dipole_location=loc)
    if samples == "peak":  # one time point: noise is not averaged over the time course
        clean = clean.isel(time=[int(np.argmax(np.sum(clean.values ** 2, axis=1)))])
    sd = noise * np.sqrt(np.mean(clean.values ** 2))
    noisy = clean.copy(data=clean.values + sd * rng.normal(size=clean.shape))
    if variant == "avgref":  # average-referenced by the user, who did not say so
        noisy = noisy.copy(data=noisy.values - noisy.values.mean(axis=-1, keepdims=True))
        noisy.attrs.pop("reference", None)
    return noisy


def run_fits(n: int, seed: int, n_starts: int) -> list[dict]:
    dipoles = random_dipoles(n, seed)
    rows = []
    for label, kind, channels, noise, samples, variant in CONDITIONS:
        rng = np.random.default_rng(seed + 1)
        errors, gofs, seconds, n_samples = [], [], [], 1
        for loc, ori in dipoles:
            data = simulate(kind, channels, loc, ori, noise, samples, variant, rng)
            n_samples = data.sizes["time"]
            kwargs = {"mode": "moving"} if variant == "moving" else {}
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = fields.fit_dipole(data, n_starts=n_starts, **kwargs)
            except TypeError:  # an older mtlneuron without mode=
                break
            seconds.append(time.perf_counter() - start)
            found = fit["location"].values
            if found.ndim == 2:
                found = found[int(np.argmax(np.sum(data.values ** 2, axis=1)))]
            scale = 1e-3 if fit["location"].attrs.get("units") == "um" else 1.0  # older versions: mm
            errors.append(np.linalg.norm(found * scale - loc * 1e-3))  # mm
            gofs.append(fit["gof"].item())
        if errors:
            rows.append({"condition": label, "n": len(errors), "median_mm": np.median(errors),
                         "worst_mm": np.max(errors), "median_gof": np.median(gofs), "worst_gof": np.min(gofs),
                         "seconds": np.median(seconds), "per_sample_ms": 1e3 * np.median(seconds) / n_samples})
    return rows


def fit_table(rows: list[dict]) -> str:
    lines = ["| condition | dipoles | median location error (mm) | worst location error (mm) | median GOF (%) | "
             "worst GOF (%) | median fit time (s) | per sample (ms) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['condition']} | {r['n']} | {r['median_mm']:.3g} | {r['worst_mm']:.3g} | "
                     f"{r['median_gof']:.2f} | {r['worst_gof']:.2f} | {r['seconds']:.3f} | {r['per_sample_ms']:.2f} |")
    return "\n".join(lines)


def mne_sphere(head):
    import mne

    return mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=head.scalp_radius * 1e-6,
                                 relative_radii=tuple(r / head.scalp_radius for r in head.radii),
                                 sigmas=head.sigmas, verbose=False)


def mne_forward(locs: np.ndarray, info, sphere) -> np.ndarray:
    """MNE's lead field (L, n_channel, 3) in V or T per A m for dipoles along x, y and z at ``locs`` (um)."""
    import mne

    pos = np.repeat(locs * 1e-6, 3, axis=0)
    dip = mne.Dipole(np.arange(len(pos)) * 1e-3, pos, np.ones(len(pos)), np.tile(np.eye(3), (len(locs), 1)),
                     np.ones(len(pos)))
    fwd, _ = mne.make_forward_dipole(dip, sphere, info, verbose=False)
    return fwd["sol"]["data"].reshape(-1, len(locs), 3).transpose(1, 0, 2)


def run_mne(n: int, seed: int, n_starts: int) -> str:
    import mne

    head = fields.FourSphere()
    sphere = mne_sphere(head)
    dipoles = random_dipoles(n, seed)
    locs = np.array([loc for loc, _ in dipoles])
    zero = fields.dipole_dataset(np.zeros((1, 3)))
    eeg0 = fields.eeg(zero, electrodes=electrodes("biosemi64"), dipole_location=locs[0])
    meg0 = fields.meg(zero, fields.helmet(102), dipole_location=locs[0])
    info_eeg, info_meg = fields.to_mne(eeg0).info, fields.to_mne(meg0).info
    out = ["| forward model | dipoles | median relative error | worst relative error |", "|---|---|---|---|"]
    g_mne = mne_forward(locs, info_eeg, sphere) * 1e-9  # V / (A m) -> uV / (nA um)
    g = fields.EEGModel(head, eeg0).get_transformation_matrix(locs)
    avg = (lambda a: a - a.mean(axis=1, keepdims=True))
    rel = np.linalg.norm(avg(g) - avg(g_mne), axis=(1, 2)) / np.linalg.norm(avg(g_mne), axis=(1, 2))
    out.append(f"| EEG biosemi64, average reference: ours vs MNE (Berg-Scherg) | {n} | {np.median(rel):.2e} | "
               f"{rel.max():.2e} |")
    b_mne = mne_forward(locs, info_meg, sphere)  # T / (A m) = fT / (nA um)
    b = fields.MEGModel(info_meg, head).get_transformation_matrix(locs)
    rel = np.linalg.norm(b - b_mne, axis=(1, 2)) / np.linalg.norm(b_mne, axis=(1, 2))
    out.append(f"| MEG 102 point magnetometers: ours vs MNE (Sarvas) | {n} | {np.median(rel):.2e} | {rel.max():.2e} |")
    # fits of MNE-simulated, average-referenced EEG (5% noise)
    rng = np.random.default_rng(seed + 2)
    t, amp = time_course()
    peak = int(np.argmax(np.abs(amp)))
    res = {k: ([], [], []) for k in ("ours, fixed location, 50 samples", "ours, moving, peak sample",
                                     "MNE fit_dipole, peak sample", "ours, moving, 50 samples",
                                     "MNE fit_dipole, 50 samples")}
    for (loc, ori), gl in zip(dipoles, g_mne):
        clean = (gl @ ori)[:, None] * amp[None, :] * 1e6  # uV (reference-free)
        sd = 0.05 * np.sqrt(np.mean((clean - clean.mean(0)) ** 2))
        evoked = mne.EvokedArray((clean + sd * rng.normal(size=clean.shape)) * 1e-6, info_eeg, tmin=0.0,
                                 verbose=False)
        evoked.set_eeg_reference("average", projection=True, verbose=False).apply_proj(verbose=False)
        cov = mne.make_ad_hoc_cov(evoked.info, std=dict(eeg=sd * 1e-6), verbose=False)
        one = evoked.copy().crop(evoked.times[peak], evoked.times[peak])
        for label, call in (("ours, fixed location, 50 samples", lambda: fields.fit_dipole(evoked, n_starts=n_starts)),
                            ("ours, moving, peak sample", lambda: fields.fit_dipole(one, mode="moving")),
                            ("MNE fit_dipole, peak sample", lambda: mne.fit_dipole(one, cov, sphere, verbose=False)[0]),
                            ("ours, moving, 50 samples", lambda: fields.fit_dipole(evoked, mode="moving")),
                            ("MNE fit_dipole, 50 samples", lambda: mne.fit_dipole(evoked, cov, sphere, verbose=False)[0])):
            start = time.perf_counter()
            fit = call()
            seconds = time.perf_counter() - start
            if label.startswith("MNE"):
                pos, gof = fit.pos[peak if len(fit.times) > 1 else 0] * 1e6, fit.gof[peak if len(fit.times) > 1 else 0]
            else:
                i = peak if fit.sizes["time"] > 1 else 0
                found = fit["location"].values
                pos = found[i] if found.ndim == 2 else found
                gof = fit["gof_time"].values[i]
            res[label][0].append(np.linalg.norm(pos - loc) * 1e-3)
            res[label][1].append(gof)
            res[label][2].append(seconds)
    out += ["", "| fit of MNE-simulated EEG (biosemi64, average reference, 5% noise) | dipoles | median location "
            "error at the peak (mm) | worst (mm) | median GOF at the peak (%) | median time per fit (s) |",
            "|---|---|---|---|---|---|"]
    for label, (err, gof, sec) in res.items():
        out.append(f"| {label} | {len(err)} | {np.median(err):.3g} | {np.max(err):.3g} | {np.median(gof):.2f} | "
                   f"{np.median(sec):.3f} |")
    return "\n".join(out)


def run_leadfield(seed: int) -> str:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(1000, 3))
    locs = u / np.linalg.norm(u, axis=1, keepdims=True) * 78000.0 * rng.uniform(0.05, 1.0, (1000, 1)) ** (1 / 3)
    out = ["| lead field, 1,000 random locations in the brain, one call | shape | seconds |", "|---|---|---|"]
    for label, call in (("EEG biosemi64 (`fields.lead_field`)", lambda: fields.lead_field("biosemi64", locs).shape),
                        ("MEG 102 radial magnetometers (`MEGModel.get_transformation_matrix`)",
                         lambda: fields.MEGModel(fields.helmet(102)).get_transformation_matrix(locs).shape)):
        call()  # montage files, series tables
        start = time.perf_counter()
        shape = call()
        out.append(f"| {label} | {shape} | {time.perf_counter() - start:.3f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="number of random dipoles (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-starts", type=int, default=5, help="multi-start count of fit_dipole (default 5)")
    parser.add_argument("--sections", default="fit,mne,leadfield", help="comma-separated: fit, mne, leadfield")
    args = parser.parse_args()
    sections = args.sections.split(",")
    if "fit" in sections:
        print(fit_table(run_fits(args.n, args.seed, args.n_starts)), end="\n\n")
    if "mne" in sections:
        print(run_mne(args.n, args.seed, args.n_starts), end="\n\n")
    if "leadfield" in sections:
        print(run_leadfield(args.seed))


if __name__ == "__main__":
    main()
