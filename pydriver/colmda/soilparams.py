"""Soil parameters for the core from texture: hydraulic and thermal pedotransfer functions.

Fractions (sand, clay, organic) are mass fractions in [0, 1]. The result is the ``soilpar`` array
(NSP, nl, ncol), Fortran order, with rows SP_* of :mod:`colmda.layout`. All layers of a column get the same
texture unless per-layer arrays (nl, ncol) are given.

Campbell / Clapp-Hornberger (``hydr_model = 'campbell'``): Cosby et al. (1984, WRR 20, 682-690, Table 4)
regressions on the sand and clay percentages, as CLM4 and CoLM2014 use them::

    theta_s = 0.489 - 0.00126 %sand
    psi_s   = -10 * 10**(1.88 - 0.0131 %sand)            (mm)
    b       = 2.91 + 0.159 %clay
    K_sat   = 0.0070556 * 10**(-0.884 + 0.0153 %sand)     (mm s-1)

van Genuchten-Mualem (``hydr_model = 'vangenuchten'``): theta_r, alpha and n are the class means of Carsel and
Parrish (1988, WRR 24, 755-769, Table 3) for the 12 USDA texture classes (the HYDRUS soil catalogue), with
Mualem's L = 0.5. The class follows the USDA texture triangle (silt = 1 - sand - clay). theta_s and K_sat are
shared with the Campbell set (one porosity and one saturated conductivity per layer for both models), so the
two models describe the same soil at saturation. ``hydr_model = 'vangenuchten'`` (= ``'vangenuchten_airentry'``)
applies CoLM202X's air-entry form with the air-entry potential SP_PSI_E (``psi_e``, default -1 mm);
``'vangenuchten_classic'`` the classic form (psi_e = 0) with the same parameters (colm_hydraulics,
docs/physics-soilwater.md). SP_PSI_S is only used by the Campbell model.

Thermal (CLM4.5 technical note, Oleson et al. 2013, sect. 6.3, after Farouki 1981 and Johansen 1975)::

    c_s     = (2.128 %sand + 2.385 %clay) / (%sand + %clay) * 1e6     (J m-3 K-1 of solids)
    k_min   = (8.80 %sand + 2.92 %clay) / (%sand + %clay)             (W m-1 K-1, mineral solids)
    rho_d   = 2700 (1 - theta_s)                                      (kg m-3, dry bulk density)
    k_dry   = (0.135 rho_d + 64.7) / (2700 - 0.947 rho_d)
    k_sat,u = k_s**(1 - theta_s) * 0.6**theta_s ;  k_sat,f = k_s**(1 - theta_s) * 2.29**theta_s

with the liquid water and ice conductivities of colm_const (tkwat 0.6, tkice 2.29 W m-1 K-1).

Organic matter (optional; Lawrence and Slater 2008, Clim. Dyn. 30, 145-160, as in CLM4.5 sect. 7.4.1): with the
organic fraction f of the soil volume, theta_s, b, psi_s, c_s, k_dry and the solid conductivity are mixed
linearly between the mineral value and the organic-soil value (theta_s 0.9, b 2.7, psi_s -10.3 mm,
c_s 2.5e6 J m-3 K-1, k_dry 0.05 and k_s 0.25 W m-1 K-1). K_sat follows their percolation model:
f_perc = N (f - 0.5)**0.139 f for f >= 0.5 (0 below), N = 0.5**-0.139, f_uncon = 1 - f_perc,
K_uncon = f_uncon / ((1 - f) / K_min + (f - f_perc) / K_om), K_sat = f_uncon K_uncon + f_perc K_om, K_om = 0.1 mm s-1.
The van Genuchten shape parameters are not mixed (Carsel and Parrish give no organic class).
"""

from __future__ import annotations

import numpy as np

from . import layout as L
from .layout import (NSP, SP_ALPHA_VG, SP_BSW, SP_CSOL, SP_KSAT, SP_L_VG, SP_N_VG, SP_PSI_E, SP_PSI_S,
                     SP_ROOTFR, SP_THETA_R, SP_THETA_S, SP_TKDRY, SP_TKSATF, SP_TKSATU)

PSI_E_DEFAULT = -1.0  # air-entry potential of the vG air-entry form, CoLM202X (mm)

# Carsel & Parrish (1988), Table 3: theta_r, theta_s, alpha (cm-1), n, K_sat (cm day-1)
CARSEL_PARRISH = {
    "sand": (0.045, 0.43, 0.145, 2.68, 712.8),
    "loamy sand": (0.057, 0.41, 0.124, 2.28, 350.2),
    "sandy loam": (0.065, 0.41, 0.075, 1.89, 106.1),
    "loam": (0.078, 0.43, 0.036, 1.56, 24.96),
    "silt": (0.034, 0.46, 0.016, 1.37, 6.0),
    "silt loam": (0.067, 0.45, 0.020, 1.41, 10.8),
    "sandy clay loam": (0.100, 0.39, 0.059, 1.48, 31.44),
    "clay loam": (0.095, 0.41, 0.019, 1.31, 6.24),
    "silty clay loam": (0.089, 0.43, 0.010, 1.23, 1.68),
    "sandy clay": (0.100, 0.38, 0.027, 1.23, 2.88),
    "silty clay": (0.070, 0.36, 0.005, 1.09, 0.48),
    "clay": (0.068, 0.38, 0.008, 1.09, 4.8),
}
TEXTURE_CLASSES = tuple(CARSEL_PARRISH)
L_MUALEM = 0.5  # Mualem pore-connectivity parameter (-)

# organic soil end member (Lawrence & Slater 2008; CLM4.5)
ORGANIC = {"theta_s": 0.9, "bsw": 2.7, "psi_s": -10.3, "ksat": 0.1, "csol": 2.5e6, "tkdry": 0.05, "tkm": 0.25}
F_PERC_THRESHOLD = 0.5  # organic fraction above which organic pores percolate (-)
BETA_PERC = 0.139  # percolation exponent (-)

TKWAT = 0.6  # thermal conductivity of liquid water, colm_const tkwat (W m-1 K-1)
TKICE = 2.29  # thermal conductivity of ice, colm_const tkice (W m-1 K-1)


def usda_texture_class(sand, clay) -> np.ndarray:
    """Index into TEXTURE_CLASSES of the USDA texture class (fractions in [0, 1]; silt = 1 - sand - clay)."""
    sand = np.asarray(sand, dtype=float) * 100.0
    clay = np.asarray(clay, dtype=float) * 100.0
    silt = 100.0 - sand - clay
    rules = [  # first matching rule wins; the 12 regions of the USDA triangle
        ("sand", silt + 1.5 * clay < 15),
        ("loamy sand", (silt + 1.5 * clay >= 15) & (silt + 2 * clay < 30)),
        ("clay", (clay >= 40) & (sand <= 45) & (silt < 40)),
        ("silty clay", (clay >= 40) & (silt >= 40)),
        ("sandy clay", (clay >= 35) & (sand > 45)),
        ("silty clay loam", (clay >= 27) & (clay < 40) & (sand <= 20)),
        ("clay loam", (clay >= 27) & (clay < 40) & (sand > 20) & (sand <= 45)),
        ("sandy clay loam", (clay >= 20) & (clay < 35) & (silt < 28) & (sand > 45)),
        ("silt", (silt >= 80) & (clay < 12)),
        ("silt loam", ((silt >= 50) & (clay >= 12) & (clay < 27)) | ((silt >= 50) & (silt < 80) & (clay < 12))),
        ("loam", (clay >= 7) & (clay < 27) & (silt >= 28) & (silt < 50) & (sand <= 52)),
        ("sandy loam", np.ones_like(sand, dtype=bool)),
    ]
    out = np.full(sand.shape, -1, dtype=int)
    for name, cond in rules:
        out = np.where((out < 0) & cond, TEXTURE_CLASSES.index(name), out)
    return out


def cosby_campbell(sand, clay):
    """Cosby et al. (1984) Campbell parameters: theta_s (-), psi_s (mm), b (-), K_sat (mm s-1)."""
    psand = 100.0 * np.asarray(sand, dtype=float)
    pclay = 100.0 * np.asarray(clay, dtype=float)
    theta_s = 0.489 - 0.00126 * psand
    psi_s = -10.0 * 10.0 ** (1.88 - 0.0131 * psand)
    bsw = 2.91 + 0.159 * pclay
    ksat = 0.0070556 * 10.0 ** (-0.884 + 0.0153 * psand)
    return theta_s, psi_s, bsw, ksat


def organic_ksat(ksat_min, f_om):
    """K_sat (mm s-1) of a mineral-organic mixture (Lawrence & Slater 2008 percolation model, CLM4.5)."""
    f = np.asarray(f_om, dtype=float)
    n_perc = (1.0 - F_PERC_THRESHOLD) ** (-BETA_PERC)
    f_perc = np.where(f >= F_PERC_THRESHOLD,
                      n_perc * np.maximum(f - F_PERC_THRESHOLD, 0.0) ** BETA_PERC * f, 0.0)
    f_uncon = 1.0 - f_perc
    k_om = ORGANIC["ksat"]
    with np.errstate(divide="ignore", invalid="ignore"):
        k_uncon = np.where(f_uncon > 0, f_uncon / ((1.0 - f) / ksat_min + (f - f_perc) / k_om), 0.0)
    return f_uncon * k_uncon + f_perc * k_om


def thermal_parameters(sand, clay, theta_s_mineral, theta_s, f_om=0.0):
    """c_s (J m-3 K-1), k_dry, k_sat unfrozen, k_sat frozen (W m-1 K-1) of the soil (CLM4.5 / CoLM2014)."""
    psand = 100.0 * np.asarray(sand, dtype=float)
    pclay = 100.0 * np.asarray(clay, dtype=float)
    mineral = np.maximum(psand + pclay, 1e-6)  # a pure-silt soil falls back on the limits of both formulas
    csol = (2.128 * psand + 2.385 * pclay) / mineral * 1e6
    tkm = (8.80 * psand + 2.92 * pclay) / mineral
    rho_d = 2700.0 * (1.0 - theta_s_mineral)
    tkdry = (0.135 * rho_d + 64.7) / (2700.0 - 0.947 * rho_d)
    csol = (1 - f_om) * csol + f_om * ORGANIC["csol"]
    tkm = (1 - f_om) * tkm + f_om * ORGANIC["tkm"]
    tkdry = (1 - f_om) * tkdry + f_om * ORGANIC["tkdry"]
    tksatu = tkm ** (1 - theta_s) * TKWAT ** theta_s
    tksatf = tkm ** (1 - theta_s) * TKICE ** theta_s
    return csol, tkdry, tksatu, tksatf


def _layers(a, nl, ncol):
    a = np.asarray(a, dtype=float)
    return np.broadcast_to(a if a.ndim == 2 else a[None, :], (nl, ncol))


def _root_fractions(rootfr, nl, ncol, dz):
    if rootfr is None:
        w = np.ones(nl) if dz is None else np.asarray(dz, dtype=float)
        return np.broadcast_to((w / w.sum())[:, None], (nl, ncol))
    rootfr = np.asarray(rootfr, dtype=float)
    if rootfr.ndim == 1 and rootfr.shape == (nl,):
        rootfr = np.broadcast_to(rootfr[:, None], (nl, ncol))
    if rootfr.shape != (nl, ncol):
        raise ValueError(f"rootfr must have shape {(nl, ncol)}, got {rootfr.shape}")
    return rootfr


def soil_parameters(sand, clay, organic=None, nl: int = L.NL_SOIL, rootfr=None, dz=None,
                    psi_e: float = PSI_E_DEFAULT) -> np.ndarray:
    """``soilpar`` (NSP, nl, ncol) from texture.

    ``sand``, ``clay`` and ``organic`` (organic fraction of the soil volume) are (ncol,) or (nl, ncol) fractions;
    ``rootfr`` (nl, ncol) or (nl,) is the root fraction per layer (default: proportional to ``dz`` when given,
    else uniform); ``psi_e`` (mm, < 0) the air-entry potential of the vG air-entry form. Parameters of all
    hydraulic models are filled, so any can be run with the result."""
    if not psi_e < 0:
        raise ValueError(f"psi_e = {psi_e} mm: the air-entry potential must be < 0")
    sand1 = np.atleast_1d(np.asarray(sand, dtype=float))
    ncol = sand1.shape[-1]
    sand = _layers(sand1, nl, ncol)
    clay = _layers(np.atleast_1d(clay), nl, ncol)
    om = _layers(np.zeros(ncol) if organic is None else np.atleast_1d(organic), nl, ncol)
    if np.any((sand < 0) | (clay < 0) | (sand + clay > 1) | (om < 0) | (om > 1)):
        raise ValueError("soil texture fractions must be in [0, 1] with sand + clay <= 1")

    sp = np.zeros((NSP, nl, ncol), order="F")
    theta_s_min, psi_s_min, bsw_min, ksat_min = cosby_campbell(sand, clay)
    sp[SP_THETA_S] = (1 - om) * theta_s_min + om * ORGANIC["theta_s"]
    sp[SP_PSI_S] = (1 - om) * psi_s_min + om * ORGANIC["psi_s"]
    sp[SP_BSW] = (1 - om) * bsw_min + om * ORGANIC["bsw"]
    sp[SP_KSAT] = organic_ksat(ksat_min, om)

    cls = usda_texture_class(sand, clay)
    table = np.array(list(CARSEL_PARRISH.values()))
    sp[SP_THETA_R] = np.minimum(table[cls, 0], 0.5 * sp[SP_THETA_S])
    sp[SP_ALPHA_VG] = table[cls, 2] / 10.0  # cm-1 -> mm-1
    sp[SP_N_VG] = table[cls, 3]
    sp[SP_L_VG] = L_MUALEM
    sp[SP_PSI_E] = psi_e

    sp[SP_CSOL], sp[SP_TKDRY], sp[SP_TKSATU], sp[SP_TKSATF] = thermal_parameters(
        sand, clay, theta_s_min, sp[SP_THETA_S], om)
    sp[SP_ROOTFR] = _root_fractions(rootfr, nl, ncol, dz)
    return sp


def soil_parameters_direct(ncol: int, nl: int = L.NL_SOIL, **values) -> np.ndarray:
    """``soilpar`` from values given directly by SP_* name without the prefix, lower case, e.g.
    ``soil_parameters_direct(2, theta_s=0.43, theta_r=0.078, ksat=2.9e-3, ...)``. Every parameter must be given;
    each value is a scalar, (ncol,) or (nl, ncol); ``psi_e`` may be left out (-1 mm)."""
    names = [n[len("SP_"):].lower() for n, _, _ in L.SP_FIELDS]
    values = {"psi_e": PSI_E_DEFAULT, **values}
    missing = [n for n in names if n not in values]
    unknown = [k for k in values if k not in names]
    if missing or unknown:
        raise ValueError(f"soil_parameters_direct: missing {missing}, unknown {unknown}; expected {names}")
    sp = np.zeros((NSP, nl, ncol), order="F")
    for name, value in values.items():
        v = np.asarray(value, dtype=float)
        if v.ndim == 1:
            v = v[None, :]
        sp[getattr(L, "SP_" + name.upper())] = np.broadcast_to(v, (nl, ncol))
    check_hydraulic_parameters(sp, "all", where="soil_parameters_direct")
    return sp


def check_hydraulic_parameters(sp, model: str = "all", where: str = "soil parameters") -> None:
    """Raise a one-line ValueError naming the first hydraulic parameter of ``sp`` (NSP, ...) outside its valid
    range for ``model`` ('campbell', 'vangenuchten_airentry', 'vangenuchten_classic', 'gardner' or 'all')."""
    vg = model in ("all", "vangenuchten", "vangenuchten_airentry", "vangenuchten_classic")
    rules = [("theta_s", SP_THETA_S, lambda v: (v > 0) & (v <= 1), "in (0, 1]"),
             ("theta_r", SP_THETA_R, lambda v: (v >= 0) & (v < sp[SP_THETA_S]), ">= 0 and < theta_s"),
             ("ksat", SP_KSAT, lambda v: v > 0, "> 0 mm s-1")]
    if model in ("all", "campbell"):
        rules += [("psi_s", SP_PSI_S, lambda v: v < 0, "< 0 mm"), ("bsw", SP_BSW, lambda v: v > 0, "> 0")]
    if vg or model == "gardner":
        rules += [("alpha", SP_ALPHA_VG, lambda v: v > 0, "> 0 mm-1")]
    if vg:
        rules += [("n", SP_N_VG, lambda v: v > 1, "> 1"), ("l", SP_L_VG, np.isfinite, "finite")]
    if model in ("all", "vangenuchten", "vangenuchten_airentry"):
        rules += [("psi_e", SP_PSI_E, lambda v: v < 0, "< 0 mm")]
    for name, row, ok, expected in rules:
        v = np.asarray(sp[row], dtype=float)
        bad = ~(np.isfinite(v) & ok(v))
        if np.any(bad):
            raise ValueError(f"{where}: {name} = {v[bad].flat[0]:g} is outside its valid range; expected {expected}")


def van_genuchten_class(name: str) -> dict:
    """Carsel & Parrish (1988) parameters of a USDA class in core units: theta_r, theta_s (-), alpha (mm-1),
    n (-), ksat (mm s-1), l_vg (-)."""
    tr, ts, a, n, ks = CARSEL_PARRISH[name]
    return {"theta_r": tr, "theta_s": ts, "alpha_vg": a / 10.0, "n_vg": n, "ksat": ks * 10.0 / 86400.0,
            "l_vg": L_MUALEM}
