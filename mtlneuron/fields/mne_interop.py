"""MNE-Python both ways: Info / DigMontage / Evoked in, EvokedArray and Dipole out.

Units: MNE uses SI (m, V, T, A m, s); mtlneuron uses um, uV, fT, nA m and ms.
EEG positions from MNE are projected onto the model's scalp sphere (see
:func:`mtlneuron.fields.montage`); MEG sensor positions are taken in MNE's
head frame as they are, the four-sphere head being centred at its origin.
Only magnetometers are modelled (gradiometers need coil integration).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..conventions import AXES
from .head import as_head
from .mne_objects import eeg_positions, is_mne, meg_positions
from .montages import eeg_channels

__all__ = ["is_mne", "eeg_positions", "meg_positions", "info_reference", "from_mne", "to_mne", "dipole_to_mne"]

_POINT_MAG = 2000  # FIFFV_COIL_POINT_MAGNETOMETER


def info_reference(info) -> str:
    """The EEG reference an Info states: "average" (average-reference projector), "custom" (some reference
    applied, not which), or "unknown" (the recording's own)."""
    for proj in info["projs"]:
        if "average" in proj["desc"].lower() and "eeg" in proj["desc"].lower():
            return "average"
    return "custom" if int(info["custom_ref_applied"]) else "unknown"


def from_mne(evoked: Any, kind: str | None = None, head: Any = None) -> xr.DataArray:
    """An ``mne.Evoked`` as an ``eeg`` (uV) or ``meg`` (fT, magnetometers) DataArray (time in ms).

    EEG: average-reference projectors are applied and recorded as ``reference="average"``;
    positions are projected onto the scalp of ``head``. MEG: positions and coil normals in
    MNE's head frame (um), ``component="normal"``.
    """
    if not is_mne(evoked, "Evoked"):
        raise TypeError(f"expected an mne.Evoked, got {type(evoked).__name__}")
    import mne

    has_eeg = len(mne.pick_types(evoked.info, meg=False, eeg=True, exclude="bads")) > 0
    has_mag = len(mne.pick_types(evoked.info, meg="mag", eeg=False, exclude="bads")) > 0
    if kind is None:
        if has_eeg and has_mag:
            raise ValueError("the Evoked holds EEG and MEG: pass kind='eeg' or kind='meg'")
        kind = "eeg" if has_eeg else "meg"
    head = as_head(head)
    time = evoked.times * 1e3
    if kind == "eeg":
        ev = evoked.copy()
        reference = info_reference(ev.info)
        if reference == "average":
            ev.apply_proj(verbose=False)
        names, xyz = eeg_channels(ev, head)
        data = ev.get_data(picks=list(names)) * 1e6
        return xr.DataArray(data.T, dims=("time", "electrode"),
                            coords={"time": ("time", time, {"units": "ms"}), "electrode": np.asarray(names),
                                    "x": ("electrode", xyz[:, 0], {"units": "um"}),
                                    "y": ("electrode", xyz[:, 1], {"units": "um"}),
                                    "z": ("electrode", xyz[:, 2], {"units": "um"})},
                            name="eeg", attrs={"units": "uV", "reference": reference, "source": "mne.Evoked",
                                               "positions_units": "um", **head.attrs()})
    names, pos, normals = meg_positions(evoked)
    data = evoked.get_data(picks=names) * 1e15
    xyz = pos * 1e6
    coords = {"time": ("time", time, {"units": "ms"}), "sensor": np.asarray(names)}
    coords.update({c: ("sensor", xyz[:, i], {"units": "um"}) for i, c in enumerate(AXES)})
    coords.update({f"n{c}": ("sensor", normals[:, i], {"units": "1"}) for i, c in enumerate(AXES)})
    return xr.DataArray(data.T, dims=("time", "sensor"), coords=coords, name="meg",
                        attrs={"units": "fT", "component": "normal", "model": "spherical", "source": "mne.Evoked",
                               "positions_units": "um", **head.attrs()})


def _sfreq(time_ms: np.ndarray) -> float:
    if time_ms.size < 2:
        return 1000.0
    dt = np.diff(time_ms)
    if not np.allclose(dt, dt[0], rtol=1e-6):
        raise ValueError("to_mne needs a uniform time grid")
    return 1e3 / float(dt[0])


def _frame(normal: np.ndarray) -> np.ndarray:
    """A right-handed orthonormal frame (ex, ey, ez) with ez = normal, as MNE's coil loc[3:12]."""
    ez = normal / np.linalg.norm(normal)
    helper = np.array([1.0, 0.0, 0.0]) if abs(ez[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    ex = np.cross(helper, ez)
    ex /= np.linalg.norm(ex)
    return np.r_[ex, np.cross(ez, ex), ez]


def to_mne(data: Any, comment: str = ""):
    """An ``eeg``/``meg`` DataArray as ``mne.EvokedArray``, or a dipole fit as ``mne.Dipole``.

    EEG becomes ``eeg`` channels in V with a DigMontage in MNE's head frame
    (m); ``reference="average"`` adds an applied average-reference projector,
    an electrode reference sets ``custom_ref_applied``. MEG (``radial``,
    ``normal`` or ``xyz`` components) becomes point magnetometers (T) oriented
    along the measured component, with an identity device-to-head transform.
    Time: ms -> s. Data with more dims than (time, channel) must be reduced first.

    Examples
    --------
    >>> evoked = fields.to_mne(fields.eeg(ds, electrodes="biosemi64", reference="average"))
    >>> evoked.plot_topomap(times=[0.05])
    """
    if isinstance(data, xr.Dataset):
        return dipole_to_mne(data)
    if not isinstance(data, xr.DataArray):
        raise TypeError(f"to_mne takes an eeg/meg DataArray or a fit_dipole result, got {type(data).__name__}")
    import mne

    units = data.attrs.get("units")
    ch_dim = "electrode" if "electrode" in data.dims else "sensor"
    kind = "eeg" if units == "uV" and ch_dim == "electrode" else "meg" if units == "fT" and ch_dim == "sensor" else None
    if kind is None:
        raise ValueError(f"to_mne needs eeg (uV, electrode dim) or meg (fT, sensor dim) data, got units {units!r} "
                         f"and dims {data.dims}")
    extra = set(data.dims) - {"time", ch_dim, "component"}
    if extra:
        raise ValueError(f"to_mne takes (time, {ch_dim}) data: select or average {sorted(extra)} first")
    data = data if "time" in data.dims else data.expand_dims(time=[0.0])
    time = np.asarray(data["time"].values, dtype=float)
    xyz = np.stack([np.asarray(data[c].values, dtype=float) for c in AXES], axis=1) * 1e-6  # m
    names = [str(n) for n in data[ch_dim].values]
    if kind == "eeg":
        info = mne.create_info(names, _sfreq(time), "eeg")
        info.set_montage(mne.channels.make_dig_montage(ch_pos=dict(zip(names, xyz)), coord_frame="head"),
                         on_missing="ignore")
        evoked = mne.EvokedArray(data.transpose(ch_dim, "time").values * 1e-6, info, tmin=time[0] * 1e-3,
                                 comment=comment, verbose=False)
        reference = data.attrs.get("reference", "infinity")
        if reference == "average":
            evoked.set_eeg_reference("average", projection=True, verbose=False).apply_proj(verbose=False)
        elif reference not in ("infinity", None, "unknown"):
            with evoked.info._unlock():
                evoked.info["custom_ref_applied"] = 1
        return evoked
    component = data.attrs.get("component", "radial")
    if component == "xyz":
        values = data.transpose(ch_dim, "component", "time").values.reshape(-1, data.sizes["time"])
        normals = np.tile(np.eye(3), (len(names), 1))
        xyz = np.repeat(xyz, 3, axis=0)
        names = [f"{n}-{c}" for n in names for c in AXES]
    else:
        values = data.transpose(ch_dim, "time").values
        normals = (np.stack([data[f"n{c}"].values for c in AXES], axis=1) if component == "normal"
                   else xyz / np.linalg.norm(xyz, axis=1, keepdims=True))
    info = mne.create_info(names, _sfreq(time), "mag")
    with info._unlock():
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", np.eye(4))
    for ch, pos, nrm in zip(info["chs"], xyz, normals):
        ch["loc"][:] = np.r_[pos, _frame(nrm)]
        ch["coil_type"] = _POINT_MAG
    return mne.EvokedArray(values * 1e-15, info, tmin=time[0] * 1e-3, comment=comment, verbose=False)


def dipole_to_mne(fit: xr.Dataset, name: str | None = None):
    """A :func:`fit_dipole` result as ``mne.Dipole`` (head frame, m; A m; s; per-time moment direction)."""
    import mne

    if "location" not in fit or "moment" not in fit:
        raise ValueError("dipole_to_mne needs a fit_dipole result (location, moment)")
    if "trial" in fit.dims:
        raise ValueError("select one trial first (fit.isel(trial=0))")
    moment = fit["moment"].transpose("time", "axis").values * 1e-9  # nA m -> A m
    amp = np.linalg.norm(moment, axis=1)
    fixed = fit["orientation"].values if "orientation" in fit else np.array([0.0, 0.0, 1.0])
    ori = np.where(amp[:, None] > 0, moment / np.where(amp > 0, amp, 1.0)[:, None], fixed)
    loc = fit["location"].values * 1e-6  # um -> m
    pos = np.broadcast_to(loc, moment.shape).copy() if loc.ndim == 1 else fit["location"].transpose(
        "time", "axis").values * 1e-6
    return mne.Dipole(fit["time"].values * 1e-3, pos, amp, ori, np.asarray(fit["gof_time"].values, dtype=float),
                      name=name or f"mtlneuron {fit.attrs.get('kind', '')} {fit.attrs.get('mode', 'fixed')} dipole")
