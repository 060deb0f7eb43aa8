"""The EnKF family in whole runs (`colmda run`): rank-count and restart invariance with members and 3-D
localisation. What each test proves is in its docstring.

A small box of the embedded default domain (30 land columns), a truth run that simulates L retrievals, and
ensemble runs assimilating them with 6 members and perturbed forcing. MPI runs are launched with mpiexec in a
subprocess (skipped when there is none), like tests/test_parallel.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda import run as R  # noqa: E402

MPIEXEC = H.find_mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")

BASE = """
&experiment
    name = '{name}'
    start = '2005-06-01'
    end = '2005-06-04'
    spinup_max_cycles = 0
    init_saturation = 0.5
    seed = 5
/
&domain
    box = 30.0, 36.0, 104.0, 112.0
/
&forcing
    seed = 2
/
&output
    directory = '{out}'
    restart_days = 1
    variables = 'SoilMoistV', 'Qle'
/
"""


def _namelist(tmp, name, body=""):
    p = tmp / f"{name}.nml"
    p.write_text(BASE.format(name=name, out=tmp / name) + body)
    return p


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enstruth")
    nml = _namelist(tmp, "truth", "&observations\n    simulate = 'L'\n/\n")
    r = H.run_cli(["run", str(nml), "--no-progress", "--log-level", "warning"], synthetic=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp


def _ensemble_namelist(tmp, truth_dir, name, method, extra=""):
    body = f"""
&assimilation
    method = '{method}'
    n_members = 6
/
&forcing
    seed = 2
    perturb = .true.
/
&observations
    directory = '{truth_dir / "truth" / "obs"}'
    sensors = 'L'
    error = 0.03
/
&enkf
    localization_km = 250
    {extra}
/
"""
    text = BASE.format(name=name, out=tmp / name).replace("&forcing\n    seed = 2\n/\n", "") + body
    p = tmp / f"{name}.nml"
    p.write_text(text)
    return p


def _outputs(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob("*.nc")) if "/obs/" not in p.as_posix()}


def _assert_same(ref: dict, other: dict, what: str):
    assert sorted(ref) == sorted(other), (what, sorted(ref), sorted(other))
    assert any(k.startswith("analysis/") for k in ref) and any(k.startswith("restart/") for k in ref)
    for k in ref:
        with xr.open_dataset(ref[k], decode_times=False) as a, xr.open_dataset(other[k], decode_times=False) as b:
            xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def _run(nml, d, ranks=0, extra=()):
    r = H.run_cli(["run", str(nml), "--set", f"output.directory={d}", "--no-progress", "--log-level", "warning",
                   *extra], ranks=ranks, synthetic=False)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.mpi
@needs_mpi
def test_letkf_3d_adaptive_is_bitwise_identical_for_1_2_3_ranks_and_after_sigkill_and_resume(truth, tmp_path):
    """LETKF with 3-D localisation (250 km half-width over a 1.4-degree grid, so every column uses its
    neighbours' retrievals) and adaptive inflation (per-column state carried between windows and in restarts),
    6 members with perturbed forcing: history (ensemble mean), analysis diagnostics and ensemble restarts (all
    members, the carried inflation) are identical for 1, 2 and 3 ranks, and for a run killed with SIGKILL in the
    middle of its second window and resumed. The analyses change the state (non-zero increments) and the
    inflation moves away from its first value, so the comparison covers both."""
    nml = _ensemble_namelist(tmp_path, truth, "ens", "letkf", "inflation = 'adaptive'\n    inflation_factor = 1.1")
    runs = {}
    for n in (1, 2, 3):
        _run(nml, tmp_path / f"n{n}", ranks=n if n > 1 else 0)
        runs[n] = _outputs(tmp_path / f"n{n}")
    with xr.open_dataset(runs[1]["analysis/ens_2005-06-03T0000.nc"], decode_times=False) as a:
        assert np.abs(a.increment.values).max() > 1e-3
        assert (a.n_local_obs.values > 1).mean() > 0.5  # 3-D: most columns see neighbours' retrievals
        assert np.abs(a.inflation.values - 1.1).max() > 1e-3
    for n in (2, 3):
        _assert_same(runs[1], runs[n], f"{n} ranks")
    # killed in the middle of the second window (the driver sleeps after each window's forecast), then resumed
    d = tmp_path / "killed"
    args = ["run", str(nml), "--set", f"output.directory={d}", "--no-progress", "--log-level", "warning"]
    env = H.clean_env(**{R.DEBUG_DELAY_ENV: "3"})
    proc = subprocess.Popen(H.command(args, synthetic=False), env=env, cwd=H.REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 120:
        if list((d / "restart").glob("ens_*_2005-06-02T0000.nc")):
            break
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    time.sleep(1.0)  # inside the second window's delay: forecast done, analysis not yet
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((d / "restart").glob("ens_*_2005-06-03T0000.nc"))
    _run(nml, d, extra=["--resume"])
    _assert_same(runs[1], _outputs(d), "killed and resumed")


@pytest.mark.mpi
@needs_mpi
def test_stochastic_enkf_3d_is_bitwise_identical_on_1_and_2_ranks(truth, tmp_path):
    """The stochastic EnKF with 3-D localisation and RTPS: the perturbed observations are keyed by (seed, analysis
    time, member, observation), never by rank, so 1 and 2 ranks give identical history, analysis and restart
    files."""
    nml = _ensemble_namelist(tmp_path, truth, "ens", "enkf", "inflation = 'rtps'\n    relaxation = 0.5")
    runs = {}
    for n in (1, 2):
        _run(nml, tmp_path / f"n{n}", ranks=n if n > 1 else 0)
        runs[n] = _outputs(tmp_path / f"n{n}")
    _assert_same(runs[1], runs[2], "2 ranks")


def test_twin_matrix_runs_the_ensemble_methods_beside_the_sekf(tmp_path):
    """`colmda twin` with &matrix ensemble_methods = 'letkf' on the tiny twin namelist (6 days, 20 columns): the
    matrix runs LC with the SEKF and LC_letkf with 6 members from the same state and retrievals, lists both in
    matrix.json and the skill tables, writes the LETKF's analysis files with the ensemble spread, and the LETKF's
    ensemble-mean history is closer to the truth than CTL in the top three layers (RMSE of daily means)."""
    from colmda.evaluation.history import load_soil_moisture

    nml = H.REPO / "namelists" / "twin_test.nml"
    r = H.run_cli(["twin", str(nml), "--set", f"output.directory={tmp_path}", "--no-progress", "--log-level",
                   "warning", "--set", "matrix.experiments=CTL,LC", "--set", "matrix.ensemble_methods=letkf",
                   "--set", "matrix.ensemble_experiments=LC", "--set", "matrix.n_members=6",
                   "--set", "assimilation.state_perturbation_std=0.03,0.03,0.03,0.03,0.03,0.03,0.03"],
                  synthetic=False, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    m = json.loads((tmp_path / "matrix.json").read_text())
    assert [e["name"] for e in m["experiments"]] == ["CTL", "LC", "LC_letkf"] and not m["pending"]
    assert "L+C letkf" in (tmp_path / "summary" / "skill.md").read_text()
    files = sorted((tmp_path / "LC_letkf" / "analysis").glob("LC_letkf_*.nc"))
    assert files
    with xr.open_dataset(files[-1], decode_times=False) as a:
        assert (a.background_spread.values > 0).all() and (a.reason.values == 0).any()
    truth = load_soil_moisture(tmp_path / "truth")

    def rmse(name):
        h = load_soil_moisture(tmp_path / name)
        d = h.theta[:, :3] - truth.theta[:, :3][:, :, truth.where_columns(h.column)]
        return np.sqrt(np.nanmean(d ** 2, axis=(0, 2)))

    assert np.all(rmse("LC_letkf") < rmse("CTL")), (rmse("LC_letkf"), rmse("CTL"))
