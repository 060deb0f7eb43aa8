"""Swath sampling from circular sun-synchronous orbits.

Geometry (spherical Earth for the ground track, J2 only for the node precession)
--------------------------------------------------------------------------------
* Semi-major axis ``a = R_eq + altitude``; mean motion ``n = sqrt(mu / a^3)``, period ``T = 2 pi / n``
  (Kepler's third law; the small J2 correction of the along-track rate is neglected: it shifts the phase of the
  passes, which is arbitrary anyway, not the geometry).
* Sun-synchronous inclination (when ``inclination_deg`` is None): the J2 nodal precession
  ``dOmega/dt = -3/2 n J2 (R_eq / a)^2 cos i`` equals the mean motion of the mean sun, 360 deg per tropical
  year (Vallado, *Fundamentals of Astrodynamics and Applications*, sect. 9.6). SMAP 685 km -> 98.1 deg,
  Metop 817 km -> 98.7 deg, FY-3D 836 km -> 98.75 deg, as published.
* The orbit plane keeps its place relative to the mean sun, so in the Earth-fixed frame the ascending node lies
  at the longitude where the local mean solar time equals the local time of the ascending node (LTAN):
  ``lambda_N(t) = 15 deg/h * (LTAN - UTC(t))`` (plus a drift when a non-sun-synchronous inclination is given).
  Local time here is mean solar time (the equation of time, up to 16 min, is ignored, as in the LTAN
  definition of the operators, e.g. EUMETSAT EPS-PG appendix B).
* Sub-satellite point at argument of latitude ``u``: ``s = cos u N + sin u (cos i E + sin i Z)`` with ``N``,
  ``E`` the unit vectors towards and 90 deg east of the node longitude, ``Z`` the pole. Several satellites in
  the same plane differ by a phase of ``u`` (Metop-B and Metop-C fly half an orbit apart). Phase 0 passes the
  ascending node at the reference epoch 2000-01-01T12:00:00 UTC.

Swath test
----------
The track is sampled every ``sample_s`` seconds on a fixed grid of times counted from the epoch (so the samples,
hence the results, do not depend on the requested period). A k-d tree of the column centres (unit vectors) finds
every column within the swath half-width (as a chord, plus half a sample step) of a track sample. For each such
(sample, column) pair the along-track angle ``alpha = atan2(p.v, p.s)`` and the ground angular speed give the time
of closest approach; two Newton refinements with the exact track make it accurate to well under a second. The pair
is kept when that sample is the one nearest to the closest approach (one observation per pass per column) and the
cross-track great-circle distance ``R |asin(p.h)|`` lies inside the imaged band
``[gap_km / 2, (gap_km + swath_km) / 2]``. Each column's passes depend only on its own lat/lon.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.spatial import cKDTree

from ..errors import UserError

__all__ = ['Orbit', 'overpasses', 'overpass_details', 'sun_synchronous_inclination', 'local_solar_time',
           'R_EARTH_KM', 'EPOCH']

MU = 3.986004418e14          # m3 s-2, Earth's gravitational parameter (WGS-84)
J2 = 1.08262668e-3           # Earth's second zonal harmonic (WGS-84/EGM)
R_EQ = 6378.137e3            # m, equatorial radius (for the orbit radius)
R_EARTH_KM = 6371.0          # km, mean radius (for ground distances; the same as colmda.forcing.perturb)
TROPICAL_YEAR_S = 365.2422 * 86400.0   # s
SOLAR_DAY_S = 86400.0        # s, mean solar day
EPOCH = np.datetime64('2000-01-01T12:00:00', 's')   # J2000 reference epoch, UTC


def sun_synchronous_inclination(altitude_km: float) -> float:
    """Inclination (deg) of the circular sun-synchronous orbit at ``altitude_km`` (J2 precession)."""
    a = R_EQ + altitude_km * 1e3
    n = math.sqrt(MU / a ** 3)
    rate = 2.0 * math.pi / TROPICAL_YEAR_S       # rad s-1, mean sun
    c = -rate / (1.5 * n * J2 * (R_EQ / a) ** 2)
    if not -1.0 <= c <= 1.0:
        raise UserError(f"no sun-synchronous orbit at altitude {altitude_km} km")
    return math.degrees(math.acos(c))


@dataclasses.dataclass(frozen=True)
class Orbit:
    """A circular (sun-synchronous) orbit with a cross-track swath, flown by one or more satellites."""

    altitude_km: float                 # km above the equatorial radius
    node_time_h: float                 # h, local mean solar time of the node named by ``node``
    node: str = 'ascending'            # 'ascending' or 'descending': which node ``node_time_h`` refers to
    swath_km: float = 1000.0           # km, total imaged width (both sub-swaths together when gap_km > 0)
    gap_km: float = 0.0                # km, width of the unimaged band centred on the ground track
    inclination_deg: float | None = None   # deg; None = sun-synchronous for the altitude
    phases_deg: tuple = (0.0,)         # deg, argument of latitude of each satellite at the epoch
    sample_s: int = 30                 # s, track sampling step for the swath search
    passes: str = 'both'               # which half-orbits observe: 'both', 'ascending' or 'descending'

    def __post_init__(self):
        checks = [
            ('altitude_km', 150.0 <= self.altitude_km <= 5000.0, 'between 150 and 5000 km (low Earth orbit)'),
            ('node_time_h', 0.0 <= self.node_time_h < 24.0, 'in [0, 24) h'),
            ('node', self.node in ('ascending', 'descending'), "'ascending' or 'descending'"),
            ('swath_km', 0.0 < self.swath_km <= 5000.0, 'in (0, 5000] km'),
            ('gap_km', 0.0 <= self.gap_km < 5000.0, 'in [0, 5000) km'),
            ('sample_s', 1 <= int(self.sample_s) <= 120, 'an integer in [1, 120] s'),
            ('passes', self.passes in ('both', 'ascending', 'descending'), "'both', 'ascending' or 'descending'"),
            ('phases_deg', len(tuple(self.phases_deg)) >= 1, 'at least one satellite phase'),
        ]
        if self.inclination_deg is not None:
            checks.append(('inclination_deg', 0.0 < self.inclination_deg < 180.0, 'in (0, 180) deg'))
        for name, ok, what in checks:
            if not ok:
                raise UserError(f"orbit: {name} = {getattr(self, name)!r}, expected {what}")

    @property
    def radius_m(self) -> float:
        return R_EQ + self.altitude_km * 1e3

    @property
    def mean_motion(self) -> float:
        """rad s-1 (Kepler)."""
        return math.sqrt(MU / self.radius_m ** 3)

    @property
    def period_s(self) -> float:
        """Orbital period (s), Kepler's third law."""
        return 2.0 * math.pi / self.mean_motion

    @property
    def inclination(self) -> float:
        """Inclination (deg): given, or sun-synchronous for the altitude."""
        if self.inclination_deg is not None:
            return float(self.inclination_deg)
        return sun_synchronous_inclination(self.altitude_km)

    @property
    def ltan_h(self) -> float:
        """Local mean solar time of the ascending node (h)."""
        return self.node_time_h % 24.0 if self.node == 'ascending' else (self.node_time_h + 12.0) % 24.0

    @property
    def node_drift(self) -> float:
        """rad s-1: drift of the node relative to the mean sun (0 for a sun-synchronous orbit)."""
        a = self.radius_m
        rate = -1.5 * self.mean_motion * J2 * (R_EQ / a) ** 2 * math.cos(math.radians(self.inclination))
        return rate - 2.0 * math.pi / TROPICAL_YEAR_S

    @property
    def outer_half_km(self) -> float:
        return 0.5 * (self.gap_km + self.swath_km)

    # ---- track ------------------------------------------------------------------------------------------------
    def track(self, tsec, phase_deg=0.0):
        """Sub-satellite unit vector s (n,3), unit ground-track direction v (n,3) and ground angular speed
        (rad s-1) at times ``tsec`` (float seconds since :data:`EPOCH`) for the satellite at ``phase_deg``."""
        t = np.asarray(tsec, dtype=np.float64)
        n = self.mean_motion
        inc = math.radians(self.inclination)
        ci, si = math.cos(inc), math.sin(inc)
        # argument of latitude; reduce the time modulo the period first to keep full precision
        u = math.radians(phase_deg) + 2.0 * math.pi * (np.mod(t, self.period_s) / self.period_s)
        utc_h = np.mod(t + 12.0 * 3600.0, SOLAR_DAY_S) / 3600.0        # the epoch is at 12 UTC
        lam = np.radians(15.0 * (self.ltan_h - utc_h)) + self.node_drift * t
        lam_dot = -2.0 * math.pi / SOLAR_DAY_S + self.node_drift
        cl, sl, cu, su = np.cos(lam), np.sin(lam), np.cos(u), np.sin(u)
        N = np.stack([cl, sl, np.zeros_like(cl)], axis=-1)
        E = np.stack([-sl, cl, np.zeros_like(cl)], axis=-1)
        Q = ci * E
        Q[..., 2] = si
        s = cu[..., None] * N + su[..., None] * Q
        ds = n * (-su[..., None] * N + cu[..., None] * Q)
        ds = ds + lam_dot * np.stack([-s[..., 1], s[..., 0], np.zeros_like(cl)], axis=-1)   # z x s
        speed = np.linalg.norm(ds, axis=-1)
        return s, ds / speed[..., None], speed


def _unit(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _as_seconds(t) -> int:
    return int((np.datetime64(t, 's') - EPOCH).astype(np.int64))


def local_solar_time(time, lon) -> np.ndarray:
    """Local mean solar time (h, 0-24) at UTC ``time`` (datetime64) and longitude ``lon`` (deg E)."""
    sec = (np.asarray(time, dtype='datetime64[s]') - np.datetime64('1970-01-01T00:00:00', 's')).astype(np.int64)
    return np.mod((sec % 86400) / 3600.0 + np.asarray(lon, dtype=float) / 15.0, 24.0)


def overpass_details(orbit: Orbit, lat, lon, start, end, chunk_days: float = 1.0) -> dict:
    """All passes of ``orbit``'s satellites that see the given column centres in [start, end] (UTC).

    Returns a dict of arrays, one entry per (pass, column), sorted by time then index: ``index`` (int64, into
    lat/lon), ``time`` (datetime64[s], closest approach), ``satellite`` (int, index into ``phases_deg``),
    ``ascending`` (bool, northward pass), ``cross_track_km`` (float, signed distance from the ground track, km).
    """
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.shape != lon.shape:
        raise UserError(f"overpasses: lat has {lat.size} values, lon {lon.size}; expected the same number")
    if np.any(~np.isfinite(lat)) or np.any(np.abs(lat) > 90.0) or np.any(~np.isfinite(lon)):
        raise UserError("overpasses: lat must be finite in [-90, 90] deg and lon finite")
    t_start, t_end = _as_seconds(start), _as_seconds(end)
    if t_end < t_start:
        raise UserError(f"overpasses: end {end} is before start {start}")
    P = _unit(lat, lon)
    empty = dict(index=np.zeros(0, np.int64), time=np.zeros(0, 'datetime64[s]'), satellite=np.zeros(0, np.int64),
                 ascending=np.zeros(0, bool), cross_track_km=np.zeros(0))
    if P.shape[0] == 0:
        return empty
    tree = cKDTree(P)
    dt = int(orbit.sample_s)
    R = R_EARTH_KM
    step_km = dt * 2.0 * math.pi * R / orbit.period_s * 1.1          # ground distance per sample (upper bound)
    ang = min(math.pi, math.hypot(orbit.outer_half_km, 0.5 * step_km) / R + 20.0 / R)
    chord = 2.0 * math.sin(0.5 * ang)
    inner, outer = 0.5 * orbit.gap_km / R, orbit.outer_half_km / R      # rad
    k_first = int(math.floor(t_start / dt)) - 1
    k_last = int(math.ceil(t_end / dt)) + 1
    per_chunk = max(1, int(chunk_days * 86400 / dt))
    out = {k: [] for k in empty}
    for isat, phase in enumerate(tuple(orbit.phases_deg)):
        for k0 in range(k_first, k_last + 1, per_chunk):
            k = np.arange(k0, min(k0 + per_chunk, k_last + 1), dtype=np.int64)
            tk = (k * dt).astype(np.float64)
            s, v, w = orbit.track(tk, phase)
            lists = tree.query_ball_point(s, chord, return_sorted=False)
            lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
            if lens.sum() == 0:
                continue
            ti = np.repeat(np.arange(k.size), lens)
            ci = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists if len(x)])
            p = P[ci]
            alpha = np.arctan2(np.einsum('ij,ij->i', p, v[ti]), np.einsum('ij,ij->i', p, s[ti]))
            off = alpha / w[ti]
            keep = np.abs(off) <= 0.5 * dt + 2.0                          # candidate near its closest approach
            ti, ci, p, t = ti[keep], ci[keep], p[keep], tk[ti[keep]] + off[keep]
            for _ in range(3):                                            # Newton on the exact track
                s2, v2, w2 = orbit.track(t, phase)
                t = t + np.arctan2(np.einsum('ij,ij->i', p, v2), np.einsum('ij,ij->i', p, s2)) / w2
            s2, v2, _ = orbit.track(t, phase)
            h = np.cross(s2, v2)
            beta = np.arcsin(np.clip(np.einsum('ij,ij->i', p, h), -1.0, 1.0))   # rad, cross-track
            near = np.abs(t - tk[ti]) <= 0.5 * dt + 1.0
            inside = (np.abs(beta) >= inner) & (np.abs(beta) <= outer)
            asc = v2[:, 2] > 0.0
            sel = near & inside
            if orbit.passes != 'both':
                sel &= asc if orbit.passes == 'ascending' else ~asc
            tsec = np.round(t[sel]).astype(np.int64)
            sel_t = (tsec >= t_start) & (tsec <= t_end)
            out['index'].append(ci[sel][sel_t])
            out['time'].append(tsec[sel_t])
            out['satellite'].append(np.full(int(sel_t.sum()), isat, np.int64))
            out['ascending'].append(asc[sel][sel_t])
            out['cross_track_km'].append(-R * beta[sel][sel_t])   # positive = right of the track
    if not out['index'] or sum(a.size for a in out['index']) == 0:
        return empty
    res = {k: np.concatenate(v) for k, v in out.items()}
    # a pass whose closest approach falls on a sample boundary may be found from two samples: keep one
    order = np.lexsort((res['time'], res['index'], res['satellite']))
    res = {k: v[order] for k, v in res.items()}
    dup = np.zeros(res['time'].size, bool)
    dup[1:] = ((res['satellite'][1:] == res['satellite'][:-1]) & (res['index'][1:] == res['index'][:-1])
               & (res['time'][1:] - res['time'][:-1] < 0.25 * orbit.period_s))
    res = {k: v[~dup] for k, v in res.items()}
    order = np.lexsort((res['satellite'], res['index'], res['time']))
    res = {k: v[order] for k, v in res.items()}
    res['time'] = EPOCH + res['time'].astype('timedelta64[s]')
    return res


def overpasses(orbit: Orbit, lat, lon, start, end):
    """(index into lat/lon, time datetime64[s]) of every pass that sees a column centre within the swath in
    [start, end]; the time is the closest approach; one row per pass per column, sorted by time then index."""
    d = overpass_details(orbit, lat, lon, start, end)
    return d['index'], d['time']
