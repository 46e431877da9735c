"""hnn-core behind the NEURON door: read an ``hnn_core.Network``, run it, record every cell.

Three things live here, each using hnn-core's own code where hnn-core has it:

* :func:`read_network` turns an ``hnn_core.Network`` into plain arrays: cell
  types, gids and positions; one row per NetCon hnn-core would make (source
  gid, target gid, the target's section x receptor, weight and delay from
  hnn-core's ``_get_gaussian_connection``, the connectivity entry it came
  from); the external drives' event times from hnn-core's own
  ``Network._instantiate_drives`` (on a copy: the user's network is untouched).
* :func:`simulate_dipole` runs ``hnn_core.simulate_dipole`` (the reference;
  called inside a worker process) and returns the dipole and spikes as arrays.
* :func:`record_cells` runs the same network through hnn-core's own
  ``NetworkBuilder`` and records, for every cell, what a single-cell surrogate
  learns from: every segment's voltage and membrane current, hnn-core's own
  dipole of the cell (``dipole.mod``, fA m = nA um, along the apical trunk),
  its spikes, and every synaptic event it received (time, section x receptor,
  weight), i.e. source spike time + NetCon delay.

hnn-core runs at its own 0.025-ms step from its own start (``h.finitialize()``
at the sections' ``v0``, no steady-state initialisation), so data recorded
here are what the HNN column's cells see in hnn-core.
"""
from __future__ import annotations

import time as _time
from typing import Any

import numpy as np

from ..conventions import NEURON_DT, steps_per_bin
from . import mechanisms
from .network import ChunkReader

__all__ = ["HNN_CELL_TYPES", "jones_2009_column", "read_network", "simulate_dipole", "record_cells", "dipole_baseline",
           "check_templates", "site_key"]

# hnn-core's cell types and the mtlneuron cells that are the same cells with hnn-core's synapses
HNN_CELL_TYPES = {"L2_basket": "basket", "L2_pyramidal": "l23pc", "L5_basket": "basket", "L5_pyramidal": "l5pc_hnn"}
_DIPOLE_TYPES = ("L2_pyramidal", "L5_pyramidal")  # hnn-core's cell types that carry a dipole


POISSON_RATE_HZ, POISSON_WEIGHT_US = 30.0, 1e-3  # the Poisson drives of jones_2009_column(drives="poisson")


def jones_2009_column(mesh: int = 10, drives: str = "erp", tstop: float = 170.0, event_seed: int = 2):
    """hnn-core's column (``jones_2009_model``) on a ``mesh`` x ``mesh`` grid, with drives (an ``hnn_core.Network``).

    ``drives="erp"``: hnn-core's ``add_erp_drives_to_jones_model``; ``"poisson"``:
    proximal and distal Poisson drives on every cell type that has such synapses
    (30 Hz, 1 nS AMPA, event seeds ``event_seed`` and ``event_seed + 1``); ``"none"``.
    """
    mechanisms.import_hnn_core()  # its survey banner silenced
    import hnn_core
    from hnn_core.network_models import add_erp_drives_to_jones_model

    if drives not in ("erp", "poisson", "none"):
        raise ValueError(f"drives must be 'erp', 'poisson' or 'none', got {drives!r}")
    if isinstance(mesh, bool) or not isinstance(mesh, (int, np.integer)) or mesh < 1:
        raise ValueError(f"mesh must be a positive integer (cells per side of the grid), got {mesh!r}")
    net = hnn_core.jones_2009_model(add_drives_from_params=False, mesh_shape=(int(mesh), int(mesh)))
    if drives == "erp":
        add_erp_drives_to_jones_model(net)
    elif drives == "poisson":
        types = ("L2_basket", "L2_pyramidal", "L5_basket", "L5_pyramidal")
        for j, loc in enumerate(("proximal", "distal")):
            targets = [t for t in types if not (loc == "distal" and t == "L5_basket")]  # no distal synapses there
            net.add_poisson_drive(f"poisson_{loc}", tstart=0.0, tstop=tstop, location=loc,
                                  rate_constant={t: POISSON_RATE_HZ for t in targets},
                                  weights_ampa={t: POISSON_WEIGHT_US for t in targets}, synaptic_delays=0.1,
                                  event_seed=event_seed + j)
    return net


def site_key(section: str, receptor: str) -> str:
    """hnn-core's synapse key (``apical_tuft_ampa``): section name and receptor."""
    return f"{section}_{receptor}"


def check_templates(net) -> None:
    """Refuse cell types mtlneuron has no surrogate for, changed templates and tonic biases, by name."""
    mechanisms.import_hnn_core()  # its survey banner silenced
    from hnn_core import cells_default

    for name, data in net.cell_types.items():
        if name not in HNN_CELL_TYPES:
            raise ValueError(f"hnn-core cell type {name!r} has no mtlneuron surrogate; supported: "
                             f"{sorted(HNN_CELL_TYPES)}")
        factory = cells_default.basket if "basket" in name else cells_default.pyramidal
        default = factory(name).to_dict()
        mine = data["cell_object"].to_dict()
        for key in ("sections", "synapses", "sect_loc", "cell_tree"):
            if str(mine.get(key)) != str(default.get(key)):
                raise ValueError(f"hnn-core cell type {name!r} differs from hnn-core's default template in "
                                 f"{key!r}; the surrogates were trained on the default cells")
    if getattr(net, "external_biases", None) and any(net.external_biases.values()):
        raise ValueError(f"tonic biases ({sorted(net.external_biases)}) are not supported by the surrogate column")
    if getattr(net, "rec_arrays", None):
        pass  # extracellular arrays only matter to hnn-core's own run


def _target_sections(cell_object, loc: str) -> list[str]:
    """The sections a connection with ``loc`` reaches (hnn-core's ``sect_loc`` or one section)."""
    if loc in cell_object.sect_loc:
        return list(cell_object.sect_loc[loc])
    return [loc]


def read_network(net, tstop: float) -> dict[str, Any]:
    """Plain arrays of an ``hnn_core.Network`` (see the module docstring).

    Returns
    -------
    dict
        ``cell_types`` [(name, first gid, n, positions (n, 3))], ``contacts``
        (dict of arrays: ``pre``, ``post`` gid, ``key`` section_receptor,
        ``weight`` uS, ``delay`` ms, ``entry`` connectivity index) between
        cells, ``events`` (dict: ``post``, ``key``, ``time`` ms, ``weight``
        uS, ``entry``) from the drives (NetCon delay included), ``entries``
        (per connectivity entry: src_type, target_type, loc, receptor,
        A_weight, A_delay, lamtha, gain, probability, is_drive), and the
        grid size ``n_pyr`` (x, y).
    """
    mechanisms.import_hnn_core()  # its survey banner silenced
    check_templates(net)
    work = net.copy()
    work._instantiate_drives(tstop=tstop, n_trials=1)  # hnn-core's own event generation
    cell_types = []
    for name in work.cell_types:
        gids = work.gid_ranges[name]
        pos = np.asarray(work.pos_dict[name], dtype=float).reshape(-1, 3)
        cell_types.append((name, int(gids[0]), len(gids), pos))
    type_of = {}
    for name, rng in work.gid_ranges.items():
        for g in rng:
            type_of[g] = name
    contacts = {k: [] for k in ("pre", "post", "key", "weight", "delay", "entry")}
    events = {k: [] for k in ("post", "key", "time", "weight", "entry")}
    entries = []
    for k, conn in enumerate(work.connectivity):
        nc = dict(conn["nc_dict"])
        nc["A_weight"] = nc["A_weight"] * nc.get("gain", 1.0)  # as hnn-core's builder does
        src_type, target_type = conn["src_type"], conn["target_type"]
        is_drive = src_type in work.external_drives
        entries.append({"src_type": src_type, "target_type": target_type, "loc": conn["loc"],
                        "receptor": conn["receptor"], "A_weight": float(conn["nc_dict"]["A_weight"]),
                        "A_delay": float(nc["A_delay"]), "lamtha": float(nc["lamtha"]),
                        "gain": float(nc.get("gain", 1.0)), "probability": float(conn["probability"]),
                        "is_drive": bool(is_drive)})
        if target_type not in work.cell_types:
            raise ValueError(f"connectivity entry {k} targets {target_type!r}, which is not a cell type")
        sections = _target_sections(work.cell_types[target_type]["cell_object"], conn["loc"])
        first_src = work.gid_ranges[src_type][0]
        for src_gid, target_gid, weight, delay in _pairs(work, conn, nc):
            if is_drive:
                times = np.asarray(work.external_drives[src_type]["events"][0][src_gid - first_src], dtype=float)
            for sec in sections:
                key = site_key(sec, conn["receptor"])
                if is_drive:
                    arrive = times + delay
                    arrive = arrive[arrive < tstop]
                    events["post"].append(np.full(arrive.size, target_gid))
                    events["key"].append(np.full(arrive.size, key, dtype=object))
                    events["time"].append(arrive)
                    events["weight"].append(np.full(arrive.size, weight))
                    events["entry"].append(np.full(arrive.size, k))
                else:
                    for name, value in (("pre", src_gid), ("post", target_gid), ("key", key),
                                        ("weight", weight), ("delay", delay), ("entry", k)):
                        contacts[name].append(value)
    out_contacts = {"pre": np.asarray(contacts["pre"], dtype=np.int64),
                    "post": np.asarray(contacts["post"], dtype=np.int64),
                    "key": np.asarray(contacts["key"], dtype=object),
                    "weight": np.asarray(contacts["weight"], dtype=float),
                    "delay": np.asarray(contacts["delay"], dtype=float),
                    "entry": np.asarray(contacts["entry"], dtype=np.int64)}
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in events.items()}
    out_events = {"post": cat["post"].astype(np.int64), "key": cat["key"].astype(object),
                  "time": cat["time"].astype(float), "weight": cat["weight"].astype(float),
                  "entry": cat["entry"].astype(np.int64)}
    return {"cell_types": cell_types, "contacts": out_contacts, "events": out_events, "entries": entries,
            "n_pyr": (int(work._N_pyr_x), int(work._N_pyr_y)), "celsius": float(work._params["celsius"]),
            "threshold": float(work._params["threshold"])}


def _pairs(work, conn: dict, nc: dict):
    """(source gid, target gid, weight uS, delay ms) of one connectivity entry, by hnn-core's distance laws."""
    from hnn_core.cell import _get_gaussian_connection

    src_type, target_type = conn["src_type"], conn["target_type"]
    first_src, first_target = work.gid_ranges[src_type][0], work.gid_ranges[target_type][0]
    for src_gid, targets in conn["gid_pairs"].items():
        pos_src = work.pos_dict[src_type][src_gid - first_src]
        for target_gid in targets:
            tpos = work.pos_dict[target_type][target_gid - first_target]
            weight, delay = _get_gaussian_connection(pos_src, tpos, {**nc, "pos_src": pos_src},
                                                     inplane_distance=work._inplane_distance)
            yield src_gid, target_gid, weight, delay


def _quiet(net) -> None:
    net._verbose = False


def simulate_dipole(net, tstop: float, dt: float = NEURON_DT, jitter_bin_ms: float = 0.0,
                    jitter_seed: int = 0) -> dict[str, Any]:
    """``hnn_core.simulate_dipole(net, tstop, dt, n_trials=1)``; arrays out (call it in a worker process).

    With ``jitter_bin_ms`` > 0 every drive event hnn-core generates is moved to a
    uniform random time inside its arrival's bin of ``jitter_bin_ms`` (seeded by
    ``jitter_seed``): a surrogate on that grid sees the same input, so how far
    hnn-core moves is the ceiling of a binned-input surrogate.

    Returns ``times`` (ms), ``dipole`` (sample, layer) nA m for layers ``agg``,
    ``L2``, ``L5`` (hnn-core's baseline and sign, no smoothing or scaling),
    ``spike_times`` / ``spike_gids``, ``gid_ranges`` and ``seconds``.
    """
    import contextlib
    import io

    mechanisms.import_hnn_core()  # its survey banner silenced
    import hnn_core

    check_templates(net)
    if jitter_bin_ms > 0:
        _jitter_drive_events(net, float(jitter_bin_ms), int(jitter_seed))
    t0 = _time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # hnn-core prints progress per 10 ms
        dpl = hnn_core.simulate_dipole(net, tstop=tstop, dt=dt, n_trials=1)[0]
    seconds = _time.perf_counter() - t0
    layers = ("agg", "L2", "L5")
    return {"times": np.asarray(dpl.times), "dipole": np.stack([np.asarray(dpl.data[k]) for k in layers], axis=1),
            "layers": layers, "spike_times": np.asarray(net.cell_response.spike_times[0], dtype=float),
            "spike_gids": np.asarray(net.cell_response.spike_gids[0], dtype=np.int64),
            "gid_ranges": {k: (v[0], len(v)) for k, v in net.gid_ranges.items()}, "seconds": seconds}


def _jitter_drive_events(net, bin_ms: float, seed: int) -> None:
    """Make ``net`` (a worker's copy) move every drive event it generates to a random time inside its bin.

    The bin is that of the event's arrival (event + its NetCon delay) on a grid of
    ``bin_ms`` from 0, so the binned input a surrogate sees is unchanged.
    """
    generate = net._instantiate_drives
    rng = np.random.default_rng(seed)

    def instantiate(tstop, n_trials=1):
        generate(tstop=tstop, n_trials=n_trials)
        delays = _drive_cell_delays(net, bin_ms)
        for name, drive in net.external_drives.items():
            first = net.gid_ranges[name][0]
            for trial in drive["events"]:  # (trial, drive cell, event) lists, as hnn-core makes them
                for k, times in enumerate(trial):
                    if first + k not in delays or not len(times):
                        continue  # a drive cell with no target: nothing arrives
                    d = delays[first + k]
                    start = np.floor((np.asarray(times, dtype=float) + d) / bin_ms) * bin_ms
                    t = start + rng.uniform(0.0, bin_ms, start.size) - d
                    trial[k] = np.sort(t[(t > 0) & (t <= tstop)]).tolist()

    net._instantiate_drives = instantiate


def _drive_cell_delays(net, bin_ms: float) -> dict[int, float]:
    """Drive cell gid -> its NetCon delay (ms); every delay of one drive cell must agree modulo ``bin_ms``."""
    out: dict[int, float] = {}
    for conn in net.connectivity:
        if conn["src_type"] not in net.external_drives:
            continue
        for src_gid, _, _, delay in _pairs(net, conn, dict(conn["nc_dict"])):
            known = out.setdefault(src_gid, delay)
            gap = (delay - known) / bin_ms
            if abs(gap - round(gap)) > 1e-6:
                raise ValueError(f"drive {conn['src_type']!r}: cell {src_gid} reaches its targets with delays "
                                 f"{known} and {delay} ms, not a whole number of {bin_ms}-ms bins apart: no "
                                 f"jitter keeps all its arrivals in their bins")
    return out


def dipole_baseline(n_samples: int, dt: float, n_pyr: tuple[int, int]) -> np.ndarray:
    """What hnn-core adds to the raw summed dipoles (sample, layer: agg, L2, L5), nA m.

    hnn-core subtracts a resting offset per layer (``Dipole._baseline_renormalize``,
    fitted on its own cells; L5's is a function of time) before converting fA m
    to nA m. Computed by hnn-core's own code on zero dipoles.
    """
    mechanisms.import_hnn_core()  # its survey banner silenced
    from hnn_core.dipole import Dipole

    times = np.arange(n_samples) * dt
    dpl = Dipole(times=times, data=np.zeros((n_samples, 3)))
    dpl._baseline_renormalize(*n_pyr)
    dpl._convert_fAm_to_nAm()
    return np.stack([np.asarray(dpl.data[k]) for k in ("agg", "L2", "L5")], axis=1)


def record_cells(net, tstop: float, bin_dt: float, chunk_ms: float = 25.0) -> dict[str, Any]:
    """Run ``net`` through hnn-core's ``NetworkBuilder`` recording every cell (call it in a worker).

    Returns
    -------
    dict
        ``gids`` (cell,), ``cell_type`` (cell,), per cell ``v`` (time, segment)
        mV and ``imem`` (time, segment) nA (bin means on ``bin_dt``; segments
        in the order of the cell's sections, as ``mtl.cells`` lists them),
        ``dipole`` (time,) nA um (hnn-core's own dipole of the cell, zero for
        cells without one), ``spike_times`` per cell (ms), ``events`` per cell
        (dict of ``time`` ms, ``key`` section_receptor, ``weight`` uS), the
        summed raw dipole per layer ``raw_dipole`` (time bins, layer L2/L5,
        fA m) and ``seconds``.
    """
    import contextlib
    import io

    mechanisms.import_hnn_core()  # its survey banner silenced
    from hnn_core import network_builder as nb
    from neuron import h

    check_templates(net)
    t0 = _time.perf_counter()
    work = net.copy()
    _quiet(work)
    work._instantiate_drives(tstop=tstop, n_trials=1)
    work._params["record_vsec"] = False
    work._params["record_isec"] = False
    work._params["record_ca"] = False
    with contextlib.redirect_stdout(io.StringIO()):
        builder = nb.NetworkBuilder(work, trial_idx=0)
    h.load_file("stdrun.hoc")
    h.tstop = tstop
    h.dt = NEURON_DT
    h.celsius = work._params["celsius"]
    h.CVode().use_fast_imem(1)
    n_sub = steps_per_bin(bin_dt)
    cells = builder._cells
    segs = [[seg for sec in c._nrn_sections.values() for seg in sec] for c in cells]
    v_reader = ChunkReader([h.Vector().record(s._ref_v) for ss in segs for s in ss], n_sub)
    i_reader = ChunkReader([h.Vector().record(s._ref_i_membrane_) for ss in segs for s in ss], n_sub)
    nb._PC.set_maxstep(10)
    h.finitialize()
    h.fcurrent()
    v_parts, i_parts = [], []
    t_end = 0.0
    while t_end < tstop - 1e-9:
        t_end = min(tstop, t_end + chunk_ms)
        nb._PC.psolve(t_end)
        v_parts.append(v_reader.read())
        i_parts.append(i_reader.read())
    n_bins = int(round(tstop / bin_dt))
    v_all = np.concatenate(v_parts, axis=1)[:, :n_bins]
    i_all = np.concatenate(i_parts, axis=1)[:, :n_bins]
    bounds = np.cumsum([0] + [len(ss) for ss in segs])

    gids = np.array([c.gid for c in cells], dtype=np.int64)
    types = [work.gid_to_type(int(g)) for g in gids]
    dipoles = []
    for c in cells:
        if hasattr(c, "dipole"):
            raw = np.asarray(c.dipole.as_numpy(), dtype=float)[:n_bins * n_sub]
            dipoles.append(raw.reshape(n_bins, n_sub).mean(axis=1))
        else:
            dipoles.append(np.zeros(n_bins))
    raw_layer = np.zeros((n_bins, 2))
    for d, t in zip(dipoles, types):
        if t in _DIPOLE_TYPES:
            raw_layer[:, _DIPOLE_TYPES.index(t)] += d

    st = builder._spike_times.as_numpy().copy()
    sg = builder._spike_gids.as_numpy().astype(np.int64)
    spikes_of = {int(g): st[sg == g] for g in np.unique(sg)}
    syn_owner = {}
    for c in cells:
        for key, syn in c._nrn_synapses.items():
            syn_owner[syn.hname()] = (c.gid, key)
    per_cell: dict[int, dict[str, list]] = {int(g): {"time": [], "key": [], "weight": []} for g in gids}
    for ncs in builder.ncs.values():
        for nc in ncs:
            gid, key = syn_owner[nc.syn().hname()]
            src = spikes_of.get(int(nc.srcgid()))
            if src is None or not src.size:
                continue
            arrive = src + nc.delay
            arrive = arrive[arrive < tstop]
            per_cell[gid]["time"].append(arrive)
            per_cell[gid]["key"].append(np.full(arrive.size, key, dtype=object))
            per_cell[gid]["weight"].append(np.full(arrive.size, nc.weight[0]))
    events = [{k: (np.concatenate(v) if v else np.zeros(0)) for k, v in per_cell[int(g)].items()} for g in gids]
    return {"gids": gids, "cell_type": types,
            "v": [v_all[a:b].T.astype(np.float32) for a, b in zip(bounds[:-1], bounds[1:])],
            "imem": [i_all[a:b].T.astype(np.float32) for a, b in zip(bounds[:-1], bounds[1:])],
            "dipole": [d.astype(np.float32) for d in dipoles], "raw_dipole": raw_layer,
            "spike_times": [spikes_of.get(int(g), np.zeros(0)) for g in gids], "events": events,
            "seconds": _time.perf_counter() - t0}
