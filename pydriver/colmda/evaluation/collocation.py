"""Error estimates without a perfect reference: double instrumental variable (IVd) and triple collocation (TC).

Error model (seed 004 eq. 2; McColl et al. 2014): x_t = a_x P_t + B_x + e_x,t with zero-mean random errors,
independent between products.

IVd (Dong et al. 2019; seed 004 eqs. 3-9), two products x and y, instruments I = x_{t-1}, J = y_{t-1}; assumes
serially white errors and a serially correlated signal (lag-1 autocovariance L_PP != 0)::

    C_Ix = a_x^2 L_PP,  C_Jy = a_y^2 L_PP,  s = sqrt(C_Ix / C_Jy)
    R_Px^2 = C_xy s / C_xx,    R_Py^2 = C_xy / (C_yy s)
    error variance of x = C_xx (1 - R_Px^2) (its own units), likewise y

Covariances over the days where x_t, y_t, x_{t-1}, y_{t-1} are all finite (sample covariance, ddof = 1).
Vectorised over stations.

TC: pytesmo's ``tcol_metrics`` (covariance notation; ddof = 1) per station where the three products overlap on
at least ``min_pairs`` days: SNR (dB), error std in the reference's units, scaling beta; the error variance in
each product's own units is (err_std / beta)^2 = s_x^2 - s_xy s_xz / s_yz; R with truth^2 = SNR / (1 + SNR).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ['ivd', 'triple_collocation']


def _cov(a, b, ok):
    n = ok.sum(axis=-1)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    ma = a.sum(axis=-1) / n
    mb = b.sum(axis=-1) / n
    return (np.where(ok, (a - ma[..., None]) * (b - mb[..., None]), 0.0)).sum(axis=-1) / (n - 1)


def ivd(x, y, min_pairs: int = 30) -> dict:
    """IVd estimates for products ``x`` and ``y`` (station, time) on a regular time axis (module docstring).
    Returns dict of (station,) arrays: r2_x, r2_y (squared correlation with the truth), err_var_x, err_var_y,
    scale (s), n. NaN where fewer than ``min_pairs`` usable days or C_Ix C_Jy <= 0 (no usable signal memory)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if x.shape != y.shape:
        raise UserError(f"ivd: x {x.shape} and y {y.shape} must have the same shape")
    xt, yt, xi, yj = x[:, 1:], y[:, 1:], x[:, :-1], y[:, :-1]
    ok = np.isfinite(xt) & np.isfinite(yt) & np.isfinite(xi) & np.isfinite(yj)
    n = ok.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        cix, cjy = _cov(xi, xt, ok), _cov(yj, yt, ok)
        cxy, cxx, cyy = _cov(xt, yt, ok), _cov(xt, xt, ok), _cov(yt, yt, ok)
        good = (n >= min_pairs) & (cix > 0) & (cjy > 0)
        s = np.where(good, np.sqrt(np.abs(cix / cjy)), np.nan)
        r2x = cxy * s / cxx
        r2y = cxy / (cyy * s)
    return {'r2_x': r2x, 'r2_y': r2y, 'err_var_x': cxx * (1.0 - r2x), 'err_var_y': cyy * (1.0 - r2y),
            'scale': s, 'n': n}


def triple_collocation(x, y, z, ref: int = 0, min_pairs: int = 30) -> dict:
    """pytesmo ``tcol_metrics`` per station where x, y, z (station, time) overlap. Returns dict of (station, 3)
    arrays snr_db, err_std (reference units), beta, err_var (own units), r2 (with the truth), and n (station,)."""
    from pytesmo.metrics import tcol_metrics

    x, y, z = (np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in (x, y, z))
    if not (x.shape == y.shape == z.shape):
        raise UserError(f"triple_collocation: shapes {x.shape}, {y.shape}, {z.shape} differ")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    nst = x.shape[0]
    out = {k: np.full((nst, 3), np.nan) for k in ('snr_db', 'err_std', 'beta', 'err_var', 'r2')}
    out['n'] = ok.sum(axis=1)
    for i in np.flatnonzero(out['n'] >= min_pairs):
        m = ok[i]
        with np.errstate(invalid='ignore', divide='ignore'):
            snr, err, beta = tcol_metrics(x[i, m], y[i, m], z[i, m], ref_ind=ref)
        snr, err, beta = (np.asarray(v, dtype=np.float64) for v in (snr, err, beta))
        lin = 10.0 ** (snr / 10.0)
        out['snr_db'][i], out['err_std'][i], out['beta'][i] = snr, err, beta
        out['err_var'][i] = (err / beta) ** 2
        out['r2'][i] = lin / (1.0 + lin)
    return out
