"""SMAP passive soil moisture, HDF5: L2 half-orbit ``SPL2SMP`` (36 km) / ``SPL2SMP_E`` (9 km), and the daily
L3 files (``SPL3SMP``, ``SPL3SMP_E``) whose AM and PM passes are in two groups.

Layout read (h5py): group ``Soil_Moisture_Retrieval_Data`` (L2) or ``Soil_Moisture_Retrieval_Data_AM`` /
``Soil_Moisture_Retrieval_Data_PM`` (L3; PM variables carry the suffix ``_pm``), with ``latitude``,
``longitude``, ``soil_moisture`` (cm3/cm3, fill -9999, valid 0.02-0.5), ``soil_moisture_error``,
``retrieval_qual_flag``, ``surface_flag`` and the pixel time ``tb_time_utc`` (ISO string; ``tb_time_seconds``,
seconds since 2000-01-01T12:00 UTC, when the string is absent).

Quality mapping to colmda bits:

=========================================================  =====================
retrieval_qual_flag bit 0 (retrieval not recommended)       FLAG_QUALITY
surface_flag 32 (snow or ice)                               FLAG_SNOW
surface_flag 64 (permanent snow or ice)                     FLAG_SNOW | FLAG_FROZEN
surface_flag 128, 256 (radiometer / model frozen ground)    FLAG_FROZEN
surface_flag 1, 2, 4, 8, 512 (water, coast, urban, mountain) FLAG_SURFACE
surface_flag 16 (precipitation)                             FLAG_QUALITY
surface_flag 1024 (dense vegetation)                        FLAG_DENSE_VEGETATION
tb_qual_flag_h/v bit 2 (RFI detected) and not bit 3 (RFI corrected)  FLAG_RFI
soil_moisture outside valid_min..valid_max                  FLAG_RANGE
=========================================================  =====================

Error: ``soil_moisture_error`` where the product fills it; early releases (e.g. R18290 in the fixture) leave it at
the fill value for every pixel, and then the mission's accuracy requirement, 0.04 m3 m-3 (Entekhabi et al. 2010;
Chan et al. 2016), is used (``error`` keyword to change it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..format import FLAG_DENSE_VEGETATION, FLAG_FROZEN, FLAG_RANGE, FLAG_SNOW
from ._common import (DEFAULT_PASS_GAP_S, DEFAULT_PIXEL_REJECT, FLAG_QUALITY, FLAG_RFI, FLAG_SURFACE,
                      aggregate_to_cells, check_units, merge_results, open_h5, run_columns)

SMAP_SENSING_DEPTH = 0.05     # m, L band (Entekhabi et al. 2010)
SMAP_DEFAULT_ERROR = 0.04     # m3 m-3, mission accuracy target, used where the product has no error
_J2000_NOON = np.datetime64('2000-01-01T12:00:00', 'ms')
_GROUPS = {'L2': ('Soil_Moisture_Retrieval_Data', ''), 'AM': ('Soil_Moisture_Retrieval_Data_AM', ''),
           'PM': ('Soil_Moisture_Retrieval_Data_PM', '_pm')}
_VOL_UNITS = ('cm**3/cm**3', 'cm3/cm3', 'm3/m3', 'm3 m-3', 'cm^3/cm^3')


def _attr(ds, name, default=None):
    v = ds.attrs.get(name, default)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        return v.item()
    return v


def _float(ds):
    a = np.asarray(ds[()], dtype=np.float64)
    fill = _attr(ds, '_FillValue')
    if fill is not None:
        a[a == float(fill)] = np.nan
    return a.ravel()


def _utc_strings(raw, path, name):
    """ISO UTC strings ('2015-08-11T02:21:22.474Z') -> datetime64[ms]; the fraction of a second is used where it
    is digits (some granules write '.***'); strings shorter than a date and time are NaT."""
    s = np.char.decode(np.asarray(raw).astype('S'), 'ascii', errors='replace')
    ok = np.char.str_len(s) >= 19
    time = np.full(s.shape, np.datetime64('NaT'), dtype='datetime64[ms]')
    try:
        time[ok] = np.char.ljust(s[ok], 19).astype('U19').astype('datetime64[s]').astype('datetime64[ms]')
    except ValueError:
        raise UserError(f"{path}: variable '{name}' has unreadable times") from None
    frac = np.array([x[20:23] if len(x) >= 23 and x[19] == '.' and x[20:23].isdigit() else '0' for x in s[ok]])
    time[ok] += frac.astype(np.int64).astype('timedelta64[ms]')
    return time


def smap_pixels(path, overpass='both', error=SMAP_DEFAULT_ERROR):
    product = 'SMAP L2/L3 passive soil moisture (SPL2SMP, SPL2SMP_E, SPL3SMP)'
    f = open_h5(path, product)
    try:
        groups = [k for k in ('L2', 'AM', 'PM') if _GROUPS[k][0] in f]
        if not groups:
            raise UserError(f"{path}: group 'Soil_Moisture_Retrieval_Data' (or _AM/_PM) missing; is this a {product} "
                            "file?")
        if overpass not in ('both', 'AM', 'PM'):
            raise UserError(f"SMAP reader: overpass = '{overpass}', expected 'both', 'AM' or 'PM'")
        if overpass != 'both' and 'L2' not in groups:
            groups = [overpass]
        out = []
        for key in groups:
            gname, sfx = _GROUPS[key]
            g = f[gname]
            for name in ('latitude', 'longitude', 'soil_moisture', 'retrieval_qual_flag', 'surface_flag'):
                if name + sfx not in g:
                    raise UserError(f"{path}: variable '{gname}/{name + sfx}' missing; is this a {product} file?")
            if 'tb_time_utc' + sfx not in g and 'tb_time_seconds' + sfx not in g:
                raise UserError(f"{path}: variable '{gname}/tb_time_utc{sfx}' (or tb_time_seconds{sfx}) missing")
            sm_ds = g['soil_moisture' + sfx]
            check_units(path, f'{gname}/soil_moisture{sfx}', _attr(sm_ds, 'units'), _VOL_UNITS)
            sm = _float(sm_ds)
            lat, lon = _float(g['latitude' + sfx]), _float(g['longitude' + sfx])
            lat[np.abs(lat) > 90] = np.nan
            lon[np.abs(lon) > 360] = np.nan
            if 'soil_moisture_error' + sfx in g:
                err = _float(g['soil_moisture_error' + sfx])
                err[~(err > 0)] = np.nan
            else:
                err = np.full(sm.shape, np.nan)
            err = np.where(np.isfinite(err), err, float(error))
            if 'tb_time_utc' + sfx in g:
                raw = g['tb_time_utc' + sfx][()].ravel()
                time = _utc_strings(raw, path, f'{gname}/tb_time_utc{sfx}')
            else:
                sec = _float(g['tb_time_seconds' + sfx])
                ok = np.isfinite(sec)
                time = np.full(sec.shape, np.datetime64('NaT'), dtype='datetime64[ms]')
                time[ok] = _J2000_NOON + np.round(sec[ok] * 1000).astype(np.int64).astype('timedelta64[ms]')
            time = time.astype('datetime64[s]')
            sm[np.isnat(time)] = np.nan
            rq = np.asarray(g['retrieval_qual_flag' + sfx][()]).astype(np.int64).ravel()
            sf = np.asarray(g['surface_flag' + sfx][()]).astype(np.int64).ravel()
            sf_fill = int(_attr(g['surface_flag' + sfx], '_FillValue', 65534))
            sf = np.where(sf == sf_fill, 0, sf)
            q = np.zeros(sm.shape, dtype=np.int64)
            q |= np.where((rq & 1) != 0, FLAG_QUALITY, 0)
            q |= np.where((sf & 16) != 0, FLAG_QUALITY, 0)
            q |= np.where((sf & (32 | 64)) != 0, FLAG_SNOW, 0)
            q |= np.where((sf & (64 | 128 | 256)) != 0, FLAG_FROZEN, 0)
            q |= np.where((sf & (1 | 2 | 4 | 8 | 512)) != 0, FLAG_SURFACE, 0)
            q |= np.where((sf & 1024) != 0, FLAG_DENSE_VEGETATION, 0)
            for pol in ('h', 'v'):
                name = f'tb_qual_flag_{pol}{sfx}'
                if name in g:
                    tq = np.asarray(g[name][()]).astype(np.int64).ravel()
                    tq = np.where(tq == int(_attr(g[name], '_FillValue', 65534)), 0, tq)
                    q |= np.where(((tq & 4) != 0) & ((tq & 8) == 0), FLAG_RFI, 0)
            lo, hi = _attr(sm_ds, 'valid_min'), _attr(sm_ds, 'valid_max')
            if lo is not None and hi is not None:
                q |= np.where(np.isfinite(sm) & ((sm < float(lo)) | (sm > float(hi))), FLAG_RANGE, 0)
            out.append(dict(lat=lat, lon=lon, time=time, value=sm, error=err, quality=q))
    except (KeyError, OSError) as e:
        raise UserError(f"{path}: unreadable {product} content ({e})") from None
    finally:
        f.close()
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def read_smap(path, domain, columns=None, *, start=None, end=None, sensor='SMAP', overpass='both',
              error=SMAP_DEFAULT_ERROR, sensing_depth=SMAP_SENSING_DEPTH,
              pixel_reject=DEFAULT_PIXEL_REJECT | FLAG_RANGE, pass_gap_s=DEFAULT_PASS_GAP_S):
    """SMAP L2 half-orbit (or L3 daily) file(s) -> :class:`ProductObservations` (volumetric, m3 m-3).

    ``path``: an ``.h5`` file or a directory (all ``SMAP_L*_SM_P*.h5`` below it, recursively, as NSIDC delivers
    them in ``YYYY.MM.DD`` folders). ``overpass``: for L3 files 'AM', 'PM' or 'both'. Values outside the product's
    valid range (0.02-0.5) are flagged FLAG_RANGE and left out of the cell mean by default."""
    cols = run_columns(domain, columns)
    path = Path(path)
    files = [path] if not path.is_dir() else sorted(path.rglob('SMAP_L*_SM_P*.h5'))
    if not files:
        raise UserError(f"{path}: no SMAP file (SMAP_L*_SM_P*.h5)")
    results = [aggregate_to_cells('smap_l2', sensor, 'volumetric', sensing_depth, domain, cols, start=start,
                                  end=end, pixel_reject=pixel_reject, pass_gap_s=pass_gap_s, files=[str(f)],
                                  source=f'SMAP {Path(f).name}', **smap_pixels(f, overpass, error))
               for f in files]
    return merge_results(results, 'smap_l2')
