"""Observation bias handling before assimilation: retrievals rescaled to the model's climatology, per sensor and
column, with parameters fitted on a training period and stored in a file that later runs reuse.

Methods (``&observations bias_correction``):

* ``'cdf'``: CDF matching (pytesmo ``CDFMatching``: empirical percentiles of the retrievals and of the model
  equivalent on ``nbins`` bins, linear edge scaling of the outer bins, pairs with both values valid only); a
  retrieval is mapped by the piecewise-linear function through the percentile pairs (extrapolated linearly beyond
  them). Matched retrievals have the model's CDF on the training period.
* ``'seasonal'``: mean/standard-deviation rescaling by calendar month, ``y' = m_ref + (y - m_obs) s_ref / s_obs``
  with the moments of the pairs in the month and its two neighbours (a 3-month window; the whole period where a
  window has fewer than ``min_pairs`` pairs). pytesmo's ``mean_std`` does the same over the whole series; the
  monthly version is written here with numpy.

The observation error is multiplied by the ratio of the standard deviations (model / retrievals) of the same fit,
so that the error stays in proportion to the rescaled signal. A (sensor, column) with fewer than ``min_pairs``
training pairs gets no parameters: its retrievals are left out of the assimilation and counted.

The reference is the model itself (the open-loop run, daily means of the model equivalent), the usual choice of
land DA systems (Reichle and Koster 2004; de Rosnay et al. 2013): the filter then corrects anomalies and not the
product's climatology. File layout: netCDF, dimensions ``sensor``, ``column``, ``bin``, ``month``; see
docs/observations.md.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..output import atomic_path

__all__ = ['BiasParameters', 'fit', 'read_bias', 'write_bias', 'METHODS']

METHODS = ('cdf', 'seasonal')
_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')


@dataclasses.dataclass
class BiasParameters:
    method: str
    sensors: tuple                  # sensor names (index k)
    column: np.ndarray              # (ncol,) global columns, sorted
    n_pairs: np.ndarray             # (nsensor, ncol) training pairs used
    x_perc: np.ndarray              # (nsensor, ncol, nbins + 1) retrieval percentiles (cdf), NaN = unused
    y_perc: np.ndarray              # (nsensor, ncol, nbins + 1) model percentiles (cdf)
    moments: np.ndarray             # (nsensor, ncol, 12, 4) obs mean, obs std, ref mean, ref std (seasonal)
    error_factor: np.ndarray        # (nsensor, ncol, 12) multiplier of the observation error
    train_start: str = ''
    train_end: str = ''
    min_pairs: int = 30

    def fitted(self, k, pos):
        return self.n_pairs[k, pos] >= self.min_pairs

    def apply(self, sensor, column, time, value):
        """(rescaled value, error factor) of retrievals (arrays of sensor index, global column, datetime64, m3 m-3);
        NaN where the (sensor, column) has no parameters."""
        sensor = np.asarray(sensor, dtype=np.int64)
        column = np.asarray(column, dtype=np.int64)
        value = np.asarray(value, dtype=np.float64)
        pos = np.searchsorted(self.column, column)
        known = (pos < self.column.size) & (self.column[np.minimum(pos, self.column.size - 1)] == column)
        pos = np.where(known, pos, 0)
        month = (np.asarray(time, dtype='datetime64[M]').astype(np.int64) % 12)
        ok = known & (self.n_pairs[sensor, pos] >= self.min_pairs)
        out = np.full(value.shape, np.nan)
        if self.method == 'cdf':
            for k, p in set(zip(sensor[ok].tolist(), pos[ok].tolist())):
                sel = ok & (sensor == k) & (pos == p)
                out[sel] = _piecewise(self.x_perc[k, p], self.y_perc[k, p], value[sel])
        else:
            m = self.moments[sensor, pos, month]        # (n, 4)
            scale = np.where(m[:, 1] > 0, m[:, 3] / np.where(m[:, 1] > 0, m[:, 1], 1.0), 1.0)
            out = np.where(ok, m[:, 2] + (value - m[:, 0]) * scale, np.nan)
        fac = np.where(ok, self.error_factor[sensor, pos, month], np.nan)
        return out, fac


def _piecewise(xp, yp, x):
    """pytesmo CDFMatching.predict with stored percentiles: linear through (xp, yp), extrapolated linearly."""
    from pytesmo.cdf_matching import CDFMatching

    cm = CDFMatching(nbins=len(xp) - 1)
    cm.x_perc_, cm.y_perc_ = np.asarray(xp, dtype=float), np.asarray(yp, dtype=float)
    return cm.predict(np.asarray(x, dtype=float))


def fit(method, sensors, columns, sensor, column, time, obs, ref, *, nbins=20, min_pairs=30, train_start=None,
        train_end=None) -> BiasParameters:
    """Fit the parameters from training pairs (arrays: sensor index, global column, datetime64 time, retrieval and
    model equivalent in m3 m-3) for every (sensor, column); pairs outside [train_start, train_end) are ignored."""
    from pytesmo.cdf_matching import CDFMatching

    if method not in METHODS:
        raise UserError(f"bias correction method '{method}': expected one of {', '.join(METHODS)}")
    columns = np.unique(np.asarray(columns, dtype=np.int64))
    sensor, column = np.asarray(sensor, dtype=np.int64), np.asarray(column, dtype=np.int64)
    time = np.asarray(time, dtype='datetime64[s]')
    obs, ref = np.asarray(obs, dtype=float), np.asarray(ref, dtype=float)
    keep = np.isfinite(obs) & np.isfinite(ref) & np.isin(column, columns)
    if train_start is not None:
        keep &= time >= np.datetime64(train_start, 's')
    if train_end is not None:
        keep &= time < np.datetime64(train_end, 's')
    ns, nc = len(sensors), columns.size
    n_pairs = np.zeros((ns, nc), dtype=np.int64)
    xp = np.full((ns, nc, nbins + 1), np.nan)
    yp = np.full((ns, nc, nbins + 1), np.nan)
    mom = np.full((ns, nc, 12, 4), np.nan)
    efac = np.full((ns, nc, 12), np.nan)
    pos = np.searchsorted(columns, column)
    month = time.astype('datetime64[M]').astype(np.int64) % 12
    for k in range(ns):
        for p in np.unique(pos[keep & (sensor == k)]):
            sel = keep & (sensor == k) & (pos == p)
            x, y, mo = obs[sel], ref[sel], month[sel]
            n_pairs[k, p] = x.size
            if x.size < min_pairs or np.std(x) == 0:
                n_pairs[k, p] = min(x.size, min_pairs - 1)
                continue
            if method == 'cdf':
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')   # pytesmo warns when it resizes bins for short series
                    cm = CDFMatching(nbins=nbins, minobs=max(5, min_pairs // 6), linear_edge_scaling=True,
                                     combine_invalid=True).fit(x, y)
                xp[k, p], yp[k, p] = cm.x_perc_, cm.y_perc_
                efac[k, p] = np.std(y) / np.std(x)
            else:
                whole = (x.mean(), x.std(), y.mean(), y.std())
                for m in range(12):
                    win = np.isin(mo, [(m - 1) % 12, m, (m + 1) % 12])
                    mm = (x[win].mean(), x[win].std(), y[win].mean(), y[win].std()) if win.sum() >= min_pairs \
                        and x[win].std() > 0 else whole
                    mom[k, p, m] = mm
                    efac[k, p, m] = mm[3] / mm[1]
    fmt = (lambda t: '' if t is None else str(np.datetime64(t, 's')))
    return BiasParameters(method, tuple(sensors), columns, n_pairs, xp, yp, mom, efac, fmt(train_start),
                          fmt(train_end), int(min_pairs))


def write_bias(path, b: BiasParameters) -> Path:
    """Write the parameters to netCDF-4 atomically."""
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, 'w') as nc:
            nc.createDimension('sensor', len(b.sensors))
            nc.createDimension('column', b.column.size)
            nc.createDimension('bin', b.x_perc.shape[2])
            nc.createDimension('month', 12)
            nc.createDimension('moment', 4)
            for name, dt, dims, data, units, ln in (
                    ('column', 'i4', ('column',), b.column, '1', 'global domain column'),
                    ('n_pairs', 'i4', ('sensor', 'column'), b.n_pairs, '1', 'training pairs (retrieval, model)'),
                    ('x_perc', 'f8', ('sensor', 'column', 'bin'), b.x_perc, 'm3 m-3', 'retrieval percentiles'),
                    ('y_perc', 'f8', ('sensor', 'column', 'bin'), b.y_perc, 'm3 m-3', 'model percentiles'),
                    ('moments', 'f8', ('sensor', 'column', 'month', 'moment'), b.moments, 'm3 m-3',
                     'monthly obs mean, obs std, model mean, model std (3-month windows)'),
                    ('error_factor', 'f8', ('sensor', 'column', 'month'), b.error_factor, '1',
                     'multiplier of the observation error (model std / retrieval std)')):
                v = nc.createVariable(name, dt, dims)
                v.units, v.long_name = units, ln
                v[:] = data
            from ..output import global_attributes

            attrs = global_attributes('colmda observation bias correction parameters', method=b.method,
                                      sensors=','.join(b.sensors), train_start=b.train_start,
                                      train_end=b.train_end, min_pairs=np.int32(b.min_pairs))
            attrs['history'] = (_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
                                + ' written by colmda')
            nc.setncatts(attrs)
    return path


def read_bias(path) -> BiasParameters:
    from .format import open_netcdf

    nc = open_netcdf(path, 'bias correction')
    try:
        for att in ('method', 'sensors'):
            if att not in nc.ncattrs():
                raise UserError(f"{path}: global attribute '{att}' missing (not a colmda bias correction file)")
        for v in ('column', 'n_pairs', 'x_perc', 'y_perc', 'moments', 'error_factor'):
            if v not in nc.variables:
                raise UserError(f"{path}: variable '{v}' missing (not a colmda bias correction file)")
        g = {k: np.asarray(nc[k][:]) for k in ('column', 'n_pairs', 'x_perc', 'y_perc', 'moments', 'error_factor')}
        return BiasParameters(str(nc.method), tuple(str(nc.sensors).split(',')), g['column'].astype(np.int64),
                              g['n_pairs'].astype(np.int64), g['x_perc'], g['y_perc'], g['moments'],
                              g['error_factor'], str(getattr(nc, 'train_start', '')),
                              str(getattr(nc, 'train_end', '')), int(getattr(nc, 'min_pairs', 30)))
    finally:
        nc.close()


def model_daily_equivalent(rundir, columns, lat, lon, weights_by_sensor):
    """Daily model equivalents from the history files of a finished run (``SoilMoistV``): returns (day start
    times datetime64[s] (nday,), array (nsensor, nday, ncol)) for the given global columns (points or grid layout;
    columns located by their centre coordinates in a grid file)."""
    import netCDF4

    from ..evaluation.history import interval_starts, mean_files, soil_moisture_array

    files = mean_files(rundir)
    if not files:
        raise UserError(f"&observations bias_reference_run = '{rundir}': no history file in {Path(rundir, 'history')}"
                        " (run the open loop first)")
    times, vals = [], []
    for f in files:
        with netCDF4.Dataset(f) as nc:
            if 'SoilMoistV' not in nc.variables:
                raise UserError(f"{f}: variable 'SoilMoistV' missing; the reference run needs &output variables "
                                "with 'SoilMoistV' (or the 'soil' group)")
            t = interval_starts(nc, f)
            sm = soil_moisture_array(nc)
            if 'column' in nc.variables and sm.ndim == 3:
                hcol = np.asarray(nc['column'][:], dtype=np.int64)
                idx = np.searchsorted(hcol, columns)
                if np.any(idx >= hcol.size) or np.any(hcol[np.minimum(idx, hcol.size - 1)] != columns):
                    raise UserError(f"{f}: the reference run does not hold all run columns")
                sm = sm[:, :, idx]
            else:
                hl, ho = np.asarray(nc['lat'][:]), np.asarray(nc['lon'][:])
                j = np.abs(hl[None, :] - np.asarray(lat)[:, None]).argmin(1)
                i = np.abs(np.mod(ho[None, :] - np.asarray(lon)[:, None] + 180, 360) - 180).argmin(1)
                sm = sm[:, :, j, i]
            times.append(t)
            vals.append(sm)
    t = np.concatenate(times)
    sm = np.concatenate(vals, axis=0)                              # (ntime, nlayer, ncol)
    out = np.stack([np.einsum('l,tlc->tc', w[: sm.shape[1]], sm) for w in weights_by_sensor])
    day = t.astype('datetime64[D]')
    uday, inv = np.unique(day, return_inverse=True)
    daily = np.zeros((out.shape[0], uday.size, out.shape[2]))
    np.add.at(daily, (slice(None), inv), out)
    daily /= np.bincount(inv)[None, :, None]
    return uday.astype('datetime64[s]'), daily


def bias_method(settings) -> str:
    """&observations bias_correction with 'auto' resolved: CDF matching for product files (real data), none for
    colmda observation files (twin experiments)."""
    o = settings.observations
    if o.bias_correction == "auto":
        return "cdf" if o.products else "none"
    return o.bias_correction


def parameters_for_run(settings, tables, run_columns, weights, lat, lon) -> BiasParameters:
    """The bias parameters of a run (&observations bias_correction, bias_file, bias_reference_run,
    bias_train_start/end): read from ``bias_file`` when it exists (method and sensors must match), else fitted on
    the open-loop run ``bias_reference_run`` (daily model equivalents at the retrieval days) and written there."""
    o = settings.observations
    method = bias_method(settings)
    sensors = tuple(o.sensors)
    where = f"{settings.source}: &observations"
    if not o.bias_file:
        raise UserError(f"{where} bias_correction = '{method}' needs bias_file (where the fitted parameters are "
                        "stored and reused); set bias_correction = 'none' to assimilate the retrievals as they are")
    if Path(o.bias_file).is_file():
        b = read_bias(o.bias_file)
        if b.method != method or b.sensors != sensors:
            raise UserError(f"{o.bias_file}: bias parameters for method '{b.method}' and sensors {','.join(b.sensors)}"
                            f", but the run asks for '{method}' and {','.join(sensors)}; delete the file to refit")
        return b
    if not o.bias_reference_run:
        raise UserError(f"{where} bias_file = '{o.bias_file}' does not exist and bias_reference_run is empty: give "
                        "the directory of an open-loop run to fit the parameters on")
    run_columns = np.asarray(run_columns, dtype=np.int64)
    days, daily = model_daily_equivalent(o.bias_reference_run, run_columns, lat, lon,
                                         weights([t.sensing_depth for t in tables]))
    parts = {k: [] for k in ('sensor', 'column', 'time', 'obs', 'ref')}
    for k, t in enumerate(tables):
        value, _ = t.volumetric()
        d = np.searchsorted(days, t.time.astype('datetime64[D]').astype('datetime64[s]'))
        p = np.searchsorted(run_columns, t.column)
        ok = (d < days.size) & (p < run_columns.size)
        ok &= (days[np.minimum(d, days.size - 1)] == t.time.astype('datetime64[D]')) & \
            (run_columns[np.minimum(p, run_columns.size - 1)] == t.column) & (t.quality & o.reject_flags == 0)
        parts['sensor'].append(np.full(ok.sum(), k))
        parts['column'].append(t.column[ok])
        parts['time'].append(t.time[ok])
        parts['obs'].append(value[ok])
        parts['ref'].append(daily[k, d[ok], p[ok]])
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    b = fit(method, sensors, run_columns, cat['sensor'], cat['column'], cat['time'], cat['obs'], cat['ref'],
            train_start=settings.observations.bias_train_start, train_end=settings.observations.bias_train_end)
    if not np.any(b.n_pairs >= b.min_pairs):
        raise UserError(f"{where} bias_reference_run = '{o.bias_reference_run}': no sensor and column has "
                        f"{b.min_pairs} retrievals on days of the run's history (training period "
                        f"{b.train_start or 'all'} .. {b.train_end or 'all'})")
    write_bias(o.bias_file, b)
    import logging
    logging.getLogger('colmda').info('bias correction (%s) fitted on %s: %d of %d sensor-column pairs, written to %s',
                                     method, o.bias_reference_run, int((b.n_pairs >= b.min_pairs).sum()),
                                     b.n_pairs.size, o.bias_file)
    return b
