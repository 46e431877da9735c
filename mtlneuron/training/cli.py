"""``python -m mtlneuron.train`` (also ``python -m mtlneuron.training``): argument parsing around :func:`fit`."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import torch

from .._util import check_output_path
from ..conventions import V_CLIP
from .fit import fit

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m mtlneuron.train``."""
    p = argparse.ArgumentParser(prog="python -m mtlneuron.train", description="Train a mtlneuron surrogate.")
    p.add_argument("--data", required=True, nargs="+", help="netCDF file(s) from mtl.datasets.generate")
    p.add_argument("--out", required=True, help="checkpoint to write (atomically, every epoch)")
    p.add_argument("--cell", help="cell name if it cannot be taken from the dataset")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--window", type=int, default=1000, help="time steps per backpropagation window")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--loss-weighting", choices=["uncertainty", "fixed"], default="uncertainty")
    p.add_argument("--loss-weights", help="e.g. v=1,soma=1,dipole=0.5,spike=1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--init", help="fine-tune this checkpoint (its architecture and scalers) instead of a new model")
    p.add_argument("--exclude-stages", default="", help="comma list of stages / drive families left out of training")
    p.add_argument("--max-time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--input-channels", type=int, default=32)
    p.add_argument("--filter-channels", type=int, default=32, help="per synaptic-kernel group")
    p.add_argument("--conv-channels", default="64", help="comma list ('' for none)")
    p.add_argument("--kernel-size", type=int, default=5)
    p.add_argument("--dilations", help="comma list, one per conv layer")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.add_argument("--head-hidden", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--no-synaptic-filter", action="store_true")
    p.add_argument("--v-clip", type=float, default=V_CLIP, help="mV; nan trains on raw v")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mtlneuron.train --data x.nc --out model.pt [options]``."""
    a = parser().parse_args(argv)
    try:  # the output is checked before the data are read or an epoch is run
        check_output_path(a.out, overwrite=True)
    except (IsADirectoryError, PermissionError) as err:
        print(f"python -m mtlneuron.train: error: {err}", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()] if s else []  # noqa: E731
    model_config = {"input_channels": a.input_channels, "filter_channels": a.filter_channels,
                    "conv_channels": ints(a.conv_channels), "kernel_size": a.kernel_size,
                    "dilations": ints(a.dilations) or None, "hidden_size": a.hidden_size, "num_layers": a.num_layers,
                    "head_hidden": a.head_hidden, "dropout": a.dropout,
                    "synaptic_filter": not a.no_synaptic_filter,
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
    data = a.data[0] if len(a.data) == 1 else a.data
    model = fit(data, model, cell=cell, model_config=None if resuming or model is not None else model_config,
                out=a.out, epochs=a.epochs, refit_scalers=model is None,
                exclude_stages=[s.strip() for s in a.exclude_stages.split(",") if s.strip()],
                batch_size=a.batch_size, window=a.window, lr=a.lr, weight_decay=a.weight_decay, patience=a.patience,
                val_fraction=a.val_fraction, test_fraction=a.test_fraction, loss_weights=weights,
                loss_weighting=a.loss_weighting, seed=a.seed, device=a.device, resume=a.resume,
                max_time=a.max_time, progress=not a.no_progress)
    info = model.training_info
    last = info["history"][-1] if info.get("history") else {}
    print(f"wrote {a.out}: {model.n_parameters} parameters, {info.get('epochs_done')} epochs, best epoch "
          f"{info.get('best_epoch')} (val loss {info.get('best_val_loss', float('nan')):.4g}), last val soma r "
          f"{last.get('val_soma_r', float('nan')):.3f}, spike threshold {float(model.spike_prob_threshold):.2f}, "
          f"stopped: {info.get('stopped') or 'epoch limit'}")
    return 0
