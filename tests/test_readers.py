"""Readers of real products (colmda.obs.readers, docs/observations.md section 8): each reader on the real fixture
bytes checked against an independent direct read (netCDF4 with its own automatic scaling and masking, or h5py),
the pixel-to-cell averaging by hand on a small case, and bad input (one-line UserErrors or logged skips)."""

import logging
import warnings
import os
import shutil
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

from colmda.domain import Domain
from colmda.errors import UserError
from colmda.obs.format import FLAG_DENSE_VEGETATION, FLAG_FROZEN, FLAG_SNOW, read_obs
from colmda.obs.readers import (FLAG_QUALITY, FLAG_SURFACE, PRODUCTS, aggregate_to_cells, read_era5_reference,
                                read_observations, write_product_obs)
from colmda.obs.readers.fy3 import ease1_lat_lon

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get('COLMDA_REAL_DATA', ''), REPO.parent / 'shared' / 'data' / 'real',
               REPO.parents[1] / 'shared' / 'data' / 'real', '/work/shared/data/real']
REAL = next((Path(p) for p in _CANDIDATES if p and (Path(p) / 'SOURCES.md').is_file()), None)
need_real = pytest.mark.skipif(REAL is None, reason='real sample data (shared/data/real) not present')

STATION = (19.765, -155.423)     # COSMOS SilverSword, Hawaii, co-located with the ASCAT cell file 0165


def real(rel):
    return REAL / rel


ASCAT_CELL = 'ascat/H113_cell/0165.nc'
ASCAT_GRID = 'ascat/grid/TUW_WARP5_grid_info_2_3.nc'
EUM_L2 = ('ascat/eumetsat_l2_ssm_250/W_XX-EUMETSAT-Darmstadt,SURFACE+SATELLITE,METOPA+ASCAT_C_EUMP_'
          '20170220041500_53652_eps_o_250_ssm_l2.nc')
SMAP = 'smap/SPL2SMP/SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5'
SMOS_DIR = 'smos/L3_CATDS_CLF31A_subset'
ERA5_OLD = 'era5/old_cds_grib_to_netcdf/example_downloaded_raw.nc'
ERA5_NEW_SP = 'era5/new_cds_netcdf_2024/era5_surface_pressure_2020-1.nc'


@pytest.fixture(scope='module')
def dom():
    return Domain.load()


def in_cell(dom, g, lat, lon):
    """Independent cell test from the domain's bounds: is (lat, lon) inside the cell of global column g?"""
    j, i = g // dom.nlon, g % dom.nlon
    lo0, lo1 = dom.lon_bnds[i]
    lonm = np.mod(lon - lo0, 360.0) + lo0
    return (lat >= dom.lat_bnds[j, 0]) & (lat < dom.lat_bnds[j, 1]) & (lonm >= lo0) & (lonm < lo1)


def cosby_porosity(dom, g):
    """Top-layer porosity from the documented Cosby et al. (1984) regression + organic mixing (soilparams doc)."""
    sand, om = dom.get('sand', [g])[0], dom.get('organic', [g])[0]
    return (1 - om) * (0.489 - 0.00126 * 100 * sand) + om * 0.9


# ------------------------------------------------------------------------------------------------------------
# pixel-to-cell averaging by hand

def test_aggregation_by_hand(dom):
    """Two model cells, two passes in one of them, flags: rows, counts, spread, error, time, flags as computed by
    hand."""
    g1, g2 = int(dom.land_columns()[100]), int(dom.land_columns()[2000])
    (la1, lo1), (la2, lo2) = (dom.column_lat(g1), dom.column_lon(g1)), (dom.column_lat(g2), dom.column_lon(g2))
    t = np.datetime64('2020-06-01T06:00:00', 's')
    s = np.timedelta64(1, 's')
    px = dict(
        lat=np.array([la1, la1 + 0.3, la1 - 0.3, la1, la1, la2, la2 + 0.1, la2, 80.0 if la1 < 70 else -80.0]),
        lon=np.array([lo1, lo1 + 0.3, lo1, lo1 - 0.3, lo1, lo2, lo2, lo2, lo1]),
        time=np.array([t, t + 10 * s, t + 20 * s, t + 30 * s, t + 3 * 3600 * s,   # cell 1: pass A (4 px), pass B
                       t, t + 2 * s, t + 4 * s, t]),
        value=np.array([0.20, 0.30, 0.40, 0.90, 0.25, 0.10, np.nan, 0.50, 0.3]),
        error=np.array([0.04, 0.06, 0.05, 0.05, 0.03, 0.04, 0.04, 0.04, 0.04]),
        quality=np.array([0, FLAG_DENSE_VEGETATION, FLAG_DENSE_VEGETATION, FLAG_QUALITY, 0,
                          FLAG_FROZEN, FLAG_FROZEN, FLAG_FROZEN, 0]))
    # a pixel without a time (product fill) is left out and counted, whatever its value
    px = {k: np.append(v, {'lat': la1, 'lon': lo1, 'time': np.datetime64('NaT'), 'value': 0.9, 'error': 0.04,
                           'quality': 0}[k]) for k, v in px.items()}
    r = aggregate_to_cells('test', 'T', 'volumetric', 0.05, dom, [g1, g2], **px)
    assert r.counts['pixels_without_time'] == 1
    tab = r.table
    # rows sorted by time then column: (t, g1 or g2 order by column), then pass B
    assert len(tab) == 3
    by = {(int(c), str(tt)): k for k, (c, tt) in enumerate(zip(tab.column, tab.time))}
    a = by[(g1, str(t + 10 * s))]          # mean time of the 3 usable pixels (0, 10, 20 s)
    assert tab.value[a] == pytest.approx(0.30)
    assert r.pixel_std[a] == pytest.approx(np.sqrt(((0.1) ** 2 + 0 + 0.1 ** 2) / 3))
    assert tab.error[a] == pytest.approx(0.05)              # mean of 0.04, 0.06, 0.05 (not / sqrt(3))
    assert r.n_pixels[a] == 3
    assert tab.quality[a] == FLAG_DENSE_VEGETATION           # 2 of 3 usable pixels
    b = by[(g1, str(t + 3 * 3600 * s))]
    assert tab.value[b] == pytest.approx(0.25) and r.n_pixels[b] == 1 and tab.quality[b] == 0
    c = [k for k in range(3) if tab.column[k] == g2][0]      # all frozen -> NaN row carrying the flag
    assert np.isnan(tab.value[c]) and r.n_pixels[c] == 0 and tab.quality[c] == FLAG_FROZEN
    assert tab.time[c] == t + 2 * s                          # mean of all its pixel times (0, 2, 4 s)
    assert r.counts['pixels_outside_columns'] == 1 and r.counts['pixels_used'] == 4
    assert r.counts['pixels_flagged_product_quality'] == 1 and r.counts['rows_all_flagged'] == 1
    np.testing.assert_array_equal(tab.lat, dom.column_lat(tab.column))
    # a usable pixel without its own error still counts for the value; the error is the mean of those given
    r = aggregate_to_cells('test', 'T', 'volumetric', 0.05, dom, [g1], lat=[la1, la1], lon=[lo1, lo1],
                           time=[t, t + s], value=[0.2, 0.4], error=[np.nan, 0.05], quality=[0, 0])
    assert r.table.value[0] == pytest.approx(0.3) and r.table.error[0] == 0.05 and r.n_pixels[0] == 2


# ------------------------------------------------------------------------------------------------------------
# ASCAT H SAF cell file

def _direct_ascat_cell(path):
    nc = netCDF4.Dataset(path)
    try:
        rs = nc['row_size'][:]
        lat = np.repeat(nc['lat'][:].astype(float), rs)
        lon = np.repeat(nc['lon'][:].astype(float), rs)
        time = netCDF4.num2date(nc['time'][:], nc['time'].units, only_use_cftime_datetimes=False,
                                only_use_python_datetimes=True)
        time = np.array(time, dtype='datetime64[s]')
        sm = nc['sm'][:]                  # masked where missing_value
        d = dict(lat=lat, lon=lon, time=time, sm=np.ma.filled(sm.astype(float), np.nan),
                 noise=np.ma.filled(nc['sm_noise'][:].astype(float), np.nan), ssf=np.asarray(nc['ssf'][:]),
                 conf=np.asarray(nc['conf_flag'][:]), proc=np.asarray(nc['proc_flag'][:]), units=nc['sm'].units)
    finally:
        nc.close()
    return d


@need_real
def test_ascat_cell_against_direct_read(dom):
    g = int(dom.index_of(*STATION)[0])
    path = real(ASCAT_CELL)
    r = read_observations(path, 'ascat_hsaf_cell', dom, columns=[g], start='2017-01-01', end='2017-12-31T23:59:59')
    tab = r.table
    d = _direct_ascat_cell(path)
    assert d['units'] == 'degree of saturation (%)' and tab.quantity == 'saturation'
    sel = in_cell(dom, g, d['lat'], d['lon']) & (d['time'] >= np.datetime64('2017-01-01')) & \
        (d['time'] < np.datetime64('2018-01-01'))
    usable = sel & np.isfinite(d['sm']) & (d['proc'] == 0) & (d['conf'] == 0) & np.isin(d['ssf'], (0, 1))
    assert usable.sum() > 5000
    # every usable pixel is in exactly one row, and the rows' pixel-weighted sums equal the direct sums
    assert r.n_pixels.sum() == usable.sum()
    assert np.nansum(tab.value * r.n_pixels) == pytest.approx(d['sm'][usable].sum() / 100.0, rel=1e-12)
    assert np.nansum(tab.error * r.n_pixels) == pytest.approx(d['noise'][usable].sum() / 100.0, rel=1e-12)
    # one row by hand: the pixels within 20 min of the first row's time
    t0 = tab.time[0]
    near = usable & (np.abs((d['time'] - t0).astype(np.int64)) < 1200)
    assert r.n_pixels[0] == near.sum()
    assert tab.value[0] == pytest.approx(d['sm'][near].mean() / 100.0)
    assert r.pixel_std[0] == pytest.approx(d['sm'][near].std() / 100.0)
    assert abs((d['time'][near] - t0).astype(np.int64).mean()) <= 1.0
    assert np.all((tab.time >= np.datetime64('2017-01-01')) & (tab.time < np.datetime64('2018-01-01')))
    assert np.all(np.diff(tab.time.astype(np.int64)) > 0)    # passes of one cell are separate rows
    assert set(np.unique(tab.column)) == {g}
    # porosity: the model's top-layer porosity from its texture; volumetric = saturation * porosity
    phi = cosby_porosity(dom, g)
    np.testing.assert_allclose(tab.porosity, phi, rtol=1e-12)
    vol, err = tab.volumetric()
    np.testing.assert_allclose(vol, tab.value * phi)
    assert 0.0 <= np.nanmin(tab.value) and np.nanmax(tab.value) <= 1.0
    # a given porosity instead of the model's
    r2 = read_observations(path, 'ascat_hsaf_cell', dom, columns=[g], start='2017-01-01', end='2017-02-01',
                           porosity=0.5)
    assert np.all(r2.table.porosity == 0.5)
    # one porosity per column, columns given in any order: each row gets its own column's value
    r3 = read_observations(path, 'ascat_hsaf_cell', dom, columns=[g, g - 256], start='2017-01-01', end='2017-02-01',
                           porosity=[0.41, 0.52])
    assert set(np.unique(r3.table.column)) == {g, g - 256}
    assert np.all(r3.table.porosity[r3.table.column == g] == 0.41)
    assert np.all(r3.table.porosity[r3.table.column == g - 256] == 0.52)
    # flags counted: conf_flag 2 (topography) -> surface, 16 (sensitivity) -> product quality
    assert r.counts['pixels_flagged_surface'] == (sel & np.isfinite(d['sm']) & (d['proc'] == 0)
                                                  & ((d['conf'] & 6) != 0)).sum()
    assert r.counts['pixels_flagged_product_quality'] == (sel & np.isfinite(d['sm']) & (d['proc'] == 0)
                                                          & ((d['conf'] & 25) != 0)).sum()


@need_real
def test_ascat_cell_directory_with_grid_and_file_round_trip(dom, tmp_path):
    g = int(dom.index_of(*STATION)[0])
    cells = tmp_path / 'cells'
    cells.mkdir()
    shutil.copy(real(ASCAT_CELL), cells / 'H113_0165.nc')       # a product prefix in the name is accepted
    (cells / 'H113_0001.nc').write_bytes(b'not read: cell 1 does not cover the run column')
    a = read_observations(real(ASCAT_CELL), 'ascat_hsaf_cell', dom, columns=[g], start='2016-01-01', end='2016-03-01')
    b = read_observations(cells, 'ascat_hsaf_cell', dom, columns=[g], start='2016-01-01', end='2016-03-01',
                          grid=real(ASCAT_GRID))
    assert a.table.equals(b.table) and len(a) > 0 and b.files == [str(cells / 'H113_0165.nc')]
    with pytest.raises(UserError, match='H113_0001.nc: not a readable netCDF'):    # without the grid: every file
        read_observations(cells, 'ascat_hsaf_cell', dom, columns=[g])
    out = write_product_obs(tmp_path / 'ASCAT.nc', a)
    back = read_obs(out)
    assert back.equals(a.table) and back.sensor == 'ASCAT'
    with netCDF4.Dataset(out) as nc:
        np.testing.assert_array_equal(nc['n_pixels'][:], a.n_pixels)
        np.testing.assert_allclose(nc['pixel_std'][:], a.pixel_std)
        assert 'product_quality' in nc['quality'].flag_meanings and nc.product == 'ascat_hsaf_cell'
        assert nc.count_pixels_used == a.counts['pixels_used']


# ------------------------------------------------------------------------------------------------------------
# EUMETSAT L2 swath

@need_real
def test_ascat_eumetsat_l2_against_direct_read(dom):
    path = real(EUM_L2)
    r = read_observations(path, 'ascat_eumetsat_l2', dom, porosity=0.45)
    tab = r.table
    with netCDF4.Dataset(path) as nc, warnings.catch_warnings():   # netCDF4's own scaling, _Unsigned, masking
        warnings.simplefilter('ignore', UserWarning)   # netCDF4: proc_flag1's valid_max cannot be cast
        sm = np.ma.filled(nc['soil_moisture'][:].astype(float), np.nan)
        lat = nc['latitude'][:].astype(float)
        lon = nc['longitude'][:].astype(float)
        t = np.array(netCDF4.num2date(nc['utc_line_nodes'][:], nc['utc_line_nodes'].units,
                                      only_use_cftime_datetimes=False, only_use_python_datetimes=True),
                     dtype='datetime64[s]')
        # flags at their fill value (masked here) mean "unknown" and set no bit (module docstring)
        fr, sn, wet, topo, p1 = (np.ma.filled(nc[n][:].astype(float), 0.0) for n in (
            'frozen_soil_probability', 'snow_cover_probability', 'wetland_flag', 'topography_flag', 'proc_flag1'))
        assert nc['soil_moisture'].units == 'percent'
    sm[(sm < 0) | (sm > 100)] = np.nan
    lon = np.where(lon > 180, lon - 360, lon)
    g = dom.index_of(lat.ravel(), lon.ravel())
    land = np.isin(g, dom.land_columns()).reshape(sm.shape)
    ok = land & np.isfinite(sm) & ~(fr > 50) & ~(sn > 50) & ~(wet > 50) & ~(topo > 50) & (p1 == 0)
    assert ok.sum() > 100
    assert r.n_pixels.sum() == ok.sum()
    assert np.nansum(tab.value * r.n_pixels) == pytest.approx(sm[ok].sum() / 100.0, rel=1e-6)  # f4 scale
    tt = np.broadcast_to(t[:, None], sm.shape)
    assert tab.time.min() >= tt[land].min() and tab.time.max() <= tt[land].max()
    assert np.all(tab.porosity == 0.45)
    frozen_rows = (tab.quality & FLAG_FROZEN) != 0
    assert frozen_rows.sum() > 100 and np.all(np.isnan(tab.value[frozen_rows & (r.n_pixels == 0)]))


# ------------------------------------------------------------------------------------------------------------
# SMAP L2

@need_real
def test_smap_l2_against_direct_read(dom):
    path = real(SMAP)
    r = read_observations(path, 'smap_l2', dom)
    tab = r.table
    with h5py.File(path) as f:
        gr = f['Soil_Moisture_Retrieval_Data']
        sm = gr['soil_moisture'][()].astype(float)
        lat, lon = gr['latitude'][()].astype(float), gr['longitude'][()].astype(float)
        rq, sf = gr['retrieval_qual_flag'][()], gr['surface_flag'][()].astype(np.int64)
        tsec = gr['tb_time_seconds'][()]
        err = gr['soil_moisture_error'][()]
        th, tv = gr['tb_qual_flag_h'][()].astype(np.int64), gr['tb_qual_flag_v'][()].astype(np.int64)
        assert gr['soil_moisture'].attrs['units'] == b'cm**3/cm**3'
    valid = sm != -9999.0
    g = dom.index_of(lat, lon)
    land = np.isin(g, dom.land_columns())
    rfi = (((th & 4) != 0) & ((th & 8) == 0)) | (((tv & 4) != 0) & ((tv & 8) == 0))
    ok = land & valid & ((rq & 1) == 0) & ((sf & (1 | 2 | 4 | 8 | 16 | 32 | 64 | 128 | 256 | 512)) == 0) & \
        (sm >= 0.02) & (sm <= 0.5) & ~rfi
    assert ok.sum() > 50
    assert r.n_pixels.sum() == ok.sum()
    assert np.nansum(tab.value * r.n_pixels) == pytest.approx(sm[ok].sum(), rel=1e-6)
    assert np.all(err[valid] == -9999.0)       # this release has no error: the documented 0.04 is used
    np.testing.assert_allclose(tab.error[r.n_pixels > 0], 0.04, rtol=1e-12)
    # time: tb_time_seconds counts from 2000-01-01T12:00 UTC; rows lie within the pixels' times
    t = np.datetime64('2000-01-01T12:00:00', 's') + np.round(tsec[land & (tsec != -9999.0)]).astype(np.int64).astype(
        'timedelta64[s]')
    assert tab.time.min() >= t.min() - np.timedelta64(1, 's') and tab.time.max() <= t.max() + np.timedelta64(1, 's')
    assert str(tab.time.min())[:10] == '2015-08-11'
    # frozen ground (surface_flag 128/256) and snow rows carry the flags with NaN values
    frozen = (tab.quality & FLAG_FROZEN) != 0
    assert frozen.sum() > 0 and np.all(np.isnan(tab.value[frozen & (r.n_pixels == 0)]))
    assert tab.quantity == 'volumetric' and np.all(np.isnan(tab.porosity))
    assert np.nanmax(tab.value) <= 0.5 and np.nanmin(tab.value) >= 0.02


# ------------------------------------------------------------------------------------------------------------
# SMOS L3

@need_real
def test_smos_l3_against_direct_read(dom):
    files = sorted(real(SMOS_DIR).glob('*.DBL.nc'))
    r = read_observations(real(SMOS_DIR), 'smos_l3', dom)
    tab = r.table
    total, tmin, tmax = 0.0, [], []
    n = 0
    for f in files:
        with netCDF4.Dataset(f) as nc:
            sm = np.ma.filled(nc['Soil_Moisture'][:].astype(float), np.nan)
            assert nc['Soil_Moisture'].units == 'm3.m-3'
            la, lo = np.meshgrid(nc['lat'][:], nc['lon'][:], indexing='ij')
            days = np.ma.filled(nc['Mean_Acq_Time_Days'][:].astype(float), np.nan)
            secs = np.ma.filled(nc['Mean_Acq_Time_Seconds'][:].astype(float), np.nan)
        g = dom.index_of(la.ravel(), lo.ravel()).reshape(sm.shape)
        ok = np.isin(g, dom.land_columns()) & np.isfinite(sm) & np.isfinite(days)
        total += sm[ok].sum()
        n += ok.sum()
        t = np.datetime64('2000-01-01', 's') + (days[ok] * 86400 + secs[ok]).astype(np.int64).astype('timedelta64[s]')
        tmin.append(t.min())
        tmax.append(t.max())
        assert str(t.min())[:10] == f.name[19:23] + '-' + f.name[23:25] + '-' + f.name[25:27]
    assert r.n_pixels.sum() == n and n > 1000
    assert np.nansum(tab.value * r.n_pixels) == pytest.approx(total, rel=1e-9)
    assert tab.time.min() >= min(tmin) and tab.time.max() <= max(tmax)
    np.testing.assert_allclose(tab.error, 0.04, rtol=1e-12)  # the subset has no Soil_Moisture_Dqx: documented default
    assert len(r.files) == 3


@need_real
def test_smos_quality_fields_used_when_present(dom, tmp_path):
    """A copy of the real file with RFI_Prob, Chi_2_P and Soil_Moisture_Dqx added (the full product has them)."""
    f = sorted(real(SMOS_DIR).glob('*.DBL.nc'))[0]
    p = tmp_path / f.name
    shutil.copy(f, p)
    with netCDF4.Dataset(p, 'a') as nc:
        shape = nc['Soil_Moisture'].shape
        rfi = np.zeros(shape, 'f4')
        rfi[:, :75] = 0.5                         # western half RFI-contaminated
        nc.createVariable('RFI_Prob', 'f4', ('lat', 'lon'))[:] = rfi
        nc.createVariable('Chi_2_P', 'f4', ('lat', 'lon'))[:] = np.full(shape, 0.5, 'f4')
        v = nc.createVariable('Soil_Moisture_Dqx', 'f4', ('lat', 'lon'))
        v.units = 'm3.m-3'
        v[:] = np.full(shape, 0.031, 'f4')
        lon = nc['lon'][:]
    base = read_observations(f, 'smos_l3', dom)
    r = read_observations(p, 'smos_l3', dom)
    assert r.counts['pixels_flagged_rfi'] > 0
    assert r.counts['pixels_used'] + r.counts['pixels_flagged_rfi'] == base.counts['pixels_used']
    assert np.allclose(r.table.error[r.n_pixels > 0], 0.031, atol=1e-7)
    assert np.all(r.table.lon[r.n_pixels > 0] >= lon[74] - dom.dlon)


# ------------------------------------------------------------------------------------------------------------
# FY-3 MWRI L2 (no sample exists: the test writes a file following the published layout)

def _fy3_file(path, asc, desc, slope=0.01, fill=-999, units='cm3/cm3'):
    """A FY-3D MWRI L2 VSM file built by this test after the product's public description: root datasets
    'Ascending Soil Moisture' / 'Descending Soil Moisture' (586 x 1383, global EASE-Grid 25 km), int16 with
    Slope / Intercept / FillValue attributes. NOT a real product file."""
    with h5py.File(path, 'w') as f:
        f.attrs['Satellite Name'] = b'FY-3D'
        for name, a in (('Ascending Soil Moisture', asc), ('Descending Soil Moisture', desc)):
            d = f.create_dataset(name, data=a.astype(np.int16))
            d.attrs['Slope'] = np.float32(slope)
            d.attrs['Intercept'] = np.float32(0.0)
            d.attrs['FillValue'] = np.int16(fill)
            if units:
                d.attrs['units'] = units.encode()


def test_ease_grid_v1_geometry():
    """Published EASE-Grid v1 global 25 km extents: cell edges at +-180 deg and +-86.72 deg latitude; the grid is
    symmetric about the equator and the prime meridian."""
    lat, lon = ease1_lat_lon(np.array([-0.5, 585.5, 292.5]), np.array([-0.5, 1382.5, 691.0]))
    assert lon[0] == pytest.approx(-180.0, abs=1e-3) and lon[1] == pytest.approx(180.0, abs=1e-3)
    assert lat[0] == pytest.approx(86.72, abs=0.01) and lat[1] == pytest.approx(-86.72, abs=0.01)
    assert lat[2] == 0.0 and lon[2] == 0.0


def test_fy3_mwri_constructed_file(dom, tmp_path):
    asc = np.full((586, 1383), -999, np.int16)
    desc = np.full((586, 1383), -999, np.int16)
    rows, cols = np.meshgrid(np.arange(586), np.arange(1383), indexing='ij')
    lat, lon = ease1_lat_lon(rows, cols)
    g = int(dom.land_columns()[3000])
    inside = in_cell(dom, g, lat, lon)
    k = np.flatnonzero(inside.ravel())
    assert k.size >= 10
    vals = 10 + (np.arange(k.size) % 30)           # 0.10 .. 0.39 m3 m-3
    asc.ravel()[k] = vals
    desc.ravel()[k[:5]] = 2000                      # 20.0: out of range -> FLAG_RANGE, left out
    desc.ravel()[k[5:]] = vals[5:] + 1
    p = tmp_path / 'FY3D_MWRIX_GBAL_L2_VSM_MLT_ESD_20190715_POAD_025KM_MS.HDF'
    _fy3_file(p, asc, desc)
    r = read_observations(p, 'fy3_mwri_l2', dom, columns=[g])
    tab = r.table
    assert len(tab) == 2 and list(r.n_pixels) in ([k.size, k.size - 5], [k.size - 5, k.size])
    clon = dom.column_lon(g)
    clon = clon - 360 if clon > 180 else clon
    for row in range(2):
        asc_row = r.n_pixels[row] == k.size
        v = vals / 100.0 if asc_row else (vals[5:] + 1) / 100.0
        assert tab.value[row] == pytest.approx(v.mean())
        assert r.pixel_std[row] == pytest.approx(v.std())
        # time = 2019-07-15 + local solar time of the pass - lon / 15 h (FY-3D: 13:40 ascending, 01:40 desc.)
        lst = 13 + 40 / 60 if asc_row else 1 + 40 / 60
        pl = lon.ravel()[k] if asc_row else lon.ravel()[k[5:]]
        expect = np.datetime64('2019-07-15T00:00:00', 's') + np.timedelta64(int(round(
            np.mean(np.round((lst - pl / 15) * 3600)))), 's')
        assert abs((tab.time[row] - expect).astype(np.int64)) <= 1
        assert abs((tab.time[row] - np.datetime64('2019-07-15', 's')).astype(np.int64) / 3600 - (lst - clon / 15)) < 1
    np.testing.assert_allclose(tab.error, 0.06, rtol=1e-12)
    assert tab.quantity == 'volumetric'
    assert r.counts['pixels_flagged_range_clipped'] == 5
    # one overpass only; wrong units
    one = read_observations(p, 'fy3_mwri_l2', dom, columns=[g], overpass='ascending')
    assert len(one) == 1 and one.n_pixels[0] == k.size
    bad = tmp_path / 'FY3D_MWRIX_GBAL_L2_VSM_MLT_ESD_20190716_POAD_025KM_MS.HDF'
    _fy3_file(bad, asc, desc, units='K')
    with pytest.raises(UserError, match="units 'K'"):
        read_observations(bad, 'fy3_mwri_l2', dom, columns=[g])


# ------------------------------------------------------------------------------------------------------------
# ERA5 reference

@need_real
def test_era5_old_cds_against_direct_read(dom):
    path = real(ERA5_OLD)
    ref = read_era5_reference(path, dom, daily=False)
    with netCDF4.Dataset(path) as nc:                  # netCDF4 unpacks scale_factor/add_offset itself
        sw = nc['swvl1'][:].astype(float)
        lsm = nc['lsm'][0].astype(float)
        la, lo = nc['latitude'][:].astype(float), nc['longitude'][:].astype(float)
        t = np.array(netCDF4.num2date(nc['time'][:], nc['time'].units, only_use_cftime_datetimes=False,
                                      only_use_python_datetimes=True), dtype='datetime64[s]')
    np.testing.assert_array_equal(ref.time, t)
    assert ref.layer_top.tolist() == [0.0] and ref.layer_bottom.tolist() == [0.07]
    cols = dom.land_columns()
    LA, LO = np.meshgrid(la, lo, indexing='ij')
    gsrc = dom.index_of(LA.ravel(), LO.ravel())
    checked = 0
    for k, g in enumerate(cols):
        inside = (gsrc == g) & (lsm.ravel() >= 0.5)
        if inside.any():                               # source points inside the model cell: cos-lat mean
            w = np.cos(np.deg2rad(LA.ravel()[inside]))
            expect = (sw.reshape(4, -1)[:, inside] * w).sum(1) / w.sum()
            np.testing.assert_allclose(ref.sm[:, 0, k], expect, rtol=1e-6)
            checked += 1
    assert checked > 100
    # a cell without a source point: the 5-deg source cell containing its centre (nearest point)
    k = int(np.flatnonzero(np.isfinite(ref.sm[0, 0]) & ~np.isin(cols, gsrc))[0])
    j = np.abs(la - dom.column_lat(cols[k])).argmin()
    i = np.abs(((lo - dom.column_lon(cols[k])) + 180) % 360 - 180).argmin()
    np.testing.assert_allclose(ref.sm[:, 0, k], sw[:, j, i], rtol=1e-6)
    daily = read_era5_reference(path, dom)
    assert daily.time.tolist() == [np.datetime64('2010-01-01T00:00:00', 's').item()]
    land_cols = np.isfinite(ref.sm[0, 0])
    np.testing.assert_allclose(daily.sm[0][:, land_cols], ref.sm[:, :, land_cols].mean(axis=0), rtol=1e-12)
    assert np.all(np.isnan(daily.sm[0][:, ~land_cols]))


@need_real
def test_era5_new_cds_layout(dom, tmp_path):
    """The new-CDS layout (valid_time, decreasing latitude, float32 with NaN over the sea, number/expver
    coordinates): a file written by this test with the real new-CDS fixture's coordinates and attributes and a
    made-up swvl1/swvl2 (the fixtures carry no soil water in that layout)."""
    src = real(ERA5_NEW_SP)
    p = tmp_path / 'era5_swvl_2020-1.nc'
    with netCDF4.Dataset(src) as s, netCDF4.Dataset(p, 'w') as d:
        for name, dim in s.dimensions.items():
            d.createDimension(name, len(dim))
        for name in ('valid_time', 'latitude', 'longitude', 'number'):
            v = s[name]
            o = d.createVariable(name, v.dtype, v.dimensions)
            o.setncatts({a: v.getncattr(a) for a in v.ncattrs() if a != '_FillValue'})
            o[:] = v[:]
        lat, lon, nt = s['latitude'][:], s['longitude'][:], len(s.dimensions['valid_time'])
        for k, base in ((1, 0.30), (2, 0.25)):
            o = d.createVariable(f'swvl{k}', 'f4', ('valid_time', 'latitude', 'longitude'), fill_value=np.nan)
            o.units = 'm**3 m**-3'
            a = base + 0.01 * np.arange(nt)[:, None, None] + 0.001 * np.arange(lat.size)[None, :, None] + \
                np.zeros((1, 1, lon.size))
            a[:, 0, 0] = np.nan                       # a sea point
            o[:] = a
    g = int(dom.index_of(float(lat.mean()), float(lon.mean()))[0])
    ref = read_era5_reference(p, dom, columns=[g], daily=False)
    assert ref.sm.shape == (nt, 2, 1) and ref.layer_bottom.tolist() == [0.07, 0.28]
    with netCDF4.Dataset(p) as nc:
        t = np.datetime64('1970-01-01', 's') + nc['valid_time'][:].astype(np.int64).astype('timedelta64[s]')
        LA, LO = np.meshgrid(nc['latitude'][:], nc['longitude'][:], indexing='ij')
        inside = in_cell(dom, g, LA, LO)
        sw = np.ma.filled(nc['swvl1'][:], np.nan)
    np.testing.assert_array_equal(ref.time, t)
    w = np.cos(np.deg2rad(LA))
    ok = inside & np.isfinite(sw[0])
    np.testing.assert_allclose(ref.sm[:, 0, 0], (sw[:, ok] * w[ok]).sum(1) / w[ok].sum(), rtol=1e-6)
    out = read_era5_reference(p, dom, columns=[g], start='2021-01-01')
    assert out.sm.shape[0] == 0


# ------------------------------------------------------------------------------------------------------------
# bad input

@need_real
def test_bad_input_one_line_errors(dom, tmp_path):
    g = int(dom.index_of(*STATION)[0])

    def err(path, product, **kw):
        with pytest.raises(UserError) as e:
            read_observations(path, product, dom, columns=[g], **kw)
        msg = str(e.value)
        assert '\n' not in msg
        return msg

    # a file of another product
    assert "'row_size' missing" in err(real(SMOS_DIR) / sorted(os.listdir(real(SMOS_DIR)))[0], 'ascat_hsaf_cell')
    assert 'Soil_Moisture' in err(real(ASCAT_CELL), 'smos_l3')
    assert 'HDF5' in err(real(ASCAT_CELL), 'smap_l2') or 'missing' in err(real(ASCAT_CELL), 'smap_l2')
    assert 'latitude' in err(real(ASCAT_CELL), 'ascat_eumetsat_l2')
    assert 'dataset' in err(real(SMAP), 'fy3_mwri_l2') or 'date' in err(real(SMAP), 'fy3_mwri_l2')
    with pytest.raises(UserError, match='swvl1'):
        read_era5_reference(real(ERA5_NEW_SP), dom)
    with pytest.raises(UserError, match='appears twice'):
        read_era5_reference([real(ERA5_OLD), real(ERA5_OLD)], dom)
    # porosity per column must match the columns given
    assert 'porosity has 2 values' in err(real(ASCAT_CELL), 'ascat_hsaf_cell', porosity=[0.4, 0.5])
    # missing variable
    p = tmp_path / 'cell.nc'
    shutil.copy(real(ASCAT_CELL), p)
    with netCDF4.Dataset(p, 'a') as nc:
        nc.renameVariable('sm_noise', 'noise')
    assert "'sm_noise' missing" in err(p, 'ascat_hsaf_cell')
    # wrong units
    with netCDF4.Dataset(p, 'a') as nc:
        nc.renameVariable('noise', 'sm_noise')
        nc['sm'].units = 'm3 m-3'
    assert "units 'm3 m-3'" in err(p, 'ascat_hsaf_cell')
    # corrupt files: truncated netCDF and HDF5
    for src, product, name in ((ASCAT_CELL, 'ascat_hsaf_cell', '0165.nc'), (SMAP, 'smap_l2', 'x.h5')):
        bad = tmp_path / ('trunc_' + name)
        bad.write_bytes(real(src).read_bytes()[:5000])
        assert 'not a readable' in err(bad, product)
    # missing file, unknown product, unknown option
    assert 'not found' in err(tmp_path / 'nothing.nc', 'ascat_hsaf_cell')
    with pytest.raises(UserError, match="did you mean 'smap_l2'"):
        read_observations(real(SMAP), 'smap_l3', dom)
    assert 'unexpected keyword' in err(real(SMAP), 'smap_l2', porosity=0.4)
    assert 'porosity must be' in err(real(ASCAT_CELL), 'ascat_hsaf_cell', porosity=1.5)
    assert 'start' in err(real(ASCAT_CELL), 'ascat_hsaf_cell', start='yesterday')
    assert set(PRODUCTS) == {'ascat_hsaf_cell', 'ascat_eumetsat_l2', 'smap_l2', 'smos_l3', 'fy3_mwri_l2'}


@need_real
def test_logged_skips_empty_outside_and_all_flagged(dom, caplog):
    g = int(dom.index_of(*STATION)[0])
    caplog.set_level(logging.INFO, logger='colmda.obs.readers')
    # times outside the run: empty table, counted, warning logged
    r = read_observations(real(ASCAT_CELL), 'ascat_hsaf_cell', dom, columns=[g], start='2030-01-01')
    assert len(r) == 0 and r.counts['pixels_outside_time'] == r.counts['pixels_read']
    assert any('no pixel' in m for m in caplog.messages)
    # an empty swath over the domain: the Metop orbit of the EUMETSAT file does not pass over Hawaii
    caplog.clear()
    r = read_observations(real(EUM_L2), 'ascat_eumetsat_l2', dom, columns=[g], porosity=0.45)
    assert len(r) == 0 and r.counts['pixels_outside_columns'] == r.counts['pixels_read']
    assert any('no pixel' in m for m in caplog.messages)
    # all-flagged data: SMAP pixels over Antarctica in August (frozen / snow): rows with NaN and the flags
    caplog.clear()
    ant = dom.land_columns()[dom.column_lat(dom.land_columns()) < -75]
    r = read_observations(real(SMAP), 'smap_l2', dom, columns=ant)
    assert len(r) > 0 and r.counts['pixels_used'] == 0 and np.all(np.isnan(r.table.value))
    assert np.all((r.table.quality & (FLAG_FROZEN | FLAG_SNOW | FLAG_SURFACE | FLAG_QUALITY)) != 0)
    assert any('every pixel' in m for m in caplog.messages)


@need_real
def test_smap_l3_am_pm_groups(dom, tmp_path):
    """The daily L3 layout (groups Soil_Moisture_Retrieval_Data_AM and _PM, PM variables suffixed '_pm'): a file
    written by this test from the real L2 arrays, the PM copy shifted by 12 h and 0.01 m3 m-3. Both passes are read
    (overpass='both'), each alone on request, and the PM rows are the AM rows shifted."""
    src = real(SMAP)
    p = tmp_path / 'SMAP_L3_SM_P_20150811_R18290_001.h5'
    names = ('latitude', 'longitude', 'soil_moisture', 'soil_moisture_error', 'retrieval_qual_flag', 'surface_flag',
             'tb_qual_flag_h', 'tb_qual_flag_v',
             'tb_time_seconds')
    with h5py.File(src) as f, h5py.File(p, 'w') as o:
        g = f['Soil_Moisture_Retrieval_Data']
        for grp, sfx in (('Soil_Moisture_Retrieval_Data_AM', ''), ('Soil_Moisture_Retrieval_Data_PM', '_pm')):
            og = o.create_group(grp)
            for n in names:
                a = g[n][()]
                if sfx and n == 'tb_time_seconds':
                    a = np.where(a != -9999.0, a + 12 * 3600, a)
                if sfx and n == 'soil_moisture':
                    a = np.where(a != -9999.0, a + 0.01, a)
                d = og.create_dataset(n + sfx, data=a)
                for k, v in g[n].attrs.items():
                    d.attrs[k] = v
    am = read_observations(p, 'smap_l2', dom, overpass='AM')
    pm = read_observations(p, 'smap_l2', dom, overpass='PM')
    both = read_observations(p, 'smap_l2', dom)
    l2 = read_observations(src, 'smap_l2', dom)
    # AM from tb_time_seconds equals the L2 read from tb_time_utc (same pixels, times to the second; rows compared
    # in (column, time) order since a 1-s difference can swap two rows of the same second)
    oa = np.lexsort((am.table.time, am.table.column))
    ol = np.lexsort((l2.table.time, l2.table.column))
    np.testing.assert_array_equal(am.table.column[oa], l2.table.column[ol])
    assert np.all(np.abs((am.table.time[oa] - l2.table.time[ol]).astype(np.int64)) <= 1)
    np.testing.assert_array_equal(am.n_pixels[oa], l2.n_pixels[ol])
    np.testing.assert_allclose(am.table.value[oa], l2.table.value[ol], rtol=1e-12)
    assert len(both) == len(am) + len(pm)
    op = np.lexsort((pm.table.time, pm.table.column))
    np.testing.assert_array_equal(pm.table.column[op], am.table.column[oa])
    assert np.all((pm.table.time[op] - am.table.time[oa]).astype(np.int64) == 43200)
    # +0.01 moves a few pixels across the 0.5 valid maximum: compare rows whose pixel counts agree
    same = (pm.n_pixels[op] == am.n_pixels[oa]) & (am.n_pixels[oa] > 0)
    assert same.sum() > 0.9 * (am.n_pixels > 0).sum()
    np.testing.assert_allclose((pm.table.value[op] - am.table.value[oa])[same], 0.01, atol=1e-6)


@need_real
def test_era5_expver_dimension_and_reference_file(dom, tmp_path):
    """Old-CDS files mixing ERA5 and ERA5T carry an 'expver' dimension with one of the two missing at each time:
    a file written by this test from the real packed fixture (swvl1 split over expver 1 / 5 by time) reads the same
    as the fixture; the result writes and reads back as a colmda reference file."""
    from colmda.obs.insitu import read_reference, write_reference

    src = real(ERA5_OLD)
    p = tmp_path / 'era5_expver.nc'
    with netCDF4.Dataset(src) as s, netCDF4.Dataset(p, 'w', format='NETCDF3_64BIT_OFFSET') as d:
        s.set_auto_maskandscale(False)
        for name in ('time', 'latitude', 'longitude'):
            d.createDimension(name, len(s.dimensions[name]))
        d.createDimension('expver', 2)
        for name in ('time', 'latitude', 'longitude'):
            v = d.createVariable(name, s[name].dtype, (name,))
            v.setncatts({a: s[name].getncattr(a) for a in s[name].ncattrs()})
            v[:] = s[name][:]
        sv = s['swvl1']
        v = d.createVariable('swvl1', 'i2', ('time', 'expver', 'latitude', 'longitude'), fill_value=np.int16(-32767))
        v.setncatts({a: sv.getncattr(a) for a in sv.ncattrs() if a != '_FillValue'})
        v.set_auto_maskandscale(False)
        raw = sv[:]
        both = np.full((raw.shape[0], 2) + raw.shape[1:], -32767, np.int16)
        both[:2, 0] = raw[:2]
        both[2:, 1] = raw[2:]
        v[:] = both
        lv = s['lsm']
        m = d.createVariable('lsm', 'i2', ('time', 'latitude', 'longitude'), fill_value=np.int16(-32767))
        m.setncatts({a: lv.getncattr(a) for a in lv.ncattrs() if a != '_FillValue'})
        m.set_auto_maskandscale(False)
        m[:] = lv[:]
    a = read_era5_reference(src, dom, daily=False)
    b = read_era5_reference(p, dom, daily=False)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_allclose(b.sm, a.sm, rtol=0, atol=0, equal_nan=True)
    out = write_reference(tmp_path / 'ref.nc', read_era5_reference(src, dom), source='ERA5 swvl1 (test)')
    back = read_reference(out)
    np.testing.assert_array_equal(back.sm, read_era5_reference(src, dom).sm)
    assert back.layer_bottom.tolist() == [0.07]


@need_real
def test_ascat_cell_against_reference_package(dom):
    """Optional cross-check with TU Wien's own reader (PyPI package 'ascat', not a project dependency: the test
    is skipped without it): per grid point of the model cell, the 2017 retrievals that pass the same QC (proc_flag
    0, conf_flag 0, ssf 0/1) add up to the colmda rows' pixel count and pixel-weighted sum."""
    cdr = pytest.importorskip('ascat.read_native.cdr')
    g = int(dom.index_of(*STATION)[0])
    r = read_observations(real(ASCAT_CELL), 'ascat_hsaf_cell', dom, columns=[g], start='2017-01-01',
                          end='2017-12-31T23:59:59')
    ds = cdr.AscatGriddedNcTs(str(real(ASCAT_CELL).parent), '{:04d}', str(real(ASCAT_GRID)))
    with netCDF4.Dataset(real(ASCAT_CELL)) as nc:
        gpis, la, lo = nc['location_id'][:], nc['lat'][:], nc['lon'][:]
    n, total, noise = 0, 0.0, 0.0
    for gpi in gpis[in_cell(dom, g, la.astype(float), lo.astype(float))]:
        ts = ds.read(int(gpi))
        t = ts.index.values.astype('datetime64[s]')
        ok = (t >= np.datetime64('2017-01-01')) & (t < np.datetime64('2018-01-01')) & (ts['proc_flag'].values == 0) \
            & (ts['conf_flag'].values == 0) & np.isin(ts['ssf'].values, (0, 1)) & np.isfinite(ts['sm'].values)
        n += ok.sum()
        total += ts['sm'].values[ok].sum()
        noise += ts['sm_noise'].values[ok].sum()
    assert n > 5000 and r.n_pixels.sum() == n
    assert np.nansum(r.table.value * r.n_pixels) == pytest.approx(total / 100.0, rel=1e-12)
    assert np.nansum(r.table.error * r.n_pixels) == pytest.approx(noise / 100.0, rel=1e-12)


@pytest.mark.filterwarnings('ignore:endian-ness:UserWarning')
@pytest.mark.parametrize('endian', ['big', 'little'])
def test_scaled_unsigned_packed_values_match_netcdf4(tmp_path, endian):
    """The readers' unpacking (``_Unsigned`` signed storage, scale/offset, fill, valid_min/max stored with the
    signed type as in the EUMETSAT files) equals netCDF4's own automatic unpacking, for both byte orders."""
    from colmda.obs.readers.ascat import scaled

    p = tmp_path / 'packed.nc'
    raw = np.array([0, 1, 250, 36000, 40000, 65535, 12345], dtype=np.uint16)
    with netCDF4.Dataset(p, 'w') as nc:
        nc.createDimension('n', raw.size)
        v = nc.createVariable('x', 'i2', ('n',), endian=endian, fill_value=np.int16(-1))   # -1 = 65535 unsigned
        v.set_auto_maskandscale(False)
        v[:] = raw.view(np.int16)
        v.setncatts({'_Unsigned': 'true', 'scale_factor': np.float32(0.01), 'add_offset': np.float32(2.0),
                     'valid_min': np.int16(0), 'valid_max': np.int16(36000 - 65536)})
    with netCDF4.Dataset(p) as nc:
        nc.set_auto_mask(False)
        nc.set_auto_scale(False)
        ours = scaled(nc['x'], p)
    expect = raw.astype(float) * np.float32(0.01).astype(float) + 2.0
    expect[(raw > 36000) | (raw == 65535)] = np.nan
    np.testing.assert_allclose(ours, expect, rtol=1e-12, equal_nan=True)
    with netCDF4.Dataset(p) as nc:
        ref = np.ma.filled(nc['x'][:].astype(float), np.nan)
    ok = raw <= 36000
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-6)


@need_real
def test_written_file_is_read_by_the_assimilation(dom, tmp_path):
    """The file a reader writes is what &observations takes: ObservationSet (assim/observations.py) reads the
    ASCAT Hawaii rows, converts saturation to m3 m-3 with the rows' porosity, uses sm_noise * porosity as the error
    and marks all-flagged rows missing."""
    from colmda import config
    from colmda.assim.observations import MISSING, USED, ObservationSet

    g = int(dom.index_of(*STATION)[0])
    r = read_observations(real(ASCAT_CELL), 'ascat_hsaf_cell', dom, columns=[g], start='2017-01-01',
                          end='2017-12-31T23:59:59')
    write_product_obs(tmp_path / 'ASCAT.nc', r)
    s = config.loads(f"&observations\n directory = '{tmp_path}'\n sensors = 'ASCAT'\n/\n"
                     "&assimilation\n method = 'sekf'\n/\n")
    obs = ObservationSet(s, np.array([g]), np.array([int(dom.get('pft', [g])[0])]))
    assert len(obs) == len(r)
    w = obs.window(np.datetime64('2016-12-31T00:00:00'), np.datetime64('2018-01-01T00:00:00'), np.array([g]))
    used = w.reason == USED
    assert len(w) == len(r) and used.sum() > 500
    order = np.lexsort((r.table.column, r.table.time.astype(np.int64)))
    vol = (r.table.value * r.table.porosity)[order]
    np.testing.assert_allclose(w.value[used], vol[used], rtol=1e-12)
    np.testing.assert_allclose(w.error[used], (r.table.error * r.table.porosity)[order][used], rtol=1e-12)
    assert np.all(w.reason[r.n_pixels[order] == 0] == MISSING)
