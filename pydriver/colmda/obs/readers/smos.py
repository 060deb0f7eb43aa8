"""SMOS L3 soil moisture, CATDS daily ``SM_*_MIR_CLF31A|D_*.DBL.nc`` (one overpass direction per file, EASE-Grid
2.0 25 km as a regular ``lat`` x ``lon`` netCDF).

Read: ``Soil_Moisture`` (m3.m-3, int16 scaled or float, fill), the pixel time ``Mean_Acq_Time_Days`` (days since
2000-01-01) + ``Mean_Acq_Time_Seconds``; where present the quality fields: ``Soil_Moisture_Dqx`` (the retrieval's
standard deviation, m3 m-3; used as the error), ``RFI_Prob`` (probability of RFI; above ``rfi_max``, default 0.2 ->
FLAG_RFI) and ``Chi_2_P`` (probability of the retrieval fit's chi-square; below ``chi2p_min``, default 0.05 ->
FLAG_QUALITY). Files reduced to the soil moisture and its time (like the test fixture, a CDO subset) have no error
field: the error is then ``error`` (default 0.04 m3 m-3, the SMOS mission target, Kerr et al. 2010). Values outside
[0, 1] are FLAG_RANGE. ``Science_Flags`` / ``Processing_Flags`` are not decoded (their bit layout is not verified
here); frozen soil and snow therefore come only from the model-side checks of the assimilation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..format import FLAG_RANGE
from ._common import (DEFAULT_PASS_GAP_S, DEFAULT_PIXEL_REJECT, FLAG_QUALITY, FLAG_RFI, aggregate_to_cells,
                      check_units, merge_results, open_nc, require, run_columns)
from .ascat import scaled

SMOS_SENSING_DEPTH = 0.05   # m, L band
SMOS_DEFAULT_ERROR = 0.04   # m3 m-3, mission target, used where the file has no Soil_Moisture_Dqx
_SMOS_EPOCH = np.datetime64('2000-01-01T00:00:00', 's')


def smos_l3_pixels(path, error=SMOS_DEFAULT_ERROR, rfi_max=0.2, chi2p_min=0.05):
    product = 'SMOS L3 CATDS (DBL.nc)'
    nc = open_nc(path, product)
    try:
        require(nc.variables, ('lat', 'lon', 'Soil_Moisture', 'Mean_Acq_Time_Days', 'Mean_Acq_Time_Seconds'),
                path, product)
        sm_v = nc['Soil_Moisture']
        check_units(path, 'Soil_Moisture', getattr(sm_v, 'units', None), ('m3.m-3', 'm3 m-3', 'm3/m3'))
        if sm_v.dimensions[-2:] != ('lat', 'lon'):
            raise UserError(f"{path}: variable 'Soil_Moisture' has dimensions {sm_v.dimensions}, expected (lat, lon)")
        sm = scaled(sm_v, path).reshape(len(nc.dimensions['lat']), len(nc.dimensions['lon']))
        lat1 = np.asarray(nc['lat'][:], dtype=np.float64)
        lon1 = np.asarray(nc['lon'][:], dtype=np.float64)
        days = scaled(nc['Mean_Acq_Time_Days'], path).reshape(sm.shape)
        secs = scaled(nc['Mean_Acq_Time_Seconds'], path).reshape(sm.shape)
        err = scaled(nc['Soil_Moisture_Dqx'], path).reshape(sm.shape) if 'Soil_Moisture_Dqx' in nc.variables \
            else np.full(sm.shape, np.nan)
        rfi = scaled(nc['RFI_Prob'], path).reshape(sm.shape) if 'RFI_Prob' in nc.variables else None
        chi = scaled(nc['Chi_2_P'], path).reshape(sm.shape) if 'Chi_2_P' in nc.variables else None
    finally:
        nc.close()
    lat, lon = np.meshgrid(lat1, lon1, indexing='ij')
    ok_t = np.isfinite(days) & np.isfinite(secs)
    time = np.full(sm.shape, np.datetime64('NaT'), dtype='datetime64[s]')
    time[ok_t] = _SMOS_EPOCH + (np.round(days[ok_t] * 86400 + secs[ok_t])).astype(np.int64).astype('timedelta64[s]')
    sm = np.where(ok_t, sm, np.nan)
    err = np.where(np.isfinite(err) & (err > 0), err, float(error))
    q = np.zeros(sm.shape, dtype=np.int64)
    q |= np.where(np.isfinite(sm) & ((sm < 0) | (sm > 1)), FLAG_RANGE, 0)
    if rfi is not None:
        q |= np.where(rfi > rfi_max, FLAG_RFI, 0)
    if chi is not None:
        q |= np.where(chi < chi2p_min, FLAG_QUALITY, 0)
    return dict(lat=lat, lon=lon, time=time, value=sm, error=err, quality=q)


def read_smos_l3(path, domain, columns=None, *, start=None, end=None, sensor='SMOS', error=SMOS_DEFAULT_ERROR,
                 rfi_max=0.2, chi2p_min=0.05, sensing_depth=SMOS_SENSING_DEPTH,
                 pixel_reject=DEFAULT_PIXEL_REJECT | FLAG_RANGE, pass_gap_s=DEFAULT_PASS_GAP_S):
    """SMOS CATDS L3 daily file(s) (a ``.DBL.nc`` file or a directory searched recursively) -> ProductObservations
    (volumetric)."""
    cols = run_columns(domain, columns)
    path = Path(path)
    files = [path] if not path.is_dir() else sorted(path.rglob('*.DBL.nc'))
    if not files:
        raise UserError(f"{path}: no SMOS L3 file (*.DBL.nc)")
    results = [aggregate_to_cells('smos_l3', sensor, 'volumetric', sensing_depth, domain, cols, start=start,
                                  end=end, pixel_reject=pixel_reject, pass_gap_s=pass_gap_s, files=[str(f)],
                                  source=f'SMOS CATDS L3 {Path(f).name}',
                                  **smos_l3_pixels(f, error, rfi_max, chi2p_min))
               for f in files]
    return merge_results(results, 'smos_l3')
