"""Training-drive families shaped like what networks feed a cell (issue 10, deliverable 1).

The Poisson curriculum of :mod:`mtlneuron.datasets` varies only the excitatory
rate. In a network a cell also sees scaled synaptic strengths, synchronous
volleys, brief strong stimuli and recurrent input with short-term depression.
Each family here is a function ``family(cell, duration, seed) -> drive`` (an
``mtl.inputs`` events Dataset); every random choice comes from ``seed``, so a
dataset trial is rebuilt exactly from its seed (``datasets.trial_drive``), and
the parameters drawn are stored in the drive's attrs ``family`` and
``family_params`` (JSON). ``mtl.datasets.generate(..., mix={...})`` takes the
family names beside the curriculum stages.

All families keep the cell's default Poisson background (``mtl.inputs.poisson``
with ``seed``: the cell's rate and weight ranges and slow rate modulation) and
add or change one thing, drawn per trial from a second stream
``numpy.random.default_rng([seed, FAMILY_STREAM])``:

``scaled``
    Every excitatory weight range scaled by ``a ~ U(SCALED_EXC)`` (0.5-3) and
    every inhibitory one by ``b ~ U(SCALED_INH)`` (0.5-2): the background
    strengths a network sweep explores (``rett(exc_scale=, inh_scale=)``) and beyond.
``volley``
    Synchronous volleys at Poisson times (rate ``~ U(VOLLEY_RATE_HZ)``, 1-5 Hz):
    each volley gives one event to a random subset of all sites (fraction
    ``~ U(VOLLEY_FRACTION)``, 5-30 %, drawn per volley), jittered around the
    volley time by a Gaussian of SD ``~ U(VOLLEY_JITTER_MS)`` (0-1 ms, per
    trial); each event's weight is drawn from its site kind's default range.
``proximal_strong``
    Brief strong proximal stimuli like the Rett microcircuit's
    (``mtl.network.rett``): at Poisson times (rate ``~ U(PROXIMAL_RATE_HZ)``, 1-4 Hz,
    at least one per trial) every proximal excitatory site
    (:func:`mtlneuron.cells.proximal_sites`) gets one event inside 1 ms; the
    stimulus's total conductance ``~ U(PROXIMAL_TOTAL_US)`` (5-50 nS, the top
    being the Rett stimulus), split evenly over the sites.
``recurrent``
    Input from ``k ~ U{RECURRENT_PARTNERS}`` (1-20) presynaptic L5 pyramidal
    cells, each with 5 contacts on distinct proximal excitatory sites (the Rett
    connection rule). Presynaptic trains are bursts at Poisson onsets (rate
    ``~ U(RECURRENT_BURST_HZ)``, 0.5-5 Hz per partner) of 1-4 spikes
    ``RECURRENT_ISI_MS`` (10 ms) apart, as this cell fires; each contact's event
    weight is the partner's contact weight (``~ U(RECURRENT_WEIGHT_SCALE)`` x
    ``RECURRENT_CONTACT_US``, 0.5-3 x 0.25 nS) times the Tsodyks-Markram
    efficacy of that spike (:func:`mtlneuron.conventions.tm_efficacies`,
    ``U = 0.38, D = 365.6 ms, F = 25.71 ms`` as in the Rett microcircuit),
    delivered ``RECURRENT_DELAY_MS`` (1 ms) after the presynaptic spike.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy as np
import xarray as xr

from . import inputs as _inputs
from .cells import RETT_CONTACT_WEIGHT_US, RETT_STIM_TOTAL_US, proximal_sites
from .conventions import check_duration, tm_efficacies

__all__ = ["FAMILIES", "drive", "scaled", "volley", "proximal_strong", "recurrent", "RECURRENT_TM"]

FAMILY_STREAM = 1001  # second rng stream of every family: default_rng([seed, FAMILY_STREAM])
SCALED_EXC = (0.5, 3.0)  # factor on the excitatory weight range
SCALED_INH = (0.5, 2.0)  # factor on the inhibitory weight range
VOLLEY_RATE_HZ = (1.0, 5.0)
VOLLEY_FRACTION = (0.05, 0.30)  # of all sites, per volley
VOLLEY_JITTER_MS = (0.0, 1.0)  # Gaussian SD of event times around the volley time
PROXIMAL_RATE_HZ = (1.0, 4.0)
PROXIMAL_WIDTH_MS = 1.0  # every proximal site gets its event inside this window
PROXIMAL_TOTAL_US = (0.005, RETT_STIM_TOTAL_US)  # uS per stimulus, summed over the proximal sites; top = Rett's
RECURRENT_PARTNERS = (1, 20)  # presynaptic cells, inclusive
RECURRENT_CONTACTS = 5  # contacts per connection (Rett microcircuit)
RECURRENT_BURST_HZ = (0.5, 5.0)  # burst onsets per partner
RECURRENT_BURST_SPIKES = (1, 4)  # spikes per burst, inclusive
RECURRENT_ISI_MS = 10.0  # within a burst (the l5pc fires ~10-ms doublets and triplets)
RECURRENT_CONTACT_US = RETT_CONTACT_WEIGHT_US  # uS per contact at rest (~1 mV unitary EPSP)
RECURRENT_WEIGHT_SCALE = (0.5, 3.0)
RECURRENT_DELAY_MS = 1.0
RECURRENT_TM = {"U": 0.38, "D": 365.6, "F": 25.71}  # Tsodyks-Markram parameters (Rett microcircuit)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), FAMILY_STREAM])


def _poisson_times(rng: np.random.Generator, rate_hz: float, duration: float, at_least_one: bool = False,
                   end_margin: float = 0.0) -> np.ndarray:
    span = max(duration - end_margin, 0.0)
    n = rng.poisson(rate_hz * span / 1000.0)
    if at_least_one:
        n = max(int(n), 1)
    return np.sort(rng.uniform(0.0, span, n)) if span > 0 else np.zeros(0)


def _with_extra(cell, background: xr.Dataset, time, site, weight, family: str, params: dict) -> xr.Dataset:
    """Background plus extra events, with the family's attrs; events past the end are dropped."""
    duration = float(background.attrs["duration"])
    time, site, weight = (np.asarray(a) for a in (time, site, weight))
    keep = (time >= 0) & (time < duration)
    out = _inputs.from_events(
        cell, np.concatenate([background["time"].values, time[keep].astype(float)]),
        np.concatenate([background["site"].values, site[keep].astype(np.int64)]),
        np.concatenate([background["weight"].values, weight[keep].astype(float)]), duration,
        kind=family, family=family, family_params=json.dumps(params), seed=int(background.attrs["seed"]))
    return out


def scaled(cell, duration: float, seed: int) -> xr.Dataset:
    """Default Poisson drive with excitatory and inhibitory weights scaled by per-trial factors."""
    duration = check_duration(duration)
    rng = _rng(seed)
    a, b = float(rng.uniform(*SCALED_EXC)), float(rng.uniform(*SCALED_INH))
    d = cell.drive_defaults
    weight = {"exc": (d.weight_exc[0] * a, d.weight_exc[1] * a), "inh": (d.weight_inh[0] * b, d.weight_inh[1] * b)}
    bg = _inputs.poisson(cell, duration, weight=weight, seed=seed)
    return _with_extra(cell, bg, [], [], [], "scaled", {"exc_scale": a, "inh_scale": b})


def volley(cell, duration: float, seed: int) -> xr.Dataset:
    """Default Poisson background plus synchronous volleys on random site subsets."""
    duration = check_duration(duration)
    rng = _rng(seed)
    rate, jitter = float(rng.uniform(*VOLLEY_RATE_HZ)), float(rng.uniform(*VOLLEY_JITTER_MS))
    onsets = _poisson_times(rng, rate, duration)
    kinds = cell.sites["kind"].values.astype(str)
    d = cell.drive_defaults
    lo = np.where(kinds == "exc", d.weight_exc[0], d.weight_inh[0])
    hi = np.where(kinds == "exc", d.weight_exc[1], d.weight_inh[1])
    times, sites, fractions = [], [], []
    for t0 in onsets:
        frac = float(rng.uniform(*VOLLEY_FRACTION))
        chosen = rng.choice(kinds.size, size=max(1, int(round(frac * kinds.size))), replace=False)
        times.append(t0 + rng.normal(0.0, jitter, chosen.size) if jitter > 0 else np.full(chosen.size, t0))
        sites.append(chosen)
        fractions.append(frac)
    time = np.concatenate(times) if times else np.zeros(0)
    site = np.concatenate(sites) if sites else np.zeros(0, dtype=np.int64)
    weight = rng.uniform(lo[site], hi[site]) if site.size else np.zeros(0)
    bg = _inputs.poisson(cell, duration, seed=seed)
    return _with_extra(cell, bg, time, site, weight, "volley",
                       {"rate_hz": rate, "jitter_ms": jitter, "n_volleys": int(onsets.size),
                        "fractions": [round(f, 4) for f in fractions]})


def proximal_strong(cell, duration: float, seed: int) -> xr.Dataset:
    """Default Poisson background plus brief strong stimuli on all proximal excitatory sites."""
    duration = check_duration(duration)
    rng = _rng(seed)
    prox = proximal_sites(cell)
    if prox.size == 0:
        raise ValueError(f"cell {cell.name!r} has no proximal excitatory sites for the proximal_strong family")
    rate = float(rng.uniform(*PROXIMAL_RATE_HZ))
    onsets = _poisson_times(rng, rate, duration, at_least_one=True, end_margin=PROXIMAL_WIDTH_MS)
    totals = rng.uniform(*PROXIMAL_TOTAL_US, size=onsets.size)
    time = (onsets[:, None] + rng.uniform(0.0, PROXIMAL_WIDTH_MS, (onsets.size, prox.size))).ravel()
    site = np.tile(prox, onsets.size)
    weight = np.repeat(totals / prox.size, prox.size)
    bg = _inputs.poisson(cell, duration, seed=seed)
    return _with_extra(cell, bg, time, site, weight, "proximal_strong",
                       {"rate_hz": rate, "onsets_ms": [round(float(t), 3) for t in onsets],
                        "total_us": [float(x) for x in totals], "n_sites": int(prox.size)})


def _burst_train(rng: np.random.Generator, rate_hz: float, duration: float) -> np.ndarray:
    onsets = _poisson_times(rng, rate_hz, duration)
    n = rng.integers(RECURRENT_BURST_SPIKES[0], RECURRENT_BURST_SPIKES[1] + 1, onsets.size)
    spikes = np.concatenate([t0 + RECURRENT_ISI_MS * np.arange(k) for t0, k in zip(onsets, n)]) \
        if onsets.size else np.zeros(0)
    spikes = np.unique(spikes)  # overlapping bursts merge into one train
    return spikes[spikes < duration]


def recurrent(cell, duration: float, seed: int) -> xr.Dataset:
    """Default Poisson background plus TM-depressed bursts from a few partners on 5 proximal contacts each."""
    duration = check_duration(duration)
    rng = _rng(seed)
    prox = proximal_sites(cell)
    if prox.size < RECURRENT_CONTACTS:
        raise ValueError(f"cell {cell.name!r} has {prox.size} proximal excitatory sites; the recurrent family "
                         f"needs {RECURRENT_CONTACTS}")
    k = int(rng.integers(RECURRENT_PARTNERS[0], RECURRENT_PARTNERS[1] + 1))
    times, sites, weights, partners = [], [], [], []
    for _ in range(k):
        contacts = rng.choice(prox, RECURRENT_CONTACTS, replace=False)
        rate, scale = float(rng.uniform(*RECURRENT_BURST_HZ)), float(rng.uniform(*RECURRENT_WEIGHT_SCALE))
        spikes = _burst_train(rng, rate, duration)
        eff = tm_efficacies(spikes, **RECURRENT_TM)
        w = scale * RECURRENT_CONTACT_US * eff
        times.append(np.repeat(spikes + RECURRENT_DELAY_MS, contacts.size))
        sites.append(np.tile(contacts, spikes.size))
        weights.append(np.repeat(w, contacts.size))
        partners.append({"sites": contacts.tolist(), "burst_rate_hz": rate, "weight_scale": scale,
                         "n_spikes": int(spikes.size)})
    bg = _inputs.poisson(cell, duration, seed=seed)
    return _with_extra(cell, bg, np.concatenate(times), np.concatenate(sites), np.concatenate(weights),
                       "recurrent", {"partners": partners, "tm": RECURRENT_TM})


FAMILIES: dict[str, Callable[..., xr.Dataset]] = {
    "scaled": scaled, "volley": volley, "proximal_strong": proximal_strong, "recurrent": recurrent}


def drive(cell, family: str, duration: float, seed: int) -> xr.Dataset:
    """The drive of ``family`` (a key of :data:`FAMILIES`) for ``cell``, fully determined by ``seed``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown drive family {family!r}; choose from {sorted(FAMILIES)}")
    return FAMILIES[family](cell, duration, int(seed))
