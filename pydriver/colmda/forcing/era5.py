"""ERA5 single-level hourly forcing from netCDF files downloaded from the Copernicus Climate Data Store.

Both CDS layouts are read:

* old CDS (``grib_to_netcdf``, before 2024): dimension ``time`` (``hours since 1900-01-01``), variables often
  int16-packed with ``scale_factor``/``add_offset``, several variables per file, sometimes an ``expver``
  dimension (ERA5 / ERA5T) that is merged by taking the first valid value;
* new CDS (cfgrib, 2024 on): dimension ``valid_time`` (``seconds since 1970-01-01``), float32, usually one
  variable per file, scalar coordinates ``number``/``expver``.

Latitude may be stored decreasing or increasing, longitude in [0, 360) or [-180, 180). Any number of files (a
directory, a glob pattern or a list) make one data set: at construction only the metadata (times, grid, variable
names, units) is scanned; :meth:`Era5Reader.read` opens just the files that overlap the requested window and reads
just the lat-lon box around the requested columns, so a year of a region is never loaded at once.

Conversions to the core's variables (units are checked, a wrong unit is an error naming file and variable):

==========  =============================================  ==================================================
core        ERA5 (short name, units)                       conversion; time convention of the record
==========  =============================================  ==================================================
tair        ``t2m`` K                                      as is; instant
qair        ``d2m`` K and ``sp`` Pa                        e = e_sat,w(d2m) (IFS formula, over water),
                                                           q = 0.622 e / (sp - 0.378 e); instant
psurf       ``sp`` Pa                                      as is; instant
wind        ``u10``, ``v10`` m s-1                         sqrt(u10^2 + v10^2); instant
swdown      ``ssrd`` J m-2                                 / 3600 s; mean over the hour *ending* at the stamp
lwdown      ``strd`` J m-2                                 / 3600 s; mean over the hour ending at the stamp
prec        ``mtpr`` kg m-2 s-1, else ``tp`` m             mtpr as is, tp * 1000 kg m-3 / 3600 s; mean over
                                                           the hour ending at the stamp
==========  =============================================  ==================================================

ERA5 hourly accumulations and mean rates refer to the hour before the validity time (ECMWF ERA5 documentation,
"accumulations are over the hour ending at the validity date and time"), so the files must be hourly: another
spacing is an error rather than a silent mis-scaling. :mod:`colmda.forcing.interp` then interpolates to the model
step (linear for instantaneous variables, conservative for precipitation, solar-zenith weighted for shortwave).

Spatial interpolation to the model columns is ``'bilinear'`` (weights of the four surrounding grid points, renormalised
over the valid ones so that a column at a coast uses the land points only) or ``'nearest'``.
"""

from __future__ import annotations

import glob as _glob
from pathlib import Path

import numpy as np

from .readers import CORE_VARIABLES, ForcingChunk, ForcingError, ForcingReader, _RANGES

__all__ = ['Era5Reader', 'dewpoint_to_specific_humidity', 'vapour_pressure_ifs', 'ACCUMULATION_SECONDS']

ACCUMULATION_SECONDS = 3600  # ERA5 hourly accumulations cover the hour ending at the stamp

_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')
# ERA5 short name -> accepted units (normalised: '**' removed, spaces collapsed) -> factor to the core's unit
_UNITS = {
    't2m': {'K': 1.0}, 'd2m': {'K': 1.0}, 'sp': {'Pa': 1.0}, 'u10': {'m s-1': 1.0}, 'v10': {'m s-1': 1.0},
    'ssrd': {'J m-2': 1.0 / ACCUMULATION_SECONDS}, 'strd': {'J m-2': 1.0 / ACCUMULATION_SECONDS},
    'tp': {'m': 1000.0 / ACCUMULATION_SECONDS}, 'mtpr': {'kg m-2 s-1': 1.0},
}
_LONG_NAMES = {'2 metre temperature': 't2m', '2 metre dewpoint temperature': 'd2m', 'surface pressure': 'sp',
               '10 metre u wind component': 'u10', '10 metre v wind component': 'v10',
               'surface solar radiation downwards': 'ssrd', 'surface short-wave (solar) radiation downwards': 'ssrd',
               'surface thermal radiation downwards': 'strd',
               'surface long-wave (thermal) radiation downwards': 'strd', 'total precipitation': 'tp',
               'mean total precipitation rate': 'mtpr'}
_NEEDS = {'tair': ('t2m',), 'qair': ('d2m', 'sp'), 'psurf': ('sp',), 'wind': ('u10', 'v10'),
          'swdown': ('ssrd',), 'lwdown': ('strd',)}
_CONVENTION = {'tair': 'instant', 'qair': 'instant', 'psurf': 'instant', 'wind': 'instant',
               'swdown': 'backward_mean', 'lwdown': 'backward_mean', 'prec': 'backward_mean'}


def vapour_pressure_ifs(t_k):
    """Saturation vapour pressure over water (Pa) of the ECMWF IFS (Cy41r2 documentation, Part IV, eq. 7.5:
    611.21 exp(17.502 (T - 273.16) / (T - 32.19))), the formula ERA5's dewpoint is defined with."""
    t = np.asarray(t_k, dtype=np.float64)
    return 611.21 * np.exp(17.502 * (t - 273.16) / (t - 32.19))


def dewpoint_to_specific_humidity(td_k, p_pa):
    """Specific humidity (kg kg-1) from dewpoint (K) and surface pressure (Pa): q = 0.622 e / (p - 0.378 e)."""
    e = vapour_pressure_ifs(td_k)
    p = np.asarray(p_pa, dtype=np.float64)
    return 0.622 * e / (p - 0.378 * e)


def _norm_units(u):
    return ' '.join(str(u).replace('**', '').split())


def _expand(paths):
    """A directory (its *.nc files), a glob pattern, a file, or a list of those -> sorted list of files."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            out += sorted(str(q) for q in p.glob('*.nc'))
        elif p.is_file():
            out.append(str(p))
        else:
            hits = sorted(_glob.glob(str(it)))
            if not hits:
                raise ForcingError(f"{it}: no ERA5 file found (expected a netCDF file, a directory of *.nc files or "
                                   "a glob pattern)")
            out += hits
    if not out:
        raise ForcingError(f"{paths}: no ERA5 netCDF file (*.nc) found")
    return out


def _time_seconds(path, var):
    """Stamps of a time variable as int64 seconds since 1970 (any CF units '<unit> since <date>', decoded by
    cftime through :mod:`colmda.timeaxis`)."""
    from ..errors import UserError
    from ..timeaxis import decode_seconds

    try:
        sec = decode_seconds(np.asarray(var[:], dtype=np.float64), getattr(var, 'units', ''),
                             getattr(var, 'calendar', 'standard'), where=f"{path}: variable '{var.name}'")
    except UserError as exc:
        raise ForcingError(str(exc)) from None
    return np.round(sec).astype(np.int64)


class _FileInfo:
    __slots__ = ('path', 'tdim', 'seconds', 'variables', 'edim')

    def __init__(self, path, tdim, seconds, variables, edim):
        self.path, self.tdim, self.seconds, self.variables, self.edim = path, tdim, seconds, variables, edim


class Era5Reader(ForcingReader):
    """ERA5 hourly single-level forcing over many files, interpolated to columns at ``lat``/``lon`` (degrees).

    The reader's columns are the given points (index k = the k-th point). See the module docstring for the
    variables, units and conventions; errors are :class:`ForcingError` naming the file and the variable.
    """

    reference_height = 10.0  # m, height of the ERA5 wind (temperature and humidity are at 2 m)
    site_code = ''

    def __init__(self, paths, lat, lon, interpolation='bilinear'):
        import netCDF4

        self.files = _expand(paths)
        self.path = self.files[0] if len(self.files) == 1 else f'{Path(self.files[0]).parent} ({len(self.files)} ERA5 files)'
        self._lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        self._lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        if self._lat.shape != self._lon.shape:
            raise ForcingError(f'{self.path}: {self._lat.size} latitudes but {self._lon.size} longitudes')
        if interpolation not in ('bilinear', 'nearest'):
            raise ForcingError(f"ERA5 interpolation '{interpolation}': expected 'bilinear' or 'nearest'")
        self.interpolation = interpolation
        self.infos = []
        grid = None
        for f in self.files:
            try:
                ds = netCDF4.Dataset(f)
            except OSError as exc:
                raise ForcingError(f'{f}: cannot be opened as netCDF ({exc})') from None
            with ds:
                tname = 'valid_time' if 'valid_time' in ds.variables else ('time' if 'time' in ds.variables else None)
                if tname is None:
                    raise ForcingError(f"{f}: no time coordinate ('valid_time' of the new CDS or 'time' of the old)")
                for c in ('latitude', 'longitude'):
                    if c not in ds.variables:
                        raise ForcingError(f"{f}: coordinate '{c}' is missing (expected an ERA5 lat-lon grid)")
                g = (np.asarray(ds['latitude'][:], dtype=np.float64), np.asarray(ds['longitude'][:], dtype=np.float64))
                if grid is None:
                    grid = g
                elif g[0].shape != grid[0].shape or g[1].shape != grid[1].shape or not (
                        np.allclose(g[0], grid[0]) and np.allclose(g[1], grid[1])):
                    raise ForcingError(f'{f}: lat-lon grid differs from that of {self.files[0]}; all ERA5 files '
                                       'must share one grid')
                found = {}
                for name, v in ds.variables.items():
                    short = name if name in _UNITS else _LONG_NAMES.get(str(getattr(v, 'long_name', '')).lower())
                    if short is None or v.ndim < 3:
                        continue
                    dims = v.dimensions
                    if dims[0] != tname or dims[-2:] != ('latitude', 'longitude'):
                        raise ForcingError(f"{f}: variable '{name}' has dimensions {dims}; expected ({tname}, "
                                           "[expver,] latitude, longitude)")
                    u = _norm_units(getattr(v, 'units', ''))
                    if u not in _UNITS[short]:
                        raise ForcingError(f"{f}: variable '{name}' has units '{getattr(v, 'units', '')}'; expected "
                                           f"{' or '.join(repr(k) for k in _UNITS[short])} (ERA5 {short})")
                    found[short] = name
                secs = _time_seconds(f, ds[tname])
                edim = 'expver' if 'expver' in ds.dimensions else None
                self.infos.append(_FileInfo(f, tname, secs, found, edim))
        self.grid_lat, self.grid_lon = grid
        self._have = {}
        for info in self.infos:
            for short in info.variables:
                self._have.setdefault(short, []).append(info)
        missing = [f"'{s}' (for {core})" for core, need in _NEEDS.items() for s in need if s not in self._have]
        if 'mtpr' not in self._have and 'tp' not in self._have:
            missing.append("'mtpr' or 'tp' (for prec)")
        if missing:
            raise ForcingError(f"{self.path}: ERA5 variable(s) {', '.join(dict.fromkeys(missing))} not found in "
                               f"{len(self.files)} file(s)")
        self._prec = 'mtpr' if 'mtpr' in self._have else 'tp'
        # the stamps every needed variable has (hourly)
        common = None
        for short in self._shorts():
            s = np.unique(np.concatenate([i.seconds for i in self._have[short]]))
            common = s if common is None else np.intersect1d(common, s)
        if common is None or common.size < 2:
            raise ForcingError(f'{self.path}: fewer than two time stamps common to all ERA5 variables')
        step = np.diff(common)
        if np.any(step != ACCUMULATION_SECONDS):
            k = int(np.flatnonzero(step != ACCUMULATION_SECONDS)[0])
            raise ForcingError(f'{self.path}: the ERA5 records common to all variables are not hourly (gap of '
                               f'{step[k]} s after {_EPOCH + np.timedelta64(int(common[k]), "s")}); accumulations '
                               'cover one hour, so hourly files without gaps are required')
        self._seconds = common
        self._weights = self._interp_weights()

    # -- geometry ------------------------------------------------------------------------------------------
    def _shorts(self):
        return ('t2m', 'd2m', 'sp', 'u10', 'v10', 'ssrd', 'strd', self._prec)

    def _interp_weights(self):
        """(index_lat (ncol, 4), index_lon (ncol, 4), weight (ncol, 4)) of each column's neighbours."""
        glat, glon = self.grid_lat, self.grid_lon
        lat_up = glat[0] < glat[-1] if glat.size > 1 else True
        la = glat if lat_up else glat[::-1]
        lon0 = glon[0]
        rel = np.mod(glon - lon0, 360.0)
        if np.any(np.diff(rel) <= 0):
            raise ForcingError(f'{self.path}: longitudes are not increasing')
        dlon = rel[1] - rel[0] if glon.size > 1 else 360.0
        periodic = glon.size > 1 and abs(rel[-1] + dlon - 360.0) < 1e-6
        x = np.mod(self._lon - lon0, 360.0)
        bad = (self._lat < la[0] - 1e-9) | (self._lat > la[-1] + 1e-9)
        if not periodic:
            bad |= x > rel[-1] + 1e-9
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            raise ForcingError(f'{self.path}: column at lat {self._lat[k]:.3f} lon {self._lon[k]:.3f} is outside '
                               f'the ERA5 grid (lat {la[0]:g}..{la[-1]:g}, lon {glon.min():g}..{glon.max():g})')
        # latitude neighbours (in stored order)
        if la.size > 1:
            j = np.clip(np.searchsorted(la, self._lat, side='right') - 1, 0, la.size - 2)
            wy = np.clip((self._lat - la[j]) / (la[j + 1] - la[j]), 0.0, 1.0)
        else:
            j, wy = np.zeros(self._lat.size, int), np.zeros(self._lat.size)
        jj = np.stack([j, j + 1 if la.size > 1 else j], 1)
        if not lat_up:
            jj = glat.size - 1 - jj
        if glon.size > 1:
            i = np.floor(x / dlon).astype(int)
            i = np.minimum(i, glon.size - 1 if periodic else glon.size - 2)
            wx = np.clip((x - rel[i]) / dlon, 0.0, 1.0)
            ii = np.stack([i, (i + 1) % glon.size], 1)
        else:
            ii, wx = np.zeros((self._lon.size, 2), int), np.zeros(self._lon.size)
        J = np.stack([jj[:, 0], jj[:, 0], jj[:, 1], jj[:, 1]], 1)
        I = np.stack([ii[:, 0], ii[:, 1], ii[:, 0], ii[:, 1]], 1)
        W = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], 1)
        if self.interpolation == 'nearest':
            k = np.argmax(W, axis=1)
            W = np.zeros_like(W)
            W[np.arange(W.shape[0]), k] = 1.0
        return J, I, W

    # -- interface -----------------------------------------------------------------------------------------
    @property
    def variables(self):
        return CORE_VARIABLES

    def times(self):
        return _EPOCH + self._seconds.astype('timedelta64[s]')

    @property
    def interval(self):
        return ACCUMULATION_SECONDS

    def convention(self, name):
        if name not in _CONVENTION:
            raise ForcingError(f"{self.path}: no variable '{name}' (available: {', '.join(CORE_VARIABLES)})")
        return _CONVENTION[name]

    def coverage(self, name=None):
        """Instants covered by every variable: from the first stamp (instantaneous values there; the first
        accumulation ends there) to the last."""
        t = self.times()
        return t[0], t[-1]

    @property
    def lat(self):
        return self._lat.copy()

    @property
    def lon(self):
        return self._lon.copy()

    def read(self, start, end, columns=None):
        cols = np.arange(self._lat.size) if columns is None else np.asarray(columns, dtype=np.int64).ravel()
        if cols.size and (cols.min() < 0 or cols.max() >= self._lat.size):
            raise ForcingError(f'{self.path}: columns {cols.tolist()[:5]} outside 0..{self._lat.size - 1}')
        t0 = (np.datetime64(start, 's') - _EPOCH).astype(np.int64)
        t1 = (np.datetime64(end, 's') - _EPOCH).astype(np.int64)
        # one record beyond each end: linear interpolation to mid-steps and the accumulation ending after t1
        a = max(int(np.searchsorted(self._seconds, t0, side='right')) - 2, 0)
        b = min(int(np.searchsorted(self._seconds, t1, side='left')) + 2, self._seconds.size)
        stamps = self._seconds[a:b]
        if stamps.size < 2:
            lo, hi = self.coverage()
            raise ForcingError(f'{self.path}: no ERA5 data between {np.datetime64(start, "s")} and '
                               f'{np.datetime64(end, "s")} UTC; the files cover {lo} .. {hi} UTC')
        J, I, W = (x[cols] for x in self._weights)
        raw = {s: self._read_var(s, stamps, J, I, W, cols) for s in self._shorts()}
        data = {'tair': raw['t2m'], 'psurf': raw['sp'], 'qair': dewpoint_to_specific_humidity(raw['d2m'], raw['sp']),
                'wind': np.hypot(raw['u10'], raw['v10']), 'swdown': np.maximum(raw['ssrd'], 0.0),
                'lwdown': raw['strd'], 'prec': np.maximum(raw[self._prec], 0.0)}
        for k, v in data.items():
            lo, hi = _RANGES[k]
            bad = (v < lo) | (v > hi)
            if np.any(bad):
                r, c = (int(x[0]) for x in np.nonzero(bad))
                raise ForcingError(f'{self.path}: {k} = {v[r, c]:.4g} at {_EPOCH + np.timedelta64(int(stamps[r]), "s")} '
                                   f'column {int(cols[c])} is outside the plausible range [{lo}, {hi}] (core units); '
                                   'wrong units or a corrupt file')
        times = _EPOCH + stamps.astype('timedelta64[s]')
        return ForcingChunk(self.path, times, ACCUMULATION_SECONDS, data, dict(_CONVENTION), self._lat[cols],
                            self._lon[cols])

    def _read_var(self, short, stamps, J, I, W, cols):
        """(nstamp, ncol) values of ERA5 variable ``short`` in the core's unit at ``stamps``, interpolated."""
        import netCDF4

        out = np.full((stamps.size, J.shape[0]), np.nan)
        got = np.zeros(stamps.size, bool)
        jlo, jhi = int(J.min()), int(J.max()) + 1
        ilo, ihi = int(I.min()), int(I.max()) + 1
        for info in self._have[short]:
            hit = np.isin(info.seconds, stamps)
            if not hit.any():
                continue
            k = np.flatnonzero(hit)
            k0, k1 = int(k[0]), int(k[-1]) + 1
            name = info.variables[short]
            with netCDF4.Dataset(info.path) as ds:
                v = ds[name]
                v.set_auto_maskandscale(True)
                if info.edim is not None and v.ndim == 4:
                    block = np.ma.filled(v[k0:k1, :, jlo:jhi, ilo:ihi].astype(np.float64), np.nan)
                    first = np.argmax(np.isfinite(block), axis=1)      # ERA5 / ERA5T: first valid expver
                    block = np.take_along_axis(block, first[:, None], axis=1)[:, 0]
                else:
                    block = np.ma.filled(v[k0:k1, jlo:jhi, ilo:ihi].astype(np.float64), np.nan)
                factor = _UNITS[short][_norm_units(getattr(v, 'units', ''))]
            rows = np.searchsorted(stamps, info.seconds[k0:k1])
            sel = np.isin(info.seconds[k0:k1], stamps)
            vals = block[:, J - jlo, I - ilo] * factor                  # (nt, ncol, 4)
            ok = np.isfinite(vals)
            w = np.where(ok, W[None], 0.0)
            wsum = w.sum(axis=2)
            with np.errstate(invalid='ignore', divide='ignore'):
                interp = np.where(wsum > 0, (np.where(ok, vals, 0.0) * w).sum(axis=2) / wsum, np.nan)
            out[rows[sel]] = interp[sel]
            got[rows[sel]] = True
        if not got.all():
            t = _EPOCH + np.timedelta64(int(stamps[np.flatnonzero(~got)[0]]), 's')
            raise ForcingError(f"{self.path}: ERA5 variable '{short}' has no record at {t} UTC")
        if np.isnan(out).any():
            r, c = (int(x[0]) for x in np.nonzero(np.isnan(out)))
            raise ForcingError(f"{self.path}: ERA5 variable '{short}' is missing at every grid point around the column "
                               f"at lat {self._lat[cols[c]]:.3f} lon {self._lon[cols[c]]:.3f} "
                               f"({_EPOCH + np.timedelta64(int(stamps[r]), 's')} UTC; sea points or fill values)")
        return out
