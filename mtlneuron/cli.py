"""Command line: ``mtlneuron demo | simulate | dataset | cells``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


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

    _util.check_output_path(out, args.overwrite)
    if args.plot:  # checked before the simulation: a bad plot path must not leave the .nc behind
        _util.check_output_path(args.plot, overwrite=True)
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

    _util.check_output_path(args.out, args.overwrite)  # before the cell is built
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlneuron", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the L5PC for 1 s in NEURON (and the pretrained surrogate), plotted")
    demo.add_argument("--out-dir", default="out")
    demo.add_argument("--duration", type=float, default=1000.0, help="ms")
    demo.add_argument("--seed", type=int, default=None, help="drive seed (default: a fresh one)")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("simulate", help="one NEURON trial under a Poisson drive, to netCDF")
    sim.add_argument("--cell", required=True)
    sim.add_argument("--duration", type=float, default=1000.0, help="ms")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--dt", type=float, default=0.5, help="model grid, ms")
    sim.add_argument("--out", required=True)
    sim.add_argument("--plot", default=None, help="also write a PNG overview")
    sim.add_argument("--overwrite", action="store_true")
    sim.set_defaults(func=_cmd_simulate)

    data = sub.add_parser("dataset", help="many trials in parallel, to one netCDF file")
    data.add_argument("--cell", required=True)
    data.add_argument("--n-trials", type=int, required=True)
    data.add_argument("--duration", type=float, default=1000.0, help="ms per trial")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--dt", type=float, default=0.5)
    data.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    data.add_argument("--out", required=True)
    data.add_argument("--overwrite", action="store_true")
    data.set_defaults(func=_cmd_dataset)

    cells = sub.add_parser("cells", help="list the built-in cells")
    cells.set_defaults(func=_cmd_cells)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError, RuntimeError) as err:
        print(f"mtlneuron {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
