"""FengYun-3 MWRI L2 volumetric soil moisture (VSM), daily HDF5 on the global 25 km EASE-Grid.

No sample file of this product is available to the project; the reader follows the public description of the
CMA/NSMC product (file names ``FY3D_MWRIX_GBAL_L2_VSM_MLT_ESD_YYYYMMDD_POAD_025KM_MS.HDF``, ``AOAD`` for the older
FY-3B files; two 2-D datasets ``Ascending Soil Moisture`` and ``Descending Soil Moisture`` of 586 rows x 1383
columns, the global cylindrical equal-area EASE-Grid (version 1, "ML") at 25.067525 km) and the FY-3 HDF5
conventions (per-dataset attributes ``Slope`` and ``Intercept`` for the linear scaling, ``FillValue`` or
``_FillValue``, optional ``valid_range`` and ``units``). The test builds a small file of that layout.

* Position: datasets ``Latitude`` / ``Longitude`` of the same shape when the file has them, else the EASE-Grid v1
  cell centres: ``lon = (c - 691) C / (R cos 30)``, ``lat = asin((292.5 - r) C cos 30 / R)`` (R = 6371.228 km,
  C = 25.067525 km; NSIDC EASE-Grid definition).
* Value: ``raw * Slope + Intercept`` (defaults 1 and 0), units ``cm3/cm3`` / ``m3/m3`` (or ``%``, divided by 100);
  without a units attribute the scaled value is taken as a volume fraction and must lie in [0, 1] (else FLAG_RANGE,
  left out).
* Time: the product is a daily composite without a per-pixel time. The pixel time is the file date (local) plus
  the satellite's local solar time of the pass (``node_time_h``: FY-3B and FY-3D ascending 13:40 / descending 01:40,
  FY-3C ascending 22:00 / descending 10:00; WMO OSCAR), converted to UTC with the pixel longitude:
  ``t = date + LST - lon / 15 h``. The error of that time is the swath's spread of local times (< 1 h).
* Error: the product has no error estimate; ``error`` (default 0.06 m3 m-3, the nominal error of the simulated
  X-band sensor, docs/observations.md section 3) is used for every pixel.
* Quality: the product carries no per-pixel quality flag in that description; only FLAG_RANGE is set. Frozen soil
  and snow are left to the assimilation's model-side checks.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..format import FLAG_RANGE
from ._common import (DEFAULT_PASS_GAP_S, DEFAULT_PIXEL_REJECT, aggregate_to_cells, merge_results, open_h5,
                      run_columns)

FY3_SENSING_DEPTH = 0.01     # m, X band (Owe et al. 2008)
FY3_DEFAULT_ERROR = 0.06     # m3 m-3
EASE1_SHAPE = (586, 1383)
EASE1_R_KM = 6371.228
EASE1_C_KM = 25.067525
#: local solar time (h) of the ascending and descending passes per platform
NODE_TIME_H = {'FY3B': (13 + 40 / 60, 1 + 40 / 60), 'FY3C': (22.0, 10.0), 'FY3D': (13 + 40 / 60, 1 + 40 / 60)}
DATASETS = {'ascending': 'Ascending Soil Moisture', 'descending': 'Descending Soil Moisture'}
_NAME_RE = re.compile(r'(FY3[A-Z])_MWRI[A-Z]?_\w*?_L2_VSM_\w*?_(\d{8})_')


def ease1_lat_lon(rows, cols):
    """Centres (deg) of EASE-Grid v1 global 25 km cells at integer ``rows`` (0-585) and ``cols`` (0-1382)."""
    k = np.cos(np.deg2rad(30.0))
    lon = np.rad2deg((np.asarray(cols, dtype=np.float64) - 691.0) * EASE1_C_KM / (EASE1_R_KM * k))
    lat = np.rad2deg(np.arcsin((292.5 - np.asarray(rows, dtype=np.float64)) * EASE1_C_KM * k / EASE1_R_KM))
    return lat, lon


def _attr(obj, *names, default=None):
    for n in names:
        if n in obj.attrs:
            v = obj.attrs[n]
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, np.ndarray) and v.size == 1:
                v = v.item()
            if isinstance(v, bytes):
                v = v.decode()
            return v
    return default


def fy3_pixels(path, overpass='both', error=FY3_DEFAULT_ERROR, platform=None, node_time_h=None):
    product = 'FY-3 MWRI L2 soil moisture (VSM)'
    f = open_h5(path, product)
    try:
        m = _NAME_RE.search(Path(path).name)
        plat = platform or (m.group(1) if m else _attr(f, 'Satellite Name', 'Satellite_Name'))
        plat = str(plat).replace('-', '').upper() if plat is not None else None
        date = m.group(2) if m else None
        if date is None:
            d = _attr(f, 'Observing Beginning Date', 'Observing_Beginning_Date')
            date = str(d).replace('-', '') if d is not None else None
        if date is None or not re.fullmatch(r'\d{8}', date):
            raise UserError(f"{path}: no date in the file name (…_YYYYMMDD_…) or in attribute 'Observing Beginning "
                            "Date'")
        day = np.datetime64(f'{date[:4]}-{date[4:6]}-{date[6:]}T00:00:00', 's')
        if node_time_h is None:
            if plat not in NODE_TIME_H:
                raise UserError(f"{path}: platform {plat!r} unknown (expected one of {', '.join(NODE_TIME_H)}); give "
                                "node_time_h=(ascending, descending) local solar hours")
            node_time_h = NODE_TIME_H[plat]
        if overpass not in ('both', 'ascending', 'descending'):
            raise UserError(f"FY-3 reader: overpass = '{overpass}', expected 'both', 'ascending' or 'descending'")
        wanted = ('ascending', 'descending') if overpass == 'both' else (overpass,)
        found = [w for w in wanted if DATASETS[w] in f]
        if not found:
            raise UserError(f"{path}: dataset '{DATASETS[wanted[0]]}' missing; is this a {product} file?")
        out = []
        for w in found:
            ds = f[DATASETS[w]]
            if ds.ndim != 2:
                raise UserError(f"{path}: dataset '{DATASETS[w]}' has shape {ds.shape}, expected 2-D {EASE1_SHAPE}")
            raw = np.asarray(ds[()], dtype=np.float64)
            fill = _attr(ds, 'FillValue', '_FillValue')
            bad = np.zeros(raw.shape, bool) if fill is None else raw == float(fill)
            vr = _attr(ds, 'valid_range')
            if vr is not None and np.size(vr) == 2:
                bad |= (raw < float(np.ravel(vr)[0])) | (raw > float(np.ravel(vr)[1]))
            val = raw * float(_attr(ds, 'Slope', 'slope', 'scale_factor', default=1.0)) + \
                float(_attr(ds, 'Intercept', 'intercept', 'add_offset', default=0.0))
            units = _attr(ds, 'units', 'Units')
            if units is not None:
                u = str(units).strip().lower().replace(' ', '')
                if u in ('%', 'percent'):
                    val = val / 100.0
                elif u not in ('cm3/cm3', 'm3/m3', 'cm^3/cm^3', 'm^3/m^3', 'cm3cm-3', 'm3m-3', 'cm**3/cm**3'):
                    raise UserError(f"{path}: dataset '{DATASETS[w]}' has units {units!r}, expected 'cm3/cm3' or "
                                    "'m3/m3'")
            val[bad] = np.nan
            if 'Latitude' in f and 'Longitude' in f:
                lat = np.asarray(f['Latitude'][()], dtype=np.float64)
                lon = np.asarray(f['Longitude'][()], dtype=np.float64)
                if lat.shape != val.shape or lon.shape != val.shape:
                    raise UserError(f"{path}: datasets 'Latitude'/'Longitude' have shape {lat.shape}, expected "
                                    f"{val.shape}")
                lat[np.abs(lat) > 90] = np.nan
            elif val.shape == EASE1_SHAPE:
                r, c = np.meshgrid(np.arange(EASE1_SHAPE[0]), np.arange(EASE1_SHAPE[1]), indexing='ij')
                lat, lon = ease1_lat_lon(r, c)
            else:
                raise UserError(f"{path}: dataset '{DATASETS[w]}' has shape {val.shape}, expected the 25 km EASE-Grid "
                                f"{EASE1_SHAPE} (or Latitude/Longitude datasets)")
            lst = node_time_h[0] if w == 'ascending' else node_time_h[1]
            offset_s = np.round((lst - np.where(np.isfinite(lon), lon, 0.0) / 15.0) * 3600).astype(np.int64)
            time = day + offset_s.astype('timedelta64[s]')
            q = np.where(np.isfinite(val) & ((val < 0) | (val > 1)), FLAG_RANGE, 0)
            out.append(dict(lat=lat.ravel(), lon=lon.ravel(), time=time.ravel(), value=val.ravel(),
                            error=np.full(val.size, float(error)), quality=q.ravel()))
    except (KeyError, OSError) as e:
        raise UserError(f"{path}: unreadable {product} content ({e})") from None
    finally:
        f.close()
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def read_fy3_mwri(path, domain, columns=None, *, start=None, end=None, sensor='MWRI', overpass='both',
                  error=FY3_DEFAULT_ERROR, platform=None, node_time_h=None, sensing_depth=FY3_SENSING_DEPTH,
                  pixel_reject=DEFAULT_PIXEL_REJECT | FLAG_RANGE, pass_gap_s=DEFAULT_PASS_GAP_S):
    """FY-3 MWRI L2 VSM daily file(s) (a file or a directory searched for ``FY3*MWRI*VSM*.HDF``/``.h5``) ->
    ProductObservations (volumetric)."""
    cols = run_columns(domain, columns)
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob('FY3*') if 'VSM' in p.name and p.suffix.lower() in ('.hdf', '.h5'))
    else:
        files = [path]
    if not files:
        raise UserError(f"{path}: no FY-3 MWRI VSM file (FY3*VSM*.HDF)")
    results = [aggregate_to_cells('fy3_mwri_l2', sensor, 'volumetric', sensing_depth, domain, cols, start=start,
                                  end=end, pixel_reject=pixel_reject, pass_gap_s=pass_gap_s, files=[str(f)],
                                  source=f'FY-3 MWRI L2 VSM {Path(f).name}',
                                  **fy3_pixels(f, overpass, error, platform, node_time_h))
               for f in files]
    return merge_results(results, 'fy3_mwri_l2')
