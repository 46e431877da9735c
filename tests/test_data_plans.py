"""The random plans of the data-generation scripts: what an option changes and what it keeps."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import each other
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return mod


@pytest.mark.parametrize("seed", [5000, 5001, 5003])
def test_default_weights_keep_every_gain_at_one_and_the_drives_as_drawn(seed):
    gen = _script("generate_hnn_data")
    drawn, default = gen.plan(seed), gen.plan(seed, default_weights=True)
    assert default["gains"] == [1.0] * 16 and any(g != 1.0 for g in drawn["gains"])
    assert default["default_weights"] and not drawn["default_weights"]
    for key in ("family", "erp", "poisson", "poisson_weight", "bursty"):
        assert default[key] == drawn[key]


def test_strong_regime_plans_stay_in_the_papers_unstable_range():
    gen = _script("generate_network_data")
    plans = [gen.plan(k, 300, "strong") for k in range(24)]
    assert all(0.75 <= p["exc_scale"] <= 1.5 and 0.05 <= p["p_connect"] <= 0.15 and 8 <= p["contact_scale"] <= 14.4
               for p in plans)
    assert [p["seed"] for p in plans] == list(range(300, 324))
