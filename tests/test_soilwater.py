"""Verification of the soil-water core (fortran/colm_hydraulics.f90, fortran/colm_soilwater.f90).

The Richards solver is reached through ``colmda._core.soilwater_kernel`` (the routine ``richards_solve`` that the
column's ``soil_water`` also uses, with chosen hydraulics and boundary conditions), the column routine through
``soilwater_column_kernel`` and the hydraulic functions through ``soil_hydraulics_kernel``.

References are computed here by independent means: closed-form hydraulic functions written in numpy, steady flux
profiles from an ODE integration (scipy ``solve_ivp``), and transient profiles from a method-of-lines integration
of the h-form Richards equation (scipy BDF, adaptive order and step) on a much finer grid. Units follow the core:
mm, s, mm s-1. Measured results are listed in docs/physics-soilwater.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.sparse import diags

import colmda._core as core
from colmda import layout as L
from colmda.soilparams import soil_parameters, van_genuchten_class

CMD = 10.0 / 86400.0  # 1 cm day-1 in mm s-1
PSI_E = -1.0  # air-entry potential of the vG-Mualem form in colm_hydraulics (CoLM202X) (mm)
SMPMIN = -1.0e8  # colm_const smpmin (mm)
EPS = np.finfo(float).eps

# Vanderborght et al. (2005, Vadose Zone J. 4, 206-221) soils: theta_r, theta_s, alpha (cm-1), n, K_s (cm d-1)
VANDERBORGHT = {
    "sand": (0.045, 0.43, 0.15, 3.0, 1000.0),
    "loam": (0.08, 0.43, 0.04, 1.6, 50.0),
    "clay": (0.1, 0.4, 0.01, 1.1, 10.0),
}


# ------------------------------------------------------------------------------------------------------------
# parameter vectors and independent hydraulic functions
def vg_layer(theta_r, theta_s, alpha, n, ksat, l_vg=0.5):
    """SP_* vector of a van Genuchten-Mualem layer (alpha mm-1, ksat mm s-1); Campbell fields benign."""
    sp = np.zeros(L.NSP)
    sp[L.SP_THETA_S], sp[L.SP_THETA_R], sp[L.SP_KSAT] = theta_s, theta_r, ksat
    sp[L.SP_ALPHA_VG], sp[L.SP_N_VG], sp[L.SP_L_VG] = alpha, n, l_vg
    sp[L.SP_PSI_S], sp[L.SP_BSW] = -100.0, 5.0
    return sp


def vanderborght_layer(name):
    tr, ts, a, n, ks = VANDERBORGHT[name]
    return vg_layer(tr, ts, a / 10.0, n, ks * CMD)


def campbell_layer(theta_s, psi_s, bsw, ksat):
    sp = vg_layer(0.05, theta_s, 0.01, 1.5, ksat)
    sp[L.SP_PSI_S], sp[L.SP_BSW] = psi_s, bsw
    return sp


def stack(sp, nl):
    return np.asfortranarray(np.repeat(np.asarray(sp, dtype=float)[:, None], nl, axis=1))


def vg_theta_k(h, sp):
    """theta (-), capacity (mm-1) and K (mm s-1) of the air-entry vG-Mualem model (Ippisch et al. 2006)."""
    tr, ts, a, n, ks, lv = (sp[L.SP_THETA_R], sp[L.SP_THETA_S], sp[L.SP_ALPHA_VG], sp[L.SP_N_VG],
                            sp[L.SP_KSAT], sp[L.SP_L_VG])
    m = 1.0 - 1.0 / n

    def mualem(x):
        # 1 - (1 - S*^(1/m))^m = 1 - (1 + x^-n)^-m (dry) = 1 - x^(n-1) S* (wet), each form free of cancellation
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(x > 1.0, -np.expm1(-m * np.log1p(x ** (-n))), 1.0 - x ** (n - 1) * (1 + x ** n) ** (-m))

    sc = (1.0 + (-a * PSI_E) ** n) ** (-m)
    fc = mualem(np.array(-a * PSI_E))
    hh = np.minimum(np.asarray(h, dtype=float), PSI_E)
    x = -a * hh
    sstar = (1.0 + x ** n) ** (-m)
    se = sstar / sc
    sat = np.asarray(h) >= PSI_E
    theta = np.where(sat, ts, tr + (ts - tr) * se)
    cap = np.where(sat, 0.0, (ts - tr) * m * n * a * x ** (n - 1) * sstar / (1 + x ** n) / sc)
    k = np.where(sat, ks, ks * se ** lv * (mualem(x) / fc) ** 2)
    return theta, cap, k


def campbell_theta_k(h, sp):
    ts, psis, b, ks = sp[L.SP_THETA_S], sp[L.SP_PSI_S], sp[L.SP_BSW], sp[L.SP_KSAT]
    hh = np.minimum(np.asarray(h, dtype=float), psis)
    s = (hh / psis) ** (-1.0 / b)
    cap = np.where(np.asarray(h) >= psis, 0.0, ts * s / (b * np.abs(hh)))
    return ts * s, cap, ks * s ** (2 * b + 3)


# ------------------------------------------------------------------------------------------------------------
# running the kernels
def richards(hydr, sp, dz, theta0, dt, nsteps, top_type, top_value, bot_type, bot_value=0.0, bot_depth=None,
             sink=None, kmean=1, ice=None, pond_head=0.0):
    nl = len(dz)
    theta = np.array(theta0, dtype=float)
    h = np.zeros(nl)
    tv = np.broadcast_to(np.asarray(top_value, dtype=float), (nsteps,)).copy()
    bv = np.broadcast_to(np.asarray(bot_value, dtype=float), (nsteps,)).copy()
    out = core.soilwater_kernel(hydr, kmean, dt, np.asarray(dz, dtype=float) / 1000.0, sp,
                                np.zeros(nl) if ice is None else ice, np.zeros(nl) if sink is None else sink,
                                top_type, tv, pond_head, bot_type, bv,
                                (np.sum(dz) if bot_depth is None else bot_depth) / 1000.0, 0, theta, h)
    q_top, q_bot, th_hist, h_hist, nsub, niter, ierr = out
    return dict(theta=theta, h=h, q_top=q_top, q_bot=q_bot, th_hist=th_hist, nsub=nsub, niter=niter, ierr=ierr)


def column_run(hydr, sp, wliq, wice, t_soil, gw, qgtop, qseva, etr, rootr, dt=1800.0):
    """soil_water over len(qgtop) steps; returns outputs and the per-step water balance residual."""
    dz = core.default_soil_thickness()
    w0, g0 = np.array(wliq, dtype=float), np.array(gw, dtype=float)
    wl, g = w0.copy(), g0.copy()
    qs, qb, qi, qc, wh, gh, ierr = core.soilwater_column_kernel(hydr, dt, dz, sp, t_soil, wice, qgtop, qseva, etr,
                                                                rootr, wl, g)
    ws = np.concatenate([w0[:, None], wh], axis=1)
    gs = np.concatenate([g0[:, None], gh], axis=1)
    store = ws.sum(axis=0) + gs[0] + gs[2]
    flux = (qgtop - qseva - etr - qs - qb) * dt
    resid = np.diff(store) - flux
    # round-off allowance: 1e-12 of the fluxes plus a few ulps of the stores (the aquifer holds ~5000 mm)
    tol = 1e-12 * (np.abs(qgtop) + np.abs(qseva) + np.abs(etr) + np.abs(qs) + np.abs(qb)) * dt \
        + 16 * EPS * (store[:-1] + store[1:])
    return dict(qsurf=qs, qsub=qb, qinfl=qi, qcharge=qc, wliq=wh, gw=gh, ierr=ierr, resid=resid, tol=tol, dz=dz)


def mol_reference(sp, depth, nl, h_init, q_rain, times, rtol=1e-6, bottom="free"):
    """Method-of-lines reference: h-form Richards equation on nl uniform cells, integrated by scipy's BDF.
    Top: rain q_rain limited by the capacity at surface head 0 (the same switch as TOP_RAIN); bottom: free
    drainage. A specific storage of 1e-7 mm-1 keeps saturated cells from making the ODE singular."""
    dz = depth / nl
    ks = sp[L.SP_KSAT]

    def rhs(_t, h):
        _, cap, k = vg_theta_k(h, sp)
        q = np.empty(nl + 1)
        q[1:-1] = 0.5 * (k[:-1] + k[1:]) * ((h[:-1] - h[1:]) / dz + 1.0)
        q[0] = min(q_rain, 0.5 * (ks + k[0]) * ((0.0 - h[0]) / (0.5 * dz) + 1.0))
        q[-1] = k[-1]
        return (q[:-1] - q[1:]) / (dz * (cap + 1e-7))

    sol = solve_ivp(rhs, (0.0, times[-1]), np.full(nl, float(h_init)), method="BDF", t_eval=times,
                    jac_sparsity=diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(nl, nl)), rtol=rtol, atol=rtol)
    assert sol.success, sol.message
    return np.array([vg_theta_k(sol.y[:, k], sp)[0] for k in range(len(times))])


# ------------------------------------------------------------------------------------------------------------
# hydraulic functions
HYDR_CASES = [
    (1, campbell_layer(0.4386, -226.99, 6.09, 3.7717e-3)),
    (2, vanderborght_layer("sand")),
    (2, vanderborght_layer("loam")),
    (2, vanderborght_layer("clay")),
]


@pytest.mark.parametrize("hydr,sp", HYDR_CASES)
def test_hydraulic_functions_match_closed_forms(hydr, sp):
    """psi(theta) and K(theta) of colm_hydraulics reproduce the closed-form Campbell and air-entry vG-Mualem
    functions written independently here; theta(psi(theta)) returns theta; the analytic derivatives
    (dpsi/dtheta, dK/dtheta, dtheta/dpsi, dK/dpsi) agree with centred finite differences."""
    ts, tr = sp[L.SP_THETA_S], (sp[L.SP_THETA_R] if hydr == 2 else 0.0)
    ref = vg_theta_k if hydr == 2 else campbell_theta_k
    psi_s = PSI_E if hydr == 2 else sp[L.SP_PSI_S]
    psi = -np.geomspace(1.02 * abs(psi_s), 1e6, 25)              # from just below air entry to -1e6 mm
    theta = ref(psi, sp)[0]
    zeros = np.zeros_like(theta)
    smp, dsmp, hk, dhk, th_back, cap, hk_psi, dhk_psi, seeded = core.soil_hydraulics_kernel(hydr, sp, theta, zeros)
    th_ref, cap_ref, k_ref = ref(smp, sp)
    np.testing.assert_allclose(smp, psi, rtol=1e-7)             # psi(theta) inverts the closed form
    np.testing.assert_allclose(th_back, theta, rtol=1e-11)      # and the core's own inverse
    np.testing.assert_allclose(hk_psi, k_ref, rtol=1e-9)
    np.testing.assert_allclose(cap, cap_ref, rtol=1e-9)
    np.testing.assert_allclose(cap * dsmp, 1.0, rtol=1e-9)
    # functions of theta lose digits where theta - theta_r is a few ulps of theta, and finite differences need
    # room on both sides of theta: check those where theta is not within 1e-4 (1e-5) of theta_r (theta_s)
    ok = ((theta - tr) / (ts - tr) > 1e-4) & ((ts - theta) / (ts - tr) > 1e-5)
    np.testing.assert_allclose(hk[ok], k_ref[ok], rtol=1e-9)
    d = 1e-6 * np.minimum(theta - tr, ts - theta)               # stay on one side of the air entry
    sp_p = core.soil_hydraulics_kernel(hydr, sp, theta + d, zeros)
    sp_m = core.soil_hydraulics_kernel(hydr, sp, theta - d, zeros)
    np.testing.assert_allclose(((sp_p[0] - sp_m[0]) / (2 * d))[ok], dsmp[ok], rtol=1e-4)
    np.testing.assert_allclose(((sp_p[2] - sp_m[2]) / (2 * d))[ok], dhk[ok], rtol=1e-4)
    dh = 1e-7 * np.abs(smp)
    k_p, k_m = ref(smp + dh, sp)[2], ref(smp - dh, sp)[2]
    np.testing.assert_allclose((k_p - k_m) / (2 * dh), dhk_psi, rtol=1e-4)
    # the solver's start (layer_state_theta, vG without ice): the same head bit for bit and the same state at
    # that head as the forward functions to round-off, wherever it applies (everywhere here for vG)
    used = seeded[0] == 1.0
    assert used.all() if hydr == 2 else not used.any()
    np.testing.assert_array_equal(seeded[1, used], smp[used])
    for row, forward in zip(seeded[2:], (th_back, cap, hk_psi, dhk_psi)):
        np.testing.assert_allclose(row[used], forward[used], rtol=1e-12)
    # limits: matric potential at saturation is the air entry, never below smpmin
    sat = core.soil_hydraulics_kernel(hydr, sp, np.array([ts, tr + 1e-300]), np.zeros(2))[0]
    assert sat[0] == pytest.approx(PSI_E if hydr == 2 else sp[L.SP_PSI_S])
    assert sat[1] == SMPMIN


@pytest.mark.parametrize("hydr,sp", HYDR_CASES[:2])
def test_ice_impedance_and_pore_space_cap(hydr, sp):
    """Frozen soil: conductivity is the liquid-only conductivity times 10^(-6 theta_ice/theta_s) (CoLM2014);
    liquid beyond the pore space left by ice does not raise the matric potential above its value at that cap."""
    ts = sp[L.SP_THETA_S]
    theta = np.full(4, 0.5 * ts)
    ice = np.array([0.0, 0.1, 0.2, 0.3]) * ts
    smp, _, hk, *_ = core.soil_hydraulics_kernel(hydr, sp, theta, ice)
    np.testing.assert_allclose(hk / hk[0], 10.0 ** (-6.0 * ice / ts), rtol=1e-12)
    np.testing.assert_allclose(smp, smp[0], rtol=1e-12)
    over = core.soil_hydraulics_kernel(hydr, sp, np.array([0.8 * ts, 0.5 * ts]), np.full(2, 0.5 * ts))[0]
    assert over[0] == over[1] < 0.0


# ------------------------------------------------------------------------------------------------------------
# steady flux profiles above a water table
STEADY_CASES = [
    ("vG loam, evaporation 0.3 mm/d", 2, vanderborght_layer("loam"), -0.3),
    ("vG loam, infiltration 5 mm/d", 2, vanderborght_layer("loam"), 5.0),
    ("vG loam, infiltration 0.5 Ks", 2, vanderborght_layer("loam"), 250.0),
    ("Campbell loam, evaporation 0.3 mm/d", 1, campbell_layer(0.4386, -226.99, 6.09, 3.7717e-3), -0.3),
    ("Campbell loam, infiltration 5 mm/d", 1, campbell_layer(0.4386, -226.99, 6.09, 3.7717e-3), 5.0),
    ("vG sand, infiltration 0.2 Ks", 2, vanderborght_layer("sand"), 2000.0),
]


@pytest.mark.parametrize("name,hydr,sp,q_mmd", STEADY_CASES, ids=[c[0] for c in STEADY_CASES])
@pytest.mark.parametrize("grid", ["uniform", "stretched"])
def test_steady_flux_profile_matches_ode(name, hydr, sp, q_mmd, grid):
    """A constant surface flux (upward: evaporation, downward: infiltration) over a water table at 1 m
    (h = 0 at the bottom) reaches the steady state whose head profile solves dh/dz = 1 - q / K(h) (z down).
    The implicit solver, run with 5-day steps until steady, matches a tight solve_ivp integration of that ODE
    at the nodes on uniform 1 cm layers and on layers stretched geometrically from 0.3 to 5.5 cm."""
    depth, nl = 1000.0, 100
    dz = np.full(nl, depth / nl) if grid == "uniform" else 1.03 ** np.arange(nl)
    dz = dz / dz.sum() * depth
    q = q_mmd / 86400.0
    r = richards(hydr, stack(sp, nl), dz, np.full(nl, 0.3), 5 * 86400.0, 60, 1, q, 2, 0.0)
    assert r["ierr"] == 0
    assert r["q_bot"][-1] == pytest.approx(q, rel=1e-6)  # steady: the flux is uniform
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    z = 0.5 * (zi[1:] + zi[:-1])
    kfun = (vg_theta_k if hydr == 2 else campbell_theta_k)
    sol = solve_ivp(lambda _z, y: 1.0 - q / kfun(y, sp)[2], (depth, 0.0), [0.0], method="LSODA", rtol=1e-10,
                    atol=1e-8, dense_output=True)
    href = sol.sol(z)[0]
    err = np.max(np.abs(r["h"] - href) / np.maximum(np.abs(href), 10.0))
    assert err < (5e-3 if grid == "uniform" else 3e-2), err


# ------------------------------------------------------------------------------------------------------------
# mass balance (Celia et al. 1990)
CELIA = vg_layer(0.102, 0.368, 0.00335, 2.0, 0.0922)  # Celia et al. (1990), alpha 0.0335 cm-1, Ks 0.00922 cm/s


@pytest.mark.parametrize("dt", [60.0, 3600.0, 86400.0])
def test_celia_mass_balance_ratio_is_one(dt):
    """Celia et al. (1990) infiltration (vG: theta_s 0.368, theta_r 0.102, alpha 0.0335 cm-1, n 2, K_s 0.00922
    cm s-1; 1 m column at h = -1000 cm, surface held at -75 cm, bottom at -1000 cm, 1 day). Their mass-balance
    ratio (change of storage over net boundary inflow) equals 1 to round-off for any time step, from one-minute
    steps to a single one-day step, because contents are updated from the interface fluxes."""
    nl, dzmm = 100, 10.0
    theta0 = np.full(nl, vg_theta_k(-10000.0, CELIA)[0])
    nsteps = int(round(86400.0 / dt))
    r = richards(2, stack(CELIA, nl), np.full(nl, dzmm), theta0, dt, nsteps, 2, -750.0, 2, -10000.0)
    inflow = np.sum(r["q_top"] - r["q_bot"]) * dt
    stored = np.sum(r["theta"] - theta0) * dzmm
    assert inflow > 10.0
    assert abs(stored / inflow - 1.0) < 1e-12
    # the front has moved: the upper 10 cm are much wetter than initially
    assert np.all(r["theta"][:10] > theta0[:10] + 0.05)


# ------------------------------------------------------------------------------------------------------------
# infiltration fronts (Vanderborght et al. 2005, also benchmark M2.1 of Schnepf et al. 2020)
VDB_TIMES = {"sand": [0.1, 0.2, 0.3], "loam": [0.2, 0.5, 1.0], "clay": [0.1, 0.2, 0.5]}  # benchmark output days


def _front_depth(theta, z, theta_i):
    mid = theta_i + 0.5 * (theta.max() - theta_i)
    return z[np.nonzero(theta > mid)[0].max()]


def _vanderborght(name, nl_model, nl_ref, dt, times):
    """Model and reference profiles for 100 cm/d rain on 2 m of soil at h = -400 cm, free drainage."""
    sp = vanderborght_layer(name)
    depth, h_i = 2000.0, -4000.0
    theta_i = float(vg_theta_k(h_i, sp)[0])
    tsec = np.array(times) * 86400.0
    ref = mol_reference(sp, depth, nl_ref, h_i, 100 * CMD, tsec)
    nsteps = int(round(tsec[-1] / dt))
    r = richards(2, stack(sp, nl_model), np.full(nl_model, depth / nl_model), np.full(nl_model, theta_i), dt,
                 nsteps, 3, 100 * CMD, 3)
    assert r["ierr"] == 0
    z_m = (np.arange(nl_model) + 0.5) * depth / nl_model
    z_r = (np.arange(nl_ref) + 0.5) * depth / nl_ref
    rows = []
    for k, t in enumerate(tsec):
        th_m = r["th_hist"][:, int(round(t / dt)) - 1]
        th_r = ref[k]
        infil_r = np.sum(th_r - theta_i) * depth / nl_ref
        infil_m = np.sum(th_m - theta_i) * depth / nl_model
        coarse = th_r.reshape(nl_model, -1).mean(axis=1)
        l1 = np.sum(np.abs(th_m - coarse)) * depth / nl_model
        rows.append(dict(t=t, infil_m=infil_m, infil_r=infil_r, l1_rel=l1 / infil_r,
                         front_m=_front_depth(th_m, z_m, theta_i), front_r=_front_depth(th_r, z_r, theta_i)))
    return rows, depth / nl_model


@pytest.mark.parametrize("name", ["sand", "loam", "clay"])
def test_vanderborght_infiltration_front(name):
    """Infiltration of 100 cm/d into sand, loam and clay at h = -400 cm (Vanderborght et al. 2005 parameters;
    loam and clay pond, so the surface switches to h = 0): on 4 cm layers with 1-minute steps the infiltrated
    water, the front depth and the water-content profile agree with a method-of-lines BDF reference on 1 cm
    cells at the first two benchmark times (all three in the slow test): fronts within one layer, infiltration
    within 8 % and profile L1 difference within 8 % of the infiltrated water (the largest differences, 6.7 %, are
    clay's at 0.1 d, when the coarse top layer overestimates the early ponded infiltration; see the refinement
    test)."""
    rows, dzm = _vanderborght(name, 50, 200, 60.0, VDB_TIMES[name][:2])
    for row in rows:
        assert abs(row["infil_m"] / row["infil_r"] - 1.0) < 0.08, row
        assert abs(row["front_m"] - row["front_r"]) <= dzm, row
        assert row["l1_rel"] < 0.08, row


@pytest.mark.slow
@pytest.mark.timeout(1800)  # fine-grid reference runs
@pytest.mark.parametrize("name", ["sand", "loam", "clay"])
def test_vanderborght_infiltration_front_refined(name):
    """The same benchmark on 2 cm and 1 cm layers (30 s steps) against a 2.5 mm reference: the differences in
    infiltration and profile shrink with the layers, and on 1 cm layers infiltration is within 2.5 %, the profile
    L1 difference within 2.5 % and the fronts within 1.5 layers (the front is read at node depths)."""
    coarse, _ = _vanderborght(name, 100, 800, 30.0, VDB_TIMES[name])
    fine, dzm = _vanderborght(name, 200, 800, 30.0, VDB_TIMES[name])
    for c, row in zip(coarse, fine):
        assert abs(row["infil_m"] / row["infil_r"] - 1.0) < 0.025, row
        assert abs(row["front_m"] - row["front_r"]) <= 1.5 * dzm, row
        assert row["l1_rel"] < 0.025, row
        assert row["l1_rel"] < c["l1_rel"], (c, row)


# ------------------------------------------------------------------------------------------------------------
# convergence in time and space
CONV_SOIL = vanderborght_layer("loam")
CONV_DEPTH, CONV_HI, CONV_T = 480.0, -1000.0, 0.25 * 86400.0
CONV_Q = 0.5 * CONV_SOIL[L.SP_KSAT]


def _mol_flux(nl, rtol):
    """Reference for the convergence tests: constant flux 0.5 K_s on top, free drainage (method of lines)."""
    sp, dz = CONV_SOIL, CONV_DEPTH / nl

    def rhs(_t, h):
        _, cap, k = vg_theta_k(h, sp)
        q = np.empty(nl + 1)
        q[1:-1] = 0.5 * (k[:-1] + k[1:]) * ((h[:-1] - h[1:]) / dz + 1.0)
        q[0], q[-1] = CONV_Q, k[-1]
        return (q[:-1] - q[1:]) / (dz * (cap + 1e-9))

    sol = solve_ivp(rhs, (0.0, CONV_T), np.full(nl, CONV_HI), method="BDF", rtol=rtol, atol=rtol,
                    jac_sparsity=diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(nl, nl)))
    return vg_theta_k(sol.y[:, -1], sp)[0]


def _conv_model(nl, dt):
    theta0 = np.full(nl, vg_theta_k(CONV_HI, CONV_SOIL)[0])
    r = richards(2, stack(CONV_SOIL, nl), np.full(nl, CONV_DEPTH / nl), theta0, dt, int(round(CONV_T / dt)),
                 1, CONV_Q, 3)
    assert r["ierr"] == 0
    return r["theta"]


def test_time_convergence_first_order():
    """Backward Euler: with the 1 cm grid fixed, the error against the time-exact semi-discrete solution (the
    same finite-volume scheme integrated by BDF at rtol 1e-9) halves with the step (loam, flux 0.5 K_s into
    h = -100 cm). Observed L1 orders for dt 2400 -> 150 s approach 1 (asserted >= 0.9 between the finest)."""
    ref = _mol_flux(48, 1e-9)
    errs = []
    for dt in [2400.0, 1200.0, 600.0, 300.0, 150.0]:
        errs.append(np.sum(np.abs(_conv_model(48, dt) - ref)) * CONV_DEPTH / 48)
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 0.8), orders
    assert orders[-1] > 0.9, orders


def test_space_convergence_order():
    """Refining the layers 4 -> 2 -> 1 -> 0.5 cm (5 s steps, so that time errors are negligible) reduces the L1
    error against cell averages of a 0.625 mm method-of-lines reference with an observed order above 1.5
    between the two finest grids (arithmetic-mean interface conductivity; 2 is the asymptotic order)."""
    ref = _mol_flux(768, 1e-8)
    errs = []
    for nl in [12, 24, 48, 96]:
        coarse = ref.reshape(nl, -1).mean(axis=1)
        errs.append(np.sum(np.abs(_conv_model(nl, 5.0) - coarse)) * CONV_DEPTH / nl)
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 1.0), orders
    assert orders[-1] > 1.5, orders


@pytest.mark.parametrize("kmean", [1, 2, 3])
def test_interface_means_conserve_and_agree_when_refined(kmean):
    """All three interface conductivities (1 arithmetic, 2 geometric, 3 upstream) conserve mass exactly, and
    their solutions approach each other as the grid is refined (the choice is a discretisation error)."""
    theta0 = np.full(96, vg_theta_k(CONV_HI, CONV_SOIL)[0])
    dzs = np.full(96, CONV_DEPTH / 96)
    r = richards(2, stack(CONV_SOIL, 96), dzs, theta0, 60.0, int(CONV_T / 60.0), 1, CONV_Q, 3, kmean=kmean)
    assert r["ierr"] == 0
    stored = np.sum(r["theta"] - theta0) * CONV_DEPTH / 96
    assert stored == pytest.approx(np.sum(r["q_top"] - r["q_bot"]) * 60.0, rel=1e-12)
    ref = _conv_model(96, 60.0)
    assert np.sum(np.abs(r["theta"] - ref)) * CONV_DEPTH / 96 < 0.02 * stored


# ------------------------------------------------------------------------------------------------------------
# the column routine soil_water
def column_setup(hydr=1, sand=0.4, clay=0.2, theta=0.25):
    dz = core.default_soil_thickness()
    sp = np.asfortranarray(soil_parameters(np.array([sand]), np.array([clay]))[:, :, 0])
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    wliq = theta * dz * 1000.0
    return sp, dz, zi, wliq


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_heavy_rain_runoff_and_rising_water_table(hydr):
    """A day of 50 mm/h rain on a moist loam column, then 19 dry days: the first step's runoff is exactly SIMTOP's
    fsat G + (1 - fsat) max(0, G - qinmax) with fsat = 0.38 exp(-0.25 zwt) and qinmax = K_sat of the top three
    layers; the recharge fills the (full) aquifer and raises the water table into the column, which then recedes
    with baseflow. Every step closes the water balance to round-off; no layer exceeds porosity."""
    sp, dz, zi, wliq = column_setup(hydr, theta=0.35)
    n = 960
    rain = np.zeros(n)
    rain[:48] = 50.0 / 3600.0
    r = column_run(hydr, sp, wliq, np.zeros(10), np.full(10, 290.0), [0.0, zi[-1], 5000.0], rain, np.zeros(n),
                   np.zeros(n), np.full(10, 0.1))
    assert r["ierr"] == 0
    assert np.all(np.abs(r["resid"]) <= r["tol"])
    fsat = 0.38 * np.exp(-0.25 * zi[-1])
    qinmax = sp[L.SP_KSAT, :3].min()
    assert r["qsurf"][0] == pytest.approx(fsat * rain[0] + (1 - fsat) * (rain[0] - qinmax), rel=1e-12)
    zwt = r["gw"][1]
    assert zwt.min() < 1.5 and zwt[-1] > zwt.min() + 0.5
    assert np.all(r["gw"][2] <= 5000.0)
    theta = r["wliq"] / (dz[:, None] * 1000.0)
    assert np.all(theta <= sp[L.SP_THETA_S][:, None] * (1 + 1e-12))


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_perched_ponding_capped_at_pondmx(hydr):
    """Rain of 30 mm/h on loam over layers 300 times less permeable: water perches, the surface ponds up to pondmx
    (10 mm) and no further, the excess runs off in addition to SIMTOP's share, and the pond infiltrates after the
    rain; the balance closes every step."""
    sp, dz, zi, wliq = column_setup(hydr, theta=0.3)
    sp[L.SP_KSAT, 3:] /= 300.0
    n = 96
    rain = np.zeros(n)
    rain[:48] = 30.0 / 3600.0
    r = column_run(hydr, sp, wliq, np.zeros(10), np.full(10, 290.0), [0.0, zi[-1], 5000.0], rain, np.zeros(n),
                   np.zeros(n), np.full(10, 0.1))
    assert r["ierr"] == 0
    assert np.all(np.abs(r["resid"]) <= r["tol"])
    pond = r["gw"][0]
    assert pond.max() == pytest.approx(10.0) and np.all(pond >= 0.0)
    assert 0.0 < pond[-1] < 10.0 and np.all(np.diff(pond[48:]) < 0.0)
    fsat = 0.38 * np.exp(-0.25 * r["gw"][1][:48])
    simtop = fsat * rain[:48] + (1 - fsat) * np.maximum(0.0, rain[:48] - sp[L.SP_KSAT, :3].min())
    assert np.all(r["qsurf"][10:48] > simtop[10:48] * 1.05)


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_drying_never_negative(hydr):
    """Drying with evaporation asking for all the water of the top layer and pond every step, and transpiration
    of 3e-4 mm/s: no layer goes negative (the shortfall is drawn from deeper layers, then the aquifer) and every
    step closes the balance; the aquifer supplies capillary water and the water table deepens."""
    sp, dz, zi, wliq = column_setup(hydr, theta=0.2)
    wl, gw = wliq.copy(), np.array([2.0, zi[-1], 5000.0])
    worst = 0.0
    for _ in range(200):
        qe = np.array([(wl[0] + gw[0]) / 1800.0])
        r = column_run(hydr, sp, wl, np.zeros(10), np.full(10, 300.0), gw, np.zeros(1), qe, np.array([3e-4]),
                       np.full(10, 0.1))
        wl, gw = r["wliq"][:, -1].copy(), r["gw"][:, -1].copy()
        assert r["ierr"] == 0
        assert np.all(wl >= 0.0)
        assert abs(r["resid"][0]) <= r["tol"][0]
        worst = max(worst, abs(r["resid"][0]))
    assert gw[1] > zi[-1] and gw[2] < 5000.0


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_frozen_top_blocks_infiltration(hydr):
    """With the top four layers 80 % frozen, the ice impedance 10^(-6 f_ice) on the top-three-layer capacity sends
    nearly all rain to runoff; liquid water never exceeds the pore space left by ice (or its initial excess),
    never goes negative, and the balance closes every step."""
    sp, dz, zi, _ = column_setup(hydr)
    por = sp[L.SP_THETA_S]
    wice = np.zeros(10)
    wice[:4] = 0.8 * por[:4] * dz[:4] * 917.0
    wliq = 0.05 * dz * 1000.0
    t = np.full(10, 290.0)
    t[:4] = 268.0
    n = 100
    rain = np.full(n, 20.0 / 3600.0)
    r = column_run(hydr, sp, wliq, wice, t, [0.0, zi[-1], 5000.0], rain, np.zeros(n), np.zeros(n),
                   np.full(10, 0.1))
    assert r["ierr"] == 0
    assert np.all(np.abs(r["resid"]) <= r["tol"])
    assert np.sum(r["qsurf"]) > 0.97 * np.sum(rain)
    cap = np.maximum((por - wice / (917.0 * dz)) * dz * 1000.0, wliq)
    assert np.all(r["wliq"] <= cap[:, None] * (1 + 1e-12))
    assert np.all(r["wliq"] >= 0.0)


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_water_table_falls_from_the_surface(hydr):
    """A saturated column with the water table at the surface drains by SIMTOP baseflow: the first step's baseflow
    is exactly 5.5e-3 exp(-2.5 zwt) mm/s (475 mm/day at zwt = 0), the water table then deepens monotonically in
    trend, baseflow decays, the aquifer stays full while the water table is in the column, and every step closes
    the balance."""
    sp, dz, zi, _ = column_setup(hydr)
    wliq = sp[L.SP_THETA_S] * dz * 1000.0
    n = 1500
    r = column_run(hydr, sp, wliq, np.zeros(10), np.full(10, 285.0), [5.0, 0.0, 5000.0], np.zeros(n),
                   np.zeros(n), np.zeros(n), np.full(10, 0.1))
    assert r["ierr"] == 0
    assert np.all(np.abs(r["resid"]) <= r["tol"])
    assert r["qsub"][0] == pytest.approx(5.5e-3, rel=1e-12)
    zwt = r["gw"][1]
    assert zwt[-1] > zwt[50] > zwt[10] > 0.0
    assert r["qsub"][-1] < 0.01 * r["qsub"][0]
    assert np.all(r["gw"][2] == 5000.0)


@pytest.mark.parametrize("hydr", [1, 2])
def test_column_aquifer_baseflow_and_dew(hydr):
    """With the water table 5 m deep (below the column, aquifer mode) and dew forming, baseflow is SIMTOP's
    5.5e-3 exp(-2.5 zwt) drawn from the aquifer, dew enters the soil, the aquifer loses baseflow minus recharge,
    and the balance closes every step."""
    sp, dz, zi, wliq = column_setup(hydr, theta=0.2)
    n = 200
    dew = np.full(n, -1e-5)
    r = column_run(hydr, sp, wliq, np.zeros(10), np.full(10, 280.0), [0.0, 5.0, 4500.0], np.zeros(n), dew,
                   np.zeros(n), np.full(10, 0.1))
    assert r["ierr"] == 0
    assert np.all(np.abs(r["resid"]) <= r["tol"])
    assert r["qsub"][0] == pytest.approx(5.5e-3 * np.exp(-2.5 * 5.0), rel=1e-12)
    assert np.sum(r["qinfl"]) * 1800.0 == pytest.approx(n * 1e-5 * 1800.0, rel=1e-9)
    dwa = r["gw"][2, -1] - 4500.0
    assert dwa == pytest.approx(np.sum(r["qcharge"] - r["qsub"]) * 1800.0, rel=1e-9, abs=1e-9)


def test_column_year_of_weather_balance_and_bounds():
    """A year of half-hourly intermittent rain, evaporation and a diurnal transpiration cycle on four textures and
    both hydraulic models: every step closes the water balance to round-off, water stays within [0, porosity],
    the solver never reports non-convergence, and the cost stays small."""
    rng = np.random.default_rng(7)
    n = 17520
    rain = np.where(rng.random(n) < 0.05, rng.exponential(4.0 / 3600.0, n), 0.0)
    qe = np.full(n, 1.5e-5)
    et = 3e-5 * (1 + np.sin(np.arange(n) * 2 * np.pi / 48))
    rootr = np.array([0.1, 0.1, 0.15, 0.15, 0.15, 0.15, 0.1, 0.05, 0.05, 0.0])
    for hydr in (1, 2):
        for sand, clay in [(0.9, 0.05), (0.4, 0.2), (0.1, 0.6), (0.05, 0.45)]:
            sp, dz, zi, wliq = column_setup(hydr, sand, clay)
            r = column_run(hydr, sp, wliq, np.zeros(10), np.full(10, 290.0), [0.0, zi[-1], 5000.0], rain, qe,
                           et, rootr)
            assert r["ierr"] == 0
            assert np.all(np.abs(r["resid"]) <= r["tol"])
            theta = r["wliq"] / (dz[:, None] * 1000.0)
            assert theta.min() >= 0.0
            assert np.all(theta <= sp[L.SP_THETA_S][:, None] * (1 + 1e-12))


def test_column_rejects_corrupt_temperature():
    """A non-positive temperature is reported (ierr 2) and the state is left untouched."""
    sp, dz, zi, wliq = column_setup()
    t = np.full(10, 290.0)
    t[3] = 0.0
    r = column_run(1, sp, wliq, np.zeros(10), t, [1.0, zi[-1], 5000.0], np.ones(1) * 1e-3, np.zeros(1),
                   np.zeros(1), np.full(10, 0.1))
    assert r["ierr"] == 2
    np.testing.assert_array_equal(r["wliq"][:, 0], wliq)
