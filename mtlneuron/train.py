"""Re-exports of :mod:`mtlneuron.training`; ``python -m mtlneuron.train`` runs its command line.

Kept so ``from mtlneuron import train; train.fit(...)`` and
``python -m mtlneuron.train --data x.nc --out m.pt`` keep working; the code
lives in ``mtlneuron/training/``.
"""
import sys

from .training import (DEFAULT_LOSS_WEIGHTS, TASKS, THRESHOLD_CANDIDATES, TaskWeighting, TrialArrays, compute_scalers,
                       fit, fit_spike_waveforms, load_arrays, main, split_trials, task_losses)

__all__ = ["fit", "split_trials", "compute_scalers", "DEFAULT_LOSS_WEIGHTS", "main", "TASKS", "THRESHOLD_CANDIDATES",
           "TrialArrays", "load_arrays", "TaskWeighting", "task_losses", "fit_spike_waveforms"]

if __name__ == "__main__":
    sys.exit(main())
