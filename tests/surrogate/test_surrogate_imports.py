"""The surrogate/ and training/ split at run time: import direction, re-exports, the train command.

(The static rules, import steps, sizes and private names, are in tests/test_layout.py.)
"""
import subprocess
import sys

import pytest

import mtlneuron


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in sys.modules if m.startswith('mtlneuron')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(res.stdout.split())


def test_surrogate_does_not_import_training():
    for statement in ("import mtlneuron.surrogate", "import mtlneuron.model", "from mtlneuron import Surrogate"):
        loaded = _loaded_after(statement)
        assert "mtlneuron.surrogate.module" in loaded or statement.endswith("Surrogate")
        assert not {m for m in loaded if m.startswith(("mtlneuron.training", "mtlneuron.train"))}, statement


def test_reexports():
    from mtlneuron import model, surrogate, train, training

    for name in model.__all__:
        assert getattr(model, name) is getattr(surrogate, name, None) or name == "AXES", name
    for name in train.__all__:
        assert getattr(train, name) is getattr(training, name), name
    for name in ("Surrogate", "SurrogateConfig", "SurrogateState", "detect_spikes", "read_checkpoint",
                 "write_checkpoint", "data_dirs", "FORMAT", "FORMAT_VERSION"):
        assert hasattr(model, name), name
    for name in ("fit", "split_trials", "compute_scalers", "DEFAULT_LOSS_WEIGHTS", "main"):
        assert hasattr(train, name), name
    assert mtlneuron.Surrogate is surrogate.Surrogate


@pytest.mark.parametrize("module", ["mtlneuron.train", "mtlneuron.training"])
def test_train_command_help(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--data" in res.stdout and "--v-clip" in res.stdout
