"""Networks of surrogate or NEURON cells from one description.

>>> net = mtl.network.rett(n_cells=150, p_connect=0.1, seed=0)      # doctest: +SKIP
>>> res = net.run(300.0, backend="surrogate")                        # doctest: +SKIP
>>> ref = net.run(300.0, backend="neuron")                           # doctest: +SKIP

``import mtlneuron.network`` loads neither torch nor NEURON: the surrogate
engine (torch) loads on first use, NEURON only ever runs in worker processes.
"""
from __future__ import annotations

import importlib as _importlib

from .description import RECORDABLE, Network, PopulationSpec, concat
from .results import RATE_BIN_MS, population_rate

_LAZY = {
    "SurrogateEngine": ".engine", "SpikeRule": ".engine", "run_surrogate": ".engine",
    "run_neuron": ".neuron_backend", "run_neuron_many": ".neuron_backend",
    "cell_trials": ".cell_data", "cell_drives": ".cell_data",
    "rett": ".rett_model", "rett_metrics": ".rett_model", "RettParameters": ".rett_model",
    "sweep": ".sweeps", "compare": ".validation",
    "hnn_cell_trials": ".hnn_data", "from_hnn": ".hnn_model", "HNNColumn": ".hnn_model",
    "jones_2009_column": ".hnn_model", "Teacher": ".engine",
    "recorded_run": ".closed_loop", "finetune_in_loop": ".closed_loop", "loop_losses": ".closed_loop",
}

__all__ = ["Network", "PopulationSpec", "concat", "RECORDABLE", "RATE_BIN_MS", "population_rate", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'mtlneuron.network' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
