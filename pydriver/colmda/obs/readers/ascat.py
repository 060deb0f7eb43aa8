"""ASCAT surface soil moisture: H SAF CDR cell files (H113, H119, ...) and EUMETSAT L2 SSM swath netCDF.

Both products give the degree of saturation (%) of the top ~2 cm. The rows are ``quantity = 'saturation'``
(value and error in [0, 1]) with the ``porosity`` that converts them to m3 m-3 (:meth:`ObsTable.volumetric`): the
model's top-layer porosity of each column by default (the run's texture and pedotransfer function), or a given
scalar / per-column array.

**H SAF cell files** (TU Wien WARP time series, CF contiguous ragged arrays): per location ``lon``, ``lat``,
``row_size``, ``location_id``; per observation ``time`` (days since 1900-01-01), ``sm`` and ``sm_noise`` (int8
%, missing 127), ``ssf`` (surface state: 0 unknown, 1 unfrozen, 2 frozen, 3 melting / water on the surface, 4
permanent ice), ``conf_flag`` (1 bad SSF, 2 topographic complexity > 50 %, 4 wetland > 50 %, 8 noise > 50 %,
16 sensitivity < 1 dB), ``proc_flag`` (non-zero: the product set sm to NaN). Mapping to colmda bits:

====================================  ==================================
ssf 2                                  FLAG_FROZEN
ssf 3                                  FLAG_SNOW (melting snow / surface water)
ssf 4                                  FLAG_FROZEN | FLAG_SNOW
conf_flag 2 or 4                       FLAG_SURFACE
conf_flag 1, 8 or 16                   FLAG_QUALITY
sm outside valid_range                 FLAG_RANGE
proc_flag != 0 or sm missing           no retrieval (pixel dropped unless frozen/snow)
====================================  ==================================

``corr_flag`` (sm set to 0 or 100 after a small overshoot, wet correction) marks corrections, not doubtful
values, and is not mapped. Error = ``sm_noise`` / 100 (the product's propagated retrieval noise).

**EUMETSAT L2 SSM swath** (``*_ssm_l2.nc``, numRows x numCells, Metop 25 or 12.5 km): ``soil_moisture`` and
``soil_moisture_error`` (%, scale 0.01), time of each row ``utc_line_nodes``; flags: ``frozen_soil_probability``
and ``snow_cover_probability`` (%) above ``probability_threshold`` -> FLAG_FROZEN / FLAG_SNOW, ``wetland_flag`` and
``topography_flag`` (%) above it -> FLAG_SURFACE, ``proc_flag1`` != 0 -> FLAG_QUALITY. A flag at its fill value
(255, outside its valid range: "unknown", e.g. the snow probability of some pixels) sets no bit, as ``ssf`` 0
(unknown) does not in the cell files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..format import FLAG_FROZEN, FLAG_RANGE, FLAG_SNOW
from ._common import (DEFAULT_PASS_GAP_S, DEFAULT_PIXEL_REJECT, FLAG_QUALITY, FLAG_SURFACE, aggregate_to_cells,
                      cell_of, cf_times, check_units, merge_results, model_porosity, open_nc, require, run_columns)

#: sensing depth of C-band backscatter (m): 0.5-2 cm (Wagner et al. 2013), as the simulated C sensor
ASCAT_SENSING_DEPTH = 0.02
_SAT_UNITS = ('degree of saturation (%)', '%', 'percent', 'percentage')


def column_porosity(domain, columns, porosity, product):
    """Porosity per run column: the model's (None), a scalar, or an array of len(columns); validated."""
    cols = run_columns(domain, columns)
    if porosity is None:
        phi = model_porosity(domain, cols)
    else:
        phi = np.asarray(porosity, dtype=np.float64)
        if phi.ndim == 0:
            phi = np.full(cols.size, float(phi))
        else:
            given = np.asarray(domain.land_columns() if columns is None else columns, dtype=np.int64).ravel()
            if phi.shape != given.shape:
                raise UserError(f"{product}: porosity has {phi.size} values, expected one per run column "
                                f"({given.size})")
            if np.unique(given).size != given.size:
                raise UserError(f"{product}: columns repeat a column; give each column once with its porosity")
            phi = phi[np.argsort(given, kind='stable')]     # to the sorted order of the run columns
    if not np.all(np.isfinite(phi) & (phi > 0.05) & (phi < 0.95)):
        raise UserError(f"{product}: porosity must be in (0.05, 0.95) m3 m-3, got values in "
                        f"[{np.nanmin(phi):.3g}, {np.nanmax(phi):.3g}]")
    return cols, phi


def cell_file_pixels(path):
    """Pixel arrays of one H SAF cell file (all locations, all times), colmda bits; see the module docstring."""
    product = 'ASCAT H SAF cell (H113/H119)'
    nc = open_nc(path, product)
    try:
        require(nc.variables, ('row_size', 'lat', 'lon', 'time', 'sm', 'sm_noise', 'conf_flag', 'proc_flag'),
                path, product)
        if 'obs' not in nc.dimensions or 'locations' not in nc.dimensions:
            raise UserError(f"{path}: dimensions 'locations' and 'obs' expected (contiguous ragged array cell file)")
        row_size = np.asarray(nc['row_size'][:], dtype=np.int64)
        nobs = len(nc.dimensions['obs'])
        if row_size.sum() != nobs or np.any(row_size < 0):
            raise UserError(f"{path}: variable 'row_size' sums to {int(row_size.sum())}, expected the {nobs} "
                            "observations of dimension 'obs'")
        lat = np.repeat(np.asarray(nc['lat'][:], dtype=np.float64), row_size)
        lon = np.repeat(np.asarray(nc['lon'][:], dtype=np.float64), row_size)
        for name in ('sm', 'sm_noise'):
            check_units(path, name, getattr(nc[name], 'units', None), _SAT_UNITS)
        time = cf_times(nc['time'][:], getattr(nc['time'], 'units', ''), path, 'time')
        sm_raw = np.asarray(nc['sm'][:]).astype(np.float64)
        miss = float(getattr(nc['sm'], 'missing_value', 127))
        lo, hi = (float(x) for x in getattr(nc['sm'], 'valid_range', (0, 100)))
        noise_raw = np.asarray(nc['sm_noise'][:]).astype(np.float64)
        nmiss = float(getattr(nc['sm_noise'], 'missing_value', 127))
        proc = np.asarray(nc['proc_flag'][:]).astype(np.int64)
        conf = np.asarray(nc['conf_flag'][:]).astype(np.int64)
        ssf = np.asarray(nc['ssf'][:]).astype(np.int64) if 'ssf' in nc.variables else np.zeros(nobs, np.int64)
    finally:
        nc.close()
    value = np.where((sm_raw == miss) | (proc != 0), np.nan, sm_raw / 100.0)
    error = np.where(noise_raw == nmiss, np.nan, noise_raw / 100.0)
    q = np.zeros(nobs, dtype=np.int64)
    q |= np.where((ssf == 2) | (ssf == 4), FLAG_FROZEN, 0)
    q |= np.where((ssf == 3) | (ssf == 4), FLAG_SNOW, 0)
    q |= np.where((conf & (2 | 4)) != 0, FLAG_SURFACE, 0)
    q |= np.where((conf & (1 | 8 | 16)) != 0, FLAG_QUALITY, 0)
    q |= np.where(np.isfinite(value) & ((value * 100 < lo) | (value * 100 > hi)), FLAG_RANGE, 0)
    return dict(lat=lat, lon=lon, time=time, value=value, error=error, quality=q)


def _cell_files(path, domain, cols, grid):
    """The cell files to read: ``path`` itself, or in a directory the files of the WARP cells covering the run
    columns (``grid`` = TUW WARP5 grid file) or every ``*.nc`` (no grid)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path}: ASCAT cell file or directory not found")
    if grid is None:
        files = sorted(path.glob('*.nc'))
    else:
        nc = open_nc(grid, 'TUW WARP5 grid')
        try:
            require(nc.variables, ('lat', 'lon', 'cell'), grid, 'TUW WARP5 grid')
            glat = np.asarray(nc['lat'][:], dtype=np.float64)
            glon = np.asarray(nc['lon'][:], dtype=np.float64)
            gcell = np.asarray(nc['cell'][:], dtype=np.int64)
            land = np.asarray(nc['land_flag'][:]) == 1 if 'land_flag' in nc.variables else np.ones(glat.size, bool)
        finally:
            nc.close()
        g = cell_of(domain, glat, glon)
        wanted = np.unique(gcell[land & np.isin(g, cols)])
        # cell files are named '0165.nc' or with a product prefix, 'H119_0165.nc'
        by_cell = {}
        for f in path.glob('*.nc'):
            m = re.fullmatch(r'(?:.*_)?(\d{4})\.nc', f.name)
            if m:
                by_cell.setdefault(int(m.group(1)), []).append(f)
        files = [f for c in wanted for f in sorted(by_cell.get(int(c), []))]
        if len({int(c) for c in wanted} & set(by_cell)) < wanted.size:
            from ._common import log
            log.warning('%s: %d of the %d WARP cells covering the run columns have no file', path,
                        wanted.size - len({int(c) for c in wanted} & set(by_cell)), wanted.size)
    if not files:
        raise UserError(f"{path}: no ASCAT cell file (*.nc) for the run columns")
    return files


def read_ascat_cells(path, domain, columns=None, *, porosity=None, start=None, end=None, grid=None,
                     sensor='ASCAT', sensing_depth=ASCAT_SENSING_DEPTH, pixel_reject=DEFAULT_PIXEL_REJECT,
                     pass_gap_s=DEFAULT_PASS_GAP_S):
    """H SAF ASCAT SSM CDR cell file(s) -> :class:`ProductObservations` on the run columns.

    ``path``: a cell file (e.g. ``0165.nc``) or a directory of them (with ``grid``, the TUW WARP5 grid file, only
    the cells covering the run columns are read). Pixels of one model cell within ``pass_gap_s`` form one pass
    (Metop-A and -B passes are separate rows)."""
    cols, phi = column_porosity(domain, columns, porosity, 'ASCAT')
    results = []
    for f in _cell_files(path, domain, cols, grid):
        px = cell_file_pixels(f)
        results.append(aggregate_to_cells('ascat_hsaf_cell', sensor, 'saturation', sensing_depth, domain, cols,
                                          porosity=phi, start=start, end=end, pixel_reject=pixel_reject,
                                          pass_gap_s=pass_gap_s, files=[str(f)],
                                          source=f'H SAF ASCAT SSM CDR cell file {Path(f).name}', **px))
    return merge_results(results, 'ascat_hsaf_cell')


# ---------------------------------------------------------------------------------------------------------------
# EUMETSAT L2 swath

def scaled(var, path, index=slice(None)):
    """A netCDF variable (or ``var[index]``) as float64: raw integers (``_Unsigned`` honoured), fill / missing /
    outside valid_min..max -> NaN, then scale_factor and add_offset."""
    raw = np.asarray(var[index])
    unsigned = str(getattr(var, '_Unsigned', 'false')).lower() == 'true'
    if unsigned and raw.dtype.kind == 'i':
        raw = raw.view(raw.dtype.str.replace('i', 'u'))     # same width and byte order, unsigned
    bad = np.zeros(raw.shape, dtype=bool)
    for att in ('_FillValue', 'missing_value'):
        if att in var.ncattrs():
            fv = np.asarray(var.getncattr(att)).astype(raw.dtype, copy=False) if raw.dtype.kind in 'iu' else \
                np.asarray(var.getncattr(att))
            bad |= raw == fv
    for att, cmp in (('valid_min', np.less), ('valid_max', np.greater)):
        if att in var.ncattrs():
            lim = np.asarray(var.getncattr(att))
            if unsigned and lim.dtype.kind == 'i':
                lim = lim.view(lim.dtype.str.replace('i', 'u'))
            bad |= cmp(raw, lim)
    out = raw.astype(np.float64) * float(getattr(var, 'scale_factor', 1.0)) + float(getattr(var, 'add_offset', 0.0))
    out[bad] = np.nan
    return out


def eumetsat_l2_pixels(path, probability_threshold=50.0):
    product = 'EUMETSAT ASCAT L2 SSM swath'
    nc = open_nc(path, product)
    try:
        require(nc.variables, ('latitude', 'longitude', 'utc_line_nodes', 'soil_moisture', 'soil_moisture_error'),
                path, product)
        for name in ('soil_moisture', 'soil_moisture_error'):
            check_units(path, name, getattr(nc[name], 'units', None), _SAT_UNITS)
        sm = scaled(nc['soil_moisture'], path)
        if sm.ndim != 2:
            raise UserError(f"{path}: variable 'soil_moisture' has dimensions {nc['soil_moisture'].dimensions}, "
                            "expected (numRows, numCells)")
        err = scaled(nc['soil_moisture_error'], path)
        lat = scaled(nc['latitude'], path)
        lon = scaled(nc['longitude'], path)
        lon = np.where(lon > 180.0, lon - 360.0, lon)
        tline = cf_times(np.asarray(nc['utc_line_nodes'][:], dtype=np.float64) *
                         float(getattr(nc['utc_line_nodes'], 'scale_factor', 1.0)),
                         getattr(nc['utc_line_nodes'], 'units', ''), path, 'utc_line_nodes')
        fill_t = np.asarray(nc['utc_line_nodes'][:]) == getattr(nc['utc_line_nodes'], '_FillValue', -2 ** 31)
        tline[fill_t] = np.datetime64('NaT')
        time = np.broadcast_to(tline[:, None], sm.shape)

        def pct(name):
            return scaled(nc[name], path) if name in nc.variables else np.zeros(sm.shape)

        frozen, snow = pct('frozen_soil_probability'), pct('snow_cover_probability')
        wet, topo = pct('wetland_flag'), pct('topography_flag')
        proc1 = scaled(nc['proc_flag1'], path) if 'proc_flag1' in nc.variables else np.zeros(sm.shape)
    finally:
        nc.close()
    value = sm / 100.0
    value[np.broadcast_to(fill_t[:, None], sm.shape)] = np.nan
    q = np.zeros(sm.shape, dtype=np.int64)
    thr = probability_threshold
    q |= np.where(frozen > thr, FLAG_FROZEN, 0)
    q |= np.where(snow > thr, FLAG_SNOW, 0)
    q |= np.where((wet > thr) | (topo > thr), FLAG_SURFACE, 0)
    q |= np.where(np.isfinite(proc1) & (proc1 != 0), FLAG_QUALITY, 0)
    return dict(lat=lat, lon=lon, time=time, value=value, error=err / 100.0, quality=q)


def read_ascat_eumetsat_l2(path, domain, columns=None, *, porosity=None, start=None, end=None, sensor='ASCAT',
                           sensing_depth=ASCAT_SENSING_DEPTH, pixel_reject=DEFAULT_PIXEL_REJECT,
                           pass_gap_s=DEFAULT_PASS_GAP_S, probability_threshold=50.0):
    """EUMETSAT ASCAT L2 SSM swath file(s) (a file or a directory of ``*ssm_l2*.nc``) -> ProductObservations."""
    cols, phi = column_porosity(domain, columns, porosity, 'ASCAT')
    path = Path(path)
    files = [path] if not path.is_dir() else sorted(path.glob('*ssm_l2*.nc'))
    if not files:
        raise UserError(f"{path}: no EUMETSAT ASCAT L2 SSM file (*ssm_l2*.nc)")
    results = [aggregate_to_cells('ascat_eumetsat_l2', sensor, 'saturation', sensing_depth, domain, cols,
                                  porosity=phi, start=start, end=end, pixel_reject=pixel_reject,
                                  pass_gap_s=pass_gap_s, files=[str(f)],
                                  source=f'EUMETSAT ASCAT L2 SSM {Path(f).name}',
                                  **eumetsat_l2_pixels(f, probability_threshold))
               for f in files]
    return merge_results(results, 'ascat_eumetsat_l2')
