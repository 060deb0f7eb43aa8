"""The numeric regression baseline (scripts/baseline.py, docs/testing.md "Regression baseline")."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "baseline.py"


@pytest.fixture(scope="module")
def baseline_module():
    spec = importlib.util.spec_from_file_location("colmda_baseline_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_run_matches_the_committed_baseline():
    """The small SEKF run reproduces every history and analysis variable of tests/baseline/small_sekf.npz within
    its tolerance (refactors and speed work must not change results; an intended change regenerates the
    baseline with `python scripts/baseline.py --update`)."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 beyond tolerance" in proc.stdout


def test_the_baseline_holds_history_and_real_increments(baseline_module):
    """The baseline covers the history variables and, for each of the two analysis windows, the SEKF increments,
    which are not trivially zero (so a broken analysis cannot pass unnoticed)."""
    old = baseline_module.load_baseline()
    assert "history/SoilMoistV" in old and "history/Qle" in old
    inc = [k for k in old if k.startswith("analysis/") and k.endswith("/increment")]
    assert len(inc) == 2
    for k in inc:
        assert np.abs(old[k]).max() > 0.005


def test_compare_reports_what_changed(baseline_module):
    """compare() passes identical data and changes within tolerance, and fails (naming the variable) a change
    beyond tolerance, a changed integer, a grown balance residual, a missing variable and a changed shape; a new
    variable is reported but does not fail."""
    b = baseline_module
    old = b.load_baseline()
    rows, ok = b.compare(old, dict(old))
    assert ok and all(r["status"] == "ok" for r in rows)

    def status(new):
        rows, ok = b.compare(old, new)
        return ok, {r["name"]: r["status"] for r in rows if r["status"] != "ok"}

    new = dict(old)
    sm = old["history/SoilMoistV"].astype(np.float64)
    new["history/SoilMoistV"] = sm * (1 + 1e-7)  # well within rtol 1e-5
    assert status(new) == (True, {"history/SoilMoistV": "changed"})
    new["history/SoilMoistV"] = sm + 0.001 * (np.arange(sm.size).reshape(sm.shape) == 7)
    assert status(new) == (False, {"history/SoilMoistV": "BEYOND"})
    key = next(k for k in old if k.endswith("/reason"))
    new = dict(old)
    new[key] = old[key] + 1
    assert status(new) == (False, {key: "BEYOND"})
    new = dict(old)
    new["history/WaterBalErr"] = old["history/WaterBalErr"] + 1e-6
    assert status(new) == (False, {"history/WaterBalErr": "BEYOND"})
    new = dict(old)
    del new["history/Qle"]
    new["history/NewVar"] = np.zeros(3)
    assert status(new) == (False, {"history/Qle": "MISSING", "history/NewVar": "new"})
    new = dict(old)
    new["history/Qle"] = old["history/Qle"][:1]
    assert status(new) == (False, {"history/Qle": "SHAPE"})
