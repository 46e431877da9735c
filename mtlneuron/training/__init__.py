"""Training a :class:`~mtlneuron.surrogate.Surrogate` on ``mtl.datasets`` files (protocol: ``docs/surrogate.md``).

=============  ==============================================================
``data``       :class:`TrialArrays`, loading and pooling datasets, the trial
               split, scalers fitted on the training trials
``losses``     :class:`TaskWeighting`, the per-task losses
``loop``       the trainer: stateful windows, validation, early stopping,
               checkpoints during training, resume, spike threshold tuning
``fit``        :func:`fit`
``spike_waveforms``  :func:`fit_spike_waveforms` (the action potential added
               at predicted spikes, learned after training)
``widen``      :func:`~mtlneuron.training.widen.widen` (more LSTM units for a
               trained model without changing its outputs) and
               :func:`~mtlneuron.training.widen.add_spike_history`
``cli``        ``python -m mtlneuron.train`` / ``python -m mtlneuron.training``
=============  ==============================================================

Imports :mod:`mtlneuron.surrogate` and datasets; ``mtlneuron.train`` re-exports
these names.
"""
from .cli import main
from .data import TrialArrays, compute_scalers, load_arrays, split_trials
from .fit import fit
from .losses import DEFAULT_LOSS_WEIGHTS, TASKS, TaskWeighting, task_losses
from .loop import THRESHOLD_CANDIDATES
from .spike_waveforms import fit_spike_waveforms

__all__ = ["fit", "split_trials", "compute_scalers", "DEFAULT_LOSS_WEIGHTS", "main", "TASKS", "THRESHOLD_CANDIDATES",
           "TrialArrays", "load_arrays", "TaskWeighting", "task_losses", "fit_spike_waveforms"]
