"""The consistency layer every analysis increment goes through (colmda.assim.consistency).

- test_no_member_leaves_bounds: an ensemble (12 columns x 8 members, the column-major convention of
  colmda.ensemble) with states spread from near-residual to saturated, some layers frozen and some holding ice,
  gets large random increments: afterwards no member of any column has a layer outside [residual, porosity]
  (or below its own background if that was lower), no negative liquid water, ice/temperature/snow untouched,
  frozen layers unchanged (colmda.assim.consistency.violations finds nothing).
- test_violations_detects_each_rule: the checker used above fails for each kind of wrong update (so the first
  test cannot pass vacuously).
- test_water_budget_closes: the reported water added per column equals the change of the column's soil water
  storage to round-off, and added + refused = requested water.
- test_members_are_bounded_by_their_own_state: two members of one column with different backgrounds get the same
  increment and are clipped differently; per_member gives the (column, member) view of the report.
- test_frozen_at_the_core_freezing_point: a layer at 273.155 K is frozen (core tfrz = 273.16 K), at 273.17 K not.
- test_same_arithmetic_as_the_sekf_before_the_port: apply_increment changes the state bit for bit as the SEKF's
  own code did before the protocol (its formula transcribed here, columns x layers layout).
"""

import numpy as np
import pytest

from colmda import layout as L
from colmda.assim import consistency as C
from colmda.constants import DENH2O, DENICE, TFRZ
from colmda.core import initial_state
from colmda.ensemble import flat_index
from colmda.testing import column_parameters

S = L.NSNOW_MAX
NL = 7


def ensemble_state(ncol=12, nmem=8, seed=3):
    """Members of ``ncol`` columns as flat columns (column-major), each member with its own soil water, ice and
    temperature: from below residual to saturated, some layers frozen."""
    rng = np.random.default_rng(seed)
    climates = ["temperate", "arid", "boreal", "tropical"]
    params = column_parameters([climates[c % 4] for c in range(ncol)]).repeat(nmem)
    st = initial_state(params, temperature=280.0, saturation=0.5)
    dz = params.dz_soil[:, None]
    por = params.soilpar[L.SP_THETA_S]
    res = params.soilpar[L.SP_THETA_R]
    n = ncol * nmem
    frac = rng.uniform(-0.2, 1.0, size=(L.NL_SOIL, n))  # total water between below-residual and porosity
    total = np.where(frac < 0, res * (1 + frac), res + frac * (por - res))
    icefrac = np.where(rng.random((L.NL_SOIL, n)) < 0.3, rng.uniform(0, 0.6, (L.NL_SOIL, n)), 0.0)
    st.wice_soisno[S:] = total * icefrac * DENICE * dz
    st.wliq_soisno[S:] = total * (1 - icefrac) * DENH2O * dz
    st.t_soisno[S:] = rng.choice([TFRZ - 3.0, TFRZ, TFRZ + 0.5, 285.0], size=(L.NL_SOIL, n))
    return st, params


def test_no_member_leaves_bounds():
    ncol, nmem = 12, 8
    st, params = ensemble_state(ncol, nmem)
    rng = np.random.default_rng(7)
    for scale in (0.02, 0.2, 1.0):
        before = st.copy()
        cols = np.sort(rng.choice(ncol * nmem, size=70, replace=False))
        inc = rng.normal(0.0, scale, size=(NL, len(cols)))
        rep = C.apply_increment(st, params, cols, inc)
        assert C.violations(before, st, params) == []
        assert np.abs(rep.applied).max() > 0  # something happened
        assert np.all(rep.applied[rep.frozen_layers] == 0.0)
        untouched = np.setdiff1d(np.arange(ncol * nmem), cols)
        assert np.array_equal(before.wliq_soisno[:, untouched], st.wliq_soisno[:, untouched])


def test_violations_detects_each_rule():
    st, params = ensemble_state(3, 2)
    dz = params.dz_soil
    warm = np.argwhere(st.t_soisno[S:S + NL] > TFRZ)[0]
    frozen = np.argwhere(st.t_soisno[S:S + NL] <= TFRZ)[0]
    cases = {}
    a = st.copy()
    a.wliq_soisno[S + warm[0], warm[1]] += 1.0 * DENH2O * dz[warm[0]]  # +1 m3 m-3: above porosity
    cases["above porosity"] = a
    a = st.copy()
    a.wliq_soisno[S + warm[0], warm[1]] = -1.0
    cases["negative liquid"] = a
    a = st.copy()
    a.wliq_soisno[S + frozen[0], frozen[1]] *= 0.999
    cases["a frozen layer changed"] = a
    a = st.copy()
    a.wice_soisno[S, 0] += 1.0
    cases["wice_soisno changed"] = a
    a = st.copy()
    a.t_soisno[S, 0] += 1.0
    cases["t_soisno changed"] = a
    a = st.copy()
    por_min = params.soilpar[L.SP_THETA_R, warm[0], warm[1]]
    a.wliq_soisno[S + warm[0], warm[1]] = 0.5 * min(por_min, 1e-3) * DENH2O * dz[warm[0]]
    a.wice_soisno[S + warm[0], warm[1]] = 0.0
    cases["below the residual"] = a
    for what, after in cases.items():
        found = C.violations(st, after, params)
        assert found, what
    assert C.violations(st, st.copy(), params) == []


def test_water_budget_closes():
    st, params = ensemble_state(10, 5, seed=11)
    before = st.copy()
    rng = np.random.default_rng(1)
    cols = np.arange(0, 50, 2)
    inc = rng.normal(0.0, 0.1, size=(NL, len(cols)))
    rep = C.apply_increment(st, params, cols, inc)
    storage_change = (st.wliq_soisno[S:] - before.wliq_soisno[S:]).sum(0)  # kg m-2 per flat column
    assert np.allclose(rep.water_added, storage_change[cols], rtol=0, atol=1e-10)
    assert np.all(storage_change[np.setdiff1d(np.arange(50), cols)] == 0.0)
    requested = (inc * DENH2O * params.dz_soil[:NL, None]).sum(0)
    assert np.allclose(rep.water_added + rep.water_refused, requested, rtol=0, atol=1e-10)
    assert np.abs(rep.water_refused).max() > 1.0  # the bounds did refuse water in this case


def test_members_are_bounded_by_their_own_state():
    ncol, nmem = 2, 3
    params = column_parameters(["temperate", "arid"]).repeat(nmem)
    st = initial_state(params, temperature=290.0, saturation=0.5)
    por = params.soilpar[L.SP_THETA_S, 0]
    dz = params.dz_soil[0]
    wet, dry = flat_index(1, 0, nmem), flat_index(1, 2, nmem)
    st.wliq_soisno[S, wet] = (por[wet] - 0.01) * DENH2O * dz
    st.wliq_soisno[S, dry] = 0.5 * por[dry] * DENH2O * dz
    cols = np.arange(ncol * nmem)
    inc = np.zeros((1, len(cols)))
    inc[0, :] = 0.05
    rep = C.apply_increment(st, params, cols, inc)
    assert rep.applied[0, wet] == pytest.approx(0.01, abs=1e-12)  # clipped at its porosity
    assert rep.applied[0, dry] == pytest.approx(0.05, abs=1e-12)  # not clipped
    view = C.per_member(rep.water_added, nmem)
    assert view.shape == (ncol, nmem)
    assert view[1, 0] == rep.water_added[wet] and view[1, 2] == rep.water_added[dry]


def test_frozen_at_the_core_freezing_point():
    params = column_parameters(["temperate", "temperate"])
    st = initial_state(params, temperature=290.0, saturation=0.5)
    st.t_soisno[S, 0] = 273.155  # below the core's 273.16 K: frozen, though above 273.15 K
    st.t_soisno[S, 1] = 273.17
    rep = C.apply_increment(st, params, np.array([0, 1]), np.full((1, 2), 0.01))
    assert rep.frozen_layers[0].tolist() == [True, False]
    assert rep.applied[0, 0] == 0.0 and rep.applied[0, 1] == pytest.approx(0.01)


def test_same_arithmetic_as_the_sekf_before_the_port():
    st, params = ensemble_state(9, 4, seed=5)
    rng = np.random.default_rng(2)
    sub = np.sort(rng.choice(36, size=20, replace=False))
    inc_cols = rng.normal(0.0, 0.05, size=(len(sub), NL))  # the SEKF's (columns, layers) increment
    # the SEKF's application before the protocol (colmda.assim.hooks, transcribed)
    old = st.copy()
    dz = params.dz_soil
    dzc = dz[:NL, None]
    liq = (old.wliq_soisno[S:S + NL, sub] / 1000.0 / dzc).T
    ice = (old.wice_soisno[S:S + NL, sub] / 917.0 / dzc).T
    par = params.soilpar
    lower = np.maximum(par[L.SP_THETA_R, :NL][:, sub].T, 0.0)
    porosity = par[L.SP_THETA_S, :NL][:, sub].T
    frozen = (old.t_soisno[S:S + NL, sub] <= TFRZ).T
    inc = C.bounded_increment(liq, ice, inc_cols, lower, porosity, frozen)
    old.wliq_soisno[S:S + NL, sub] += (inc * 1000.0 * dz[:NL][None, :]).T
    water_old = (inc * 1000.0 * dz[:NL][None, :]).sum(1)
    new = st.copy()
    rep = C.apply_increment(new, params, sub, inc_cols.T)
    for k, v in old.arrays().items():
        assert np.array_equal(v, getattr(new, k)), k
    assert np.array_equal(rep.water_added, water_old)
    assert np.array_equal(rep.background, (liq + ice).T)


def test_state_increments_temperature_rules():
    """Top-soil temperature increments (EnKF control_soil_temperature): applied to thawed, ice-free layers; a
    frozen layer or one holding ice is unchanged; an increment that would cross the freezing point stops
    PHASE_MARGIN above it; nothing else in the state changes."""
    st = initial_state(column_parameters(["temperate"] * 4), temperature=280.0, saturation=0.5)
    s = L.NSNOW_MAX
    st.t_soisno[s, 1] = TFRZ - 1.0  # frozen
    st.wice_soisno[s, 2] = 0.5  # holds ice
    before = st.copy()
    out = C.apply_state_increments(st, np.arange(4), t_soil_1=np.array([1.5, 2.0, 2.0, -20.0]))
    np.testing.assert_allclose(st.t_soisno[s], [281.5, TFRZ - 1.0, 280.0, TFRZ + C.PHASE_MARGIN])
    np.testing.assert_allclose(out["t_soil_1"], st.t_soisno[s] - before.t_soisno[s])
    for k in ("wliq_soisno", "wice_soisno", "dz_snow", "cstate"):
        assert np.array_equal(getattr(st, k), getattr(before, k))
    assert np.array_equal(np.delete(st.t_soisno, s, axis=0), np.delete(before.t_soisno, s, axis=0))


def test_state_increments_swe_scales_the_snow_consistently():
    """SWE increments (EnKF control_swe): every snow layer's water, ice and thickness and the column's SWE and
    depth scale by one factor (density unchanged); the applied change equals the change of the snow's water; no
    snow is created; at most MAX_SNOW_REMOVED of it is removed and the rest is reported as refused."""
    st = initial_state(column_parameters(["boreal"] * 3), temperature=265.0, saturation=0.5)
    s = L.NSNOW_MAX
    for c, (swe, depth) in enumerate(((30.0, 0.1), (10.0, 0.05), (0.0, 0.0))):
        if swe:
            st.wice_soisno[s - 2:s, c] = [0.6 * swe, 0.4 * swe]
            st.dz_snow[-2:, c] = [0.6 * depth, 0.4 * depth]
        st.cstate[L.CS_SCV, c] = swe
        st.cstate[L.CS_SNOWDP, c] = depth
    before = st.copy()
    out = C.apply_state_increments(st, np.arange(3), swe=np.array([15.0, -50.0, 5.0]))
    np.testing.assert_allclose(st.cstate[L.CS_SCV], [45.0, 10.0 * (1 - C.MAX_SNOW_REMOVED), 0.0])
    snow_water = (st.wliq_soisno[:s] + st.wice_soisno[:s]).sum(axis=0)
    np.testing.assert_allclose(snow_water, st.cstate[L.CS_SCV])
    np.testing.assert_allclose(out["swe"], st.cstate[L.CS_SCV] - before.cstate[L.CS_SCV])
    np.testing.assert_allclose(out["swe_refused"], [0.0, -50.0 + 10.0 * C.MAX_SNOW_REMOVED, 5.0])
    dens_before = before.wice_soisno[s - 2:s, :2] / before.dz_snow[-2:, :2]
    np.testing.assert_allclose(st.wice_soisno[s - 2:s, :2] / st.dz_snow[-2:, :2], dens_before)
    np.testing.assert_allclose(st.cstate[L.CS_SNOWDP, :2] / before.cstate[L.CS_SNOWDP, :2],
                               st.cstate[L.CS_SCV, :2] / before.cstate[L.CS_SCV, :2])
    assert np.array_equal(st.wliq_soisno[s:], before.wliq_soisno[s:]) and np.array_equal(st.t_soisno,
                                                                                          before.t_soisno)
