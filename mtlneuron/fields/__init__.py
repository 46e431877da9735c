"""Extracellular fields: LFP, EEG and MEG from voltages or membrane currents.

Forward models come from LFPykit: line- and point-source LFP
(``LineSourcePotential``, ``PointSourcePotential``) and the current dipole
moment (``CurrentDipoleMoment``); EEG uses LFPykit's corrected four-sphere
series (``FourSphereVolumeConductor``) and MEG its spherically symmetric
(Sarvas) or infinite homogeneous conductor, both re-implemented vectorized
over dipole locations (``kernels``) and tested equal to LFPykit and MNE. Membrane currents can come from NEURON
(``imem``) or from voltages alone through LFPy's V -> I_m matrix, so a
surrogate that predicts only ``v`` still gives LFP, dipole, EEG and MEG.

Units (every output is an xarray object with ``units`` attrs)

============================  =========================================
positions, electrodes         um, in and out (dipole-fit locations too)
conductivity ``sigma``        S/m (a real number; strings/arrays rejected)
``v`` / ``imem``              mV / nA
``dipole``                    nA um (1 nA m = 1e6 nA um)
``lfp``                       mV
``eeg``                       uV
``meg``                       fT
fitted dipole moment          nA m
============================  =========================================

Coordinates: cells are described in their own frame (``cell.segments``; the
hnn-core pyramidal cells have the soma at the origin and the apical dendrite
along +z). A :class:`Placement` rotates a cell about its soma and moves the
soma to ``position``. Head models are centred at the origin; x points right,
y to the nose, z to the vertex.

Dipoles are always computed in the cell's own frame (soma at the origin) and
then rotated: translating a geometry by ~80 mm before applying
``CurrentDipoleMoment`` would amplify the tiny float32 charge-conservation
error of recorded currents (sum(imem) != 0) into the dipole.

MNE-Python: montages come from ``mne.channels.make_standard_montage`` and are
projected onto the scalp sphere; ``eeg``/``meg``/``fit_dipole`` accept
``mne.Info``/``DigMontage``/``Evoked``; :func:`to_mne` gives ``mne.EvokedArray``
and ``DipoleFit.to_mne()`` an ``mne.Dipole``. MNE uses SI units (m, V, T, A m, s).
mne is imported on first use only.

Modules: ``currents`` (V -> I_m, dipole matrix), ``dipoles``, ``lfp_model``,
``head``, ``montages``, ``eeg_model``, ``meg_model``, ``kernels`` (vectorized
lead-field numerics), ``fit`` and ``fit_search``, ``scaling``, ``mne_interop``,
``plots``, ``torch_layers`` (loaded on first use of a torch class). Placement
lives in :mod:`mtlneuron.geometry`.
"""
from __future__ import annotations

import importlib as _importlib
# Incidental names that were reachable as ``mtl.fields.<name>`` before the package split; kept.
import numbers  # noqa: F401
from collections.abc import Sequence  # noqa: F401
from dataclasses import dataclass  # noqa: F401
from typing import Any, Callable  # noqa: F401

import numpy as np  # noqa: F401
import xarray as xr  # noqa: F401

from ..conventions import AXES
from ..geometry import Placement, Population, cell_geometry, place
from .currents import dipole_matrix, membrane_currents, vmem_to_imem_matrix
from .dipoles import dipole, dipole_dataset, population_dipole
from .eeg_model import EEGModel, eeg, lead_field
from .fit import DipoleFit, fit_dipole
from .head import DEFAULT_RADII, DEFAULT_SIGMAS, FourSphere
from .kernels import MU0
from .lfp_model import LFPModel, grid, laminar_probe, lfp
from .meg_model import MEGModel, helmet, meg
from .mne_interop import from_mne, to_mne
from .montages import MONTAGES, montage
from .plots import plot_laminar, plot_topography
from .scaling import fit_scale

__all__ = [
    # placement
    "Placement", "Population", "place",
    # operators
    "vmem_to_imem_matrix", "dipole_matrix", "membrane_currents", "cell_geometry",
    # LFP
    "lfp", "laminar_probe", "grid",
    # dipoles
    "dipole", "population_dipole", "dipole_dataset",
    # EEG / MEG
    "FourSphere", "montage", "MONTAGES", "eeg", "lead_field", "meg", "helmet",
    # forward models: one class per model, get_transformation_matrix() as in LFPykit
    "LFPModel", "EEGModel", "MEGModel",
    # MNE-Python interop
    "to_mne", "from_mne",
    # inverse
    "fit_dipole", "DipoleFit", "fit_scale",
    # plots
    "plot_topography", "plot_laminar",
    # torch layers (imported lazily: torch is only loaded when one is used)
    "LinearOperator", "VmemToImem", "CurrentDipole", "LFPOperator", "EEGOperator",
]

_TORCH_CLASSES = ("LinearOperator", "VmemToImem", "CurrentDipole", "LFPOperator", "EEGOperator")


def __getattr__(name: str):
    if name in _TORCH_CLASSES:
        value = getattr(_importlib.import_module(".torch_layers", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_TORCH_CLASSES))
