"""The Rett contact weight: somatic unitary EPSP of one connection (5 proximal contacts) at rest.

    python benchmarks/rett_calibration.py [--weights 0.00025 0.001] [--seeds 0 1 2]

For each contact weight (uS) and seed, 5 proximal excitatory sites of the l5pc are drawn as
``mtl.network.rett`` draws them, each gets one event at 50 ms, and NEURON (``mtl.simulate``,
no other input) gives the peak somatic depolarisation above the pre-event voltage. The Rett
microcircuit uses the weight whose EPSP is ~1 mV (``mtlneuron.cells.RETT_CONTACT_WEIGHT_US``).
"""
import argparse

import numpy as np

import mtlneuron as mtl

EVENT_MS, DURATION_MS, CONTACTS = 50.0, 150.0, 5


def unitary_epsp(cell, weight: float, seed: int) -> float:
    """Peak somatic depolarisation (mV) after one event on ``CONTACTS`` proximal sites."""
    sites = np.random.default_rng(seed).choice(mtl.cells.proximal_sites(cell), CONTACTS, replace=False)
    drive = mtl.inputs.from_events(cell, np.full(CONTACTS, EVENT_MS), sites, np.full(CONTACTS, weight),
                                   DURATION_MS)
    truth = mtl.simulate(cell, drive)
    v = truth["v"].isel(segment=truth.attrs["soma_index"]).values
    t = truth["time"].values
    return float(v[t >= EVENT_MS].max() - v[t < EVENT_MS][-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", type=float, nargs="+", default=[mtl.cells.RETT_CONTACT_WEIGHT_US, 0.001])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = p.parse_args()
    cell = mtl.cells.get("l5pc")
    print("| contact weight (nS) | unitary EPSP (mV), mean +- SD over seeds |\n|---|---|")
    for w in a.weights:
        epsp = [unitary_epsp(cell, w, s) for s in a.seeds]
        print(f"| {w * 1e3:g} | {np.mean(epsp):.2f} +- {np.std(epsp):.2f} |")


if __name__ == "__main__":
    main()
