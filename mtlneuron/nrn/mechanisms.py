"""Compile and load mtlneuron's own NMODL mechanisms (``mtlneuron/nrn/mod``).

``nrnivmodl`` runs automatically on first use; the compiled library is cached
per NEURON version and mod-file content under ``$MTLNEURON_CACHE`` (default
``~/.cache/mtlneuron``), so an installed package needs no write access to its
own directory. A file lock makes concurrent workers compile only once.

The cache repairs itself: a build counts only when ``.done`` records the
size and SHA-256 of the library it produced, so an empty, truncated or
replaced ``libnrnmech.so`` (a killed compile, a full disk) is rebuilt on the
next use instead of failing until deleted by hand; a library NEURON cannot
load is rebuilt once before the error is raised.
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


def _libraries(target: Path) -> list[Path]:
    """The built libraries, the one NEURON loads (``<arch>/.libs/``) first."""
    names = ("libnrnmech.so", "libnrnmech.dylib")
    return [lib for sub in ("*/.libs", "*") for name in names for lib in sorted(target.glob(f"{sub}/{name}"))]


def _library(target: Path) -> Path | None:
    found = _libraries(target)
    return found[0] if found else None


def _fingerprint(lib: Path) -> str:
    data = lib.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def cache_ok(target: Path) -> bool:
    """True when ``target`` holds a finished build whose library is the one recorded in ``.done``."""
    done, libs = target / ".done", _libraries(target)
    if not done.is_file() or not libs or any(lib.stat().st_size == 0 for lib in libs):
        return False
    record = done.read_text().strip()
    if record == "ok":  # written before fingerprints: accept a non-empty shared library
        with libs[0].open("rb") as f:
            return f.read(4) in (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")  # ELF, Mach-O
    return record == _fingerprint(libs[0])


def compiled_dir(rebuild: bool = False) -> Path:
    """Directory holding ``<arch>/libnrnmech.so``, compiled if missing, damaged, or ``rebuild``."""
    target = cache_root() / f"mod-{_mod_hash()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f"{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild or not cache_ok(target):
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for mod in MOD_DIR.glob("*.mod"):
                shutil.copy(mod, target / mod.name)
            result = subprocess.run([_nrnivmodl()], cwd=target, capture_output=True, text=True)
            lib = _library(target)
            if result.returncode != 0 or lib is None or lib.stat().st_size == 0:
                raise RuntimeError(f"nrnivmodl failed in {target}:\n{result.stdout}\n{result.stderr}")
            (target / ".done").write_text(_fingerprint(lib) + "\n")
    return target


def load() -> None:
    """Load mtlneuron's mechanisms into this process's NEURON (once)."""
    from neuron import h

    if "mtl" in _loaded or hasattr(h, "MtlAlphaSyn"):
        _loaded.add("mtl")
        return
    for rebuild in (False, True):  # a library NEURON will not load is rebuilt once
        lib = _library(compiled_dir(rebuild=rebuild))
        if lib is not None and h.nrn_load_dll(str(lib)) and hasattr(h, "MtlAlphaSyn"):
            _loaded.add("mtl")
            return
    raise RuntimeError(f"mtlneuron's mechanisms did not load from {lib}; delete {cache_root()} and retry")


def import_hnn_core():
    """``import hnn_core`` with its one-time survey banner (printed on the first import after an install) silenced.

    Every use of hnn-core in mtlneuron imports it through here first, so the
    banner never lands in the middle of a user's output (``cell.segments``).
    """
    if "hnn_core" not in sys.modules:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import hnn_core  # noqa: F401
    return sys.modules["hnn_core"]


def load_hnn() -> None:
    """Load hnn-core's compiled mechanisms (hh2, km, ca, ... and dipole)."""
    from neuron import h

    if "hnn" in _loaded or hasattr(h, "hh2"):
        _loaded.add("hnn")
        return
    import contextlib
    import io

    import_hnn_core()
    from hnn_core.network_builder import load_custom_mechanisms

    with contextlib.redirect_stdout(io.StringIO()):  # silence its "Loading ..." line
        load_custom_mechanisms()
    _loaded.add("hnn")
