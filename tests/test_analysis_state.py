"""Where the SEKF meets the model state (issue 16): checks through the public path of a real run (the analysis
diagnostics file, the per-step history and the restart written after the analysis), each against an expectation
computed here independently of the analysis code.

One small box of the default domain (12 columns), one 24 h window. The control run (CTL) is spun up and written
with per-step instantaneous float64 history; the SEKF runs start from CTL's spin-up restart with the same forcing,
so their background over the window IS the control run. The retrievals are written by hand (four per column at
00:30, 06:10, 15:00 and 24:00 UTC, values spread over 0.05-0.40 m3 m-3 so the innovations have both signs and a range
of sizes), with a constant error, into a sensor file 'Y'.

What each test proves is in its docstring. Every test here fails on one of the planted bugs of the issue (see
docs/testing.md and scripts/mutation_check.py).
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pytest
import xarray as xr

from colmda import config
from colmda import layout as L
from colmda.assim import sekf
from colmda.constants import DENH2O, DENICE
from colmda.core import default_soil_thickness
from colmda.obs.format import ObsTable, write_obs
from colmda.parallel import SerialComm
from colmda.restart import read_restart, write_restart
from colmda.run import run

BOX = "32.0, 36.0, 110.0, 116.0"
SIGMA_OBS = 0.02  # m3 m-3, the sensor's error std in the file
BSTD = 0.03  # m3 m-3, B std of every controlled layer
RULE = ("Y:all:2.0", "Y:dense:3.0")  # error multipliers: 2 everywhere, 3 over tree PFTs (docs/assimilation.md)
GROSS_K = 1.5
ALPHA = 0.05  # gross-error check at 1.5 standard deviations of sqrt(HBH' + R)
N = 7  # controlled layers
OBS_TIMES = ("2005-06-01T00:30", "2005-06-01T06:10", "2005-06-01T15:00", "2005-06-02T00:00")

BASE = """
&experiment
    name = '{name}'
    start = '2005-06-01'
    end = '2005-06-02'
    spinup_start = '2005-05-29'
    spinup_end = '2005-06-01'
    spinup_max_cycles = {spin}
    init_saturation = 0.5
    seed = 5
/
&domain
    box = {box}
/
&forcing
    seed = 2
/
&output
    directory = '{out}'
    restart_days = 1
    frequency = 'step'
    averaging = 'instant'
    precision = 'float64'
    variables = 'SoilMoistV'
/
"""


def _settings(tmp, name, *, spin=0, extra=()):
    text = BASE.format(name=name, spin=spin, box=BOX, out=tmp / name)
    return config.loads(text, source=f"{name}.nml", overrides=list(extra))


def _theta(data, n=N):
    """(ncol, n) total volumetric soil moisture of the top n layers of a restart."""
    st = data.state
    s = L.NSNOW_MAX
    dz = default_soil_thickness()
    return ((st.wliq_soisno[s:s + n] / DENH2O + st.wice_soisno[s:s + n] / DENICE) / dz[:n, None]).T


def _restart(rundir, name, stamp):
    return read_restart(next((rundir / "restart").glob(f"{name}_*_{stamp}.nc")))


def _write_obs(directory, columns, lat, lon, times, values):
    n = len(values)
    t = ObsTable("Y", "volumetric", 0.05, time=np.array(times, dtype="datetime64[s]"), column=columns, lat=lat,
                 lon=lon, value=values, error=np.full(n, SIGMA_OBS), porosity=np.full(n, np.nan),
                 quality=np.zeros(n, dtype=np.int32), source="hand-written test retrievals")
    directory.mkdir(parents=True, exist_ok=True)
    write_obs(directory / "Y.nc", t)


def _sekf(tmp, name, obsdir, init, extra=()):
    return _settings(tmp, name, extra=[
        f"experiment.initial_restart={init}", "assimilation.method=sekf", f"observations.directory={obsdir}",
        "observations.sensors=Y", f"assimilation.background_error={BSTD}", *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analysis_state")
    run(_settings(tmp, "CTL", spin=1), comm=SerialComm(), progress=False)
    init = next((tmp / "CTL" / "restart").glob("CTL_*spinup-cycle*.nc"))
    d0 = read_restart(init)
    cols = np.asarray(d0.column)
    from colmda.domain import Domain

    dom = Domain.load()
    lat, lon = dom.column_lat(cols), dom.column_lon(cols)
    # retrievals at OBS_TIMES on every column, values spread deterministically over [0.05, 0.40]
    nt = len(OBS_TIMES)
    k = np.arange(nt * len(cols))
    values = 0.05 + 0.35 * np.mod(k * 0.618034 + 0.11, 1.0)
    _write_obs(tmp / "obs", np.repeat(cols, nt), np.repeat(lat, nt), np.repeat(lon, nt),
               np.tile(np.array(OBS_TIMES, dtype="datetime64[s]"), len(cols)), values)
    # one retrieval at the window end on the middle column
    c1 = len(cols) // 2
    _write_obs(tmp / "obs1", cols[c1:c1 + 1], lat[c1:c1 + 1], lon[c1:c1 + 1],
               np.array(["2005-06-02T00:00"], dtype="datetime64[s]"), np.array([0.38]))
    common = ["assimilation.obs_operator='layer'", "assimilation.obs_layer=2"]
    run(_sekf(tmp, "layer", tmp / "obs", init, extra=[*common, "assimilation.propagation='persistence'",
                                                       "assimilation.vegetation_rule=" + ",".join(
                                                           f"'{r}'" for r in RULE),
                                                       f"assimilation.gross_error={GROSS_K}"]),
        comm=SerialComm(), progress=False)
    run(_sekf(tmp, "single", tmp / "obs1", init, extra=[*common, "assimilation.propagation='persistence'"]),
        comm=SerialComm(), progress=False)
    run(_sekf(tmp, "tl", tmp / "obs", init, extra=[*common, "assimilation.propagation='tangent_linear'"]),
        comm=SerialComm(), progress=False)
    return tmp, init, dom


def _analysis(tmp, name):
    return xr.open_dataset(tmp / name / "analysis" / f"{name}_2005-06-02T0000.nc", decode_times=False)


def _kalman_increment(H, d, r, bstd):
    """Window-start increment of one column, B H' (H B H' + R)^-1 d, solved in observation space (the analysis
    code solves in state space, information form: a different route to the same number)."""
    B = np.diag(np.full(H.shape[1], bstd ** 2))
    S = H @ B @ H.T + np.diag(r ** 2)
    return B @ H.T @ np.linalg.solve(S, d)


def test_model_equivalent_of_the_layer_operator_is_the_background_layer_at_the_observation_step(runs):
    """obs_operator = 'layer', obs_layer = 2: the model equivalent hx of every used retrieval equals, to 1e-12, the
    volumetric soil moisture of the SECOND soil layer (the layer whose depth range [dz1, dz1 + dz2] by the default grid
    is 0.0175-0.0451 m) in the control run's instantaneous history at the end of the model step containing the
    observation time (00:30, 06:30, 15:00, 24:00 for 00:30, 06:10, 15:00, 24:00), and differs from the neighbouring
    layers there. The background of the analysis run over its window is the control run."""
    tmp, _, _ = runs
    a = _analysis(tmp, "layer")
    used = a.reason.values == 0
    assert used.sum() >= 10
    dz = default_soil_thickness()
    assert abs(dz[0] - 0.0175) < 1e-4 and abs(dz[0] + dz[1] - 0.0451) < 1e-4
    files = sorted((tmp / "CTL" / "history").glob("CTL_*.nc"))
    assert len(files) == 1
    h = xr.open_dataset(files[0], decode_times=False)
    # the layer whose depth range (history depth_bnds) contains the middle of layer 2 of the grid by hand
    mid2 = dz[0] + 0.5 * dz[1]
    bnds = h.depth_bnds.values
    assert int(np.flatnonzero((bnds[:, 0] <= mid2) & (mid2 < bnds[:, 1]))[0]) == 1
    grid_col = h.column.values  # (lat, lon) global column of each cell, NaN over sea
    tstamp = h.time.values * {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}[
        h.time.attrs["units"].split()[0]]
    t_epoch = (_dt.datetime.strptime(" ".join(h.time.attrs["units"].split()[2:4])[:19], "%Y-%m-%d %H:%M:%S")
               - _dt.datetime(1970, 1, 1)).total_seconds()
    tsec = a.time.values[used]
    step_end = np.ceil(tsec / 1800.0) * 1800.0  # state at the end of the step containing the observation

    def layer_at(layer):
        out = []
        for t, col in zip(step_end, a.obs_column.values[used]):
            it = int(np.flatnonzero(np.abs(tstamp + t_epoch - t) < 1.0)[0])
            j, i = np.argwhere(grid_col == col)[0]
            out.append(float(h.SoilMoistV.values[it, layer, j, i]))
        return np.array(out)

    ref = layer_at(1)
    np.testing.assert_allclose(a.hx.values[used], ref, rtol=0, atol=1e-12)
    for other in (0, 2):
        assert np.abs(layer_at(other) - ref).max() > 1e-4


def test_restart_after_the_analysis_is_background_plus_increment(runs):
    """The restart written at the analysis time holds, for every analysed column and controlled layer, the
    background (the control run's state at the same time, from its own restart) plus the increment of the
    diagnostics file (to 1e-12 m3 m-3; the increment is non-zero and of both signs), the other columns and the
    deeper layers are the control run's, and the change of column water equals water_added."""
    tmp, _, _ = runs
    a = _analysis(tmp, "layer")
    ctl = _restart(tmp / "CTL", "CTL", "2005-06-02T0000")
    da = _restart(tmp / "layer", "layer", "2005-06-02T0000")
    np.testing.assert_array_equal(ctl.column, da.column)
    cols = a.column.values
    pos = np.searchsorted(ctl.column, cols)
    th_ctl, th_a = _theta(ctl, 10), _theta(da, 10)
    np.testing.assert_allclose(a.background.values, th_ctl[pos, :N], rtol=0, atol=1e-13)
    inc = a.increment.values
    assert np.abs(inc).max() > 1e-3 and (inc > 1e-4).any() and (inc < -1e-4).any()
    np.testing.assert_allclose(th_a[pos, :N], a.background.values + inc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(th_a[pos, N:], th_ctl[pos, N:])
    others = np.setdiff1d(np.arange(len(ctl.column)), pos)
    np.testing.assert_array_equal(th_a[others], th_ctl[others])
    added = da.state.total_water()[pos] - ctl.state.total_water()[pos]
    np.testing.assert_allclose(added, a.water_added.values, rtol=0, atol=1e-9)


def test_analysis_is_the_kalman_update_with_the_rule_scaled_errors(runs):
    """With propagation = 'persistence', each analysed column's increment before bounds equals the Kalman update
    B H' (H B H' + R)^-1 d computed here in observation space from the file's Jacobians and innovations, with
    B = 0.03^2 I and R = diag((m sigma)^2): sigma = 0.02 from the sensor file and m the vegetation rule's error
    multiplier (docs/assimilation.md: the error standard deviation is multiplied, so R by m^2), 2 everywhere
    and 3 over tree PFTs by the rule 'Y:all:2.0', 'Y:dense:3.0' (to 1e-10). The file's per-row error is m sigma,
    and the increment differs clearly from the one R = sigma^2 would give."""
    tmp, _, dom = runs
    a = _analysis(tmp, "layer")
    used = a.reason.values == 0
    pft = dom.get("pft", a.obs_column.values)
    m = np.where((pft >= 1) & (pft <= 8), 3.0, 2.0)
    np.testing.assert_allclose(a.error.values, m * SIGMA_OBS, rtol=1e-14)
    assert (m == 3.0).any() and (m == 2.0).any()
    worst, change = 0.0, 0.0
    for c, col in enumerate(a.column.values):
        rows = used & (a.obs_column.values == col)
        H = a.jacobian.values[rows]
        d = a.innovation.values[rows]
        expect = _kalman_increment(H, d, m[rows] * SIGMA_OBS, BSTD)
        worst = max(worst, np.abs(a.increment_unbounded.values[c] - expect).max())
        change = max(change, np.abs(_kalman_increment(H, d, np.full(rows.sum(), SIGMA_OBS), BSTD) - expect).max())
    assert worst < 1e-10, worst
    assert change > 1e-3


def test_gross_error_check_rejects_at_k_standard_deviations(runs):
    """gross_error = 1.5: a retrieval is rejected (reason 5) exactly when |d| > 1.5 sqrt(H B H' + R), computed
    here from the file's Jacobian, B and the row's error; there are retrievals on both sides of the threshold
    (a check at k (HBH' + R), the variance, would reject every one of them: it is about 1e-2 of the standard
    deviation here)."""
    tmp, _, _ = runs
    a = _analysis(tmp, "layer")
    cand = np.isin(a.reason.values, (0, 5))
    H = a.jacobian.values[cand]
    sd = np.sqrt((H ** 2).sum(1) * BSTD ** 2 + a.error.values[cand] ** 2)
    ratio = np.abs(a.innovation.values[cand]) / sd
    clear = np.abs(ratio - GROSS_K) > 1e-9
    rejected = a.reason.values[cand] == 5
    np.testing.assert_array_equal(rejected[clear], ratio[clear] > GROSS_K)
    assert (ratio[clear] > GROSS_K).sum() >= 3 and (ratio[clear] < GROSS_K).sum() >= 3


def test_gross_error_check_units():
    """sekf.gross_error_check on hand cases: with H B H' + R = 0.03^2 + 0.04^2 (sd 0.05), k = 3 passes |d| =
    0.149 and rejects 0.151 (both signs); k = 0 disables the check."""
    d = np.array([0.149, -0.149, 0.151, -0.151])
    ok = sekf.gross_error_check(d, np.full(4, 0.03 ** 2), np.full(4, 0.04 ** 2), 3.0)
    np.testing.assert_array_equal(ok, [True, True, False, False])
    assert sekf.gross_error_check(d, np.full(4, 0.03 ** 2), np.full(4, 0.04 ** 2), 0.0).all()


def test_single_observation_moves_the_layer_toward_it_by_the_kalman_fraction(runs):
    """One retrieval (0.38 m3 m-3, error 0.02) at the window end on one column, operator 'layer' 2, persistence:
    the observed layer moves from the background toward the observation by K2 d with
    K2 = b^2 H2 / (sum_i b^2 Hi^2 + r^2) (scalar Kalman gain, b = 0.03), to 1e-10; every other controlled layer by
    b^2 Hi d / (...) likewise. The restart's layer 2 lies strictly between the background and the observation."""
    tmp, _, _ = runs
    a = _analysis(tmp, "single")
    assert a.sizes["obs"] == 1 and int(a.reason.values[0]) == 0
    H = a.jacobian.values[0]
    d = float(a.innovation.values[0])
    assert abs(d) > 0.02
    hbh = (H ** 2).sum() * BSTD ** 2
    K = BSTD ** 2 * H / (hbh + SIGMA_OBS ** 2)
    assert 0.0 < K[1] < 1.0
    np.testing.assert_allclose(a.increment_unbounded.values[0], K * d, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.increment.values[0], K * d, rtol=0, atol=1e-10)
    da = _restart(tmp / "single", "single", "2005-06-02T0000")
    c = int(np.searchsorted(da.column, a.column.values[0]))
    xa2 = _theta(da)[c, 1]
    xb2 = float(a.background.values[0, 1])
    assert xb2 == pytest.approx(float(a.hx.values[0]), abs=1e-12)  # observation at the window end
    assert xa2 - xb2 == pytest.approx(K[1] * d, abs=1e-12)
    assert min(xb2, 0.38) < xa2 < max(xb2, 0.38)


def test_propagated_increment_equals_a_forecast_of_the_perturbed_state(runs):
    """Tangent-linear propagation: the analysis-time increment before bounds, Mt dx0, equals the finite-difference
    forecast of the perturbed state, (M(x0 + a dx0) - M(x0)) / a over the 24 h window, where dx0 is the Kalman
    increment of the window start recomputed here from the file, a = 0.05 keeps the forecast in its linear range,
    x0 + a dx0 is written into a restart and run by the plain driver (no assimilation) and M(x0) is the control
    run: within 6 % of the column's largest increment + 1e-5 m3 m-3 (measured worst 2.3 %; a transposed
    propagator is 15-35 % off in every column). The propagation matters: Mt dx0 differs from dx0 by more than five
    times that tolerance."""
    tmp, init, _ = runs
    a = _analysis(tmp, "tl")
    used = a.reason.values == 0
    d0 = read_restart(init)
    dz = default_soil_thickness()
    s = L.NSNOW_MAX
    dx0 = {}
    for c, col in enumerate(a.column.values):
        rows = used & (a.obs_column.values == col)
        if rows.any():
            dx0[c] = _kalman_increment(a.jacobian.values[rows], a.innovation.values[rows], a.error.values[rows],
                                       BSTD)
    th0 = _theta(d0)
    keep = []
    for c, inc0 in dx0.items():
        p = int(np.searchsorted(d0.column, a.column.values[c]))
        new = th0[p] + ALPHA * inc0
        liq_new = d0.state.wliq_soisno[s:s + N, p] + ALPHA * inc0 * DENH2O * dz[:N]
        if np.all(liq_new > 0) and np.all(new < 0.9 * 0.40) and np.all(d0.state.t_soisno[s:s + N, p] > 274.0):
            d0.state.wliq_soisno[s:s + N, p] = liq_new
            keep.append(c)
    assert len(keep) >= 5
    write_restart(tmp / "perturbed_init.nc", d0)
    run(_settings(tmp, "fd", extra=[f"experiment.initial_restart={tmp / 'perturbed_init.nc'}"]), comm=SerialComm(),
        progress=False)
    fd_end = _theta(_restart(tmp / "fd", "fd", "2005-06-02T0000"))
    ctl_end = _theta(_restart(tmp / "CTL", "CTL", "2005-06-02T0000"))
    pos = np.searchsorted(d0.column, a.column.values[keep])
    fd = (fd_end[pos] - ctl_end[pos]) / ALPHA
    tl = a.increment_unbounded.values[keep]
    start = np.array([dx0[c] for c in keep])
    scale = np.abs(tl).max(axis=1, keepdims=True)
    assert np.all(np.abs(fd - tl) <= 0.06 * scale + 1e-5), (np.abs(fd - tl) / scale).max()
    assert np.abs(tl - start).max() > 5 * np.abs(fd - tl).max()


def test_jacobian_keeps_its_sign_where_the_perturbation_goes_downward(runs):
    """Columns whose controlled layers start within 2e-5 m3 m-3 of porosity are perturbed DOWNWARD (an upward step would
    leave the pore space). The Jacobian of a layer-2 retrieval with respect to layer 2 is the memory of that layer,
    positive at the end of the first step in those columns as in all others (d theta2(00:30) / d theta2(00:00) in (0.1,
    1.2]; measured about 0.2 in the wet columns, whose saturated neighbours refill a drier layer 2 within the step,
    0.35-0.93 elsewhere); a difference quotient that dropped the sign of the step makes it negative there. (Later in the
    day the wet columns drain toward the same state whatever their start: their memory falls to ~0.01 by 06:00 and 2e-4
    by midnight, too close to the solver noise of a 1e-4 step to test a sign.)"""
    tmp, init, _ = runs
    from colmda.setup import build_inputs

    d0 = read_restart(init)
    s = L.NSNOW_MAX
    dz = default_soil_thickness()
    inputs = build_inputs(_settings(tmp, "wet"))
    np.testing.assert_array_equal(inputs.column, d0.column)
    por = inputs.params.soilpar[L.SP_THETA_S, :N]  # (N, ncol), same column order as the restart
    wet = np.arange(0, len(d0.column), 2)  # every other column
    ice = d0.state.wice_soisno[s:s + N, wet] / DENICE / dz[:N, None]
    d0.state.wliq_soisno[s:s + N, wet] = (por[:, wet] - ice - 2e-5) * DENH2O * dz[:N, None]
    write_restart(tmp / "wet_init.nc", d0)
    run(_sekf(tmp, "wet", tmp / "obs", tmp / "wet_init.nc", extra=[
        "assimilation.obs_operator='layer'", "assimilation.obs_layer=2", "assimilation.propagation='persistence'"]),
        comm=SerialComm(), progress=False)
    a = _analysis(tmp, "wet")
    used = a.reason.values == 0
    is_wet = np.isin(a.obs_column.values, d0.column[wet])
    assert (used & is_wet).sum() >= 5 and (used & ~is_wet).sum() >= 5
    first = used & (a.time.values == a.time.values.min())  # 00:30, the end of the first step
    assert (first & is_wet).sum() >= 3
    h22 = a.jacobian.values[first, 1]
    assert np.all((h22 > 0.1) & (h22 <= 1.2)), h22
