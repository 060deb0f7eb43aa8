"""Restarts: exact round trip, restart-vs-continuous identity, SIGKILL + --resume, refusal of mismatched resumes.

In-process runs use the synthetic inputs and toy core of ``tests/mpi_helpers.py`` (state-dependent arithmetic, so
a wrong restart shows); the SIGKILL tests run ``colmda run`` in a subprocess and kill it in the middle of a window.
"""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda import config  # noqa: E402
from colmda import run as R  # noqa: E402
from colmda.core import ColumnState  # noqa: E402
from colmda.errors import UserError  # noqa: E402
from colmda.restart import RestartData, RunStatus, list_restarts, read_restart, write_restart  # noqa: E402

BASE = """
&experiment
  name = 'rs'
  start = '2005-06-01'
  end = '2005-06-07'
  spinup_start = '2005-05-30'
  spinup_end = '2005-06-01'
  spinup_max_cycles = 2
/
&domain
  box = -40.0, 60.0, -60.0, 80.0
/
&output
  restart_days = 1
  variables = 'all'
/
"""

CONFIGS = {
    "6h-mean-2d-files": ["output.frequency=6h", "output.file_period=2d"],
    "2d-mean-across-windows": ["output.frequency=2d", "output.file_period=2d"],
    "3h-instant-monthly-file": ["output.frequency=3h", "output.averaging=instant", "output.file_period=1mo"],
    "perturbed-forcing": ["forcing.perturb=.true.", "forcing.perturb_spatial_km=0"],
}


def settings(tmp, overrides=()):
    return config.loads(BASE, source="rs.nml", overrides=[f"output.directory={tmp}", *overrides])


def run_inproc(s, resume=False):
    return R.run(s, inputs=H.synthetic_inputs(s), resume=resume, progress=False)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(R, "advance", H.toy_advance)


def files(d: Path, sub="history"):
    return {p.name: p.read_bytes() for p in sorted((d / sub).glob("*.nc"))}


def test_restart_round_trip_is_exact(tmp_path):
    """State, accumulators, pending records, status and attributes come back from a restart file bit for bit."""
    rng = np.random.default_rng(1)
    n = 7
    st = ColumnState(*(np.asfortranarray(rng.standard_normal(s)) for s in ((15, n), (15, n), (15, n), (5, n),
                                                                          (9, n))))
    status = RunStatus("experiment", 12, dt.datetime(2005, 6, 3, 6), 4, 3, True, 1.25e-4)
    data = RestartData(status, np.arange(n) * 3 + 1, st, {"sum_d": rng.standard_normal((34, n)),
                                                          "g_sum_n": np.array([5.0])},
                       {"time": np.array([1.0, 2.0]), "begin": np.array([0.0, 1.0]),
                        "Qle": rng.standard_normal((2, n))}, {"fingerprint": '{"a": 1}', "forcing_seed": 3})
    p = write_restart(tmp_path / "x_0000012_lbl.nc", data)
    back = read_restart(p, validate=False)  # random numbers, not a physical state
    assert back.status == status
    np.testing.assert_array_equal(back.column, data.column)
    for k, v in st.arrays().items():
        np.testing.assert_array_equal(getattr(back.state, k), v)
        assert getattr(back.state, k).flags.f_contiguous
    for k in data.arrays:
        np.testing.assert_array_equal(back.arrays[k], data.arrays[k])
    for k in data.pending:
        np.testing.assert_array_equal(back.pending[k], data.pending[k])
    assert back.attrs["forcing_seed"] == 3 and back.attrs["fingerprint"] == {"a": 1}
    assert list_restarts(tmp_path) == [p]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_resume_equals_continuous(tmp_path, toy, name):
    """Resuming from any restart (after a spin-up cycle, mid-experiment, in an open history file period) writes
    byte-identical history files and final restart as the uninterrupted run; the uninterrupted run itself is also
    checked against the water budget of its own history (mean-averaged configurations), so a window lost or
    repeated by both runs cannot pass."""
    ov = CONFIGS[name]
    full = tmp_path / "full"
    run_inproc(settings(full, ov))
    if "output.averaging=instant" not in ov:
        H.assert_water_budget(full)
    ref = files(full)
    restarts = list_restarts(full / "restart")
    assert len(restarts) >= 6
    for k in (0, 2, len(restarts) - 3):  # after spin-up cycle 1, right after spin-up, late in the experiment
        part = tmp_path / f"part{k}"
        (part / "restart").mkdir(parents=True)
        shutil.copy(restarts[k], part / "restart")
        data = read_restart(restarts[k])
        (part / "history").mkdir()
        for f, b in ref.items():  # the history files that existed when that restart was written
            if (full / "history" / f).stat().st_mtime <= restarts[k].stat().st_mtime and data.status.window_index:
                (part / "history" / f).write_bytes(b)
        run_inproc(settings(part, ov), resume=True)
        assert files(part) == ref, f"history differs after resuming from {restarts[k].name}"
        assert (part / "restart" / restarts[-1].name).read_bytes() == restarts[-1].read_bytes()


def test_extending_a_finished_run_equals_the_longer_run(tmp_path, toy):
    """A finished run resumed with a later &experiment end continues exactly like a run that had the later end
    from the start (the last, partial history file is completed)."""
    long_dir, short_dir = tmp_path / "long", tmp_path / "short"
    ov = ["output.file_period=4d", "output.frequency=12h"]
    run_inproc(settings(long_dir, ov))
    run_inproc(settings(short_dir, ov + ["experiment.end=2005-06-03"]))
    assert files(short_dir) != files(long_dir)
    run_inproc(settings(short_dir, ov), resume=True)
    assert files(short_dir) == files(long_dir)


def test_resume_refuses_other_settings_or_missing_restart(tmp_path, toy):
    """--resume with changed settings names the changed key; --resume with no restart says so."""
    d = tmp_path / "r"
    run_inproc(settings(d))
    with pytest.raises(UserError, match=r"different settings \(&forcing seed: 1 -> 2\)"):
        run_inproc(settings(d, ["forcing.seed=2"]), resume=True)
    with pytest.raises(UserError, match=r"no restart file of experiment 'rs'"):
        run_inproc(settings(tmp_path / "empty"), resume=True)


def test_initial_restart_starts_from_a_saved_state(tmp_path, toy):
    """&experiment initial_restart starts from the saved state: a run started from the restart at the end of
    spin-up equals the experiment part of the run that did the spin-up."""
    a = tmp_path / "a"
    run_inproc(settings(a))
    after_spinup = [p for p in list_restarts(a / "restart") if "spinup-cycle002" in p.name][0]
    b = tmp_path / "b"
    run_inproc(settings(b, ["experiment.spinup_max_cycles=0", f"experiment.initial_restart={after_spinup}"]))
    assert files(a) == files(b)


def _wait_for(pattern_dir: Path, pred, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pattern_dir.is_dir() and any(pred(p) for p in pattern_dir.iterdir()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _sigkill_resume(tmp_path, namelist, extra, *, synthetic=True, toy=True):
    env = H.clean_env(**({H.TOY_CORE_ENV: 1} if toy else {}))
    ref = tmp_path / "ref"
    r = H.run_cli(["run", str(namelist), "--set", f"output.directory={ref}", "--log-level", "warning", *extra],
                  synthetic=synthetic, env=env)
    assert r.returncode == 0, r.stderr
    killed = tmp_path / "killed"
    cmd = H.command(["run", str(namelist), "--set", f"output.directory={killed}", "--log-level", "warning",
                     *extra], synthetic=synthetic)
    proc = subprocess.Popen(cmd, env={**env, R.DEBUG_DELAY_ENV: "0.5"}, cwd=H.REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # first restart inside the experiment (not a spin-up one), then kill while the next window sleeps
        ok = _wait_for(killed / "restart", lambda p: p.suffix == ".nc" and "spinup" not in p.name, proc)
        assert ok, proc.communicate()[1].decode()[-2000:]
        time.sleep(0.25)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = files(killed)
    assert len(before) < len(files(ref)), "the killed run had already written all its history"
    r = H.run_cli(["run", str(namelist), "--resume", "--set", f"output.directory={killed}", "--log-level",
                   "warning", *extra], synthetic=synthetic, env=env)
    assert r.returncode == 0, r.stderr
    assert files(killed) == files(ref)
    last = list_restarts(ref / "restart")[-1]
    assert (killed / "restart" / last.name).read_bytes() == last.read_bytes()
    assert not list((killed / "history").glob(".*tmp*")) and not list((killed / "restart").glob(".*tmp*"))


SMALL = H.REPO / "namelists" / "test_small.nml"


def test_sigkill_mid_window_then_resume_toy_core(tmp_path):
    """A run killed with SIGKILL in the middle of a window and resumed with --resume gives byte-identical history
    files and final restart (synthetic inputs, toy core)."""
    _sigkill_resume(tmp_path, SMALL, ["--set", "domain.box=-40,60,-60,80"])


def test_sigkill_mid_window_then_resume_real_core(tmp_path):
    """The same with the Fortran core (synthetic inputs); meaningful once the physics is complete."""
    _sigkill_resume(tmp_path, SMALL, ["--set", "domain.box=-40,60,-60,80"], toy=False)


@pytest.mark.skipif(not H.real_modules_available(), reason="domain / forcing / soil modules not installed yet")
def test_sigkill_mid_window_then_resume_real_inputs(tmp_path):
    """The same with `python -m colmda run namelists/test_small.nml` (embedded domain, weather generator, core)."""
    _sigkill_resume(tmp_path, SMALL, [], synthetic=False, toy=False)
