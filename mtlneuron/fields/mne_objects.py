"""Reading MNE-Python objects: which object is which, and where its EEG / MEG channels sit.

The lowest layer of the MNE interop: :mod:`~mtlneuron.fields.montages` (EEG
montages from MNE objects) and :mod:`~mtlneuron.fields.mne_interop` (Evoked in
and out) both build on it, so neither imports the other back. ``mne`` is
imported inside the functions that need it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_mne", "eeg_positions", "meg_positions"]

def is_mne(obj: Any, *names: str) -> bool:
    """True when ``obj`` is an MNE object of one of the given class names (or a subclass of one)."""
    return any(c.__module__.startswith("mne") and c.__name__ in names for c in type(obj).__mro__)


def _info(obj: Any):
    return obj.info if is_mne(obj, "Evoked", "BaseRaw", "BaseEpochs") else obj


def _picks(info, kind: str) -> np.ndarray:
    import mne

    if kind == "eeg":
        return mne.pick_types(info, meg=False, eeg=True, exclude="bads")
    picks = mne.pick_types(info, meg="mag", eeg=False, exclude="bads")
    grads = mne.pick_types(info, meg="grad", eeg=False, exclude="bads")
    if not len(picks):
        raise ValueError(f"no magnetometers in the MNE object ({len(grads)} gradiometers): only magnetometers "
                         f"are modelled; pick them with .pick('mag')")
    return picks


def eeg_positions(obj: Any) -> tuple[list[str], np.ndarray]:
    """EEG channel names and positions (m, MNE head frame) of an Info, Evoked or DigMontage."""
    if is_mne(obj, "DigMontage"):
        pos = obj.get_positions()["ch_pos"]
        names, xyz = list(pos), np.array(list(pos.values()), dtype=float).reshape(-1, 3)
    else:
        info = _info(obj)
        picks = _picks(info, "eeg")
        names = [info["ch_names"][i] for i in picks]
        xyz = np.array([info["chs"][i]["loc"][:3] for i in picks], dtype=float).reshape(-1, 3)
    if not names:
        raise ValueError(f"the {type(obj).__name__} has no EEG channels")
    bad = [n for n, p in zip(names, xyz) if not np.all(np.isfinite(p)) or not np.any(p)]
    if bad:
        raise ValueError(f"EEG channels {bad[:5]} have no position; set a montage first (info.set_montage(...))")
    return names, xyz


def meg_positions(obj: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Magnetometer names, positions (m) and coil normals in MNE's head frame (through ``dev_head_t``)."""
    info = _info(obj)
    picks = _picks(info, "meg")
    names = [info["ch_names"][i] for i in picks]
    loc = np.array([info["chs"][i]["loc"] for i in picks], dtype=float)
    if not np.all(np.isfinite(loc[:, :3])) or not np.all(np.isfinite(loc[:, 9:12])):
        raise ValueError("some magnetometers have no position or orientation (NaN in info['chs'][i]['loc'])")
    trans = np.eye(4) if info["dev_head_t"] is None else np.asarray(info["dev_head_t"]["trans"], dtype=float)
    pos = loc[:, :3] @ trans[:3, :3].T + trans[:3, 3]
    normals = loc[:, 9:12] @ trans[:3, :3].T
    return names, pos, normals / np.linalg.norm(normals, axis=1, keepdims=True)
