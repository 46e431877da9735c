"""Cell models: geometry, segments, synapse sites, and the NEURON build.

A :class:`Cell` is a small, picklable description. Its ``segments`` and
``sites`` tables are computed once by building the cell in NEURON inside an
isolated worker process (see :mod:`mtlneuron.nrn.worker`), so the user's
process never holds NEURON sections. This module is pure data: how a cell is
built in NEURON lives in :mod:`mtlneuron.nrn.build`.

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
l5pc_hnn   the same hnn-core L5 pyramidal cell with hnn-core's own synapses: one
           Exp2Syn per section and receptor where hnn-core connects (the HNN
           column's layout, ``mtl.network.from_hnn``)
l23pc      hnn-core L2/3 pyramidal cell, 37 degC, one Exp2Syn per section and
           receptor where hnn-core connects (proximal / distal / soma)
basket     hnn-core basket cell (soma only, ``hh2``), 37 degC, its three
           somatic receptors (ampa, gabaa, nmda); hnn-core's L2 and L5 basket
           cells are this one cell
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

from .conventions import check_number, check_seed, soma_index


__all__ = ["Cell", "DriveDefaults", "SiteSpec", "get", "from_morphology", "available", "proximal_sites",
           "PROXIMAL_UM", "RETT_CONTACT_WEIGHT_US", "RETT_STIM_TOTAL_US"]

PROXIMAL_UM = 200.0  # um: excitatory sites closer than this to the soma centre count as proximal
# the l5pc's calibration for the Rett microcircuit, shared by mtlneuron.network.rett and the training
# drives shaped like it (mtlneuron.drive_families)
RETT_CONTACT_WEIGHT_US = 0.00025  # uS per contact: ~1 mV unitary EPSP for 5 contacts (benchmarks/rett_calibration.py)
RETT_STIM_TOTAL_US = 0.05  # uS: the Rett stimulus conductance summed over the proximal sites


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
class SiteSpec:
    """One synapse type: its NEURON point process and parameters (used by the site layouts)."""

    receptor: str
    kind: str  # "exc" or "inh"
    point_process: str
    tau1: float  # ms (alpha synapses: tau1 = tau2 = tau)
    tau2: float
    e: float  # mV
    nrn_params: dict = field(default_factory=dict)


# hnn-core 0.6.1 synapse kinetics (cells_default._get_*_syn_props).
HNN_SYNAPSES = {
    "ampa": SiteSpec("ampa", "exc", "Exp2Syn", 0.5, 5.0, 0.0),
    "nmda": SiteSpec("nmda", "exc", "Exp2Syn", 1.0, 20.0, 0.0),
    "gabaa": SiteSpec("gabaa", "inh", "Exp2Syn", 0.5, 5.0, -80.0),
    "gabab": SiteSpec("gabab", "inh", "Exp2Syn", 1.0, 20.0, -80.0),
}
# eLife 2022 Methods, point neuron: alpha synapses, exc tau 2 ms / 0 mV, inh tau 1 ms / -90 mV.
ALPHA_EXC = SiteSpec("ampa", "exc", "MtlAlphaSyn", 2.0, 2.0, 0.0)
ALPHA_INH = SiteSpec("gabaa", "inh", "MtlAlphaSyn", 1.0, 1.0, -90.0)
AMPA_NMDA = SiteSpec(
    "ampa_nmda", "exc", "MtlAmpaNmda", 2.0, 50.0, 0.0,
    {"tau_ampa": 2.0, "tau1_nmda": 2.0, "tau2_nmda": 50.0, "nmda_ratio": 1.0, "mg": 1.0},
)

_HNN_TEMPLATES = {"l5pc": "L5_pyramidal", "l5pc_hnn": "L5_pyramidal", "l23pc": "L2_pyramidal", "basket": "L2_basket"}


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
            # Call-time facade: the tables come from building the cell in NEURON, in a
            # worker process (the one edge from cells to the NEURON package).
            from .nrn import worker

            self._tables = worker.describe(self)
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
        return soma_index(self.segments)

    def vmem_to_imem(self) -> np.ndarray:
        """LFPy's V -> I_m matrix M (nA per mV): ``imem = M @ v`` for every segment."""
        from .nrn import worker  # call-time facade, as for the tables

        return worker.vmem_to_imem(self)



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
    elif name in ("l23pc", "l5pc_hnn"):
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
    "l5pc_hnn": lambda: _hnn("l5pc_hnn"),
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
    name : {"point", "point_nmda", "l5pc", "l5pc_hnn", "l23pc", "basket"}
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


MORPHOLOGY_FORMATS = {".hoc": "NEURON hoc", ".swc": "SWC", ".asc": "Neurolucida ASCII", ".xml": "NeuroML"}


def check_morphology_file(path: Path) -> None:
    """Refuse an empty file, an unknown suffix, or content that cannot be a morphology of its format."""
    suffix = path.suffix.lower()
    if suffix not in MORPHOLOGY_FORMATS:
        raise ValueError(f"morphology file {str(path)!r} has suffix {path.suffix!r}; LFPy reads "
                         f"{', '.join(MORPHOLOGY_FORMATS)}")
    text = path.read_bytes()[:1_000_000].decode("utf-8", errors="replace")
    if not text.strip():
        raise ValueError(f"morphology file {str(path)!r} is empty")
    if suffix == ".swc":
        rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        ok = bool(rows) and all(len(r) >= 7 and _numeric(r[:7]) for r in rows[:50])
    elif suffix == ".hoc":
        ok = "create" in text and ("pt3dadd" in text or ".L" in text or "L =" in text or "L=" in text)
    elif suffix == ".asc":
        ok = "(" in text and ")" in text
    else:
        ok = "<" in text and ">" in text
    if not ok:
        raise ValueError(f"morphology file {str(path)!r} does not look like a {MORPHOLOGY_FORMATS[suffix]} "
                         f"morphology (checked before LFPy reads it)")


def _numeric(values) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


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
        If the file is empty or not a morphology of a known format, a site count
        is negative, not an integer or both are zero, or a parameter is not finite
        (all checked here, before NEURON or LFPy see anything).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"morphology file {str(path)!r} does not exist")
    check_morphology_file(path)
    for label, n in (("n_exc", n_exc), ("n_inh", n_inh)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{label} must be an integer >= 0, got {n!r}")
    if n_exc + n_inh == 0:
        raise ValueError(f"need a positive number of sites, got n_exc={n_exc}, n_inh={n_inh}")
    site_seed = check_seed(site_seed, "site_seed")
    g_pas = check_number(g_pas, "g_pas (S/cm2)", positive=True)
    e_pas = check_number(e_pas, "e_pas (mV)")
    celsius = check_number(celsius, "celsius (degC)")
    v_init = check_number(v_init, "v_init (mV)")
    params = {"layout": "morphology", "morphology": str(path), "n_exc": int(n_exc), "n_inh": int(n_inh), "site_seed": int(site_seed),
              "passive": {"g_pas": float(g_pas), "e_pas": float(e_pas)}}
    defaults = drive_defaults or DriveDefaults(rate_exc=(2.0, 10.0), rate_inh=(5.0, 20.0),
                                               weight_exc=(0.0005, 0.002), weight_inh=(0.0005, 0.002))
    return Cell(name or path.stem, f"morphology:{path}", params, celsius=celsius, v_init=v_init,
                spike_threshold=0.0, drive_defaults=defaults, description=f"passive morphology {path.name}")


def proximal_sites(cell: Cell) -> np.ndarray:
    """Indices of the excitatory sites within :data:`PROXIMAL_UM` of the soma centre.

    Where recurrent L5PC connections land (the Rett microcircuit's 5 contacts per
    connection, ``mtl.network.rett``) and what its strong stimulus drives; the
    training-drive families of ``mtl.drive_families`` use the same rule.
    Distances are from segment midpoints to the soma segment's midpoint.
    """
    seg, sites = cell.segments, cell.sites
    xyz = np.stack([seg[a].values for a in ("x", "y", "z")], axis=1)
    dist = np.linalg.norm(xyz - xyz[cell.soma_index], axis=1)[sites["segment"].values]
    return np.flatnonzero((dist < PROXIMAL_UM) & (sites["kind"].values.astype(str) == "exc"))
