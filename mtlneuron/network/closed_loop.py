"""Training surrogates in the network they must work in (the closed loop).

Trained on single-cell trials, a surrogate sees the inputs the recorded network
gave each cell. In a network its own errors become the inputs of other cells,
and recurrent connections amplify them: near-threshold false spikes of a few
cells grow into volleys the recorded network never made (docs/hnn.md, the
Poisson column; docs/results.md, the Rett network at 3.6-nS contacts).

:func:`finetune_in_loop` fine-tunes the surrogates of a network inside the
differentiable engine against recorded runs of that network (NEURON or hnn-core
with every cell recorded: :func:`~mtlneuron.network.cell_trials`,
:func:`~mtlneuron.network.hnn_cell_trials`):

* **scheduled sampling**: each cell sends its targets, with probability
  ``teacher_prob``, the recorded spikes instead of its own (:class:`Teacher`);
  the probability falls from ``teacher[0]`` to ``teacher[1]`` over the steps, so
  the surrogates learn to work on their own spikes. Gradients flow through the
  recurrent connections (the fast-sigmoid spike gradient) to every cell;
* **loss**: each cell's task losses of training on trials (voltage, dipole,
  spikes; :func:`mtlneuron.training.losses.task_losses`) against the recorded
  run, plus each population's rate (spikes smoothed with a Gaussian of
  ``rate_sd_ms``, in units of ``RATE_SCALE_HZ``) against the recorded rate;
* **the open loop kept**: the same cells with every recorded spike sent
  (``teacher_prob = 1``: exactly the cell trials of the run) add their task
  losses with weight ``open_weight``, so that single-cell fidelity stays;
* **single-cell trials kept** (``cell_trials``): a batch of a surrogate's own
  single-cell training trials (protocols no network run covers: the curriculum,
  drive families) adds its task loss with weight ``cell_weight`` each step.

With ``teacher=(1, 1)`` and ``rate_weight=0`` it is plain fine-tuning on the
same cell trials (the comparison of ``benchmarks/closed_loop_training.py``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..conventions import same_dt
from ..surrogate import Surrogate
from ..training.data import TrialArrays, load_arrays, trial_batch
from ..training.losses import (DEFAULT_LOSS_WEIGHTS, TaskWeighting, model_loss_weights, smooth_spikes,
                               task_losses)
from .engine import SpikeRule, SurrogateEngine, Teacher

__all__ = ["RecordedRun", "recorded_run", "loop_losses", "finetune_in_loop", "LoopResult", "RATE_SCALE_HZ",
           "population_rates", "count_error"]

RATE_SCALE_HZ = 10.0  # population rates enter the loss in units of 10 spikes / s per cell
STATE_FILE = "in_loop_state.pt"
SELECT = ("loss", "counts", "rate")  # finetune_in_loop's validation scores


@dataclass
class RecordedRun:
    """A recorded run of a network: every cell's spikes, voltage and dipole on the engine's bins.

    Attributes
    ----------
    net : Network
        The network that was run (cells in gid order).
    duration : float
        ms.
    spikes : torch.Tensor
        (time, cell) 0/1 spike labels.
    v, dipole : dict
        Population name -> (cell, time, segment) mV and (cell, time, 3) nA um.
    name : str
    """

    net: object
    duration: float
    spikes: torch.Tensor
    v: dict[str, torch.Tensor]
    dipole: dict[str, torch.Tensor]
    name: str = ""

    def counts(self, from_ms: float = 0.0, until_ms: float | None = None) -> dict[str, int]:
        """Recorded spikes per population (between ``from_ms`` and ``until_ms``, default: the whole run)."""
        t0 = int(round(from_ms / self.net.dt))
        t1 = None if until_ms is None else int(round(until_ms / self.net.dt))
        return {p.name: int(self.spikes[t0:t1, a:b].sum()) for p, a, b in _spans(self.net)}


def _spans(net):
    """(population, first cell, stop) of each population."""
    return [(p, int(net.offsets[k]), int(net.offsets[k + 1])) for k, p in enumerate(net.populations)]


def recorded_run(net, datasets: Sequence, name: str = "") -> RecordedRun:
    """Match the cell trials of one recorded run (datasets with a ``gid`` per trial) to ``net``'s cells.

    Parameters
    ----------
    net : Network
        The network that was recorded (its gids are the datasets' ``gid``).
    datasets : sequence of xarray.Dataset or paths
        Cell trials of the run, e.g. one file per cell type; together every cell once.
    name : str

    Raises
    ------
    ValueError
        A dataset without ``gid``, a gid missing, repeated or outside the network, a
        time bin other than the network's, or trials of unequal length.
    """
    from ..training.data import open_dataset

    label = name or "recorded run"
    n, T = net.n_cells, None
    v, d, spikes = [None] * n, [None] * n, [None] * n
    for item in datasets:
        ds = open_dataset(item)
        if "gid" not in ds:
            raise ValueError(f"{label}: a dataset has no 'gid' per trial (not cell trials of a network)")
        if not same_dt(float(ds.attrs["dt"]), net.dt):
            raise ValueError(f"{label}: dataset dt {ds.attrs['dt']} ms, network dt {net.dt} ms")
        arrays, gids = load_arrays(ds), ds["gid"].values.astype(int)
        T = arrays.v.shape[1] if T is None else T
        if arrays.v.shape[1] != T:
            raise ValueError(f"{label}: trials of {arrays.v.shape[1]} and {T} bins")
        for k, g in enumerate(gids):
            if not 0 <= g < n or v[g] is not None:
                raise ValueError(f"{label}: gid {g} is outside the network's {n} cells or repeated")
            v[g], d[g], spikes[g] = arrays.v[k], arrays.dipole[k], arrays.spikes[k]
    missing = [g for g in range(n) if v[g] is None]
    if missing:
        raise ValueError(f"{label}: no trial for gids {missing[:10]}{'...' if len(missing) > 10 else ''}")
    by_pop = {p.name: (torch.as_tensor(np.stack(v[a:b])), torch.as_tensor(np.stack(d[a:b])))
              for p, a, b in _spans(net)}
    return RecordedRun(net, T * net.dt, torch.as_tensor(np.stack(spikes, axis=1)),
                       {k: x[0] for k, x in by_pop.items()}, {k: x[1] for k, x in by_pop.items()}, name)


def _standardised(model: Surrogate, out: dict, name: str) -> dict[str, torch.Tensor]:
    """The engine's per-cell physical outputs of one population -> the model's standardised (cell, time, ...)."""
    active = model.dipole_active > 0
    std = torch.where(active, model.dipole_std, torch.ones_like(model.dipole_std))
    return {"v": ((out[f"{name}/v"] - model.v_mean) / model.v_std).transpose(0, 1),
            "dipole": torch.where(active, (out[f"{name}/dipole"] - model.dipole_mean) / std,
                                  torch.zeros_like(std)).transpose(0, 1),
            "spike_logit": out[f"{name}/spike_logit"].transpose(0, 1)}


def population_rates(spikes: torch.Tensor, net, dt: float, sd_ms: float) -> torch.Tensor:
    """(population, time) smoothed rate per cell (Hz) of (time, cell) spikes (differentiable)."""
    rates = torch.stack([spikes[:, a:b].mean(dim=1) for _, a, b in _spans(net)])
    # smooth_spikes peaks at 1: divide by its area (bins) to keep spikes per bin, then per second
    area = math.sqrt(2 * math.pi) * sd_ms / dt
    return smooth_spikes(rates, dt, sd_ms) / area * (1000.0 / dt)


def loop_losses(engine: SurrogateEngine, run: RecordedRun, teacher_prob: float, *, seed: int = 0,
                loss_weights: Mapping[str, float] | None = None, rate_sd_ms: float = 2.0,
                forced_ms: float = 0.0, until_ms: float | None = None,
                checkpoint_ms: float | None = 50.0) -> dict[str, torch.Tensor]:
    """One run of ``engine`` against ``run`` with recorded spikes sent at ``teacher_prob``.

    The run starts at rest, sends every recorded spike for ``forced_ms`` (no gradient), then
    ``teacher_prob`` of them until ``until_ms`` (default: the recorded run's end); losses
    cover ``forced_ms .. until_ms``.

    Returns
    -------
    dict
        ``task`` (the fixed-weight task loss, averaged over populations), ``rate``
        (mean squared rate error in units of ``RATE_SCALE_HZ``) and ``counts``
        (spikes per population, no gradient), after ``forced_ms``.
    """
    net = engine.net
    weights = DEFAULT_LOSS_WEIGHTS if loss_weights is None else loss_weights
    t0 = int(round(forced_ms / net.dt))
    t1 = run.spikes.shape[0] if until_ms is None else int(round(until_ms / net.dt))
    if not 0 <= t0 < t1 <= run.spikes.shape[0]:
        raise ValueError(f"need 0 <= forced_ms < until_ms <= {run.duration} ms, got {forced_ms} and {until_ms}")
    teacher = Teacher(run.spikes[:t1], teacher_prob, seed, forced_ms)
    out = engine.simulate(t1 * net.dt, teacher=teacher, record_cells=True, record_v=False, record_dipole=False,
                          checkpoint_ms=checkpoint_ms)
    task = []
    for p, a, b in _spans(net):
        model = engine.models[p.name]
        w = model_loss_weights(model, weights)
        z = {k: x[:, t0:] for k, x in _standardised(model, out, p.name).items()}
        losses = task_losses(model, z, run.v[p.name][:, t0:t1].to(engine.device),
                             run.dipole[p.name][:, t0:t1].to(engine.device),
                             run.spikes[t0:t1, a:b].T.to(engine.device), w)
        task.append(TaskWeighting(w, "fixed").fixed(losses))
    own = out["spikes"][t0:]
    rate_s = population_rates(own, net, net.dt, rate_sd_ms)
    rate_t = population_rates(run.spikes[t0:t1].to(engine.device), net, net.dt, rate_sd_ms)
    counts = {p.name: int(own[:, a:b].detach().sum()) for p, a, b in _spans(net)}
    return {"task": torch.stack(task).mean(), "rate": torch.mean(((rate_s - rate_t) / RATE_SCALE_HZ) ** 2),
            "counts": counts}


@dataclass
class LoopResult:
    """What :func:`finetune_in_loop` did: ``history`` (one dict per step and per validation), best step."""

    history: list[dict] = field(default_factory=list)
    best_step: int = -1
    best_score: float = math.inf
    seconds: float = 0.0


def count_error(counts: Mapping[str, int], truth: Mapping[str, int], floor: int = 40) -> float:
    """Mean over populations of ``|n - n_true| / max(n_true, floor)`` (floor 40: 10 spikes is 25 %)."""
    return float(np.mean([abs(counts[k] - truth[k]) / max(truth[k], floor) for k in truth]))


def finetune_in_loop(runs: Sequence[RecordedRun], surrogates: Mapping[str, Surrogate], *, steps: int,
                     lr: float = 1e-4, teacher: tuple[float, float] = (1.0, 0.0), open_weight: float = 1.0,
                     rate_weight: float = 1.0, validation: Sequence[RecordedRun] = (), validate_every: int = 10,
                     out: str | Path | None = None, max_time: float | None = None, seed: int = 0,
                     forced_ms: float = 0.0, window_ms: float | None = None, from_start: float = 0.0,
                     spike_rule: SpikeRule | None = None,
                     checkpoint_ms: float | None = None, select: str = "loss", snapshots: bool = False,
                     cell_trials: Mapping[str, TrialArrays] | None = None, cell_weight: float = 1.0,
                     cell_batch: int = 8, progress: bool = True) -> LoopResult:
    """Fine-tune the surrogates of a network in the closed loop against recorded runs (module docstring).

    Parameters
    ----------
    runs : sequence of RecordedRun
        Training runs (one is drawn per step, each once per pass, in a seeded order).
    surrogates : dict
        Cell or population name -> :class:`Surrogate`, trained in place; on return
        they hold the weights of the best validation (or the last step without validation).
    steps : int
        Optimiser steps (one training run each).
    teacher : (float, float)
        Probability of sending the recorded spikes at the first and the last step (linear).
    open_weight, rate_weight : float
        Weights of the open-loop task loss and of the population-rate loss.
    validation : sequence of RecordedRun
        Scored free-running (no recorded spikes sent) before the first step and every
        ``validate_every`` steps; the best score is kept (the start, if no step beats it).
    select : {"loss", "counts", "rate"}
        The validation score: ``"loss"``, task loss + ``rate_weight`` x rate loss;
        ``"counts"``, the mean :func:`count_error` of the population spike counts
        (what network-level targets measure); ``"rate"``, the rate loss alone (the
        population rate in time, the same score whatever the training loss: compares
        training objectives fairly, and counts spikes in the right epochs, which whole-run
        counts do not).
    snapshots : bool
        Also save the surrogates of every validation in ``out/step_NNNN/``.
    out : path, optional
        Folder for the resumable state (``in_loop_state.pt``, written atomically every
        ``validate_every`` steps) and the best surrogates (``<cell>.pt``). An existing
        state there is continued.
    max_time : float, optional
        Seconds of this call after which it stops (the state is saved; call again to continue).
    forced_ms : float
        Warm-up of each run with every recorded spike sent and no gradient (:class:`Teacher`).
    window_ms : float, optional
        Train on one window of this length per step, after a forced warm-up of a random
        length (long recorded runs: the gradient of a whole run would cost too much); the
        validation runs are scored whole.
    from_start : float
        Fraction of the windowed steps whose window starts at the run's beginning (after
        ``forced_ms``) instead of at a random time: the drive's onset transient, which a
        window at a random start of a long run rarely covers, is where recurrent networks
        run away (the Rett circuit at 3.6-nS contacts).
    checkpoint_ms : float, optional
        Gradient checkpointing of the engine (less memory, ~1.3x the time).
    cell_trials : dict, optional
        Key of ``surrogates`` -> single-cell trials of that cell
        (:func:`mtlneuron.training.data.load_arrays`); each step adds the task loss of
        ``cell_batch`` whole trials drawn from them, times ``cell_weight``.

    Returns
    -------
    LoopResult
    """
    if not runs:
        raise ValueError("finetune_in_loop needs at least one recorded run")
    if select not in SELECT:
        raise ValueError(f"select must be one of {SELECT}, got {select!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    for name, value in (("lr", lr), ("open_weight", open_weight), ("rate_weight", rate_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    if not 0.0 <= from_start <= 1.0:
        raise ValueError(f"from_start must lie in [0, 1] (a fraction of the steps), got {from_start!r}")
    cell_trials = _check_cell_trials(cell_trials or {}, surrogates, cell_weight, cell_batch)
    engines = [SurrogateEngine(r.net, surrogates, spike_rule=spike_rule) for r in runs]
    checks = [SurrogateEngine(r.net, surrogates, spike_rule=spike_rule) for r in validation]
    models = {id(m): m for e in engines for m in e.models.values()}  # each model once
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    result, step, best = LoopResult(), 0, None
    state_path = Path(out) / STATE_FILE if out is not None else None
    if state_path is not None and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        for m, sd in zip(models.values(), state["models"]):
            m.load_state_dict(sd)
        opt.load_state_dict(state["optimizer"])
        step, best = state["step"], state["best"]
        result.history, result.best_step, result.best_score = state["history"], state["best_step"], state["best_score"]
    rng = np.random.default_rng(seed)  # each run once per pass, a new order each pass
    order = np.concatenate([rng.permutation(len(runs)) for _ in range(steps // len(runs) + 1)])
    start = time.perf_counter()
    from tqdm.auto import tqdm

    if validation and step == 0 and not result.history:  # the start is a candidate: keep it unless a step beats it
        result.best_score, result.best_step = _validate(checks, validation, rate_weight, 0, result, select), 0
        best = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models.values()]
    with tqdm(total=steps, initial=step, disable=not progress, desc="in-loop fine-tuning", unit="step") as bar:
        while step < steps:
            if max_time is not None and time.perf_counter() - start > max_time:
                break
            k = int(order[step])
            prob = teacher[0] + (teacher[1] - teacher[0]) * step / max(1, steps - 1)
            opt.zero_grad()
            forced, until = _window(runs[k], forced_ms, window_ms, from_start, seed * 100003 + step)
            closed = loop_losses(engines[k], runs[k], prob, seed=seed * 100003 + step, forced_ms=forced,
                                 until_ms=until, checkpoint_ms=checkpoint_ms)
            loss = closed["task"] + rate_weight * closed["rate"]
            loss.backward()
            record = {"step": step, "run": runs[k].name, "teacher_prob": prob, "task": closed["task"].item(),
                      "rate": closed["rate"].item(), "counts": closed["counts"], "truth": runs[k].counts(forced, until),
                      "window_ms": [forced, runs[k].duration if until is None else until]}
            if open_weight > 0 and prob < 1.0:
                opened = loop_losses(engines[k], runs[k], 1.0, forced_ms=forced, until_ms=until,
                                     checkpoint_ms=checkpoint_ms)
                (open_weight * opened["task"]).backward()
                record["open_task"] = opened["task"].item()
            for name, arrays in cell_trials.items():
                single = _single_cell_loss(surrogates[name], arrays, cell_batch, seed * 100003 + step)
                (cell_weight * single).backward()
                record[f"cell_task/{name}"] = single.item()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            result.history.append(record)
            bar.update(1)
            bar.set_postfix(task=f"{record['task']:.3f}", rate=f"{record['rate']:.3f}", p=f"{prob:.2f}")
            if validation and (step % validate_every == 0 or step == steps):
                score = _validate(checks, validation, rate_weight, step, result, select)
                if snapshots and out is not None:
                    _save_models(models.values(), Path(out) / f"step_{step:04d}")
                if score < result.best_score:
                    result.best_score, result.best_step = score, step
                    best = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models.values()]
                    _save_models(models.values(), out)
            if state_path is not None and (step % validate_every == 0 or step == steps or max_time is not None
                                           and time.perf_counter() - start > max_time):
                _save_state(state_path, models.values(), opt, step, best, result)
    if best is not None:
        for m, sd in zip(models.values(), best):
            m.load_state_dict(sd)
    _save_models(models.values(), out)  # the kept weights (the start, when no step beat it)
    result.seconds = time.perf_counter() - start
    return result


def _check_cell_trials(cell_trials: Mapping[str, TrialArrays], surrogates: Mapping[str, Surrogate],
                       weight: float, batch: int) -> dict[str, TrialArrays]:
    """``cell_trials`` checked against the surrogates (names, time bin, input sites)."""
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"cell_weight must be finite and >= 0, got {weight!r}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"cell_batch must be a positive int, got {batch!r}")
    for name, arrays in cell_trials.items():
        if name not in surrogates:
            raise ValueError(f"cell_trials has {name!r}, which is none of the surrogates {sorted(surrogates)}")
        model = surrogates[name]
        if not same_dt(arrays.dt, model.dt):
            raise ValueError(f"cell_trials[{name!r}]: dt {arrays.dt} ms, surrogate dt {model.dt} ms")
        if (arrays.inputs.shape[2], arrays.v.shape[2]) != (model.n_sites, model.n_segments):
            raise ValueError(f"cell_trials[{name!r}]: {arrays.inputs.shape[2]} input sites and {arrays.v.shape[2]} "
                             f"segments, the surrogate {model.n_sites} and {model.n_segments}")
    return dict(cell_trials)


def _single_cell_loss(model: Surrogate, arrays: TrialArrays, batch: int, seed: int) -> torch.Tensor:
    """Fixed-weight task loss of ``batch`` whole single-cell trials drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(arrays.n_trials, size=min(batch, arrays.n_trials), replace=False))
    first = next(model.parameters())
    x, v, d, s, _ = (t if t is None else t.to(first.dtype) for t in trial_batch(arrays, idx, first.device))
    out, _ = model(x, spikes=s)  # a model with spike history reads the recorded spikes, as in training
    w = model_loss_weights(model, DEFAULT_LOSS_WEIGHTS)
    return TaskWeighting(w, "fixed").fixed(task_losses(model, out, v, d, s, w))


def _window(run: RecordedRun, forced_ms: float, window_ms: float | None, from_start: float,
            seed: int) -> tuple[float, float | None]:
    """(forced warm-up, end) of one training step: the whole run, or a window at the start or at a random start."""
    if window_ms is None or window_ms >= run.duration - forced_ms:
        return forced_ms, None
    dt = run.net.dt
    rng = np.random.default_rng(seed)
    at_start = rng.uniform() < from_start
    start = forced_ms if at_start else rng.uniform(forced_ms, run.duration - window_ms)
    start = round(start / dt) * dt
    return start, start + window_ms


def _validate(engines, runs, rate_weight: float, step: int, result: LoopResult, select: str) -> float:
    """Free-running score of the validation runs (each recorded in ``result.history``)."""
    scores, errors, rates = [], [], []
    with torch.no_grad():
        for e, r in zip(engines, runs):
            v = loop_losses(e, r, 0.0, checkpoint_ms=None)
            scores.append(float(v["task"]) + rate_weight * float(v["rate"]))
            rates.append(float(v["rate"]))
            errors.append(count_error(v["counts"], r.counts()))
            result.history.append({"step": step, "validation": r.name, "task": float(v["task"]),
                                   "rate": float(v["rate"]), "counts": v["counts"], "truth": r.counts()})
    return float(np.mean({"counts": errors, "loss": scores, "rate": rates}[select]))


def _save_models(models, out) -> None:
    if out is None:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    for m in models:
        m.save(Path(out) / f"{m.cell_name}.pt")


def _save_state(path: Path, models, opt, step: int, best, result: LoopResult) -> None:
    from .._util import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"models": [m.state_dict() for m in models], "optimizer": opt.state_dict(), "step": step,
                    "best": best, "history": result.history, "best_step": result.best_step,
                    "best_score": result.best_score}, tmp)
