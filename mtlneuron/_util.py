"""Small shared helpers: callable modules, atomic writes, provenance, checks, NaN-padded rows.

Nothing here knows about neurons; every pipeline module may import it.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np


def make_module_callable(module_name: str, func: Callable) -> None:
    """Let ``module(...)`` call ``func`` while ``module.attr`` still works.

    The public API has both ``mtl.simulate(cell, drive)`` and helpers such as
    ``mtl.simulate.plot(...)``; a callable module gives both without a second
    name for the same thing.
    """
    module = sys.modules[module_name]

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return func(*args, **kwargs)

    module.__class__ = _CallableModule


def check_output_path(path: str | os.PathLike, overwrite: bool, *, name: str = "output path",
                      flag: str = "overwrite=True") -> Path:
    """Validate an output file path before any work is done.

    ``name`` is what the messages call the path (a command line passes its
    flag, ``"--out"``) and ``flag`` how to allow replacing it (``"--overwrite"``).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    IsADirectoryError
        If ``path`` is a directory (never replaced, even with ``overwrite``).
    PermissionError
        If the directory does not exist or is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{name} {str(path)!r} is a directory; give a file name inside it")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{name} {str(path)!r} already exists; pass {flag} to replace it")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise PermissionError(f"{name} {str(path)!r}: directory {str(directory)!r} does not exist")
    # A real write probe: permission bits alone say nothing for root or read-only mounts.
    try:
        fd, probe = tempfile.mkstemp(prefix=".mtl-write-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(f"{name} {str(path)!r}: directory {str(directory)!r} is not writable "
                              f"({err.strerror})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    On any exception the temporary file is removed, so a crash never leaves a
    half-written file under the final name.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@functools.lru_cache(maxsize=1)
def _versions() -> tuple:
    return tuple(_lookup_versions().items())


def versions() -> dict[str, str]:
    """Versions of the simulation stack, for provenance attrs (looked up once per process)."""
    return dict(_versions())


def _lookup_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist, key in [("NEURON", "neuron_version"), ("LFPy", "lfpy_version"),
                      ("LFPykit", "lfpykit_version"), ("hnn_core", "hnn_core_version"),
                      ("mtlneuron", "mtlneuron_version")]:
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = "unknown"
    return out


def command_line() -> str:
    """The command that created a file (for provenance)."""
    return " ".join(sys.argv) if sys.argv and sys.argv[0] else "python"


def spike_matrix(spikes: Sequence[np.ndarray]) -> np.ndarray:
    """(row, spike) array of sorted spike times, NaN-padded to the longest row."""
    width = max([len(s) for s in spikes] + [0])
    out = np.full((len(spikes), width), np.nan)
    for i, s in enumerate(spikes):
        out[i, :len(s)] = np.sort(np.asarray(s, dtype=float))
    return out


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` of every mtlneuron command line: each option's default (when it has one) after its help;
    choices appear in the usage (``{surrogate,neuron}``)."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._has_default(action):  # argparse prints nothing for an option without help
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if self._has_default(action) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text

    @staticmethod
    def _has_default(action: argparse.Action) -> bool:
        return bool(action.option_strings) and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
