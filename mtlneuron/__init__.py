"""mtlneuron: deep-learning surrogates of biophysical neurons, and the signals they make.

>>> import mtlneuron as mtl
>>> cell = mtl.cells.get("l5pc")
>>> drive = mtl.inputs.poisson(cell, duration=1000.0, seed=0)
>>> truth = mtl.simulate(cell, drive)
"""
import importlib as _importlib
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

# torch-based modules load on first use, so that NEURON workers and a plain
# `import mtlneuron` stay light.
_LAZY_MODULES = {"model", "train", "surrogate", "training", "evaluate", "fields", "network", "geometry",
                 "conventions", "nrn", "optimize"}


def __getattr__(name):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)
    if name == "Surrogate":
        return _importlib.import_module(".surrogate", __name__).Surrogate
    raise AttributeError(f"module 'mtlneuron' has no attribute {name!r}")


__all__ = ["cells", "inputs", "simulate", "datasets", "surrogate", "training", "model", "train", "evaluate", "fields",
           "network", "optimize", "geometry", "conventions", "Surrogate", "__version__"]
