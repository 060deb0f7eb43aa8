"""Simulated in-situ network (10 cm probes) and an ERA5-Land-like reference field, from a truth run.

In situ (:func:`simulate_insitu`)
----------------------------------
Stations are drawn (keyed by station number) from the land columns in a box with probability proportional to cell
area (cos latitude); several may share a cell; each gets a random position inside its cell. The daily-mean value
of station ``s`` in cell ``c`` on day ``d``::

    y = mean_c + scale_s (x_c(d) - mean_c) + bias_s + anom_std * A_s(d) + noise_std * e_s(d)

with ``x_c`` the cell's truth at 0.10 m (operators.point_weights, INSITU_DEPTH), ``mean_c`` its mean over the
simulated period, ``bias_s ~ N(0, bias_std)`` and ``log(scale_s) ~ N(0, scale_log_std)`` the station's persistent
point-to-cell difference (soil texture, topography and land use of the plot differ from the cell mean), ``A_s`` a
unit-variance AR(1) point anomaly (e-folding ``anom_tau_days``: local rain cells, drainage) and ``e_s`` white
measurement noise. Defaults (:class:`InsituSettings`) follow the literature on point-to-grid representativeness
for grid cells of 50-150 km: spatial standard deviations of 0.03-0.06 m3 m-3 at such extents (Famiglietti et al.
2008, WRR 44, W01423), temporally persistent ranks of individual sites (Vachaud et al. 1985, SSSAJ 49), point
representativeness errors of ~0.02-0.04 m3 m-3 found by triple collocation against coarse products (Miralles et
al. 2010, J. Hydrometeor. 11; Gruber et al. 2013, Vadose Zone J. 12) and the review of Crow et al. 2012 (Rev.
Geophys. 50, RG2002); probe accuracy after calibration ~0.01-0.02 m3 m-3 (Dorigo et al. 2011 ISMN, HESS 15).
Gaps: a day is missing with probability ``p_missing``; outages start with probability ``p_outage`` per day and
last ``outage_days`` (uniform range) days.

Reference (:func:`simulate_reference`)
--------------------------------------
Truth aggregated to the three evaluation layers (0-7, 7-28, 28-100 cm) plus ``bias[l] + std[l] * E_l`` where
``E_l = sqrt(r) F_0 + sqrt(1 - r) F_l`` mixes a component shared by the layers (correlation ``r``) with a layer's
own, and every ``F`` is a unit-variance field with Gaussian spatial correlation ``exp(-d^2 / L^2)``
(:class:`colmda.forcing.perturb.GaussianSmoother`, e-folding ``corr_km``) and AR(1) in time (daily nodes,
e-folding ``tau_days``; finite-memory sum as in :func:`colmda.obs.simulate.keyed_ar1`). Magnitudes: ERA5-Land
top-layer ubRMSE against in situ ~0.04-0.06 m3 m-3 and a wet bias in many regions (Muñoz-Sabater et al. 2021,
ESSD 13; Beck et al. 2021, HESS 25; Li et al. 2020, J. Hydrol. 581 for China), smaller errors for deeper layers.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..forcing.perturb import GaussianSmoother, keyed_normal, keyed_uniform
from ..output import atomic_path, put_strings
from . import operators
from .format import open_netcdf
from .simulate import keyed_ar1

__all__ = ['InsituSettings', 'InsituTable', 'simulate_insitu', 'write_insitu', 'read_insitu',
           'ReferenceSettings', 'ReferenceField', 'simulate_reference', 'write_reference', 'read_reference']

_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')
DAY_UNITS = 'days since 1970-01-01 00:00:00'

# keyed streams (distinct from forcing 101-112 and satellites 201-203)
S_PLACE, S_LAT, S_LON, S_BIAS, S_SCALE, S_ANOM, S_NOISE, S_MISS, S_OUT, S_OUTLEN = range(301, 311)
S_REF = 351


def _days(times) -> np.ndarray:
    """Integer day numbers since 1970-01-01 of datetime64 ``times`` (floor)."""
    t = np.asarray(times, dtype='datetime64[s]')
    return np.floor((t - _EPOCH).astype(np.int64) / 86400.0).astype(np.int64)


def _check_theta(theta_daily, times, column, lat, lon, dz_soil, who):
    th = np.asarray(theta_daily, dtype=np.float64)
    column = np.asarray(column, dtype=np.int64).ravel()
    times = np.asarray(times, dtype='datetime64[s]').ravel()
    nl = np.asarray(dz_soil).size
    if th.shape != (times.size, nl, column.size):
        raise UserError(f"{who}: theta_daily has shape {th.shape}, expected (ntime={times.size}, "
                        f"nlayer={nl}, ncol={column.size})")
    lat = np.asarray(lat, dtype=np.float64).ravel()
    lon = np.asarray(lon, dtype=np.float64).ravel()
    if lat.size != column.size or lon.size != column.size:
        raise UserError(f"{who}: lat/lon have {lat.size}/{lon.size} values, expected ncol={column.size}")
    if times.size > 1 and np.any(np.diff(times.astype(np.int64)) <= 0):
        raise UserError(f"{who}: times must be strictly increasing")
    return th, times, column, lat, lon


# =============================================================================================================
# In situ


@dataclasses.dataclass(frozen=True)
class InsituSettings:
    """Point-to-cell representativeness and gap model (m3 m-3 unless noted; sources in the module docstring)."""

    bias_std: float = 0.03          # m3 m-3, station-specific persistent offset from the cell mean
    scale_log_std: float = 0.25     # 1, std of log(scale) of the station's anomaly amplitude
    anom_std: float = 0.02          # m3 m-3, std of the time-correlated point anomaly
    anom_tau_days: float = 10.0     # d, e-folding time of the point anomaly
    noise_std: float = 0.01         # m3 m-3, daily-mean measurement noise
    p_missing: float = 0.02         # 1, probability that a single day is missing
    p_outage: float = 0.003         # 1 d-1, probability that an outage starts on a day
    outage_days: tuple = (5, 30)    # d, range of outage lengths (uniform)
    sm_min: float = 0.01            # m3 m-3, lower physical limit of a probe reading
    sm_max: float = 0.60            # m3 m-3, upper limit when no porosity is given


@dataclasses.dataclass
class InsituTable:
    """Daily station series: ``sm`` (ntime, nstation) m3 m-3 at ``depth`` m, NaN = missing."""

    time: np.ndarray            # datetime64[s], daily
    sm: np.ndarray              # (ntime, nstation) m3 m-3
    column: np.ndarray          # (nstation,) int64 global column of the containing cell
    station_lat: np.ndarray     # deg N
    station_lon: np.ndarray     # deg E
    station_name: np.ndarray    # str
    pft: np.ndarray             # int32 PFT of the containing cell (colmda.domain.PFT_NAMES)
    depth: float = operators.INSITU_DEPTH   # m
    bias: np.ndarray | None = None          # m3 m-3, simulated station bias (not written; for tests)
    scale: np.ndarray | None = None         # 1, simulated anomaly scale (not written)

    @property
    def nstation(self) -> int:
        return int(self.column.size)


def _infer_cell(lat, lon):
    def step(x):
        u = np.unique(np.round(x, 6))
        d = np.diff(u)
        d = d[d > 1e-6]
        return float(d.min()) if d.size else 1.40625
    return step(lat), step(lon)


def _in_box(lat, lon, box):
    if box is None:
        return np.ones(lat.size, bool)
    la0, la1, lo0, lo1 = (float(x) for x in box)
    if la0 > la1:
        raise UserError(f"box: lat_min {la0} > lat_max {la1}")
    lo = np.mod(lon, 360.0)
    a, b = lo0 % 360.0, lo1 % 360.0
    if lo1 - lo0 >= 360.0:
        inlon = np.ones(lat.size, bool)
    elif a <= b:
        inlon = (lo >= a) & (lo <= b)
    else:                                       # box across the 0/360 meridian
        inlon = (lo >= a) | (lo <= b)
    return (lat >= la0) & (lat <= la1) & inlon


def simulate_insitu(theta_daily, times, column, lat, lon, dz_soil, pft, box=None, n_stations=600, seed=0,
                    settings: InsituSettings | None = None, porosity=None, cell_deg=None) -> InsituTable:
    """Daily 10 cm station data from daily-mean truth ``theta_daily`` (ntime, nlayer, ncol) m3 m-3 at ``times``.

    ``column``/``lat``/``lon``/``pft`` describe the land columns (global index, cell centre deg, PFT);
    ``box`` = (lat_min, lat_max, lon_min, lon_max) deg restricts the stations; ``porosity`` (nlayer, ncol) m3 m-3
    caps the readings (else ``settings.sm_max``); ``cell_deg`` = (dlat, dlon) of the grid (inferred if None).
    Placement and all errors are keyed by (seed, stream, station number, day).
    """
    s = settings or InsituSettings()
    th, times, column, lat, lon = _check_theta(theta_daily, times, column, lat, lon, dz_soil, 'simulate_insitu')
    pft = np.asarray(pft).ravel()
    if pft.size != column.size:
        raise UserError(f"simulate_insitu: pft has {pft.size} values, expected ncol={column.size}")
    if int(n_stations) < 1:
        raise UserError(f"simulate_insitu: n_stations = {n_stations}, expected >= 1")
    cand = np.flatnonzero(_in_box(lat, lon, box))
    if cand.size == 0:
        raise UserError(f"simulate_insitu: no land column inside box {box}")
    cand = cand[np.argsort(column[cand], kind='stable')]       # order by global index: subset-independent
    dlat, dlon = cell_deg if cell_deg is not None else _infer_cell(lat, lon)
    nst = int(n_stations)
    st = np.arange(nst, dtype=np.int64)
    wgt = np.cos(np.radians(lat[cand]))
    cdf = np.cumsum(wgt) / wgt.sum()
    pick = cand[np.minimum(np.searchsorted(cdf, keyed_uniform(seed, S_PLACE, st)), cand.size - 1)]
    slat = lat[pick] + (keyed_uniform(seed, S_LAT, st) - 0.5) * dlat
    slon = np.mod(lon[pick] + (keyed_uniform(seed, S_LON, st) - 0.5) * dlon, 360.0)
    # truth at the probe depth, cell mean over the period
    wpt = operators.point_weights(dz_soil, operators.INSITU_DEPTH)
    x = operators.apply_weights(wpt, th, axis=1)[:, pick]            # (ntime, nst) m3 m-3
    xm = np.nanmean(x, axis=0)
    bias = s.bias_std * keyed_normal(seed, S_BIAS, st)
    scale = np.exp(s.scale_log_std * keyed_normal(seed, S_SCALE, st))
    day = _days(times)
    anom = keyed_ar1(seed, S_ANOM, st[None, :], day[:, None].astype(np.float64), s.anom_tau_days)
    noise = keyed_normal(seed, S_NOISE, st[None, :], day[:, None])
    y = xm + scale * (x - xm) + bias + s.anom_std * anom + s.noise_std * noise
    if porosity is not None:
        phi = np.asarray(porosity, dtype=np.float64)
        if phi.shape != th.shape[1:]:
            raise UserError(f"simulate_insitu: porosity has shape {phi.shape}, expected {th.shape[1:]}")
        upper = (wpt @ phi)[pick]
    else:
        upper = np.full(nst, s.sm_max)
    y = np.clip(y, s.sm_min, upper)
    # gaps: single missing days and multi-day outages
    miss = keyed_uniform(seed, S_MISS, st[None, :], day[:, None]) < s.p_missing
    lmin, lmax = (int(v) for v in s.outage_days)
    for m in range(lmax):
        d0 = day[:, None] - m
        started = keyed_uniform(seed, S_OUT, st[None, :], d0) < s.p_outage
        length = lmin + np.floor(keyed_uniform(seed, S_OUTLEN, st[None, :], d0) * (lmax - lmin + 1))
        miss |= started & (length > m)
    y[miss] = np.nan
    y[~np.isfinite(x)] = np.nan
    names = np.array([f'SIM{i:04d}' for i in st], dtype=object)
    return InsituTable(time=times, sm=y, column=column[pick], station_lat=slat, station_lon=slon,
                       station_name=names, pft=pft[pick].astype(np.int32), bias=bias, scale=scale)


def _nc_time(nc, times):
    """Daily-mean time axis: stamped at noon (the centre of the day) with ``time_bnds`` = [day start, next day),
    so that CDO and xarray put each mean in the day it covers."""
    day = (np.asarray(times, dtype='datetime64[s]') - _EPOCH).astype(np.int64) / 86400.0
    day = np.floor(day)
    t = nc.createVariable('time', 'f8', ('time',))
    t.setncatts(dict(standard_name='time', long_name='centre of the day of the daily mean', units=DAY_UNITS,
                     calendar='proleptic_gregorian', axis='T', bounds='time_bnds'))
    t[:] = day + 0.5
    if 'nv' not in nc.dimensions:
        nc.createDimension('nv', 2)
    b = nc.createVariable('time_bnds', 'f8', ('time', 'nv'))
    b[:] = np.stack([day, day + 1.0], axis=1) if day.size else np.zeros((0, 2))


def _history():
    return _dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ') + ' written by colmda'


def _attrs(title, source, **extra):
    from ..output import global_attributes

    a = global_attributes(title, **extra)
    a['source'] = source
    a['history'] = _history()
    return a


def _put(nc, name, dtype, dims, data, fill=None, **attrs):
    """One variable: create it (with ``fill`` as _FillValue if given) with its CF attributes and write ``data``."""
    v = nc.createVariable(name, dtype, dims, **({} if fill is None else {'fill_value': fill}))
    v.setncatts(attrs)
    if dims:
        v[:] = data
    else:
        v.assignValue(data)
    return v


def write_insitu(path, table: InsituTable, source='colmda OSSE: simulated in-situ network') -> Path:
    """Write the station table to netCDF-4 atomically (layout in ``docs/observations.md``)."""
    import netCDF4

    path = Path(path)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, 'w', format='NETCDF4')
        try:
            nc.createDimension('time', None)
            nc.createDimension('station', table.nstation)
            _nc_time(nc, table.time)
            _put(nc, 'sm', 'f8', ('time', 'station'), table.sm, fill=np.nan,
                 standard_name='volume_fraction_of_condensed_water_in_soil', units='m3 m-3',
                 long_name='daily mean volumetric soil moisture at the probe depth', cell_methods='time: mean',
                 coordinates='station_lat station_lon depth station_name')
            _put(nc, 'column', 'i4', ('station',), np.asarray(table.column, dtype=np.int32),
                 long_name='global domain column index j*nlon+i of the containing cell', units='1')
            _put(nc, 'station_lat', 'f8', ('station',), table.station_lat,
                 standard_name='latitude', units='degrees_north', long_name='station latitude')
            _put(nc, 'station_lon', 'f8', ('station',), table.station_lon,
                 standard_name='longitude', units='degrees_east', long_name='station longitude')
            put_strings(nc, 'station_name', 'station', table.station_name, long_name='station name',
                        cf_role='timeseries_id')
            _put(nc, 'pft', 'i4', ('station',), table.pft,
                 long_name='plant functional type of the containing cell (colmda.domain.PFT_NAMES)', units='1')
            _put(nc, 'depth', 'f8', (), float(table.depth),
                 standard_name='depth', units='m', positive='down', long_name='probe depth')
            nc.setncatts(_attrs('in-situ soil moisture', source, featureType='timeSeries'))
        finally:
            nc.close()
    return path


def _get(nc, path, name, dims, units=None):
    if name not in nc.variables:
        raise UserError(f"{path}: variable '{name}' missing")
    v = nc.variables[name]
    if v.dimensions != dims:
        raise UserError(f"{path}: variable '{name}' has dimensions {v.dimensions}, expected {dims}")
    if units is not None:
        u = getattr(v, 'units', None)
        if u is None or u.strip() != units:
            raise UserError(f"{path}: variable '{name}' has units {u!r}, expected '{units}'")
    return v[...]


def _read_time(nc, path):
    """Days of a daily file (datetime64[s] at 00:00): the start of ``time_bnds``, else the day the time stamp lies
    in; any CF time units (decoded by cftime)."""
    from ..timeaxis import decode_seconds

    t = np.asarray(_get(nc, path, 'time', ('time',)), dtype=np.float64)
    tv = nc.variables['time']
    units, cal = getattr(tv, 'units', ''), getattr(tv, 'calendar', 'standard')
    where = f"{path}: variable 'time'"
    bname = getattr(tv, 'bounds', 'time_bnds')
    if bname in nc.variables:
        sec = decode_seconds(np.asarray(nc.variables[bname][:], dtype=np.float64)[:, 0], units, cal, where=where)
    else:
        sec = decode_seconds(t, units, cal, where=where)
    day = np.floor(np.round(sec) / 86400.0).astype(np.int64)
    return _EPOCH + (day * 86400).astype('timedelta64[s]')


def _read_strings(nc, path, name, dim):
    """A string variable: CF character array (dim, strlen) or a netCDF-4 vlen string (dim,) of older files."""
    import netCDF4

    if name not in nc.variables:
        raise UserError(f"{path}: variable '{name}' missing")
    v = nc.variables[name]
    if v.dimensions[:1] != (dim,) or len(v.dimensions) > 2:
        raise UserError(f"{path}: variable '{name}' has dimensions {v.dimensions}, expected ('{dim}', strlen)")
    if len(v.dimensions) == 2:
        v.set_auto_chartostring(False)
        raw = np.asarray(v[:])
        return np.array([str(x) for x in netCDF4.chartostring(raw, encoding='utf-8')], dtype=object)
    return np.array([str(x) for x in v[:]], dtype=object)


def read_insitu(path) -> InsituTable:
    """Read a station file written by :func:`write_insitu`, validating variables, dimensions and units."""
    nc = open_netcdf(path, 'in-situ')
    try:
        time = _read_time(nc, path)
        sm = np.asarray(_get(nc, path, 'sm', ('time', 'station'), 'm3 m-3'), dtype=np.float64)
        col = np.asarray(_get(nc, path, 'column', ('station',)), dtype=np.int64)
        slat = np.asarray(_get(nc, path, 'station_lat', ('station',), 'degrees_north'), dtype=np.float64)
        slon = np.asarray(_get(nc, path, 'station_lon', ('station',), 'degrees_east'), dtype=np.float64)
        names = _read_strings(nc, path, 'station_name', 'station')
        pft = np.asarray(_get(nc, path, 'pft', ('station',)), dtype=np.int32)
        depth = float(np.asarray(_get(nc, path, 'depth', (), 'm')))
        return InsituTable(time=time, sm=sm, column=col, station_lat=slat, station_lon=slon, station_name=names,
                           pft=pft, depth=depth)
    finally:
        nc.close()


# =============================================================================================================
# Reference (ERA5-Land-like)


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """Error model of the reanalysis-like reference (per evaluation layer 0-7, 7-28, 28-100 cm)."""

    bias: tuple = (0.03, 0.02, 0.01)        # m3 m-3, reference minus truth (wet bias)
    std: tuple = (0.04, 0.03, 0.025)        # m3 m-3, error std
    corr_km: float = 500.0                  # km, e-folding distance of the spatial error correlation
    tau_days: float = 10.0                  # d, e-folding time of the error
    layer_corr: float = 0.6                 # 1, correlation of the errors of two layers
    sm_min: float = 0.01                    # m3 m-3
    sm_max: float = 0.60                    # m3 m-3 (when no porosity is given)


@dataclasses.dataclass
class ReferenceField:
    time: np.ndarray            # datetime64[s], daily
    sm: np.ndarray              # (ntime, 3, ncol) m3 m-3
    layer_top: np.ndarray       # (3,) m
    layer_bottom: np.ndarray    # (3,) m
    column: np.ndarray          # (ncol,) int64
    lat: np.ndarray             # deg N
    lon: np.ndarray             # deg E


def reference_error_fields(grid, column, days, seed, settings: ReferenceSettings) -> np.ndarray:
    """Unit-variance error fields E (ntime, 3, ncol) at the given global columns for day numbers ``days``:
    spatially correlated (Gaussian, ``corr_km``), AR(1) in time, inter-layer correlation ``layer_corr``."""
    glat, glon = (np.asarray(g, dtype=np.float64).ravel() for g in grid)
    nlon = glon.size
    dlon = float(glon[1] - glon[0]) if nlon > 1 else 360.0
    is_global = abs(nlon * dlon - 360.0) < 1e-6
    sm = GaussianSmoother(glat, glon, settings.corr_km, is_global=is_global)
    j, i = column // nlon, column % nlon
    rho = math.exp(-1.0 / settings.tau_days)
    M = max(1, int(math.ceil(math.log(1e-3) / math.log(rho))))
    c = math.sqrt((1.0 - rho ** 2) / (1.0 - rho ** (2 * M)))
    dmin, dmax = int(days.min()), int(days.max())
    node_days = np.arange(dmin - M + 1, dmax + 1)
    r = settings.layer_corr
    out = np.zeros((days.size, 3, column.size))
    for comp in range(4):                       # 0 = shared by the layers, 1..3 = each layer's own
        white = np.stack([sm.sample(seed, S_REF, comp, int(d))[j, i] for d in node_days])   # (nnode, ncol)
        # finite-memory AR(1): X_d = c sum_m rho^m a_{d-m}
        x = np.stack([c * np.tensordot(rho ** np.arange(M), white[d - dmin:d - dmin + M][::-1], axes=(0, 0))
                      for d in days])
        if comp == 0:
            out += math.sqrt(r) * x[:, None, :]
        else:
            out[:, comp - 1, :] += math.sqrt(1.0 - r) * x
    return out


def simulate_reference(theta_daily, times, column, lat, lon, dz_soil, grid, seed=0,
                       settings: ReferenceSettings | None = None, porosity=None) -> ReferenceField:
    """ERA5-Land-like reference on the evaluation layers from daily truth ``theta_daily`` (ntime, nlayer, ncol).

    ``grid`` = (lat (nlat,), lon (nlon,)) of the domain grid (``column`` = j*nlon + i on it; the errors are drawn
    on the whole grid, so they do not depend on which columns are asked for); ``porosity`` (nlayer, ncol) caps
    the values (else ``settings.sm_max``).
    """
    s = settings or ReferenceSettings()
    th, times, column, lat, lon = _check_theta(theta_daily, times, column, lat, lon, dz_soil,
                                               'simulate_reference')
    glat, glon = (np.asarray(g, dtype=np.float64).ravel() for g in grid)
    nlon = glon.size
    j, i = column // nlon, column % nlon
    if column.size and (column.min() < 0 or j.max() >= glat.size):
        raise UserError(f"simulate_reference: column indices outside the {glat.size}x{nlon} grid")
    if np.any(np.abs(glat[j] - lat) > 1e-6) or np.any(np.abs(np.mod(glon[i] - lon + 180.0, 360.0) - 180.0) > 1e-6):
        raise UserError("simulate_reference: lat/lon of the columns do not match the grid cell j*nlon+i")
    if len(s.bias) != 3 or len(s.std) != 3:
        raise UserError("ReferenceSettings: bias and std need one value per evaluation layer (3)")
    W = np.stack([operators.layer_weights(dz_soil, a, b) for a, b in operators.EVALUATION_LAYERS])  # (3, nl)
    truth = np.einsum('ln,tnc->tlc', W, th)
    E = reference_error_fields((glat, glon), column, _days(times), seed, s)
    sm = truth + np.asarray(s.bias)[None, :, None] + np.asarray(s.std)[None, :, None] * E
    if porosity is not None:
        phi = np.asarray(porosity, dtype=np.float64)
        if phi.shape != th.shape[1:]:
            raise UserError(f"simulate_reference: porosity has shape {phi.shape}, expected {th.shape[1:]}")
        upper = (W @ phi)[None]
    else:
        upper = s.sm_max
    sm = np.clip(sm, s.sm_min, upper)
    top = np.array([a for a, _ in operators.EVALUATION_LAYERS])
    bot = np.array([b for _, b in operators.EVALUATION_LAYERS])
    return ReferenceField(time=times, sm=sm, layer_top=top, layer_bottom=bot, column=column, lat=lat, lon=lon)


def write_reference(path, ref: ReferenceField, source='colmda OSSE: simulated ERA5-Land-like reference') -> Path:
    """Write the reference field to netCDF-4 atomically (layout in ``docs/observations.md``)."""
    import netCDF4

    path = Path(path)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, 'w', format='NETCDF4')
        try:
            nc.createDimension('time', None)
            nc.createDimension('layer', ref.layer_top.size)
            nc.createDimension('column', ref.column.size)
            _nc_time(nc, ref.time)
            _put(nc, 'sm', 'f8', ('time', 'column', 'layer'), np.swapaxes(ref.sm, 1, 2), fill=np.nan,
                 standard_name='volume_fraction_of_condensed_water_in_soil', units='m3 m-3',
                 long_name='daily mean volumetric soil moisture of the layer', cell_methods='time: mean',
                 coordinates='lat lon')
            _put(nc, 'layer', 'f8', ('layer',), 0.5 * (ref.layer_top + ref.layer_bottom), standard_name='depth',
                 units='m', positive='down', axis='Z', bounds='layer_bnds', long_name='depth of the layer centre')
            _put(nc, 'layer_bnds', 'f8', ('layer', 'nv'), np.stack([ref.layer_top, ref.layer_bottom], axis=1))
            _put(nc, 'layer_top', 'f8', ('layer',), ref.layer_top,
                 units='m', positive='down', long_name='depth of the top of the layer')
            _put(nc, 'layer_bottom', 'f8', ('layer',), ref.layer_bottom,
                 units='m', positive='down', long_name='depth of the bottom of the layer')
            _put(nc, 'column', 'i4', ('column',), np.asarray(ref.column, dtype=np.int32), cf_role='timeseries_id',
                 long_name='global domain column index j*nlon+i', units='1')
            _put(nc, 'lat', 'f8', ('column',), ref.lat,
                 standard_name='latitude', units='degrees_north', long_name='cell centre latitude')
            _put(nc, 'lon', 'f8', ('column',), ref.lon,
                 standard_name='longitude', units='degrees_east', long_name='cell centre longitude')
            nc.setncatts(_attrs('reference soil moisture (reanalysis-like)', source, featureType='timeSeries'))
        finally:
            nc.close()
    return path


def read_reference(path) -> ReferenceField:
    """Read a reference file written by :func:`write_reference`, validating variables, dimensions and units."""
    nc = open_netcdf(path, 'reference')
    try:
        time = _read_time(nc, path)
        if 'sm' in nc.variables and nc.variables['sm'].dimensions == ('time', 'layer', 'column'):  # older files
            sm = np.asarray(_get(nc, path, 'sm', ('time', 'layer', 'column'), 'm3 m-3'), dtype=np.float64)
        else:
            sm = np.swapaxes(np.asarray(_get(nc, path, 'sm', ('time', 'column', 'layer'), 'm3 m-3'),
                                        dtype=np.float64), 1, 2)
        top = np.asarray(_get(nc, path, 'layer_top', ('layer',), 'm'), dtype=np.float64)
        bot = np.asarray(_get(nc, path, 'layer_bottom', ('layer',), 'm'), dtype=np.float64)
        col = np.asarray(_get(nc, path, 'column', ('column',)), dtype=np.int64)
        lat = np.asarray(_get(nc, path, 'lat', ('column',), 'degrees_north'), dtype=np.float64)
        lon = np.asarray(_get(nc, path, 'lon', ('column',), 'degrees_east'), dtype=np.float64)
        return ReferenceField(time=time, sm=sm, layer_top=top, layer_bottom=bot, column=col, lat=lat, lon=lon)
    finally:
        nc.close()
