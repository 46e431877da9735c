"""``fit``: train a :class:`~mtlneuron.surrogate.Surrogate` on ``mtl.datasets`` files (see ``docs/surrogate.md``)."""
from __future__ import annotations

import os
from typing import Mapping

import torch

from ..surrogate import Surrogate
from .data import (cell_from_dataset, check_dataset, check_split, concat_arrays, dataset_info, load_arrays,
                   open_datasets, select_stages, split_trials, with_validation_trials)
from .losses import DEFAULT_LOSS_WEIGHTS
from .._util import check_output_path
from .loop import Trainer, resolve_device, resume_checkpoint

__all__ = ["fit"]


def fit(dataset, model: Surrogate | None = None, *, cell=None, model_config: Mapping | None = None,
        out: str | os.PathLike | None = None, epochs: int = 100, batch_size: int = 16, window: int = 1000,
        lr: float = 1e-3, weight_decay: float = 1e-4, grad_clip: float = 1.0, patience: int = 10,
        val_fraction: float = 0.1, test_fraction: float = 0.1, split: Mapping | None = None,
        loss_weights: Mapping[str, float] | None = None, loss_weighting: str = "uncertainty", seed: int = 0,
        device: str | torch.device = "cpu", resume: bool = False, max_time: float | None = None,
        refit_scalers: bool = True, threshold_window: float = 5.0, exclude_stages=(),
        lr_schedule: str = "plateau", val_data=None, progress: bool = True) -> Surrogate:
    """Train a surrogate on a dataset of NEURON trials.

    Parameters
    ----------
    dataset : str, Path, xarray.Dataset or a list of them
        A file from ``mtl.datasets.generate`` (or the opened dataset); several
        files of the same cell, ``dt`` and trial length are trained on together
        (their trials are pooled before the split).
    model : Surrogate, optional
        Model to train in place; default: a new ``Surrogate(cell, dt, **model_config)``.
    cell : Cell, optional
        For a new model; default ``mtl.cells.get(dataset.attrs["cell"])`` (key checked).
    model_config : dict, optional
        Architecture of a new model (see :class:`~mtlneuron.surrogate.SurrogateConfig`).
    out : str or Path, optional
        Checkpoint path, written atomically after every epoch and at the end.
    epochs : int
        Maximum number of epochs (passes over the training trials).
    batch_size : int
        Trials per batch.
    window : int
        Time steps per backpropagation window (the state is carried across windows).
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    grad_clip : float
        Maximum gradient norm (0: no clipping).
    patience : int
        Epochs without validation improvement before stopping.
    val_fraction, test_fraction : float
        Fractions of trials held out (split by trial with ``seed``).
    split : dict, optional
        Explicit ``{"train": [...], "val": [...], "test": [...]}`` trial indices.
    loss_weights : dict, optional
        Task weights ``w_k`` for ``v``, ``soma``, ``dipole``, ``spike``, ``ion``
        (default ``DEFAULT_LOSS_WEIGHTS``; missing tasks weigh 0).
    loss_weighting : {"uncertainty", "fixed"}
        Learned uncertainty weighting times ``w_k``, or fixed ``w_k``.
    seed : int
        Seeds the split, the model initialisation (new model), the trial order and dropout.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    resume : bool
        Continue from the training state in ``out`` (epoch, optimizer, RNG) if it exists.
    max_time : float, optional
        Wall-clock budget (s) of this call; training stops after the batch that
        exceeds it (then validates and checkpoints; ``resume=True`` continues).
    refit_scalers : bool
        Fit input/output scalers on the training trials (False keeps the model's).
    threshold_window : float
        Matching window (ms) of the validation F1 that picks the spike threshold.
    exclude_stages : sequence of str
        Curriculum stages or drive families (``stage`` of each trial) left out
        of training entirely, e.g. ``["volley"]`` to evaluate on a held-out family.
    lr_schedule : {"plateau", "cosine"}
        ``"plateau"``: the learning rate halves when the validation loss stops
        improving; ``"cosine"``: it falls from ``lr`` to 0 along a half cosine
        over the run's budget (``max_time`` or ``epochs``, whichever ends it first).
    val_data : str, Path, xarray.Dataset or a list of them, optional
        Validation trials from other files (e.g. default drives, when training
        on drive families): they replace the validation share of ``dataset``
        (``val_fraction`` is then ignored) for early stopping, the kept epoch
        and the spike threshold. Their drive seeds must differ from the training
        trials'; same cell, ``dt`` and trial length.
    progress : bool
        Show a tqdm bar with running losses.

    Returns
    -------
    Surrogate
        The model with the best validation weights (on ``device``, eval mode);
        ``model.training_info`` holds the split, history and settings. The
        trial indices (and the trials' drive seeds) of the split are recorded
        in it and in the checkpoint.

    Raises
    ------
    ValueError
        For a dataset that does not fit the model (cell, dt, sites), bad
        settings, or a ``resume`` checkpoint without training state.
    """
    for name, value in dict(epochs=epochs, batch_size=batch_size, window=window, lr=lr).items():
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if lr_schedule not in ("plateau", "cosine"):
        raise ValueError(f"lr_schedule must be 'plateau' or 'cosine', got {lr_schedule!r}")
    if patience < 1 or grad_clip < 0 or weight_decay < 0:
        raise ValueError(f"need patience >= 1, grad_clip >= 0, weight_decay >= 0; got {patience}, "
                         f"{grad_clip}, {weight_decay}")
    if out is not None:  # before any work: a missing folder must not cost an epoch
        check_output_path(out, overwrite=True)
    if val_data is not None and split is not None:
        raise ValueError("give split or val_data, not both (val_data makes the validation part of the split)")
    dev = resolve_device(device)
    dss = [select_stages(d, exclude_stages) for d in open_datasets(dataset)]
    ds = dss[0]
    arrays = concat_arrays([load_arrays(d) for d in dss])
    n_pool = arrays.n_trials
    val_dss = [] if val_data is None else open_datasets(val_data)
    if val_dss:
        arrays = with_validation_trials(arrays, [load_arrays(d) for d in val_dss])
    config = {"epochs": epochs, "batch_size": batch_size, "window": window, "lr": lr, "weight_decay": weight_decay,
              "grad_clip": grad_clip, "patience": patience, "val_fraction": val_fraction,
              "test_fraction": test_fraction, "seed": seed, "device": str(dev), "max_time": max_time,
              "threshold_window": threshold_window, "loss_weighting": loss_weighting,
              "exclude_stages": [str(e) for e in exclude_stages], "lr_schedule": lr_schedule,
              "val_data": dataset_info(val_data, val_dss) if val_dss else None,
              "loss_weights": dict(DEFAULT_LOSS_WEIGHTS if loss_weights is None else loss_weights)}
    ckpt = resume_checkpoint(out) if resume else None
    if ckpt is not None:
        trainer = Trainer.restore(ckpt, model, arrays, config, dev)
    else:
        torch.manual_seed(seed)
        if model is None:
            model_config = dict(model_config or {})
            model_config.setdefault("ions", arrays.ion_names)  # a head for recorded ionic currents
            model = Surrogate(cell if cell is not None else cell_from_dataset(ds), dt=arrays.dt, **model_config)
        elif model_config:
            raise ValueError("model_config is for a new model; the given model already has its architecture")
        elif model.config.ions is None:  # left open: a head for the currents these data record, as for a new model
            model.set_ions(arrays.ion_names)
        if val_dss:  # the pool's own validation share goes back to training
            split = split_trials(n_pool, 0.0, test_fraction, seed)
            split = {"train": sorted(split["train"] + split["val"]), "val": list(range(n_pool, arrays.n_trials)),
                     "test": split["test"]}
        split = check_split(split, arrays.n_trials) if split is not None else \
            split_trials(arrays.n_trials, val_fraction, test_fraction, seed)
        check_dataset(model, ds, arrays)
        trainer = Trainer.new(model, arrays, config, split, dev, refit_scalers, dataset_info(dataset, dss))
    check_dataset(trainer.model, ds, arrays)
    trainer.run(out, progress)
    return trainer.finish(out)
