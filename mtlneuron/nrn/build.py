"""Building cells in NEURON: sections, segment and site tables, synapses.

The one place (with the rest of :mod:`mtlneuron.nrn`) that touches NEURON,
LFPy and hnn-core. :func:`build_cell` may be called many times in one
process, also for the same cell: hnn-core gives every cell's sections their
own owner object, and every table here is computed from one cell's own
section list, never from NEURON's global list of sections.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from .. import cells as _cells
from ..cells import Cell
from ..conventions import NEURON_DT
from . import mechanisms

__all__ = ["BuiltCell", "build_cell", "make_point_process", "site_rows"]


def build_cell(cell: Cell) -> "BuiltCell":
    """Build a new instance of ``cell`` in this process's NEURON (sections, synapses, LFPy wrapper)."""
    from neuron import h

    h.load_file("stdrun.hoc")
    mechanisms.load()
    builder = _BUILDERS[cell.template.split(":")[0]]
    keep, seclist = builder(cell)
    h.celsius = cell.celsius
    return BuiltCell(cell, keep, seclist)


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
        self.synapses = [make_point_process(self.segs[int(seg)], row)
                         for seg, row in zip(self.site_table["segment"].values, site_rows(self.site_table))]


def site_rows(sites: xr.Dataset):
    """Per site: the NEURON point process name and the attributes to set on it."""
    for i in range(sites.sizes["site"]):
        yield {
            "point_process": str(sites["point_process"].values[i]),
            "nrn_params": json.loads(str(sites["nrn_params"].values[i])),
        }


def make_point_process(seg, row: dict):
    """A NEURON point process of type ``row["point_process"]`` at ``seg`` with ``row["nrn_params"]``."""
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
    mechanisms.import_hnn_core()
    from hnn_core import cells_default
    from neuron import h

    mechanisms.load_hnn()
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


# -- site layouts: list of (segment index, _cells.SiteSpec, region) -------------------------

def _layout_point(cell: Cell, segments: xr.Dataset):
    sites = [(0, _cells.ALPHA_EXC, "soma")] * 8 + [(0, _cells.ALPHA_INH, "soma")] * 3
    if cell.params.get("nmda"):
        sites += [(0, _cells.AMPA_NMDA, "soma")] * 4
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
    exc, inh = _cells.HNN_SYNAPSES["ampa"], _cells.HNN_SYNAPSES["gabaa"]
    out = []
    for group, where in (("apical", apical), ("basal", basal)):
        counts = cell.params["n_sites"][group]
        for spec, n in ((exc, counts[0]), (inh, counts[1])):
            for seg in np.sort(_length_weighted(rng, where, length[where], n)):
                out.append((int(seg), spec, group))
    return out


def _layout_hnn(cell: Cell, segments: xr.Dataset):
    """One site per (section, receptor) that hnn-core connects to, at sec(0.5)."""
    mechanisms.import_hnn_core()
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
            out.append((int(seg), _cells.HNN_SYNAPSES[receptor], region))
    return out


def _layout_morphology(cell: Cell, segments: xr.Dataset):
    rng = np.random.default_rng(cell.params["site_seed"])
    region = segments["region"].values.astype(str)
    dend = np.flatnonzero((region != "soma") & (region != "axon"))
    if dend.size == 0:
        dend = np.arange(segments.sizes["segment"])
    length = segments["length"].values[dend]
    out = []
    for spec, n in ((_cells.HNN_SYNAPSES["ampa"], cell.params["n_exc"]), (_cells.HNN_SYNAPSES["gabaa"], cell.params["n_inh"])):
        for seg in np.sort(_length_weighted(rng, dend, length, n)):
            out.append((int(seg), spec, str(region[seg])))
    return out


_SITE_LAYOUTS: dict[str, Callable] = {
    "point": _layout_point, "elife": _layout_elife, "hnn": _layout_hnn, "morphology": _layout_morphology,
}


