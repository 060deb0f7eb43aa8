"""Time interpolation of forcing records to the model step.

Model step k covers [t0 + k dt, t0 + (k+1) dt). The core takes step means of precipitation and shortwave
and mid-step values of the other variables. From a :class:`colmda.forcing.readers.ForcingChunk`:

* state-like variables (tair, qair, psurf, wind, lwdown, extras such as lai): linear interpolation in time
  to mid-step, each record placed at the centre of its interval (``forward_mean``/``backward_mean``) or
  at its stamp (``instant``); constant beyond the first/last record centre;
* precipitation: block (piecewise-constant) - each step gets the exact time-overlap average of the
  records, so totals are conserved for any step and record lengths;
* shortwave: each record's energy is distributed over its interval in proportion to
  ``w(t) = max(cos Z - mu_f, 0) + mu_f [cos Z > 0]`` (the cosine of the solar zenith angle with a floor
  ``mu_f = 0.02`` while the sun is up, so that a low sun at the edge of an interval does not receive the
  whole interval's energy), integrated exactly (:func:`colmda.solar.mean_cos_zenith`'s antiderivative);
  the interval mean is conserved. A record with shortwave > 0 but no sun at all in its interval
  (night-time sensor offset) is set to zero.

Instantaneous precipitation or shortwave records are treated as means over the interval centred on the
stamp.
"""

from __future__ import annotations

import numpy as np

from .. import solar
from ..layout import F_COSZEN, F_LWDOWN, F_PREC, F_PSURF, F_QAIR, F_SWDOWN, F_TAIR, F_WIND, NF
from .readers import CORE_VARIABLES, ForcingError

__all__ = ['record_edges', 'record_centres', 'interp_linear', 'interp_block_mean', 'interp_shortwave',
           'to_model_forcing', 'ReaderForcing', 'MU_FLOOR']

MU_FLOOR = 0.02
_F_ROW = {'tair': F_TAIR, 'qair': F_QAIR, 'psurf': F_PSURF, 'prec': F_PREC, 'wind': F_WIND,
          'swdown': F_SWDOWN, 'lwdown': F_LWDOWN}


def record_edges(stamps_s, interval, convention):
    """Start/end (s) of each record's interval: forward [t, t+dt), backward (t-dt, t], instant [t-dt/2, t+dt/2)."""
    t = np.asarray(stamps_s, dtype=np.float64)
    if convention == 'forward_mean':
        return t, t + interval
    if convention == 'backward_mean':
        return t - interval, t
    if convention == 'instant':
        return t - 0.5 * interval, t + 0.5 * interval
    raise ForcingError(f"unknown time convention '{convention}' (expected instant, forward_mean or backward_mean)")


def record_centres(stamps_s, interval, convention):
    a, b = record_edges(stamps_s, interval, convention)
    return 0.5 * (a + b)


def interp_linear(src_t, values, tgt_t):
    """Linear interpolation in time, column by column; constant outside [src_t[0], src_t[-1]].

    ``src_t`` (nt,) increasing, ``values`` (nt, ncol), ``tgt_t`` (ntgt,) -> (ntgt, ncol).
    """
    src_t = np.asarray(src_t, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    tgt = np.asarray(tgt_t, dtype=np.float64)
    if src_t.size == 1:
        return np.repeat(v[:1], tgt.size, axis=0)
    j = np.clip(np.searchsorted(src_t, tgt, side='right') - 1, 0, src_t.size - 2)
    w = np.clip((tgt - src_t[j]) / (src_t[j + 1] - src_t[j]), 0.0, 1.0)[:, None]
    return (1.0 - w) * v[j] + w * v[j + 1]


def interp_block_mean(src_edges, values, tgt_edges):
    """Conservative (time-overlap weighted) average of piecewise-constant records over target intervals.

    ``src_edges`` (nt+1,) contiguous record edges, ``values`` (nt, ncol), ``tgt_edges`` (ntgt+1,) ->
    (ntgt, ncol). Outside the records the rate is taken as zero.
    """
    e = np.asarray(src_edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(tgt_edges, dtype=np.float64)
    cum = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v * np.diff(e)[:, None], axis=0)])
    j = np.clip(np.searchsorted(e, t, side='right') - 1, 0, e.size - 2)
    frac = np.clip((t - e[j]) / (e[j + 1] - e[j]), 0.0, 1.0)[:, None]
    acc = cum[j] + frac * (cum[j + 1] - cum[j])
    return np.diff(acc, axis=0) / np.diff(t)[:, None]


def _weight_antiderivative(a, b, h):
    f_mu, _ = solar._antiderivatives(a - MU_FLOOR, b, h)
    _, f_lit = solar._antiderivatives(a, b, h)
    return f_mu + MU_FLOOR * f_lit


def interp_shortwave(src_edges, values, tgt_edges, lat, lon):
    """Distribute interval-mean shortwave within each interval with the solar zenith angle, conserving it.

    ``src_edges`` (nt+1,) s, ``values`` (nt, ncol) W m-2, ``tgt_edges`` (ntgt+1,) s, ``lat``/``lon`` (ncol,)
    degrees -> target interval means (ntgt, ncol). See the module docstring for the weight function.
    """
    e = np.asarray(src_edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(tgt_edges, dtype=np.float64)
    s0, s1 = e[:-1], e[1:]
    dec, eot, _ = solar._sun(0.5 * (s0 + s1))
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))[None, :]
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))[None, :]
    a = np.sin(phi) * np.sin(dec)[:, None]
    b = np.maximum(np.cos(phi) * np.cos(dec)[:, None], 0.0)
    om = 2.0 * np.pi / 86400.0
    h0 = (om * np.mod(s0, 86400.0) + np.deg2rad(eot / 4.0) - np.pi)[:, None] + lam
    w0 = _weight_antiderivative(a, b, h0)
    wtot = _weight_antiderivative(a, b, h0 + (om * (s1 - s0))[:, None]) - w0
    v = np.where(wtot > 0, v, 0.0)
    cum = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v * (s1 - s0)[:, None], axis=0)])
    j = np.clip(np.searchsorted(e, t, side='right') - 1, 0, e.size - 2)
    dtj = np.clip(t - e[j], 0.0, (s1 - s0)[j])
    part = _weight_antiderivative(a[j], b[j], h0[j] + (om * dtj)[:, None]) - w0[j]
    with np.errstate(divide='ignore', invalid='ignore'):
        frac = np.where(wtot[j] > 0, part / np.where(wtot[j] > 0, wtot[j], 1.0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    acc = cum[j] + frac * (cum[j + 1] - cum[j])
    return np.maximum(np.diff(acc, axis=0) / np.diff(t)[:, None], 0.0)


def to_model_forcing(chunk, start, nsteps, dt, extras=()):
    """Core forcing (NF, nsteps, ncol) Fortran order from a :class:`ForcingChunk`, plus a dict of extras
    (e.g. ``('lai',)``, interpolated linearly) of shape (nsteps, ncol)."""
    t0 = float(solar.to_seconds(np.datetime64(start, 's') if isinstance(start, str) else start))
    edges = t0 + dt * np.arange(nsteps + 1, dtype=np.float64)
    mid = 0.5 * (edges[:-1] + edges[1:])
    stamps = chunk.seconds()
    ncol = chunk.lat.size
    forc = np.empty((NF, nsteps, ncol), order='F')
    for name in CORE_VARIABLES:
        if name not in chunk.data:
            raise ForcingError(f"{chunk.source}: variable '{name}' is not provided by the reader")
        conv = chunk.conventions[name]
        vals = chunk.data[name]
        if name in ('prec', 'swdown'):
            a, b = record_edges(stamps, chunk.interval, conv)
            src_edges = np.concatenate([a, b[-1:]])
            if name == 'prec':
                forc[_F_ROW[name]] = interp_block_mean(src_edges, vals, edges)
            else:
                forc[_F_ROW[name]] = interp_shortwave(src_edges, vals, edges, chunk.lat, chunk.lon)
        else:
            forc[_F_ROW[name]] = interp_linear(record_centres(stamps, chunk.interval, conv), vals, mid)
    cz, mu, lit, _ = solar.step_geometry(chunk.lat, chunk.lon, edges[:-1], dt)
    forc[F_COSZEN] = solar.model_coszen(cz, mu, lit)
    ext = {}
    for name in extras:
        if name not in chunk.data:
            raise ForcingError(f"{chunk.source}: extra variable '{name}' is not provided by the reader")
        ext[name] = interp_linear(record_centres(stamps, chunk.interval, chunk.conventions[name]),
                                  chunk.data[name], mid)
    return forc, ext


class ReaderForcing:
    """A :class:`ForcingReader` as a forcing source with the weather generator's interface.

    ``ReaderForcing(reader, dt=1800).generate(start, nsteps, columns=None)`` -> (NF, nsteps, ncol).
    ``columns`` are the reader's column indices (a site file has one, index 0). The model window must lie
    within the data; ``max_extrapolation_s`` (default 0) allows that many seconds beyond either end, filled
    with the first/last record (e.g. 3600 to run a calendar year in UTC from a file in local time).
    """

    def __init__(self, reader, dt=1800, max_extrapolation_s=0):
        if int(dt) != dt or dt <= 0:
            raise ValueError(f'dt must be a positive whole number of seconds, got {dt}')
        self.reader = reader
        self.dt = int(dt)
        self.max_extrapolation_s = float(max_extrapolation_s)

    def _chunk(self, start, nsteps, columns):
        r = self.reader
        t0 = np.datetime64(start, 's')
        t1 = t0 + np.timedelta64(int(nsteps) * self.dt, 's')
        lo, hi = r.coverage()
        tol = np.timedelta64(int(self.max_extrapolation_s), 's')
        if t0 < lo - tol or t1 > hi + tol:
            raise ForcingError(f'{r.path}: forcing covers {lo} .. {hi} UTC; the run needs {t0} .. {t1} UTC '
                               f'(time stamps converted to UTC; see max_extrapolation_s)')
        ch = r.read(t0, t1, columns)
        if t0 < lo or t1 > hi:
            ch = _pad(ch, t0, t1)
        return ch

    def generate(self, start, nsteps, columns=None):
        forc, _ = to_model_forcing(self._chunk(start, nsteps, columns), start, nsteps, self.dt)
        return forc

    def extras(self, start, nsteps, columns=None, names=('lai',)):
        """Extra variables (e.g. LAI) at mid-step: dict name -> (nsteps, ncol)."""
        avail = tuple(n for n in names if n in self.reader.variables)
        _, ext = to_model_forcing(self._chunk(start, nsteps, columns), start, nsteps, self.dt, avail)
        return ext


def _pad(ch, t0, t1):
    """Repeat the first/last record to cover [t0, t1] (records shifted by whole intervals)."""
    iv = np.timedelta64(ch.interval, 's')
    times, data, qc = ch.times, dict(ch.data), dict(ch.qc)
    n_before = int(np.ceil(max(0, (times[0] - t0) / iv))) + 1
    n_after = int(np.ceil(max(0, (t1 - times[-1]) / iv))) + 1
    before = times[0] - iv * np.arange(n_before, 0, -1)
    after = times[-1] + iv * np.arange(1, n_after + 1)
    for d in (data, qc):
        for k, v in d.items():
            d[k] = np.concatenate([np.repeat(v[:1], n_before, axis=0), v, np.repeat(v[-1:], n_after, axis=0)])
    from .readers import ForcingChunk
    return ForcingChunk(ch.source, np.concatenate([before, times, after]), ch.interval, data, ch.conventions,
                        ch.lat, ch.lon, qc)
