"""``python -m mtlneuron.train`` (also ``python -m mtlneuron.training``): argument parsing around :func:`fit`."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import torch

from .._util import HelpFormatter, check_output_path
from ..conventions import V_CLIP
from .fit import fit

__all__ = ["main", "parser", "add_arguments", "FLAGS"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``python -m mtlneuron.train`` (and ``mtlneuron train``), added to ``p``."""
    p.add_argument("--data", required=True, nargs="+", help="netCDF file(s) from mtl.datasets.generate")
    p.add_argument("--out", required=True, help="checkpoint to write (atomically, every epoch)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (else refused)")
    p.add_argument("--cell", help="cell name if it cannot be taken from the dataset")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--window", type=int, default=1000, help="time steps per backpropagation window")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", choices=["plateau", "cosine"], default="plateau",
                   help="halve on validation plateaus, or a half cosine to 0 over --max-time / --epochs")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=10, help="epochs without improvement before early stopping")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--val-data", nargs="+", help="validation trials from other file(s) (new drive seeds), instead of "
                   "a --val-fraction of --data: they pick the kept epoch and the spike threshold")
    p.add_argument("--loss-weighting", choices=["uncertainty", "fixed"], default="uncertainty")
    p.add_argument("--loss-weights", help="e.g. v=1,soma=1,dipole=0.5,spike=1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--init", help="fine-tune this checkpoint (its architecture and scalers) instead of a new model; "
                   "with a larger --hidden-size, its LSTM is widened first (same outputs at the start)")
    p.add_argument("--exclude-stages", default="", help="comma list of stages / drive families left out of training")
    p.add_argument("--max-time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--input-channels", type=int, default=32)
    p.add_argument("--filter-channels", type=int, default=32, help="per synaptic-kernel group")
    p.add_argument("--conv-channels", default="64", help="comma list ('' for none)")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--dilations", help="comma list, one per conv layer")
    p.add_argument("--hidden-size", type=int, help="LSTM units per layer (default: 64, or --init's)")
    p.add_argument("--spike-history-ms", help="comma list of time constants (ms): the model also reads its own "
                   "past spikes (with --init: added to that model, same outputs at the start)")
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--head-hidden", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--no-synaptic-filter", action="store_true")
    p.add_argument("--v-clip", type=float, default=V_CLIP, help="mV; nan trains on raw v")
    p.add_argument("--no-progress", action="store_true")
    return p


def parser(prog: str = "python -m mtlneuron.train") -> argparse.ArgumentParser:
    """The command line of ``python -m mtlneuron.train`` (defaults shown in ``--help``)."""
    return add_arguments(argparse.ArgumentParser(prog=prog, description="Train a mtlneuron surrogate.",
                                                 formatter_class=HelpFormatter))


# fit()'s parameter names -> the flags that set them (errors name the flag)
FLAGS = {"dataset": "--data", "out": "--out", "epochs": "--epochs", "batch_size": "--batch-size",
         "window": "--window", "lr": "--lr", "weight_decay": "--weight-decay", "patience": "--patience",
         "val_fraction": "--val-fraction", "test_fraction": "--test-fraction", "seed": "--seed",
         "device": "--device", "max_time": "--max-time", "exclude_stages": "--exclude-stages",
         "loss_weights": "--loss-weights", "cell": "--cell", "threads": "--threads", "init": "--init",
         "hidden_size": "--hidden-size", "lr_schedule": "--lr-schedule",
         "spike_history_ms": "--spike-history-ms", "val_data": "--val-data"}


def _check_args(a: argparse.Namespace) -> None:
    """Refuse bad values before any data are read, each error naming its flag."""
    from ..conventions import ParameterError

    check_output_path(a.out, a.overwrite or a.resume, name="--out", flag="--overwrite (or --resume to continue it)")
    for path in a.data:
        if not Path(path).is_file():
            raise ParameterError("dataset", f"--data {path!r} does not exist")
    for path in a.val_data or []:
        if not Path(path).is_file():
            raise ParameterError("val_data", f"--val-data {path!r} does not exist")
    if a.init and not Path(a.init).is_file():
        raise ParameterError("init", f"--init {a.init!r} does not exist")
    positive = {"--epochs": a.epochs, "--batch-size": a.batch_size, "--window": a.window, "--lr": a.lr,
                "--patience": a.patience, "--hidden-size": a.hidden_size if a.hidden_size is not None else 1,
                "--threads": a.threads if a.threads is not None else 1,
                "--max-time": a.max_time if a.max_time is not None else 1.0}
    for flag, value in positive.items():
        if not value > 0:
            raise ParameterError(flag, f"{flag} must be > 0, got {value!r}")
    for flag, value in {"--val-fraction": a.val_fraction, "--test-fraction": a.test_fraction}.items():
        if not 0.0 <= value < 1.0:
            raise ParameterError(flag, f"{flag} must be in [0, 1), got {value!r}")
    if a.spike_history_ms is not None:
        try:
            taus = _floats(a.spike_history_ms)
        except ValueError:
            taus = []
        if not taus or not all(math.isfinite(t) and t > 0 for t in taus):
            raise ParameterError("spike_history_ms", f"--spike-history-ms must be a comma list of time constants "
                                 f"> 0 ms, e.g. 2,10,50; got {a.spike_history_ms!r}")
    if a.loss_weights:
        try:
            dict((k.strip(), float(v)) for k, v in (kv.split("=") for kv in a.loss_weights.split(",")))
        except ValueError:
            raise ParameterError("loss_weights", f"--loss-weights must look like v=1,soma=1,dipole=0.5,spike=1; "
                                 f"got {a.loss_weights!r}") from None


def main(argv: Sequence[str] | None = None, prog: str = "python -m mtlneuron.train") -> int:
    """``python -m mtlneuron.train --data x.nc --out model.pt [options]``; errors name their flag."""
    from ..conventions import ParameterError

    a = parser(prog).parse_args(argv)
    try:  # the output and the inputs are checked before the data are read or an epoch is run
        _check_args(a)
        return _train(a)
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        flag = FLAGS.get(err.parameter, err.parameter) if isinstance(err, ParameterError) else None
        named = flag is None or str(err).startswith(flag) or f"{flag} " in str(err)
        print(f"{prog}: error: {'' if named else f'argument {flag}: '}{err}", file=sys.stderr)
        return 2


def _floats(text: str) -> list[float]:
    """A comma list of numbers (empty entries skipped)."""
    return [float(v) for v in text.split(",") if v.strip()]


def _train(a: argparse.Namespace) -> int:
    """Build the model config from the flags and run :func:`fit`."""
    if a.threads:
        torch.set_num_threads(a.threads)
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()] if s else []  # noqa: E731
    model_config = {"input_channels": a.input_channels, "filter_channels": a.filter_channels,
                    "conv_channels": ints(a.conv_channels), "kernel_size": a.kernel_size,
                    "dilations": ints(a.dilations) or None, "hidden_size": a.hidden_size or 64,
                    "num_layers": a.num_layers,
                    "head_hidden": a.head_hidden, "dropout": a.dropout,
                    "synaptic_filter": not a.no_synaptic_filter,
                    "spike_history_ms": _floats(a.spike_history_ms or ""),
                    "v_clip": None if math.isnan(a.v_clip) else a.v_clip}
    weights = None
    if a.loss_weights:
        weights = {k.strip(): float(v) for k, v in (kv.split("=") for kv in a.loss_weights.split(","))}
    cell = None
    if a.cell:
        from .. import cells

        cell = cells.get(a.cell)
    resuming = a.resume and Path(a.out).exists()
    model = None
    if a.init and not resuming:
        from ..surrogate import Surrogate

        model = Surrogate.load(a.init, cell)
        if a.hidden_size is not None and a.hidden_size != model.config.hidden_size:
            from ..conventions import ParameterError
            from .widen import widen

            if a.hidden_size < model.config.hidden_size:
                raise ParameterError("hidden_size", f"--hidden-size {a.hidden_size} is smaller than --init's "
                                     f"{model.config.hidden_size} LSTM units (a model can be widened, not narrowed)")
            model = widen(model, a.hidden_size, seed=a.seed)
        if a.spike_history_ms is not None:
            from .widen import add_spike_history

            if model.has_spike_history:
                from ..conventions import ParameterError

                raise ParameterError("spike_history_ms", f"--spike-history-ms: --init reads its spike history "
                                     f"already ({list(model.config.spike_history_ms)} ms)")
            model = add_spike_history(model, _floats(a.spike_history_ms))
    data = a.data[0] if len(a.data) == 1 else a.data
    model = fit(data, model, cell=cell, model_config=None if resuming or model is not None else model_config,
                out=a.out, epochs=a.epochs, refit_scalers=model is None,
                exclude_stages=[s.strip() for s in a.exclude_stages.split(",") if s.strip()],
                batch_size=a.batch_size, window=a.window, lr=a.lr, weight_decay=a.weight_decay, patience=a.patience,
                val_fraction=a.val_fraction, test_fraction=a.test_fraction, loss_weights=weights,
                loss_weighting=a.loss_weighting, seed=a.seed, device=a.device, resume=a.resume,
                max_time=a.max_time, lr_schedule=a.lr_schedule, progress=not a.no_progress,
                val_data=None if not a.val_data else a.val_data[0] if len(a.val_data) == 1 else a.val_data)
    info = model.training_info
    last = info["history"][-1] if info.get("history") else {}
    print(f"wrote {a.out}: {model.n_parameters} parameters, {info.get('epochs_done')} epochs, best epoch "
          f"{info.get('best_epoch')} (val loss {info.get('best_val_loss', float('nan')):.4g}), last val soma r "
          f"{last.get('val_soma_r', float('nan')):.3f}, spike threshold {float(model.spike_prob_threshold):.2f}, "
          f"stopped: {info.get('stopped') or 'epoch limit'}")
    return 0
