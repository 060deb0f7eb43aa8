"""Tau-omega L-band operator (colmda.obs.tau_omega): closed forms, limits, monotonicity and the Jacobian."""

import cmath
import math

import numpy as np
import pytest

from colmda.errors import UserError
from colmda.obs import tau_omega as T


def test_fresnel_smooth_surface_closed_forms():
    # nadir: R_H = R_V = ((sqrt(eps) - 1) / (sqrt(eps) + 1))^2 for real eps
    for eps in (3.0, 10.0, 25.0):
        rh, rv = T.fresnel(eps, 0.0)
        ref = ((math.sqrt(eps) - 1) / (math.sqrt(eps) + 1)) ** 2
        assert rh == pytest.approx(ref, rel=1e-14) and rv == pytest.approx(ref, rel=1e-14)
        # Brewster angle: R_V = 0 at tan(theta) = sqrt(eps)
        _, rv_b = T.fresnel(eps, math.degrees(math.atan(math.sqrt(eps))))
        assert rv_b < 1e-28
    # complex eps at 40 deg against the textbook formulas written independently with cmath
    eps, th = 12.0 + 2.5j, math.radians(40.0)
    c, s = math.cos(th), math.sin(th)
    root = cmath.sqrt(eps - s * s)
    rh_ref = abs((c - root) / (c + root)) ** 2
    rv_ref = abs((eps * c - root) / (eps * c + root)) ** 2
    rh, rv = T.fresnel(eps, 40.0)
    assert rh == pytest.approx(rh_ref, rel=1e-13) and rv == pytest.approx(rv_ref, rel=1e-13)
    assert rv < rh  # V below H away from nadir


def test_mironov_published_regressions_and_limits():
    # dry soil: eps = (nd + i kd)^2 with the paper's clay regressions (Mironov et al. 2009, Table/eq. 17)
    for clay in (0.05, 0.2, 0.5):
        C = 100 * clay
        nd = 1.634 - 0.539e-2 * C + 0.2748e-4 * C ** 2
        kd = 0.03952 - 0.04038e-2 * C
        eps, _ = T.mironov(0.0, clay)
        assert eps == pytest.approx((nd + 1j * kd) ** 2, rel=1e-14)
        # maximum bound water m_vt = 0.02863 + 0.30673e-2 C: the slope changes there (bound -> free water)
        mvt = 0.02863 + 0.30673e-2 * C
        _, d_below = T.mironov(mvt - 1e-6, clay)
        _, d_above = T.mironov(mvt + 1e-6, clay)
        assert abs(d_above) > abs(d_below)
    # free-water refractive index from the paper's constants (eps0u = 100, tau_u = 8.5 ps, eps_inf = 4.9) by hand
    f, clay = 1.41e9, 0.2
    wt = 2 * math.pi * f * 8.5e-12
    e1 = 4.9 + 95.1 / (1 + wt * wt)
    e2 = 95.1 * wt / (1 + wt * wt) + (0.3631 + 1.217e-2 * 20) / (2 * math.pi * 8.854187817e-12 * f)
    nu = math.sqrt((math.hypot(e1, e2) + e1) / 2)
    co = T.mironov_coefficients(clay, f)
    assert co['nu'] == pytest.approx(nu, rel=1e-12)
    # cross-model check: Mironov and Dobson agree within 25 % in eps' for loams at moderate moisture (both fitted
    # to laboratory data; Mironov et al. 2009 Fig. 9 compares them)
    for th in (0.15, 0.25, 0.35):
        em, _ = T.mironov(th, 0.15)
        ed, _ = T.dobson(th, 0.4, 0.15, 293.15)
        assert abs(em.real - ed.real) / ed.real < 0.25
        # eps' of wet soil: between that of dry soil (~3) and water (~80), increasing with theta
        assert 5 < em.real < 30


def _tb(theta, **kw):
    args = dict(t_eff=295.0, lai=2.0, pft=13, clay=0.2)
    args.update(kw)
    return T.brightness_temperature(theta, **args)


def test_tau_zero_and_tau_infinity_limits():
    th = np.linspace(0.02, 0.45, 30)
    # bare soil (pft 0: tau = 0, omega = 0): Tb = T_eff e_p, e_p = 1 - r_p
    out = _tb(th, pft=0, lai=0.0, params=T.TauOmegaParams(h=0.1, q=0.1))
    eps, _ = T.mironov(th, 0.2)
    rh, rv = T.fresnel(eps, 40.0)
    att = math.exp(-0.1 * math.cos(math.radians(40)) ** 2)
    np.testing.assert_allclose(out['tb_h'], 295.0 * (1 - (0.9 * rh + 0.1 * rv) * att), rtol=1e-13)
    np.testing.assert_allclose(out['tb_v'], 295.0 * (1 - (0.9 * rv + 0.1 * rh) * att), rtol=1e-13)
    # opaque canopy (huge LAI): Tb -> T_c (1 - omega), independent of soil moisture
    out = _tb(th, lai=1e4, t_canopy=290.0)
    np.testing.assert_allclose(out['tb_h'], 290.0 * (1 - 0.05), rtol=1e-12)
    np.testing.assert_allclose(out['tb_v'], 290.0 * (1 - 0.05), rtol=1e-12)


@pytest.mark.parametrize('dielectric', ['mironov', 'dobson'])
@pytest.mark.parametrize('hmin', [None, 0.1])
def test_tb_decreases_with_soil_moisture_and_jacobian_matches_fd(dielectric, hmin):
    p = T.TauOmegaParams(dielectric=dielectric, h_min=hmin, q=0.05)
    th = np.linspace(0.03, 0.48, 200)[None, :]
    lai = np.array([0.0, 1.0, 3.0])[:, None]
    pft = np.array([13, 15, 7])[:, None]
    out = _tb(th, lai=lai, pft=pft, sand=0.4, params=p, jacobian=True)
    for pol in ('h', 'v'):
        assert np.all(np.diff(out['tb_' + pol], axis=1) < 0)            # monotone decrease
        assert np.all(out['dtb_' + pol] < 0)
        d = 1e-6
        # centred differences away from the kinks (m_vt of Mironov, w_min/w_max of the h ramp)
        fd = (_tb(th + d, lai=lai, pft=pft, sand=0.4, params=p)['tb_' + pol]
              - _tb(th - d, lai=lai, pft=pft, sand=0.4, params=p)['tb_' + pol]) / (2 * d)
        kink = np.abs(th - T.mironov_coefficients(0.2)['mvt']) < 2e-6
        if hmin is not None:
            kink |= (np.abs(th - p.w_min) < 2e-6) | (np.abs(th - p.w_max) < 2e-6)
        kink = np.broadcast_to(kink, fd.shape)
        np.testing.assert_allclose(out['dtb_' + pol][~kink], fd[~kink], rtol=2e-6, atol=1e-6)
    # denser vegetation: weaker sensitivity
    assert np.all(np.abs(out['dtb_h'][2]) < np.abs(out['dtb_h'][0]))


def test_sm_dependent_roughness_ramp():
    p = T.TauOmegaParams(h_min=0.1, h_max=0.5, w_min=0.1, w_max=0.3)
    h, dh = T.roughness_h(np.array([0.05, 0.2, 0.4]), p)
    np.testing.assert_allclose(h, [0.5, 0.3, 0.1])
    np.testing.assert_allclose(dh, [0.0, -2.0, 0.0])


def test_effective_temperature_choudhury_weights():
    z = np.array([0.0071, 0.0279, 0.0623, 0.1189, 0.2122, 0.3661, 0.6198, 1.0380])
    w = T.temperature_weights(z)
    assert w.sum() == pytest.approx(1.0)
    t = np.linspace(300.0, 290.0, z.size)[:, None] * np.ones((1, 3))
    te = T.effective_temperature(t, w)
    t_s, t_d = np.interp(0.025, z, t[:, 0]), np.interp(0.5, z, t[:, 0])
    np.testing.assert_allclose(te, t_d + 0.246 * (t_s - t_d), rtol=1e-14)


def test_bad_input_one_line_errors():
    with pytest.raises(UserError, match='clay fraction missing'):
        _tb(0.2, clay=None)
    with pytest.raises(UserError, match='clay fraction missing'):
        _tb(np.array([0.2, 0.3]), clay=np.array([0.2, np.nan]))
    with pytest.raises(UserError, match='LAI missing'):
        _tb(0.2, lai=np.nan)
    with pytest.raises(UserError, match='outside \\[0, 350\\] K'):
        T.check_tb(np.array([250.0, 351.0]), 'obs/LH.nc value')
    with pytest.raises(UserError, match='dielectric'):
        T.TauOmegaParams(dielectric='wang')
    frozen, snow = T.qc_flags(np.array([272.0, 280.0, 280.0]), np.array([0.0, 0.01, 0.0]),
                              np.array([0.0, 0.0, 10.0]))
    assert frozen.tolist() == [True, True, False] and snow.tolist() == [False, False, True]


# ---------------------------------------------------------------- Tb in the twin's truth run
TRUTH = """
&experiment
    name = 'truth'
    start = '2005-06-01'
    end = '2005-06-04'
    seed = 5
/
&domain
    box = 30.0, 36.0, 108.0, 116.0
/
&forcing
    seed = 3
/
&output
    directory = '{out}'
    restart_days = 1
    variables = 'SoilMoistV'
/
&observations
    simulate = 'L', 'TB'
/
"""


def test_truth_run_simulates_smap_like_tb(tmp_path):
    """A truth run with &observations simulate = 'L', 'TB' writes obs/TbH.nc and obs/TbV.nc in the observation
    format (quantity tb_h / tb_v, units K, CF standard_name brightness_temperature) on exactly the L sensor's
    overpasses; values are plausible L-band Tb (V > H on average, 150-300 K), the error column is the documented
    sqrt(NEDT^2 + repr^2). (That the values are the operator of the truth state is proven on synthetic
    snapshots by test_tb_simulator_is_the_operator_of_the_truth_state.)"""
    import netCDF4

    from colmda import config
    from colmda.obs.format import read_obs
    from colmda.obs.simulate import TB_NEDT, TB_REPR_STD
    from colmda.parallel import SerialComm
    from colmda.run import run

    s = config.loads(TRUTH.format(out=tmp_path / 'truth'), source='truth.nml')
    run(s, comm=SerialComm(), progress=False)
    obs = tmp_path / 'truth' / 'obs'
    L = read_obs(obs / 'L.nc')
    H, V = read_obs(obs / 'TbH.nc'), read_obs(obs / 'TbV.nc')
    assert H.quantity == 'tb_h' and V.quantity == 'tb_v' and len(H) == len(L) == len(V) > 50
    np.testing.assert_array_equal(H.column, L.column)
    np.testing.assert_array_equal(H.time, L.time)
    with netCDF4.Dataset(obs / 'TbH.nc') as nc:
        assert nc['value'].units == 'K' and nc['value'].standard_name == 'brightness_temperature'
    ok = np.isfinite(H.value) & np.isfinite(V.value) & np.isfinite(L.value)
    assert ok.sum() > 50
    assert 150 < np.nanmean(H.value) < np.nanmean(V.value) < 300
    np.testing.assert_allclose(H.error, math.hypot(TB_NEDT, TB_REPR_STD))
    with pytest.raises(UserError, match='brightness temperature'):
        H.volumetric()


def test_tb_file_outside_range_is_a_one_line_error(tmp_path):
    from colmda.obs.format import ObsTable, read_obs, write_obs

    t = ObsTable('TbH', 'tb_h', 0.05, time=np.array(['2005-06-01T06:00'], 'datetime64[s]'), column=[3],
                 lat=[30.0], lon=[110.0], value=[380.0], error=[4.0], porosity=[np.nan], quality=[0])
    write_obs(tmp_path / 'bad.nc', t)
    with pytest.raises(UserError, match=r"bad.nc: variable 'value': 1 value\(s\) outside \[0, 350\] K"):
        read_obs(tmp_path / 'bad.nc')


def test_tb_simulator_is_the_operator_of_the_truth_state():
    """TbSimulator.sample on synthetic truth snapshots: with NEDT = repr = 0 every value equals the operator
    applied to the sensed liquid water (sensing weights of the L sensor) and the Choudhury T_eff of the layer
    temperatures at the end of the step containing the overpass; frozen and snowy rows are NaN with their bits;
    with the default errors the deviations have the documented std (4 K) and are keyed by column and time
    (a second call over a subset of columns gives the same values)."""
    from colmda.core import default_soil_thickness, soil_nodes
    from colmda.obs import operators
    from colmda.obs.sensors import default_specs
    from colmda.obs.simulate import TbSimulator

    dz = default_soil_thickness()
    nl, ncol, nsteps, dt = dz.size, 60, 48, 1800.0
    rng = np.random.default_rng(3)
    lat = rng.uniform(30, 40, ncol)
    lon = rng.uniform(100, 120, ncol)
    pft = rng.choice([0, 13, 15, 7], ncol)
    clay = rng.uniform(0.05, 0.5, ncol)
    start, end = np.datetime64('2005-06-01'), np.datetime64('2005-06-03')
    kw = dict(polarisation='h', pft=pft, clay=clay)
    exact = TbSimulator(default_specs()['L'], np.arange(ncol), lat, lon, dz, start, end, 1, nedt=0, repr_std=0, **kw)
    noisy = TbSimulator(default_specs()['L'], np.arange(ncol), lat, lon, dz, start, end, 1, **kw)
    theta = rng.uniform(0.05, 0.4, (nsteps, nl, ncol))
    ice = np.zeros_like(theta)
    ice[:, :2, :5] = 0.05                                   # columns 0-4 frozen
    t_soil = rng.uniform(285, 305, (nsteps, nl, ncol))
    swe = np.zeros((nsteps, ncol))
    swe[:, 5:8] = 20.0                                      # columns 5-7 snow covered
    lai = rng.uniform(0, 4, ncol)
    snaps = dict(theta=theta, theta_ice=ice, t_soil=t_soil, swe=swe, lai=lai, porosity=np.full((nl, ncol), 0.45))
    t0 = np.datetime64('2005-06-01T00:00', 's')
    tab = exact.sample(np.arange(ncol), t0, dt, nsteps, snaps)
    assert len(tab) > 10
    k = operators.step_index(tab.time, t0, dt, nsteps)
    c = tab.column
    w = operators.sensing_weights(dz, 0.05)
    liq = np.einsum('l,nl->n', w, (theta - ice)[k, :, c])
    te = np.einsum('l,nl->n', T.temperature_weights(soil_nodes(dz)), t_soil[k, :, c])
    ref = T.brightness_temperature(liq, te, lai[c], pft[c], clay[c])['tb_h']
    bad = (c < 8)
    np.testing.assert_allclose(tab.value[~bad], ref[~bad], rtol=1e-12)
    assert np.all(np.isnan(tab.value[bad]))
    assert np.all(tab.quality[c < 5] & 1) and np.all(tab.quality[(c >= 5) & (c < 8)] & 2)
    big = noisy.sample(np.arange(ncol), t0, dt, nsteps, snaps)
    d = big.value[~bad] - ref[~bad]
    assert abs(d.std() - 4.0) < 1.5 and abs(d.mean()) < 2.0
    half = np.arange(0, ncol, 2)
    sub = noisy.sample(half, t0, dt, nsteps, {**snaps, **{n: v[..., half] for n, v in snaps.items()}})
    m = np.isin(big.column, half)
    np.testing.assert_array_equal(sub.value, big.value[m])
