"""Pieces shared by the product readers: extra quality bits, pixel-to-cell averaging, time windows, file opening.

Every reader turns the pixels of a product file into *pixel arrays* (lat, lon, time, value, error, quality bits
in the colmda convention of :mod:`colmda.obs.format` plus the bits below) and hands them to
:func:`aggregate_to_cells`, which averages the usable pixels of one pass over one model cell into one row of an
:class:`~colmda.obs.format.ObsTable`, keeping the pixel count and spread.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..format import (FLAG_DENSE_VEGETATION, FLAG_FROZEN, FLAG_NAMES, FLAG_RANGE, FLAG_SNOW, ObsTable,
                      write_obs)

log = logging.getLogger('colmda.obs.readers')

#: further quality bits set by the readers of real products (the simulated sensors use only 1, 2, 4, 8)
FLAG_QUALITY = 16   # the product's own retrieval-quality flag says "not recommended" / low confidence
FLAG_RFI = 32       # radio-frequency interference detected by the product
FLAG_SURFACE = 64   # surface the retrieval is unreliable over: open water, urban, ice, strong topography, wetland
READER_FLAG_NAMES = dict(FLAG_NAMES)
READER_FLAG_NAMES.update({FLAG_QUALITY: 'product_quality', FLAG_RFI: 'rfi', FLAG_SURFACE: 'surface'})

#: pixels with any of these bits are left out of the cell average by default (dense vegetation and the
#: product's own range clipping are kept as bits of the row: the filter decides with &observations reject_flags)
DEFAULT_PIXEL_REJECT = FLAG_FROZEN | FLAG_SNOW | FLAG_QUALITY | FLAG_RFI | FLAG_SURFACE

#: retrievals of one model cell whose times differ by less than this belong to one pass (s); a satellite crosses a
#: 1.4 deg cell in about half a minute, two Metops follow each other 50 min apart, orbits are 100 min long
DEFAULT_PASS_GAP_S = 20 * 60

_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')


@dataclasses.dataclass
class ProductObservations:
    """What a reader returns: the observation table on model columns and, per row, the pixels behind it.

    ``table`` is the colmda :class:`ObsTable` (one row per pass over one model cell); ``n_pixels`` (int) the
    number of usable pixels averaged into each row (0 for a row whose pixels were all flagged: value NaN, the
    flags of those pixels in ``quality``); ``pixel_std`` the standard deviation (ddof 0) of the usable pixels,
    same units as ``value``; ``counts`` how many pixels were read, left out and why (logged as well);
    ``product`` the registry name, ``files`` the files read."""

    table: ObsTable
    n_pixels: np.ndarray
    pixel_std: np.ndarray
    counts: dict
    product: str
    files: list

    def __len__(self):
        return len(self.table)


def as_datetime64(t, what='time') -> np.datetime64 | None:
    if t is None:
        return None
    try:
        return np.datetime64(t, 's')
    except (ValueError, TypeError):
        raise UserError(f"{what} = {t!r} is not a date/time (expected e.g. '2017-01-01T00:00:00')") from None


def cf_times(values, units: str, path, name: str, calendar: str = 'standard') -> np.ndarray:
    """CF ``<unit> since <date> [zone]`` numbers -> datetime64[s] (UTC), decoded by cftime
    (:mod:`colmda.timeaxis`); units that are not CF time units are a UserError naming the file and variable."""
    from ...timeaxis import decode

    return decode(np.asarray(values, dtype=np.float64), str(units), calendar, where=f"{path}: variable '{name}'")


def open_nc(path, product: str):
    """Open a netCDF file (auto-masking off); missing or unreadable files are UserErrors naming the product."""
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {product} file not found")
    try:
        nc = netCDF4.Dataset(path, 'r')
    except (OSError, RuntimeError) as e:
        raise UserError(f"{path}: not a readable netCDF file for {product} ({e})") from None
    nc.set_auto_mask(False)
    nc.set_auto_scale(False)
    return nc


def open_h5(path, product: str):
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {product} file not found")
    try:
        return h5py.File(path, 'r')
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable HDF5 file for {product} ({e})") from None


def require(container, names, path, product, where=''):
    """Raise a UserError naming the first of ``names`` missing from ``container`` (netCDF variables, HDF5 group)."""
    for n in names:
        if n not in container:
            raise UserError(f"{path}: variable '{where}{n}' missing; is this a {product} file?")


def check_units(path, name, units, accepted):
    u = '' if units is None else (units.decode() if isinstance(units, bytes) else str(units)).strip()
    if u not in accepted:
        raise UserError(f"{path}: variable '{name}' has units {u!r}, expected {' or '.join(repr(a) for a in accepted)}")
    return u


def model_porosity(domain, columns=None) -> np.ndarray:
    """Porosity (m3 m-3) of the model's top soil layer for global ``columns`` (default the domain's): the same
    pedotransfer function and texture the run uses (:func:`colmda.soilparams.soil_parameters`)."""
    from ...layout import SP_THETA_S
    from ...soilparams import soil_parameters

    cp = domain.column_params(columns)
    return soil_parameters(cp.sand, cp.clay, organic=cp.organic, nl=1)[SP_THETA_S, 0, :]


def cell_of(domain, lat, lon) -> np.ndarray:
    """Global column index of the domain-grid cell holding each pixel, -1 outside the grid."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    j = np.floor((lat - domain.lat_bnds[0, 0]) / domain.dlat).astype(np.int64)
    j = np.where(lat == domain.lat_bnds[-1, 1], domain.nlat - 1, j)
    rel = np.mod(lon - domain.lon_bnds[0, 0], 360.0)
    i = np.floor(rel / domain.dlon).astype(np.int64)
    ok = np.isfinite(lat) & np.isfinite(lon) & (j >= 0) & (j < domain.nlat) & (i >= 0) & (i < domain.nlon)
    return np.where(ok, j * domain.nlon + np.where(ok, i, 0), -1)


def run_columns(domain, columns) -> np.ndarray:
    cols = domain.land_columns() if columns is None else np.unique(np.asarray(columns, dtype=np.int64))
    if cols.size == 0:
        raise UserError("observation reader: no model column given")
    return cols


def aggregate_to_cells(product, sensor, quantity, sensing_depth, domain, columns, *, lat, lon, time, value, error,
                       quality, porosity=None, start=None, end=None, pixel_reject=DEFAULT_PIXEL_REJECT,
                       pass_gap_s=DEFAULT_PASS_GAP_S, counts=None, files=(), source='') -> ProductObservations:
    """Average the pixels of each pass over each model cell into one row.

    Pixels (1-D arrays): ``lat``/``lon`` deg, ``time`` datetime64[s] (the pixel's own acquisition time), ``value``
    and ``error`` in ``quantity`` units (NaN = no retrieval), ``quality`` colmda bits. Steps, each counted:

    1. pixels outside [start, end], outside the run's columns (``columns``, default the domain's land columns);
    2. pixels with a NaN value and no frozen/snow bit (nothing retrieved, nothing to report) are dropped;
    3. per cell, pixels sorted by time are split into passes where consecutive times differ by more than
       ``pass_gap_s``;
    4. per pass: usable pixels (finite value, no bit of ``pixel_reject``) give value = mean, error = mean of the
       pixel errors that are given (errors of neighbouring pixels of one pass are correlated, so they are not
       divided by sqrt(n); NaN when no usable pixel has one), ``pixel_std`` = std (ddof 0), time = mean pixel time (to the second), quality = the bits set in
       at least half of the usable pixels; a pass without usable pixel gives value NaN, error NaN and the OR of its
       pixels' bits (so a frozen cell is reported as frozen and the filter counts it).

    ``porosity`` (saturation products): a scalar or one value per run column in sorted order
    (``np.unique(columns)``; :func:`colmda.obs.readers.ascat.column_porosity` reorders a user's array).
    """
    counts = dict(counts or {})
    cols = run_columns(domain, columns)
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    time = np.asarray(time, dtype='datetime64[s]').ravel()
    value = np.asarray(value, dtype=np.float64).ravel()
    error = np.broadcast_to(np.asarray(error, dtype=np.float64).ravel(), value.shape).ravel()
    quality = np.broadcast_to(np.asarray(quality, dtype=np.int64).ravel(), value.shape).ravel()
    time = np.broadcast_to(time, value.shape).ravel()
    for name, a in (('lat', lat), ('lon', lon), ('time', time), ('error', error), ('quality', quality)):
        if a.size != value.size:
            raise ValueError(f"pixel array '{name}' has {a.size} values, expected {value.size}")
    counts.setdefault('pixels_read', int(value.size))

    keep = ~np.isnat(time)
    if not keep.all():
        counts['pixels_without_time'] = int((~keep).sum())
    t0, t1 = as_datetime64(start, 'start'), as_datetime64(end, 'end')
    if t0 is not None or t1 is not None:
        inside = np.ones(value.size, dtype=bool)
        if t0 is not None:
            inside &= time >= t0
        if t1 is not None:
            inside &= time <= t1
        counts['pixels_outside_time'] = int((keep & ~inside).sum())
        keep &= inside
    g = cell_of(domain, lat, lon)
    pos = np.searchsorted(cols, g)
    in_run = (g >= 0) & (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == g)
    counts['pixels_outside_columns'] = int((keep & ~in_run).sum())
    keep &= in_run
    reportable = np.isfinite(value) | ((quality & (FLAG_FROZEN | FLAG_SNOW)) != 0)
    counts['pixels_without_retrieval'] = int((keep & ~reportable).sum())
    keep &= reportable
    usable = keep & np.isfinite(value) & ((quality & pixel_reject) == 0)
    for bit, name in READER_FLAG_NAMES.items():
        if bit & pixel_reject:
            counts[f'pixels_flagged_{name}'] = int((keep & ((quality & bit) != 0)).sum())
    counts['pixels_used'] = int(usable.sum())

    idx = np.flatnonzero(keep)
    empty = ObsTable.empty(sensor, quantity, sensing_depth, source=source)
    if idx.size == 0:
        counts['rows'] = 0
        log.warning('%s: no pixel over the run columns and period in %d file(s) %s', product, len(files), _fmt(counts))
        return ProductObservations(empty, np.zeros(0, np.int64), np.zeros(0), counts, product, list(files))
    tsec = (time[idx] - _EPOCH).astype(np.int64)
    order = np.lexsort((tsec, pos[idx]))
    idx, tsec = idx[order], tsec[order]
    cpos = pos[idx]
    new = np.ones(idx.size, dtype=bool)
    new[1:] = (cpos[1:] != cpos[:-1]) | (np.diff(tsec) > pass_gap_s)
    grp = np.cumsum(new) - 1
    ngrp = int(grp[-1]) + 1
    u = usable[idx].astype(np.float64)
    n = np.bincount(grp, weights=u, minlength=ngrp)
    v = np.where(usable[idx], value[idx], 0.0)
    e_ok = usable[idx] & np.isfinite(error[idx])          # a pixel without its own error still gives its value
    e = np.where(e_ok, error[idx], 0.0)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.bincount(grp, weights=v, minlength=ngrp) / n
        err = np.bincount(grp, weights=e, minlength=ngrp) / np.bincount(grp, weights=e_ok.astype(float),
                                                                         minlength=ngrp)
        dev = np.where(usable[idx], value[idx] - mean[grp], 0.0)
        std = np.sqrt(np.bincount(grp, weights=dev * dev, minlength=ngrp) / n)
        # time: mean of the usable pixels' times, or of all pixels of a pass without usable pixel
        w_t = np.where(n[grp] > 0, u, 1.0)
        rel = (tsec - tsec[np.flatnonzero(new)][grp]).astype(np.float64)
        tmean = tsec[np.flatnonzero(new)] + np.round(np.bincount(grp, weights=w_t * rel, minlength=ngrp)
                                                     / np.bincount(grp, weights=w_t, minlength=ngrp)).astype(np.int64)
    qual = np.zeros(ngrp, dtype=np.int64)
    q = quality[idx]
    for bit in READER_FLAG_NAMES:
        has = ((q & bit) != 0).astype(np.float64)
        in_usable = np.bincount(grp, weights=has * u, minlength=ngrp)
        in_any = np.bincount(grp, weights=has, minlength=ngrp)
        qual |= np.where(n > 0, (2 * in_usable >= n) & (in_usable > 0), in_any > 0) * bit
    rowcol = cols[cpos[np.flatnonzero(new)]]
    if porosity is None:
        phi = np.full(ngrp, np.nan)
    else:
        p = np.asarray(porosity, dtype=np.float64)
        phi = np.full(ngrp, float(p)) if p.ndim == 0 else p[cpos[np.flatnonzero(new)]]
    table = ObsTable(sensor, quantity, sensing_depth, time=_EPOCH + tmean.astype('timedelta64[s]'), column=rowcol,
                     lat=domain.column_lat(rowcol), lon=domain.column_lon(rowcol),
                     value=np.where(n > 0, mean, np.nan), error=np.where(n > 0, err, np.nan), porosity=phi,
                     quality=qual.astype(np.int32), source=source)
    order = np.lexsort((table.column, table.time.astype(np.int64)))
    counts['rows'] = int(ngrp)
    counts['rows_all_flagged'] = int((n == 0).sum())
    if counts['pixels_used'] == 0:
        log.warning('%s: every pixel over the run columns is flagged %s', product, _fmt(counts))
    else:
        log.info('%s: %s', product, _fmt(counts))
    return ProductObservations(table.subset(order), n.astype(np.int64)[order], np.where(n > 0, std, np.nan)[order],
                               counts, product, list(files))


def _fmt(counts):
    return '(' + ', '.join(f'{k} {v}' for k, v in counts.items()) + ')'


def merge_results(results, product) -> ProductObservations:
    """Rows of several reads of one product (several files), sorted by time then column; counts added up."""
    results = [r for r in results if r is not None]
    if not results:
        raise UserError(f"{product}: no file to read")
    table = ObsTable.concatenate([r.table for r in results])
    if len(results) > 1:
        table.source = f'{product}: {len(results)} files, {Path(results[0].files[0]).name} ... ' \
                       f'{Path(results[-1].files[-1]).name}'
    n = np.concatenate([r.n_pixels for r in results])
    s = np.concatenate([r.pixel_std for r in results])
    order = np.lexsort((table.column, table.time.astype(np.int64)))
    counts = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    files = [f for r in results for f in r.files]
    return ProductObservations(table.subset(order), n[order], s[order], counts, product, files)


def write_product_obs(path, result: ProductObservations) -> Path:
    """Write a reader's result in the colmda observation format (:func:`colmda.obs.format.write_obs`, so
    ``read_obs`` and the assimilation read it) plus ``n_pixels(obs)`` and ``pixel_std(obs)``, the reader's quality
    bits in the ``quality`` attributes and the per-reason pixel counts as global attributes; atomically."""
    import netCDF4

    from ...output import atomic_path

    path = Path(path)
    t = result.table
    with atomic_path(path) as tmp:
        write_obs(tmp, t)
        nc = netCDF4.Dataset(tmp, 'a')
        try:
            v = nc.createVariable('n_pixels', 'i4', ('obs',))
            v.setncatts(dict(long_name='number of product pixels averaged into the retrieval', units='1',
                             coordinates='time lat lon'))
            v[:] = result.n_pixels
            v = nc.createVariable('pixel_std', 'f8', ('obs',), fill_value=np.nan)
            v.setncatts(dict(long_name='standard deviation of the averaged product pixels',
                             units=nc['value'].units, coordinates='time lat lon'))
            v[:] = result.pixel_std
            bits = sorted(READER_FLAG_NAMES)
            nc['quality'].setncatts(dict(flag_masks=np.array(bits, dtype=np.int32),
                                         flag_meanings=' '.join(READER_FLAG_NAMES[b] for b in bits)))
            nc.setncatts({'product': result.product,
                          'product_files': '\n'.join(str(f) for f in result.files)[:60000],
                          **{f'count_{k}': np.int64(c) for k, c in result.counts.items()}})
        finally:
            nc.close()
    return path


__all__ = ['FLAG_QUALITY', 'FLAG_RFI', 'FLAG_SURFACE', 'READER_FLAG_NAMES', 'DEFAULT_PIXEL_REJECT',
           'DEFAULT_PASS_GAP_S', 'ProductObservations', 'aggregate_to_cells', 'merge_results', 'write_product_obs',
           'model_porosity', 'cell_of', 'cf_times', 'FLAG_DENSE_VEGETATION', 'FLAG_RANGE']
