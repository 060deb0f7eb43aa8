"""The Python API: an experiment run, read and summarised from Python, with the same results as the CLI."""

from pathlib import Path

import numpy as np
import pytest

import colmda

REPO = Path(__file__).resolve().parents[1]
NML = REPO / "namelists" / "test_small.nml"


def test_package_exports_the_api():
    """The documented names are exported by the package and typed (py.typed is shipped)."""
    for name in ("run_experiment", "run_twin", "evaluate", "open_history", "history_files", "load_soil_moisture",
                 "load_settings", "read_summary", "UserError", "Settings", "RunResult"):
        assert name in colmda.__all__ and getattr(colmda, name) is not None
    assert (Path(colmda.__file__).parent / "py.typed").is_file()
    assert colmda.Settings is colmda.load_settings().__class__


def test_run_experiment_from_python(tmp_path):
    """run_experiment with a namelist path and overrides writes the run; the same experiment from a Settings object
    gives byte-identical history files; open_history / load_soil_moisture / read_summary read it back consistently
    (daily means of the 6-hourly SoilMoistV equal load_soil_moisture's days)."""
    a = colmda.run_experiment(NML, directory=tmp_path / "a", overrides=["output.variables=default"])
    assert a.status.window_index == 4
    assert a.rundir == tmp_path / "a" and a.history_files
    s = colmda.load_settings(NML, ["output.variables=default"])
    b = colmda.run_experiment(s, directory=tmp_path / "b")
    for pa, pb in zip(sorted(a.history_files), sorted(b.history_files)):
        assert Path(pa).name == Path(pb).name and Path(pa).read_bytes() == Path(pb).read_bytes()
    ds = colmda.open_history(a.rundir)
    states = colmda.open_history(a.rundir, states=True, variables=["SoilMoist", "SWE"])
    assert ds.sizes["time"] == 16 and states.sizes["time"] == 16 and set(states.data_vars) == {"SoilMoist", "SWE"}
    assert np.issubdtype(ds["time"].dtype, np.datetime64)
    theta = colmda.load_soil_moisture(a.rundir)
    assert len(theta.time) == 4
    daily = ds["SoilMoistV"].resample(time="1D").mean()
    land = np.isfinite(daily.values[0, 0])
    assert land.sum() == theta.ncol
    np.testing.assert_allclose(np.sort(daily.values[:, :, land], axis=-1), np.sort(theta.theta, axis=-1),
                               rtol=1e-5)
    summary = colmda.read_summary(a.rundir)
    assert summary["experiment"] == "small" and summary["columns"] == theta.ncol
    assert sorted(summary["history_files"]) == sorted(str(p) for p in a.history_files)
    with pytest.raises(colmda.UserError):
        colmda.open_history(a.rundir, variables=["NoSuchVariable"])
    with pytest.raises(colmda.UserError):
        colmda.load_settings(tmp_path / "missing.nml")


def test_evaluate_from_python(tmp_path):
    """colmda.evaluate on a (fabricated, see tests/test_skill.py) twin matrix gives the rows of the skill module
    and writes summary/skill.csv with one line per row."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import test_skill as TS

    from colmda.domain import Domain
    from colmda.evaluation import skill

    TS.fabricate(tmp_path, Domain.load(), experiments=("CTL", "LC"))
    ev = colmda.evaluate(tmp_path, write=True, figures=False)
    ref = skill.evaluate(tmp_path)
    assert len(ev.rows) > 0 and ev.rows == ref.rows
    lines = (tmp_path / "summary" / "skill.csv").read_text().strip().splitlines()
    assert len(lines) == len(ev.rows) + 1


def test_evaluate_against_ismn_from_python(tmp_path):
    """colmda.evaluate(rundir, insitu=..., openloop=...) is the ISMN evaluation of `colmda evaluate`: the same
    result as colmda.evaluation.ismn.evaluate on a fabricated DA / open-loop pair (see tests/test_evaluate_ismn.py),
    and 'openloop' without 'insitu' is a UserError."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import test_evaluate_ismn as TE

    from colmda.evaluation import ismn

    if not TE.HAWAII.is_dir():
        pytest.skip("the Hawaii ISMN sample is not in the repository")
    st, = ismn.read_stations(TE.HAWAII, start="2017-01-01", end="2018-01-01")
    days = np.arange(np.datetime64("2017-01-01"), np.datetime64("2018-01-01"))
    obs = np.interp(days.astype(int), st.days.astype(int), st.sm)
    da = TE.fake_run(tmp_path / "da", days, obs + 0.05)
    ol = TE.fake_run(tmp_path / "ol", days, obs + 0.01 * np.sin(np.arange(days.size)))
    kw = dict(start="2017-01-01", end="2018-01-01")
    r = colmda.evaluate(da, insitu=TE.HAWAII, openloop=ol, **kw)
    ref = ismn.evaluate(da, TE.HAWAII, ol, figure=False, **kw)
    assert r["stations"][0]["scores"] == ref["stations"][0]["scores"]
    assert r["stations"][0]["scores"]["DA"]["bias"][0] == pytest.approx(0.05, abs=1e-3)
    with pytest.raises(colmda.UserError):
        colmda.evaluate(da, openloop=ol)
