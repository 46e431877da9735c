"""The training loop: stateful windows, validation, early stopping, checkpoints during training, resume.

* **Stateful windows.** Each batch is a set of whole training trials; they are
  cut into consecutive ``window``-step pieces and the model state (filters,
  convolution buffers, LSTM) is carried from piece to piece, detached between
  pieces (truncated backpropagation through time). So every step is trained
  with the state it would have in a whole-trial prediction.
* **Validation** (for early stopping) is the fixed-weight sum ``sum_k w_k L_k``
  over whole trials.
* **Early stopping** after ``patience`` epochs without validation improvement;
  the best weights are kept. The learning rate halves on plateaus.
* **Checkpoints** are written atomically after every epoch (best weights for
  use, plus the current weights, optimizer, scheduler, task weights and RNG
  state for ``resume=True``).
* **Spike threshold.** After training, the ``spike_prob`` threshold that
  maximises validation spike F1 (+-5 ms) is stored with the model.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import _metrics
from ..conventions import clip_voltage
from ..surrogate import Surrogate, detect_spikes, read_checkpoint, write_checkpoint
from ..surrogate.predict import predict_arrays
from .data import TrialArrays, check_split, compute_scalers, trial_batch
from .losses import TaskWeighting, model_loss_weights, task_losses
from .spike_waveforms import fit_spike_waveforms

__all__ = ["Trainer", "THRESHOLD_CANDIDATES", "validate", "tune_spike_threshold", "resume_checkpoint",
           "restore_model", "resolve_device", "cpu_state", "rng_state", "set_rng_state"]

# spike_prob thresholds tried on validation data (calibrated per-bin probabilities of a spike
# spread over 1-3 bins, so useful thresholds can be well below 0.5)
THRESHOLD_CANDIDATES = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55,
                        0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


class Trainer:
    """Mutable state of one training run (model, optimizer, history) and its loop.

    Build it with :meth:`new` (a fresh run) or :meth:`restore` (continue a
    checkpoint), then :meth:`run` and :meth:`finish`.
    """

    def __init__(self, model: Surrogate, arrays: TrialArrays, info: dict, dev: torch.device) -> None:
        cfg = info["config"]
        if dev.type == "cuda":
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        self.model, self.arrays, self.info, self.dev = model.to(dev), arrays, info, dev
        self.cfg, self.split = cfg, info["split"]
        weights = model_loss_weights(model, cfg["loss_weights"])
        self.weighting = TaskWeighting(weights, cfg["loss_weighting"]).to(dev)
        groups = [{"params": list(model.parameters())}]
        if cfg["loss_weighting"] == "uncertainty":  # task log-variances are not weight-decayed
            groups.append({"params": [self.weighting.log_vars], "weight_decay": 0.0})
        self.params = [p for g in groups for p in g["params"]]
        self.opt = torch.optim.AdamW(groups, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5,
                                                                patience=max(1, cfg["patience"] // 3))
        self.history: list[dict] = []
        self.best_state: dict | None = None
        self.best_val, self.bad, self.epoch, self.elapsed = math.inf, 0, 0, 0.0
        self.windows = 0  # optimizer steps so far (the cosine schedule's clock without max_time)
        self.lr_schedule = cfg.get("lr_schedule", "plateau")  # checkpoints before schedules: plateau
        self.t0 = time.perf_counter()  # start of this call (max_time); elapsed: earlier calls

    @classmethod
    def new(cls, model, arrays, config, split, dev, refit_scalers: bool, dataset_info: dict) -> "Trainer":
        """A fresh run: scalers fitted on the training trials (unless ``refit_scalers`` is False)."""
        if refit_scalers:
            scalers = compute_scalers(arrays, split["train"], model.config.v_clip, model.config.max_pos_weight)
            if not model.config.ions:  # a model without an ionic-current head ignores recorded currents
                scalers.pop("ion_mean", None), scalers.pop("ion_std", None)
            model.set_scalers(**scalers)
        info = {"config": config, "split": split, "dataset": dataset_info,
                "split_trial_seeds": {k: arrays.seeds[v].tolist() for k, v in split.items()},
                "model_config": model.config.to_dict(), "n_parameters": model.n_parameters, "stopped": None}
        for grown in ("widened_from", "spike_history_added"):  # a fine-tuned model grown first (training.widen)
            if grown in (model.training_info or {}):
                info[grown] = model.training_info[grown]
        return cls(model, arrays, info, dev)

    @classmethod
    def restore(cls, ckpt: Mapping, model, arrays, config, dev) -> "Trainer":
        """Continue the run saved in ``ckpt`` (its split, loss settings, optimizer, RNG)."""
        model, info = restore_model(ckpt, model)
        info = dict(info)
        info["split"] = check_split(info["split"], arrays.n_trials)
        info["config"] = {**info["config"], "epochs": config["epochs"], "max_time": config["max_time"],
                          "device": config["device"]}
        t = cls(model, arrays, info, dev)
        r = ckpt["resume"]
        t.opt.load_state_dict(r["optimizer"])
        t.sched.load_state_dict(r["scheduler"])
        t.weighting.load_state_dict(_padded_weighting(r["weighting"], t.weighting))
        set_rng_state(r["rng"])
        t.best_state, t.best_val, t.bad, t.epoch = ckpt["state_dict"], r["best_val"], r["bad_epochs"], r["epoch"]
        t.elapsed, t.history = float(r.get("elapsed", 0.0)), list(info.get("history", []))
        t.windows = int(r.get("windows", 0))
        return t

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, out, progress: bool) -> None:
        """Epochs until the epoch limit, early stopping or ``max_time`` (checkpointing to ``out``)."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        epochs = cfg["epochs"]
        if self.info.get("stopped") == "early_stopping":
            return
        per_epoch = self._windows_per_epoch()
        self.t0 = time.perf_counter()
        with tqdm(total=epochs * per_epoch, initial=min(self.epoch, epochs) * per_epoch, disable=not progress,
                  desc=f"train {self.model.cell_name}", unit="win", dynamic_ncols=True) as bar:
            while self.epoch < epochs:
                means, time_up = self.train_epoch(bar)
                self.end_epoch(means, time_up, out)
                if self.info["stopped"]:
                    self._say_stopped(bar)
                    break

    def _say_stopped(self, bar) -> None:
        """Close the bar at its end and say why training stopped before the epoch limit."""
        info, cfg = self.info, self.cfg
        why = (f"no validation improvement in {cfg['patience']} epochs" if info["stopped"] == "early_stopping"
               else f"max_time {cfg['max_time']:g} s used")
        message = (f"stopped early after epoch {self.epoch} of {cfg['epochs']} ({why}); best epoch "
                   f"{info['best_epoch']}")
        bar.total = bar.n  # the bar ends where training ended, not at the fraction of the epoch limit
        bar.set_description_str(f"train {self.model.cell_name} (stopped early)")
        bar.refresh()
        if bar.disable:
            return
        bar.write(message)

    def _seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.t0

    def _windows_per_epoch(self) -> int:
        """Optimizer steps in one pass: batches x windows per trial."""
        return math.ceil(len(self.split["train"]) / self.cfg["batch_size"]) * \
            math.ceil(self.arrays.inputs.shape[1] / self.cfg["window"])

    def _cosine_lr(self) -> float:
        """``lr`` x (1 + cos(pi x progress)) / 2.

        progress: the larger used share of this call's ``max_time`` and of the
        epoch limit (a resumed run with a new ``max_time`` starts a new cosine).
        """
        cfg = self.cfg
        progress = self.windows / (cfg["epochs"] * self._windows_per_epoch())
        if cfg["max_time"] is not None:
            progress = max(progress, (time.perf_counter() - self.t0) / cfg["max_time"])
        return cfg["lr"] * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def train_epoch(self, bar) -> tuple[dict[str, float], bool]:
        """One pass over the training trials; returns mean losses and whether max_time ran out."""
        cfg, model = self.cfg, self.model
        model.train()
        order = np.random.default_rng([int(cfg["seed"]), 2, self.epoch]).permutation(self.split["train"])
        sums: dict[str, float] = {}
        count = 0
        for b in range(0, len(order), cfg["batch_size"]):
            x, v, d, s, ion = trial_batch(self.arrays, order[b:b + cfg["batch_size"]], self.dev)
            state = None
            for t0 in range(0, x.shape[1], cfg["window"]):
                sl = slice(t0, t0 + cfg["window"])
                losses, total, state = self.train_window(x[:, sl], v[:, sl], d[:, sl], s[:, sl],
                                                         None if ion is None else ion[:, sl], state)
                for k, val in [("loss", total), *losses.items()]:
                    sums[k] = sums.get(k, 0.0) + val
                count += 1
                bar.update(1)
                last = {"val": f"{self.history[-1]['val_loss']:.3g}"} if self.history else {}
                bar.set_postfix({"ep": self.epoch + 1, **{k: f"{v_ / count:.3g}" for k, v_ in sums.items()}, **last},
                                refresh=False)
            if cfg["max_time"] is not None and time.perf_counter() - self.t0 > cfg["max_time"]:
                return {k: v_ / count for k, v_ in sums.items()}, True
        return {k: v_ / max(count, 1) for k, v_ in sums.items()}, False

    def train_window(self, x, v, d, s, ion, state):
        """One optimizer step on one window; the state is carried in, detached out."""
        out, state = self.model(x, state, spikes=s)  # spike history (if any) from the recorded spikes
        losses = task_losses(self.model, out, v, d, s, self.weighting.weights, ion)
        total = self.weighting(losses)
        if not math.isfinite(total.item()):  # never step the weights with NaN: they would all become NaN
            bad = sorted(k for k, val in losses.items() if not math.isfinite(val.item()))
            raise FloatingPointError(f"training diverged at epoch {self.epoch + 1}: non-finite loss "
                                     f"({', '.join(bad) or 'total'}); lower lr or check the data (the last "
                                     f"checkpoint written holds the last good weights)")
        if self.lr_schedule == "cosine":
            for group in self.opt.param_groups:
                group["lr"] = self._cosine_lr()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(self.params, self.cfg["grad_clip"])
        self.opt.step()
        self.windows += 1
        return {k: val.item() for k, val in losses.items()}, total.item(), state.detach()

    def end_epoch(self, means: Mapping[str, float], time_up: bool, out) -> None:
        """Validate, track the best weights, decide on stopping, checkpoint."""
        cfg = self.cfg
        val = validate(self.model, self.weighting, self.arrays, self.split["val"], cfg["batch_size"],
                       max(cfg["window"], 4096), self.dev)
        if self.lr_schedule == "plateau":
            self.sched.step(val["val_loss"])
        if val["val_loss"] < self.best_val:
            self.best_val, self.bad, self.best_state = val["val_loss"], 0, cpu_state(self.model)
        else:
            self.bad += 1
        self.epoch += 1
        self.history.append({"epoch": self.epoch, "train_loss": means.get("loss", math.nan),
                             **{f"train_{k}": v for k, v in means.items() if k != "loss"}, **val,
                             "lr": self.opt.param_groups[0]["lr"],
                             "task_weights": self.weighting.effective(list(means)), "seconds": self._seconds()})
        stopped = "early_stopping" if self.bad >= cfg["patience"] else ("max_time" if time_up else None)
        self.info.update(history=self.history, best_epoch=int(np.argmin([h["val_loss"] for h in self.history])) + 1,
                         best_val_loss=self.best_val, epochs_done=self.epoch, stopped=stopped)
        self.model.training_info = self.info
        if out is not None:
            self.save(out, self.best_state, cpu_state(self.model))

    def finish(self, out) -> Surrogate:
        """Best weights, spike threshold tuned on validation, final checkpoint."""
        last_state = cpu_state(self.model)  # where training stands: what resume continues from
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        tuning = tune_spike_threshold(self.model, self.arrays, self.split["val"], self.cfg["threshold_window"])
        self.model.spike_prob_threshold.fill_(tuning["threshold"])
        self.info["spike_threshold_tuning"] = tuning
        try:  # a model that predicts no spike (a cell that never fires, a short run) has no waveform to learn
            fit_spike_waveforms(self.model, self.arrays, self.split["train"])
            self.info["spike_waveforms"] = "learned at the model's predicted spikes (training trials)"
        except ValueError as err:
            self.info["spike_waveforms"] = f"none: {err}"
        self.model.training_info = self.info
        if out is not None:
            self.save(out, cpu_state(self.model), last_state)
        self.model.eval()
        return self.model

    def save(self, out, best_state: Mapping | None, current: Mapping) -> None:
        """Atomic checkpoint: the usable (best) weights + everything needed to resume."""
        resume = {"epoch": int(self.epoch), "model": current, "optimizer": self.opt.state_dict(),
                  "scheduler": self.sched.state_dict(), "weighting": self.weighting.state_dict(),
                  "rng": rng_state(), "best_val": float(self.best_val), "bad_epochs": int(self.bad),
                  "elapsed": self._seconds(), "windows": int(self.windows)}
        state = current if best_state is None else best_state
        write_checkpoint(self.model.checkpoint(state_dict=state, resume=resume), out)


# -- validation and the spike threshold ------------------------------------------------------------

def validate(model: Surrogate, weighting: TaskWeighting, arrays: TrialArrays, idx: Sequence[int],
             batch_size: int, chunk: int, device) -> dict[str, float]:
    """Whole-trial validation losses (fixed weights) and clipped soma r."""
    model.eval()
    sums: dict[str, float] = {}
    steps = 0
    soma_p, soma_t = [], []
    with torch.no_grad():
        for b in range(0, len(idx), batch_size):
            x, v, d, s, ion = trial_batch(arrays, idx[b:b + batch_size], device)
            state = None
            for t0 in range(0, x.shape[1], chunk):
                sl = slice(t0, t0 + chunk)
                out, state = model(x[:, sl], state)
                n = x[:, sl].shape[0] * x[:, sl].shape[1]
                ion_sl = None if ion is None else ion[:, sl]
                for k, val in task_losses(model, out, v[:, sl], d[:, sl], s[:, sl], weighting.weights,
                                          ion_sl).items():
                    sums[k] = sums.get(k, 0.0) + float(val) * n
                steps += n
                vp = model.to_physical(out)["v"][..., model.soma_index]
                soma_p.append(vp.flatten().cpu().numpy())
                soma_t.append(v[:, sl, model.soma_index].flatten().cpu().numpy())
    parts = {k: val / steps for k, val in sums.items()}
    clip = model.config.v_clip
    r = _metrics.voltage_metrics(clip_voltage(np.concatenate(soma_p), clip)[:, None],
                                 clip_voltage(np.concatenate(soma_t), clip)[:, None])["r"][0]
    out = {"val_loss": sum(weighting.weights[k] * val for k, val in parts.items()), "val_soma_r": float(r)}
    out.update({f"val_{k}": val for k, val in parts.items()})
    return out


def tune_spike_threshold(model: Surrogate, arrays: TrialArrays, idx: Sequence[int], window: float) -> dict:
    """The spike_prob threshold with the best validation F1 (+-``window`` ms); ties go to the one nearest 0.5."""
    probs = predict_arrays(model, arrays.inputs[np.asarray(idx)], batch_size=16, chunk=4096)["spike_prob"]
    truth = [(np.flatnonzero(arrays.spikes[k]) + 0.5) * arrays.dt for k in idx]
    best = (np.nan, 0.5)
    scores = {}
    for thr in THRESHOLD_CANDIDATES:
        pred = [detect_spikes(p, arrays.dt, thr) for p in probs]
        f1 = _metrics.spike_scores(truth, pred, window)["f1"]
        scores[float(thr)] = None if not np.isfinite(f1) else float(f1)
        if np.isfinite(f1) and (not np.isfinite(best[0]) or f1 > best[0] + 1e-12
                                or (abs(f1 - best[0]) <= 1e-12 and abs(thr - 0.5) < abs(best[1] - 0.5))):
            best = (float(f1), float(thr))
    return {"threshold": best[1], "val_f1": best[0] if np.isfinite(best[0]) else None, "window_ms": window,
            "f1_by_threshold": scores}


def _padded_weighting(saved: Mapping, weighting: TaskWeighting) -> dict:
    """A saved weighting state from before tasks were added (fewer log-variances): new tasks start at 0."""
    lv = saved["log_vars"]
    n = weighting.log_vars.numel()
    if lv.numel() < n:
        lv = torch.cat([lv, torch.zeros(n - lv.numel(), dtype=lv.dtype)])
    return {**saved, "log_vars": lv}


# -- resume, devices, RNG --------------------------------------------------------------------------

def resume_checkpoint(out) -> dict | None:
    """The checkpoint ``out`` to resume from (None if it does not exist yet); it must hold training state."""
    if out is None:
        raise ValueError("resume=True needs out= (the checkpoint to continue from)")
    if not Path(out).exists():
        return None
    ckpt = read_checkpoint(out)
    if not ckpt.get("resume") or not ckpt.get("training"):
        raise ValueError(f"checkpoint {str(out)!r} has no training state to resume from")
    return ckpt


def restore_model(ckpt: Mapping, model: Surrogate | None) -> tuple[Surrogate, dict]:
    """The model of a resume checkpoint with its current (not best) weights, and its training info."""
    if model is None:
        model = Surrogate.from_checkpoint(ckpt, source="resume checkpoint")
    elif model.config.to_dict() != ckpt["config"] or model.cell_key != ckpt["cell_key"]:
        raise ValueError("resume: the given model's architecture or cell differs from the checkpoint's")
    model.load_state_dict(ckpt["resume"]["model"])
    return model, ckpt["training"]


def resolve_device(device) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; refuses cuda without a CUDA device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but no CUDA device is available")
    return dev


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model.state_dict()``."""
    return {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}


def rng_state() -> dict:
    """torch's CPU (and CUDA) RNG states, for resume."""
    return {"torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []}


def set_rng_state(state: Mapping) -> None:
    """Restore the RNG states of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
