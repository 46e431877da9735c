"""Rett microcircuit: surrogate vs NEURON on identical networks (connectivity, drives, stimulus).

    python benchmarks/network_validation.py [--cells 150] [--seeds 0 1 2] [--out ~/mtl-work/validation]
    python benchmarks/network_validation.py --report --figure docs/img/network_validation.png

Every grid point (exc_scale x p_connect at the calibrated 0.25 nS per contact, plus
exc_scale 1, p_connect 0.10 with contacts x4 and x14.4 = the paper's 3.6 nS, where
NEURON's network turns unstable) and seed runs in both backends on the same
description. NEURON results are saved one netCDF per network as they finish, so a
killed run resumes where it stopped. The report prints, per network, pre-stimulus
and response APs, both ``stable`` verdicts and the correlation of the population
rate (5-ms bins), then per grid point the seed means (the coarse parameter map of
both backends), and writes ``table.csv`` and ``map.csv`` next to the runs;
``--figure`` draws rasters of both backends for seed 0 at three grid points
and the two maps of pre-stimulus APs side by side.

Held-out networks of the unstable regime: ``--recorded DIR --recorded-seeds 309-311`` scores
networks that ``generate_network_data.py --regime strong`` recorded in NEURON (every cell, 1-2 s;
seeds never used in training): the NEURON spikes of the file's first ``--duration`` ms against
the surrogate free-running on the same network rebuilt from the file's attrs, with the same
criteria (``table_recorded{label}.csv``; no NEURON run needed).

The ceiling of a binned surrogate on networks: ``--jitter e1_p0.05 e1_p0.1_c14.4 ...``
(grid-point tags, every seed) runs NEURON again on the same networks with every drive
event moved to a random time inside its own 0.5-ms bin (the rule of
``binning_ceiling.py``: the surrogate's binned input is unchanged). The report then
scores jittered NEURON against NEURON with the same criteria (``table_jitter.csv``):
how far apart two runs that no binned-input model can tell apart already are.
"""
import argparse
import copy
import time
from pathlib import Path

import numpy as np

from binning_ceiling import jitter_times
from mtlneuron._util import atomic_path
from mtlneuron.network import rett, rett_metrics, run_neuron_many
from mtlneuron.network.rett_model import CONTACT_WEIGHT_US
from mtlneuron.network.sweeps import run_batched

EXC_SCALES = (1.0, 2.0, 3.0)
P_CONNECTS = (0.05, 0.10, 0.20)
CONTACT_SCALES = (4.0, 14.4)  # x CONTACT_WEIGHT_US, at exc_scale 1 and p_connect 0.10: spans NEURON's instability


def _tag(e: float, pc: float, c: float, s: int) -> str:
    return f"e{e:g}_p{pc:g}_s{s}" if c == 1.0 else f"e{e:g}_p{pc:g}_c{c:g}_s{s}"


def _point_tag(point) -> str:
    """The grid point's tag without the seed (``e1_p0.1_c14.4``)."""
    return _tag(*point).rsplit("_s", 1)[0]


def grid(seeds) -> list[tuple[float, float, float, int]]:
    """(exc_scale, p_connect, contact scale, seed) of every validation network."""
    return [(e, pc, 1.0, s) for e in EXC_SCALES for pc in P_CONNECTS for s in seeds] + \
        [(1.0, 0.10, c, s) for c in CONTACT_SCALES for s in seeds]


def jittered(net, duration: float, seed: int):
    """``net`` with every drive event moved to a random time inside its own bin (same binned input)."""
    out = copy.deepcopy(net)
    out.drives["time"] = jitter_times(net.drives["time"], net.dt, duration, np.random.default_rng([seed, 1]))
    return out


def recorded_networks(folder: Path, seeds: list[int], duration: float, out: Path):
    """Networks recorded by ``generate_network_data.py``: their points and rebuilt networks.

    The NEURON result of each (its spikes before ``duration``) is written to ``out`` as
    ``neuron_{tag}.nc``, where :func:`write_table` reads it.
    """
    import xarray as xr

    from generate_network_data import recorded_network
    from mtlneuron.network.results import to_result

    points, nets = [], []
    for seed in seeds:
        found = sorted(folder.glob(f"rett_s{seed}_*.nc"))
        if not found:
            raise SystemExit(f"--recorded: no rett_s{seed}_*.nc in {folder}")
        with xr.open_dataset(found[0]) as ds:
            length = ds.sizes["time"] * float(ds.attrs["dt"])
            if duration > length:
                raise SystemExit(f"--duration {duration:g} ms is longer than the recording {found[0].name} "
                                 f"({length:g} ms)")
            p, net = recorded_network(ds)
            st = ds["spike_times"].values[np.argsort(ds["gid"].values)]
        spikes = [row[np.isfinite(row) & (row < duration)] for row in st]
        point = (round(p["exc_scale"], 3), round(p["p_connect"], 3), round(p["contact_scale"], 2), p["seed"])
        result = to_result(net, duration, spikes, None, None, "neuron",
                           {"wall_seconds": float("nan"), "recorded_in": found[0].name})
        with atomic_path(out / f"neuron_{_tag(*point)}.nc") as tmp:
            result.to_netcdf(tmp)
        points.append(point)
        nets.append(net)
    return points, nets


def run_missing_neuron(points, nets, duration: float, out: Path, workers: int, prefix: str = "neuron") -> None:
    """NEURON runs not yet on disk (``{prefix}_{tag}.nc``), ``workers`` at a time, each saved when done."""
    todo = [(pt, net) for pt, net in zip(points, nets) if not (out / f"{prefix}_{_tag(*pt)}.nc").exists()]
    print(f"NEURON ({prefix}): {len(points) - len(todo)} networks on disk, {len(todo)} to run", flush=True)
    for k in range(0, len(todo), workers):
        chunk = todo[k:k + workers]
        t0 = time.perf_counter()
        results = run_neuron_many([net for _, net in chunk], duration, n_workers=workers, progress=False)
        for (pt, _), r in zip(chunk, results):
            with atomic_path(out / f"{prefix}_{_tag(*pt)}.nc") as tmp:
                r.to_netcdf(tmp)
        print(f"  {[_tag(*pt) for pt, _ in chunk]} {time.perf_counter() - t0:.0f} s", flush=True)


def write_table(table: Path, points, out: Path, others) -> Path:
    """One row per network: NEURON (``neuron_{tag}.nc``) against the result in ``others`` (columns ``*_sur``)."""
    import xarray as xr

    rows = ["exc_scale,p_connect,contact_scale,seed,pre_nrn,pre_sur,resp_nrn,resp_sur,sync_nrn,sync_sur,stable_nrn,"
            "stable_sur,rate_r,neuron_s"]
    for (e, pc, c, seed), s in zip(points, others):
        r = xr.load_dataset(out / f"neuron_{_tag(e, pc, c, seed)}.nc")
        m_n, m_s = rett_metrics(r), rett_metrics(s)
        rate_r = float(np.corrcoef(r["rate"].values[:, 0], s["rate"].values[:, 0])[0, 1])
        rows.append(f"{e},{pc},{c},{seed},{int(m_n.pre_aps)},{int(m_s.pre_aps)},{int(m_n.response_aps)},"
                    f"{int(m_s.response_aps)},{float(m_n.max_sync_fraction):.3f},{float(m_s.max_sync_fraction):.3f},"
                    f"{bool(m_n.stable)},{bool(m_s.stable)},{rate_r:.3f},{float(r.attrs['wall_seconds']):.1f}")
        print(rows[-1], flush=True)
    table.write_text("\n".join(rows) + "\n")
    return table


def summarise(table: Path) -> str:
    """Per grid point (mean over seeds): both backends' APs, stable fractions, rate r; the map as markdown."""
    import pandas as pd

    df = pd.read_csv(table)
    g = df.groupby(["exc_scale", "p_connect", "contact_scale"])
    m = g.agg(n=("seed", "size"), pre_nrn=("pre_nrn", "mean"), pre_sur=("pre_sur", "mean"),
              resp_nrn=("resp_nrn", "mean"), resp_sur=("resp_sur", "mean"), stable_nrn=("stable_nrn", "mean"),
              stable_sur=("stable_sur", "mean"), rate_r=("rate_r", "mean")).round(2)
    m.to_csv(table.with_name(table.name.replace("table", "map")))
    m = m.reset_index()
    lines = ["| " + " | ".join(m.columns) + " |", "|" + "---|" * len(m.columns)]
    lines += ["| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in m.itertuples(index=False)]
    return "\n".join(lines)


PRE_APS_FLOOR = 15  # pre-stimulus APs: within 20 % or within this many APs (small counts)


def criteria(table: Path) -> str:
    """The per-network criteria: response APs within 20 %, pre-stimulus APs within 20 % or 15,
    the same stable verdict, rate r >= 0.8."""
    import pandas as pd

    df = pd.read_csv(table)

    def within(a: str, b: str, floor: float = 0.0) -> int:
        return int((abs(df[a] - df[b]) <= np.maximum(0.2 * df[a].clip(lower=1), floor)).sum())

    n = len(df)
    return (f"{n} networks: response APs within 20 %: {within('resp_nrn', 'resp_sur')}/{n}; pre-stimulus APs "
            f"within 20 % or {PRE_APS_FLOOR}: {within('pre_nrn', 'pre_sur', PRE_APS_FLOOR)}/{n} (within 20 %: "
            f"{within('pre_nrn', 'pre_sur')}/{n}); same stable verdict: "
            f"{(df['stable_nrn'] == df['stable_sur']).sum()}/{n}; rate r >= 0.8: {(df['rate_r'] >= 0.8).sum()}/{n} "
            f"(median {df['rate_r'].median():.2f}); NEURON unstable in {(~df['stable_nrn']).sum()}")


def figure(out: Path, path: Path, label: str = "") -> None:
    import matplotlib
    import pandas as pd
    import xarray as xr

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = [(1.0, 0.05, 1.0), (3.0, 0.2, 1.0), (1.0, 0.1, 14.4)]
    fig, axes = plt.subplots(len(show) + 1, 2, figsize=(11, 2.6 * (len(show) + 1)))
    for row, (e, pc, c) in enumerate(show):
        for col, backend in enumerate(("neuron", "surrogate")):
            ax = axes[row, col]
            f = out / f"{backend if backend == 'neuron' else 'surrogate' + label}_{_tag(e, pc, c, 0)}.nc"
            if not f.exists():
                ax.set_axis_off()
                continue
            st = xr.load_dataset(f)["spike_times"].values
            cell = np.broadcast_to(np.arange(st.shape[0])[:, None], st.shape)
            ax.plot(st.ravel(), cell.ravel(), "|", ms=2, color="k")
            ax.axvline(100.0, color="r", lw=0.8)
            ax.axvspan(0, 50, color="0.9", zorder=-1)
            ax.set(title=f"{'NEURON' if backend == 'neuron' else 'surrogate'}: exc_scale {e:g}, p {pc:g}"
                         f"{'' if c == 1 else f', contacts x{c:g}'}, seed 0",
                   xlim=(0, 300), ylabel="cell")
    df = pd.read_csv(out / f"table{label}.csv")
    df = df[df["contact_scale"] == 1.0].groupby(["exc_scale", "p_connect"]).mean(numeric_only=True)
    for col, key in enumerate(("pre_nrn", "pre_sur")):
        ax = axes[-1, col]
        grid = df[key].unstack("p_connect")
        im = ax.imshow(grid.values, origin="lower", cmap="viridis", aspect="auto",
                       vmin=0, vmax=max(df["pre_nrn"].max(), df["pre_sur"].max()))
        ax.set_xticks(range(grid.shape[1]), [f"{p:g}" for p in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [f"{e:g}" for e in grid.index])
        for (i, j), v in np.ndenumerate(grid.values):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w")
        ax.set(xlabel="p_connect", ylabel="exc_scale",
               title=f"pre-stimulus APs [50, 100) ms, seed mean: {'NEURON' if col == 0 else 'surrogate'}")
        fig.colorbar(im, ax=ax)
    axes[-2, 0].set_xlabel("time (ms)")
    axes[-2, 1].set_xlabel("time (ms)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


FACTORS = ("exc_scale", "p_connect", "contact_scale")


def findings(table: Path) -> str:
    """The paper's findings across scattered networks: least-squares effects of each factor, per backend.

    ``pre`` (pre-stimulus APs: instability), ``resp`` (response APs) and ``sync`` (the largest
    pre-stimulus synchrony) regressed on exc_scale, p_connect and contact_scale together, per
    backend; each effect is the slope times the factor's span in the table (the change from its
    lowest to its highest value, the others held). The paper: lower connectivity stabilises
    (``pre`` and ``sync`` effects of p_connect > 0), more excitation destabilises (of exc_scale
    > 0) and blunts the response (``resp`` effect of exc_scale < 0).
    """
    import pandas as pd

    df = pd.read_csv(table)
    if len(df) < len(FACTORS) + 2:
        return f"findings: {len(df)} networks are too few for {len(FACTORS)} slopes"
    x = np.column_stack([np.ones(len(df))] + [df[f] for f in FACTORS])
    span = {f: (df[f].min(), df[f].max()) for f in FACTORS}
    lines = ["| count | backend | " + " | ".join(f"{f} {lo:g} -> {hi:g}" for f, (lo, hi) in span.items()) + " |",
             "|---|---|" + "---|" * len(FACTORS)]
    for metric in ("pre", "resp", "sync"):
        for backend in ("nrn", "sur"):
            coef = np.linalg.lstsq(x, df[f"{metric}_{backend}"].to_numpy(float), rcond=None)[0]
            lines.append(f"| {metric} | {backend} | " + " | ".join(
                f"{c * (hi - lo):+.3g}" for c, (lo, hi) in zip(coef[1:], span.values())) + " |")
    return "\n".join(lines)


def score_recorded(a, out: Path) -> None:
    """``--recorded``: the held-out recorded networks, NEURON (from the files) against the surrogate."""
    from mtlneuron import Surrogate

    if not a.recorded_seeds:
        raise SystemExit("--recorded needs --recorded-seeds (held-out seeds, e.g. 309-311)")
    from generate_network_data import seed_ranges

    points, nets = recorded_networks(Path(a.recorded).expanduser(), seed_ranges(a.recorded_seeds), a.duration, out)
    models = None if a.model is None else {"l5pc": Surrogate.load(a.model)}
    t0 = time.perf_counter()
    sur = run_batched(nets, a.duration, surrogates=models, threads=1)
    print(f"surrogate: {len(nets)} recorded networks batched in {time.perf_counter() - t0:.1f} s\n")
    table = write_table(out / f"table_recorded{a.label}.csv", points, out, sur)
    print(criteria(table))
    print(findings(table))


def main() -> None:
    import xarray as xr

    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--report", action="store_true", help="no NEURON runs: report what is on disk")
    p.add_argument("--figure", default=None, help="write the rasters + maps figure here (png)")
    p.add_argument("--out", default=str(Path.home() / "mtl-work" / "validation"))
    p.add_argument("--model", default=None, help="l5pc surrogate checkpoint (default: the shipped one)")
    p.add_argument("--label", default="", help="suffix of the surrogate files and table (compare models)")
    p.add_argument("--jitter", nargs="*", default=[],
                   help="grid-point tags (e.g. e1_p0.05 e1_p0.1_c14.4): NEURON again with drive events jittered "
                        "inside their bins, scored against NEURON (table_jitter.csv)")
    p.add_argument("--only", nargs="+", default=[],
                   help="grid-point tags to run and score (e.g. e1_p0.1_c14.4); with --label, so that table.csv "
                        "stays whole")
    p.add_argument("--recorded", help="folder of generate_network_data.py runs: score held-out recorded networks "
                                      "(table_recorded{label}.csv) instead of the grid")
    p.add_argument("--recorded-seeds", nargs="+", default=[], help="their seeds, e.g. 309-311")
    a = p.parse_args()
    out = Path(a.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if a.recorded:
        return score_recorded(a, out)
    points = grid(a.seeds)
    if a.only:
        known = {_point_tag(pt) for pt in points}
        if not set(a.only) <= known:
            raise SystemExit(f"--only: unknown grid-point tags {sorted(set(a.only) - known)}; known: {sorted(known)}")
        points = [pt for pt in points if _point_tag(pt) in a.only]
    nets = [rett(n_cells=a.cells, p_connect=pc, exc_scale=e, seed=s, duration=a.duration,
                 contact_weight=CONTACT_WEIGHT_US * c) for e, pc, c, s in points]
    if a.jitter:
        point_tag = {i: _point_tag(pt) for i, pt in enumerate(points)}
        chosen = [i for tag in a.jitter for i in point_tag if point_tag[i] == tag]  # in the order asked
        if len(chosen) != len(a.jitter) * len(a.seeds):
            raise SystemExit(f"--jitter: unknown grid-point tags in {a.jitter}; known: "
                             f"{sorted(set(point_tag.values()))}")
        if not a.report:  # the plain NEURON runs of these networks first (usually on disk already)
            run_missing_neuron([points[i] for i in chosen], [nets[i] for i in chosen], a.duration, out, a.workers)
            run_missing_neuron([points[i] for i in chosen], [jittered(nets[i], a.duration, points[i][3])
                                                               for i in chosen], a.duration, out, a.workers,
                               prefix="neuron_jitter")
        have = [points[i] for i in chosen if (out / f"neuron_jitter_{_tag(*points[i])}.nc").exists()]
        table = write_table(out / "table_jitter.csv", have, out,
                            [xr.load_dataset(out / f"neuron_jitter_{_tag(*pt)}.nc") for pt in have])
        print("\nNEURON with drive events jittered inside their bins, against NEURON:\n" + summarise(table))
        print(criteria(table))
        return
    if not a.report:
        run_missing_neuron(points, nets, a.duration, out, a.workers)
    done = [i for i, pt in enumerate(points) if (out / f"neuron_{_tag(*pt)}.nc").exists()]
    t0 = time.perf_counter()
    from mtlneuron import Surrogate

    models = None if a.model is None else {"l5pc": Surrogate.load(a.model)}
    sur = run_batched([nets[i] for i in done], a.duration, surrogates=models, threads=1)
    t_sur = time.perf_counter() - t0
    for i, s in zip(done, sur):
        s.to_netcdf(out / f"surrogate{a.label}_{_tag(*points[i])}.nc")
    table = write_table(out / f"table{a.label}.csv", [points[i] for i in done], out, sur)
    print(f"surrogate: {len(done)} networks batched in {t_sur:.1f} s\n")
    print(summarise(table))
    print(criteria(table))
    if a.figure:
        figure(out, Path(a.figure), a.label)


if __name__ == "__main__":
    main()
