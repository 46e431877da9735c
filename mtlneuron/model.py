"""Re-exports of :mod:`mtlneuron.surrogate` (the surrogate model, prediction, checkpoints).

Kept so ``from mtlneuron.model import Surrogate`` and ``mtl.model.<name>``
keep working; the code lives in ``mtlneuron/surrogate/``.
"""
from .conventions import AXES
from .surrogate import (FORMAT, FORMAT_VERSION, Surrogate, SurrogateConfig, SurrogateState, data_dirs, detect_spikes,
                        read_checkpoint, write_checkpoint)

__all__ = ["Surrogate", "SurrogateConfig", "SurrogateState", "detect_spikes", "read_checkpoint", "write_checkpoint",
           "data_dirs", "FORMAT", "FORMAT_VERSION", "AXES"]
