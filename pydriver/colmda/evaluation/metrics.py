"""Skill metrics vectorised over columns, with pytesmo's definitions and argument order.

Every function takes the two series as its first two arguments in the order pytesmo.metrics uses (``x``, ``y``;
the evaluation code passes the reference first), uses population moments, ignores pairs where either value is NaN
and reduces along ``axis``. ``bias(x, y) = mean(x) - mean(y)`` exactly as ``pytesmo.metrics.bias``: the sign
follows the argument order, so a caller that wants "experiment minus reference" passes the experiment first.
``tests/test_evaluate_ismn.py`` checks parity with pytesmo on real station series.

Confidence intervals (:func:`confidence_intervals`) are the analytical ones pytesmo uses (``pytesmo.metrics.
with_analytical_ci``): Fisher z for R, Student t for the bias, chi-square for ubRMSE. They assume independent
pairs; daily soil moisture is autocorrelated, so they are too narrow unless ``n_eff`` (the effective number of
independent pairs) is given.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ['bias', 'rmse', 'ubrmse', 'pearson_r', 'count', 'confidence_intervals', 'effective_sample_size']


def _pairs(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return np.where(ok, x, np.nan), np.where(ok, y, np.nan)


def bias(x, y, axis=0):
    """mean(x) - mean(y) over the valid pairs (pytesmo.metrics.bias)."""
    a, b = _pairs(x, y)
    return np.nanmean(a - b, axis=axis)


def rmse(x, y, axis=0):
    """Root-mean-square difference (pytesmo.metrics.rmsd)."""
    a, b = _pairs(x, y)
    return np.sqrt(np.nanmean((a - b) ** 2, axis=axis))


def ubrmse(x, y, axis=0):
    """Unbiased RMSE: RMSE of the anomalies about each series' own mean, sqrt(RMSE^2 - bias^2)
    (pytesmo.metrics.ubrmsd)."""
    a, b = _pairs(x, y)
    aa = a - np.nanmean(a, axis=axis, keepdims=True)
    ba = b - np.nanmean(b, axis=axis, keepdims=True)
    return np.sqrt(np.nanmean((aa - ba) ** 2, axis=axis))


def pearson_r(x, y, axis=0):
    """Pearson correlation (pytesmo.metrics.pearson_r)."""
    a, b = _pairs(x, y)
    aa = a - np.nanmean(a, axis=axis, keepdims=True)
    ba = b - np.nanmean(b, axis=axis, keepdims=True)
    return np.nansum(aa * ba, axis=axis) / np.sqrt(np.nansum(aa ** 2, axis=axis) * np.nansum(ba ** 2, axis=axis))


def count(x, y, axis=0):
    a, _ = _pairs(x, y)
    return np.sum(np.isfinite(a), axis=axis)


def effective_sample_size(x, y, axis=0):
    """n (1 - r1x r1y) / (1 + r1x r1y) with r1 the lag-1 autocorrelations of the two series (Bretherton et al.
    1999, eq. 31 for the correlation of two AR(1) series); at most n, at least 3. Consecutive valid pairs only."""
    a, b = (np.moveaxis(v, axis, 0) for v in _pairs(x, y))
    n = np.sum(np.isfinite(a), axis=0)

    def lag1(v):
        va = v - np.nanmean(v, axis=0, keepdims=True)
        num = np.nansum(va[1:] * va[:-1], axis=0)
        den = np.nansum(va ** 2, axis=0)
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.clip(num / den, -0.99, 0.99)

    p = lag1(a) * lag1(b)
    with np.errstate(invalid='ignore'):
        return np.clip(n * (1.0 - p) / (1.0 + p), 3.0, np.maximum(n, 3.0))


def confidence_intervals(x, y, alpha=0.05, axis=0, n_eff=None):
    """(lower, upper) bounds of R, bias and ubRMSE at level 1 - alpha, dict name -> (lo, hi) arrays.

    The formulas are pytesmo's analytical intervals (pearson_r: Fisher z with standard error 1/sqrt(n - 3); bias:
    mean difference +- t_{n-1} s/sqrt(n); ubRMSE: sqrt(n ubRMSE^2 / chi2_{n-1}) bounds), with n replaced by
    ``n_eff`` when given (see :func:`effective_sample_size`)."""
    n = count(x, y, axis=axis).astype(float)
    m = n if n_eff is None else np.minimum(np.asarray(n_eff, dtype=float), n)
    r = pearson_r(x, y, axis=axis)
    with np.errstate(invalid='ignore', divide='ignore'):
        z = np.arctanh(np.clip(r, -0.999999, 0.999999))
        zc = stats.norm.ppf(1.0 - alpha / 2.0) / np.sqrt(m - 3.0)
        out = {'R': (np.tanh(z - zc), np.tanh(z + zc))}
        a, b = _pairs(x, y)
        d = a - b
        b_ = np.nanmean(d, axis=axis)
        sd = np.nanstd(d, axis=axis, ddof=1)
        h = stats.t.ppf(1.0 - alpha / 2.0, m - 1.0) * sd / np.sqrt(m)
        out['bias'] = (b_ - h, b_ + h)
        u = ubrmse(x, y, axis=axis)
        out['ubRMSE'] = (np.sqrt(m * u ** 2 / stats.chi2.ppf(1.0 - alpha / 2.0, m - 1.0)),
                         np.sqrt(m * u ** 2 / stats.chi2.ppf(alpha / 2.0, m - 1.0)))
    return out
