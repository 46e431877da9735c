"""The Surrogate checkpoint format: writing, reading, version and cell compatibility, pretrained models.

A checkpoint is a plain ``torch.save`` dict (readable with
``torch.load(weights_only=True)``; no code is unpickled) holding everything
needed to use the model: see ``docs/surrogate.md``. This module knows the
format, not the network: :meth:`mtlneuron.surrogate.Surrogate.checkpoint`
builds the dict and :meth:`~mtlneuron.surrogate.Surrogate.from_checkpoint`
rebuilds the model from it.

Integrity: ``weights_sha256`` is a SHA-256 of every weight tensor (name, dtype,
shape and bytes, in name order). :func:`read_checkpoint` recomputes it and
refuses a file whose weights changed (a flipped bit on disk or in transfer).
Files written before the hash existed (no ``weights_sha256``) still load, with a
:class:`UserWarning` that they cannot be verified; :func:`add_weights_hash`
upgrades such a file in place without touching a weight.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .. import _util
from ..conventions import same_dt, soma_index

__all__ = ["FORMAT", "FORMAT_VERSION", "SITE_COLUMNS", "REQUIRED_KEYS", "checkpoint_dict", "data_dirs",
           "pretrained_path", "write_checkpoint", "read_checkpoint", "library_version", "check_version", "check_cell",
           "check_data", "meta_from_cell", "check_meta", "plain", "weights_hash", "add_weights_hash"]

FORMAT = "mtlneuron.Surrogate"
FORMAT_VERSION = 2  # 2: learned input projection (version 1 filtered every site)
SITE_COLUMNS = ("segment", "region", "receptor", "kind", "point_process", "tau1", "tau2", "e")
REQUIRED_KEYS = ("format_version", "mtlneuron_version", "cell_key", "cell_name", "dt", "spike_threshold", "config",
                 "meta", "scalers", "state_dict")


# -- the format ------------------------------------------------------------------------------------

def checkpoint_dict(model, state_dict: Mapping, resume: Mapping | None = None) -> dict:
    """The checkpoint of ``model`` (a Surrogate) with the weights ``state_dict``, as plain values and tensors.

    ``resume`` is the training state added by :mod:`mtlneuron.training` (None: none).
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mtlneuron_version": library_version(),
        "cell_key": model.cell_key,
        "cell_name": model.cell_name,
        "dt": model.dt,
        "spike_threshold": model.spike_threshold,
        "config": model.config.to_dict(),
        "meta": plain(model.meta),
        "scalers": model.scalers(),
        "state_dict": (weights := {k: v.detach().cpu().clone() for k, v in state_dict.items()}),
        "weights_sha256": weights_hash(weights),
        "training": plain(model.training_info),
        "resume": resume,
    }


def weights_hash(state_dict: Mapping) -> str:
    """SHA-256 (hex) of a state dict: every tensor's name, dtype, shape and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def add_weights_hash(path: str | os.PathLike) -> Path:
    """Give a checkpoint written before integrity hashes its ``weights_sha256`` (weights untouched, atomic)."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ckpt = read_checkpoint(path)
    ckpt["weights_sha256"] = weights_hash(ckpt["state_dict"])
    return write_checkpoint(ckpt, path)


# -- files -----------------------------------------------------------------------------------------

def data_dirs() -> list[Path]:
    """Folders searched for pretrained models: the ``mtlneuron.data`` package.

    pyproject.toml installs the repository's ``data/`` as ``mtlneuron.data``, so
    this is ``data/`` in a source or editable install and
    ``site-packages/mtlneuron/data`` after a plain ``pip install .``.
    """
    from .. import data

    return [Path(data.__file__).resolve().parent]


def pretrained_path(name: str) -> Path:
    """The file ``<name>.pt`` of a pretrained surrogate in :func:`data_dirs`.

    Raises
    ------
    ValueError
        If ``name`` is not a plain name (no folders, no leading dot).
    FileNotFoundError
        Listing the pretrained models that exist, if there is no ``<name>.pt``.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name.startswith("."):
        raise ValueError(f"pretrained model name must be a plain name like 'l5pc', got {name!r}")
    dirs = data_dirs()
    for d in dirs:
        path = d / f"{name}.pt"
        if path.is_file():
            return path
    found = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.pt")})
    raise FileNotFoundError(f"no pretrained surrogate {name!r}: looked for {name}.pt in "
                            f"{', '.join(str(d) for d in dirs)}; available: {', '.join(found) or 'none'}")


def write_checkpoint(ckpt: Mapping, path: str | os.PathLike) -> Path:
    """Save a checkpoint dict atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint folder {str(path.parent)!r} does not exist")
    with _util.atomic_path(path) as tmp:
        torch.save(dict(ckpt), tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read and sanity-check a Surrogate checkpoint (no code is unpickled).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupted, not a torch file, or not an mtlneuron
        Surrogate checkpoint of a known format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad bytes (pickle, zip, EOF, runtime)
        raise ValueError(f"{str(path)!r} is not a readable mtlneuron checkpoint: corrupted, truncated or "
                         f"not a plain torch file ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = f"format {ckpt.get('format')!r}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{str(path)!r} is a torch file but not an mtlneuron Surrogate checkpoint ({what})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: missing {missing}")
    fv = ckpt["format_version"]
    if fv == 1:
        raise ValueError(f"checkpoint {str(path)!r} has format version 1 (per-site input features, "
                         f"mtlneuron before the learned input projection); this mtlneuron "
                         f"({library_version()}) reads version {FORMAT_VERSION}: retrain the model")
    if fv != FORMAT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {fv!r}; this mtlneuron "
                         f"({library_version()}) reads version {FORMAT_VERSION}")
    _verify_weights(ckpt, path)
    return ckpt


def _verify_weights(ckpt: dict, path: Path) -> None:
    state = ckpt["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {str(path)!r} is corrupted: its state_dict is not a dict of tensors")
    saved = ckpt.get("weights_sha256")
    if saved is None:
        warnings.warn(f"checkpoint {str(path)!r} has no weights hash (written before mtlneuron checked "
                      f"integrity): it cannot be verified; mtl.surrogate.add_weights_hash(path) adds one",
                      UserWarning, stacklevel=3)
    elif weights_hash(state) != saved:
        raise ValueError(f"checkpoint {str(path)!r} is corrupted: its weights do not match the SHA-256 "
                         f"recorded when it was saved (a changed byte on disk or in transfer); "
                         f"restore it from a good copy")
    for name, t in state.items():  # a hash proves the bytes unchanged, not that they were sane
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"checkpoint {str(path)!r} holds non-finite weights in {name!r} (a diverged "
                             f"training run?); it cannot be used")


# -- compatibility ---------------------------------------------------------------------------------

def library_version() -> str:
    """The installed mtlneuron version (written into checkpoints and predictions)."""
    import mtlneuron

    return str(getattr(mtlneuron, "__version__", "0.0.0+src"))


def _major_minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"^\s*(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_version(saved: str, source: str) -> None:
    """Refuse a checkpoint of another major version, or of another minor version while the major is 0."""
    current = library_version()
    a, b = _major_minor(saved), _major_minor(current)
    ok = a is not None and b is not None and a[0] == b[0] and ((a[0] > 0 and a[1] <= b[1]) or a == b)
    if not ok:
        raise ValueError(f"{source} was written by mtlneuron {saved}, which is not compatible with the "
                         f"installed mtlneuron {current}; retrain the model, or pass check_version=False "
                         f"at your own risk")


def check_cell(ckpt: Mapping, cell, source: str) -> None:
    """Refuse a checkpoint trained for another cell (key, segment names, site table)."""
    if cell.key != ckpt["cell_key"]:
        raise ValueError(f"{source} was trained for cell {ckpt['cell_name']!r} (key {ckpt['cell_key']}), "
                         f"not for cell {cell.name!r} (key {cell.key})")
    mine = meta_from_cell(cell)
    theirs = ckpt["meta"]
    if mine["segment_names"] != list(theirs["segment_names"]):
        raise ValueError(f"{source}: the segments of cell {cell.name!r} differ from the checkpoint's")
    for col in ("segment", "tau1", "tau2", "kind"):
        if list(mine["sites"][col]) != list(theirs["sites"][col]):
            raise ValueError(f"{source}: site table column {col!r} of cell {cell.name!r} differs from the "
                             f"checkpoint's ({len(mine['sites'][col])} vs {len(theirs['sites'][col])} sites)")


def check_data(model, *, cell_key: Any = None, dt: Any = None, n_sites: int | None = None,
               n_segments: int | None = None, segment_names: Any = None, what: str = "dataset") -> None:
    """Refuse data (a dataset for prediction or training) made for another cell or grid than ``model``.

    Each given property is compared with the model's: the cell key, the time
    bin ``dt`` (ms, :func:`~mtlneuron.conventions.same_dt`), the numbers of
    sites and segments, and the segment names. ``None`` skips a check.
    """
    if cell_key is not None and str(cell_key) != model.cell_key:
        raise ValueError(f"{what} was made for cell key {str(cell_key)!r}, this surrogate is for "
                         f"{model.cell_key!r} ({model.cell_name})")
    if dt is not None and not same_dt(dt, model.dt):
        raise ValueError(f"{what} dt {float(dt)} ms does not match this model's dt {model.dt} ms")
    if n_sites is not None and int(n_sites) != model.n_sites:
        raise ValueError(f"{what} has {int(n_sites)} sites, this surrogate of {model.cell_name!r} has "
                         f"{model.n_sites}")
    if n_segments is not None and int(n_segments) != model.n_segments:
        raise ValueError(f"{what} has {int(n_segments)} segments, this surrogate of {model.cell_name!r} has "
                         f"{model.n_segments}")
    if segment_names is not None and [str(s) for s in segment_names] != model.segment_names:
        raise ValueError(f"{what} segment names differ from the model's")


# -- the cell description a model keeps -----------------------------------------------------------

def meta_from_cell(cell) -> dict:
    """The cell description a Surrogate keeps: site table, segments, soma index, threshold."""
    for attr in ("sites", "segments", "key", "name", "spike_threshold"):
        if not hasattr(cell, attr):
            raise ValueError(f"cell must be an mtlneuron Cell (mtl.cells.get(name)), got {type(cell).__name__}")
    sites, seg = cell.sites, cell.segments
    table = {}
    for col in SITE_COLUMNS:
        values = sites[col].values
        if values.dtype.kind not in "fiu":
            values = values.astype(str)
        table[col] = values.tolist()
    return check_meta({
        "cell_key": cell.key,
        "cell_name": cell.name,
        "spike_threshold": float(cell.spike_threshold),
        "sites": table,
        "segment_names": [str(s) for s in seg["segment"].values],
        "segment_regions": [str(r) for r in seg["region"].values],
        "soma_index": soma_index(seg),
    })


def check_meta(meta: Mapping) -> dict:
    """A validated plain-Python copy of a cell description (from :func:`meta_from_cell` or a checkpoint)."""
    needed = ("cell_key", "cell_name", "spike_threshold", "sites", "segment_names", "segment_regions",
              "soma_index")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise ValueError(f"cell description is missing {missing}")
    meta = plain(meta)
    n = len(meta["sites"]["tau1"])
    if n == 0 or any(len(meta["sites"][c]) != n for c in ("tau1", "tau2")):
        raise ValueError("site table must list tau1 and tau2 for every site")
    if not 0 <= meta["soma_index"] < len(meta["segment_names"]):
        raise ValueError(f"soma_index {meta['soma_index']} out of range")
    return meta


def plain(obj):
    """Deep copy into plain Python containers (safe for ``torch.load(weights_only=True)``)."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
