"""Forcing readers: an interface for meteorological forcing files, and a PLUMBER2 / ALMA site reader.

A reader exposes its variables (the core's names ``tair``, ``qair``, ``psurf``, ``prec``, ``wind``,
``swdown``, ``lwdown`` plus optional extras such as ``lai``), its UTC time stamps, the time convention of
each variable, and ``read(start, end, columns)``. Conventions:

* ``'instant'``: the value at the stamp;
* ``'forward_mean'``: the mean over [stamp, stamp + interval);
* ``'backward_mean'``: the mean over (stamp - interval, stamp].

:mod:`colmda.forcing.interp` turns a :class:`ForcingChunk` into the core's forcing at the model step.
All data are returned in the core's units (K, kg kg-1, Pa, kg m-2 s-1, m s-1, W m-2). Errors are
:class:`ForcingError` and name the file, the variable and what was expected.
"""

from __future__ import annotations

import abc
import dataclasses

import numpy as np

__all__ = ['ForcingError', 'ForcingChunk', 'ForcingReader', 'Plumber2Reader', 'CORE_VARIABLES',
           'CONVENTIONS']

CORE_VARIABLES = ('tair', 'qair', 'psurf', 'prec', 'wind', 'swdown', 'lwdown')
CONVENTIONS = ('instant', 'forward_mean', 'backward_mean')

# plausible ranges in the core's units (checked after conversion)
_RANGES = {
    'tair': (170.0, 340.0), 'qair': (0.0, 0.06), 'psurf': (3.0e4, 1.1e5), 'prec': (0.0, 0.2),
    'wind': (0.0, 80.0), 'swdown': (-15.0, 1500.0), 'lwdown': (30.0, 700.0), 'lai': (0.0, 15.0),
}


#: consistency checks (site files): humidity up to this factor above saturation is set to saturation (counted in
#: ``Plumber2Reader.clipped``), more is an error; shortwave down to this value (W m-2, night-time sensor offsets)
#: is set to 0 (counted), lower is an error; longwave must lie within these fractions of sigma * Tair**4
QAIR_SUPERSATURATION_TOLERANCE = 1.05
SWDOWN_OFFSET_TOLERANCE = _RANGES['swdown'][0]
LWDOWN_EMISSIVITY_RANGE = (0.4, 1.5)


class ForcingError(ValueError):
    """A forcing file is unusable or does not cover the request; the message names file and variable."""


@dataclasses.dataclass
class ForcingChunk:
    """Forcing records as read: ``data[name]`` has shape (ntime, ncol) in the core's units."""

    source: str                 # file path (for messages)
    times: np.ndarray           # (ntime,) datetime64[s], UTC time stamps
    interval: int               # s, spacing of the stamps
    data: dict                  # name -> (ntime, ncol) float64
    conventions: dict           # name -> 'instant' | 'forward_mean' | 'backward_mean'
    lat: np.ndarray             # (ncol,) degrees_north
    lon: np.ndarray             # (ncol,) degrees_east
    qc: dict = dataclasses.field(default_factory=dict)  # name -> (ntime, ncol) quality flags, if any

    def seconds(self):
        """Time stamps as float seconds since 1970-01-01 UTC."""
        return self.times.astype('datetime64[s]').astype(np.int64).astype(np.float64)


class ForcingReader(abc.ABC):
    """Interface of a forcing file reader (see the module docstring for the conventions)."""

    path: str = ''

    @property
    @abc.abstractmethod
    def variables(self):
        """Names of the variables the reader provides (core names first, then extras)."""

    @abc.abstractmethod
    def times(self):
        """UTC time stamps, numpy datetime64[s] (ntime,)."""

    @property
    @abc.abstractmethod
    def interval(self):
        """Spacing of the time stamps (s)."""

    @abc.abstractmethod
    def convention(self, name):
        """Time convention of a variable: 'instant', 'forward_mean' or 'backward_mean'."""

    @property
    @abc.abstractmethod
    def lat(self):
        """Latitudes of the reader's columns (ncol,)."""

    @property
    @abc.abstractmethod
    def lon(self):
        """Longitudes of the reader's columns (ncol,)."""

    @abc.abstractmethod
    def read(self, start, end, columns=None):
        """Records whose intervals overlap [start, end] (UTC datetime64), plus one record on each side
        when available, for the reader's columns ``columns`` (indices into :attr:`lat`; default all).
        Returns a :class:`ForcingChunk`."""

    def coverage(self, name=None):
        """(first, last) UTC instants covered by the data of a variable (interval edges for means)."""
        t = self.times().astype('datetime64[s]')
        conv = self.convention(name or 'tair')
        iv = np.timedelta64(int(self.interval), 's')
        if conv == 'forward_mean':
            return t[0], t[-1] + iv
        if conv == 'backward_mean':
            return t[0] - iv, t[-1]
        return t[0], t[-1]


# ---------------------------------------------------------------------------------------------------------
# PLUMBER2 / ALMA site files
# ---------------------------------------------------------------------------------------------------------

_UNIT_CONV = {
    'tair': {'K': (1.0, 0.0), 'degC': (1.0, 273.15), 'C': (1.0, 273.15), 'deg C': (1.0, 273.15),
             'celsius': (1.0, 273.15)},
    'qair': {'kg/kg': (1.0, 0.0), 'kg kg-1': (1.0, 0.0), '1': (1.0, 0.0), 'g/kg': (1e-3, 0.0),
             'g kg-1': (1e-3, 0.0)},
    'psurf': {'Pa': (1.0, 0.0), 'hPa': (100.0, 0.0), 'mbar': (100.0, 0.0), 'mb': (100.0, 0.0),
              'kPa': (1000.0, 0.0)},
    'prec': {'kg/m2/s': (1.0, 0.0), 'kg m-2 s-1': (1.0, 0.0), 'kg/m^2/s': (1.0, 0.0), 'mm/s': (1.0, 0.0),
             'mm s-1': (1.0, 0.0)},
    'wind': {'m/s': (1.0, 0.0), 'm s-1': (1.0, 0.0)},
    'swdown': {'W/m2': (1.0, 0.0), 'W m-2': (1.0, 0.0), 'W/m^2': (1.0, 0.0), 'W m^-2': (1.0, 0.0)},
    'lwdown': {'W/m2': (1.0, 0.0), 'W m-2': (1.0, 0.0), 'W/m^2': (1.0, 0.0), 'W m^-2': (1.0, 0.0)},
    'lai': {'1': (1.0, 0.0), 'm2/m2': (1.0, 0.0), 'm2 m-2': (1.0, 0.0), '-': (1.0, 0.0), '': (1.0, 0.0)},
    'rh': {'%': (0.01, 0.0), '1': (1.0, 0.0)},
    'vpd': {'hPa': (100.0, 0.0), 'Pa': (1.0, 0.0), 'kPa': (1000.0, 0.0)},
}

def _local_time_stamps(path, values, units, calendar):
    """The file's time stamps as written (local standard time for PLUMBER2 files) and the UTC offset (h) the units
    name, or None. Decoded by cftime (:mod:`colmda.timeaxis`): any CF ``<unit> since <date>`` units."""
    from ..errors import UserError
    from ..timeaxis import decode_seconds, units_offset_hours

    where = f"{path}: variable 'time'"
    try:
        offset = units_offset_hours(units or '', where=where)
        utc = decode_seconds(values, units or '', calendar, where=where)
    except UserError as exc:
        raise ForcingError(str(exc)) from None
    local = utc + 3600.0 * (offset or 0.0)  # back to the stamps as written: the offset is applied separately
    return np.datetime64('1970-01-01T00:00:00', 's') + np.round(local).astype(np.int64).astype('timedelta64[s]'), \
        offset


class Plumber2Reader(ForcingReader):
    """Reader for PLUMBER2 / ALMA site forcing files (``*_Met.nc``), e.g. DK-Fou 2005.

    PLUMBER2 time stamps are local standard time and mark the *start* of each averaging interval
    (30 min or 1 h); every variable is an interval mean (``'forward_mean'``). The UTC offset (hours,
    local = UTC + offset) is, in order: the ``utc_offset_hours`` argument; an offset written in the time
    units (``... since 2005-01-01 00:00:00 +01:00``) or a ``UTC_offset``/``time_zone`` global attribute;
    else estimated from the data: the circular centroid of the mean diurnal shortwave cycle (at interval
    centres) minus the UTC time of local solar noon, rounded to the nearest half hour. The result and its
    source are in :attr:`utc_offset_hours` and :attr:`utc_offset_source`.

    Derived variables: ``qair`` from ``Qair`` (else from ``RH`` or ``VPD`` with ``Tair`` and ``Psurf``),
    ``psurf`` from ``Psurf`` (else the standard atmosphere at the site ``elevation``), ``prec`` from
    ``Precip`` (else ``Rainf + Snowf``), ``wind`` from ``Wind`` (else the norm of ``Wind_E``/``Wind_N``).
    Negative shortwave values (night-time sensor offsets) are set to 0. ``LAI`` is an optional extra
    ``lai``. Quality flags ``<Var>_qc`` are returned in :attr:`ForcingChunk.qc`.
    """

    def __init__(self, path, utc_offset_hours=None):
        import netCDF4
        self.path = str(path)
        try:
            ds = netCDF4.Dataset(self.path)
        except OSError as exc:
            raise ForcingError(f'{self.path}: cannot be opened as netCDF ({exc})') from None
        try:
            ds.set_auto_mask(False)
            self.attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
            if 'time' not in ds.variables:
                raise ForcingError(f"{self.path}: variable 'time' is missing")
            tv = ds['time']
            local, unit_offset = _local_time_stamps(self.path, np.asarray(tv[:], dtype=np.float64),
                                                    getattr(tv, 'units', ''), getattr(tv, 'calendar', 'standard'))
            if local.size < 2:
                raise ForcingError(f"{self.path}: variable 'time' needs at least two records")
            step = np.diff(local).astype(np.int64)
            if not np.all(step == step[0]) or step[0] <= 0:
                raise ForcingError(f"{self.path}: variable 'time' is not regularly spaced and increasing")
            self._interval = int(step[0])
            self.site_lat = self._scalar(ds, 'latitude', 'degrees_north')
            self.site_lon = self._scalar(ds, 'longitude', 'degrees_east')
            self.elevation = self._scalar(ds, 'elevation', 'm', required=False)
            self.reference_height = self._scalar(ds, 'reference_height', 'm', required=False)
            self.canopy_height = self._scalar(ds, 'canopy_height', 'm', required=False)
            self.igbp = self._text(ds, 'IGBP_veg_short')
            self.site_code = str(self.attrs.get('site_code', ''))
            raw_vars = {}
            for name in ('Tair', 'Qair', 'RH', 'VPD', 'Psurf', 'Precip', 'Rainf', 'Snowf', 'Wind', 'Wind_E',
                         'Wind_N', 'SWdown', 'LWdown', 'LAI'):
                if name in ds.variables:
                    raw_vars[name] = ds[name]
            self._data, self._qc = self._load(ds, raw_vars)
        finally:
            ds.close()
        self._local = local
        if utc_offset_hours is not None:
            self.utc_offset_hours, self.utc_offset_source = float(utc_offset_hours), 'argument'
        elif unit_offset is not None:
            self.utc_offset_hours, self.utc_offset_source = unit_offset, 'time units'
        elif self._offset_attr() is not None:
            self.utc_offset_hours, self.utc_offset_source = self._offset_attr(), 'global attribute'
        else:
            self.utc_offset_hours = self.estimate_utc_offset()
            self.utc_offset_source = 'estimated from the shortwave diurnal cycle'
        self._times = local - np.timedelta64(int(round(self.utc_offset_hours * 3600)), 's')

    # -- loading helpers -----------------------------------------------------------------------------
    def _scalar(self, ds, name, units, required=True):
        if name not in ds.variables:
            if required:
                raise ForcingError(f"{self.path}: variable '{name}' is missing (expected a site value in {units})")
            return float('nan')
        v = np.asarray(ds[name][:], dtype=np.float64).ravel()
        fill = getattr(ds[name], '_FillValue', None)
        if v.size != 1 or (fill is not None and v[0] == fill):
            if required:
                raise ForcingError(f"{self.path}: variable '{name}' must hold one site value in {units}")
            return float('nan')
        return float(v[0])

    def _text(self, ds, name):
        if name not in ds.variables:
            return ''
        try:
            raw = np.asarray(ds[name][:])
            return b''.join(x for x in raw.ravel() if x not in (b'', b'\x00')).decode(errors='ignore').strip()
        except (TypeError, ValueError):
            return ''

    def _series(self, ds, var, kind):
        name = var.name
        a = np.asarray(var[:], dtype=np.float64)
        if a.ndim == 0 or a.shape[0] != ds['time'].shape[0]:
            raise ForcingError(f"{self.path}: variable '{name}' must have time as first dimension")
        a = a.reshape(a.shape[0], -1)
        if a.shape[1] != 1:
            raise ForcingError(f"{self.path}: variable '{name}' has {a.shape[1]} points; expected one site")
        fill = getattr(var, '_FillValue', None)
        if fill is not None:
            a[a == fill] = np.nan
        a[np.abs(a) > 1e30] = np.nan
        units = str(getattr(var, 'units', '')).strip()
        table = _UNIT_CONV[kind]
        if units not in table:
            raise ForcingError(f"{self.path}: variable '{name}' has units '{units}'; expected one of "
                               f"{', '.join(repr(u) for u in table)}")
        f, off = table[units]
        return a * f + off

    def _load(self, ds, rv):
        out, qc = {}, {}

        def need(name, for_):
            if name not in rv:
                raise ForcingError(f"{self.path}: variable '{name}' is missing (needed for {for_})")
            return rv[name]

        out['tair'] = self._series(ds, need('Tair', 'tair'), 'tair')
        if 'Psurf' in rv:
            out['psurf'] = self._series(ds, rv['Psurf'], 'psurf')
        elif np.isfinite(getattr(self, 'elevation', np.nan)):
            from ..make_domain import standard_atmosphere_pressure
            out['psurf'] = np.full_like(out['tair'], standard_atmosphere_pressure(self.elevation))
        else:
            raise ForcingError(f"{self.path}: variable 'Psurf' is missing and there is no 'elevation' to derive it")
        from .humidity import saturation_specific_humidity, saturation_vapour_pressure
        if 'Qair' in rv:
            out['qair'] = self._series(ds, rv['Qair'], 'qair')
        elif 'RH' in rv:
            rh = self._series(ds, rv['RH'], 'rh')
            out['qair'] = rh * saturation_specific_humidity(out['tair'], out['psurf'])
        elif 'VPD' in rv:
            vpd = self._series(ds, rv['VPD'], 'vpd')
            e = np.maximum(saturation_vapour_pressure(out['tair']) - vpd, 0.0)
            out['qair'] = 0.622 * e / (out['psurf'] - 0.378 * e)
        else:
            raise ForcingError(f"{self.path}: variable 'Qair' is missing (and no 'RH' or 'VPD' to derive it)")
        if 'Precip' in rv:
            out['prec'] = self._series(ds, rv['Precip'], 'prec')
        elif 'Rainf' in rv:
            out['prec'] = self._series(ds, rv['Rainf'], 'prec')
            if 'Snowf' in rv:
                out['prec'] = out['prec'] + self._series(ds, rv['Snowf'], 'prec')
        else:
            raise ForcingError(f"{self.path}: variable 'Precip' is missing (and no 'Rainf'/'Snowf')")
        if 'Wind' in rv:
            out['wind'] = self._series(ds, rv['Wind'], 'wind')
        elif 'Wind_E' in rv and 'Wind_N' in rv:
            out['wind'] = np.hypot(self._series(ds, rv['Wind_E'], 'wind'), self._series(ds, rv['Wind_N'], 'wind'))
        else:
            raise ForcingError(f"{self.path}: variable 'Wind' is missing (and no 'Wind_E'/'Wind_N')")
        out['swdown'] = self._series(ds, need('SWdown', 'swdown'), 'swdown')
        out['lwdown'] = self._series(ds, need('LWdown', 'lwdown'), 'lwdown')
        if 'LAI' in rv:
            out['lai'] = self._series(ds, rv['LAI'], 'lai')
        for core, src in (('tair', 'Tair'), ('qair', 'Qair'), ('psurf', 'Psurf'), ('prec', 'Precip'),
                          ('wind', 'Wind'), ('swdown', 'SWdown'), ('lwdown', 'LWdown')):
            if src + '_qc' in ds.variables:
                q = np.asarray(ds[src + '_qc'][:], dtype=np.float64).reshape(-1, 1)
                fill = getattr(ds[src + '_qc'], '_FillValue', None)
                if fill is not None:
                    q[q == fill] = np.nan
                qc[core] = q
        src_name = {'tair': 'Tair', 'qair': 'Qair', 'psurf': 'Psurf', 'prec': 'Precip', 'wind': 'Wind',
                    'swdown': 'SWdown', 'lwdown': 'LWdown', 'lai': 'LAI'}
        for k, a in out.items():
            lo, hi = _RANGES[k]
            finite = np.isfinite(a)
            if k != 'lai' and not np.all(finite):
                i = int(np.flatnonzero(~finite.ravel())[0])
                raise ForcingError(f"{self.path}: variable '{src_name[k]}' has missing values (first at record {i}); "
                                   'expected a gap-filled series')
            bad = finite & ((a < lo) | (a > hi))
            if np.any(bad):
                i = int(np.flatnonzero(bad.ravel())[0])
                raise ForcingError(f"{self.path}: variable '{src_name[k]}' has value {a.ravel()[i]:.4g} at record {i}, "
                                   f'outside the plausible range [{lo}, {hi}] (core units)')
        self._consistency(out, src_name)
        return out, qc

    def _consistency(self, out, src_name):
        """Checks across variables and against physics (after the range checks): humidity above saturation,
        negative shortwave beyond a night-time offset, longwave inconsistent with the air temperature. Small
        excesses are clipped and counted in :attr:`clipped`; larger ones raise ForcingError naming variable and
        record."""
        from .weather import saturation_specific_humidity
        self.clipped = {}
        qsat = saturation_specific_humidity(out['tair'], out['psurf'])
        ratio = out['qair'] / qsat
        bad = ratio > QAIR_SUPERSATURATION_TOLERANCE
        if np.any(bad):
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ForcingError(f"{self.path}: variable '{src_name['qair']}' = {out['qair'].ravel()[i]:.4g} kg kg-1 at "
                               f"record {i} is {ratio.ravel()[i]:.3f} times saturation at Tair "
                               f"{out['tair'].ravel()[i]:.2f} K, Psurf {out['psurf'].ravel()[i]:.0f} Pa; expected at "
                               f"most {QAIR_SUPERSATURATION_TOLERANCE:g} times ({int(bad.sum())} such records)")
        over = ratio > 1.0
        if np.any(over):
            out['qair'] = np.where(over, qsat, out['qair'])
            self.clipped[f"{src_name['qair']} above saturation, set to saturation"] = int(over.sum())
        sw = out['swdown']  # below SWDOWN_OFFSET_TOLERANCE: rejected by the range check
        neg = sw < 0
        if np.any(neg):
            out['swdown'] = np.maximum(sw, 0.0)
            self.clipped['SWdown negative (night-time offset), set to 0'] = int(neg.sum())
        emis = out['lwdown'] / (5.670374419e-8 * out['tair'] ** 4)
        lo, hi = LWDOWN_EMISSIVITY_RANGE
        bad = (emis < lo) | (emis > hi)
        if np.any(bad):
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ForcingError(f"{self.path}: variable 'LWdown' = {out['lwdown'].ravel()[i]:.4g} W m-2 at record {i} "
                               f"is {emis.ravel()[i]:.2f} times sigma*Tair^4 (Tair {out['tair'].ravel()[i]:.2f} K); "
                               f"expected {lo:g} .. {hi:g} times (an atmosphere's emissivity)")

    def _offset_attr(self):
        for key in ('UTC_offset', 'utc_offset', 'time_zone', 'timezone', 'TimeZone'):
            if key in self.attrs:
                try:
                    return float(str(self.attrs[key]).replace('UTC', '').replace('GMT', '') or 0.0)
                except ValueError:
                    continue
        return None

    def estimate_utc_offset(self):
        """UTC offset (h) from the shortwave diurnal cycle, rounded to the nearest half hour."""
        from .. import solar
        sw = self._data['swdown'][:, 0]
        tloc = self._local.astype(np.int64) + 0.5 * self._interval      # local interval centres (s)
        tod = np.mod(tloc, 86400.0) / 3600.0
        ang = 2.0 * np.pi * tod / 24.0
        c, s = np.sum(sw * np.cos(ang)), np.sum(sw * np.sin(ang))
        if np.hypot(c, s) <= 0:
            raise ForcingError(f"{self.path}: variable 'SWdown' has no daylight values; cannot estimate the UTC "
                               'offset (pass utc_offset_hours)')
        centroid = np.mod(np.arctan2(s, c) * 24.0 / (2.0 * np.pi), 24.0)
        noon = np.average(solar.solar_noon_utc_hours(self.site_lon, tloc), weights=np.maximum(sw, 0) + 1e-12)
        est = np.mod(centroid - noon + 12.0, 24.0) - 12.0
        self.utc_offset_estimate_raw = float(est)
        return float(np.round(2.0 * est) / 2.0)

    # -- interface -----------------------------------------------------------------------------------
    @property
    def variables(self):
        return tuple(k for k in CORE_VARIABLES + ('lai',) if k in self._data)

    def times(self):
        return self._times.copy()

    def local_times(self):
        """The file's time stamps (local standard time)."""
        return self._local.copy()

    @property
    def interval(self):
        return self._interval

    def convention(self, name):
        if name not in self._data:
            raise ForcingError(f"{self.path}: no variable '{name}' (available: {', '.join(self.variables)})")
        return 'forward_mean'

    @property
    def lat(self):
        return np.array([self.site_lat])

    @property
    def lon(self):
        return np.array([self.site_lon])

    def read(self, start, end, columns=None):
        cols = np.array([0]) if columns is None else np.asarray(columns, dtype=np.int64).ravel()
        if np.any(cols != 0):
            raise ForcingError(f'{self.path}: a site file has one column (index 0); got columns {cols.tolist()}')
        t0 = np.datetime64(start, 's')
        t1 = np.datetime64(end, 's')
        if t1 < t0:
            raise ForcingError(f'{self.path}: read() end {t1} is before start {t0}')
        iv = np.timedelta64(self._interval, 's')
        sel = np.flatnonzero((self._times + iv >= t0) & (self._times <= t1))
        if sel.size == 0:
            a, b = self.coverage()
            raise ForcingError(f'{self.path}: no data between {t0} and {t1} UTC; the file covers {a} .. {b} UTC')
        i0, i1 = max(int(sel[0]) - 1, 0), min(int(sel[-1]) + 2, self._times.size)
        data = {k: np.repeat(v[i0:i1], cols.size, axis=1) for k, v in self._data.items()}
        qc = {k: np.repeat(v[i0:i1], cols.size, axis=1) for k, v in self._qc.items()}
        conv = {k: 'forward_mean' for k in data}
        return ForcingChunk(self.path, self._times[i0:i1].copy(), self._interval, data, conv,
                            self.lat[cols], self.lon[cols], qc)
