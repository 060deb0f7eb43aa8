"""Solar geometry, vectorised over latitude, longitude and UTC time.

Declination, equation of time and the Earth-Sun distance from the low-precision solar coordinates of the
NOAA solar calculator (after Meeus 1991, Astronomical Algorithms; about 0.01 deg and a few seconds of time
for 1950-2050). Times are numpy ``datetime64`` (UTC) or
seconds since 1970-01-01 UTC; latitude and longitude in degrees (east positive, any convention).

:func:`mean_cos_zenith` integrates ``max(cos Z, 0)`` exactly over an interval (declination and equation
of time held at the interval mid-point), which the weather generator uses for step-mean shortwave and the
interpolation uses to distribute interval-mean shortwave within the interval.
"""

from __future__ import annotations

import numpy as np

__all__ = ['SOLAR_CONSTANT', 'to_seconds', 'fractional_year', 'declination', 'equation_of_time',
           'eccentricity_factor', 'hour_angle', 'cos_zenith', 'mean_cos_zenith', 'daily_mean_toa',
           'solar_noon_utc_hours', 'step_geometry', 'model_coszen']

SOLAR_CONSTANT = 1361.0  # W m-2 (Kopp and Lean 2011)
_DAY = 86400.0
_OMEGA = 2.0 * np.pi / _DAY  # rad s-1


def to_seconds(times):
    """datetime64 (any unit), ISO strings or numbers (seconds since 1970-01-01) -> float64 seconds."""
    t = np.asarray(times)
    if t.dtype.kind in 'UO':
        t = t.astype('datetime64[s]')
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype('datetime64[ms]').astype(np.int64) / 1000.0
    return t.astype(np.float64)


def fractional_year(times):
    """Day angle (rad): 2 pi (day of year - 1 + fraction of the day) / length of the year."""
    s = to_seconds(times)
    ts = np.floor(s).astype(np.int64).astype('datetime64[s]')
    y0 = ts.astype('datetime64[Y]')
    start = y0.astype('datetime64[s]').astype(np.int64)
    ylen = (y0 + 1).astype('datetime64[s]').astype(np.int64) - start
    return 2.0 * np.pi * (s - start) / ylen


def _sun(times):
    """Low-precision solar coordinates (NOAA solar calculator, after Meeus 1991): declination (rad),
    equation of time (min), Sun-Earth distance (AU)."""
    s = to_seconds(times)
    jc = (s / _DAY + 2440587.5 - 2451545.0) / 36525.0  # Julian centuries since J2000.0 (UT ~ TT)
    l0 = np.deg2rad(np.mod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0))
    m = np.deg2rad(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    c = np.deg2rad(np.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
                   + np.sin(2 * m) * (0.019993 - 0.000101 * jc) + np.sin(3 * m) * 0.000289)
    true_long = l0 + c
    r = 1.000001018 * (1.0 - e * e) / (1.0 + e * np.cos(m + c))
    omega = np.deg2rad(125.04 - 1934.136 * jc)
    app_long = true_long - np.deg2rad(0.00569 + 0.00478 * np.sin(omega))
    eps0 = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
    eps = np.deg2rad(eps0 + 0.00256 * np.cos(omega))
    dec = np.arcsin(np.sin(eps) * np.sin(app_long))
    y = np.tan(eps / 2.0) ** 2
    eot = 4.0 * np.rad2deg(y * np.sin(2 * l0) - 2 * e * np.sin(m) + 4 * e * y * np.sin(m) * np.cos(2 * l0)
                           - 0.5 * y * y * np.sin(4 * l0) - 1.25 * e * e * np.sin(2 * m))
    return dec, eot, r


def declination(times):
    """Solar declination (rad), NOAA / Meeus low-precision formulas (about 0.01 deg)."""
    return _sun(times)[0]


def equation_of_time(times):
    """Equation of time (minutes; apparent minus mean solar time), NOAA / Meeus formulas."""
    return _sun(times)[1]


def eccentricity_factor(times):
    """(mean Earth-Sun distance / distance)^2."""
    return 1.0 / _sun(times)[2] ** 2


def hour_angle(lon, times):
    """Solar hour angle (rad): 0 at local apparent noon, positive in the afternoon, in [-pi, pi)."""
    s = to_seconds(times)
    h = _OMEGA * np.mod(s, _DAY) + np.deg2rad(lon) + np.deg2rad(equation_of_time(s) / 4.0) - np.pi
    return np.mod(h + np.pi, 2.0 * np.pi) - np.pi


def cos_zenith(lat, lon, times):
    """Cosine of the solar zenith angle (not clipped: negative when the sun is below the horizon)."""
    s = to_seconds(times)
    d = declination(s)
    phi = np.deg2rad(lat)
    return np.sin(phi) * np.sin(d) + np.cos(phi) * np.cos(d) * np.cos(hour_angle(lon, s))


def _sunset_hour_angle(a, b):
    """Hour angle (rad, 0..pi) at which a + b cos h = 0 (pi: sun always up, 0: always down)."""
    with np.errstate(divide='ignore', invalid='ignore'):
        r = np.where(b > 0, -a / np.where(b > 0, b, 1.0), np.where(a > 0, -np.inf, np.inf))
    return np.arccos(np.clip(r, -1.0, 1.0))


def _antiderivatives(a, b, h, hs=None):
    """Antiderivatives in h of max(a + b cos h, 0) and of [a + b cos h > 0] (b >= 0).

    Both are continuous, non-decreasing, and grow by one period's integral every 2 pi; ``hs`` is the
    sunset hour angle (computed if not given)."""
    if hs is None:
        hs = _sunset_hour_angle(a, b)
    sin_hs = np.sin(hs)
    period_mu = 2.0 * (a * hs + b * sin_hs)        # integral of max(a + b cos h, 0) over one period
    n = np.floor((h + np.pi) / (2.0 * np.pi))
    x = h - 2.0 * np.pi * n                          # in [-pi, pi)
    xc = np.clip(x, -hs, hs)
    g_mu = a * (xc + hs) + b * (np.sin(xc) + sin_hs)   # equals 0 below -hs and the period value above hs
    g_lit = xc + hs
    return n * period_mu + g_mu, n * (2.0 * hs) + g_lit


def mean_cos_zenith(lat, lon, t_start, t_end):
    """Mean of max(cos Z, 0) over [t_start, t_end] and the sunlit fraction of the interval.

    Exact integral of ``max(0, sin(lat) sin(dec) + cos(lat) cos(dec) cos(h))`` over the hour angles swept
    by the interval, with the declination and equation of time at the interval mid-point. Works for
    intervals of any length (several days included). Returns ``(mean_mu, lit_fraction)``; for a zero-length
    interval, the instantaneous ``max(cos Z, 0)`` and ``cos Z > 0``.
    """
    t0 = to_seconds(t_start)
    t1 = to_seconds(t_end)
    tm = 0.5 * (t0 + t1)
    d = declination(tm)
    phi = np.deg2rad(lat)
    a = np.sin(phi) * np.sin(d)
    b = np.maximum(np.cos(phi) * np.cos(d), 0.0)
    eot = np.deg2rad(equation_of_time(tm) / 4.0)
    h0 = _OMEGA * np.mod(t0, _DAY) + np.deg2rad(lon) + eot - np.pi
    dh = _OMEGA * (t1 - t0)
    h1 = h0 + dh
    f0_mu, f0_lit = _antiderivatives(a, b, h0)
    f1_mu, f1_lit = _antiderivatives(a, b, h1)
    with np.errstate(divide='ignore', invalid='ignore'):
        mu = np.where(dh > 0, (f1_mu - f0_mu) / np.where(dh > 0, dh, 1.0),
                      np.maximum(a + b * np.cos(h0), 0.0))
        lit = np.where(dh > 0, (f1_lit - f0_lit) / np.where(dh > 0, dh, 1.0),
                       (a + b * np.cos(h0) > 0).astype(np.float64))
    return np.maximum(mu, 0.0), np.clip(lit, 0.0, 1.0)


def daily_mean_toa(lat, times):
    """Daily-mean top-of-atmosphere insolation (W m-2) for the day's declination at ``times``."""
    s = to_seconds(times)
    d = declination(s)
    phi = np.deg2rad(lat)
    a = np.sin(phi) * np.sin(d)
    b = np.maximum(np.cos(phi) * np.cos(d), 0.0)
    hs = _sunset_hour_angle(a, b)
    return SOLAR_CONSTANT * eccentricity_factor(s) / np.pi * (a * hs + b * np.sin(hs))


def solar_noon_utc_hours(lon, times):
    """UTC time of day (hours) of local apparent noon at longitude ``lon`` on the day of ``times``."""
    return np.mod(12.0 - np.asarray(lon, dtype=np.float64) / 15.0 - equation_of_time(times) / 60.0, 24.0)


def step_geometry(lat, lon, t_start, dt):
    """Solar geometry of model steps for columns, with the Sun's coordinates computed once per step.

    ``lat``, ``lon``: (ncol,) degrees; ``t_start``: (nsteps,) step start times; ``dt``: step (s).
    Returns ``(coszen_mid, mean_mu, lit_fraction, e0)``: cos Z at mid-step (nsteps, ncol, not clipped), the
    step mean of max(cos Z, 0) and the sunlit fraction of the step (nsteps, ncol), and the Earth-Sun
    distance factor (nsteps,).
    """
    t0 = to_seconds(t_start)
    tm = t0 + 0.5 * dt
    dec, eot, r = _sun(tm)
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))[None, :]
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))[None, :]
    a = np.sin(phi) * np.sin(dec)[:, None]
    b = np.maximum(np.cos(phi) * np.cos(dec)[:, None], 0.0)
    h0 = (_OMEGA * np.mod(t0, _DAY) + np.deg2rad(eot / 4.0) - np.pi)[:, None] + lam
    dh = _OMEGA * float(dt)
    cz = a + b * np.cos(h0 + 0.5 * dh)
    hs = _sunset_hour_angle(a, b)
    f0_mu, f0_lit = _antiderivatives(a, b, h0, hs)
    f1_mu, f1_lit = _antiderivatives(a, b, h0 + dh, hs)
    mu = np.maximum((f1_mu - f0_mu) / dh, 0.0)
    lit = np.clip((f1_lit - f0_lit) / dh, 0.0, 1.0)
    return cz, mu, lit, 1.0 / r ** 2


def model_coszen(cz_mid, mean_mu, lit):
    """The core's F_COSZEN: cos Z at mid-step where positive; if the Sun is down at mid-step but up for
    part of the step, the mean cos Z over the sunlit part; 0 if it is down for the whole step. Hence
    F_COSZEN > 0 whenever a step receives shortwave."""
    with np.errstate(divide='ignore', invalid='ignore'):
        mu_lit = np.where(lit > 0, mean_mu / np.where(lit > 0, lit, 1.0), 0.0)
    return np.where(cz_mid > 0, cz_mid, mu_lit)
