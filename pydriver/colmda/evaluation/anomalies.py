"""Anomaly time series for skill scores (seed 004: skill is the correlation of anomalies).

Arrays are (..., time) of DAILY values on a regular daily axis (NaN = missing); every function is vectorised
over the leading (station/cell) axes.

* ``moving``: anomaly = value - centred moving average over ``window`` days (default 35) of the available
  values, NaN where the value is missing. Identical to pytesmo's ``calc_anomaly(window_size=35)`` (boxcar filter
  over |t - t0| <= window/2 days) on a daily series; tests/test_evaluation_suite.py checks the parity on real
  ISMN series. Needs no multi-year record, so it is the default for runs shorter than a few years.
* ``climatology``: anomaly = value - climatology(day of year), the climatology from pytesmo's
  ``calc_climatology`` (5-day moving average of the series, mean per day of year, 35-day wrapping smoothing)
  computed per station. Days of year are numbered on a leap-year calendar (1 March = 61 in every year), the
  numbering ``calc_climatology`` uses with ``respect_leap_years=False``; the same numbering is used to look the
  climatology up, which avoids the one-day shift after February that mixing pytesmo's ``calc_anomaly``
  (respect_leap_years=True) with that climatology would give in non-leap years.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ['moving_anomaly', 'climatology_anomaly', 'anomalies', 'METHODS']

METHODS = ('moving', 'climatology')


def moving_anomaly(values, window: float = 35.0):
    """value - mean of the available values within +-window/2 days (centred); NaN where value is NaN."""
    v = np.asarray(values, dtype=np.float64)
    half = int(np.floor(window / 2.0))
    ok = np.isfinite(v)
    x = np.where(ok, v, 0.0)
    nt = v.shape[-1]
    pad = [(0, 0)] * (v.ndim - 1) + [(1, 0)]
    cs = np.cumsum(np.pad(x, pad), axis=-1)
    cn = np.cumsum(np.pad(ok.astype(np.float64), pad), axis=-1)
    t = np.arange(nt)
    lo = np.clip(t - half, 0, nt)
    hi = np.clip(t + half + 1, 0, nt)
    s = cs[..., hi] - cs[..., lo]
    n = cn[..., hi] - cn[..., lo]
    with np.errstate(invalid='ignore', divide='ignore'):
        ref = s / n
    return np.where(ok, v - ref, np.nan)


def _leap_doy(dates):
    d = np.asarray(dates, dtype='datetime64[D]')
    months = d.astype('datetime64[M]')
    month = months.astype(np.int64) % 12            # 0..11
    day = (d - months).astype(np.int64) + 1
    start = np.array([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
    return start[month] + day                        # 1..366 on a leap-year calendar


def climatology_anomaly(values, dates, moving_avg_orig: float = 5.0, moving_avg_clim: float = 35.0,
                        min_years: float = 2.0):
    """value - day-of-year climatology (pytesmo ``calc_climatology`` per station, see module docstring)."""
    import pandas as pd
    from pytesmo.time_series.anomaly import calc_climatology

    v = np.asarray(values, dtype=np.float64)
    dates = np.asarray(dates, dtype='datetime64[D]')
    if dates.size != v.shape[-1]:
        raise UserError(f"climatology anomalies: {dates.size} dates for {v.shape[-1]} time steps")
    if dates.size < 365 * min_years:
        raise UserError(f"climatology anomalies need at least {min_years:g} years of daily values "
                        f"(got {dates.size} days); use method 'moving'")
    doy = _leap_doy(dates)
    idx = pd.DatetimeIndex(dates)
    flat = v.reshape(-1, v.shape[-1])
    out = np.full_like(flat, np.nan)
    for i, row in enumerate(flat):
        if not np.isfinite(row).any():
            continue
        clim = calc_climatology(pd.Series(row, index=idx), moving_avg_orig=int(moving_avg_orig),
                                moving_avg_clim=int(moving_avg_clim), respect_leap_years=False)
        out[i] = row - clim.reindex(range(1, 367)).to_numpy()[doy - 1]
    return out.reshape(v.shape)


def anomalies(values, dates=None, method: str = 'moving', window: float = 35.0):
    """Anomalies by ``method`` ('moving' or 'climatology'; module docstring)."""
    if method == 'moving':
        return moving_anomaly(values, window)
    if method == 'climatology':
        if dates is None:
            raise UserError("climatology anomalies need the dates of the daily values")
        return climatology_anomaly(values, dates, moving_avg_clim=window)
    raise UserError(f"anomaly method '{method}': expected one of {', '.join(METHODS)}")
