"""Helpers shared by the tests of mtlneuron.fields (imported by name: tests/fields is on sys.path)."""
import lfpykit
import numpy as np

from mtlneuron import fields

HEAD = fields.FourSphere()


def lfpykit_geometry(seg):
    """lfpykit.CellGeometry of a segment table, built independently of mtlneuron."""
    return lfpykit.CellGeometry(x=np.c_[seg.x0, seg.x1], y=np.c_[seg.y0, seg.y1], z=np.c_[seg.z0, seg.z1],
                                d=seg.diam.values.astype(float))


def rel_err(a, b):
    """Relative RMS error of a against b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


def random_location(rng, rmax=70000.0, zmin=10000.0):
    """A random dipole location (um) in the upper part of a ball of radius rmax."""
    while True:
        loc = rng.uniform(-rmax, rmax, 3)
        if np.linalg.norm(loc) < rmax and loc[2] > zmin:
            return loc


def simulated_eeg(rng, loc, noise, head=HEAD, n_time=40, montage="biosemi64", reference=None):
    """EEG of a damped-oscillation dipole with random orientation, plus white noise (fraction of RMS)."""
    t = np.arange(n_time) * 0.5
    ori = rng.normal(size=3)
    ori /= np.linalg.norm(ori)
    amp = 20.0 * np.exp(-t / 10) * np.sin(2 * np.pi * t / 15)  # nA m
    clean = fields.eeg(fields.dipole_dataset(np.outer(amp, ori), t, units="nA m"), head, montage,
                       dipole_location=loc, reference=reference)
    sd = noise * np.sqrt(np.mean(clean.values ** 2))
    return clean.copy(data=clean.values + sd * rng.normal(size=clean.shape)), amp, ori
