"""Ensembles as driver state (&assimilation n_members): members keyed by member, history = member mean, restarts
with a member dimension, state perturbations, bitwise invariance for rank counts, rebalancing and resume.

In-process runs use the synthetic inputs and toy core of ``tests/mpi_helpers.py`` (state-dependent arithmetic);
the rank and SIGKILL tests run ``colmda run`` in subprocesses.
"""

import math
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402
import test_parallel as TP  # noqa: E402
import test_restart as TR  # noqa: E402

from colmda import config, ensemble  # noqa: E402
from colmda import run as R  # noqa: E402
from colmda.errors import UserError  # noqa: E402
from colmda.restart import list_restarts, read_restart  # noqa: E402

needs_mpi = pytest.mark.skipif(H.find_mpiexec() is None, reason="mpiexec not available")

ENS = ["forcing.perturb=.true.", "forcing.perturb_spatial_km=0"]
STATEP = ["assimilation.state_perturbation_std=0.01,0.005", "assimilation.state_perturbation_tau_hours=48"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(R, "advance", H.toy_advance)


def run(tmp, overrides=(), resume=False):
    s = TR.settings(tmp, list(overrides))
    return R.run(s, inputs=H.synthetic_inputs(s), resume=resume, progress=False)


def last_state(d):
    data = read_restart(list_restarts(d / "restart")[-1])
    return data, {k: ensemble.unflatten(v, data.n_members) for k, v in data.state.arrays().items()}


def test_member_m_is_the_same_in_any_ensemble_size(tmp_path, toy):
    """Forcing perturbations are keyed by (global column, member, time): members 0 and 1 of a 2-member and of a
    3-member ensemble are bitwise identical, member 2 differs, and the restart holds a member dimension."""
    run(tmp_path / "n2", ENS + ["assimilation.n_members=2"])
    run(tmp_path / "n3", ENS + ["assimilation.n_members=3"])
    d2, s2 = last_state(tmp_path / "n2")
    d3, s3 = last_state(tmp_path / "n3")
    assert (d2.n_members, d3.n_members) == (2, 3)
    with netCDF4.Dataset(list_restarts(tmp_path / "n3" / "restart")[-1]) as nc:
        assert nc["wliq_soisno"].dimensions == ("lev", "column", "member")
    for k in s2:
        assert np.array_equal(s2[k], s3[k][:, :, :2]), k
    assert not np.array_equal(s3["wliq_soisno"][:, :, 2], s3["wliq_soisno"][:, :, 0])
    assert not np.array_equal(s3["wliq_soisno"][:, :, 1], s3["wliq_soisno"][:, :, 0])


def test_unperturbed_two_member_ensemble_equals_the_single_run(tmp_path, toy):
    """Without perturbations both members follow the single run bit for bit, and the history (the member mean
    (x + x) / 2 = x exactly) is byte-identical to the single run's."""
    run(tmp_path / "one")
    run(tmp_path / "two", ["assimilation.n_members=2"])
    _, s1 = last_state(tmp_path / "one")
    _, s2 = last_state(tmp_path / "two")
    for k in s1:
        assert np.array_equal(s2[k][:, :, 0], s1[k][:, :, 0]) and np.array_equal(s2[k][:, :, 1], s1[k][:, :, 0])
    h1, h2 = TR.files(tmp_path / "one"), TR.files(tmp_path / "two")
    assert sorted(h1) == sorted(h2)
    for name in h1:
        with netCDF4.Dataset(tmp_path / "one" / "history" / name) as a, \
                netCDF4.Dataset(tmp_path / "two" / "history" / name) as b:
            for v in a.variables:
                assert np.array_equal(a[v][...], b[v][...]), (name, v)


def test_history_is_the_member_mean(tmp_path, toy):
    """The end-of-interval soil moisture in the history (*_inst.nc) equals the mean over the members of the final
    restart's soil water, computed here independently from the restart file."""
    d = tmp_path / "e"
    ov = ENS + STATEP + ["assimilation.n_members=3", "output.frequency=1d", "output.file_period=10d"]
    run(d, ov)
    data, st = last_state(d)
    inputs = H.synthetic_inputs(TR.settings(d, ov))
    inst = sorted((d / "history").glob("*_inst.nc"))[-1]
    with netCDF4.Dataset(inst) as nc:
        sm = np.asarray(nc["SoilMoist"][-1], dtype=float)  # (depth, lat, lon)
        j = np.abs(np.asarray(nc["lat"][:])[:, None] - inputs.lat[None, :]).argmin(axis=0)
        dlon = (np.asarray(nc["lon"][:])[:, None] - inputs.lon[None, :] + 180.0) % 360.0 - 180.0
        i = np.abs(dlon).argmin(axis=0)
    got = sm[:, j, i]  # (depth, ncol) in the restart's column order
    water = st["wliq_soisno"][5:] + st["wice_soisno"][5:]  # (nl, ncol, nmem) kg m-2
    np.testing.assert_allclose(got, water.mean(axis=-1), rtol=2e-6)  # history precision (float32)
    assert water.std(axis=-1)[0].mean() > 0.05  # kg m-2: the members did spread


def test_state_perturbations_are_centred_ar1():
    """StatePerturbation.step: increments sum to zero over the members of every column (round-off), the AR(1)
    values have unit variance and lag-one correlation phi = exp(-window / tau) within sampling error, and they
    depend on (column, member, window) only."""
    pert = ensemble.StatePerturbation((0.02, 0.01), math.exp(-24.0 / 48.0))
    cols = np.arange(4000) * 7 + 3
    nmem = 5
    a0, inc0 = pert.step(None, 11, 0, cols, nmem)
    a1, inc1 = pert.step(a0, 11, 1, cols, nmem)
    assert np.abs(ensemble.member_mean(inc1, nmem)).max() < 1e-17
    n = a0.size
    assert abs(a1.var() - 1.0) < 4 * math.sqrt(2.0 / n)
    r = np.corrcoef(a0.ravel(), a1.ravel())[0, 1]
    assert abs(r - pert.phi) < 4 / math.sqrt(n)
    np.testing.assert_allclose(inc1.std(axis=1) / np.array([0.02, 0.01]), math.sqrt((nmem - 1) / nmem), rtol=0.03)
    # a subset of the columns gets the same numbers
    sub = cols[1000:1003]
    b0, _ = pert.step(None, 11, 0, sub, nmem)
    assert np.array_equal(b0, a0[:, 1000 * nmem:1003 * nmem])


def test_ensemble_restart_member_counts(tmp_path, toy):
    """An N-member restart is an initial state for N members; a 1-member state starts every member from it; any
    other count, and --resume with another n_members, are one-line errors naming the key."""
    base = tmp_path / "base"
    run(base, ENS + ["assimilation.n_members=3", "experiment.end=2005-06-03"])
    rst = list_restarts(base / "restart")[-1]
    ok = tmp_path / "ok"
    run(ok, ENS + ["assimilation.n_members=3", "experiment.spinup_max_cycles=0", f"experiment.initial_restart={rst}"])
    single = tmp_path / "single"
    run(single, ["experiment.end=2005-06-03"])
    s1 = list_restarts(single / "restart")[-1]
    fan = tmp_path / "fan"
    run(fan, ["assimilation.n_members=2", "experiment.spinup_max_cycles=0", f"experiment.initial_restart={s1}",
              "experiment.end=2005-06-02"])
    _, st = last_state(fan)
    assert np.array_equal(st["wliq_soisno"][:, :, 0], st["wliq_soisno"][:, :, 1])  # unperturbed: same start, same run
    with pytest.raises(UserError, match=r"holds 3 members per column; expected 1 .* n_members = 4"):
        run(tmp_path / "bad", ["assimilation.n_members=4", "experiment.spinup_max_cycles=0",
                               f"experiment.initial_restart={rst}"])
    with pytest.raises(UserError, match=r"different settings \(&assimilation n_members: 3 -> 2\)"):
        run(base, ENS + ["assimilation.n_members=2", "experiment.end=2005-06-03"], resume=True)


def test_ensemble_resume_equals_continuous(tmp_path, toy):
    """Resuming an ensemble (perturbed forcing, AR(1) state perturbations carried in the restart) from a spin-up
    restart, the first experiment restart and a late one gives byte-identical history and final restart."""
    import shutil

    ov = ENS + STATEP + ["assimilation.n_members=3", "output.frequency=12h", "output.file_period=2d"]
    full = tmp_path / "full"
    run(full, ov)
    ref = TR.files(full)
    restarts = list_restarts(full / "restart")
    # the AR(1) values in the final restart are the recursion over all experiment windows (carried, not restarted)
    last = read_restart(restarts[-1])
    s = TR.settings(full, ov)
    pert = ensemble.StatePerturbation.from_settings(s)
    a = None
    for w in range(last.status.window_index):
        a, _ = pert.step(a, s.experiment.seed, w, last.column, 3)
    np.testing.assert_array_equal(last.members["state_perturbation"], a)
    for k in (0, 2, len(restarts) - 2):
        part = tmp_path / f"part{k}"
        (part / "restart").mkdir(parents=True)
        shutil.copy(restarts[k], part / "restart")
        status = read_restart(restarts[k]).status
        (part / "history").mkdir()
        for f, b in ref.items():  # the history files that existed when that restart was written
            if (full / "history" / f).stat().st_mtime <= restarts[k].stat().st_mtime and status.window_index:
                (part / "history" / f).write_bytes(b)
        run(part, ov, resume=True)
        assert TR.files(part) == ref, f"history differs after resuming from {restarts[k].name}"
        assert (part / "restart" / restarts[-1].name).read_bytes() == restarts[-1].read_bytes()


ENS_CLI = ("--set", "domain.box=-40,60,-60,80", "--set", "assimilation.n_members=3", "--set", "forcing.perturb=.true.",
           "--set", "assimilation.state_perturbation_std=0.01,0.005")


@pytest.mark.mpi
@needs_mpi
def test_ensemble_rank_invariance_with_moving_columns(tmp_path):
    """An ensemble on 1, 2 and 3 ranks, with new random block sizes after every window (members move with their
    column), gives byte-identical history and restart files."""
    outs = TP._rank_runs(tmp_path, TP.SMALL, (1, 2, 3), toy=True, extra=ENS_CLI, shuffle=True)
    TP._assert_identical(outs)


def test_ensemble_sigkill_mid_window_then_resume(tmp_path):
    """An ensemble run killed with SIGKILL in the middle of a window and resumed gives byte-identical files."""
    TR._sigkill_resume(tmp_path, TR.SMALL, list(ENS_CLI))


class CountingMethod(R.AnalysisMethod):
    """Test method with per-column carried state: adds (global column + 1) * window to ``total`` every window."""

    name = "counting"
    members = "any"
    changes_state = False
    carry = {"total": ((2,), 0.5)}

    def analyse(self, ctx, request, forecast):
        ctx.carry["total"][0] += (ctx.column + 1.0) * (ctx.window_index + 1)
        ctx.carry["total"][1] -= 1.0
        return None


def test_method_carry_is_restarted_with_its_columns(tmp_path, toy):
    """A method's per-column carry arrays start at their declared value, are updated in place, are written to the
    restarts and are read back on --resume: the resumed run ends with the continuous run's values, which equal
    the closed form computed here."""
    import shutil

    ov = ["assimilation.n_members=2", "experiment.spinup_max_cycles=0"]
    full = tmp_path / "full"
    run_method = lambda d, resume=False: R.run(TR.settings(d, ov), inputs=H.synthetic_inputs(TR.settings(d, ov)),
                                               resume=resume, progress=False, analysis=CountingMethod(None, None,
                                                                                                      None))
    run_method(full)
    last = read_restart(list_restarts(full / "restart")[-1])
    nwin = last.status.window_index
    expect0 = 0.5 + (last.column + 1.0) * (nwin * (nwin + 1) / 2)
    np.testing.assert_array_equal(last.arrays[R.CARRY + "total"][0], expect0)
    np.testing.assert_array_equal(last.arrays[R.CARRY + "total"][1], 0.5 - nwin)
    part = tmp_path / "part"
    (part / "restart").mkdir(parents=True)
    shutil.copy(list_restarts(full / "restart")[2], part / "restart")
    run_method(part, resume=True)
    again = read_restart(list_restarts(part / "restart")[-1])
    np.testing.assert_array_equal(again.arrays[R.CARRY + "total"], last.arrays[R.CARRY + "total"])
