"""ERA5 / ERA5-Land volumetric soil water ``swvl1..4`` as a reference field on model columns.

Both CDS layouts are read: the old CDS netCDF (``grib_to_netcdf``: dims ``time``, ``latitude``, ``longitude``,
int16 packed with ``scale_factor``/``add_offset``, units ``m**3 m**-3``, time ``hours since 1900-01-01``,
sometimes an ``expver`` dimension mixing ERA5 and ERA5T) and the new CDS netCDF (cfgrib: ``valid_time`` in
``seconds since 1970-01-01``, float32 with NaN fill, scalar ``number`` and ``expver`` coordinates).

Layers: swvl1 0-0.07 m, swvl2 0.07-0.28 m, swvl3 0.28-1.00 m, swvl4 1.00-2.89 m (ECMWF IFS documentation); the
field has the layers the files contain (at least one; the evaluation's three layers are swvl1..3).

To model cells: land points only (``lsm`` >= 0.5 when the file has the land-sea mask, as the old-CDS fixture; else
the finite points, ERA5-Land being NaN over the sea). A model cell that contains source points gets their mean
weighted by cos(latitude) (area); a model cell finer than the source grid (no point inside) gets the source grid
cell that contains its centre. With ``daily`` (default) the time steps are averaged over each UTC day, as
:class:`colmda.obs.insitu.ReferenceField` holds daily values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..insitu import ReferenceField
from ._common import as_datetime64, cell_of, cf_times, check_units, log, open_nc, run_columns
from .ascat import scaled

ERA5_LAYERS = {1: (0.0, 0.07), 2: (0.07, 0.28), 3: (0.28, 1.0), 4: (1.0, 2.89)}
_UNITS = ('m**3 m**-3', 'm3 m-3', 'm3/m3', 'm^3 m^-3')


_TIME_CHUNK = 48   # time steps read at once (a 0.1 deg global field is 6.5 million points)


def _open(path):
    """Open an ERA5 file and check its layout: (nc, time name, times, lat, lon, layers)."""
    product = 'ERA5/ERA5-Land soil water (swvl1..4)'
    nc = open_nc(path, product)
    try:
        tname = 'valid_time' if 'valid_time' in nc.variables else 'time'
        for n in (tname, 'latitude', 'longitude'):
            if n not in nc.variables:
                raise UserError(f"{path}: variable '{n}' missing; is this an ERA5 netCDF file?")
        layers = [k for k in ERA5_LAYERS if f'swvl{k}' in nc.variables]
        if not layers:
            raise UserError(f"{path}: no variable 'swvl1'..'swvl4'; is this an ERA5 soil water file? (variables: "
                            f"{', '.join(list(nc.variables)[:12])})")
        time = cf_times(nc[tname][:], getattr(nc[tname], 'units', ''), path, tname)
        lat = np.asarray(nc['latitude'][:], dtype=np.float64)
        lon = np.asarray(nc['longitude'][:], dtype=np.float64)
        for k in layers:
            v = nc[f'swvl{k}']
            check_units(path, f'swvl{k}', getattr(v, 'units', None), _UNITS)
            dims = tuple(d for d in v.dimensions if d != 'expver')
            if dims != (tname, 'latitude', 'longitude'):
                raise UserError(f"{path}: variable 'swvl{k}' has dimensions {v.dimensions}, expected "
                                f"({tname}, latitude, longitude)")
    except BaseException:
        nc.close()
        raise
    return nc, tname, time, lat, lon, layers


def _points(nc, path, name, steps, flat_idx):
    """``name`` at time indices ``steps`` (a slice) and flat grid points ``flat_idx``: (nstep, npoint) float64, the
    ``expver`` dimension merged (ERA5 and ERA5T: one of the two is missing at each time)."""
    v = nc[name]
    a = scaled(v, path, steps)
    if 'expver' in v.dimensions:
        ax = v.dimensions.index('expver')
        with np.errstate(invalid='ignore'), __import__('warnings').catch_warnings():
            __import__('warnings').simplefilter('ignore', RuntimeWarning)
            a = np.nanmean(a, axis=ax)
    return a.reshape(a.shape[0], -1)[:, flat_idx]


def _cell_maps(domain, cols, lat, lon, land):
    """(source point index, run column position, cos-lat weight) of every land source point inside a run column,
    which columns have one, and for the others the flat index of the land source cell containing the column centre
    (-1 when it is sea)."""
    la, lo = np.meshgrid(lat, lon, indexing='ij')
    g = cell_of(domain, la.ravel(), lo.ravel())
    pos = np.searchsorted(cols, g)
    inside = (g >= 0) & (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == g) & land.ravel()
    pts = np.flatnonzero(inside)
    w = np.cos(np.deg2rad(la.ravel()[pts]))
    covered = np.zeros(cols.size, dtype=bool)
    covered[pos[pts]] = True
    near = np.full(cols.size, -1, dtype=np.int64)
    un = np.flatnonzero(~covered)
    if un.size:
        clat, clon = domain.column_lat(cols[un]), domain.column_lon(cols[un])
        j = np.abs(lat[:, None] - clat[None, :]).argmin(axis=0)
        i = np.abs((lon[:, None] - clon[None, :] + 180.0) % 360.0 - 180.0).argmin(axis=0)
        k = j * lon.size + i
        near[un] = np.where(land.ravel()[k], k, -1)
    return pts, pos[pts], w, covered, near


def read_era5_reference(paths, domain, columns=None, *, start=None, end=None, daily=True) -> ReferenceField:
    """ERA5 / ERA5-Land ``swvl*`` file(s) (a file, a list, or a directory of ``*.nc``) -> ReferenceField
    (time, layer, run column) in m3 m-3. Files must share the grid and the layers; times are merged and sorted
    (a time present in two files is a UserError). Times outside [start, end] are left out (counted in the log)."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = sorted(p.glob('*.nc')) if p.is_dir() else [p]
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("ERA5 reader: no file given")
    cols = run_columns(domain, columns)
    t0, t1 = as_datetime64(start, 'start'), as_datetime64(end, 'end')
    times, blocks, ntotal = [], [], 0
    grid = layers = None
    for path in paths:
        nc, tname, time, lat, lon, lay = _open(path)
        try:
            if grid is None:
                grid, layers = (lat, lon), lay
                # land points and the source points each run column takes (from the first file's grid and mask)
                if 'lsm' in nc.variables:
                    m = scaled(nc['lsm'], path, 0 if nc['lsm'].ndim == 3 else slice(None))
                    land = np.asarray(m) >= 0.5
                else:
                    step = int(np.argmax((time >= t0) if t0 is not None else np.ones(time.size, bool)))
                    first = scaled(nc[f'swvl{lay[0]}'], path, step if 'expver' not in nc[f'swvl{lay[0]}'].dimensions
                                   else slice(step, step + 1))
                    land = np.any(np.isfinite(first.reshape(-1, lat.size, lon.size)), axis=0)
                pts, ppos, w, covered, near = _cell_maps(domain, cols, lat, lon, land.reshape(lat.size, lon.size))
                need, inv = np.unique(np.concatenate([pts, near[near >= 0]]), return_inverse=True)
            elif lat.shape != grid[0].shape or lon.shape != grid[1].shape or not (
                    np.allclose(lat, grid[0]) and np.allclose(lon, grid[1])):
                raise UserError(f"{path}: grid differs from that of {paths[0]}")
            elif lay != layers:
                raise UserError(f"{path}: layers swvl{lay} differ from swvl{layers} of {paths[0]}")
            ntotal += time.size
            keep = np.ones(time.size, bool)
            if t0 is not None:
                keep &= time >= t0
            if t1 is not None:
                keep &= time <= t1
            for a in range(0, time.size, _TIME_CHUNK):
                sl = slice(a, min(a + _TIME_CHUNK, time.size))
                if not keep[sl].any():
                    continue
                vals = np.stack([_points(nc, path, f'swvl{k}', sl, need) for k in layers], axis=1)
                times.append(time[sl][keep[sl]])
                blocks.append(vals[keep[sl]])
        finally:
            nc.close()
    top = np.array([ERA5_LAYERS[k][0] for k in layers])
    bot = np.array([ERA5_LAYERS[k][1] for k in layers])
    nkept = sum(t.size for t in times)
    if nkept < ntotal:
        (log.warning if nkept == 0 else log.info)('ERA5: %d of %d time steps of %d file(s) outside the run period '
                                                 'left out', ntotal - nkept, ntotal, len(paths))
    if nkept == 0:
        return ReferenceField(time=np.zeros(0, 'datetime64[s]'), sm=np.zeros((0, len(layers), cols.size)),
                              layer_top=top, layer_bottom=bot, column=cols, lat=domain.column_lat(cols),
                              lon=domain.column_lon(cols))
    time = np.concatenate(times)
    vals = np.concatenate(blocks)                          # (ntime, nlayer, nneed)
    order = np.argsort(time, kind='stable')
    time, vals = time[order], vals[order]
    if np.any(time[1:] == time[:-1]):
        raise UserError(f"ERA5 reader: time {time[1:][time[1:] == time[:-1]][0]} appears twice in {len(paths)} files")
    ipts, inear = inv[:pts.size], inv[pts.size:]
    v = vals[:, :, ipts]
    ok = np.isfinite(v)
    num = np.zeros((time.size, len(layers), cols.size))
    den = np.zeros_like(num)
    np.add.at(num.transpose(2, 0, 1), ppos, (np.where(ok, v, 0.0) * w).transpose(2, 0, 1))
    np.add.at(den.transpose(2, 0, 1), ppos, (ok * w).transpose(2, 0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
        out = np.where(den > 0, num / den, np.nan)
    fill = ~covered & (near >= 0)
    out[:, :, fill] = vals[:, :, inear]
    n_cov, n_near = int(covered.sum()), int(fill.sum())
    log.info('ERA5: %d columns averaged from source points, %d from the containing source cell, %d without land '
             'source point', n_cov, n_near, cols.size - n_cov - n_near)
    if daily:
        day = time.astype('datetime64[D]')
        days, dinv = np.unique(day, return_inverse=True)
        okd = np.isfinite(out)
        tot = np.zeros((days.size,) + out.shape[1:])
        cnt = np.zeros_like(tot)
        np.add.at(tot, dinv, np.where(okd, out, 0.0))
        np.add.at(cnt, dinv, okd)
        with np.errstate(invalid='ignore', divide='ignore'):
            out = np.where(cnt > 0, tot / cnt, np.nan)
        time = days.astype('datetime64[s]')
    return ReferenceField(time=time, sm=out, layer_top=top, layer_bottom=bot, column=cols,
                          lat=domain.column_lat(cols), lon=domain.column_lon(cols))
