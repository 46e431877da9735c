"""Issues 12.5 (NEURON side) and 12.6: non-finite ground truth is an error naming cell, time and
segment; cell parameters and morphology files are checked before NEURON sees them; a drive is
refused by another cell; the mechanism cache repairs itself."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mtlneuron as mtl

DATA = Path(__file__).parent / "data"


@pytest.mark.neuron
def test_non_finite_neuron_output_is_an_error_naming_cell_time_and_segment(point):
    """A NaN weight bypassing every check (straight to the worker) must not come back as NaN voltages."""
    import numpy as np

    from mtlneuron.nrn import worker
    from mtlneuron.nrn.trial import run_trial

    with pytest.raises(ValueError, match=r"non-finite voltage .* in cell 'point' at t = 10 ms, segment soma"):
        worker.call(point.key, run_trial, point, np.array([10.0]), np.array([0]), np.array([math.nan]), 50.0, 0.5)
    # the worker is still usable afterwards
    assert mtl.simulate(point, mtl.inputs.empty(point, 20.0))["v"].notnull().all()


def test_weights_beyond_float32_are_refused_at_entry(point):
    with pytest.raises(ValueError, match="MAX_WEIGHT"):
        mtl.simulate(point, mtl.inputs.volley(point, [10.0], weight=1e300, duration=50.0))


@pytest.mark.neuron
def test_simulate_refuses_another_cells_drive(point):
    other = mtl.cells.get("point_nmda")
    drive = mtl.inputs.poisson(point, 50.0, seed=0)
    with pytest.raises(ValueError, match="made for cell 'point', not for cell 'point_nmda'"):
        mtl.simulate(other, drive.assign_attrs(n_sites=other.n_sites))  # even with a matching site count


BAD_MORPHOLOGY = [
    ({"g_pas": math.nan}, "g_pas"),
    ({"g_pas": -1e-5}, "g_pas"),
    ({"e_pas": math.inf}, "e_pas"),
    ({"celsius": math.nan}, "celsius"),
    ({"v_init": math.nan}, "v_init"),
    ({"n_exc": 2.5}, "n_exc"),
    ({"n_inh": -1}, "n_inh"),
    ({"site_seed": -1}, "site_seed"),
]


@pytest.mark.parametrize("kwargs,name", BAD_MORPHOLOGY, ids=[str(k) for k, _ in BAD_MORPHOLOGY])
def test_from_morphology_parameters_are_checked_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mtl.cells.from_morphology(DATA / "ball_and_stick.hoc", **kwargs)


@pytest.mark.parametrize("name,content,match", [
    ("empty.swc", "", "is empty"),
    ("blank.hoc", "\n\n", "is empty"),
    ("notes.swc", "this is not a morphology\n", "does not look like a SWC"),
    ("script.hoc", "print 1\n", "does not look like a NEURON hoc"),
    ("cell.txt", "1 1 0 0 0 5 -1\n", "suffix '.txt'"),
    ("cell.asc", "hello", "does not look like a Neurolucida"),
    ("cell.xml", "hello", "does not look like a NeuroML"),
])
def test_from_morphology_refuses_empty_and_foreign_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        mtl.cells.from_morphology(path)


@pytest.mark.neuron
def test_mechanism_cache_with_an_empty_library_repairs_itself(tmp_path):
    from mtlneuron.nrn import mechanisms

    code = ("from mtlneuron.nrn import mechanisms; mechanisms.load(); from neuron import h; "
            "print('LOADED', hasattr(h, 'MtlAlphaSyn')); print('DIR', mechanisms.compiled_dir())")
    env = {**os.environ, "MTLNEURON_CACHE": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    target = None
    shared = mechanisms.cache_root()  # start from a copy of a good build when there is one (saves a compile)
    for built in shared.glob("mod-*"):
        if mechanisms.cache_ok(built):
            target = tmp_path / built.name
            shutil.copytree(built, target, symlinks=True)
    run = lambda: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,  # noqa
                                 timeout=300)
    first = run()
    assert "LOADED True" in first.stdout, first.stderr[-2000:]
    used = Path(first.stdout.split("DIR", 1)[1].strip())
    assert used.parent == tmp_path
    libs = sorted(used.glob("*/.libs/libnrnmech.so")) + sorted(used.glob("*/libnrnmech.so"))
    assert libs
    for lib in libs:
        lib.write_bytes(b"")  # a killed compile or a full disk
    second = run()
    assert "LOADED True" in second.stdout, second.stderr[-2000:]
    assert all(lib.stat().st_size > 0 for lib in libs)
