"""The surrogate of one cell: layers, the :class:`Surrogate` nn.Module, prediction to xarray, checkpoints.

=================  ===========================================================
``layers``         exponential synaptic filter, kernel gain, causal conv, heads
``module``         :class:`SurrogateConfig`, :class:`SurrogateState`,
                   :class:`Surrogate` (tensor in, tensor out)
``predict``        drive / dataset -> binned inputs -> xarray prediction;
                   :func:`detect_spikes`
``checkpoint``     the checkpoint format: read / write, version and cell
                   compatibility, :func:`data_dirs`, pretrained lookup
=================  ===========================================================

Imports cells, inputs and conventions, never :mod:`mtlneuron.training`
(``Surrogate.fit`` imports it at call time). ``mtlneuron.model`` re-exports
these names.
"""
from .checkpoint import FORMAT, FORMAT_VERSION, add_weights_hash, data_dirs, read_checkpoint, write_checkpoint
from .module import Surrogate, SurrogateConfig, SurrogateState
from .predict import detect_spikes

__all__ = ["Surrogate", "SurrogateConfig", "SurrogateState", "detect_spikes", "read_checkpoint", "write_checkpoint",
           "data_dirs", "add_weights_hash", "FORMAT", "FORMAT_VERSION"]
