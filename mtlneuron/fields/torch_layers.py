"""Torch layers: fixed linear forward models as differentiable ``nn.Module``s.

Importing this module imports torch; ``mtlneuron.fields`` exposes these
classes lazily, so ``import mtlneuron.fields`` alone does not load torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..geometry import Placement
from .currents import current_or_voltage_input, dipole_matrix, vmem_to_imem_matrix
from .eeg_model import lead_field
from .head import FourSphere
from .lfp_model import LFPModel

__all__ = ["LinearOperator", "VmemToImem", "CurrentDipole", "LFPOperator", "EEGOperator"]


class LinearOperator(torch.nn.Module):
    """A fixed linear map over the last axis, ``y = x @ matrix.T`` (no trainable parameters).

    The matrix is a float64 buffer (moves with ``.to(device)``); inputs of
    any float dtype are accepted and the output has the input's dtype.
    Differentiable, so losses on LFP/EEG can train a voltage surrogate.

    Parameters
    ----------
    matrix : (n_out, n_in) array
    in_units, out_units : str
        Documentation of the units.
    """

    def __init__(self, matrix: Any, in_units: str = "", out_units: str = ""):
        super().__init__()
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"matrix must be 2-D (n_out, n_in), got shape {m.shape}")
        self.register_buffer("matrix", torch.as_tensor(m))
        self.in_units, self.out_units = in_units, out_units

    @property
    def in_features(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.matrix.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise TypeError(f"{type(self).__name__} expects a floating-point torch.Tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: last axis of the input has size {x.shape[-1]}, "
                             f"expected {self.in_features} ({self.in_units})")
        return x @ self.matrix.to(dtype=x.dtype).T

    def extra_repr(self) -> str:
        return f"in_features={self.in_features} ({self.in_units}), out_features={self.out_features} ({self.out_units})"


class VmemToImem(LinearOperator):
    """Membrane currents from voltages: ``imem (nA) = v (mV) @ M.T`` over the last (segment) axis.

    Parameters
    ----------
    cell : Cell
    """

    def __init__(self, cell: Any):
        super().__init__(vmem_to_imem_matrix(cell), "mV per segment", "nA per segment")


class CurrentDipole(LinearOperator):
    """Current dipole moment (nA um, x/y/z) from ``imem`` (nA), or from ``v`` (mV).

    Parameters
    ----------
    cell : Cell
    placement : Placement, optional
        Rotates the dipole.
    from_voltage : bool
        Input is ``v`` (mV): the matrix is ``D @ M``.
    """

    def __init__(self, cell: Any, placement: Placement | None = None, from_voltage: bool = False):
        super().__init__(*current_or_voltage_input(dipole_matrix(cell, placement), cell, from_voltage), "nA um")


class LFPOperator(LinearOperator):
    """LFP (mV) at electrodes from ``imem`` (nA) or ``v`` (mV), same model as :func:`lfp`.

    Parameters
    ----------
    cell : Cell
    electrodes : (n, 3) array (um)
    method : {"linesource", "pointsource"}
    sigma : float (S/m)
    placement : Placement, optional
    from_voltage : bool
    """

    def __init__(self, cell: Any, electrodes: Any, method: str = "linesource", sigma: float = 0.3,
                 placement: Placement | None = None, from_voltage: bool = False):
        m = LFPModel(Placement(cell) if placement is None else placement, electrodes, method,
                     sigma).get_transformation_matrix()
        super().__init__(*current_or_voltage_input(m, cell, from_voltage), "mV")


class EEGOperator(LinearOperator):
    """EEG (uV) from a dipole (nA um, x/y/z) at a fixed location in the four-sphere head.

    Parameters
    ----------
    head : FourSphere, optional
    electrodes : montage name, names, xarray or (n, 3) array
    dipole_location : (3,) float, optional (um)
    reference : {None, "average"}
    """

    def __init__(self, head: FourSphere | None = None, electrodes: Any = "10-20",
                 dipole_location: Any = None, reference: str | None = None):
        g = lead_field(electrodes, dipole_location, head, reference)
        super().__init__(g.values, "nA um", "uV")
        self.electrodes = list(g["electrode"].values)
