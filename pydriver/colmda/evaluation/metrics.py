"""Skill metrics as the community tool pytesmo defines them ("ref" is the first argument, population moments).

All functions ignore pairs where either value is NaN and reduce along ``axis``.
"""

from __future__ import annotations

import numpy as np


def _pairs(ref, x, axis):
    ref = np.asarray(ref, dtype=float)
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(ref) & np.isfinite(x)
    return np.where(ok, ref, np.nan), np.where(ok, x, np.nan)


def bias(ref, x, axis=0):
    """mean(x - ref): positive when x is too high."""
    r, y = _pairs(ref, x, axis)
    return np.nanmean(y - r, axis=axis)


def rmse(ref, x, axis=0):
    r, y = _pairs(ref, x, axis)
    return np.sqrt(np.nanmean((y - r) ** 2, axis=axis))


def ubrmse(ref, x, axis=0):
    """Unbiased RMSE: RMSE of the anomalies about each series' own mean, sqrt(RMSE^2 - bias^2)."""
    r, y = _pairs(ref, x, axis)
    ra = r - np.nanmean(r, axis=axis, keepdims=True)
    ya = y - np.nanmean(y, axis=axis, keepdims=True)
    return np.sqrt(np.nanmean((ya - ra) ** 2, axis=axis))


def pearson_r(ref, x, axis=0):
    r, y = _pairs(ref, x, axis)
    ra = r - np.nanmean(r, axis=axis, keepdims=True)
    ya = y - np.nanmean(y, axis=axis, keepdims=True)
    return np.nansum(ra * ya, axis=axis) / np.sqrt(np.nansum(ra ** 2, axis=axis) * np.nansum(ya ** 2, axis=axis))


def count(ref, x, axis=0):
    r, y = _pairs(ref, x, axis)
    return np.sum(np.isfinite(r), axis=axis)
