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


def _read_file(path):
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
        data = {}
        for k in layers:
            v = nc[f'swvl{k}']
            check_units(path, f'swvl{k}', getattr(v, 'units', None), _UNITS)
            dims = v.dimensions
            a = scaled(v, path)
            if 'expver' in dims:      # old CDS ERA5 + ERA5T: one of the two is missing at each time
                ax = dims.index('expver')
                a = np.nanmean(a, axis=ax) if a.shape[ax] > 1 else np.take(a, 0, axis=ax)
                dims = tuple(d for d in dims if d != 'expver')
            if dims != (tname, 'latitude', 'longitude'):
                raise UserError(f"{path}: variable 'swvl{k}' has dimensions {v.dimensions}, expected "
                                f"({tname}, latitude, longitude)")
            data[k] = a
        lsm = None
        if 'lsm' in nc.variables:
            m = scaled(nc['lsm'], path)
            lsm = m[0] if m.ndim == 3 else m
    finally:
        nc.close()
    return time, lat, lon, data, lsm


def _cell_maps(domain, cols, lat, lon, land):
    """(source point index, model column position, weight) of every land source point inside a run column, and
    for columns without any, the index of the source cell containing the column centre."""
    la, lo = np.meshgrid(lat, lon, indexing='ij')
    g = cell_of(domain, la.ravel(), lo.ravel())
    pos = np.searchsorted(cols, g)
    inside = (g >= 0) & (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == g) & land.ravel()
    pts = np.flatnonzero(inside)
    w = np.cos(np.deg2rad(la.ravel()[pts]))
    covered = np.zeros(cols.size, dtype=bool)
    covered[pos[pts]] = True
    # nearest source grid point to the centre of each uncovered column (regular source grid)
    clat, clon = domain.column_lat(cols), domain.column_lon(cols)
    j = np.abs(lat[:, None] - clat[None, :]).argmin(axis=0)
    dlon = np.abs((lon[:, None] - clon[None, :] + 180.0) % 360.0 - 180.0)
    i = dlon.argmin(axis=0)
    near = j * lon.size + i
    near = np.where(land.ravel()[near], near, -1)
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
    parts = [_read_file(p) for p in paths]
    lat, lon, layers = parts[0][1], parts[0][2], sorted(parts[0][3])
    for p, part in zip(paths[1:], parts[1:]):
        if part[1].shape != lat.shape or part[2].shape != lon.shape or not (np.allclose(part[1], lat)
                                                                            and np.allclose(part[2], lon)):
            raise UserError(f"{p}: grid differs from that of {paths[0]}")
        if sorted(part[3]) != layers:
            raise UserError(f"{p}: layers swvl{sorted(part[3])} differ from swvl{layers} of {paths[0]}")
    time = np.concatenate([p[0] for p in parts])
    sm = {k: np.concatenate([p[3][k] for p in parts]) for k in layers}
    order = np.argsort(time, kind='stable')
    time = time[order]
    if np.any(time[1:] == time[:-1]):
        raise UserError(f"ERA5 reader: time {time[1:][time[1:] == time[:-1]][0]} appears twice in {len(paths)} files")
    t0, t1 = as_datetime64(start, 'start'), as_datetime64(end, 'end')
    keep = np.ones(time.size, bool)
    if t0 is not None:
        keep &= time >= t0
    if t1 is not None:
        keep &= time <= t1
    if not keep.any():
        log.warning('ERA5: all %d time steps of %d file(s) are outside the run period', time.size, len(paths))
    elif not keep.all():
        log.info('ERA5: %d of %d time steps outside the run period left out', int((~keep).sum()), time.size)
    time = time[keep]
    top = np.array([ERA5_LAYERS[k][0] for k in layers])
    bot = np.array([ERA5_LAYERS[k][1] for k in layers])
    if time.size == 0:
        return ReferenceField(time=time, sm=np.zeros((0, len(layers), cols.size)), layer_top=top, layer_bottom=bot,
                              column=cols, lat=domain.column_lat(cols), lon=domain.column_lon(cols))
    lsm = parts[0][4]
    first = sm[layers[0]][order][keep]
    land = (lsm >= 0.5) if lsm is not None else np.any(np.isfinite(first), axis=0)
    pts, ppos, w, covered, near = _cell_maps(domain, cols, lat, lon, land)
    out = np.full((time.size, len(layers), cols.size), np.nan)
    for li, k in enumerate(layers):
        a = sm[k][order][keep].reshape(time.size, -1)
        v = a[:, pts]
        ok = np.isfinite(v)
        num = np.zeros((time.size, cols.size))
        den = np.zeros((time.size, cols.size))
        np.add.at(num.T, ppos, (np.where(ok, v, 0.0) * w).T)
        np.add.at(den.T, ppos, (ok * w).T)
        with np.errstate(invalid='ignore', divide='ignore'):
            out[:, li, :] = np.where(den > 0, num / den, np.nan)
        fill = ~covered & (near >= 0)
        out[:, li, fill] = a[:, near[fill]]
    n_cov, n_near = int(covered.sum()), int((~covered & (near >= 0)).sum())
    log.info('ERA5: %d columns averaged from source points, %d from the containing source cell, %d without land '
             'source point', n_cov, n_near, cols.size - n_cov - n_near)
    if daily and time.size:
        day = time.astype('datetime64[D]')
        days, inv = np.unique(day, return_inverse=True)
        ok = np.isfinite(out)
        tot = np.zeros((days.size,) + out.shape[1:])
        cnt = np.zeros_like(tot)
        np.add.at(tot, inv, np.where(ok, out, 0.0))
        np.add.at(cnt, inv, ok)
        with np.errstate(invalid='ignore', divide='ignore'):
            out = np.where(cnt > 0, tot / cnt, np.nan)
        time = days.astype('datetime64[s]')
    return ReferenceField(time=time, sm=out, layer_top=top, layer_bottom=bot, column=cols,
                          lat=domain.column_lat(cols), lon=domain.column_lon(cols))
