"""Pedotransfer functions of colmda.soilparams against numbers worked out by hand from the published formulas
(Cosby et al. 1984 as used by CLM/CoLM2014; Carsel and Parrish 1988; CLM4.5 thermal parameters after Farouki
1981 / Johansen 1975; Lawrence and Slater 2008 organic mixing). The hand calculations are written next to each
value so that a reader can redo them."""

import numpy as np
import pytest

from colmda import layout as L
from colmda.soilparams import (TEXTURE_CLASSES, soil_parameters, soil_parameters_direct, usda_texture_class,
                               van_genuchten_class)


def one(sand, clay, organic=None):
    sp = soil_parameters(np.array([sand]), np.array([clay]), None if organic is None else np.array([organic]), nl=3)
    assert sp.shape == (L.NSP, 3, 1) and sp.flags.f_contiguous
    assert np.all(sp[:, 0, 0] == sp[:, 2, 0])  # uniform texture: identical layers
    return sp[:, 0, 0]


def test_loam_40_sand_20_clay_by_hand():
    """40 % sand, 20 % clay (USDA loam). Cosby et al. (1984):
    theta_s = 0.489 - 0.00126 * 40 = 0.4386; psi_s = -10 * 10**(1.88 - 0.0131 * 40) = -10 * 10**1.356 = -226.986 mm;
    b = 2.91 + 0.159 * 20 = 6.09; K_sat = 0.0070556 * 10**(-0.884 + 0.0153 * 40) = 0.0070556 * 10**-0.272
    = 3.77167e-3 mm/s. Thermal: c_s = (2.128 * 40 + 2.385 * 20) / 60 * 1e6 = 2.21367e6 J/m3/K;
    k_min = (8.80 * 40 + 2.92 * 20) / 60 = 6.84; rho_d = 2700 * (1 - 0.4386) = 1515.78 kg/m3;
    k_dry = (0.135 * 1515.78 + 64.7) / (2700 - 0.947 * 1515.78) = 269.33 / 1264.56 = 0.212984;
    k_sat,u = 6.84**0.5614 * 0.6**0.4386 = 2.35233; k_sat,f = 6.84**0.5614 * 2.29**0.4386 = 4.23277.
    van Genuchten (Carsel & Parrish 1988, loam): theta_r 0.078, alpha 0.036 cm-1 = 0.0036 mm-1, n 1.56, L 0.5."""
    sp = one(0.40, 0.20)
    assert sp[L.SP_THETA_S] == pytest.approx(0.4386, rel=1e-12)
    assert sp[L.SP_PSI_S] == pytest.approx(-226.98648518838, rel=1e-10)
    assert sp[L.SP_BSW] == pytest.approx(6.09, rel=1e-12)
    assert sp[L.SP_KSAT] == pytest.approx(3.7716722941613e-3, rel=1e-10)
    assert sp[L.SP_CSOL] == pytest.approx(2.2136666666667e6, rel=1e-10)
    assert sp[L.SP_TKDRY] == pytest.approx(0.21298402568604, rel=1e-10)
    assert sp[L.SP_TKSATU] == pytest.approx(2.3523266776631, rel=1e-10)
    assert sp[L.SP_TKSATF] == pytest.approx(4.2327667604444, rel=1e-10)
    assert sp[L.SP_THETA_R] == pytest.approx(0.078)
    assert sp[L.SP_ALPHA_VG] == pytest.approx(0.0036)
    assert sp[L.SP_N_VG] == pytest.approx(1.56)
    assert sp[L.SP_L_VG] == pytest.approx(0.5)


def test_sand_92_sand_3_clay_by_hand():
    """92 % sand, 3 % clay (USDA sand: silt + 1.5 clay = 9.5 < 15). theta_s = 0.489 - 0.00126 * 92 = 0.37308;
    psi_s = -10 * 10**(1.88 - 1.2052) = -47.2933 mm; b = 2.91 + 0.477 = 3.387;
    K_sat = 0.0070556 * 10**(-0.884 + 1.4076) = 2.35578e-2 mm/s; Carsel & Parrish sand: theta_r 0.045,
    alpha 0.145 cm-1, n 2.68."""
    sp = one(0.92, 0.03)
    assert sp[L.SP_THETA_S] == pytest.approx(0.37308, rel=1e-12)
    assert sp[L.SP_PSI_S] == pytest.approx(-47.293341491865, rel=1e-10)
    assert sp[L.SP_BSW] == pytest.approx(3.387, rel=1e-12)
    assert sp[L.SP_KSAT] == pytest.approx(2.3557757752218e-2, rel=1e-10)
    assert sp[L.SP_THETA_R] == pytest.approx(0.045)
    assert sp[L.SP_ALPHA_VG] == pytest.approx(0.0145)
    assert sp[L.SP_N_VG] == pytest.approx(2.68)


def test_organic_mixing_lawrence_slater_by_hand():
    """Loam of the first test with organic fraction f = 0.75 (Lawrence & Slater 2008, CLM4.5):
    theta_s = 0.25 * 0.4386 + 0.75 * 0.9 = 0.78465; b = 0.25 * 6.09 + 0.75 * 2.7 = 3.5475;
    psi_s = 0.25 * (-226.986) + 0.75 * (-10.3) = -64.4716 mm. Percolation: N = 0.5**-0.139,
    f_perc = N (0.75 - 0.5)**0.139 * 0.75 = 0.75 * 0.5**0.139 = 0.681111; f_uncon = 0.318889;
    K_uncon = 0.318889 / (0.25 / 3.77167e-3 + (0.75 - 0.681111) / 0.1) = 4.7671e-3;
    K_sat = 0.318889 * 4.7671e-3 + 0.681111 * 0.1 = 6.96295e-2 mm/s. Thermal: c_s = 0.25 * 2.21367e6 + 0.75 * 2.5e6
    = 2.42842e6; k_dry = 0.25 * 0.212984 + 0.75 * 0.05 = 0.0907460; k_min = 0.25 * 6.84 + 0.75 * 0.25 = 1.8975,
    k_sat,u = 1.8975**0.21535 * 0.6**0.78465 = 0.768834."""
    sp = one(0.40, 0.20, 0.75)
    assert sp[L.SP_THETA_S] == pytest.approx(0.78465, rel=1e-12)
    assert sp[L.SP_BSW] == pytest.approx(3.5475, rel=1e-12)
    assert sp[L.SP_PSI_S] == pytest.approx(-64.471621297096, rel=1e-10)
    assert sp[L.SP_KSAT] == pytest.approx(6.9629516062670e-2, rel=1e-10)
    assert sp[L.SP_CSOL] == pytest.approx(2.4284166666667e6, rel=1e-10)
    assert sp[L.SP_TKDRY] == pytest.approx(0.090746006421509, rel=1e-10)
    assert sp[L.SP_TKSATU] == pytest.approx(0.76883443392429, rel=1e-10)
    # a purely organic layer takes the organic end member
    sp1 = one(0.40, 0.20, 1.0)
    assert sp1[L.SP_THETA_S] == pytest.approx(0.9) and sp1[L.SP_KSAT] == pytest.approx(0.1)


@pytest.mark.parametrize("sand,clay,name", [
    (0.92, 0.03, "sand"), (0.82, 0.06, "loamy sand"), (0.65, 0.10, "sandy loam"), (0.40, 0.20, "loam"),
    (0.05, 0.05, "silt"), (0.20, 0.15, "silt loam"), (0.60, 0.25, "sandy clay loam"), (0.30, 0.35, "clay loam"),
    (0.10, 0.35, "silty clay loam"), (0.50, 0.40, "sandy clay"), (0.05, 0.45, "silty clay"), (0.20, 0.60, "clay"),
])
def test_usda_texture_classes(sand, clay, name):
    """Points well inside each of the 12 regions of the USDA texture triangle get that class, and the
    van Genuchten parameters are that class's Carsel & Parrish means."""
    assert TEXTURE_CLASSES[int(usda_texture_class(sand, clay))] == name
    sp = one(sand, clay)
    vg = van_genuchten_class(name)
    assert sp[L.SP_ALPHA_VG] == pytest.approx(vg["alpha_vg"]) and sp[L.SP_N_VG] == pytest.approx(vg["n_vg"])


def test_vectorised_columns_layers_and_roots():
    """Columns and layers are independent: per-layer textures (nl, ncol) give per-layer parameters equal to those
    of uniform single-column calls; the root fractions go to SP_ROOTFR (default uniform, or by dz)."""
    sand = np.array([[0.4, 0.92], [0.2, 0.92], [0.4, 0.05]])
    clay = np.array([[0.2, 0.03], [0.6, 0.03], [0.2, 0.45]])
    rootfr = np.array([[0.5, 0.2], [0.3, 0.3], [0.2, 0.5]])
    sp = soil_parameters(sand, clay, nl=3, rootfr=rootfr)
    assert sp.shape == (L.NSP, 3, 2)
    for j in range(3):
        for c in range(2):
            ref = one(sand[j, c], clay[j, c])
            np.testing.assert_allclose(sp[:L.SP_ROOTFR, j, c], ref[:L.SP_ROOTFR], rtol=1e-14)
    np.testing.assert_array_equal(sp[L.SP_ROOTFR], rootfr)
    np.testing.assert_allclose(soil_parameters([0.4], [0.2], nl=4)[L.SP_ROOTFR, :, 0], 0.25)
    np.testing.assert_allclose(soil_parameters([0.4], [0.2], nl=2, dz=[0.1, 0.3])[L.SP_ROOTFR, :, 0], [0.25, 0.75])
    with pytest.raises(ValueError):
        soil_parameters([0.7], [0.5])


def test_direct_parameters():
    """soil_parameters_direct puts every named value in its SP_* row and refuses incomplete or unphysical sets."""
    vals = dict(theta_s=0.43, theta_r=0.078, ksat=2.9e-3, psi_s=-200.0, bsw=5.0, alpha_vg=0.0036, n_vg=1.56,
                l_vg=0.5, csol=2.2e6, tkdry=0.2, tksatu=2.3, tksatf=4.2, rootfr=[0.6, 0.4])
    sp = soil_parameters_direct(2, nl=3, **vals)
    assert sp.shape == (L.NSP, 3, 2)
    assert np.all(sp[L.SP_ALPHA_VG] == 0.0036) and np.all(sp[L.SP_ROOTFR][:, 1] == 0.4)
    with pytest.raises(ValueError):
        soil_parameters_direct(2, nl=3, **{k: v for k, v in vals.items() if k != "ksat"})
    with pytest.raises(ValueError):
        soil_parameters_direct(2, nl=3, **{**vals, "n_vg": 0.9})
