"""Differentiable connectivity optimisation of the HNN column, confirmed in hnn-core.

>>> col = mtl.network.from_hnn(hnn_net, tstop=300.0)                       # doctest: +SKIP
>>> result = mtl.optimize.connectivity(col, mtl.optimize.band_power(15, 60), steps=20)  # doctest: +SKIP
>>> result.plot()                                                          # doctest: +SKIP
>>> better = result.to_hnn(hnn_net)      # a new hnn_core.Network           # doctest: +SKIP

Losses (:mod:`mtlneuron.optimize.losses`) are minimised and add up with
weights: ``band_power(15, 60) + 0.1 * rate_bounds("L5_pyramidal", 1, 30)``.
To fit a target dipole, :func:`corrected_target` first adds the surrogate's own
error at the starting weights (one hnn-core run) to it.
"""
from .connectivity import OptimizationResult, connectivity, spectrum
from .losses import Loss, band_power, rate_bounds, waveform
from .targets import corrected_target

__all__ = ["connectivity", "OptimizationResult", "Loss", "band_power", "waveform", "rate_bounds", "spectrum",
           "corrected_target"]
