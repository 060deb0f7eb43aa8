"""The SEKF on the real column core and in real runs (what each test proves is in its docstring).

The runs use small boxes of the embedded default domain and a few days, so that the whole file takes well
under a minute or two; the seed-scale matrix is `colmda twin namelists/default.nml` (docs/results.md).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from colmda import config
from colmda import layout as L
from colmda.assim import sekf
from colmda.core import advance, default_soil_thickness, initial_state
from colmda.parallel import SerialComm
from colmda.restart import read_restart
from colmda.run import run
from colmda.testing import climate_forcing, column_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASE = """
&experiment
    name = '{name}'
    start = '2005-06-01'
    end = '{end}'
    spinup_start = '2005-05-29'
    spinup_end = '2005-06-01'
    spinup_max_cycles = {spin}
    init_saturation = {sat}
    seed = 5
/
&domain
    box = {box}
/
&forcing
    seed = {fseed}
/
&output
    directory = '{out}'
    restart_days = 1
    variables = 'SoilMoistV', 'Qle'
/
"""
BOX = "30.0, 40.0, 104.0, 118.0"


def settings_for(tmp, name, *, end="2005-06-03", spin=1, sat=0.5, fseed=2, box=BOX, extra=(), sub=None):
    text = BASE.format(name=name, end=end, spin=spin, sat=sat, fseed=fseed, box=box,
                       out=tmp / (sub or name))
    return config.loads(text, source=f"{name}.nml", overrides=list(extra))


def _layer2_after_window(state, params, forc, dt):
    st = state.copy()
    advance(st, params, forc, dt)
    return st.volumetric_soil_moisture(params.dz_soil)[1]


def test_fd_jacobian_of_the_core_matches_a_ten_times_smaller_perturbation():
    """The seed's one-sided perturbations give a Jacobian of layer-2 soil moisture after a 24 h window with respect
    to the window-start moisture of the top 7 layers that agrees with the Jacobian from ten times smaller
    perturbations within 10 % of the column's largest sensitivity + 0.01 (documented tolerance): the seed's
    sizes are in the linear range of the real core. Smaller steps than that are not a better reference: the
    iterative soil-water and energy solvers leave differences of ~1e-7 m3 m-3 between nearby runs, which
    dominate a quotient with a 1e-5 step (measured: errors up to 0.3 in dry and boreal columns at dx/100)."""
    climates = ["temperate", "tropical", "arid", "boreal"]
    params = column_parameters(climates)
    dt = 1800.0
    spin = climate_forcing(climates, 48 * 20, dt=dt, start_doy=150.0)
    state = initial_state(params, temperature=290.0, saturation=0.5)
    advance(state, params, spin, dt)
    forc = climate_forcing(climates, 48, dt=dt, start_doy=170.0, seed=9)
    dz = params.dz_soil
    dx = np.asarray(sekf.SEED_PERTURBATIONS)
    y0 = _layer2_after_window(state, params, forc, dt)
    s = L.NSNOW_MAX
    jac = {}
    for fac in (1.0, 0.1):
        jac[fac] = np.zeros((len(climates), 7))
        for i in range(7):
            p = state.copy()
            p.wliq_soisno[s + i] += fac * dx[i] * 1000.0 * dz[i]
            jac[fac][:, i] = (_layer2_after_window(p, params, forc, dt) - y0) / (fac * dx[i])
    scale = np.abs(jac[0.1]).max(axis=1, keepdims=True)
    assert np.all(np.abs(jac[1.0] - jac[0.1]) <= 0.10 * scale + 0.01), (jac[1.0], jac[0.1])
    wet = [0, 3]  # temperate and boreal columns: layer 2 keeps a clear memory of the top layers over a day
    assert np.all(jac[0.1][wet, 1] > 0.15)


SIGMA_B = 0.02  # m3 m-3: the known, layer-independent initial error of the consistency twin
SIGMA_R = 0.03  # m3 m-3: the simulator's retrieval error (constant: no vegetation slope, no representativeness)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """A twin with exactly known error statistics: CTL is spun up; the truth starts from CTL's state plus
    independent N(0, SIGMA_B^2) errors in each of the top 7 layers (keyed by column and layer) and runs with the
    SAME forcing, so the background error is diagonal with variance SIGMA_B^2 and there is no model error; the
    truth simulates L retrievals with a constant error SIGMA_R and no representativeness error."""
    from colmda.core import default_soil_thickness
    from colmda.parallel import keyed_rng
    from colmda.restart import write_restart

    tmp = tmp_path_factory.mktemp("twin")
    run(settings_for(tmp, "CTL"), comm=SerialComm(), progress=False)
    init = next((tmp / "CTL" / "restart").glob("CTL_*spinup-cycle*.nc"))
    data = read_restart(init)
    dz = default_soil_thickness()
    s = L.NSNOW_MAX
    st = data.state
    for c, col in enumerate(data.column):
        e = keyed_rng(99, int(col)).standard_normal(7) * SIGMA_B
        liq = st.wliq_soisno[s:s + 7, c] / 1000.0 / dz[:7]
        ice = st.wice_soisno[s:s + 7, c] / 917.0 / dz[:7]
        new = np.clip(liq + e, 0.02, 0.95 * 0.40 - ice)  # keep well inside [residual, porosity]
        st.wliq_soisno[s:s + 7, c] = np.where(st.t_soisno[s:s + 7, c] > 273.15, new, liq) * 1000.0 * dz[:7]
    write_restart(tmp / "truth_init.nc", data)
    truth = settings_for(tmp, "truth", spin=0, extra=[
        f"experiment.initial_restart={tmp / 'truth_init.nc'}",
        "observations.simulate=L", "observations.sim_error_slope=0,0,0", "observations.sim_repr_error=0,0,0",
        f"observations.sim_error_bare={SIGMA_R},0.05,0.06"])
    run(truth, comm=SerialComm(), progress=False)
    return tmp


def _restart_at(rundir, name, stamp):
    return read_restart(next((rundir / "restart").glob(f"{name}_*_{stamp}.nc")))


def _theta(data, dz, n=7):
    st = data.state
    s = L.NSNOW_MAX
    return ((st.wliq_soisno[s:s + n] / 1000.0 + st.wice_soisno[s:s + n] / 917.0) / dz[:n, None]).T


def _sekf_settings(tmp, name, bstd, extra=(), sub=None, end="2005-06-03"):
    init = next((tmp / "CTL" / "restart").glob("CTL_*spinup-cycle*.nc"))
    return settings_for(tmp, name, spin=0, end=end, sub=sub, extra=[
        f"experiment.initial_restart={init}", "assimilation.method=sekf",
        f"observations.directory={tmp / 'truth' / 'obs'}", "observations.sensors=L", f"observations.error={SIGMA_R}",
        "assimilation.obs_operator='sensing_depth'",
        "assimilation.background_error=" + ",".join(f"{b:.6f}" for b in bstd), *extra])


def test_sekf_with_true_statistics_is_consistent_and_improves_on_the_background(twin):
    """Given the true B (diagonal, SIGMA_B) and R (SIGMA_R) and the sensing-depth operator the simulator uses, the
    first analysis has normalised innovations d / sqrt(HBH' + R) with variance close to 1 (within the sampling
    and linearisation error of the test: 0.6 to 1.6) and mean close to 0, and the analysed soil moisture of the
    observed layers is closer to the truth than the background at the analysis time."""
    tmp = twin
    from colmda.core import default_soil_thickness

    dz = default_soil_thickness()
    bstd = np.full(7, SIGMA_B)
    run(_sekf_settings(tmp, "sekf", bstd), comm=SerialComm(), progress=False)
    a = xr.open_dataset(tmp / "sekf" / "analysis" / "sekf_2005-06-02T0000.nc", decode_times=False)
    used = a.reason.values == 0
    assert used.sum() >= 30
    assert a.n_obs.values.sum() == a.sizes["obs"] and a.n_obs.values[0, 0] == used.sum()
    assert abs(float(a.innovation_mean[0]) - a.innovation.values[used].mean()) < 1e-12
    Hm = a.jacobian.values[used]
    hbh = (Hm ** 2 * bstd[None, :] ** 2).sum(axis=1)
    nd = a.innovation.values[used] / np.sqrt(hbh + a.error.values[used] ** 2)
    assert 0.6 < (nd ** 2).mean() < 1.6, (nd.mean(), (nd ** 2).mean())
    assert abs(nd.mean()) < 3.0 / np.sqrt(used.sum()) + 0.2
    truth1 = _restart_at(tmp / "truth", "truth", "2005-06-02T0000")
    cols = a.column.values
    t1 = _theta(truth1, dz)[np.searchsorted(truth1.column, cols)]
    bg = a.background.values
    an = bg + a.increment.values
    eb = np.sqrt(((bg - t1) ** 2).mean(axis=0))
    ea = np.sqrt(((an - t1) ** 2).mean(axis=0))
    assert np.all(ea[:3] < eb[:3]), (ea, eb)
    # the water added by the analysis is the increment integrated over the layers
    added = (a.increment.values * dz[None, :7] * 1000.0).sum(axis=1)
    np.testing.assert_allclose(a.water_added.values, added, rtol=1e-12, atol=1e-12)


def test_vegetation_rule_excludes_exactly_the_named_class(twin):
    """'L:dense:exclude' rejects (reason 2) exactly the retrievals over tree PFTs that no earlier check (quality
    flags, missing value) rejected, and nothing else; no retrieval over trees is used."""
    tmp = twin
    s = _sekf_settings(tmp, "rule", [0.05], extra=["assimilation.vegetation_rule='L:dense:exclude'",
                                                   "assimilation.diagnostics=.true."], end="2005-06-02")
    run(s, comm=SerialComm(), progress=False)
    a = xr.open_dataset(tmp / "rule" / "analysis" / "rule_2005-06-02T0000.nc", decode_times=False)
    from colmda.domain import Domain

    pft = Domain.load().get("pft", a.obs_column.values)
    dense = (pft >= 1) & (pft <= 8)
    assert dense.any() and (~dense).any()
    reason = a.reason.values
    earlier = np.isin(reason, (1, 3))  # quality flag, missing value: checked before the rule
    np.testing.assert_array_equal(reason == 2, dense & ~earlier)
    assert not np.any(dense & (reason == 0))


MPIEXEC = H.find_mpiexec()


@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_sekf_bitwise_identical_on_1_and_2_ranks_and_after_resume(twin, tmp_path):
    """An SEKF run gives identical history and analysis files on 1 and 2 MPI ranks, and a run stopped after the
    first day and resumed gives the same second day as the uninterrupted run. So that the three runs are not only
    compared with each other, each is also checked against independent expectations: its first day of history is
    the control run's (the background of the first window is the free model from the same state and forcing),
    the background in its first analysis file is the control run's restart at that time, and its restart after
    the first analysis is that background plus the file's increment (non-zero)."""
    tmp = twin
    s = _sekf_settings(tmp, "par", [0.05])
    nml = tmp_path / "par.nml"
    nml.write_text(s.to_namelist())
    outs = {}
    for ranks in (1, 2):
        d = tmp_path / f"r{ranks}"
        r = H.run_cli(["run", str(nml), "--set", f"output.directory={d}", "--no-progress"], ranks=ranks,
                      synthetic=False)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[ranks] = d
    d3 = tmp_path / "resumed"
    r = H.run_cli(["run", str(nml), "--set", f"output.directory={d3}", "--set", "experiment.end=2005-06-02",
                   "--no-progress"], synthetic=False)
    assert r.returncode == 0, r.stderr[-2000:]
    r = H.run_cli(["run", str(nml), "--set", f"output.directory={d3}", "--resume", "--no-progress"],
                  synthetic=False)
    assert r.returncode == 0, r.stderr[-2000:]
    outs[3] = d3
    ctl_hist = xr.open_dataset(tmp / "CTL" / "history" / "CTL_2005-06-01.nc", decode_times=False)
    ctl1 = _restart_at(tmp / "CTL", "CTL", "2005-06-02T0000")
    dz = default_soil_thickness()
    for k, d in outs.items():
        with xr.open_dataset(d / "history" / "par_2005-06-01.nc", decode_times=False) as h:
            for v in ("SoilMoistV", "Qle"):
                np.testing.assert_array_equal(h[v].values, ctl_hist[v].values, err_msg=f"{k}: {v}")
        with xr.open_dataset(d / "analysis" / "par_2005-06-02T0000.nc", decode_times=False) as a:
            cols = a.column.values
            pos = np.searchsorted(ctl1.column, cols)
            np.testing.assert_allclose(a.background.values, _theta(ctl1, dz)[pos], rtol=0, atol=1e-13)
            assert np.abs(a.increment.values).max() > 1e-3
            r1 = _restart_at(d, "par", "2005-06-02T0000")
            np.testing.assert_allclose(_theta(r1, dz)[np.searchsorted(r1.column, cols)],
                                       a.background.values + a.increment.values, rtol=0, atol=1e-12)
    for sub in ("analysis", "history"):
        names = sorted(p.name for p in (outs[1] / sub).glob("*.nc"))
        assert names
        for name in names:
            with xr.open_dataset(outs[1] / sub / name, decode_times=False) as a:
                for k in (2, 3):
                    with xr.open_dataset(outs[k] / sub / name, decode_times=False) as b:
                        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_twin_matrix_end_to_end(tmp_path):
    """`colmda twin` on a tiny namelist runs the truth (with simulated L, C, X files), the evaluation data, CTL
    and the SEKF experiments, and writes matrix.json and the skill tables; the NEW experiment rejects X over
    dense vegetation only. The analyses are worth having: in summary/skill.csv every SEKF experiment's spatial
    RMSE against the truth in 0-7 cm and 7-28 cm is below CTL's in the assimilation phase and below 0.92 of
    CTL's in the forecast phase (days 4-6, after three days of analyses; measured 0.74-0.84, with precipitation
    perturbed, i.e. with model error)."""
    r = H.run_cli(["twin", str(REPO / "namelists" / "twin_test.nml"), "--set", f"output.directory={tmp_path}",
                   "--no-progress", "--no-figures", "--log-level", "warning"], synthetic=False)
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ("truth/obs/L.nc", "truth/obs/C.nc", "truth/obs/X.nc", "eval/reference.nc", "eval/insitu.nc",
              "matrix.json", "summary/skill.csv", "summary/skill.md"):
        assert (tmp_path / f).is_file(), f
    assert "L+C" in r.stdout
    import csv

    with open(tmp_path / "summary" / "skill.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["reference"] == "truth" and row["group_kind"] == "all"
                and row["metric"] == "spatial_RMSE" and row["layer"] in ("0-7cm", "7-28cm")]
    da = [row for row in rows if row["experiment"] != "CTL"]
    assert {row["experiment"] for row in da} == {"L_fc", "LC", "NEW"} and len(da) == 12
    for row in da:
        ratio = float(row["value"]) / float(row["control_value"])
        assert ratio < (1.0 if row["phase"] == "assimilation" else 0.92), row
    a = xr.open_dataset(sorted((tmp_path / "NEW" / "analysis").glob("*.nc"))[0], decode_times=False)
    from colmda.domain import Domain

    pft = Domain.load().get("pft", a.obs_column.values)
    is_x = a.sensor.values == list(a.attrs["sensors"].split(",")).index("X")
    dense = (pft >= 1) & (pft <= 8)
    earlier = np.isin(a.reason.values, (1, 3))
    np.testing.assert_array_equal(a.reason.values == 2, is_x & dense & ~earlier)


def test_two_sided_runs_agree_with_one_sided_and_report_linearity(twin):
    """Two-sided differences (+dx and -dx runs) give Jacobians within 10 % of the column's largest sensitivity
    (+0.01) of the one-sided ones for the same retrievals, and the diagnostics carry a linearity measure in
    [0, 1] for every used retrieval."""
    tmp = twin
    files = {}
    for name, extra in (("one", []), ("two", ["assimilation.two_sided=.true."])):
        run(_sekf_settings(tmp, name, [0.03], extra=extra, end="2005-06-02"), comm=SerialComm(), progress=False)
        files[name] = xr.open_dataset(tmp / name / "analysis" / f"{name}_2005-06-02T0000.nc", decode_times=False)
    one, two = files["one"], files["two"]
    used = one.reason.values == 0
    np.testing.assert_array_equal(used, two.reason.values == 0)
    h1, h2 = one.jacobian.values[used], two.jacobian.values[used]
    scale = np.abs(h2).max(axis=1, keepdims=True)
    assert np.all(np.abs(h1 - h2) <= 0.10 * scale + 0.01)
    lin = two.linearity.values[used]
    assert np.all((lin >= 0) & (lin <= 1)) and np.isfinite(lin).all()
    assert "linearity" not in one
