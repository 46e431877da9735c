"""Surrogates in the closed loop, on recorded network runs (hnn-core columns, NEURON Rett networks): check, fine-tune.

    # every run: hnn-core's counts, the surrogate column open loop (recorded spikes sent) and free-running
    OPENBLAS_NUM_THREADS=1 python benchmarks/closed_loop_training.py check ~/mtl-work/hnn/train \\
        --seeds 1000 1001 1005 [--surrogates FOLDER]
    # fine-tune the three surrogates in the loop (resumable: run again to continue), or plainly (--plain)
    OPENBLAS_NUM_THREADS=1 python benchmarks/closed_loop_training.py train ~/mtl-work/hnn/train OUT \\
        --seeds 1000-1037 2000-2008 --validation 1091-1103 --steps 300 [--plain] [--max-time 3000]

    # one surrogate's spike threshold against the free-running count error of held-out runs
    OPENBLAS_NUM_THREADS=1 python benchmarks/closed_loop_training.py threshold ~/mtl-work/hnn/train \
        --seeds 1091-1103 --cell l23pc --surrogates FOLDER [--write l23pc.pt]

    # the Rett circuit's l5pc on NEURON networks of benchmarks/generate_network_data.py (2 s each: windows)
    OPENBLAS_NUM_THREADS=1 python benchmarks/closed_loop_training.py train ~/mtl-work/l5pc/network OUT \
        --seeds 300-307 --validation 308 --window-ms 300 --from-start 0.5 --steps 300 --select rate \
        [--cell-data DIR/families/*.nc --cell-batch 8]   # single-cell trials mixed into every step

A Rett network is rebuilt from its file's ``rett_*`` attrs (``generate_network_data.network``).
An HNN seed's network is rebuilt from its plan (``generate_hnn_data.plan`` / ``build``, 250 ms;
the Poisson ranges of the run are found by which version reproduces the recorded inputs best
open loop, remembered in ``plan_versions.json`` of the data folder) and matched cell by cell
to the recorded run (``hnn_s{seed}_{cell}.nc``): no hnn-core simulation.
``train`` runs ``mtl.network.closed_loop.finetune_in_loop``: scheduled sampling from every
recorded spike sent (1) to none (0) over the steps, each cell's task losses plus population
rates, mixed with the open-loop loss; ``--plain`` is plain fine-tuning on the same cell trials
(recorded spikes always sent, task loss only). Both keep the step with the best free-running
score on the ``--validation`` runs and write ``basket.pt``, ``l23pc.pt``, ``l5pc_hnn.pt`` to OUT.
``--cell-data`` adds each step the task loss of a batch of single-cell trials (protocols no
network run covers; ``--exclude-stages volley`` by default, the held-out family).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from generate_hnn_data import POISSON_RANGES, build, plan  # noqa: E402
from generate_network_data import recorded_network, seed_ranges  # noqa: E402

CELLS = {"hnn": ("basket", "l23pc", "l5pc_hnn"), "rett": ("l5pc",)}


def kind_of(folder: Path) -> str:
    """``hnn`` (hnn_s*_<cell>.nc files) or ``rett`` (rett_s*.nc files)."""
    return "rett" if any(folder.glob("rett_s*.nc")) else "hnn"


def seed_file(folder: Path, seed: int) -> Path | None:
    """The file that marks run ``seed`` as recorded, if any."""
    found = sorted(folder.glob(f"rett_s{seed}_*.nc")) or sorted(folder.glob(f"hnn_s{seed}_l5pc_hnn.nc"))
    return found[0] if found else None


def seeds_of(items: list[str], folder: Path) -> list[int]:
    """``1000-1037`` and ``2000`` style items -> the seeds recorded in ``folder``."""
    return [s for s in seed_ranges(items) if seed_file(folder, s) is not None]


def load_models(folder: str | None, kind: str) -> dict:
    import mtlneuron as mtl

    return {c: mtl.Surrogate.load(Path(folder).expanduser() / f"{c}.pt") if folder else mtl.Surrogate.pretrained(c)
            for c in CELLS[kind]}


def recorded(folder: Path, seed: int, models: dict):
    """The recorded run ``seed`` matched to its rebuilt network."""
    if kind_of(folder) == "rett":
        return recorded_rett(seed_file(folder, seed))
    return recorded_hnn(folder, seed, models)


def recorded_rett(path: Path):
    """A NEURON Rett network run (``generate_network_data.py``) and its network, rebuilt from the file's attrs."""
    import xarray as xr

    from mtlneuron.network.closed_loop import recorded_run

    with xr.open_dataset(path) as ds:
        p, net = recorded_network(ds)
    return recorded_run(net, [path], name=str(p["seed"]))


def recorded_hnn(folder: Path, seed: int, models: dict):
    """The hnn-core run ``seed`` matched to its rebuilt network (the Poisson-range version found once)."""
    import torch

    import mtlneuron as mtl
    from mtlneuron.network.closed_loop import loop_losses, recorded_run
    from mtlneuron.network.engine import SurrogateEngine

    import xarray as xr

    files = [folder / f"hnn_s{seed}_{c}.nc" for c in CELLS["hnn"]]
    with xr.open_dataset(files[0]) as ds:
        default_weights = bool(ds.attrs.get("hnn_default_weights", 0))
    cache = folder / "plan_versions.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if plan(seed)["family"] in ("erp", "bursty"):
        versions = [2]  # no Poisson drive: the versions build the same network
    else:
        versions = [known[str(seed)]] if str(seed) in known else sorted(POISSON_RANGES)
    best = None
    for version in versions:
        col = mtl.network.from_hnn(build(plan(seed, version, default_weights), 10, 250.0), tstop=250.0)
        run = recorded_run(col, files, name=str(seed))
        if len(versions) == 1:
            return run
        with torch.no_grad():
            loss = float(loop_losses(SurrogateEngine(col, models), run, 1.0, checkpoint_ms=None)["task"])
        if best is None or loss < best[0]:
            best = (loss, version, run)
    known[str(seed)] = best[1]
    cache.write_text(json.dumps(known, indent=1, sort_keys=True))
    return best[2]


def check(args) -> None:
    import torch

    from mtlneuron.network.closed_loop import count_error, loop_losses
    from mtlneuron.network.engine import SurrogateEngine

    folder = Path(args.data).expanduser()
    models = load_models(args.surrogates, kind_of(folder))
    print("| seed | family | population | recorded | open loop | free-running |")
    print("|---|---|---|---|---|---|")
    scores = {"open": [], "free": []}
    for seed in seeds_of(args.seeds, folder):
        run = recorded(folder, seed, models)
        engine = SurrogateEngine(run.net, models)
        with torch.no_grad():
            opened, free = (loop_losses(engine, run, p, checkpoint_ms=None) for p in (1.0, 0.0))
        family = plan(seed)["family"] if kind_of(folder) == "hnn" else "rett"
        for pop, n in run.counts().items():
            print(f"| {seed} | {family} | {pop} | {n} | {opened['counts'][pop]} | {free['counts'][pop]} |",
                  flush=True)
        for key, res in (("open", opened), ("free", free)):
            scores[key].append((float(res["task"]), float(res["rate"]), count_error(res["counts"], run.counts())))
    for key, rows in scores.items():
        task, rate, err = np.mean(rows, axis=0)
        print(f"{key}: mean task loss {task:.3f}, rate loss {rate:.3f}, count error {err:.3f} "
              f"(mean over populations of |n - n_rec| / max(n_rec, 40))")


def threshold(args) -> None:
    """Free-running count error of the held-out runs for each spike threshold of one cell's surrogate."""
    import torch

    from mtlneuron.network.closed_loop import count_error, loop_losses
    from mtlneuron.network.engine import SurrogateEngine

    folder = Path(args.data).expanduser()
    models = load_models(args.surrogates, kind_of(folder))
    model = models[args.cell]
    tuned = float(model.spike_prob_threshold)
    runs = [recorded(folder, s, models) for s in seeds_of(args.seeds, folder)]
    engines = [SurrogateEngine(run.net, models) for run in runs]  # each simulate reads the threshold anew
    truths = [run.counts() for run in runs]
    print(f"| {args.cell} spike threshold | mean count error, free-running ({len(runs)} runs) | "
          "spikes / recorded per population |")
    print("|---|---|---|")
    best = (np.inf, tuned)
    grid = sorted({round(x, 4) for x in args.grid} | {round(tuned, 4)})
    for thr in grid:
        model.spike_prob_threshold.fill_(thr)
        errors, totals = [], {}
        for run, engine, truth in zip(runs, engines, truths):
            with torch.no_grad():
                free = loop_losses(engine, run, 0.0, checkpoint_ms=None)
            errors.append(count_error(free["counts"], truth))
            for pop, n in free["counts"].items():
                got, want = totals.get(pop, (0, 0))
                totals[pop] = (got + n, want + truth[pop])
        err = float(np.mean(errors))
        best = min(best, (err, thr))
        ratio = ", ".join(f"{pop} {a / max(b, 1):.2f}" for pop, (a, b) in totals.items())
        print(f"| {thr:.3f}{' (tuned for F1)' if thr == round(tuned, 4) else ''} | {err:.3f} | {ratio} |", flush=True)
    print(f"best: {best[1]:.3f} (count error {best[0]:.3f})")
    if args.write:
        model.spike_prob_threshold.fill_(best[1])
        model.save(Path(args.write).expanduser())
        print(f"wrote {args.write} with spike threshold {best[1]:.3f}")


def single_cell_trials(files: list[str], models: dict, exclude: list[str]) -> dict:
    """Surrogate name -> the single-cell trials of ``files`` made for its cell (stages ``exclude`` left out)."""
    from mtlneuron.training.data import check_dataset, concat_arrays, load_arrays, open_dataset, select_stages

    parts: dict[str, list] = {}
    for f in files:
        ds = select_stages(open_dataset(str(Path(f).expanduser())), exclude)
        names = [n for n, m in models.items() if m.cell_key == ds.attrs.get("cell_key")]
        if not names:
            raise SystemExit(f"{f}: cell {ds.attrs.get('cell_key')!r} is none of the surrogates' cells")
        arrays = load_arrays(ds)
        check_dataset(models[names[0]], ds, arrays)
        parts.setdefault(names[0], []).append(arrays)
    return {n: concat_arrays(p) for n, p in parts.items()}


def train(args) -> None:
    from mtlneuron.network.closed_loop import finetune_in_loop

    folder, out = Path(args.data).expanduser(), Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    models = load_models(args.init, kind_of(folder))
    t0 = time.perf_counter()
    runs = [recorded(folder, s, models) for s in seeds_of(args.seeds, folder)]
    checks = [recorded(folder, s, models) for s in seeds_of(args.validation, folder)]
    cells = single_cell_trials(args.cell_data, models, args.exclude_stages)
    for name, arrays in cells.items():
        print(f"single-cell trials of {name}: {arrays.n_trials} x {arrays.v.shape[1] * arrays.dt:.0f} ms", flush=True)
    print(f"{len(runs)} training runs, {len(checks)} validation runs read in {time.perf_counter() - t0:.0f} s",
          flush=True)
    kw = dict(teacher=(1.0, 1.0), rate_weight=0.0, open_weight=0.0) if args.plain else \
        dict(teacher=(args.teacher_start, args.teacher_end), rate_weight=args.rate_weight, open_weight=args.open_weight)
    res = finetune_in_loop(runs, models, steps=args.steps, lr=args.lr, validation=checks,
                           validate_every=args.validate_every, out=out, max_time=args.max_time, seed=0,
                           window_ms=args.window_ms, from_start=args.from_start, forced_ms=args.forced_ms,
                           checkpoint_ms=args.checkpoint_ms, select=args.select, snapshots=args.snapshots,
                           cell_trials=cells, cell_weight=args.cell_weight, cell_batch=args.cell_batch,
                           progress=False, **kw)
    (out / "history.json").write_text(json.dumps(res.history, indent=1))
    done = [h for h in res.history if "validation" not in h]
    print(f"{len(done)} steps in all, best validation step {res.best_step} (score {res.best_score:.4f}); "
          f"this call {res.seconds:.0f} s", flush=True)
    validations = [h for h in res.history if "validation" in h]
    for h in validations[-len(checks):] if checks else []:  # the last validation (a step may follow it)
        print(f"  validation {h['validation']}: task {h['task']:.3f} rate {h['rate']:.3f} counts {h['counts']} "
              f"truth {h['truth']}")


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = a.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("data")
    c.add_argument("--seeds", nargs="+", required=True, help="seeds or ranges, e.g. 1000-1037 2000")
    c.add_argument("--surrogates", help="folder with basket.pt, l23pc.pt, l5pc_hnn.pt (default: shipped)")
    h = sub.add_parser("threshold", help="one surrogate's spike threshold against free-running count error")
    h.add_argument("data")
    h.add_argument("--seeds", nargs="+", required=True, help="held-out recorded runs (never the test networks)")
    h.add_argument("--cell", required=True)
    h.add_argument("--surrogates", help="folder with the surrogates (default: shipped)")
    h.add_argument("--grid", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5])
    h.add_argument("--write", help="save the cell's surrogate with the best threshold here")
    t = sub.add_parser("train")
    t.add_argument("data")
    t.add_argument("out")
    t.add_argument("--seeds", nargs="+", required=True)
    t.add_argument("--validation", nargs="+", default=[])
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--teacher-start", type=float, default=1.0,
                   help="probability of sending recorded spikes at the first step (continue a schedule)")
    t.add_argument("--teacher-end", type=float, default=0.0, help="probability of sending recorded spikes at the end")
    t.add_argument("--rate-weight", type=float, default=1.0)
    t.add_argument("--open-weight", type=float, default=1.0)
    t.add_argument("--validate-every", type=int, default=10)
    t.add_argument("--max-time", type=float)
    t.add_argument("--window-ms", type=float, help="train on windows of this length (long runs)")
    t.add_argument("--from-start", type=float, default=0.0,
                   help="fraction of the windows that start at the run's beginning (the onset transient)")
    t.add_argument("--forced-ms", type=float, default=0.0, help="warm-up with every recorded spike sent")
    t.add_argument("--checkpoint-ms", type=float, help="gradient checkpointing of the engine (less memory)")
    t.add_argument("--plain", action="store_true", help="plain fine-tuning: recorded spikes always sent, task loss")
    t.add_argument("--select", choices=("loss", "counts", "rate"), default="loss",
                   help="validation score that picks the kept step (counts: mean population count error; rate: "
                        "the rate loss alone, the same for either objective)")
    t.add_argument("--snapshots", action="store_true", help="also keep the surrogates of every validation (OUT/step_NNNN)")
    t.add_argument("--init", help="folder with the three surrogates to start from (default: shipped)")
    t.add_argument("--cell-data", nargs="*", default=[],
                   help="single-cell datasets (mtl.datasets files) mixed into every step (each for its cell)")
    t.add_argument("--cell-weight", type=float, default=1.0, help="weight of the single-cell task loss")
    t.add_argument("--cell-batch", type=int, default=8, help="single-cell trials per step")
    t.add_argument("--exclude-stages", nargs="*", default=["volley"],
                   help="stages / drive families of --cell-data left out (default: volley, a held-out family)")
    args = a.parse_args()
    import torch

    torch.set_num_threads(1)
    {"check": check, "threshold": threshold, "train": train}[args.cmd](args)


if __name__ == "__main__":
    main()
