"""Compile and load mtlneuron's own NMODL mechanisms (``mtlneuron/nrn/mod``).

``nrnivmodl`` runs automatically on first use; the compiled library is cached
per NEURON version and mod-file content under ``$MTLNEURON_CACHE`` (default
``~/.cache/mtlneuron``), so an installed package needs no write access to its
own directory. A file lock makes concurrent workers compile only once.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

MOD_DIR = Path(__file__).parent / "mod"
_loaded: set[str] = set()


def cache_root() -> Path:
    return Path(os.environ.get("MTLNEURON_CACHE", Path.home() / ".cache" / "mtlneuron"))


def _mod_hash() -> str:
    import neuron

    digest = hashlib.sha256(neuron.__version__.encode())
    for mod in sorted(MOD_DIR.glob("*.mod")):
        digest.update(mod.name.encode() + mod.read_bytes())
    return digest.hexdigest()[:16]


def _nrnivmodl() -> str:
    exe = Path(sys.executable).parent / "nrnivmodl"
    if exe.exists():
        return str(exe)
    found = shutil.which("nrnivmodl")
    if found is None:
        raise RuntimeError("nrnivmodl not found: install NEURON==8.2.7 in this environment")
    return found


def compiled_dir() -> Path:
    """Directory holding ``x86_64/libnrnmech.so`` (compiled if needed)."""
    target = cache_root() / f"mod-{_mod_hash()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f"{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".done").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for mod in MOD_DIR.glob("*.mod"):
                shutil.copy(mod, target / mod.name)
            result = subprocess.run([_nrnivmodl()], cwd=target, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"nrnivmodl failed in {target}:\n{result.stdout}\n{result.stderr}")
            (target / ".done").write_text("ok\n")
    return target


def load() -> None:
    """Load mtlneuron's mechanisms into this process's NEURON (once)."""
    import neuron
    from neuron import h

    if "mtl" in _loaded or hasattr(h, "MtlAlphaSyn"):
        _loaded.add("mtl")
        return
    neuron.load_mechanisms(str(compiled_dir()))
    _loaded.add("mtl")


def load_hnn() -> None:
    """Load hnn-core's compiled mechanisms (hh2, km, ca, ... and dipole)."""
    from neuron import h

    if "hnn" in _loaded or hasattr(h, "hh2"):
        _loaded.add("hnn")
        return
    import contextlib
    import io

    from hnn_core.network_builder import load_custom_mechanisms

    with contextlib.redirect_stdout(io.StringIO()):  # silence its "Loading ..." line
        load_custom_mechanisms()
    _loaded.add("hnn")
