"""Whole-column verification: water and energy books every step, multi-year stability, statelessness.

The runs use the synthetic columns of ``colmda.testing`` (tropical rainforest, hot desert, temperate deciduous
forest, boreal needleleaf forest, tundra grass) with the full physics of ``colmda._core.advance``.
"""

import numpy as np
import pytest

from colmda import core
from colmda import layout as L
from colmda.testing import CLIMATES, climate_forcing, column_parameters

CLIMATE_NAMES = list(CLIMATES)
DT = 1800.0
STEPS_PER_YEAR = 17520
T_INIT = [299.0, 297.0, 284.0, 271.0, 262.0]


def run_years(years, nper=1, names=CLIMATE_NAMES, seed=1, hydr_model="vangenuchten"):
    params = column_parameters(names)
    state = core.initial_state(params, temperature=[T_INIT[CLIMATE_NAMES.index(n)] for n in names])
    forc = climate_forcing(names, int(years * STEPS_PER_YEAR), seed=seed)
    states = [state.copy()]
    diags = []
    # one call per year, as the driver does with windows; state is carried by Python between calls
    for y in range(int(np.ceil(years))):
        sl = slice(y * STEPS_PER_YEAR, min((y + 1) * STEPS_PER_YEAR, forc.shape[1]))
        diags.append(core.advance(state, params, forc[:, sl], DT, nper=nper, hydr_model=hydr_model))
        states.append(state.copy())
    diag = np.concatenate([d.diag for d in diags], axis=1)
    diag_soil = np.concatenate([d.diag_soil for d in diags], axis=2)
    return params, states, core.Diagnostics(diag, diag_soil), forc


@pytest.fixture(scope="module")
def two_year_run():
    return run_years(2, nper=1)


def test_water_balance_closes_every_step(two_year_run):
    """Storage change (soil liquid + ice, snow, canopy, ponding, aquifer) equals precipitation minus
    evapotranspiration minus runoff in every step of every column, to round-off: the residual is below
    1e-12 of the step's gross fluxes plus the round-off of summing the storages (eps * storage / dt)."""
    params, states, d, forc = two_year_run
    err = np.abs(d["D_WBAL_ERR"])
    gross = (np.abs(d["D_RAINF"]) + np.abs(d["D_SNOWF"]) + np.abs(d["D_EVAP"]) + np.abs(d["D_QS"])
             + np.abs(d["D_QSB"]))
    tol = 1e-12 * gross + 8 * np.finfo(float).eps * np.abs(d["D_TWS"]) / DT
    assert np.all(err <= tol), f"worst residual {err.max():.3e} kg m-2 s-1, ratio {(err / tol).max():.2f}"
    # the diagnostic is honest: recompute from the storages at the start and end of the run
    w0 = states[0].total_water()
    w1 = states[-1].total_water()
    net = ((d["D_RAINF"] + d["D_SNOWF"] - d["D_EVAP"] - d["D_QS"] - d["D_QSB"]) * DT).sum(0)
    np.testing.assert_allclose(w1 - w0, net, rtol=0, atol=1e-9 * np.abs(w1).max())
    assert np.all(np.abs(forc[L.F_PREC].sum(0) - (d["D_RAINF"] + d["D_SNOWF"]).sum(0)) < 1e-12 * forc[L.F_PREC].sum(0) + 1e-300)


def test_energy_balance_closes_every_step(two_year_run):
    """Surface: SWnet + LWnet - Qh - Qle - Qg = 0 every step (round-off, recomputed here from the fluxes).
    Snow/soil: the heat flux applied at the top equals the heat-content change plus the latent heat of
    phase change (residual from the solver's own books)."""
    params, states, d, forc = two_year_run
    seb = d["D_SWNET"] + d["D_LWNET"] - d["D_QH"] - d["D_QLE"] - d["D_QG"]
    scale = np.abs(d["D_SWNET"]) + np.abs(d["D_LWNET"]) + np.abs(d["D_QH"]) + np.abs(d["D_QLE"]) + 1.0
    assert np.abs(seb).max() < 1e-11 * scale.max()
    assert np.abs(d["D_EBAL_ERR"]).max() < 1e-10
    assert np.abs(d["D_SOILH_ERR"]).max() < 1e-8
    # the leaf energy balance converged at every step
    assert np.abs(d["D_LEAF_RES"]).max() < 0.1


def test_snow_inside_swe_and_states_physical(two_year_run):
    """After every yearly call: snow water equals the sum over snow layers, water and ice are non-negative,
    soil water (as water-equivalent volume) does not exceed porosity, temperatures are within physical bounds and nothing is NaN."""
    params, states, d, forc = two_year_run
    porosity = params.soilpar[L.SP_THETA_S]
    for s in states[1:]:
        snow_layers = (s.wliq_soisno[:L.NSNOW_MAX] + s.wice_soisno[:L.NSNOW_MAX]).sum(0)
        layered = s.dz_snow.sum(0) > 0
        np.testing.assert_allclose(snow_layers[layered], s.cstate[L.CS_SCV][layered], rtol=1e-12)
        assert np.all(s.wliq_soisno >= -1e-12) and np.all(s.wice_soisno >= -1e-12)
        # water-equivalent volume (ice counted at the density of water: freezing expands it, as in CoLM)
        vol_we = (s.soil_liquid() + s.soil_ice()) / 1000.0 / params.dz_soil[:, None]
        assert np.all(vol_we <= porosity + 1e-9)
        assert np.all(np.isfinite(s.t_soisno)) and np.all(np.isfinite(s.cstate))
    assert np.all(np.isfinite(d.diag))
    ts = d["DS_SOILTEMP"]
    assert ts.min() > 200.0 and ts.max() < 340.0


def test_climates_behave_like_their_climates(two_year_run):
    """Sanity of the physics across climates (second year): the desert evaporates least and has no snow,
    the tundra and boreal columns build a snowpack and freeze their topsoil in winter, the rainforest has the
    largest latent heat flux, and evaporation never exceeds precipitation plus storage."""
    params, states, d, forc = two_year_run
    year2 = slice(STEPS_PER_YEAR, 2 * STEPS_PER_YEAR)
    qle = d["D_QLE"][year2].mean(0)
    swe = d["D_SWE"][year2].max(0)
    ice_top = d["DS_SOILICE"][0, year2].max(0)
    i = {n: k for k, n in enumerate(CLIMATE_NAMES)}
    assert qle[i["tropical"]] == qle.max()
    assert qle[i["arid"]] == qle.min()
    assert swe[i["arid"]] == 0.0 and swe[i["tropical"]] == 0.0
    assert swe[i["boreal"]] > 20.0 and swe[i["tundra"]] > 20.0
    assert ice_top[i["boreal"]] > 0.0 and ice_top[i["tundra"]] > 0.0
    # Bowen ratio: desert mostly sensible, rainforest mostly latent
    qh = d["D_QH"][year2].mean(0)
    assert qh[i["arid"]] > 3 * qle[i["arid"]]
    assert qle[i["tropical"]] > qh[i["tropical"]]


def test_stateless_and_deterministic():
    """Two calls on copies of the same state give bitwise-identical results whatever ran in between, and a
    column gives the same answer alone or inside any batch (the basis of MPI and ensemble invariance)."""
    names = CLIMATE_NAMES
    params = column_parameters(names)
    forc = climate_forcing(names, 480, start_doy=20)
    s0 = core.initial_state(params, temperature=T_INIT)
    a = s0.copy()
    da = core.advance(a, params, forc, DT, nper=48)
    # something else in between: a different batch with different forcing
    junk = s0.copy()
    core.advance(junk, params, climate_forcing(names, 96, seed=7), DT)
    b = s0.copy()
    db = core.advance(b, params, forc, DT, nper=48)
    for k, v in a.arrays().items():
        assert np.array_equal(v, getattr(b, k)), k
    assert np.array_equal(da.diag, db.diag) and np.array_equal(da.diag_soil, db.diag_soil)
    # column 3 alone, and inside a reversed, duplicated batch
    c = s0.take([3])
    dc = core.advance(c, params.take([3]), forc[:, :, [3]], DT, nper=48)
    order = [4, 3, 2, 1, 0, 3]
    big = s0.take(order)
    dbig = core.advance(big, params.take(order), forc[:, :, order], DT, nper=48)
    assert np.array_equal(dc.diag[:, :, 0], da.diag[:, :, 3])
    assert np.array_equal(dbig.diag[:, :, 1], da.diag[:, :, 3]) and np.array_equal(dbig.diag[:, :, 5], da.diag[:, :, 3])
    assert np.array_equal(big.take([1]).t_soisno, a.take([3]).t_soisno)


def test_window_split_is_invisible():
    """Advancing 4 days in one call or in four one-day calls gives identical states (the driver's windows and
    restarts cut the run anywhere)."""
    names = ["temperate", "boreal"]
    params = column_parameters(names)
    forc = climate_forcing(names, 192, start_doy=100)
    a = core.initial_state(params, temperature=[284.0, 271.0])
    b = a.copy()
    core.advance(a, params, forc, DT)
    for k in range(4):
        core.advance(b, params, forc[:, 48 * k:48 * (k + 1)], DT)
    for k, v in a.arrays().items():
        assert np.array_equal(v, getattr(b, k)), k


@pytest.mark.parametrize("hydr_model", ["campbell", "vangenuchten"])
def test_both_hydraulic_models_run_and_balance(hydr_model):
    """Both hydraulic models run a season in every climate with the water books closed."""
    params, states, d, forc = run_years(0.25, nper=1, hydr_model=hydr_model)
    gross = np.abs(d["D_RAINF"]) + np.abs(d["D_SNOWF"]) + np.abs(d["D_EVAP"]) + np.abs(d["D_QS"]) + np.abs(d["D_QSB"])
    tol = 1e-12 * gross + 8 * np.finfo(float).eps * np.abs(d["D_TWS"]) / DT
    assert np.all(np.abs(d["D_WBAL_ERR"]) <= tol)
    assert np.all(np.isfinite(d.diag))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 20 simulated years in 5 climates
def test_twenty_years_stable():
    """20 simulated years in tropical, arid, temperate, boreal and tundra climates: no NaN, no negative water,
    bounded temperatures, soil moisture within [0, porosity], water books closed over the whole run."""
    params, states, d, forc = run_years(20, nper=48)
    porosity = params.soilpar[L.SP_THETA_S]
    for s in states:
        assert np.all(np.isfinite(s.t_soisno)) and np.all(np.isfinite(s.cstate))
        assert np.all(s.wliq_soisno >= -1e-12) and np.all(s.wice_soisno >= -1e-12)
        assert np.all((s.soil_liquid() + s.soil_ice()) / 1000.0 / params.dz_soil[:, None] <= porosity + 1e-9)
        assert s.t_soisno[L.NSNOW_MAX:].min() > 200 and s.t_soisno[L.NSNOW_MAX:].max() < 340
    w0, w1 = states[0].total_water(), states[-1].total_water()
    net = ((d["D_RAINF"] + d["D_SNOWF"] - d["D_EVAP"] - d["D_QS"] - d["D_QSB"]) * 48 * DT).sum(0)
    np.testing.assert_allclose(w1 - w0, net, rtol=1e-9, atol=1e-6)
