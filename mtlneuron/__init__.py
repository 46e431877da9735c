"""mtlneuron: deep-learning surrogates of biophysical neurons, and the signals they make.

>>> import mtlneuron as mtl
>>> cell = mtl.cells.get("l5pc")
>>> drive = mtl.inputs.poisson(cell, duration=1000.0, seed=0)
>>> truth = mtl.simulate(cell, drive)
"""
import os as _os

# NEURON prints a "no DISPLAY" warning on import unless told there is no GUI.
_os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from importlib.metadata import PackageNotFoundError, version as _version

from . import cells, inputs
from . import simulate  # callable module: mtl.simulate(cell, drive)
from . import datasets

try:
    __version__ = _version("mtlneuron")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"

__all__ = ["cells", "inputs", "simulate", "datasets", "__version__"]
