"""Snow in the shortwave scheme (fortran/colm_radiation.f90, colm_column.f90): snow on the ground under and
around a canopy, snow on the canopy elements, and crops buried by snow.

References are computed here: BATS snow albedos (Dickinson et al. 1993) from their closed form, the two-stream
problem with snow-covered phytoelements (CLM4.5 technical note sect. 3.1) by scipy's solve_bvp.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad, solve_bvp

import colmda._core as _core
from colmda import core, layout as L
from colmda.pft import vegpar
from colmda.testing import column_parameters

OMEGA_SNO = (0.8, 0.4)   # vis, nir scattering coefficient of canopy snow (CLM4.5 sect. 3.1)
RHO_STEM, TAU_STEM = (0.16, 0.39), (0.001, 0.001)


def bats(coszen, age):
    """BATS direct and diffuse snow albedo (vis, nir) at cosine zenith and non-dimensional age."""
    fage = age / (1 + age)
    dif = np.array([0.95 * (1 - 0.2 * fage), 0.65 * (1 - 0.5 * fage)])
    fz = max(0.0, 1.5 / (1 + 4 * coszen) - 0.5)
    return dif + 0.4 * fz * (1 - dif), dif


def kernel(pft, lai, sai, coszen, sw=400.0, fsno=1.0, age=0.5, fcansno=0.0):
    vp = vegpar([pft])[:, 0].copy()
    colpar = np.array([lai, sai, 30.0, 0.09, 0.18, 0.18, 0.36])
    return _core.canopy_radiation_kernel(coszen, sw, vp, lai, sai, colpar, 0.25, fsno, age, fcansno)


def bvp_reflectance(chil, rho, tau, fs, osn, mu, lsai, ag_dir, ag_dif, idir):
    """Reflectance of the two-stream problem (CLM4.5 eqs. 3.1-3.2) whose phytoelements are a fraction fs covered
    by snow: omega, omega beta and omega beta0 are mixed between the element values and omega_sno, 0.5 omega_sno."""
    chil = min(max(chil, -0.4), 0.6)
    phi1 = 0.5 - 0.633 * chil - 0.33 * chil ** 2
    phi2 = 0.877 * (1 - 2 * phi1)
    mb = (1 - phi1 / phi2 * np.log((phi1 + phi2) / phi1)) / phi2
    g = phi1 + phi2 * mu
    k = g / mu
    om_v = rho + tau
    a_s = om_v / 2 * quad(lambda m: m * g / (mu * (phi1 + phi2 * m) + m * g), 0, 1, epsabs=1e-14)[0]
    omega = (1 - fs) * om_v + fs * osn
    upscat = (1 - fs) * 0.5 * (om_v + (rho - tau) * ((1 + chil) / 2) ** 2) + fs * 0.5 * osn
    betao = (1 - fs) * (1 + mb * k) / (mb * k) * a_s + fs * 0.5 * osn
    b, c, d = 1 - omega + upscat, upscat, betao * mb * k
    f = omega * mb * k - d
    beam = 1.0 if idir == 1 else 0.0

    def rhs(x, y):
        e = beam * np.exp(-k * x)
        return np.vstack([(b * y[0] - c * y[1] - d * e) / mb, (-b * y[1] + c * y[0] + f * e) / mb])

    def bc(ya, yb):
        return np.array([ya[1] - (1.0 - beam), yb[0] - (ag_dir * beam * np.exp(-k * lsai) + ag_dif * yb[1])])

    x = np.linspace(0, lsai, 200)
    sol = solve_bvp(rhs, bc, x, np.zeros((2, x.size)), tol=1e-10, max_nodes=200000)
    assert sol.success
    return sol.sol(0.0)[0]


@pytest.mark.parametrize("fs", [0.3, 1.0])
def test_snow_on_canopy_scatters_like_snow(fs):
    """A frozen canopy whose elements are a fraction fs covered by intercepted snow reflects as the two-stream
    problem with omega = (1 - fs) omega_veg + fs omega_sno (and the same mixing of omega beta, omega beta0),
    solved here by solve_bvp: the four surface albedos (vis/nir, direct/diffuse) agree to 1e-6 over snowy ground;
    fs = 0 is the snow-free canopy."""
    pft, lai, sai, mu = 15, 0.5, 1.0, 0.3
    out = kernel(pft, lai, sai, mu, fcansno=fs)
    vp = vegpar([pft])[:, 0]
    wl, ws = lai / (lai + sai), sai / (lai + sai)
    rho = (wl * vp[L.VP_RHO_VIS] + ws * RHO_STEM[0], wl * vp[L.VP_RHO_NIR] + ws * RHO_STEM[1])
    tau = (wl * vp[L.VP_TAU_VIS] + ws * TAU_STEM[0], wl * vp[L.VP_TAU_NIR] + ws * TAU_STEM[1])
    albg = out[20:24].reshape(2, 2, order="F")          # (band, dir/dif)
    alb = out[16:20].reshape(2, 2, order="F")
    for ib in range(2):
        for idir in (1, 2):
            ref = bvp_reflectance(vp[L.VP_CHIL], rho[ib], tau[ib], fs, OMEGA_SNO[ib], mu, lai + sai,
                                  albg[ib, 0], albg[ib, 1], idir)
            assert alb[ib, idir - 1] == pytest.approx(ref, abs=1e-6)
    assert out[3] > kernel(pft, lai, sai, mu, fcansno=0.0)[3]
    np.testing.assert_allclose(kernel(pft, lai, sai, mu)[16:20], kernel(pft, lai, sai, mu, fcansno=0.0)[16:20],
                               rtol=0, atol=0)


def _winter_crop_run(lai):
    """A crop column (PFT 15) in a cold week: 40 mm of snowfall on day 1 at -8 C, then dry days."""
    params = column_parameters(["boreal"])
    params.vegpar[:, 0] = vegpar([15])[:, 0]
    params.colpar[L.CP_LAI, 0] = lai
    params.colpar[L.CP_SAI, 0] = 1.0
    nsteps = 48 * 6
    dt = 1800.0
    hour = (np.arange(nsteps) + 0.5) * dt / 3600.0 % 24.0
    coszen = np.maximum(0.0, 0.45 * np.cos(2 * np.pi * (hour - 12.0) / 24.0) - 0.05)
    forc = np.zeros((L.NF, nsteps, 1), order="F")
    forc[L.F_TAIR] = 265.0
    forc[L.F_QAIR] = 1.5e-3
    forc[L.F_PSURF] = 1.0e5
    forc[L.F_PREC, :48] = 40.0 / 86400.0
    forc[L.F_WIND] = 3.0
    forc[L.F_COSZEN, :, 0] = coszen
    forc[L.F_SWDOWN, :, 0] = 900.0 * coszen
    forc[L.F_LWDOWN] = 250.0
    state = core.initial_state(params, temperature=270.0)
    d = core.advance(state, params, forc, dt, nper=1)
    return forc, d


def test_snow_covered_crop_has_snow_albedo():
    """A low crop (LAI 0.4: height 0.05 m, CLM5's floor) under ~0.3 m of snow is buried: every daytime step of the
    last five days has snow cover > 0.99 and a broadband albedo inside the range the BATS age/zenith scheme gives
    for full snow cover at that sun (fresh snow to infinitely old snow, same shortwave split). A tall crop
    (LAI 4: 2.5 m) under the same snow is not buried and its albedo lies below that range (canopy visible)."""
    forc, d = _winter_crop_run(0.4)
    day = np.flatnonzero((forc[L.F_COSZEN, :, 0] > 0.05) & (np.arange(forc.shape[1]) >= 48))
    assert day.size > 50
    albedo = d["D_ALBEDO"][day, 0]
    assert np.all(d["D_SNOWFRAC"][day, 0] > 0.99) and np.all(d["D_SNOWDEPTH"][day, 0] > 0.1)
    for n, a in zip(day, albedo):
        mu, sw = forc[L.F_COSZEN, n, 0], forc[L.F_SWDOWN, n, 0]
        lo = kernel(0, 0.0, 0.0, mu, sw=sw, fsno=1.0, age=1e12)[3]
        hi = kernel(0, 0.0, 0.0, mu, sw=sw, fsno=1.0, age=0.0)[3]
        assert lo - 1e-9 <= a <= hi + 1e-9, (n, a, lo, hi)
    forc, d_tall = _winter_crop_run(4.0)
    tall = d_tall["D_ALBEDO"][day, 0]
    for n, a in zip(day, tall):
        mu, sw = forc[L.F_COSZEN, n, 0], forc[L.F_SWDOWN, n, 0]
        assert a < kernel(0, 0.0, 0.0, mu, sw=sw, fsno=1.0, age=1e12)[3]


def test_bats_closed_form_under_full_snow():
    """Full snow cover over bare ground gives the BATS albedos by band and incidence, weighted by the shortwave
    split into the broadband albedo."""
    for mu, age in ((0.15, 0.0), (0.4, 2.0), (0.8, 50.0)):
        out = kernel(0, 0.0, 0.0, mu, sw=500.0, fsno=1.0, age=age)
        direct, dif = bats(mu, age)
        sw = out[12:16]                                   # vis dir, nir dir, vis dif, nir dif
        expected = (sw[0] * direct[0] + sw[1] * direct[1] + sw[2] * dif[0] + sw[3] * dif[1]) / sw.sum()
        assert out[3] == pytest.approx(expected, rel=1e-13)
