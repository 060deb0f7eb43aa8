"""Model domain: a regular latitude-longitude grid, its land columns and their surface parameters.

The domain file (netCDF, format in ``docs/domain.md``) holds full-grid fields on a regular grid; the
default one, ``colmda/data/domain_default.nc``, is derived by :mod:`colmda.make_domain` from data shipped
by PyPI packages (ERA5 2000-2025 monthly climatology, GLOBE 1 km land mask) with documented rules.

Conventions
-----------
* Grid: ``nlat`` x ``nlon`` cells, latitude index ``j`` from south to north, longitude index ``i`` eastward
  from the cell whose western edge is 0 deg E. Default 128 x 256 cells of 1.40625 deg: cell centres
  ``lon_i = 0.703125 + 1.40625 i`` (0.703125 ... 359.296875 deg E) and ``lat_j = -89.296875 + 1.40625 j``
  (-89.296875 ... 89.296875 deg N); cell edges at multiples of 1.40625 deg from 0 deg E and from -90 deg N.
* Global column index: ``g = j * nlon + i`` (row-major over (lat, lon), latitude first). It identifies a
  column whatever subset of columns a run, an MPI rank or a selection uses, and keys all random numbers.
* A *land column* is a cell with ``landmask == 1`` (land fraction >= the threshold used to make the file,
  0.5 for the default file).

Nothing here imports the compiled core.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

__all__ = [
    'DomainError', 'Domain', 'ColumnParams', 'default_domain_path', 'load_domain',
    'PFT_NAMES', 'PFT_TABLE', 'KOPPEN_CODES', 'KOPPEN_NAMES', 'VEG_CLASS_NAMES', 'SOIL_COLOR_ALBEDO',
    'wet_day_fraction_from_precip', 'monthly_interp_weights', 'mean_preserving_monthly',
    'EARTH_RADIUS_M',
]

EARTH_RADIUS_M = 6371.0e3  # mean Earth radius (m)

# ---------------------------------------------------------------------------------------------------------
# Classification tables (documented in docs/domain.md)
# ---------------------------------------------------------------------------------------------------------

#: Plant functional types (index = value of the ``pft`` variable), CLM-style list.
PFT_NAMES = (
    'bare_soil', 'needleleaf_evergreen_temperate_tree', 'needleleaf_evergreen_boreal_tree',
    'needleleaf_deciduous_boreal_tree', 'broadleaf_evergreen_tropical_tree',
    'broadleaf_evergreen_temperate_tree', 'broadleaf_deciduous_tropical_tree',
    'broadleaf_deciduous_temperate_tree', 'broadleaf_deciduous_boreal_tree',
    'broadleaf_evergreen_temperate_shrub', 'broadleaf_deciduous_temperate_shrub',
    'broadleaf_deciduous_boreal_shrub', 'c3_arctic_grass', 'c3_non_arctic_grass', 'c4_grass', 'crop_corn',
)

#: Per-PFT rules for the LAI/SAI climatology: maximum LAI (m2 m-2), minimum LAI as a fraction of the
#: maximum (evergreen canopies keep most leaves), stem area index base value (m2 m-2) and the two
#: temperatures (deg C) between which the temperature growth factor rises from 0 to 1.
PFT_TABLE = {
    #    lai_max  lai_min_frac  sai_base  t_lo  t_hi
    0: (0.0, 0.00, 0.0, 0.0, 10.0),
    1: (5.0, 0.80, 1.0, 0.0, 10.0),
    2: (4.0, 0.75, 1.0, 0.0, 10.0),
    3: (3.5, 0.05, 1.0, 0.0, 10.0),
    4: (6.0, 0.85, 1.0, 0.0, 10.0),
    5: (5.0, 0.80, 1.0, 0.0, 10.0),
    6: (5.0, 0.15, 1.0, 5.0, 15.0),
    7: (5.0, 0.05, 1.0, 5.0, 15.0),
    8: (4.0, 0.05, 1.0, 0.0, 10.0),
    9: (2.5, 0.70, 0.5, 0.0, 10.0),
    10: (2.0, 0.10, 0.5, 5.0, 15.0),
    11: (2.0, 0.05, 0.5, 0.0, 10.0),
    12: (1.5, 0.05, 0.2, 0.0, 10.0),
    13: (2.5, 0.05, 0.2, 5.0, 15.0),
    14: (2.5, 0.05, 0.2, 5.0, 15.0),
    15: (4.0, 0.00, 0.2, 10.0, 20.0),
}

#: Koppen-Geiger classes (Beck et al. 2018 numbering, 1..30); 0 = not classified.
KOPPEN_NAMES = (
    'Af', 'Am', 'Aw', 'BWh', 'BWk', 'BSh', 'BSk', 'Csa', 'Csb', 'Csc', 'Cwa', 'Cwb', 'Cwc', 'Cfa', 'Cfb',
    'Cfc', 'Dsa', 'Dsb', 'Dsc', 'Dsd', 'Dwa', 'Dwb', 'Dwc', 'Dwd', 'Dfa', 'Dfb', 'Dfc', 'Dfd', 'ET', 'EF',
)
KOPPEN_CODES = {name: k + 1 for k, name in enumerate(KOPPEN_NAMES)}

#: Vegetation-density classes (``veg_class``), used by the vegetation-aware sensor selection.
VEG_CLASS_NAMES = ('sparse', 'moderate', 'dense')

#: Soil colour classes 1 (bright) .. 8 (dark): saturated and dry soil albedo, visible and near infrared
#: (the 8-class table of BATS / NCAR LSM / CLM, Bonan 1996).
SOIL_COLOR_ALBEDO = {
    'albsat_vis': (0.12, 0.11, 0.10, 0.09, 0.08, 0.07, 0.06, 0.05),
    'albsat_nir': (0.24, 0.22, 0.20, 0.18, 0.16, 0.14, 0.12, 0.10),
    'albdry_vis': (0.24, 0.22, 0.20, 0.18, 0.16, 0.14, 0.12, 0.10),
    'albdry_nir': (0.48, 0.44, 0.40, 0.36, 0.32, 0.28, 0.24, 0.20),
}

# 365-day climatological year
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)


def wet_day_fraction_from_precip(prec_mm_month):
    """Climatological fraction of days with precipitation >= 1 mm from the monthly total (mm per month).

    Rule (documented, not fitted to this data set): ``f = P / (P + 130 mm)``, capped at 0.95. It gives
    about 2 wet days a month at 10 mm/month, 10 at 60 mm, 18 at 200 mm and 23 at 400 mm, the shape of
    the observed wet-day frequency vs. monthly precipitation relation used in CRU-type climatologies.
    """
    p = np.maximum(np.asarray(prec_mm_month, dtype=np.float64), 0.0)
    return np.minimum(p / (p + 130.0), 0.95)


# ---------------------------------------------------------------------------------------------------------
# Monthly climatology -> date
# ---------------------------------------------------------------------------------------------------------

def _as_seconds(times):
    """numpy datetime64 (any unit) or integer seconds since 1970-01-01 -> int64 seconds since 1970."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype('datetime64[s]').astype(np.int64)
    if np.issubdtype(t.dtype, np.integer):
        return t.astype(np.int64)
    if np.issubdtype(t.dtype, np.floating):
        return np.floor(t).astype(np.int64)
    raise TypeError(f'times must be numpy datetime64 or seconds since 1970-01-01, got {t.dtype}')


def monthly_interp_weights(times):
    """Interpolation weights between mid-months for each time (linear in time).

    The mid-month instant is the middle of the calendar month of that year (leap years included), e.g.
    16 January 12:00 UTC. Returns ``(m0, m1, w)``: zero-based month indices and the weight of ``m1``;
    the value at ``t`` is ``(1 - w) * x[m0] + w * x[m1]``.
    """
    ts = _as_seconds(times)
    t = ts.astype('datetime64[s]')
    mon = t.astype('datetime64[M]')

    def mid(m):
        a = m.astype('datetime64[s]').astype(np.int64)
        b = (m + 1).astype('datetime64[s]').astype(np.int64)
        return a + (b - a) / 2.0

    mid_cur = mid(mon)
    after = ts >= mid_cur
    m_lo = np.where(after, mon, mon - 1)
    m_hi = m_lo + 1
    t_lo = mid(m_lo)
    t_hi = mid(m_hi)
    w = (ts - t_lo) / (t_hi - t_lo)
    m0 = (m_lo.astype(np.int64) % 12).astype(np.int64)
    m1 = (m_hi.astype(np.int64) % 12).astype(np.int64)
    return m0, m1, w


def _killworth_inverse():
    """Inverse of the matrix mapping mid-month values to monthly means under linear interpolation.

    With month lengths L (365-day year), the mean over month m of the piecewise-linear curve through
    mid-month values x* is ``[(1-a) x*_{m-1} + (3 + a - b) x*_m + b x*_{m+1}] / 4`` with
    ``a = L_{m-1}/(L_{m-1}+L_m)`` and ``b = L_m/(L_m+L_{m+1})`` (Killworth 1995, J. Phys. Oceanogr.).
    """
    L = DAYS_IN_MONTH
    A = np.zeros((12, 12))
    for m in range(12):
        lp, lc, ln = L[m - 1], L[m], L[(m + 1) % 12]
        a = lp / (lp + lc)
        b = lc / (lc + ln)
        A[m, m - 1] += (1.0 - a) / 4.0
        A[m, m] += (2.0 + a + (1.0 - b)) / 4.0
        A[m, (m + 1) % 12] += b / 4.0
    return np.linalg.inv(A)


_KW_INV = _killworth_inverse()


def mean_preserving_monthly(x, nonnegative=False):
    """Adjusted mid-month values whose linear interpolation reproduces the monthly means ``x`` (12, ...).

    The 12-term sums are evaluated with element-wise operations in a fixed order (no BLAS), so the result
    for a cell does not depend on which other cells are in the array. With ``nonnegative``, cells whose
    adjusted values would go below zero use the largest blend ``x + lam (x* - x)`` (0 <= lam <= 1) that stays
    non-negative, so their monthly means are only approximately preserved.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for m in range(12):
        acc = np.zeros(x.shape[1:])
        for k in range(12):
            acc = acc + _KW_INV[m, k] * x[k]
        out[m] = acc
    if nonnegative:
        # largest blend x + lam (out - x), 0 <= lam <= 1, that keeps every month >= 0
        with np.errstate(divide='ignore', invalid='ignore'):
            lim = np.where(out < 0.0, x / (x - out), 1.0)
        lam = np.clip(lim.min(axis=0), 0.0, 1.0)
        out = x + lam[None] * (out - x)
        out = np.maximum(out, 0.0)
    return out


# ---------------------------------------------------------------------------------------------------------
# Domain file validation
# ---------------------------------------------------------------------------------------------------------

class DomainError(ValueError):
    """A domain file or a selection is not usable; the message names the file and the variable."""


# name: (dims, accepted units, valid range (inclusive) or None, required)
_SPEC = {
    'land_fraction': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'landmask': (('lat', 'lon'), ('1',), (0, 1), True),
    'tair_clim': (('month', 'lat', 'lon'), ('K',), (150.0, 350.0), True),
    'prec_clim': (('month', 'lat', 'lon'), ('kg m-2 s-1',), (0.0, 1e-2), True),
    'pft': (('lat', 'lon'), ('1',), (0, 15), True),
    'lai_clim': (('month', 'lat', 'lon'), ('m2 m-2',), (0.0, 15.0), True),
    'sai_clim': (('month', 'lat', 'lon'), ('m2 m-2',), (0.0, 10.0), True),
    'sand': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'clay': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'organic': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'albsat_vis': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'albsat_nir': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'albdry_vis': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'albdry_nir': (('lat', 'lon'), ('1',), (0.0, 1.0), True),
    'psurf_clim': (('lat', 'lon'), ('Pa',), (3.0e4, 1.1e5), True),
    'veg_class': (('lat', 'lon'), ('1',), (0, 2), True),
    # optional
    'elevation': (('lat', 'lon'), ('m',), (-500.0, 9000.0), False),
    'koppen_geiger': (('lat', 'lon'), ('1',), (0, 30), False),
    'soil_color': (('lat', 'lon'), ('1',), (1, 8), False),
    'glacier': (('lat', 'lon'), ('1',), (0, 1), False),
    'wetday_frac_clim': (('month', 'lat', 'lon'), ('1',), (0.0, 1.0), False),
    'cell_area': (('lat', 'lon'), ('m2',), (0.0, 1e11), False),
}

_MONTHLY = tuple(k for k, v in _SPEC.items() if v[0][0] == 'month')
_INTEGER = ('landmask', 'pft', 'veg_class', 'koppen_geiger', 'soil_color', 'glacier')


def _norm_units(u):
    u = str(u).strip()
    aliases = {'': '1', '-': '1', 'fraction': '1', 'm2/m2': 'm2 m-2', 'm^2/m^2': 'm2 m-2',
               'kg/m2/s': 'kg m-2 s-1', 'kg m-2 s-1': 'kg m-2 s-1', 'kg/m^2/s': 'kg m-2 s-1',
               'mm/s': 'kg m-2 s-1', 'mm s-1': 'kg m-2 s-1', 'm^2': 'm2', 'k': 'K'}
    return aliases.get(u, aliases.get(u.lower(), u))


def default_domain_path():
    """Path of the embedded default domain file."""
    return Path(__file__).resolve().parent / 'data' / 'domain_default.nc'


@dataclasses.dataclass
class ColumnParams:
    """Per-column arrays for a set of columns (shape ``(ncol,)``, monthly fields ``(12, ncol)``)."""

    columns: np.ndarray       # global column index
    lat: np.ndarray           # degrees_north, cell centre
    lon: np.ndarray           # degrees_east, cell centre, 0..360
    land_fraction: np.ndarray  # 1
    pft: np.ndarray           # PFT index 0..15
    sand: np.ndarray          # 1 (mass fraction of the mineral soil)
    clay: np.ndarray          # 1
    organic: np.ndarray       # 1 (mass fraction of organic matter)
    albsat_vis: np.ndarray    # 1
    albsat_nir: np.ndarray    # 1
    albdry_vis: np.ndarray    # 1
    albdry_nir: np.ndarray    # 1
    lai_clim: np.ndarray      # (12, ncol) m2 m-2
    sai_clim: np.ndarray      # (12, ncol) m2 m-2
    tair_clim: np.ndarray     # (12, ncol) K
    prec_clim: np.ndarray     # (12, ncol) kg m-2 s-1
    psurf_clim: np.ndarray    # Pa
    veg_class: np.ndarray     # 0 sparse, 1 moderate, 2 dense
    elevation: np.ndarray     # m (estimate; NaN if the file has none)
    glacier: np.ndarray       # 1 where the cell is an ice sheet (Koppen EF)
    koppen_geiger: np.ndarray  # 1..30 (0 if the file has none)


class Domain:
    """A regular lat-lon grid with its surface fields and a selected set of land columns.

    ``Domain.load()`` reads the default file; ``Domain.load(path)`` a user file in the same format.
    Selections (:meth:`select_box`, :meth:`select_points`, :meth:`select_columns`) return new ``Domain``
    objects that share the full-grid fields and differ only in :attr:`columns`, the sorted global
    indices of the selected land columns. Full-grid fields stay available so that anything spatial
    (weather fields, perturbations) is computed on the whole grid and is the same for any selection.
    """

    def __init__(self, path, lat, lon, lat_bnds, lon_bnds, fields, attrs, columns=None):
        self.path = str(path)
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.lat_bnds = np.asarray(lat_bnds, dtype=np.float64)
        self.lon_bnds = np.asarray(lon_bnds, dtype=np.float64)
        self.fields = fields
        self.attrs = dict(attrs)
        if columns is None:
            columns = np.flatnonzero(fields['landmask'].ravel() == 1)
        self.columns = np.asarray(columns, dtype=np.int64)
        self._adjusted = {}

    # -- loading --------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path=None):
        """Load and validate a domain file (default: the embedded file). Raises :class:`DomainError`."""
        path = default_domain_path() if path is None else Path(path)
        if not os.path.exists(path):
            raise DomainError(f'{path}: domain file not found')
        try:
            import netCDF4
            ds = netCDF4.Dataset(path, 'r')
        except OSError as exc:
            raise DomainError(f'{path}: cannot be read as netCDF ({exc})') from None
        try:
            ds.set_auto_mask(False)
            for name in ('lat', 'lon'):
                if name not in ds.variables:
                    raise DomainError(f"{path}: coordinate variable '{name}' is missing")
            lat = np.array(ds['lat'][:], dtype=np.float64)
            lon = np.array(ds['lon'][:], dtype=np.float64)
            if lat.ndim != 1 or lon.ndim != 1 or lat.size < 1 or lon.size < 1:
                raise DomainError(f"{path}: 'lat' and 'lon' must be 1-D coordinate variables")
            _check_regular(path, 'lat', lat)
            _check_regular(path, 'lon', lon)
            if np.any(np.abs(lat) > 90.0):
                raise DomainError(f"{path}: variable 'lat' has values outside [-90, 90]")
            lat_bnds = np.array(ds['lat_bnds'][:], dtype=np.float64) if 'lat_bnds' in ds.variables else \
                _bounds_from_centres(lat, clip=(-90.0, 90.0))
            lon_bnds = np.array(ds['lon_bnds'][:], dtype=np.float64) if 'lon_bnds' in ds.variables else \
                _bounds_from_centres(lon)
            nlat, nlon = lat.size, lon.size
            sizes = {'lat': nlat, 'lon': nlon, 'month': 12}
            fields = {}
            for name, (dims, units, vrange, required) in _SPEC.items():
                if name not in ds.variables:
                    if required:
                        raise DomainError(f"{path}: required variable '{name}' is missing "
                                          f"(expected dims {dims}, units '{units[0]}')")
                    continue
                var = ds[name]
                if tuple(var.dimensions) != dims:
                    raise DomainError(f"{path}: variable '{name}' has dimensions {tuple(var.dimensions)}, "
                                      f'expected {dims}')
                shape = tuple(sizes[d] for d in dims)
                if var.shape != shape:
                    raise DomainError(f"{path}: variable '{name}' has shape {var.shape}, expected {shape}")
                u = _norm_units(getattr(var, 'units', ''))
                if u not in units:
                    raise DomainError(f"{path}: variable '{name}' has units '{getattr(var, 'units', '')}', "
                                      f"expected '{units[0]}'")
                data = np.array(var[:])
                fill = getattr(var, '_FillValue', None)
                if np.issubdtype(data.dtype, np.floating):
                    data = data.astype(np.float64)
                    if fill is not None:
                        data[data == fill] = np.nan
                    if not np.all(np.isfinite(data)):
                        raise DomainError(f"{path}: variable '{name}' has missing or non-finite values")
                else:
                    if fill is not None and np.any(data == fill):
                        raise DomainError(f"{path}: variable '{name}' has missing values")
                    data = data.astype(np.int64)
                if vrange is not None and (data.min() < vrange[0] or data.max() > vrange[1]):
                    raise DomainError(f"{path}: variable '{name}' has values in [{data.min()}, {data.max()}], "
                                      f'outside the valid range [{vrange[0]}, {vrange[1]}]')
                if name in _INTEGER and data.dtype != np.int64:
                    if not np.all(data == np.round(data)):
                        raise DomainError(f"{path}: variable '{name}' must hold integer class values")
                    data = data.astype(np.int64)
                fields[name] = data
            attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        finally:
            ds.close()
        if not np.any(fields['landmask'] == 1):
            raise DomainError(f"{path}: variable 'landmask' has no land cell")
        bad = (fields['landmask'] == 1) & (fields['land_fraction'] <= 0.0)
        if np.any(bad):
            raise DomainError(f"{path}: variable 'landmask' marks {int(bad.sum())} cells with land_fraction 0 "
                              'as land')
        return cls(path, lat, lon, lat_bnds, lon_bnds, fields, attrs)

    # -- grid ----------------------------------------------------------------------------------------
    @property
    def nlat(self):
        return self.lat.size

    @property
    def nlon(self):
        return self.lon.size

    @property
    def shape(self):
        return (self.nlat, self.nlon)

    @property
    def ncol(self):
        """Number of selected land columns."""
        return self.columns.size

    @property
    def dlon(self):
        return float(self.lon[1] - self.lon[0]) if self.nlon > 1 else 360.0

    @property
    def dlat(self):
        return float(self.lat[1] - self.lat[0]) if self.nlat > 1 else 180.0

    @property
    def is_global(self):
        """True when the longitudes cover the whole circle (periodic in longitude)."""
        return abs(self.nlon * self.dlon - 360.0) < 1e-6

    def land_columns(self):
        """Sorted global indices of the selected land columns (``g = j * nlon + i``)."""
        return self.columns.copy()

    def all_land_columns(self):
        """Global indices of every land column of the file, whatever the selection."""
        return np.flatnonzero(self.fields['landmask'].ravel() == 1)

    def column_ij(self, columns=None):
        """(j, i) grid indices of global columns."""
        g = self._cols(columns)
        return g // self.nlon, g % self.nlon

    def column_lat(self, columns=None):
        j, _ = self.column_ij(columns)
        return self.lat[j]

    def column_lon(self, columns=None):
        _, i = self.column_ij(columns)
        return self.lon[i]

    def index_of(self, lat, lon):
        """Global index of the cell containing each point (lon in any convention). Raises if outside."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        j = np.floor((lat - self.lat_bnds[0, 0]) / self.dlat).astype(np.int64)
        j = np.where(lat == self.lat_bnds[-1, 1], self.nlat - 1, j)
        lon0 = self.lon_bnds[0, 0]
        rel = lon - lon0
        if self.is_global:
            rel = np.mod(rel, 360.0)
        else:
            rel = np.where(rel < 0, rel + 360.0, rel)
            rel = np.where(rel >= 360.0, rel - 360.0, rel)
        i = np.floor(rel / self.dlon).astype(np.int64)
        out = (j < 0) | (j >= self.nlat) | (i < 0) | (i >= self.nlon)
        if np.any(out):
            k = int(np.flatnonzero(out)[0])
            raise DomainError(f'{self.path}: point (lat {lat[k]}, lon {lon[k]}) is outside the domain grid')
        return j * self.nlon + i

    # -- selection -----------------------------------------------------------------------------------
    def _with_columns(self, columns):
        d = Domain(self.path, self.lat, self.lon, self.lat_bnds, self.lon_bnds, self.fields, self.attrs,
                   columns=np.unique(np.asarray(columns, dtype=np.int64)))
        d._adjusted = self._adjusted
        return d

    def select_box(self, lat_min, lat_max, lon_min, lon_max):
        """Land columns whose cell centre lies in the box (bounds inclusive).

        Longitudes in any convention (-180..180 or 0..360); ``lon_min > lon_max`` (after wrapping to
        0..360) selects a box that crosses the 0/360 meridian, e.g. ``lon_min=350, lon_max=10``.
        """
        if lat_min > lat_max:
            raise DomainError(f'{self.path}: box selection with lat_min {lat_min} > lat_max {lat_max}')
        lat_c = self.column_lat(self.columns)
        lon_c = np.mod(self.column_lon(self.columns), 360.0)
        a, b = np.mod(lon_min, 360.0), np.mod(lon_max, 360.0)
        if lon_max - lon_min >= 360.0:
            in_lon = np.ones(lon_c.shape, dtype=bool)
        elif a <= b:
            in_lon = (lon_c >= a) & (lon_c <= b)
        else:
            in_lon = (lon_c >= a) | (lon_c <= b)
        sel = self.columns[(lat_c >= lat_min) & (lat_c <= lat_max) & in_lon]
        if sel.size == 0:
            raise DomainError(f'{self.path}: no land column in the box lat [{lat_min}, {lat_max}], '
                              f'lon [{lon_min}, {lon_max}]')
        return self._with_columns(sel)

    def select_points(self, lats, lons, nearest_land=False):
        """Columns of the cells containing the given points.

        A point in a cell that is not a land column raises :class:`DomainError`, unless ``nearest_land``,
        in which case the nearest land column (great-circle distance between cell centres) is used.
        Duplicates collapse to one column.
        """
        g = self.index_of(lats, lons)
        land = self.fields['landmask'].ravel()[g] == 1
        if not np.all(land):
            if not nearest_land:
                k = int(np.flatnonzero(~land)[0])
                raise DomainError(f'{self.path}: point (lat {np.atleast_1d(lats)[k]}, lon {np.atleast_1d(lons)[k]})'
                                  ' falls in a cell that is not a land column (use nearest_land=True)')
            allg = self.all_land_columns()
            la, lo = np.deg2rad(self.column_lat(allg)), np.deg2rad(self.column_lon(allg))
            for k in np.flatnonzero(~land):
                p_la = np.deg2rad(np.atleast_1d(lats)[k])
                p_lo = np.deg2rad(np.atleast_1d(lons)[k])
                c = np.sin(la) * np.sin(p_la) + np.cos(la) * np.cos(p_la) * np.cos(lo - p_lo)
                g[k] = allg[int(np.argmax(c))]
        return self._with_columns(g)

    def select_columns(self, columns):
        """Domain restricted to the given global column indices (all must be land columns)."""
        g = np.asarray(columns, dtype=np.int64).ravel()
        if np.any((g < 0) | (g >= self.nlat * self.nlon)):
            raise DomainError(f'{self.path}: column index outside 0..{self.nlat * self.nlon - 1}')
        land = self.fields['landmask'].ravel()[g] == 1
        if not np.all(land):
            raise DomainError(f'{self.path}: column {int(g[~land][0])} is not a land column')
        return self._with_columns(g)

    def exclude_glacier(self):
        """Drop ice-sheet columns (``glacier == 1``, Koppen EF) from the selection."""
        if 'glacier' not in self.fields:
            return self._with_columns(self.columns)
        keep = self.fields['glacier'].ravel()[self.columns] == 0
        return self._with_columns(self.columns[keep])

    # -- per-column data -----------------------------------------------------------------------------
    def _cols(self, columns):
        g = self.columns if columns is None else np.asarray(columns, dtype=np.int64)
        if g.size and (g.min() < 0 or g.max() >= self.nlat * self.nlon):
            raise DomainError(f'{self.path}: column index outside 0..{self.nlat * self.nlon - 1}')
        return g

    def get(self, name, columns=None):
        """Values of a file variable for columns: ``(ncol,)`` or ``(12, ncol)`` for monthly fields."""
        if name not in self.fields:
            raise DomainError(f"{self.path}: variable '{name}' is not in the domain file")
        g = self._cols(columns)
        a = self.fields[name]
        if a.ndim == 3:
            return a.reshape(12, -1)[:, g]
        return a.ravel()[g]

    def column_params(self, columns=None):
        """All per-column arrays as a :class:`ColumnParams` (default: the selected columns)."""
        g = self._cols(columns)
        n = g.size

        def opt(name, fill):
            return self.get(name, g) if name in self.fields else np.full(n, fill)

        return ColumnParams(
            columns=g.copy(), lat=self.column_lat(g), lon=self.column_lon(g),
            land_fraction=self.get('land_fraction', g), pft=self.get('pft', g),
            sand=self.get('sand', g), clay=self.get('clay', g), organic=self.get('organic', g),
            albsat_vis=self.get('albsat_vis', g), albsat_nir=self.get('albsat_nir', g),
            albdry_vis=self.get('albdry_vis', g), albdry_nir=self.get('albdry_nir', g),
            lai_clim=self.get('lai_clim', g), sai_clim=self.get('sai_clim', g),
            tair_clim=self.get('tair_clim', g), prec_clim=self.get('prec_clim', g),
            psurf_clim=self.get('psurf_clim', g), veg_class=self.get('veg_class', g),
            elevation=opt('elevation', np.nan).astype(np.float64), glacier=opt('glacier', 0),
            koppen_geiger=opt('koppen_geiger', 0),
        )

    def wetday_frac_clim(self, columns=None):
        """Monthly wet-day fraction (12, ncol): the file variable, or the documented rule from prec_clim."""
        if 'wetday_frac_clim' in self.fields:
            return self.get('wetday_frac_clim', columns)
        p = self.get('prec_clim', columns) * 86400.0 * DAYS_IN_MONTH[:, None]
        return wet_day_fraction_from_precip(p)

    def climatology_at(self, name, times, columns=None, mean_preserving=False):
        """A monthly field interpolated linearly between mid-months to ``times``.

        Returns ``(ncol,)`` for a scalar time, ``(ntime, ncol)`` for an array of times. With
        ``mean_preserving`` the mid-month values are first adjusted (Killworth 1995) so that the
        interpolated curve has the file's monthly means (non-negative fields keep their values where the
        adjustment would go negative).
        """
        if name not in _MONTHLY and name != 'wetday_frac_clim':
            raise DomainError(f"{self.path}: '{name}' is not a monthly variable ({', '.join(_MONTHLY)})")
        g = self._cols(columns)
        x = self.monthly_field(name, mean_preserving)[:, g]
        scalar = np.ndim(times) == 0
        m0, m1, w = monthly_interp_weights(np.atleast_1d(times))
        out = (1.0 - w)[:, None] * x[m0] + w[:, None] * x[m1]
        return out[0] if scalar else out

    def monthly_field(self, name, mean_preserving=False):
        """A monthly field as a (12, nlat*nlon) array, optionally mean-preserving adjusted (cached)."""
        if name == 'wetday_frac_clim' and name not in self.fields:
            base = self.wetday_frac_clim(np.arange(self.nlat * self.nlon))
        else:
            base = self.fields[name].reshape(12, -1)
        if not mean_preserving:
            return base
        key = name
        if key not in self._adjusted:
            nonneg = name not in ('tair_clim',)
            self._adjusted[key] = mean_preserving_monthly(base, nonnegative=nonneg)
        return self._adjusted[key]

    def to_grid(self, values, columns=None, fill=np.nan):
        """Scatter per-column values ``(..., ncol)`` onto the full grid ``(..., nlat, nlon)``."""
        g = self._cols(columns)
        v = np.asarray(values)
        out = np.full(v.shape[:-1] + (self.nlat * self.nlon,), fill,
                      dtype=np.result_type(v.dtype, np.asarray(fill).dtype))
        out[..., g] = v
        return out.reshape(v.shape[:-1] + (self.nlat, self.nlon))

    def cell_area(self):
        """Area of each grid cell (nlat, nlon) on a sphere of radius 6371 km (m2)."""
        if 'cell_area' in self.fields:
            return self.fields['cell_area']
        s = np.sin(np.deg2rad(self.lat_bnds))
        band = (s[:, 1] - s[:, 0]) * EARTH_RADIUS_M ** 2
        dl = np.deg2rad(self.lon_bnds[:, 1] - self.lon_bnds[:, 0])
        return band[:, None] * dl[None, :]

    def __repr__(self):
        return (f'Domain({os.path.basename(self.path)}: {self.nlat}x{self.nlon} grid, '
                f'{self.ncol} selected land columns)')


def load_domain(path=None):
    """Shorthand for :meth:`Domain.load`."""
    return Domain.load(path)


def _check_regular(path, name, x):
    if x.size < 2:
        return
    d = np.diff(x)
    if not (np.all(d > 0) and np.allclose(d, d[0], rtol=1e-6, atol=1e-9)):
        raise DomainError(f"{path}: coordinate '{name}' must be regularly spaced and increasing "
                          f'(south to north / west to east)')


def _bounds_from_centres(x, clip=None):
    d = (x[1] - x[0]) if x.size > 1 else 1.0
    b = np.stack([x - d / 2.0, x + d / 2.0], axis=1)
    if clip is not None:
        b = np.clip(b, *clip)
    return b
