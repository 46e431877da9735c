"""Issue 12.1: NEURON worker processes die with their parent (real processes, real NEURON).

A child script starts the cell's worker and a ``datasets.generate`` pool (or a
NEURON network run), lists its child processes, then is killed with SIGTERM or
SIGKILL. Every child must be gone within a few seconds.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.neuron, pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")]

# Lists this process's children once `want` of them run, prints them, then kills itself with SIGNAL.
_PRELUDE = """
import os, signal, sys, threading, time

def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out

def killer(want, sig):
    deadline = time.time() + 60
    while time.time() < deadline:
        kids = children(os.getpid())
        if len(kids) >= want:
            time.sleep(0.5)  # let them start simulating
            print("PIDS", *children(os.getpid()), flush=True)
            os.kill(os.getpid(), sig)
        time.sleep(0.05)
    print("TIMEOUT", flush=True)
    os._exit(3)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its reaping is pending


def _run_and_kill(body: str, want: int, sig: int, tmp_path: Path) -> list[int]:
    """Run the script, collect its workers' pids, and return those still alive 5 s after its death.

    Also checks that its stdout reaches EOF (``python s.py | tail`` must not hang on workers).
    """
    script = _PRELUDE + textwrap.dedent(body).replace("SIGNAL", str(int(sig))).replace("WANT", str(want))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    pids: list[int] = []
    try:
        while True:
            line = lines.get(timeout=120)
            if line is None or line.startswith("TIMEOUT"):
                break
            if line.startswith("PIDS"):
                pids = [int(p) for p in line.split()[1:]]
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(pids) >= want, f"the script did not report its workers ({pids})"
    assert proc.returncode == -sig
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if _alive(p)]
    for p in left:  # never leave them running, even when the test fails
        os.kill(p, signal.SIGKILL)
    reader.join(timeout=5)
    assert left or not reader.is_alive(), "the script's stdout stayed open after it died"
    return left


GENERATE = """
import mtlneuron as mtl
cell = mtl.cells.get("point")
cell.sites  # starts the cell's persistent worker
threading.Thread(target=killer, args=(WANT, SIGNAL), daemon=True).start()
mtl.datasets.generate(cell, 400, 1000.0, "d.nc", n_workers=2, progress=False)
print("FINISHED", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_cell_worker_and_generate_pool_die_with_their_parent(sig, tmp_path):
    assert _run_and_kill(GENERATE, 3, sig, tmp_path) == []


NETWORK = """
import mtlneuron as mtl
from mtlneuron.network import neuron_backend
from mtlneuron.network.rett_model import rett
net = rett(n_cells=2, seed=0, duration=60000.0)
threading.Thread(target=killer, args=(WANT, SIGNAL), daemon=True).start()
neuron_backend.run_neuron(net, 60000.0)
print("FINISHED", flush=True)
"""


def test_network_backend_worker_dies_with_its_parent(tmp_path):
    assert _run_and_kill(NETWORK, 2, signal.SIGTERM, tmp_path) == []
