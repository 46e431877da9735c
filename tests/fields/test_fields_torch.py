"""Torch layers: gradcheck, equality with the numpy forward models, lazy import."""
import subprocess
import sys

import numpy as np
import pytest

from mtlneuron import fields


def test_import_fields_does_not_load_torch():
    code = ("import sys, mtlneuron.fields as f; a = 'torch' in sys.modules; f.EEGOperator; "
            "print(a, 'torch' in sys.modules, f.EEGOperator.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "mtlneuron.fields.torch_layers"]


@pytest.mark.neuron
def test_torch_operators_gradcheck_and_match_numpy(cell, trial):
    import torch

    v = torch.tensor(trial["v"].values[:3], dtype=torch.float64, requires_grad=True)
    el = fields.laminar_probe(4, 400.0, origin=(50, 0, 1500))
    ops = [fields.VmemToImem(cell), fields.CurrentDipole(cell, from_voltage=True),
           fields.LFPOperator(cell, el, from_voltage=True)]
    for op in ops:
        assert torch.autograd.gradcheck(op, (v,), eps=1e-6, atol=1e-6)
    imem, dip, lfp_t = (op(v).detach().numpy() for op in ops)
    np.testing.assert_allclose(imem, trial["v"].values[:3].astype(float) @ fields.vmem_to_imem_matrix(cell).T)
    ref = fields.lfp(trial.isel(time=slice(0, 3)), cell, el, source="v").values
    np.testing.assert_allclose(lfp_t, ref, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(dip, fields.dipole(trial.isel(time=slice(0, 3)), cell, source="v").values,
                               rtol=1e-10, atol=1e-9)
    eeg_op = fields.EEGOperator(electrodes="10-20")
    p = torch.tensor(trial["dipole"].values[:4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(eeg_op, (p,), eps=1e-6, atol=1e-6)
    np.testing.assert_allclose(eeg_op(p).detach().numpy(),
                               fields.eeg(trial.isel(time=slice(0, 4)), electrodes="10-20").values, rtol=1e-10)
    assert ops[0](v.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="last axis"):
        ops[0](torch.zeros(3, 10, dtype=torch.float64))
