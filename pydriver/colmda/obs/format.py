"""The observation file format: one table of soil moisture retrievals of one sensor.

Simulated retrievals (:mod:`colmda.obs.simulate`) and readers of real products both produce an :class:`ObsTable`
and store it with :func:`write_obs`, so the assimilation cannot tell them apart. Layout and flags are documented
in ``docs/observations.md``.

netCDF layout (one dimension ``obs``)::

    time(obs)      float64  seconds since 1970-01-01 00:00:00 (UTC, proleptic_gregorian)
    column(obs)    int32    global domain column j*nlon+i
    lat(obs), lon(obs)      float64 degrees_north / degrees_east (column centre)
    value(obs)     float64  m3 m-3 (volumetric) or 1 (saturation), NaN where not retrieved
    error(obs)     float64  nominal error std of the product, same units as value
    porosity(obs)  float64  m3 m-3, porosity used to convert saturation to volumetric (NaN for volumetric)
    quality(obs)   int32    bit mask (FLAG_* below)
    global attributes: sensor, quantity, sensing_depth (m), source, history, Conventions, institution,
    featureType = 'point' (CF discrete sampling geometry: every retrieval is a point in space and time; the
    data variables name ``time lat lon`` as their coordinates)

Reading accepts any CF time units (decoded by cftime, :mod:`colmda.timeaxis`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..output import atomic_path

__all__ = [
    'ObsTable', 'write_obs', 'read_obs', 'QUANTITIES', 'FLAG_FROZEN', 'FLAG_SNOW', 'FLAG_DENSE_VEGETATION',
    'FLAG_RANGE', 'FLAG_NAMES', 'TIME_UNITS',
]

#: quality bits (OR-ed in ``quality``); a row with any of FROZEN/SNOW has value NaN (no retrieval possible)
FLAG_FROZEN = 1             # top soil frozen (top-layer T below the core's 273.16 K or ice in the sensed layers)
FLAG_SNOW = 2               # snow on the ground (SWE above the sensor's threshold)
FLAG_DENSE_VEGETATION = 4   # vegetation denser than the sensor's recommended-quality limit (value kept)
FLAG_RANGE = 8              # retrieval outside [0, porosity] (or [0, 1] saturation): clipped to the range
FLAG_NAMES = {FLAG_FROZEN: 'frozen', FLAG_SNOW: 'snow', FLAG_DENSE_VEGETATION: 'dense_vegetation',
              FLAG_RANGE: 'range_clipped'}

#: product quantities and their units (tb_h / tb_v: L-band brightness temperature, H / V polarisation, K; written
#: by the twin's Tb simulator, colmda.obs.simulate.TbSimulator; sensing_depth is then the soil layer it sees)
QUANTITIES = {'volumetric': 'm3 m-3', 'saturation': '1', 'tb_h': 'K', 'tb_v': 'K'}
TB_QUANTITIES = ('tb_h', 'tb_v')
TIME_UNITS = 'seconds since 1970-01-01 00:00:00'
_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')

_ARRAYS = ('time', 'column', 'lat', 'lon', 'value', 'error', 'porosity', 'quality')
_DTYPES = {'time': 'datetime64[s]', 'column': np.int64, 'lat': np.float64, 'lon': np.float64,
           'value': np.float64, 'error': np.float64, 'porosity': np.float64, 'quality': np.int32}


@dataclasses.dataclass
class ObsTable:
    """Soil moisture retrievals of one sensor, one row per retrieval (see module docstring for units)."""

    sensor: str
    quantity: str
    sensing_depth: float            # m, e-folding depth of the sensed signal (operators.sensing_weights)
    time: np.ndarray                # datetime64[s], UTC
    column: np.ndarray              # int64 global column index
    lat: np.ndarray                 # float64 deg N
    lon: np.ndarray                 # float64 deg E
    value: np.ndarray               # float64, quantity units
    error: np.ndarray               # float64, nominal error std, quantity units
    porosity: np.ndarray            # float64 m3 m-3 (NaN for volumetric products)
    quality: np.ndarray             # int32 bit mask
    source: str = 'unknown'
    history: str = ''

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise UserError(f"ObsTable: quantity '{self.quantity}' must be one of {sorted(QUANTITIES)}")
        if not (np.isfinite(self.sensing_depth) and self.sensing_depth > 0):
            raise UserError(f"ObsTable: sensing_depth must be a positive depth in m, got {self.sensing_depth}")
        self.sensing_depth = float(self.sensing_depth)
        n = None
        for name in _ARRAYS:
            a = np.asarray(getattr(self, name)).astype(_DTYPES[name], copy=False)
            if a.ndim != 1:
                raise UserError(f"ObsTable: '{name}' must be one-dimensional, got shape {a.shape}")
            if n is None:
                n = a.size
            elif a.size != n:
                raise UserError(f"ObsTable: '{name}' has {a.size} rows, expected {n} (same as 'time')")
            setattr(self, name, a)

    def __len__(self) -> int:
        return int(self.time.size)

    def volumetric(self) -> tuple[np.ndarray, np.ndarray]:
        """(value, error) in m3 m-3: saturation products are multiplied by their ``porosity``."""
        if self.quantity in TB_QUANTITIES:
            raise UserError(f"ObsTable {self.sensor}: quantity '{self.quantity}' is a brightness temperature (K), "
                            "not soil moisture; it needs the tau-omega operator (colmda.obs.tau_omega)")
        if self.quantity == 'volumetric':
            return self.value.copy(), self.error.copy()
        if np.any(~np.isfinite(self.porosity)):
            raise UserError(f"ObsTable {self.sensor}: saturation rows without a finite porosity; cannot convert "
                            "to volumetric")
        return self.value * self.porosity, self.error * self.porosity

    def _rows(self, idx) -> 'ObsTable':
        kw = {name: getattr(self, name)[idx] for name in _ARRAYS}
        return ObsTable(self.sensor, self.quantity, self.sensing_depth, source=self.source,
                        history=self.history, **kw)

    def subset(self, mask_or_index) -> 'ObsTable':
        """Rows selected by a boolean mask (length len(self)) or an integer index array."""
        s = np.asarray(mask_or_index)
        if s.dtype == bool and s.shape != (len(self),):
            raise ValueError(f"mask has shape {s.shape}, expected ({len(self)},)")
        return self._rows(s)

    def sorted(self) -> 'ObsTable':
        """Rows ordered by time, then column (then the remaining fields, so ties are deterministic)."""
        order = np.lexsort((self.value, self.lon, self.lat, self.column, self.time.astype(np.int64)))
        return self._rows(order)

    @staticmethod
    def concatenate(tables) -> 'ObsTable':
        """Rows of several tables of the same sensor, quantity and sensing depth, in the given order."""
        tables = list(tables)
        if not tables:
            raise ValueError("concatenate needs at least one table")
        t0 = tables[0]
        for t in tables[1:]:
            if (t.sensor, t.quantity, t.sensing_depth) != (t0.sensor, t0.quantity, t0.sensing_depth):
                raise ValueError(f"cannot concatenate {t.sensor}/{t.quantity}/{t.sensing_depth} m with "
                                 f"{t0.sensor}/{t0.quantity}/{t0.sensing_depth} m")
        kw = {name: np.concatenate([getattr(t, name) for t in tables]) for name in _ARRAYS}
        return ObsTable(t0.sensor, t0.quantity, t0.sensing_depth, source=t0.source, history=t0.history, **kw)

    @staticmethod
    def empty(sensor, quantity, sensing_depth, source='unknown') -> 'ObsTable':
        kw = {name: np.zeros(0, dtype=_DTYPES[name]) for name in _ARRAYS}
        return ObsTable(sensor, quantity, sensing_depth, source=source, **kw)

    def equals(self, other: 'ObsTable') -> bool:
        """Same metadata and bit-identical rows (NaN equal to NaN)."""
        if (self.sensor, self.quantity, self.sensing_depth) != (other.sensor, other.quantity, other.sensing_depth):
            return False
        return all(np.array_equal(getattr(self, n), getattr(other, n), equal_nan=n not in ('time', 'column',
                                                                                             'quality'))
                   for n in _ARRAYS)


# ------------------------------------------------------------------------------------------------------------
# netCDF

_VAR_ATTRS = {
    'time': dict(standard_name='time', long_name='time of the retrieval (closest approach of the satellite)',
                 units=TIME_UNITS, calendar='proleptic_gregorian'),
    'column': dict(long_name='global domain column index j*nlon+i of the model cell containing the retrieval',
                   units='1'),
    'lat': dict(standard_name='latitude', long_name='latitude of the cell centre', units='degrees_north'),
    'lon': dict(standard_name='longitude', long_name='longitude of the cell centre', units='degrees_east'),
    'error': dict(long_name='nominal error standard deviation of the retrieval'),
    'porosity': dict(long_name='soil porosity used to convert degree of saturation to volumetric water content',
                     units='m3 m-3'),
    'quality': dict(long_name='quality flags (bit mask)',
                    flag_masks=np.array(sorted(FLAG_NAMES), dtype=np.int32),
                    flag_meanings=' '.join(FLAG_NAMES[k] for k in sorted(FLAG_NAMES)), units='1'),
}


def _value_attrs(quantity):
    if quantity in TB_QUANTITIES:
        return dict(standard_name='brightness_temperature', units='K',
                    long_name=f'L-band brightness temperature, {quantity[-1].upper()} polarisation')
    if quantity == 'volumetric':
        return dict(standard_name='volume_fraction_of_condensed_water_in_soil',
                    long_name='retrieved volumetric soil water content of the sensed layer', units='m3 m-3')
    return dict(long_name='retrieved degree of saturation of the sensed layer (volumetric water / porosity)',
                units='1')


def write_obs(path, table: ObsTable) -> Path:
    """Write ``table`` to netCDF-4 ``path`` atomically (temporary file in the same directory, then os.replace)."""
    import netCDF4

    path = Path(path)
    n = len(table)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, 'w', format='NETCDF4')
        try:
            nc.createDimension('obs', n)
            for name in _ARRAYS:
                dt = {'column': 'i4', 'quality': 'i4'}.get(name, 'f8')
                fill = np.nan if name in ('value', 'error', 'porosity') else None
                v = nc.createVariable(name, dt, ('obs',), fill_value=fill if fill is not None else False)
                attrs = dict(_VAR_ATTRS.get(name, {}))
                if name == 'value':
                    attrs = _value_attrs(table.quantity)
                if name == 'error':
                    attrs['units'] = QUANTITIES[table.quantity]
                if name in ('value', 'error', 'porosity', 'quality', 'column'):
                    attrs['coordinates'] = 'time lat lon'
                v.setncatts(attrs)
                a = getattr(table, name)
                if name == 'time':
                    a = (a - _EPOCH).astype(np.int64).astype(np.float64)
                v[:] = a
            from ..output import global_attributes

            now = _dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
            kind = 'brightness temperatures' if table.quantity in TB_QUANTITIES else 'soil moisture retrievals'
            attrs = global_attributes(f'{kind}, sensor {table.sensor}', featureType='point',
                                      sensor=table.sensor, quantity=table.quantity,
                                      sensing_depth=np.float64(table.sensing_depth), sensing_depth_units='m')
            attrs['source'] = table.source
            attrs['history'] = (table.history + '\n' if table.history else '') + f'{now} written by colmda'
            nc.setncatts(attrs)
        finally:
            nc.close()
    return path


def open_netcdf(path, what: str):
    """Open a netCDF file for reading (no automatic masking); a missing or unreadable file is a UserError naming
    it and saying what it should have been (``what``: 'observation', 'in-situ', ...)."""
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    try:
        nc = netCDF4.Dataset(path, 'r')
    except OSError as e:
        raise UserError(f"{path}: not a readable netCDF file ({e})") from None
    nc.set_auto_mask(False)
    return nc


def read_obs(path) -> ObsTable:
    """Read a file written by :func:`write_obs` (or any product converted to that layout), with validation:
    a missing variable or attribute, wrong units or wrong dimensions raise :class:`UserError`."""
    path = Path(path)
    nc = open_netcdf(path, 'observation')
    try:
        for att in ('sensor', 'quantity', 'sensing_depth'):
            if att not in nc.ncattrs():
                raise UserError(f"{path}: global attribute '{att}' missing")
        quantity = str(nc.getncattr('quantity'))
        if quantity not in QUANTITIES:
            raise UserError(f"{path}: global attribute quantity = '{quantity}', expected one of {sorted(QUANTITIES)}")
        if 'obs' not in nc.dimensions:
            raise UserError(f"{path}: dimension 'obs' missing")
        expected_units = {'lat': 'degrees_north', 'lon': 'degrees_east',
                          'value': QUANTITIES[quantity], 'error': QUANTITIES[quantity], 'porosity': 'm3 m-3'}
        out = {}
        for name in _ARRAYS:
            if name not in nc.variables:
                raise UserError(f"{path}: variable '{name}' missing")
            v = nc.variables[name]
            if v.dimensions != ('obs',):
                raise UserError(f"{path}: variable '{name}' has dimensions {v.dimensions}, expected ('obs',)")
            if name in expected_units:
                u = getattr(v, 'units', None)
                if u is None or u.strip() != expected_units[name]:
                    raise UserError(f"{path}: variable '{name}' has units {u!r}, expected '{expected_units[name]}'")
            a = np.asarray(v[:])
            if name == 'time':
                from ..timeaxis import decode

                a = decode(a.astype(np.float64), getattr(v, 'units', ''), getattr(v, 'calendar', 'standard'),
                           where=f"{path}: variable 'time'")
            out[name] = a
        sd = float(nc.getncattr('sensing_depth'))
        if quantity in TB_QUANTITIES:
            from .tau_omega import check_tb
            check_tb(out['value'], f"{path}: variable 'value'")
        return ObsTable(str(nc.getncattr('sensor')), quantity, sd,
                        source=str(getattr(nc, 'source', 'unknown')), history=str(getattr(nc, 'history', '')),
                        **out)
    except UserError:
        raise
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: malformed observation file ({e})") from None
    finally:
        nc.close()
