"""Snow physics (fortran/colm_snow.f90) verified through the full column model (colmda.core.advance).

A bare-soil column (no interception, so the snowfall reaching the ground is the forcing's) is driven by hand-made
forcing: accumulation in cold air, then melt in warm sunny weather; and a forest-tundra column by the synthetic
tundra climate through autumn, winter and spring. The state is inspected after every step (or every day) and the
diagnostics are per-step (nper = 1). Expected values come from the layering rules of CoLM/CLM (thresholds
below), from BATS snow age and the Niu-Yang cover fraction recomputed here, and from conservation.
"""

import numpy as np
import pytest

from colmda import layout as L
from colmda.core import ColumnParameters, advance, initial_state
from colmda.pft import vegpar
from colmda.testing import climate_forcing, cos_zenith

TFRZ = 273.16  # K
HFUS = 3.336e5  # J kg-1
DT = 1800.0  # s
DZMIN = np.array([0.010, 0.015, 0.025, 0.055, 0.115])  # combine below these, top to bottom (m)
DZKEEP = np.array([0.02, 0.05, 0.11, 0.23])  # a layer with layers below keeps at most this (m)
DZSPLIT = np.array([0.03, 0.07, 0.18, 0.41])  # the lowest of k layers is halved above this (m)


def _dz_soil():
    z = 0.025 * (np.exp(0.5 * (np.arange(1, 11) - 0.5)) - 1.0)
    dz = np.empty(10)
    dz[0] = 0.5 * (z[0] + z[1])
    dz[1:-1] = 0.5 * (z[2:] - z[:-2])
    dz[-1] = z[-1] - z[-2]
    return dz


def _soilpar():
    sp = np.zeros((L.NSP, L.NL_SOIL, 1), order="F")
    sp[L.SP_THETA_S] = 0.45
    sp[L.SP_THETA_R] = 0.05
    sp[L.SP_KSAT] = 0.01
    sp[L.SP_PSI_S] = -200.0
    sp[L.SP_BSW] = 5.4
    sp[L.SP_ALPHA_VG] = 0.0036
    sp[L.SP_N_VG] = 1.56
    sp[L.SP_L_VG] = 0.5
    sp[L.SP_CSOL] = 2.2e6
    sp[L.SP_TKDRY] = 0.25
    sp[L.SP_TKSATU] = 1.46
    sp[L.SP_TKSATF] = 2.65
    sp[L.SP_ROOTFR] = 0.1
    return sp


def _params(pft, lai, sai):
    cp = np.zeros((L.NCP, 1), order="F")
    cp[L.CP_LAI], cp[L.CP_SAI], cp[L.CP_ZREF] = lai, sai, 30.0
    cp[L.CP_ALBSAT_VIS], cp[L.CP_ALBSAT_NIR], cp[L.CP_ALBDRY_VIS], cp[L.CP_ALBDRY_NIR] = 0.09, 0.18, 0.18, 0.36
    return ColumnParameters(_soilpar(), vegpar(np.array([pft])), cp, _dz_soil())


def _forcing(tair, prec, cloud, doy0=60.0, lat=60.0):
    """Forcing (NF, n, 1) from air temperature and precipitation series: 80 % relative humidity, 3 m/s wind,
    clear-sky shortwave reduced by cloud, Brutsaert longwave with a cloud correction."""
    n = tair.size
    t_mid = (np.arange(n) + 0.5) * DT / 86400.0 + doy0
    hour = np.mod(t_mid, 1.0) * 24.0
    coszen = cos_zenith(lat, np.mod(t_mid, 365.0), hour)
    es = 611.2 * np.exp(17.67 * (tair - 273.15) / (tair - 29.65))
    ea = 0.8 * es
    ps = np.full(n, 1.0e5)
    f = np.zeros((L.NF, n, 1), order="F")
    f[L.F_TAIR, :, 0] = tair
    f[L.F_QAIR, :, 0] = 0.622 * ea / (ps - 0.378 * ea)
    f[L.F_PSURF, :, 0] = ps
    f[L.F_PREC, :, 0] = prec
    f[L.F_WIND, :, 0] = 3.0
    f[L.F_SWDOWN, :, 0] = np.maximum(coszen, 0.0) * 1361.0 * 0.75 * (1 - 0.65 * cloud)
    eps = 1.24 * (ea / 100.0 / tair) ** (1.0 / 7.0)
    f[L.F_LWDOWN, :, 0] = (eps * (1 - 0.84 * cloud) + 0.84 * cloud) * 5.67e-8 * tair ** 4
    f[L.F_COSZEN, :, 0] = coszen
    return f


def _check_snow_state(st):
    """Layering invariants of one column after a step; returns the number of snow layers."""
    dzs = st.dz_snow[:, 0]
    wl, wi = st.wliq_soisno[:5, 0], st.wice_soisno[:5, 0]
    scv, snowdp = st.cstate[L.CS_SCV, 0], st.cstate[L.CS_SNOWDP, 0]
    n = int(np.count_nonzero(dzs > 0))
    assert np.all(dzs[5 - n:] > 0), "snow layers fill the slots from the bottom (slot 0) upward"
    assert np.all(dzs[: 5 - n] == 0) and np.all(wl[: 5 - n] == 0) and np.all(wi[: 5 - n] == 0)
    assert n <= 5
    if n == 0:
        # snow without layers stays below the depth at which the first layer appears
        assert snowdp < 0.01 * (1 + 1e-6) or scv == 0.0
        return 0
    d = dzs[5 - n:]  # top to bottom
    assert scv == pytest.approx((wl + wi).sum(), rel=1e-12, abs=1e-12)
    assert snowdp == pytest.approx(d.sum(), rel=1e-12)
    assert snowdp >= 0.01
    if n >= 2:
        assert np.all(d >= DZMIN[:n] * (1 - 1e-12)), d
    assert np.all(d[: n - 1] <= DZKEEP[: n - 1] * (1 + 1e-12)), d
    if n < 5:
        assert d[n - 1] <= DZSPLIT[n - 1] * (1 + 1e-12), d
    # layers are real snow: ice present, density between fresh snow and ice
    rho = (wl + wi)[5 - n:] / d
    assert np.all(wi[5 - n:] > 0) and np.all(rho > 30) and np.all(rho < 917)
    return n


@pytest.mark.parametrize("hydr_model", ["campbell", "vangenuchten"])
def test_accumulation_and_melt_conserve_mass_and_energy_and_respect_layer_thresholds(hydr_model):
    """Bare soil, 12 days of snowfall (1 mm/h of water in cold air, 263-268 K) then 40 days of warm sunny
    weather (281 K). Checked after every step: layers fill from the bottom slot, at most 5, each at least 0.010,
    0.015, 0.025, 0.055, 0.115 m (top to bottom) when there are two or more, at most 0.02/0.05/0.11/0.23 m above
    the lowest and the lowest at most 0.03/0.07/0.18/0.41 m (division thresholds); no layer below 0.01 m of snow;
    scv and snowdp equal the sums over the layers; the column water balance and the snow/soil heat balance close
    to round-off in every step (measured: water 1e-15 kg m-2 s-1, heat 2e-10 W m-2). During accumulation the
    snow water equals the summed snowfall minus sublimation exactly (measured 3e-13 kg m-2; peak 289 kg m-2,
    1.9 m deep, first layer after one hour). The pack reaches 5 layers, then melts away completely by day 36,
    passing through 4..1 layers and snow without layers, with the net melt summing to the pack's water."""
    params = _params(0, 0.0, 0.0)
    st = initial_state(params, temperature=272.0, saturation=0.5)
    n_acc, n_melt = 12 * 48, 40 * 48
    t = np.arange(n_acc + n_melt) * DT / 86400.0
    tair = np.where(t < 12, 265.5 + 2.5 * np.sin(2 * np.pi * t), 281.0 + 4 * np.sin(2 * np.pi * (t - 0.375)))
    prec = np.where(t < 12, 1.0 / 3600.0, 0.0)
    forc = _forcing(tair, prec, np.where(t < 12, 1.0, 0.1))
    nlay = np.zeros(t.size, dtype=int)
    diags = []
    for k in range(t.size):
        d = advance(st, params, forc[:, k:k + 1], DT, hydr_model=hydr_model, nper=1)
        diags.append(d.diag[:, 0, 0].copy())
        nlay[k] = _check_snow_state(st)
    diag = np.array(diags)
    assert np.abs(diag[:, L.D_WBAL_ERR]).max() < 1e-10
    assert np.abs(diag[:, L.D_SOILH_ERR]).max() < 1e-8
    assert np.abs(diag[:, L.D_EBAL_ERR]).max() < 1e-8
    swe = diag[:, L.D_SWE]
    # accumulation (cold, overcast: no melt, no liquid leaves the pack): the snow mass is exactly
    # snowfall minus sublimation (plus frost) summed over the steps, and the pack reaches 5 layers
    assert np.all(diag[:n_acc, L.D_QSM] == 0.0)
    budget = np.cumsum((diag[:, L.D_SNOWF] - diag[:, L.D_SUBSNOW]) * DT)
    assert np.abs(swe[:n_acc] - budget[:n_acc]).max() < 1e-9
    assert 250.0 < swe[n_acc - 1] <= 288.0 + 5.0
    assert nlay[:n_acc].max() == 5
    # the first layer appears within the first hours (1 mm/h of ~80 kg m-3 snow is 1.2 cm/h)
    assert 0 < np.argmax(nlay > 0) < 6
    # melt: all gone, layers removed one by one on the way down
    assert swe[-1] == 0.0 and nlay[-1] == 0
    seen = set(nlay[n_acc:])
    assert {4, 3, 2, 1, 0} <= seen
    # the ice melted (net of refreezing) is the pack's water at the start of the melt, give or take the
    # vapour exchanged meanwhile (dew/frost/sublimation) and ice handed to the soil with vanishing layers
    melt = diag[n_acc:, L.D_QSM].sum() * DT
    vapour = np.abs(diag[n_acc:, L.D_SUBSNOW]).sum() * DT
    assert abs(melt - swe[n_acc - 1]) <= vapour + 0.5


def test_snow_age_and_cover_fraction_follow_bats_and_niu_yang():
    """Stepping a bare-soil column through 2 days of snowfall and 4 dry days, per step: the snow age equals the
    BATS update recomputed here from the previous age, the surface temperature and the ground snowfall,
    tau <- (tau + 1e-6 dt (r1 + r2 + 0.3)) (1 - 0.1 dS), r1 = exp(5000 (1/tfrz - 1/T)), r2 = min(1, r1^10);
    light snowfall slows it, 10 kg m-2 in one step resets it to zero, and it then grows by 0.026-0.2 per day
    (measured 0.05 per day with the surface near 258 K); the cover fraction equals
    tanh(snowdp / (2.5 z0g (rho/100))) with z0g = 0.01 m and rho = scv / snowdp; rain/snow partition of the
    forcing is snow below tfrz, rain above tfrz + 2 K, linear between."""
    params = _params(0, 0.0, 0.0)
    st = initial_state(params, temperature=271.0, saturation=0.5)
    n = 6 * 48
    t = np.arange(n) * DT / 86400.0
    tair = np.where(t < 2, 268.0, 262.0 + 5 * np.sin(2 * np.pi * t))
    prec = np.where(t < 2, 0.5 / 3600.0, 0.0)
    prec[2 * 48 - 1] = 10.0 / DT  # one step with 10 kg m-2 of snow: a full reset
    forc = _forcing(tair, prec, np.where(t < 2, 1.0, 0.2))
    age = [st.cstate[L.CS_SNOWAGE, 0]]
    for k in range(n):
        d = advance(st, params, forc[:, k:k + 1], DT, nper=1)
        tg = d["D_AVGSURFT"][0, 0]
        snowf = d["D_SNOWF"][0, 0]
        arg = 5000.0 * (1.0 / TFRZ - 1.0 / tg)
        expect = (age[-1] + 1e-6 * DT * (np.exp(arg) + np.exp(min(0.0, 10 * arg)) + 0.3)) * (1 - 0.1 * snowf * DT)
        expect = max(expect, 0.0) if st.cstate[L.CS_SCV, 0] > 0 else 0.0
        assert st.cstate[L.CS_SNOWAGE, 0] == pytest.approx(expect, rel=1e-12, abs=1e-15)
        age.append(st.cstate[L.CS_SNOWAGE, 0])
        scv, dp = st.cstate[L.CS_SCV, 0], st.cstate[L.CS_SNOWDP, 0]
        fs = np.tanh(dp / (2.5 * 0.01 * (scv / dp / 100.0))) if dp > 0 and scv > 0 else 0.0
        assert d["D_SNOWFRAC"][0, 0] == pytest.approx(fs, rel=1e-12, abs=1e-15)
        frac_snow = np.clip((TFRZ + 2.0 - tair[k]) / 2.0, 0.0, 1.0)
        assert snowf == pytest.approx(prec[k] * frac_snow, rel=1e-12, abs=1e-20)
    age = np.array(age)
    assert 0.0 < age[2 * 48 - 1] < 0.2  # light snowfall only slows the aging
    assert age[2 * 48] == 0.0  # 10 kg m-2 in one step resets it
    growth = age[-1] - age[2 * 48]
    # below tfrz the rate lies between 1e-6 * 0.3 and 1e-6 * 2.3 s-1, i.e. 0.026 to 0.2 per day
    assert 0.026 * 4 < growth < 0.2 * 4
    assert d["D_SNOWFRAC"][0, 0] > 0.9


def test_rain_snow_partition_ramp():
    """Precipitation at air temperatures from tfrz - 3 K to tfrz + 4 K: D_SNOWF / precipitation is 1 up to tfrz,
    0 above tfrz + 2 K and linear in between, D_RAINF + D_SNOWF = precipitation (CoLM partition)."""
    params = _params(0, 0.0, 0.0)
    st = initial_state(params, temperature=275.0, saturation=0.5)
    tair = np.linspace(TFRZ - 3.0, TFRZ + 4.0, 29)
    prec = np.full(tair.size, 2.0e-4)
    d = advance(st, params, _forcing(tair, prec, np.ones(tair.size)), DT, nper=1)
    snowf, rainf = d["D_SNOWF"][:, 0], d["D_RAINF"][:, 0]
    expect = prec * np.clip((TFRZ + 2.0 - tair) / 2.0, 0.0, 1.0)
    assert np.allclose(snowf, expect, rtol=1e-12, atol=1e-20)
    assert np.allclose(rainf + snowf, prec, rtol=1e-14)


@pytest.mark.parametrize("pft", [12, 2])
def test_tundra_winter_keeps_balances_and_snow_invariants(pft):
    """The synthetic tundra climate from September to mid-July (310 days, daily windows) on a C3 arctic grass and a
    needleleaf boreal tree column (interception of snow on the canopy): after every day the layering
    invariants hold; every step closes the water, surface energy and snow/soil heat balances to round-off;
    a seasonal snowpack builds (> 50 kg m-2) with several layers and is gone by the end of spring."""
    lai, sai = (1.2, 0.3) if pft == 12 else (3.0, 0.8)
    params = _params(pft, lai, sai)
    st = initial_state(params, temperature=276.0, saturation=0.6)
    ndays = 310
    forc = climate_forcing(["tundra"], ndays * 48, start_doy=245.0, seed=3)
    swe, nl = [], []
    for day in range(ndays):
        d = advance(st, params, forc[:, day * 48:(day + 1) * 48], DT, nper=1)
        for name, tol in (("D_WBAL_ERR", 1e-10), ("D_SOILH_ERR", 1e-8), ("D_EBAL_ERR", 1e-8)):
            assert np.abs(d[name]).max() < tol, (name, day)
        nl.append(_check_snow_state(st))
        swe.append(st.cstate[L.CS_SCV, 0])
    swe, nl = np.array(swe), np.array(nl)
    assert swe.max() > 50.0
    assert nl.max() >= 3
    assert swe[-5:].max() == 0.0
    print(f'pft {pft}: max SWE {swe.max():.1f} kg m-2, max layers {nl.max()}, snow-free from day {np.flatnonzero(swe > 0)[-1] + 1}')
