"""Command line: ``mtlneuron demo | simulate | dataset | cells | train | evaluate | rett | sweep | hnn``.

Every subcommand shows its defaults and choices in ``--help``; every error
names the flag it is about (``mtlneuron rett --p-connect 2`` -> ``argument
--p-connect: ...``). ``mtlneuron train`` takes the options of
``python -m mtlneuron.train``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mtlneuron.conventions import ParameterError


def _summary(ds, seconds: float) -> str:
    st = ds["spike_times"].values
    n = int(np.isfinite(st).sum())
    dur = ds.attrs["duration"]
    soma = ds["v"].sel(segment=ds["segment"].values[ds["region"].values == "soma"][0])
    p = ds["dipole"].values
    return (f"cell {ds.attrs['cell']}: {ds.sizes['segment']} segments, {ds.sizes['site']} sites, "
            f"{dur:.0f} ms at dt {ds.attrs['dt']} ms\n"
            f"  spikes: {n} ({n / dur * 1000:.1f} Hz); soma v {float(soma.min()):.1f} .. {float(soma.max()):.1f} mV\n"
            f"  dipole peak |p|: {np.abs(p).max() * 1e-6:.3g} nA m (= {np.abs(p).max():.3g} nA um)\n"
            f"  NEURON wall time incl. worker start: {seconds:.2f} s")


def _cmd_simulate(args) -> int:
    import mtlneuron as mtl

    out = Path(args.out)
    from mtlneuron import _util

    _util.check_output_path(out, args.overwrite, name="--out", flag="--overwrite")
    if args.plot:  # checked before the simulation: a bad plot path must not leave the .nc behind
        _util.check_output_path(args.plot, overwrite=True, name="--plot")
    cell = mtl.cells.get(args.cell)
    drive = mtl.inputs.poisson(cell, args.duration, seed=args.seed)
    start = time.perf_counter()
    ds = mtl.simulate(cell, drive, dt=args.dt)
    seconds = time.perf_counter() - start
    with _util.atomic_path(out) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    if args.plot:
        mtl.simulate.plot(ds, args.plot)
    print(_summary(ds, seconds))
    print(f"  wrote {out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _surrogate_vs_neuron(out_dir: Path, duration: float, seed: int) -> int:
    """Drive the pretrained L5PC surrogate and NEURON with the same fresh drive."""
    import xarray as xr

    import mtlneuron as mtl

    cell = mtl.cells.get("l5pc")
    model = mtl.Surrogate.pretrained("l5pc", cell)
    drive = mtl.inputs.poisson(cell, duration, seed=seed)
    print(f"mtlneuron demo: hnn-core L5 pyramidal cell, {duration:.0f} ms of a fresh Poisson drive "
          f"(seed {seed}) on its 200 sites, in NEURON and in the pretrained surrogate")
    cell.sites  # start the NEURON worker and build the cell outside the timing
    start = time.perf_counter()
    truth = mtl.simulate(cell, drive)
    t_neuron = time.perf_counter() - start
    model.predict(mtl.inputs.empty(cell, 10.0))  # warm-up
    start = time.perf_counter()
    pred = model.predict(drive)
    t_model = time.perf_counter() - start
    score = mtl.evaluate(pred, truth)
    f1 = float(score["spike_f1"].sel(window=5.0))
    print(f"  NEURON {t_neuron:.2f} s, surrogate {t_model:.3f} s: {t_neuron / t_model:.0f}x faster")
    print(f"  soma (clipped v): r {float(score['soma_r_clipped']):.3f}, RMSE {float(score['soma_rmse_clipped']):.2f} mV; "
          f"median segment r {float(np.nanmedian(score['r_clipped'])):.3f}")
    print(f"  soma variance explained: {float(score['soma_ve_clipped']):.3f} clipped, "
          f"{float(score['soma_ve_raw']):.3f} raw" + (" (predicted spikes carry the learned AP waveform)"
                                                       if model.spike_waveform.shape[0] else ""))
    print(f"  spikes: {int(score['n_spikes_true'])} in NEURON, {int(score['n_spikes_pred'])} predicted, "
          f"F1 (+-5 ms) {f1:.2f}")
    print(f"  dipole r (z): {float(score['dipole_r'].sel(axis='z')):.3f} after the 100-Hz low-pass "
          f"(EEG band), {float(score['dipole_r_raw'].sel(axis='z')):.3f} raw")
    renamed = pred.rename({k: f"{k}_pred" for k in pred.data_vars})
    if "spike" in renamed.dims:
        renamed = renamed.rename({"spike": "spike_pred"})
    both = xr.merge([truth, renamed[[f"{k}_pred" for k in pred.data_vars]]], compat="override", join="left")
    from mtlneuron import _util

    with _util.atomic_path(out_dir / "demo.nc") as tmp:
        both.to_netcdf(tmp, engine="netcdf4")
    mtl.evaluate.plot(pred, truth, out_dir / "demo.png")
    print(f"  wrote {out_dir / 'demo.nc'} and {out_dir / 'demo.png'}")
    return 0


def _cmd_demo(args) -> int:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    try:
        return _surrogate_vs_neuron(out_dir, args.duration, seed)
    except FileNotFoundError as err:  # no pretrained l5pc in this install
        print(f"(no surrogate comparison: {err})")
    ns = argparse.Namespace(cell="l5pc", duration=args.duration, seed=seed, dt=0.5,
                            out=str(out_dir / "demo.nc"), plot=str(out_dir / "demo.png"), overwrite=True)
    print(f"mtlneuron demo: NEURON simulation of the hnn-core L5 pyramidal cell, {args.duration:.0f} ms "
          f"of Poisson drive (seed {seed}) on its 200 synapse sites")
    return _cmd_simulate(ns)


def _cmd_dataset(args) -> int:
    import mtlneuron as mtl
    from mtlneuron import _util

    _util.check_output_path(args.out, args.overwrite, name="--out", flag="--overwrite")  # before the cell is built
    cell = mtl.cells.get(args.cell)
    start = time.perf_counter()
    path = mtl.datasets.generate(cell, args.n_trials, args.duration, args.out, seed=args.seed, dt=args.dt,
                                 n_workers=args.workers, overwrite=args.overwrite)
    print(f"wrote {path}: {args.n_trials} trials x {args.duration:.0f} ms in {time.perf_counter() - start:.1f} s")
    return 0


def _cmd_cells(args) -> int:
    import mtlneuron as mtl

    for name in mtl.cells.available():
        cell = mtl.cells.get(name)
        print(f"{name:11s} {cell.n_segments:4d} segments {cell.n_sites:4d} sites  {cell.description}")
    return 0


def _cmd_evaluate(args) -> int:
    """A surrogate on held-out NEURON trials: the metrics table, optionally a netCDF of it and a figure."""
    import xarray as xr

    import mtlneuron as mtl
    from mtlneuron import _util

    if args.out:
        _util.check_output_path(args.out, args.overwrite, name="--out", flag="--overwrite")
    if args.plot:
        _util.check_output_path(args.plot, overwrite=True, name="--plot")
    model = _load_model(args.model)
    if not Path(args.data).is_file():
        raise ParameterError("data", f"--data {args.data!r} does not exist")
    with xr.open_dataset(args.data, engine="netcdf4") as ds:
        truth = ds.load()
    if "trial" in truth.dims and args.trials:
        truth = truth.isel(trial=_trials(args.trials, truth.sizes["trial"]))
    try:
        pred = model.predict(truth)
    except ValueError as err:
        raise ParameterError("data", f"--data {args.data!r} does not fit --model {args.model!r}: {err}") from None
    score = mtl.evaluate(pred, truth)
    n_trials = truth.sizes.get("trial", 1)
    print(f"{model.cell_name} surrogate ({model.n_parameters} parameters) on {n_trials} trial(s) x "
          f"{truth.sizes['time'] * float(truth.attrs.get('dt', model.dt)):.0f} ms of {args.data}")
    print(metrics_table(score))
    if args.out:
        with _util.atomic_path(args.out) as tmp:
            score.to_netcdf(tmp, engine="netcdf4")
        print(f"wrote {args.out}")
    if args.plot:
        mtl.evaluate.plot(pred, truth, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _load_model(name: str):
    """``--model``: a checkpoint file, or the name of a pretrained surrogate."""
    from mtlneuron.surrogate import Surrogate

    if Path(name).is_file():
        return Surrogate.load(name)
    try:
        return Surrogate.pretrained(name)
    except (FileNotFoundError, ValueError):
        raise ParameterError("model", f"--model {name!r} is neither a checkpoint file nor a pretrained "
                             f"surrogate (data/<name>.pt)") from None


def _trials(text: str, n: int) -> list[int]:
    """``--trials 0,3,5`` as indices, each checked against the file's ``n`` trials."""
    try:
        idx = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ParameterError("trials", f"--trials must be a comma list of trial indices, got {text!r}") from None
    bad = [i for i in idx if not 0 <= i < n]
    if bad or not idx:
        raise ParameterError("trials", f"--trials {text!r}: the file has trials 0..{n - 1}")
    return idx


def metrics_table(score) -> str:
    """The headline figures of ``mtl.evaluate`` as aligned text lines."""
    rows = [("soma r (clipped v)", "soma_r_clipped", None), ("soma RMSE (clipped v, mV)", "soma_rmse_clipped", None),
            ("soma variance explained (clipped)", "soma_ve_clipped", None),
            ("soma variance explained (raw)", "soma_ve_raw", None)]
    lines = [f"  {label:38s} {float(score[key]):8.3f}" for label, key, _ in rows if key in score]
    if "r_clipped" in score:
        lines.append(f"  {'median segment r (clipped v)':38s} {float(np.nanmedian(score['r_clipped'])):8.3f}")
    for w in score["window"].values if "window" in score.coords else []:
        sel = {"window": w}
        lines.append(f"  {f'spike F1 / precision / recall (+-{w:g} ms)':38s} "
                     + " / ".join(f"{float(score[k].sel(sel)):.3f}" for k in ("spike_f1", "spike_precision",
                                                                               "spike_recall")))
    if "n_spikes_true" in score:
        lines.append(f"  {'spikes: NEURON / predicted':38s} {int(score['n_spikes_true'])} / "
                     f"{int(score['n_spikes_pred'])}")
    if "dipole_r" in score:
        lines.append(f"  {'dipole r (100-Hz low-pass) x, y, z':38s} "
                     + ", ".join(f"{float(v):.3f}" for v in score["dipole_r"].values))
    return "\n".join(lines)


def _cmd_rett(args) -> int:
    """One Rett network on either backend: metrics printed, the result to netCDF, optionally a figure."""
    import mtlneuron as mtl
    from mtlneuron import _util

    if args.out:
        _util.check_output_path(args.out, args.overwrite, name="--out", flag="--overwrite")
    if args.plot:
        _util.check_output_path(args.plot, overwrite=True, name="--plot")
    net = mtl.network.rett(n_cells=args.n_cells, p_connect=args.p_connect, exc_scale=args.exc_scale,
                           inh_scale=args.inh_scale, seed=args.seed, duration=args.duration,
                           stim_time=args.stim_time, contact_weight=args.contact_weight, max_memory=args.max_memory)
    kwargs = {"progress": not args.no_progress}
    if args.model:
        kwargs["surrogates"] = {"l5pc": _load_model(args.model)}
    if args.backend == "neuron":
        kwargs = {}
    start = time.perf_counter()
    res = net.run(args.duration, backend=args.backend, max_memory=args.max_memory, **kwargs)
    seconds = time.perf_counter() - start
    m = mtl.network.rett_metrics(res)
    print(f"rett network: {net.n_cells} cells, {net.n_contacts} contacts, {args.duration:g} ms on the "
          f"{args.backend} backend in {seconds:.1f} s (seed {args.seed})")
    for name in ("onset_aps", "pre_aps", "response_aps", "responding_fraction", "max_sync_fraction", "stable"):
        print(f"  {name:20s} {m[name].values}")
    if args.out:
        with _util.atomic_path(args.out) as tmp:
            res.to_netcdf(tmp, engine="netcdf4")
        print(f"wrote {args.out}")
    if args.plot:
        from mtlneuron.network.results import plot

        plot(res, args.plot)
        print(f"wrote {args.plot}")
    return 0


SWEEP_FILE_KEYS = ("grid", "seeds", "duration", "backend", "batch_size", "fixed")


def _read_sweep_file(path: str) -> dict:
    """``--config``: a JSON (or, with PyYAML installed, YAML) mapping of :data:`SWEEP_FILE_KEYS`."""
    import json

    file = Path(path)
    if not file.is_file():
        raise ParameterError("config", f"--config {path!r} does not exist")
    text = file.read_text()
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ParameterError("config", f"--config {path!r}: reading YAML needs PyYAML; write the file as "
                                 f"JSON instead") from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ParameterError("config", f"--config {path!r} is not valid YAML: {err}") from None
    else:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as err:
            raise ParameterError("config", f"--config {path!r} is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise ParameterError("config", f"--config {path!r} must hold a mapping with keys {list(SWEEP_FILE_KEYS)}")
    unknown = sorted(set(spec) - set(SWEEP_FILE_KEYS))
    if unknown:
        raise ParameterError("config", f"--config {path!r}: unknown key(s) {unknown}; known: {list(SWEEP_FILE_KEYS)}")
    return spec


def _grid_arg(items: list[str]) -> dict:
    """``--grid exc_scale=0.75,1.0`` (repeatable) as a dict of float lists."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        try:
            grid[name.strip()] = [float(v) for v in values.split(",") if v.strip()] if sep else None
        except ValueError:
            grid[name.strip()] = None
        if not sep or not name.strip() or grid[name.strip()] is None:
            raise ParameterError("grid", f"--grid must look like name=v1,v2,... (numbers), got {item!r}")
    return grid


def _seeds_arg(text: str) -> list[int]:
    """``--seeds 0,1,2`` or ``--seeds 0-9`` as a list of ints."""
    try:
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ParameterError("seeds", f"--seeds must look like 0,1,2 or 0-9, got {text!r}") from None


def _cmd_sweep(args) -> int:
    """A Rett parameter map: the grid and seeds from flags or --config, metrics over the grid to netCDF."""
    import mtlneuron as mtl
    from mtlneuron import _util

    _util.check_output_path(args.out, args.overwrite, name="--out", flag="--overwrite")
    spec = _read_sweep_file(args.config) if args.config else {}
    grid = {**spec.get("grid", {}), **_grid_arg(args.grid or [])}
    seeds = _seeds_arg(args.seeds) if args.seeds is not None else spec.get("seeds", [0])
    duration = args.duration if args.duration is not None else spec.get("duration", 300.0)
    backend = args.backend or spec.get("backend", "surrogate")
    batch_size = args.batch_size if args.batch_size is not None else spec.get("batch_size", 10)
    if backend not in BACKEND_CHOICES:
        raise ParameterError("backend", f"backend {backend!r} (from --config) must be one of {BACKEND_CHOICES}")
    fixed = dict(spec.get("fixed", {}))
    for name in ("n_cells", "stim_time"):
        if getattr(args, name) is not None:
            fixed[name] = getattr(args, name)
    start = time.perf_counter()
    ds = mtl.network.sweep(mtl.network.rett, grid, seeds=seeds, duration=duration, backend=backend,
                           batch_size=batch_size, progress=not args.no_progress, **fixed)
    with _util.atomic_path(args.out) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    dims = ", ".join(f"{d} {n}" for d, n in ds["pre_aps"].sizes.items())
    print(f"sweep: {ds.attrs['n_runs']} networks ({dims}) on the {backend} backend in "
          f"{time.perf_counter() - start:.1f} s; stable in {float(ds['stable'].mean()):.0%}; wrote {args.out}")
    return 0


BACKEND_CHOICES = ["surrogate", "neuron"]


def _cell_name(text: str) -> str:
    """``--cell``: a built-in cell name (an argparse type: the error names the flag)."""
    import mtlneuron as mtl

    if text not in mtl.cells.available():
        raise argparse.ArgumentTypeError(f"unknown cell name {text!r}; choose one of {mtl.cells.available()}")
    return text


def _number(kind, low: float, strict: bool = True):
    """An argparse type: a number of ``kind`` > ``low`` (``>= low`` unless ``strict``), finite."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
        if not np.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT, POSITIVE, NON_NEGATIVE_INT = _number(int, 0), _number(float, 0.0), _number(int, 0, strict=False)


def _add_rett_arguments(p: argparse.ArgumentParser) -> None:
    from mtlneuron.cells import RETT_CONTACT_WEIGHT_US

    p.add_argument("--n-cells", type=int, default=150, help="L5 pyramidal cells")
    p.add_argument("--p-connect", type=float, default=0.10, help="directed connection probability, in [0, 2/3]")
    p.add_argument("--exc-scale", type=float, default=1.0, help="scale of excitatory background and contacts")
    p.add_argument("--inh-scale", type=float, default=1.0, help="scale of inhibitory background")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--duration", type=float, default=300.0, help="ms")
    p.add_argument("--stim-time", type=float, default=100.0, help="ms")
    p.add_argument("--contact-weight", type=float, default=RETT_CONTACT_WEIGHT_US,
                   help="uS per contact (calibrated ~1 mV unitary EPSP; the paper's code: x14.4)")
    p.add_argument("--max-memory", type=float, default=None,
                   help="bytes the network and the run may need (default: mtlneuron.conventions.MAX_MEMORY_BYTES)")


HNN_BACKENDS = ["surrogate", "hnn", "both"]
HNN_DRIVES = ["erp", "poisson"]
HNN_CELLS = ("basket", "l23pc", "l5pc_hnn")  # the cells of hnn-core's column (mtlneuron.nrn.hnn)
POISSON_SEED = 2  # hnn-core's default event_seed


def _hnn_network(mesh: int, drives: str, tstop: float):
    """hnn-core's column (``jones_2009_model``) on a mesh x mesh grid with ``drives``."""
    from mtlneuron.network import jones_2009_column

    return jones_2009_column(mesh, drives, tstop, event_seed=POISSON_SEED)


def _hnn_surrogates(folder: str | None) -> dict | None:
    """``--surrogates DIR``: DIR/basket.pt, l23pc.pt, l5pc_hnn.pt loaded (None: the pretrained ones)."""
    if folder is None:
        return None
    from mtlneuron.surrogate import Surrogate

    out = {}
    for name in HNN_CELLS:
        path = Path(folder) / f"{name}.pt"
        if not path.is_file():
            raise ParameterError("surrogates", f"--surrogates {folder!r} holds no {name}.pt (it needs "
                                 f"{', '.join(c + '.pt' for c in HNN_CELLS)})")
        try:
            out[name] = Surrogate.load(path)
        except Exception as err:  # a corrupt or foreign file
            raise ParameterError("surrogates", f"--surrogates: {path} is not a surrogate checkpoint: {err}") from None
    return out


def _stack_runs(runs: dict):
    """Runs of one column (label -> ``col.run`` result) as one Dataset with a ``backend`` dim."""
    import xarray as xr

    width = max(ds.sizes["spike"] for ds in runs.values())
    padded = [ds.pad(spike=(0, width - ds.sizes["spike"])) if ds.sizes["spike"] < width else ds
              for ds in runs.values()]
    out = xr.concat(padded, dim="backend", data_vars="all", coords="minimal", compat="override",
                    combine_attrs="drop_conflicts")
    out = out.assign_coords(backend=list(runs))
    per_run = ("backend", "wall_seconds", "hnn_seconds", "hnn_dt", "device", "surrogates")
    for key in per_run:
        out.attrs.pop(key, None)
    out.attrs["backends"] = ", ".join(runs)
    for label, ds in runs.items():
        for key in per_run[1:]:
            if key in ds.attrs:
                out.attrs[f"{label}_{key}"] = ds.attrs[key]
    return out


def _plot_hnn(runs: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtlneuron import _util
    from mtlneuron.network.hnn_model import smooth

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, ds in runs.items():
        dt = float(ds.attrs["dt"])
        agg = smooth(ds["dipole"].values, 30.0, dt)[:, list(ds["layer"].values).index("agg")]
        ax.plot(ds["time"].values, agg, label=label)
    ax.set(xlabel="time (ms)", ylabel="dipole (nA m)", title=title)
    ax.legend()
    fig.tight_layout()
    with _util.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(path).suffix[1:].lower())
    plt.close(fig)


def _print_hnn_run(label: str, ds) -> None:
    counts = ", ".join(f"{p} {int(n)}" for p, n in zip(ds["population_name"].values, ds["spike_count"].values))
    agg = ds["dipole"].sel(layer="agg").values
    print(f"  {label:20s} {float(ds.attrs['wall_seconds']):7.1f} s; spikes: {counts}; "
          f"agg dipole {agg.min():.3g} .. {agg.max():.3g} nA m")


def _cmd_hnn(args) -> int:
    """hnn-core's column on the surrogates and/or in hnn-core; optionally its connectivity optimised."""
    import mtlneuron as mtl
    from mtlneuron import _util
    from mtlneuron.conventions import DEFAULT_DT, n_bins

    for name in ("out", "plot"):
        if getattr(args, name):
            _util.check_output_path(getattr(args, name), args.overwrite, name=f"--{name}", flag="--overwrite")
    if args.out and args.plot and Path(args.out).resolve() == Path(args.plot).resolve():
        raise ParameterError("plot", f"--plot {args.plot!r} is the --out file")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        formats = plt.figure().canvas.get_supported_filetypes()
        plt.close("all")
        if Path(args.plot).suffix[1:].lower() not in formats:
            raise ParameterError("plot", f"--plot {args.plot!r}: the suffix must name an image format "
                                 f"({', '.join('.' + f for f in sorted(formats))})")
    try:
        n_bins(args.tstop, DEFAULT_DT)
    except ValueError as err:
        raise ParameterError("tstop", f"--tstop {args.tstop:g}: {err}") from None
    if args.steps is not None and not args.optimize:
        raise ParameterError("steps", "--steps is the number of --optimize steps; give --optimize FMIN FMAX too")
    loss = None
    if args.optimize:
        fmin, fmax = args.optimize
        try:
            loss = mtl.optimize.band_power(fmin, fmax)
            loss.check(DEFAULT_DT, n_bins(args.tstop, DEFAULT_DT), None)
        except ValueError as err:
            raise ParameterError("optimize", f"--optimize {fmin:g} {fmax:g}: {err}") from None
    surrogates = _hnn_surrogates(args.surrogates)
    progress = not args.no_progress
    sur_kwargs = {"surrogates": surrogates, "progress": progress}

    net = _hnn_network(args.mesh, args.drives, args.tstop)
    col = mtl.network.from_hnn(net, tstop=args.tstop)
    print(f"hnn column ({args.drives} drives, mesh {args.mesh} x {args.mesh}): {col.n_cells} cells, "
          f"{len(col.entries)} connectivity entries, {col.n_contacts} contacts, {col.drives['time'].size} drive "
          f"events; {args.tstop:g} ms on {args.backend}")
    backends = ["surrogate", "hnn"] if args.backend == "both" else [args.backend]
    runs = {}
    for backend in backends:
        runs[backend] = col.run(args.tstop, backend=backend, **(sur_kwargs if backend == "surrogate" else {}))
        _print_hnn_run(backend, runs[backend])
    if args.backend == "both":
        _print_comparison(mtl.network.compare(runs["surrogate"], runs["hnn"], smooth_ms=30.0))
    result = None
    if loss is not None:
        from mtlneuron.optimize.connectivity import band_power_db

        params = [k for k, e in enumerate(col.entries) if not e["is_drive"]]
        result = mtl.optimize.connectivity(col, loss, params=params, steps=args.steps if args.steps is not None
                                           else 20, surrogates=surrogates, progress=progress)
        print(f"optimised {len(params)} cell-to-cell gains for {fmin:g}-{fmax:g} Hz power: {result!r}")
        for name, gain in result.params.items():
            print(f"  {name:45s} gain {gain:.3f}")
        better = mtl.network.from_hnn(result.to_hnn(net), tstop=args.tstop)
        for backend in backends:
            label = f"{backend}_optimised"
            runs[label] = better.run(args.tstop, backend=backend, **(sur_kwargs if backend == "surrogate" else {}))
            _print_hnn_run(label, runs[label])
        for backend in backends:
            before, after = (band_power_db(runs[k]["dipole"].sel(layer="agg").values, col.dt)
                             for k in (backend, f"{backend}_optimised"))
            where = "in hnn-core" if backend == "hnn" else "on the surrogates"
            print(f"  {fmin:g}-{fmax:g} Hz agg dipole power {where}: {before:.2f} -> {after:.2f} dB "
                  f"({after - before:+.2f} dB)")
    if args.out:
        ds = _stack_runs(runs)
        ds.attrs.update({"drives": args.drives, "mesh": args.mesh})
        if result is not None:
            ds = ds.assign(gain=("entry", result.gains, {"units": "1", "long_name": "optimised gain of each "
                                                          "connectivity entry's A_weight"}))
            ds = ds.assign_coords(entry_name=("entry", col.entry_names()))
            ds.attrs["optimize_band_hz"] = f"{fmin:g} {fmax:g}"
            ds.attrs["optimize_steps"] = int(result.history.sizes["step"] - 1)
        with _util.atomic_path(args.out) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4")
        print(f"wrote {args.out}")
    if args.plot:
        _plot_hnn(runs, args.plot, f"hnn column, {args.drives} drives, mesh {args.mesh}: agg dipole, 30-ms smoothing")
        print(f"wrote {args.plot}")
    return 0


def _print_comparison(cmp) -> None:
    r = ", ".join(f"{layer} {float(v):.3f}" for layer, v in zip(cmp["layer"].values, cmp["dipole_r"].values))
    print(f"  surrogate vs hnn-core: dipole r (30-ms smoothing) {r}")
    print(f"  {'spike counts':20s} {'surrogate':>10s} {'hnn':>8s}  {cmp.attrs['count_rule']}")
    for pop in cmp["population_name"].values:
        sel = cmp["spike_count"].sel(population_name=pop)
        ok = "ok" if bool(cmp["count_ok"].sel(population_name=pop)) else "differs"
        print(f"  {pop:20s} {int(sel.sel(backend='surrogate')):10d} {int(sel.sel(backend='hnn')):8d}  {ok}")


def build_parser() -> argparse.ArgumentParser:
    from mtlneuron._util import HelpFormatter

    parser = argparse.ArgumentParser(prog="mtlneuron", description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    parser.set_defaults(commands=sub.choices)
    fmt = {"formatter_class": HelpFormatter}

    demo = sub.add_parser("demo", help="the L5PC for 1 s in NEURON (and the pretrained surrogate), plotted", **fmt)
    demo.add_argument("--out-dir", default="out")
    demo.add_argument("--duration", type=POSITIVE, default=1000.0, help="ms")
    demo.add_argument("--seed", type=NON_NEGATIVE_INT, default=None, help="drive seed (default: a fresh one)")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("simulate", help="one NEURON trial under a Poisson drive, to netCDF", **fmt)
    sim.add_argument("--cell", required=True, type=_cell_name, help="a built-in cell (mtlneuron cells)")
    sim.add_argument("--duration", type=POSITIVE, default=1000.0, help="ms")
    sim.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    sim.add_argument("--dt", type=POSITIVE, default=0.5, help="model grid, ms")
    sim.add_argument("--out", required=True)
    sim.add_argument("--plot", default=None, help="also write a PNG overview")
    sim.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    sim.set_defaults(func=_cmd_simulate)

    data = sub.add_parser("dataset", help="many trials in parallel, to one netCDF file", **fmt)
    data.add_argument("--cell", required=True, type=_cell_name, help="a built-in cell (mtlneuron cells)")
    data.add_argument("--n-trials", type=POSITIVE_INT, required=True)
    data.add_argument("--duration", type=POSITIVE, default=1000.0, help="ms per trial")
    data.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    data.add_argument("--dt", type=POSITIVE, default=0.5, help="model grid, ms")
    data.add_argument("--workers", type=POSITIVE_INT, default=None, help="processes (default: all cores)")
    data.add_argument("--out", required=True)
    data.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    data.set_defaults(func=_cmd_dataset)

    cells = sub.add_parser("cells", help="list the built-in cells", **fmt)
    cells.set_defaults(func=_cmd_cells)

    sub.add_parser("train", help="train a surrogate on dataset files (mtlneuron train --help: the options of "
                                 "python -m mtlneuron.train)", add_help=False)

    ev = sub.add_parser("evaluate", help="a surrogate against held-out NEURON trials: metrics table (and plot)",
                        **fmt)
    ev.add_argument("--model", required=True, help="checkpoint file, or a pretrained name (point, l5pc, ...)")
    ev.add_argument("--data", required=True, help="netCDF file of held-out trials (mtlneuron dataset / simulate)")
    ev.add_argument("--trials", help="comma list of trial indices (default: all)")
    ev.add_argument("--out", help="also write the metrics to this netCDF file")
    ev.add_argument("--plot", help="also write a figure of the first trial (PNG)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ev.set_defaults(func=_cmd_evaluate)

    rt = sub.add_parser("rett", help="one Rett L5 microcircuit on the surrogate or NEURON backend", **fmt)
    _add_rett_arguments(rt)
    rt.add_argument("--backend", choices=BACKEND_CHOICES, default="surrogate")
    rt.add_argument("--model", help="l5pc surrogate checkpoint (default: the pretrained l5pc)")
    rt.add_argument("--out", help="write the result (spike times, v_soma, dipole, rate) to this netCDF file")
    rt.add_argument("--plot", help="write a raster and rate figure (PNG)")
    rt.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    rt.add_argument("--no-progress", action="store_true")
    rt.set_defaults(func=_cmd_rett)

    sw = sub.add_parser("sweep", help="a grid of Rett networks x seeds: metrics over the grid, to netCDF", **fmt)
    sw.add_argument("--config", help="JSON or YAML file with keys grid, seeds, duration, backend, batch_size, "
                                     "fixed (flags given here override it)")
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                    help="a rett parameter and its values, repeatable (e.g. --grid exc_scale=0.75,1.25)")
    sw.add_argument("--seeds", help="e.g. 0,1,2 or 0-9 (default: 0, or the file's)")
    sw.add_argument("--n-cells", type=POSITIVE_INT, help="cells per network (default: rett's 150, or the file's)")
    sw.add_argument("--duration", type=POSITIVE, help="ms (default: 300, or the file's)")
    sw.add_argument("--stim-time", type=float, help="ms (default: rett's 100, or the file's fixed stim_time)")
    sw.add_argument("--backend", choices=BACKEND_CHOICES, help="default: surrogate, or the file's")
    sw.add_argument("--batch-size", type=POSITIVE_INT, help="surrogate networks per batched run (default 10)")
    sw.add_argument("--out", required=True, help="netCDF file of the metrics over the grid")
    sw.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    sw.add_argument("--no-progress", action="store_true")
    sw.set_defaults(func=_cmd_sweep)
    hn = sub.add_parser("hnn", help="hnn-core's column (jones_2009_model) on the surrogates and/or in hnn-core; "
                                    "optionally its connectivity optimised for a band's dipole power", **fmt,
                        description="""hnn-core's column: jones_2009_model(mesh_shape=(MESH, MESH)) with --drives
(erp: add_erp_drives_to_jones_model; poisson: proximal and distal Poisson drives, 30 Hz,
1e-3 uS AMPA, event seeds 2 and 3), read by mtlneuron.network.from_hnn and run for --tstop ms.
--backend both prints the surrogate's agreement with hnn-core (dipole r after 30-ms smoothing,
spike counts per population).

--optimize FMIN FMAX: gradient descent on the gains of every cell-to-cell connectivity entry
(mtlneuron.optimize.connectivity on the surrogates) to raise the agg dipole's FMIN-FMAX Hz power;
the optimised network is then run on the chosen backend(s) again (hnn: in hnn-core) and the
band power before -> after is printed for each.

--out: one netCDF file with a 'backend' dim labelling the runs (surrogate, hnn; with --optimize
also surrogate_optimised, hnn_optimised): dipole (backend, time, layer) nA m, spike_times
(backend, cell, spike) ms, spike_count (backend, population_name); with --optimize also gain
(entry). --plot: the agg dipole of each run after 30-ms smoothing.""")
    hn.add_argument("--mesh", type=POSITIVE_INT, default=10, help="pyramidal cells per side of each layer's grid")
    hn.add_argument("--drives", choices=HNN_DRIVES, default="erp")
    hn.add_argument("--tstop", type=POSITIVE, default=170.0, help="ms, a multiple of the 0.5-ms model grid")
    hn.add_argument("--backend", choices=HNN_BACKENDS, default="surrogate",
                    help="surrogate: the batched surrogates; hnn: hnn-core (NEURON); both: both, compared")
    hn.add_argument("--surrogates", metavar="DIR", help="folder with basket.pt, l23pc.pt, l5pc_hnn.pt "
                                                        "(default: the pretrained ones in data/)")
    hn.add_argument("--optimize", nargs=2, type=POSITIVE, metavar=("FMIN", "FMAX"),
                    help="optimise the cell-to-cell gains for the agg dipole's power in FMIN-FMAX Hz")
    hn.add_argument("--steps", type=NON_NEGATIVE_INT, help="Adam steps of --optimize (default: 20)")
    hn.add_argument("--out", help="write the runs to this netCDF file (see above)")
    hn.add_argument("--plot", help="write the 30-ms smoothed agg dipole of each run (PNG, PDF, SVG, ...)")
    hn.add_argument("--overwrite", action="store_true", help="replace an existing --out or --plot")
    hn.add_argument("--no-progress", action="store_true")
    hn.set_defaults(func=_cmd_hnn)
    return parser


ERRORS = (ValueError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError, RuntimeError)


def flag_message(parser: argparse.ArgumentParser, command: str, err: Exception) -> str:
    """The error line of ``command``: a :class:`ParameterError` names the flag of its parameter."""
    message = str(err)
    if isinstance(err, ParameterError):
        sub = parser.get_default("commands")[command]
        flags = {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings}
        flag = flags.get(err.parameter, err.parameter if err.parameter.startswith("--") else flags.get("config"))
        if flag and flag not in message:
            message = f"argument {flag}: {message}"
    return f"mtlneuron {command}: error: {message}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # the training command line, as it is (its options, its checks)
        from mtlneuron.training.cli import main as train_main

        return train_main(argv[1:], prog="mtlneuron train")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ERRORS as err:
        print(flag_message(parser, args.command, err), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
