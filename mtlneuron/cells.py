"""Cell models: geometry, segments, synapse sites, and the NEURON build.

A :class:`Cell` is a small, picklable description. Its ``segments`` and
``sites`` tables are computed once by building the cell in NEURON inside an
isolated worker process (see ``mtlneuron._worker``), so the user's process
never holds NEURON sections.

Available cells (``get(name)``):

========== ===================================================================
point      single compartment (L = diam = 25 um), NEURON ``hh`` defaults
           (gnabar 0.12, gkbar 0.036, gl 0.0003 S/cm2), 8 excitatory and 3
           inhibitory event-driven alpha synapses (eLife 2022 Methods), 6.3 degC
point_nmda ``point`` plus 4 glutamatergic AMPA+NMDA sites with a Jahr-Stevens
           Mg2+ block (``MtlAmpaNmda``)
l5pc       hnn-core 0.6.1 L5 pyramidal cell, 37 degC, 200 Exp2Syn sites in the
           eLife 2022 layout (100 apical exc, 30 apical inh, 50 basal exc,
           20 basal inh; length-weighted, fixed seed)
l23pc      hnn-core L2/3 pyramidal cell, 37 degC, one Exp2Syn per section and
           receptor where hnn-core connects (proximal / distal / soma)
basket     hnn-core basket cell (soma only, ``hh2``), 37 degC, its three
           somatic receptors (ampa, gabaa, nmda)
========== ===================================================================
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from . import _mechanisms, _worker

__all__ = ["Cell", "DriveDefaults", "get", "from_morphology", "available"]

NEURON_DT = 0.025  # ms; the integration step of every ground-truth simulation


@dataclass(frozen=True)
class DriveDefaults:
    """Ranges that ``inputs.poisson`` draws per-site rates and weights from.

    Rates in Hz, weights in uS (peak conductance scale of one event).
    ``modulation_depth`` in [0, 1) and ``modulation_tau`` (ms) set the slow,
    shared fluctuation of all rates that gives quiet and active stretches.
    """

    rate_exc: tuple[float, float]
    rate_inh: tuple[float, float]
    weight_exc: tuple[float, float]
    weight_inh: tuple[float, float]
    modulation_depth: float = 0.8
    modulation_tau: float = 250.0


@dataclass(frozen=True)
class _SiteSpec:
    """One synapse type: its NEURON point process and parameters."""

    receptor: str
    kind: str  # "exc" or "inh"
    point_process: str
    tau1: float  # ms (alpha synapses: tau1 = tau2 = tau)
    tau2: float
    e: float  # mV
    nrn_params: dict = field(default_factory=dict)


# hnn-core 0.6.1 synapse kinetics (cells_default._get_*_syn_props).
_HNN_SYN = {
    "ampa": _SiteSpec("ampa", "exc", "Exp2Syn", 0.5, 5.0, 0.0),
    "nmda": _SiteSpec("nmda", "exc", "Exp2Syn", 1.0, 20.0, 0.0),
    "gabaa": _SiteSpec("gabaa", "inh", "Exp2Syn", 0.5, 5.0, -80.0),
    "gabab": _SiteSpec("gabab", "inh", "Exp2Syn", 1.0, 20.0, -80.0),
}
# eLife 2022 Methods, point neuron: alpha synapses, exc tau 2 ms / 0 mV, inh tau 1 ms / -90 mV.
_ALPHA_EXC = _SiteSpec("ampa", "exc", "MtlAlphaSyn", 2.0, 2.0, 0.0)
_ALPHA_INH = _SiteSpec("gabaa", "inh", "MtlAlphaSyn", 1.0, 1.0, -90.0)
_AMPA_NMDA = _SiteSpec(
    "ampa_nmda", "exc", "MtlAmpaNmda", 2.0, 50.0, 0.0,
    {"tau_ampa": 2.0, "tau1_nmda": 2.0, "tau2_nmda": 50.0, "nmda_ratio": 1.0, "mg": 1.0},
)

_HNN_TEMPLATES = {"l5pc": "L5_pyramidal", "l23pc": "L2_pyramidal", "basket": "L2_basket"}


class Cell:
    """A neuron model that mtlneuron can simulate and learn.

    Use :func:`get` or :func:`from_morphology` rather than this constructor.

    Attributes
    ----------
    name : str
        Cell name (``"l5pc"``, ...).
    celsius : float
        Temperature of every simulation of this cell (degC).
    v_init : float
        Initial voltage before the steady-state initialisation (mV).
    spike_threshold : float
        Somatic upward crossing that counts as a spike (mV).
    drive_defaults : DriveDefaults
        Rate and weight ranges used by ``inputs.poisson`` by default.
    """

    def __init__(self, name: str, template: str, params: dict, *, celsius: float,
                 v_init: float, spike_threshold: float, drive_defaults: DriveDefaults,
                 description: str):
        self.name = name
        self.template = template
        self.params = dict(params)
        self.celsius = float(celsius)
        self.v_init = float(v_init)
        self.spike_threshold = float(spike_threshold)
        self.drive_defaults = drive_defaults
        self.description = description
        self._tables: tuple[xr.Dataset, xr.Dataset] | None = None

    # -- identity ---------------------------------------------------------------
    @property
    def key(self) -> str:
        """A string that identifies this exact cell variant (name + parameters)."""
        blob = json.dumps([self.template, self.params, self.celsius, self.v_init], sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def __repr__(self) -> str:
        n = f"{self.n_segments} segments, {self.n_sites} sites" if self._tables else "not built yet"
        return f"<mtlneuron.Cell {self.name!r} ({n}) {self.description}>"

    # -- tables -----------------------------------------------------------------
    def _ensure_tables(self) -> tuple[xr.Dataset, xr.Dataset]:
        if self._tables is None:
            self._tables = _worker.call(self.key, _describe_in_worker, self)
        return self._tables

    @property
    def segments(self) -> xr.Dataset:
        """Segment table over dim ``segment`` (geometry in um, see docs/data_format.md)."""
        return self._ensure_tables()[0]

    @property
    def sites(self) -> xr.Dataset:
        """Synapse-site table over dim ``site`` (everything needed to rebuild the synapses)."""
        return self._ensure_tables()[1]

    @property
    def n_segments(self) -> int:
        return self.segments.sizes["segment"]

    @property
    def n_sites(self) -> int:
        return self.sites.sizes["site"]

    @property
    def soma_index(self) -> int:
        """Index of the somatic segment (the one spikes are detected in)."""
        return int(self.segments.attrs["soma_index"])

    def vmem_to_imem(self) -> np.ndarray:
        """LFPy's V -> I_m matrix M (nA per mV): ``imem = M @ v`` for every segment."""
        return _worker.call(self.key, _vmem_to_imem_in_worker, self)

    # -- NEURON side (runs in a worker process) --------------------------------
    def _build_neuron(self) -> "BuiltCell":
        from neuron import h

        h.load_file("stdrun.hoc")
        _mechanisms.load()
        builder = _BUILDERS[self.template.split(":")[0]]
        keep, seclist = builder(self)
        h.celsius = self.celsius
        return BuiltCell(self, keep, seclist)


class BuiltCell:
    """A cell built in this process's NEURON: LFPy cell, segments, synapses."""

    def __init__(self, cell: Cell, keep: Any, seclist):
        import LFPy
        from neuron import h

        self.cell = cell
        self.template = cell.template
        self._keep = keep  # keeps hnn-core objects / sections alive
        if isinstance(seclist, (str, Path)):
            self.lfpy = LFPy.Cell(morphology=str(seclist), nsegs_method="lambda_f", lambda_f=100,
                                  dt=NEURON_DT, v_init=cell.v_init, celsius=cell.celsius,
                                  passive=True, passive_parameters=cell.params["passive"],
                                  delete_sections=True, pt3d=True)
        else:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "N sections detected": intended here
                self.lfpy = LFPy.Cell(morphology=seclist, nsegs_method=None, delete_sections=False,
                                      dt=NEURON_DT, v_init=cell.v_init, celsius=cell.celsius, pt3d=False)
        h.celsius = cell.celsius
        self.segs = [seg for sec in self.lfpy.allseclist for seg in sec]
        self.sections = list(self.lfpy.allseclist)
        assert len(self.segs) == self.lfpy.totnsegs
        self.segment_table = _segment_table(self)
        self.site_table = _site_table(cell, self.segment_table)
        self.synapses = [_make_point_process(self.segs[int(seg)], row)
                         for seg, row in zip(self.site_table["segment"].values, _site_rows(self.site_table))]


def _site_rows(sites: xr.Dataset):
    for i in range(sites.sizes["site"]):
        yield {
            "point_process": str(sites["point_process"].values[i]),
            "nrn_params": json.loads(str(sites["nrn_params"].values[i])),
        }


def _make_point_process(seg, row):
    from neuron import h

    pp = getattr(h, row["point_process"])(seg)
    for name, value in row["nrn_params"].items():
        setattr(pp, name, value)
    return pp


def _short_section_name(built: "BuiltCell", sec) -> str:
    """hnn-core's own section key (``apical_tuft``), else NEURON's name without its template."""
    keep = built._keep
    if keep is not None and hasattr(keep, "_nrn_sections"):
        for key, nrn_sec in keep._nrn_sections.items():
            if nrn_sec == sec:
                return key
    return sec.name().split(".")[-1]


def _region_of(section: str) -> str:
    s = section.lower()
    if s.startswith("soma"):
        return "soma"
    if "tuft" in s:
        return "apical_tuft"
    if "oblique" in s:
        return "apical_oblique"
    if s.startswith("apic"):
        return "apical_trunk"
    if s.startswith("basal") or s.startswith("dend"):
        return "basal"
    if s.startswith("axon"):
        return "axon"
    return "other"


def _segment_table(built: BuiltCell) -> xr.Dataset:
    lc = built.lfpy
    cell = built.cell
    index = {(seg.sec.name(), round(seg.x, 9)): i for i, seg in enumerate(built.segs)}
    names, sections, sec_x, parent = [], [], [], []
    for sec in built.sections:
        short = _short_section_name(built, sec)
        segs = list(sec)
        for j, seg in enumerate(segs):
            names.append(f"{short}[{j}]")
            sections.append(short)
            sec_x.append(seg.x)
            if j > 0:
                parent.append(index[(sec.name(), round(segs[j - 1].x, 9))])
            else:
                pseg = sec.parentseg()
                if pseg is None:
                    parent.append(-1)
                else:
                    # the parent segment is the one containing the connection point
                    psegs = list(pseg.sec)
                    k = min(int(pseg.x * pseg.sec.nseg), pseg.sec.nseg - 1)
                    parent.append(index[(pseg.sec.name(), round(psegs[k].x, 9))])
    regions = [_region_of(s) for s in sections]
    soma = [i for i, r in enumerate(regions) if r == "soma"]
    if not soma:
        raise ValueError(f"cell {cell.name!r} has no section named 'soma*'; spikes need a soma")

    def var(values, units, long_name):
        return ("segment", np.asarray(values), {"units": units, "long_name": long_name})

    ds = xr.Dataset(
        {
            "section": ("segment", np.asarray(sections, dtype=object), {"long_name": "section name"}),
            "region": ("segment", np.asarray(regions, dtype=object), {"long_name": "anatomical region"}),
            "sec_x": var(sec_x, "1", "segment centre as a fraction of its section (0-1)"),
            "x": var(lc.x.mean(axis=1), "um", "segment midpoint x"),
            "y": var(lc.y.mean(axis=1), "um", "segment midpoint y"),
            "z": var(lc.z.mean(axis=1), "um", "segment midpoint z"),
            "x0": var(lc.x[:, 0], "um", "segment start x"), "x1": var(lc.x[:, 1], "um", "segment end x"),
            "y0": var(lc.y[:, 0], "um", "segment start y"), "y1": var(lc.y[:, 1], "um", "segment end y"),
            "z0": var(lc.z[:, 0], "um", "segment start z"), "z1": var(lc.z[:, 1], "um", "segment end z"),
            "diam": var(lc.d, "um", "segment diameter"),
            "length": var(lc.length, "um", "segment length"),
            "area": var(lc.area, "um2", "membrane area"),
            "parent": var(np.asarray(parent, dtype=np.int64), "1", "index of the parent segment (-1: root)"),
        },
        coords={"segment": np.asarray(names, dtype=object)},
        attrs={"cell": cell.name, "soma_index": int(soma[0])},
    )
    return ds


def _site_table(cell: Cell, segments: xr.Dataset) -> xr.Dataset:
    layout = _SITE_LAYOUTS[cell.params["layout"]](cell, segments)
    rows = []
    for seg_index, spec, region in layout:
        params = {"e": spec.e, **spec.nrn_params}
        if spec.point_process == "Exp2Syn":
            params.update(tau1=spec.tau1, tau2=spec.tau2)
        elif spec.point_process == "MtlAlphaSyn":
            params.update(tau=spec.tau1)
        rows.append((int(seg_index), region, spec, json.dumps(params, sort_keys=True)))
    if not rows:
        raise ValueError(f"cell {cell.name!r} has no synapse sites")
    seg = np.array([r[0] for r in rows], dtype=np.int64)
    return xr.Dataset(
        {
            "segment": ("site", seg, {"long_name": "index into cell.segments"}),
            "segment_name": ("site", segments["segment"].values[seg].astype(object)),
            "sec_x": ("site", segments["sec_x"].values[seg], {"units": "1", "long_name": "position in section"}),
            "region": ("site", np.array([r[1] for r in rows], dtype=object)),
            "receptor": ("site", np.array([r[2].receptor for r in rows], dtype=object)),
            "kind": ("site", np.array([r[2].kind for r in rows], dtype=object)),
            "point_process": ("site", np.array([r[2].point_process for r in rows], dtype=object)),
            "tau1": ("site", np.array([r[2].tau1 for r in rows]), {"units": "ms", "long_name": "rise time (alpha: tau)"}),
            "tau2": ("site", np.array([r[2].tau2 for r in rows]), {"units": "ms", "long_name": "decay time (alpha: tau)"}),
            "e": ("site", np.array([r[2].e for r in rows]), {"units": "mV", "long_name": "reversal potential"}),
            "nrn_params": ("site", np.array([r[3] for r in rows], dtype=object),
                           {"long_name": "JSON of the attributes set on the NEURON point process"}),
        },
        coords={"site": np.arange(len(rows))},
        attrs={"cell": cell.name, "layout_seed": int(cell.params.get("site_seed", -1))},
    )


# -- builders: return (objects to keep alive, SectionList or morphology path) ----------

def _build_point(cell: Cell):
    from neuron import h

    soma = h.Section(name="soma")
    soma.L = soma.diam = 25.0
    soma.Ra = 35.4
    soma.cm = 1.0
    soma.nseg = 1
    soma.insert("hh")  # NEURON defaults: gnabar 0.12, gkbar 0.036, gl 0.0003 S/cm2, el -54.3 mV
    h.pt3dclear(sec=soma)
    h.pt3dadd(0, -12.5, 0, 25.0, sec=soma)
    h.pt3dadd(0, 12.5, 0, 25.0, sec=soma)
    seclist = h.SectionList()
    seclist.append(sec=soma)
    return soma, seclist


def _build_hnn(cell: Cell):
    from hnn_core import cells_default
    from neuron import h

    _mechanisms.load_hnn()
    h.celsius = cell.celsius
    hnn_name = cell.params["hnn_cell"]
    factory = cells_default.basket if "basket" in hnn_name else cells_default.pyramidal
    hnn_cell = factory(hnn_name)
    hnn_cell.build(sec_name_apical=None)
    seclist = h.SectionList()
    for sec in hnn_cell._nrn_sections.values():
        seclist.append(sec=sec)
    return hnn_cell, seclist


def _build_morphology(cell: Cell):
    return None, cell.params["morphology"]


_BUILDERS: dict[str, Callable] = {"point": _build_point, "hnn": _build_hnn, "morphology": _build_morphology}


# -- site layouts: list of (segment index, _SiteSpec, region) -------------------------

def _layout_point(cell: Cell, segments: xr.Dataset):
    sites = [(0, _ALPHA_EXC, "soma")] * 8 + [(0, _ALPHA_INH, "soma")] * 3
    if cell.params.get("nmda"):
        sites += [(0, _AMPA_NMDA, "soma")] * 4
    return sites


def _length_weighted(rng, candidates: np.ndarray, lengths: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(candidates, size=n, replace=True, p=lengths / lengths.sum())


def _layout_elife(cell: Cell, segments: xr.Dataset):
    """eLife 2022: 100 apical exc, 30 apical inh, 50 basal exc, 20 basal inh, length-weighted."""
    rng = np.random.default_rng(cell.params["site_seed"])
    region = segments["region"].values.astype(str)
    length = segments["length"].values
    apical = np.flatnonzero(np.char.startswith(region, "apical"))
    basal = np.flatnonzero(region == "basal")
    exc, inh = _HNN_SYN["ampa"], _HNN_SYN["gabaa"]
    out = []
    for group, where in (("apical", apical), ("basal", basal)):
        counts = cell.params["n_sites"][group]
        for spec, n in ((exc, counts[0]), (inh, counts[1])):
            for seg in np.sort(_length_weighted(rng, where, length[where], n)):
                out.append((int(seg), spec, group))
    return out


def _layout_hnn(cell: Cell, segments: xr.Dataset):
    """One site per (section, receptor) that hnn-core connects to, at sec(0.5)."""
    from hnn_core import cells_default

    hnn_name = cell.params["hnn_cell"]
    factory = cells_default.basket if "basket" in hnn_name else cells_default.pyramidal
    template = factory(hnn_name)
    loc = {s: "proximal" for s in template.sect_loc["proximal"]}
    loc.update({s: "distal" for s in template.sect_loc["distal"]})
    section = segments["section"].values.astype(str)
    sec_x = segments["sec_x"].values
    out = []
    for sec_name, sec in template.sections.items():
        region = "soma" if sec_name == "soma" else loc.get(sec_name)
        if region is None:
            continue
        rows = np.flatnonzero(section == sec_name)
        # the segment holding x = 0.5, where hnn-core puts its synapses
        seg = rows[np.argmin(np.abs(sec_x[rows] - 0.5))]
        for receptor in sec.syns:
            out.append((int(seg), _HNN_SYN[receptor], region))
    return out


def _layout_morphology(cell: Cell, segments: xr.Dataset):
    rng = np.random.default_rng(cell.params["site_seed"])
    region = segments["region"].values.astype(str)
    dend = np.flatnonzero((region != "soma") & (region != "axon"))
    if dend.size == 0:
        dend = np.arange(segments.sizes["segment"])
    length = segments["length"].values[dend]
    out = []
    for spec, n in ((_HNN_SYN["ampa"], cell.params["n_exc"]), (_HNN_SYN["gabaa"], cell.params["n_inh"])):
        for seg in np.sort(_length_weighted(rng, dend, length, n)):
            out.append((int(seg), spec, str(region[seg])))
    return out


_SITE_LAYOUTS: dict[str, Callable] = {
    "point": _layout_point, "elife": _layout_elife, "hnn": _layout_hnn, "morphology": _layout_morphology,
}


# -- worker entry points ---------------------------------------------------------------

def _describe_in_worker(cell: Cell):
    built = _worker.built(cell)
    return built.segment_table, built.site_table


def _vmem_to_imem_in_worker(cell: Cell) -> np.ndarray:
    return np.asarray(_worker.built(cell).lfpy.get_transformation_matrix_vmem_to_imem())


# -- public constructors ----------------------------------------------------------------

def _point(nmda: bool) -> Cell:
    name = "point_nmda" if nmda else "point"
    return Cell(
        name, "point" if not nmda else "point:nmda", {"nmda": nmda, "layout": "point"},
        celsius=6.3, v_init=-65.0, spike_threshold=0.0,
        # Each 2.5 nS EPSP depolarises this 25-um soma by ~18 mV, so low rates suffice.
        drive_defaults=DriveDefaults(rate_exc=(0.5, 3.0), rate_inh=(2.0, 10.0),
                                     weight_exc=(0.002, 0.003), weight_inh=(0.006, 0.010),
                                     modulation_depth=1.0),
        description="single-compartment HH neuron (eLife 2022)" + (" with AMPA+NMDA sites" if nmda else ""),
    )


def _hnn(name: str, site_seed: int = 2022) -> Cell:
    hnn_name = _HNN_TEMPLATES[name]
    params: dict[str, Any] = {"hnn_cell": hnn_name, "layout": "hnn"}
    template = "hnn:" + hnn_name
    if name == "l5pc":
        params.update(site_seed=site_seed, n_sites={"apical": (100, 30), "basal": (50, 20)}, layout="elife")
        # ~10 Hz on average over seeds, ~20% of 250-ms windows silent (docs/data_format.md)
        defaults = DriveDefaults(rate_exc=(0.5, 5.0), rate_inh=(5.0, 20.0),
                                 weight_exc=(0.0005, 0.0025), weight_inh=(0.0005, 0.0025),
                                 modulation_depth=1.0)
    elif name == "l23pc":
        defaults = DriveDefaults(rate_exc=(10.0, 40.0), rate_inh=(5.0, 20.0),
                                 weight_exc=(0.0005, 0.002), weight_inh=(0.0005, 0.002))
    else:
        defaults = DriveDefaults(rate_exc=(20.0, 60.0), rate_inh=(5.0, 20.0),
                                 weight_exc=(0.0005, 0.002), weight_inh=(0.0005, 0.002))
    return Cell(name, template, params, celsius=37.0, v_init=-65.0, spike_threshold=0.0,
                drive_defaults=defaults, description=f"hnn-core 0.6.1 {hnn_name}")


_FACTORIES: dict[str, Callable[[], Cell]] = {
    "point": lambda: _point(False),
    "point_nmda": lambda: _point(True),
    "l5pc": lambda: _hnn("l5pc"),
    "l23pc": lambda: _hnn("l23pc"),
    "basket": lambda: _hnn("basket"),
}
_cache: dict[str, Cell] = {}


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return list(_FACTORIES)


def get(name: str) -> Cell:
    """Return a built-in cell model by name.

    Parameters
    ----------
    name : {"point", "point_nmda", "l5pc", "l23pc", "basket"}
        The cell model (see the module docstring).

    Returns
    -------
    Cell
        The same object on every call with the same name (its tables are cached).

    Raises
    ------
    ValueError
        If ``name`` is not a known cell.

    Examples
    --------
    >>> cell = mtl.cells.get("l5pc")      # doctest: +SKIP
    >>> cell.sites.sizes["site"]          # doctest: +SKIP
    200
    """
    if not isinstance(name, str) or name not in _FACTORIES:
        raise ValueError(f"unknown cell name {name!r}; choose one of {available()} or use cells.from_morphology(path)")
    if name not in _cache:
        _cache[name] = _FACTORIES[name]()
    return _cache[name]


def from_morphology(path: str | Path, *, name: str | None = None, n_exc: int = 100, n_inh: int = 30,
                    site_seed: int = 0, g_pas: float = 3e-5, e_pas: float = -70.0,
                    celsius: float = 34.0, v_init: float = -70.0,
                    drive_defaults: DriveDefaults | None = None) -> Cell:
    """A passive cell from any morphology file LFPy loads (.hoc, .swc, .asc, .xml).

    Segments follow the lambda-100 rule; ``n_exc`` excitatory (ampa) and
    ``n_inh`` inhibitory (gabaa) Exp2Syn sites are placed on non-somatic,
    non-axonal segments, length-weighted with ``site_seed``.

    Parameters
    ----------
    path : str or Path
        Morphology file.
    name : str, optional
        Cell name (default: the file's stem).
    n_exc, n_inh : int
        Number of excitatory / inhibitory sites.
    site_seed : int
        Seed of the site placement.
    g_pas : float
        Passive conductance (S/cm2).
    e_pas : float
        Passive reversal (mV).
    celsius, v_init : float
        Temperature (degC) and initial voltage (mV).
    drive_defaults : DriveDefaults, optional
        Default Poisson drive ranges.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a site count is negative or both are zero.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"morphology file {str(path)!r} does not exist")
    if n_exc < 0 or n_inh < 0 or n_exc + n_inh == 0:
        raise ValueError(f"need a positive number of sites, got n_exc={n_exc}, n_inh={n_inh}")
    params = {"layout": "morphology", "morphology": str(path), "n_exc": int(n_exc), "n_inh": int(n_inh), "site_seed": int(site_seed),
              "passive": {"g_pas": float(g_pas), "e_pas": float(e_pas)}}
    defaults = drive_defaults or DriveDefaults(rate_exc=(2.0, 10.0), rate_inh=(5.0, 20.0),
                                               weight_exc=(0.0005, 0.002), weight_inh=(0.0005, 0.002))
    return Cell(name or path.stem, f"morphology:{path}", params, celsius=celsius, v_init=v_init,
                spike_threshold=0.0, drive_defaults=defaults, description=f"passive morphology {path.name}")
