"""Zero-order tau-omega L-band brightness temperature operator (SMAP Level-4 style), with its analytic Jacobian.

Pure, vectorised functions over arrays of any (broadcastable) shape, e.g. (members, columns). For one
polarisation p (q the other one), incidence angle theta_i (SMAP: 40 deg), gamma = exp(-tau / cos theta_i)::

    Tb_p = T_eff e_p gamma + T_c (1 - omega)(1 - gamma)(1 + r_p gamma),         e_p = 1 - r_p
    r_p  = [(1 - Q) R_p + Q R_q] exp(-h cos^N theta_i)                        (Wang and Choudhury 1981)
    R_p  = |Fresnel_p(eps(theta_s))|^2                                        (smooth-surface reflectivity)

* Dielectric constant eps of the surface soil from its liquid volumetric water content theta_s (m3 m-3):
  Mironov et al. (2009, IEEE TGRS 47, 2059-2070) generalised refractive mixing dielectric model, the SMAP
  baseline, with clay as its only soil input (default), or Dobson et al. (1985, IEEE TGRS 23, 35-46)
  semi-empirical mixing model (``dielectric='dobson'``; needs sand, clay and the bulk density; free-water Debye
  relaxation after Ulaby et al. 1986 at the soil temperature; the effective conductivity for 1.4-18 GHz).
  eps = eps' + i eps'' (loss positive); the reflectivities do not depend on the sign convention.
* Roughness h: constant, or a function of theta_s as in SMAP L4 (De Lannoy et al. 2013, J. Hydrometeor. 14,
  765-785, after Wigneron et al. 2001): h = h_max for theta_s <= w_min, h_min for theta_s >= w_max, linear in
  between (rougher-looking dry soil). Q polarisation mixing and the exponent N (default 2) as in the SMAP ATBD.
* Vegetation: tau = b VWC with VWC = VWC_PER_LAI * LAI + vwc_stem (kg m-2) and b, omega, vwc_stem per PFT
  (:data:`colmda.pft.MICROWAVE`, sources there).
* Effective soil temperature T_eff (Choudhury et al. 1982, JGR 87, 1301-1304): T_eff = T_deep + C (T_surf -
  T_deep), C = 0.246 at L band, T_surf the model's soil temperature at 2.5 cm and T_deep at 50 cm (linear
  interpolation between layer nodes, :func:`temperature_weights`). The canopy temperature T_c defaults to T_eff
  (SMAP's near-6-AM isothermal assumption).
* Not modelled: atmosphere and sky emission (below 3 K at L band), frozen soil and snow. Frozen soil or snow
  are FLAGGED (:func:`qc_flags`), never simulated: the caller drops those rows (the retrieval simulator sets the
  value NaN and the FROZEN/SNOW bits, as for soil moisture retrievals).

Jacobian: ``dTb_p/dtheta_s`` is exact (chain rule through eps, the complex Fresnel coefficients, the mixing and
h(theta_s)); tests/test_tau_omega.py checks it against centred finite differences.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UserError

__all__ = ['TauOmegaParams', 'mironov', 'dobson', 'fresnel', 'roughness_h', 'vegetation', 'temperature_weights',
           'effective_temperature', 'brightness_temperature', 'qc_flags', 'check_tb', 'SMAP_INCIDENCE_DEG',
           'L_BAND_HZ', 'TB_RANGE']

SMAP_INCIDENCE_DEG = 40.0   # deg, SMAP conical scan
L_BAND_HZ = 1.41e9          # Hz, SMAP/SMOS protected band centre
EPS0 = 8.854187817e-12      # F m-1, vacuum permittivity
TB_RANGE = (0.0, 350.0)     # K, physically possible L-band Tb of land
CHOUDHURY_C = 0.246         # L band (21 cm), Choudhury et al. 1982
T_FREEZE = 273.15
CHUNK = 8192                # values per internal block of the operator


@dataclasses.dataclass(frozen=True)
class TauOmegaParams:
    """Operator settings (units in comments). Defaults: SMAP-like (40 deg, Mironov, Q = 0, N = 2)."""

    incidence_deg: float = SMAP_INCIDENCE_DEG  # deg
    frequency_hz: float = L_BAND_HZ            # Hz
    dielectric: str = 'mironov'                # 'mironov' or 'dobson'
    h: float = 0.13                            # -, constant roughness (used when h_min is None)
    h_min: float | None = None                 # -, SM-dependent roughness (De Lannoy et al. 2013) when given
    h_max: float = 0.6                         # -
    w_min: float = 0.05                        # m3 m-3, below: h = h_max
    w_max: float = 0.35                        # m3 m-3, above: h = h_min
    q: float = 0.0                             # -, polarisation mixing
    n_h: float = 2.0                           # -, exponent of cos(theta_i) in the roughness term, H
    n_v: float = 2.0                           # -, same, V
    bulk_density: float = 1.3                  # g cm-3 (Dobson only)

    def __post_init__(self):
        if self.dielectric not in ('mironov', 'dobson'):
            raise UserError(f"tau_omega: dielectric = {self.dielectric!r}, expected 'mironov' or 'dobson'")
        if not 0.0 <= self.incidence_deg < 90.0:
            raise UserError(f"tau_omega: incidence_deg = {self.incidence_deg}, expected in [0, 90)")
        if not 0.0 <= self.q <= 1.0:
            raise UserError(f"tau_omega: q = {self.q}, expected in [0, 1]")
        if self.h_min is not None and not (self.w_max > self.w_min and self.h_max >= self.h_min >= 0.0):
            raise UserError("tau_omega: SM-dependent roughness needs w_max > w_min and h_max >= h_min >= 0")


# ---------------------------------------------------------------- dielectric models
def _debye_nk(eps_static, tau_s, sigma, f):
    """Refractive index n and extinction k of a Debye medium with conductivity (Mironov et al. 2009 eq. 6-8)."""
    wt = 2.0 * np.pi * f * tau_s
    de = eps_static - 4.9
    e1 = 4.9 + de / (1.0 + wt ** 2)
    e2 = de * wt / (1.0 + wt ** 2) + sigma / (2.0 * np.pi * EPS0 * f)
    mod = np.hypot(e1, e2)
    return np.sqrt((mod + e1) / 2.0), np.sqrt((mod - e1) / 2.0)


def mironov_coefficients(clay, f=L_BAND_HZ):
    """Mironov et al. (2009) spectroscopic parameters for clay mass fraction ``clay`` (0-1): dict of arrays
    nd, kd (dry soil), mvt (maximum bound water, m3 m-3), nb, kb (bound water), nu, ku (free water)."""
    c = 100.0 * np.asarray(clay, dtype=np.float64)   # the regressions are in percent
    nb, kb = _debye_nk(79.8 - 85.4e-2 * c + 32.7e-4 * c ** 2, 1.062e-11 + 3.450e-12 * 1e-2 * c,
                       0.3112 + 0.467e-2 * c, f)
    nu, ku = _debye_nk(100.0, 8.5e-12, 0.3631 + 1.217e-2 * c, f)
    return dict(nd=1.634 - 0.539e-2 * c + 0.2748e-4 * c ** 2, kd=0.03952 - 0.04038e-2 * c,
                mvt=0.02863 + 0.30673e-2 * c, nb=nb, kb=kb, nu=nu, ku=ku)


def _mironov_parts(theta, c):
    """Real and imaginary parts of eps and of deps/dtheta (see :func:`mironov`), real arithmetic only."""
    th = np.asarray(theta, dtype=np.float64)
    mb = np.minimum(th, c['mvt'])
    mu = th - mb
    n = c['nd'] + (c['nb'] - 1.0) * mb + (c['nu'] - 1.0) * mu
    k = c['kd'] + c['kb'] * mb + c['ku'] * mu
    free = th > c['mvt']
    dn = (c['nb'] - 1.0) + (c['nu'] - c['nb']) * free
    dk = c['kb'] + (c['ku'] - c['kb']) * free
    return n * n - k * k, 2.0 * n * k, 2.0 * (n * dn - k * dk), 2.0 * (dn * k + n * dk)


def mironov(theta, clay, f=L_BAND_HZ, coef=None):
    """(eps, deps/dtheta) complex, Mironov et al. (2009): refractive mixing n = nd + (nb - 1) min(theta, mvt) +
    (nu - 1) max(theta - mvt, 0), k likewise with kd, kb, ku; eps = (n + i k)^2."""
    e1, e2, d1, d2 = _mironov_parts(theta, mironov_coefficients(clay, f) if coef is None else coef)
    return e1 + 1j * e2, d1 + 1j * d2


def dobson(theta, sand, clay, t_soil, f=L_BAND_HZ, bulk_density=1.3):
    """(eps, deps/dtheta) complex, Dobson et al. (1985) with the free-water Debye model of Ulaby et al. (1986)
    at ``t_soil`` (K) and the 1.4-18 GHz effective conductivity; particle density 2.66 g cm-3."""
    S = np.asarray(sand, dtype=np.float64)
    C = np.asarray(clay, dtype=np.float64)
    th = np.maximum(np.asarray(theta, dtype=np.float64), 1e-6)
    T = np.asarray(t_soil, dtype=np.float64) - T_FREEZE
    rb, rs, alpha = bulk_density, 2.66, 0.65
    eps_s = (1.01 + 0.44 * rs) ** 2 - 0.062
    ew0 = 88.045 - 0.4147 * T + 6.295e-4 * T ** 2 + 1.075e-5 * T ** 3
    wt = f * (1.1109e-10 - 3.824e-12 * T + 6.938e-14 * T ** 2 - 5.096e-16 * T ** 3)  # 2 pi f tau_w
    sig = -1.645 + 1.939 * rb - 2.25622 * S + 1.594 * C
    e1w = 4.9 + (ew0 - 4.9) / (1.0 + wt ** 2)
    a2 = wt * (ew0 - 4.9) / (1.0 + wt ** 2)
    b2 = sig / (2.0 * np.pi * EPS0 * f) * (rs - rb) / rs       # e''_fw = a2 + b2 / theta
    bp = 1.2748 - 0.519 * S - 0.152 * C
    bpp = 1.33797 - 0.603 * S - 0.166 * C
    X = 1.0 + rb / rs * (eps_s ** alpha - 1.0) + th ** bp * e1w ** alpha - th
    e1 = X ** (1.0 / alpha)
    de1 = (1.0 / alpha) * X ** (1.0 / alpha - 1.0) * (bp * th ** (bp - 1.0) * e1w ** alpha - 1.0)
    w2 = a2 + b2 / th
    g = th ** bpp * w2 ** alpha
    dg = bpp * th ** (bpp - 1.0) * w2 ** alpha - th ** bpp * alpha * w2 ** (alpha - 1.0) * b2 / th ** 2
    e2 = g ** (1.0 / alpha)
    de2 = (1.0 / alpha) * g ** (1.0 / alpha - 1.0) * dg
    return e1 + 1j * e2, de1 + 1j * de2


# ---------------------------------------------------------------- surface
def fresnel(eps, incidence_deg=SMAP_INCIDENCE_DEG, deps=None):
    """Smooth-surface reflectivities (R_H, R_V) of a half-space of relative permittivity ``eps`` (complex) seen
    from air at ``incidence_deg``; with ``deps`` (deps/dx) also (dR_H/dx, dR_V/dx)."""
    eps = np.asarray(eps, dtype=np.complex128)
    if deps is None:
        return _fresnel_parts(eps.real, eps.imag, None, None, incidence_deg)
    deps = np.asarray(deps, dtype=np.complex128)
    return _fresnel_parts(eps.real, eps.imag, deps.real, deps.imag, incidence_deg)


def _fresnel_parts(e1, e2, d1, d2, incidence_deg):
    """:func:`fresnel` in real arithmetic (about 5x faster than complex numpy on large arrays):
    s = sqrt(eps - sin^2) = sr + i si, R_H = |c - s|^2 / |c + s|^2, R_V = |eps c - s|^2 / |eps c + s|^2."""
    th = np.deg2rad(incidence_deg)
    c, s2 = np.cos(th), np.sin(th) ** 2
    a = e1 - s2
    r = np.hypot(a, e2)
    sr = np.sqrt(0.5 * (r + a))
    si = np.copysign(np.sqrt(np.maximum(0.5 * (r - a), 0.0)), e2)
    si2 = si * si
    nh, dh = (c - sr) ** 2 + si2, (c + sr) ** 2 + si2
    A, B = e1 * c - sr, e2 * c - si
    P, Q = e1 * c + sr, e2 * c + si
    nv, dv = A * A + B * B, P * P + Q * Q
    RH, RV = nh / dh, nv / dv
    if d1 is None:
        return RH, RV
    # ds/dx = (deps/dx) / (2 s) = deps conj(s) / (2 |s|^2)
    m = 0.5 / (sr * sr + si2)
    dsr = (d1 * sr + d2 * si) * m
    dsi = (d2 * sr - d1 * si) * m
    dnh = -2.0 * (c - sr) * dsr + 2.0 * si * dsi
    ddh = 2.0 * (c + sr) * dsr + 2.0 * si * dsi
    dnv = 2.0 * A * (c * d1 - dsr) + 2.0 * B * (c * d2 - dsi)
    ddv = 2.0 * P * (c * d1 + dsr) + 2.0 * Q * (c * d2 + dsi)
    return RH, RV, (dnh - RH * ddh) / dh, (dnv - RV * ddv) / dv


def roughness_h(theta, p: TauOmegaParams):
    """(h, dh/dtheta): constant ``p.h``, or the SMAP L4 linear ramp from h_max (dry) to h_min (wet)."""
    th = np.asarray(theta, dtype=np.float64)
    if p.h_min is None:
        return np.full(th.shape, p.h), np.zeros(th.shape)
    x = (p.w_max - th) / (p.w_max - p.w_min)
    inside = (x > 0.0) & (x < 1.0)
    h = p.h_min + (p.h_max - p.h_min) * np.clip(x, 0.0, 1.0)
    return h, np.where(inside, -(p.h_max - p.h_min) / (p.w_max - p.w_min), 0.0)


# ---------------------------------------------------------------- vegetation and temperature
def vegetation(lai, pft):
    """(tau, omega) at nadir from LAI (m2 m-2) and PFT index (colmda.pft order): tau = b (0.5 LAI + vwc_stem)."""
    from ..pft import MICROWAVE, NPFT, VWC_PER_LAI

    lai = np.asarray(lai, dtype=np.float64)
    idx = np.asarray(pft)
    if lai.size and not np.all(np.isfinite(lai)):
        raise UserError("tau_omega: LAI missing (NaN) for some columns; the operator needs the leaf area index")
    if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= NPFT):
        raise UserError(f"tau_omega: pft must be integer PFT indices in 0..{NPFT - 1}")
    b, omega, stem = MICROWAVE[idx, 0], MICROWAVE[idx, 1], MICROWAVE[idx, 2]
    return b * (VWC_PER_LAI * np.maximum(lai, 0.0) + stem), omega


def temperature_weights(z_node, z_surf=0.025, z_deep=0.5, c=CHOUDHURY_C):
    """Weights w (nl,) with T_eff = sum_l w_l T_l: Choudhury T_eff = T_deep + c (T_surf - T_deep), T at z_surf
    and z_deep (m) linearly interpolated between the layer node depths ``z_node`` (m, increasing)."""
    z = np.asarray(z_node, dtype=np.float64)

    def interp(d):
        w = np.zeros(z.size)
        if d <= z[0]:
            w[0] = 1.0
        elif d >= z[-1]:
            w[-1] = 1.0
        else:
            j = int(np.searchsorted(z, d)) - 1
            f = (d - z[j]) / (z[j + 1] - z[j])
            w[j], w[j + 1] = 1.0 - f, f
        return w
    return c * interp(z_surf) + (1.0 - c) * interp(z_deep)


def effective_temperature(t_soil, weights):
    """T_eff (K) from layer temperatures ``t_soil`` (nl, ...) and :func:`temperature_weights`."""
    t = np.asarray(t_soil, dtype=np.float64)
    out = np.zeros(t.shape[1:])
    for j in np.flatnonzero(weights):          # two to four layers
        out += weights[j] * t[j]
    return out


def qc_flags(t_top, ice_top, swe, ice_threshold=0.001, swe_threshold=5.0):
    """(frozen, snow) boolean masks: top-layer T below freezing or ice above ``ice_threshold`` (m3 m-3), and SWE
    above ``swe_threshold`` (kg m-2). The operator does not model either; such rows are not to be used."""
    frozen = (np.asarray(t_top) < T_FREEZE) | (np.asarray(ice_top) > ice_threshold)
    return frozen, np.asarray(swe) > swe_threshold


def check_tb(tb, what='Tb'):
    """Raise a one-line UserError if finite Tb values fall outside [0, 350] K."""
    tb = np.asarray(tb, dtype=np.float64)
    bad = np.isfinite(tb) & ((tb < TB_RANGE[0]) | (tb > TB_RANGE[1]))
    if np.any(bad):
        v = tb[bad].ravel()[0]
        raise UserError(f"{what}: {int(bad.sum())} value(s) outside [0, 350] K (first {v:.6g} K); brightness "
                        "temperatures must be in kelvin")
    return tb


# ---------------------------------------------------------------- the operator
def brightness_temperature(theta, t_eff, lai, pft, clay, *, sand=None, t_canopy=None,
                           params: TauOmegaParams = TauOmegaParams(), jacobian=False, coef=None):
    """H and V brightness temperature (K) of soil with liquid surface water content ``theta`` (m3 m-3).

    ``t_eff`` (K) effective soil temperature; ``lai`` (m2 m-2), ``pft`` (int), ``clay`` (and ``sand`` for Dobson)
    mass fractions (0-1); all broadcast together (e.g. theta (members, columns) with per-column rest). ``coef``:
    precomputed :func:`mironov_coefficients` of ``clay`` (saves the Debye terms when called per member).
    Returns dict tb_h, tb_v (and dtb_h, dtb_v = dTb/dtheta, K per m3 m-3, with ``jacobian=True``), tau, omega."""
    p = params
    if clay is None or (np.size(clay) and not np.all(np.isfinite(clay))):
        raise UserError("tau_omega: clay fraction missing (None or NaN); the dielectric model needs it")
    if lai is None:
        raise UserError("tau_omega: LAI missing (None); the operator needs the leaf area index")
    theta = np.clip(np.asarray(theta, dtype=np.float64), 0.0, None)
    if p.dielectric == 'dobson' and sand is None:
        raise UserError("tau_omega: dielectric 'dobson' needs the sand fraction")
    tau, omega = vegetation(lai, pft)
    if p.dielectric == 'mironov':
        soil = mironov_coefficients(clay, p.frequency_hz) if coef is None else coef
    else:
        soil = {'sand': np.asarray(sand, dtype=np.float64), 'clay': np.asarray(clay, dtype=np.float64)}
    tc = t_eff if t_canopy is None else t_canopy
    # work on flat chunks of CHUNK values: the temporaries stay in cache (2-3x faster than whole arrays)
    shape = np.broadcast_shapes(theta.shape, np.shape(t_eff), np.shape(tc), tau.shape,
                                *(np.shape(v) for v in soil.values()))
    flat = lambda a: np.broadcast_to(np.asarray(a, dtype=np.float64), shape).ravel()  # noqa: E731
    th, te, tcf, gamma, om = flat(theta), flat(t_eff), flat(tc), flat(np.exp(-tau / np.cos(np.deg2rad(
        p.incidence_deg)))), flat(omega)
    soil = {k: flat(v) for k, v in soil.items()}
    names = ('tb_h', 'tb_v') + (('dtb_h', 'dtb_v') if jacobian else ())
    res = {k: np.empty(th.size) for k in names}
    for a in range(0, th.size, CHUNK):
        sl = slice(a, a + CHUNK)
        part = _tb_flat(th[sl], te[sl], tcf[sl], gamma[sl], om[sl], {k: v[sl] for k, v in soil.items()}, p,
                        jacobian)
        for k in names:
            res[k][sl] = part[k]
    out = {k: v.reshape(shape) for k, v in res.items()}
    out.update(tau=tau, omega=omega)
    return out


def _tb_flat(theta, t_eff, tc, gamma, omega, soil, p, jacobian):
    """The operator on flat arrays (see :func:`brightness_temperature`)."""
    if p.dielectric == 'mironov':
        e1, e2, d1, d2 = _mironov_parts(theta, soil)
    else:
        eps, deps = dobson(theta, soil['sand'], soil['clay'], t_eff, p.frequency_hz, p.bulk_density)
        e1, e2, d1, d2 = eps.real, eps.imag, deps.real, deps.imag
    RH, RV, dRH, dRV = _fresnel_parts(e1, e2, d1, d2, p.incidence_deg)
    h, dh = roughness_h(theta, p)
    ci = np.cos(np.deg2rad(p.incidence_deg))
    veg = tc * (1.0 - omega) * (1.0 - gamma)
    out = {}
    for pol, Rp, Rq, dRp, dRq, n in (('h', RH, RV, dRH, dRV, p.n_h), ('v', RV, RH, dRV, dRH, p.n_v)):
        cn = ci ** n
        att = np.exp(-h * cn)
        r = ((1.0 - p.q) * Rp + p.q * Rq) * att
        out['tb_' + pol] = t_eff * (1.0 - r) * gamma + veg * (1.0 + r * gamma)
        if jacobian:
            dr = ((1.0 - p.q) * dRp + p.q * dRq) * att - r * cn * dh
            out['dtb_' + pol] = (veg - t_eff) * gamma * dr
    return out
