"""Physics branches that the broader balance tests cannot see (issue 16): each test pins one documented law that a
plausible slip (an off-by-one loop bound, swapped weights) would break while every water and energy balance still
closes. Expected values are computed here from the documented formulas, not read back from the code.

- melt compaction of a multi-layer snow pack melting at the top (CLM3 eq. 7.45 through the full column model);
- infiltration capacity of soil whose top layer is ice-rich (SIMTOP with the CLM4 ice impedance, top three layers);
- shortwave optics of a canopy whose stems and leaves differ: the LAI/SAI-weighted phytoelement optics fed to the
  two-stream solution (CLM 4.5 technical note, section 3.1).
"""

import numpy as np
import pytest

from colmda import _core
from colmda import layout as L
from colmda.constants import DENH2O, DENICE, TFRZ
from colmda.core import ColumnParameters, advance, default_soil_thickness, initial_state
from colmda.pft import vegpar
from colmda.soilparams import soil_parameters

DT = 1800.0  # s

# snow compaction constants of CLM3 (Oleson et al. 2004, eqs. 7.41-7.45; Anderson 1976), as documented in
# docs/physics-heat-snow.md: destructive metamorphism rate at the freezing point, its enhancement with liquid
# water, and the overburden viscosity coefficient
CMP_C3 = 2.777e-6  # s-1
CMP_C5 = 2.0  # -
CMP_ETA0 = 9.0e5  # kg s m-2


def _bare_column():
    sp = np.asfortranarray(soil_parameters(np.array([0.4]), np.array([0.2]))[:, :, :1])
    cp = np.zeros((L.NCP, 1), order="F")
    cp[L.CP_ZREF] = 30.0
    cp[L.CP_ALBSAT_VIS], cp[L.CP_ALBSAT_NIR], cp[L.CP_ALBDRY_VIS], cp[L.CP_ALBDRY_NIR] = 0.09, 0.18, 0.18, 0.36
    return ColumnParameters(sp, vegpar(np.array([0])), cp, default_soil_thickness())


def _three_layer_pack(params):
    """A dry 3-layer pack (top to bottom 1.8, 4, 10 cm; 250, 300, 350 kg m-3), its top at the melting point."""
    st = initial_state(params, temperature=272.5, saturation=0.4)
    dz = np.array([0.018, 0.04, 0.10])
    rho = np.array([250.0, 300.0, 350.0])
    st.dz_snow[2:5, 0] = dz
    st.wice_soisno[2:5, 0] = dz * rho
    st.wliq_soisno[2:5, 0] = 0.0
    st.t_soisno[2:5, 0] = [TFRZ, 272.5, 272.0]
    st.cstate[L.CS_SCV, 0] = (dz * rho).sum()
    st.cstate[L.CS_SNOWDP, 0] = dz.sum()
    return st


def _warm_sunny_step():
    f = np.zeros((L.NF, 1, 1), order="F")
    f[L.F_TAIR], f[L.F_QAIR], f[L.F_PSURF], f[L.F_WIND] = 285.0, 0.008, 1.0e5, 4.0
    f[L.F_SWDOWN], f[L.F_LWDOWN], f[L.F_COSZEN] = 900.0, 360.0, 0.8
    return f


def _assert_balances_close(d):
    assert abs(d.diag[L.D_WBAL_ERR, 0, 0]) < 1e-10  # kg m-2 s-1
    assert abs(d.diag[L.D_EBAL_ERR, 0, 0]) < 1e-8  # W m-2
    assert abs(d.diag[L.D_SOILH_ERR, 0, 0]) < 1e-8  # W m-2


def test_melting_top_layers_compact_by_their_ice_loss():
    """A 3-layer pack under warm sun (285 K air, 900 W m-2) melts in its top two layers within one step. CLM3's
    compaction law (1/dz) d dz/dt = c1 + c2 + c3 with the melt term c3 dt = -(f_old - f_new) / f_old (f = ice
    fraction of the layer's water before phase change and after the step) and c1, c2 <= 0 bounded by the
    metamorphism rate c3 c5 and the overburden burden / eta0 gives, for each melting layer,

        1 - m - (C3 C5 + burden / ETA0) dt  <=  dz_new / dz_old  <=  1 - m,    m = (f_old - f_new) / f_old.

    The top layer, where melt starts, must obey it as much as the second (an off-by-one that skips the top layer
    in the pre-phase-change ice fraction leaves the top layer uncompacted by melt). The pack's water stays equal to
    the sum of its layers, the step's water, surface energy and snow/soil heat balances close, and no layer is
    combined or divided in this step (so the comparison is layer by layer)."""
    params = _bare_column()
    st = _three_layer_pack(params)
    before = st.copy()
    d = advance(st, params, _warm_sunny_step(), DT, nper=1)
    _assert_balances_close(d)
    assert np.count_nonzero(st.dz_snow[:, 0]) == 3  # no combination or division
    wi0, wl0 = before.wice_soisno[2:5, 0], before.wliq_soisno[2:5, 0]
    wi1, wl1 = st.wice_soisno[2:5, 0], st.wliq_soisno[2:5, 0]
    f_old = wi0 / (wi0 + wl0)
    f_new = wi1 / (wi1 + wl1)
    melt = (f_old - f_new) / f_old
    assert melt[0] > 0.05 and melt[1] > 0.02, melt  # both upper layers melt (measured 0.13 and 0.08)
    ratio = st.dz_snow[2:5, 0] / before.dz_snow[2:5, 0]
    burden = np.concatenate([[0.0], np.cumsum(wi1 + wl1)[:-1]])  # kg m-2 of snow above each layer
    lower = 1.0 - melt - (CMP_C3 * CMP_C5 + burden / CMP_ETA0) * DT
    for j in (0, 1):
        assert lower[j] - 1e-12 <= ratio[j] <= 1.0 - melt[j] + 1e-12, (j, ratio, melt, lower)
    assert st.cstate[L.CS_SCV, 0] == pytest.approx((wi1 + wl1).sum(), rel=1e-12)
    assert st.cstate[L.CS_SNOWDP, 0] == pytest.approx(st.dz_snow[:, 0].sum(), rel=1e-12)


def test_refreezing_top_layer_gains_its_liquid_as_ice_without_melt_compaction():
    """The same pack wet (15 % of each layer's water liquid, all at the freezing point) on a cold clear night
    (255 K air, 180 W m-2 longwave): the top layer refreezes completely and cools below freezing, the balances
    close, and the refreezing layer compacts only by metamorphism and overburden (the melt term is zero when ice
    grows): 1 - (C3 C5 + burden / ETA0) dt <= dz_new / dz_old <= 1. Its ice grows by exactly its liquid water plus
    the frost deposited on it (the negative snow sublimation of the step)."""
    params = _bare_column()
    st = _three_layer_pack(params)
    w = st.wice_soisno[2:5, 0].copy()
    st.wliq_soisno[2:5, 0], st.wice_soisno[2:5, 0] = 0.15 * w, 0.85 * w
    st.t_soisno[2:5, 0] = TFRZ
    before = st.copy()
    f = np.zeros((L.NF, 1, 1), order="F")
    f[L.F_TAIR], f[L.F_QAIR], f[L.F_PSURF], f[L.F_WIND] = 255.0, 0.0008, 1.0e5, 4.0
    f[L.F_SWDOWN], f[L.F_LWDOWN], f[L.F_COSZEN] = 0.0, 180.0, -0.2
    d = advance(st, params, f, DT, nper=1)
    _assert_balances_close(d)
    assert np.count_nonzero(st.dz_snow[:, 0]) == 3
    assert st.wliq_soisno[2, 0] == 0.0 and st.t_soisno[2, 0] < TFRZ - 1.0  # top layer frozen through, cooled
    gained = st.wice_soisno[2, 0] - before.wice_soisno[2, 0]
    frost = -d.diag[L.D_SUBSNOW, 0, 0] * DT  # kg m-2 deposited on the top layer (negative sublimation)
    assert frost > 0.0
    assert gained == pytest.approx(before.wliq_soisno[2, 0] + frost, rel=1e-9)  # its liquid refroze in place
    burden = 0.0
    ratio = st.dz_snow[2, 0] / before.dz_snow[2, 0]
    assert 1.0 - (CMP_C3 * CMP_C5 + burden / CMP_ETA0) * DT - 1e-12 <= ratio <= 1.0


@pytest.mark.parametrize("hydr", [1, 2])
def test_ice_rich_top_layer_limits_infiltration_capacity(hydr):
    """Rain of 10 mm/h on a loam whose TOP layer alone is 2/3 frozen (ice volume / porosity = 0.667): SIMTOP's
    infiltration capacity is the smallest ice-impeded conductivity of the top three layers,
    q_inmax = min_j 10^(-6 F_j) K_sat,j with F_j = min(1, theta_ice,j / theta_s,j) (CLM4 ice impedance), here
    set by layer 1 (1e-4 K_sat); the first step's surface runoff is then exactly fsat G + (1 - fsat)
    max(0, G - q_inmax) with fsat = 0.38 exp(-0.25 zwt): nearly all rain runs off although layers 2 and 3 are
    unfrozen and could take it."""
    dz = default_soil_thickness()
    sp = np.asfortranarray(soil_parameters(np.array([0.4]), np.array([0.2]))[:, :, 0])
    por = sp[L.SP_THETA_S]
    wice = np.zeros(10)
    wice[0] = (2.0 / 3.0) * por[0] * dz[0] * DENICE
    wliq = 0.10 * dz * DENH2O
    t_soil = np.full(10, 285.0)
    t_soil[0] = 271.0
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    gw = np.array([0.0, zi[-1], 5000.0])
    rain = np.full(2, 10.0 / 3600.0)
    qs, qb, qi, qc, wh, gh, ierr = _core.soilwater_column_kernel(hydr, DT, dz, sp, t_soil, wice, rain, np.zeros(2),
                                                                np.zeros(2), np.full(10, 0.1), wliq.copy(), gw.copy())
    assert ierr == 0
    frac_ice = np.minimum(1.0, wice[:3] / (DENICE * dz[:3]) / por[:3])
    qinmax = (10.0 ** (-6.0 * frac_ice) * sp[L.SP_KSAT, :3]).min()
    assert qinmax == pytest.approx(1e-4 * sp[L.SP_KSAT, 0], rel=1e-12)
    fsat = 0.38 * np.exp(-0.25 * zi[-1])
    expected = fsat * rain[0] + (1.0 - fsat) * max(0.0, rain[0] - qinmax)
    assert qs[0] == pytest.approx(expected, rel=1e-12)
    assert qs[0] > 0.99 * rain[0]


# CLM's optical properties of stems (woody PFTs), visible and near-infrared: reflectance and transmittance
RHO_STEM = (0.16, 0.39)
TAU_STEM = (0.001, 0.001)


@pytest.mark.parametrize("lai, sai", [(3.0, 1.0), (0.6, 1.8)])
def test_canopy_optics_weight_leaves_by_lai_and_stems_by_sai(lai, sai):
    """A broadleaf canopy whose leaves (PFT optics) and stems (CLM woody stems: rho 0.16/0.39, tau 0.001 in the
    visible/NIR) differ: the canopy albedo and absorbed fraction of each band and each incidence equal the
    two-stream solution (validated against a numerical BVP in test_canopy.py) for the phytoelement optics
    rho = (LAI rho_leaf + SAI rho_stem) / (LAI + SAI) (same for tau) over LAI + SAI, above the ground albedo of the
    soil colour formula. Two canopies, one leaf-dominated and one stem-dominated, so swapped LAI/SAI weights in
    either band cannot pass."""
    pft, mu, theta1 = 7, 0.6, 0.25
    vp = vegpar([pft])[:, 0].copy()
    colpar = np.array([lai, sai, 30.0, 0.09, 0.18, 0.18, 0.36])
    out = _core.canopy_radiation_kernel(mu, 700.0, vp, lai, sai, colpar, theta1, 0.0, 0.0)
    assert out[28] == 1.0  # vegetated
    alb = out[16:20].reshape(2, 2, order="F")  # [band, incidence]
    fabv = out[24:28].reshape(2, 2, order="F")
    inc = max(0.11 - 0.40 * theta1, 0.0)
    albg = [0.09 + min(0.09, inc), 0.18 + min(0.18, inc)]
    wl, ws = lai / (lai + sai), sai / (lai + sai)
    leaf_rho = (vp[L.VP_RHO_VIS], vp[L.VP_RHO_NIR])
    leaf_tau = (vp[L.VP_TAU_VIS], vp[L.VP_TAU_NIR])
    assert abs(leaf_rho[0] - RHO_STEM[0]) > 0.05 and abs(leaf_tau[0] - TAU_STEM[0]) > 0.03
    for band in (0, 1):
        rho = wl * leaf_rho[band] + ws * RHO_STEM[band]
        tau = wl * leaf_tau[band] + ws * TAU_STEM[band]
        for idir in (1, 2):
            refl, absv, _, _, _ = _core.canopy_twostream_kernel(vp[L.VP_CHIL], rho, tau, mu, lai + sai,
                                                                albg[band], albg[band], idir)
            assert alb[band, idir - 1] == pytest.approx(refl, rel=1e-12), (band, idir)
            assert fabv[band, idir - 1] == pytest.approx(absv, rel=1e-12), (band, idir)
