"""Soil parameters for the core from texture: hydraulic and thermal pedotransfer functions.

Fractions (sand, clay, organic) are mass fractions in [0, 1]. The result is the ``soilpar`` array
(NSP, nl, ncol), Fortran order, with rows SP_* of :mod:`colmda.layout`. All layers of a column get the same
texture (the default domain carries one texture per cell); give per-layer arrays (nl, ncol) to vary it.

Campbell / Clapp-Hornberger (``hydr_model = 'campbell'``): Cosby et al. (1984) regressions on sand and clay
percentages, as CLM and CoLM2014 use them:
    theta_s = 0.489 - 0.00126 %sand
    psi_s   = -10 * 10**(1.88 - 0.0131 %sand)            (mm)
    b       = 2.91 + 0.159 %clay
    K_sat   = 0.0070556 * 10**(-0.884 + 0.0153 %sand)     (mm s-1)

van Genuchten-Mualem (``hydr_model = 'vangenuchten'``): the class means of Carsel and Parrish (1988) for the
12 USDA texture classes (theta_r, theta_s, alpha, n, K_sat), Mualem L = 0.5. The texture class follows the
USDA triangle (silt = 1 - sand - clay).

Thermal (CLM4.5 technical note, Oleson et al. 2013, ch. 6, after Farouki 1981 and Johansen 1975):
    c_s     = (2.128 %sand + 2.385 %clay) / (%sand + %clay) * 1e6     (J m-3 K-1 of solids)
    k_min   = (8.80 %sand + 2.92 %clay) / (%sand + %clay)             (W m-1 K-1, mineral solids)
    rho_d   = 2700 (1 - theta_s)                                      (kg m-3, dry bulk density)
    k_dry   = (0.135 rho_d + 64.7) / (2700 - 0.947 rho_d)
    k_sat,u = k_min**(1 - theta_s) * 0.6**theta_s ; k_sat,f = k_min**(1 - theta_s) * 2.29**theta_s

Organic matter (optional, Lawrence and Slater 2008): each property is mixed linearly between the mineral value
and the organic-soil value with the organic fraction (log-linearly for K_sat): theta_s 0.9, b 2.7,
psi_s -10.3 mm, K_sat 0.1 mm s-1, c_s 2.5e6 J m-3 K-1, k_dry 0.05 and k_min 0.25 W m-1 K-1.
"""

from __future__ import annotations

import numpy as np

from . import layout as L

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

ORGANIC = {"theta_s": 0.9, "bsw": 2.7, "psi_s": -10.3, "ksat": 0.1, "csol": 2.5e6, "tkdry": 0.05, "tkm": 0.25}


def usda_texture_class(sand, clay) -> np.ndarray:
    """Index into TEXTURE_CLASSES of the USDA texture class (fractions in [0, 1]; silt = 1 - sand - clay)."""
    sand = np.asarray(sand, dtype=float) * 100.0
    clay = np.asarray(clay, dtype=float) * 100.0
    silt = 100.0 - sand - clay
    rules = [  # first matching rule wins, in the order of the USDA triangle's definitions
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


def _layers(a, nl, ncol):
    a = np.asarray(a, dtype=float)
    return np.broadcast_to(a if a.ndim == 2 else a[None, :], (nl, ncol))


def soil_parameters(sand, clay, organic=None, nl: int = L.NL_SOIL, rootfr=None, dz=None) -> np.ndarray:
    """``soilpar`` (NSP, nl, ncol) from texture. ``sand``/``clay``/``organic`` are (ncol,) or (nl, ncol);
    ``rootfr`` (nl, ncol) is the root fraction per layer (default: proportional to ``dz``, or uniform)."""
    sand1 = np.atleast_1d(np.asarray(sand, dtype=float))
    ncol = sand1.shape[-1]
    sand = _layers(sand1, nl, ncol)
    clay = _layers(np.atleast_1d(clay), nl, ncol)
    om = _layers(np.zeros(ncol) if organic is None else np.atleast_1d(organic), nl, ncol)
    if np.any((sand < 0) | (clay < 0) | (sand + clay > 1) | (om < 0) | (om > 1)):
        raise ValueError("soil texture fractions must be in [0, 1] with sand + clay <= 1")
    psand, pclay = 100 * sand, 100 * clay
    mineral = np.maximum(psand + pclay, 1e-6)

    sp = np.zeros((L.NSP, nl, ncol), order="F")
    # Campbell (Cosby et al. 1984), mixed with organic soil
    theta_s_c = 0.489 - 0.00126 * psand
    sp[L.SP_THETA_S] = (1 - om) * theta_s_c + om * ORGANIC["theta_s"]
    sp[L.SP_PSI_S] = (1 - om) * (-10.0 * 10 ** (1.88 - 0.0131 * psand)) + om * ORGANIC["psi_s"]
    sp[L.SP_BSW] = (1 - om) * (2.91 + 0.159 * pclay) + om * ORGANIC["bsw"]
    ksat_c = 0.0070556 * 10 ** (-0.884 + 0.0153 * psand)
    sp[L.SP_KSAT] = np.exp((1 - om) * np.log(ksat_c) + om * np.log(ORGANIC["ksat"]))

    # van Genuchten-Mualem (Carsel & Parrish 1988 class means). They share theta_s and K_sat with the
    # Campbell set so that both models describe the same soil at saturation; theta_r, alpha and n are the
    # class values.
    cls = usda_texture_class(sand, clay)
    table = np.array(list(CARSEL_PARRISH.values()))
    sp[L.SP_THETA_R] = table[cls, 0]
    sp[L.SP_ALPHA_VG] = table[cls, 2] / 10.0  # cm-1 -> mm-1
    sp[L.SP_N_VG] = table[cls, 3]
    sp[L.SP_L_VG] = 0.5

    # thermal (CLM4.5), mixed with organic soil
    theta_s = sp[L.SP_THETA_S]
    csol = (2.128 * psand + 2.385 * pclay) / mineral * 1e6
    tkm = (8.80 * psand + 2.92 * pclay) / mineral
    bd = 2700.0 * (1 - theta_s_c)
    tkdry = (0.135 * bd + 64.7) / (2700.0 - 0.947 * bd)
    csol = (1 - om) * csol + om * ORGANIC["csol"]
    tkm = (1 - om) * tkm + om * ORGANIC["tkm"]
    sp[L.SP_CSOL] = csol
    sp[L.SP_TKDRY] = (1 - om) * tkdry + om * ORGANIC["tkdry"]
    sp[L.SP_TKSATU] = tkm ** (1 - theta_s) * 0.6 ** theta_s
    sp[L.SP_TKSATF] = tkm ** (1 - theta_s) * 2.29 ** theta_s

    if rootfr is None:
        w = np.ones(nl) if dz is None else np.asarray(dz, dtype=float)
        rootfr = np.broadcast_to((w / w.sum())[:, None], (nl, ncol))
    rootfr = np.asarray(rootfr, dtype=float)
    if rootfr.shape != (nl, ncol):
        raise ValueError(f"rootfr must have shape {(nl, ncol)}, got {rootfr.shape}")
    sp[L.SP_ROOTFR] = rootfr
    return sp


def soil_parameters_direct(ncol: int, nl: int = L.NL_SOIL, **values) -> np.ndarray:
    """``soilpar`` from values given directly by SP_* name without the prefix, e.g.
    ``soil_parameters_direct(2, theta_s=0.43, ksat=0.01, ...)``. Every parameter must be given; each value is a
    scalar, (ncol,) or (nl, ncol)."""
    names = [n[len("SP_"):].lower() for n, _, _ in L.SP_FIELDS]
    missing = [n for n in names if n not in values]
    unknown = [k for k in values if k not in names]
    if missing or unknown:
        raise ValueError(f"soil_parameters_direct: missing {missing}, unknown {unknown}; expected {names}")
    sp = np.zeros((L.NSP, nl, ncol), order="F")
    for n, _, _ in L.SP_FIELDS:
        v = np.asarray(values[n[len("SP_"):].lower()], dtype=float)
        sp[getattr(L, n)] = np.broadcast_to(v if v.ndim == 2 else v[None, ...] if v.ndim == 1 else v, (nl, ncol))
    return sp
