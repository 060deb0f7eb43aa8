"""ERA5 hourly single-level forcing (colmda.forcing.era5, docs/forcing.md): both CDS layouts, unit conversions,
accumulation intervals, energy and water conservation through the time interpolation, humidity from dewpoint,
spatial interpolation, per-window reading of many files, and bad input."""

import os
import shutil

import netCDF4
import numpy as np
import pytest

from colmda import config
from colmda.errors import UserError
from colmda.forcing import ForcingError, ReaderForcing
from colmda.forcing.era5 import Era5Reader, dewpoint_to_specific_humidity, vapour_pressure_ifs
from colmda.layout import F_LWDOWN, F_PREC, F_PSURF, F_QAIR, F_SWDOWN, F_TAIR, F_WIND

REAL = '/work/shared/data/real/era5'
NEW = f'{REAL}/new_cds_netcdf_2024'
need_real = pytest.mark.skipif(not os.path.isdir(NEW), reason='ERA5 samples not present')
EPOCH = np.datetime64('1970-01-01T00:00:00', 's')
LONG = {'t2m': ('2 metre temperature', 'K'), 'd2m': ('2 metre dewpoint temperature', 'K'),
        'sp': ('Surface pressure', 'Pa'), 'u10': ('10 metre U wind component', 'm s**-1'),
        'v10': ('10 metre V wind component', 'm s**-1'),
        'ssrd': ('Surface short-wave (solar) radiation downwards', 'J m**-2'),
        'strd': ('Surface long-wave (thermal) radiation downwards', 'J m**-2'),
        'mtpr': ('Mean total precipitation rate', 'kg m**-2 s**-1'), 'tp': ('Total precipitation', 'm')}


def write_new_cds(path, name, values, seconds, lat, lon, units=None):
    """A file in the new-CDS layout (valid_time in s since 1970, latitude decreasing, float32, NaN fill)."""
    with netCDF4.Dataset(path, 'w') as ds:
        ds.createDimension('valid_time', len(seconds))
        ds.createDimension('latitude', len(lat))
        ds.createDimension('longitude', len(lon))
        t = ds.createVariable('valid_time', 'i8', ('valid_time',))
        t.units, t.calendar = 'seconds since 1970-01-01', 'proleptic_gregorian'
        t[:] = seconds
        ds.createVariable('latitude', 'f8', ('latitude',))[:] = lat
        ds['latitude'].units = 'degrees_north'
        ds.createVariable('longitude', 'f8', ('longitude',))[:] = lon
        ds['longitude'].units = 'degrees_east'
        v = ds.createVariable(name, 'f4', ('valid_time', 'latitude', 'longitude'), fill_value=np.float32(np.nan))
        v.long_name, v.units = LONG[name][0], units or LONG[name][1]
        v[:] = values
    return path


def synthetic_set(directory, seconds, lat, lon, fields, per_day=False):
    """Write every field (name -> (nt, nlat, nlon)) in the new-CDS layout, one file per variable (and per day)."""
    os.makedirs(directory, exist_ok=True)
    days = (np.asarray(seconds) // 86400) if per_day else np.zeros(len(seconds), int)
    for name, vals in fields.items():
        for d in np.unique(days):
            k = days == d
            write_new_cds(f'{directory}/era5_{name}_{d}.nc', name, vals[k], np.asarray(seconds)[k], lat, lon)
    return directory


def diurnal_fields(seconds, lat, lon, seed=0):
    """Plausible hourly fields on a small grid: a clear-sky-like ssrd accumulation from the solar geometry."""
    from colmda import solar

    rng = np.random.default_rng(seed)
    nt, ny, nx = len(seconds), len(lat), len(lon)
    shape = (nt, ny, nx)
    LA, LO = np.meshgrid(lat, lon, indexing='ij')
    mu = np.zeros(shape)
    for k, s in enumerate(seconds):   # mean cos zenith over the hour ending at the stamp (ERA5 accumulations)
        t = EPOCH + np.timedelta64(int(s) - 3600, 's')
        for j in range(ny):
            mu[k, j] = np.maximum(solar.cos_zenith(np.full(nx, lat[j]), lon, t + np.timedelta64(1800, 's')), 0)
    tt = 290.0 + 5 * np.sin(2 * np.pi * (np.asarray(seconds)[:, None, None] / 86400.0)) + 0.1 * LA[None]
    return {'t2m': tt, 'd2m': tt - 6.0, 'sp': np.full(shape, 98000.0) + 10 * LO[None],
            'u10': 3.0 + rng.normal(0, 1, shape), 'v10': -2.0 + rng.normal(0, 1, shape),
            'ssrd': 3600.0 * 900.0 * np.clip(mu, 0, None), 'strd': 3600.0 * (330.0 + rng.normal(0, 10, shape)),
            'mtpr': np.clip(rng.normal(0, 2e-4, shape), 0, None)}


def hourly(start, hours):
    s0 = (np.datetime64(start, 's') - EPOCH).astype(np.int64)
    return s0 + 3600 * np.arange(hours, dtype=np.int64)


LAT = np.array([46.0, 45.75, 45.5, 45.25])   # stored decreasing, as the CDS does
LON = np.array([7.0, 7.25, 7.5, 7.75])


# --------------------------------------------------------------------------------------------------------
# the real CDS files
# --------------------------------------------------------------------------------------------------------

@need_real
def test_real_new_cds_files_units_and_times(tmp_path):
    """The six real new-CDS files (u10, v10, sp, ssrd, strd, mtpr; 2020-01-01 00-03 UTC) read with two synthetic
    files (t2m, d2m: the shipped ERA5-Land samples are sea points on another grid) on the same grid: at a grid node
    the reader returns the values of a direct netCDF4 read converted by hand: wind = hypot(u10, v10), psurf = sp,
    swdown = ssrd / 3600 s, lwdown = strd / 3600 s, prec = mtpr; the stamps are the file's valid_time in UTC and
    the accumulations are marked as means over the hour ending at the stamp."""
    d = tmp_path / 'era5'
    d.mkdir()
    for f in os.listdir(NEW):
        os.symlink(f'{NEW}/{f}', d / f)
    with netCDF4.Dataset(f'{NEW}/era5_surface_pressure_2020-1.nc') as ds:
        lat, lon, secs = ds['latitude'][:], ds['longitude'][:], ds['valid_time'][:]
    shape = (len(secs), len(lat), len(lon))
    write_new_cds(d / 't2m.nc', 't2m', np.full(shape, 280.0), secs, lat, lon)
    write_new_cds(d / 'd2m.nc', 'd2m', np.full(shape, 275.0), secs, lat, lon)
    j, i = 1, 2
    r = Era5Reader(str(d), [lat[j]], [lon[i]])
    ch = r.read(r.times()[0], r.times()[-1])
    np.testing.assert_array_equal(ch.times, EPOCH + np.asarray(secs).astype('timedelta64[s]'))
    assert str(ch.times[0]) == '2020-01-01T00:00:00'

    def direct(fname, var):
        with netCDF4.Dataset(f'{NEW}/{fname}') as ds:
            return np.asarray(ds[var][:, j, i], dtype=np.float64)

    np.testing.assert_allclose(ch.data['wind'][:, 0], np.hypot(direct('era5_eastward_component_of_wind_2020-1.nc', 'u10'),
                                                              direct('era5_northward_component_of_wind_2020-1.nc', 'v10')))
    np.testing.assert_allclose(ch.data['psurf'][:, 0], direct('era5_surface_pressure_2020-1.nc', 'sp'))
    np.testing.assert_allclose(ch.data['swdown'][:, 0],
                               direct('era5_surface_solar_radiation_downwards_2020-1.nc', 'ssrd') / 3600.0)
    np.testing.assert_allclose(ch.data['lwdown'][:, 0],
                               direct('era5_surface_thermal_radiation_downwards_2020-1.nc', 'strd') / 3600.0)
    np.testing.assert_allclose(ch.data['prec'][:, 0], direct('era5_total_precipitation_2020-1.nc', 'mtpr'))
    assert 250 < ch.data['lwdown'].min() < ch.data['lwdown'].max() < 400       # a January night at 60 N
    assert ch.conventions['swdown'] == ch.conventions['prec'] == 'backward_mean' and ch.interval == 3600
    assert ch.conventions['tair'] == 'instant'


@need_real
def test_real_files_bad_input():
    """The old-CDS sample holds swvl1/lsm only and the ERA5-Land samples are all-NaN sea points: one-line errors
    naming the missing variables and the columns without data."""
    with pytest.raises(ForcingError, match=r"variable\(s\) 't2m'.*not found"):
        Era5Reader(f'{REAL}/old_cds_grib_to_netcdf', [0.0], [0.0])
    d = f'{REAL}/era5_land_new_cds_netcdf_2024'
    with pytest.raises(ForcingError, match="'sp'"):
        Era5Reader(d, [59.8], [0.1])


def test_old_cds_packed_layout_tp_in_metres(tmp_path):
    """Old-CDS layout (grib_to_netcdf): all variables in one file, int16 packed with scale_factor/add_offset,
    'time' in hours since 1900, longitudes 0..360, total precipitation 'tp' in m: the reader unpacks as netCDF4
    does and converts tp to kg m-2 s-1 with the one-hour accumulation interval (1 mm in an hour = 1/3600)."""
    secs = hourly('2017-03-01', 6)
    f = diurnal_fields(secs, LAT, LON)
    f.pop('mtpr')
    tp = np.full((6, 4, 4), 0.001)          # 1 mm per hour
    tp[3] = 0.0
    f['tp'] = tp
    path = tmp_path / 'old.nc'
    with netCDF4.Dataset(path, 'w', format='NETCDF3_64BIT_OFFSET') as ds:
        ds.createDimension('longitude', 4)
        ds.createDimension('latitude', 4)
        ds.createDimension('time', 6)
        ds.createVariable('longitude', 'f4', ('longitude',))[:] = LON + 360.0 - 360.0 * (LON > 180)
        ds.createVariable('latitude', 'f4', ('latitude',))[:] = LAT
        t = ds.createVariable('time', 'i4', ('time',))
        t.units = 'hours since 1900-01-01 00:00:0.0'
        hours0 = (np.datetime64('2017-03-01T00', 'h') - np.datetime64('1900-01-01T00', 'h')).astype(int)
        t[:] = hours0 + np.arange(6)
        for name, vals in f.items():
            lo, hi = float(vals.min()), float(vals.max())
            scale = (hi - lo) / 60000.0 or 1e-6
            v = ds.createVariable(name, 'i2', ('time', 'latitude', 'longitude'), fill_value=np.int16(-32767))
            v.scale_factor, v.add_offset = scale, (hi + lo) / 2
            v.units, v.long_name = LONG[name][1], LONG[name][0]
            v[:] = vals
    r = Era5Reader(path, [LAT[1]], [LON[2]])
    ch = r.read(r.times()[0], r.times()[-1])
    with netCDF4.Dataset(path) as ds:
        t2m = np.asarray(ds['t2m'][:, 1, 2], dtype=np.float64)
        tpf = np.asarray(ds['tp'][:, 1, 2], dtype=np.float64)
    np.testing.assert_allclose(ch.data['tair'][:, 0], t2m)
    np.testing.assert_allclose(ch.data['prec'][:, 0], tpf * 1000.0 / 3600.0)
    assert ch.data['prec'][0, 0] == pytest.approx(1.0 / 3600.0, rel=1e-3)
    assert str(ch.times[0]) == '2017-03-01T00:00:00'


def test_humidity_from_dewpoint_against_reference_formula():
    """Vapour pressure at the dewpoint from the IFS formula (which defines ERA5's dewpoint) agrees with the
    independent Buck (1996) formula over water, 611.21 exp((18.678 - T/234.5) T / (257.14 + T)) Pa with T in degC,
    within 0.15 % over 0..35 degC and 0.7 % down to -30 degC (the Tetens form drifts in the cold), and q follows
    from e exactly (q = 0.622 e / (p - 0.378 e), i.e. e = q p / (0.622 + 0.378 q))."""
    td = np.linspace(243.15, 308.15, 27)
    tc = td - 273.15
    buck = 611.21 * np.exp((18.678 - tc / 234.5) * (tc / (257.14 + tc)))
    warm = tc >= 0
    np.testing.assert_allclose(vapour_pressure_ifs(td[warm]), buck[warm], rtol=1.5e-3)
    np.testing.assert_allclose(vapour_pressure_ifs(td), buck, rtol=7e-3)
    p = np.linspace(60000.0, 104000.0, 27)
    q = dewpoint_to_specific_humidity(td, p)
    np.testing.assert_allclose(q * p / (0.622 + 0.378 * q), vapour_pressure_ifs(td), rtol=1e-12)
    assert dewpoint_to_specific_humidity(293.15, 101325.0) == pytest.approx(0.01455, abs=1e-4)   # 20 degC dewpoint


def test_energy_and_water_conserved_through_interpolation(tmp_path):
    """A day of hourly ssrd/strd accumulations and precipitation rates, interpolated to 30-min model steps
    (solar-zenith weighted for shortwave, conservative for precipitation): the mean W m-2 of the model series over
    the day equals the mean of ssrd / 3600 s over the 24 accumulations ending in (00:00, 24:00] to 1e-9, and so do
    the precipitation total and the longwave mean; shortwave is zero whenever the sun is down."""
    secs = hourly('2017-06-30T22:00', 30)
    d = synthetic_set(tmp_path / 'e', secs, LAT, LON, diurnal_fields(secs, LAT, LON))
    r = Era5Reader(str(d), [45.6, 45.3], [7.1, 7.6])
    forc = ReaderForcing(r, dt=1800).generate(np.datetime64('2017-07-01T00:00'), 48)
    day = (secs > (np.datetime64('2017-07-01T00:00', 's') - EPOCH).astype(np.int64)) & \
          (secs <= (np.datetime64('2017-07-02T00:00', 's') - EPOCH).astype(np.int64))
    raw = r.read(np.datetime64('2017-06-30T23:00'), np.datetime64('2017-07-02T01:00'))
    k = np.isin((raw.times - EPOCH).astype(np.int64), secs[day])
    assert k.sum() == 24
    for row, name in ((F_SWDOWN, 'swdown'), (F_PREC, 'prec')):
        np.testing.assert_allclose(forc[row].mean(axis=0), raw.data[name][k].mean(axis=0), rtol=1e-9, atol=1e-15)
    assert forc[F_SWDOWN].max() > 500
    from colmda import solar
    edges = np.datetime64('2017-07-01T00:00', 's') + np.arange(49) * np.timedelta64(1800, 's')
    cz, mu, lit, _ = solar.step_geometry(np.array([45.6, 45.3]), np.array([7.1, 7.6]),
                                         solar.to_seconds(edges[:-1]), 1800.0)
    assert np.all(forc[F_SWDOWN][lit == 0] == 0.0)
    # instantaneous variables at mid-step: between the neighbouring hourly values
    assert np.all((forc[F_TAIR] > 270) & (forc[F_TAIR] < 310)) and np.all(forc[F_QAIR] > 0)
    assert np.all(forc[F_WIND] >= 0) and np.all(forc[F_PSURF] > 9e4) and np.all(forc[F_LWDOWN] > 250)


def test_bilinear_exact_for_linear_fields_and_coast(tmp_path):
    """A field linear in latitude and longitude is reproduced exactly at any point inside the grid (bilinear
    weights), 'nearest' takes the closest node, and a column next to NaN (sea) points uses the valid neighbours
    only; a column outside the grid is an error naming its coordinates."""
    secs = hourly('2017-06-01', 4)
    f = diurnal_fields(secs, LAT, LON)
    LA, LO = np.meshgrid(LAT, LON, indexing='ij')
    f['t2m'] = np.broadcast_to(200.0 + 1.0 * LA + 2.0 * LO, (4, 4, 4)).copy()
    f['d2m'] = f['t2m'] - 5
    f['sp'][:, 0, 0] = np.nan            # a 'sea' point in the north-west corner
    d = synthetic_set(tmp_path / 'e', secs, LAT, LON, f)
    pts_lat, pts_lon = np.array([45.6, 45.33, 45.9]), np.array([7.11, 7.6, 7.05])
    r = Era5Reader(str(d), pts_lat, pts_lon)
    ch = r.read(r.times()[0], r.times()[-1])
    np.testing.assert_allclose(ch.data['tair'][0], 200.0 + 1.0 * pts_lat + 2.0 * pts_lon, rtol=1e-12)
    # column 2 sits in the cell with the NaN corner: the three valid neighbours carry it
    assert np.all(np.isfinite(ch.data['psurf'][:, 2]))
    rn = Era5Reader(str(d), [45.6], [7.11], interpolation='nearest')
    assert rn.read(rn.times()[0], rn.times()[-1]).data['tair'][0, 0] == pytest.approx(200 + 45.5 + 2 * 7.0)
    with pytest.raises(ForcingError, match='lat 50.000 lon 7.100 is outside the ERA5 grid'):
        Era5Reader(str(d), [50.0], [7.1])


def test_reads_only_the_files_of_the_window(tmp_path, monkeypatch):
    """Ten days in one file per variable and day: reading one model day opens only the files of that day and its
    neighbours (not the whole period), and consecutive windows give the same forcing as one long read."""
    secs = hourly('2017-05-01', 24 * 10 + 1)
    d = synthetic_set(tmp_path / 'e', secs, LAT, LON, diurnal_fields(secs, LAT, LON), per_day=True)
    r = Era5Reader(str(d), [45.6], [7.3])
    opened = []
    real = netCDF4.Dataset

    def counting(path, *a, **k):
        opened.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(netCDF4, 'Dataset', counting)
    src = ReaderForcing(r, dt=1800)
    f1 = src.generate(np.datetime64('2017-05-04T00:00'), 48)
    assert 8 <= len(opened) <= 3 * 8 and len(set(opened)) <= 3 * 8     # 8 variables x at most 3 daily files
    f2 = src.generate(np.datetime64('2017-05-05T00:00'), 48)
    both = src.generate(np.datetime64('2017-05-04T00:00'), 96)
    np.testing.assert_allclose(np.concatenate([f1, f2], axis=1), both, rtol=1e-12)


def test_bad_input_one_line_errors(tmp_path):
    """Wrong units, a missing variable, non-hourly records, and a run outside the files' period: ForcingError /
    UserError messages naming the file or key and what was expected."""
    secs = hourly('2017-05-01', 6)
    f = diurnal_fields(secs, LAT, LON)
    d = synthetic_set(tmp_path / 'a', secs, LAT, LON, f)
    write_new_cds(d / 'era5_t2m_0.nc', 't2m', f['t2m'] - 273.15, secs, LAT, LON, units='degC')
    with pytest.raises(ForcingError, match=r"variable 't2m' has units 'degC'; expected 'K'"):
        Era5Reader(str(d), [45.6], [7.3])
    d = synthetic_set(tmp_path / 'b', secs, LAT, LON, {k: v for k, v in f.items() if k != 'strd'})
    with pytest.raises(ForcingError, match=r"'strd' \(for lwdown\)"):
        Era5Reader(str(d), [45.6], [7.3])
    s3 = secs[::3]
    d = synthetic_set(tmp_path / 'c', s3, LAT, LON, {k: v[::3] for k, v in f.items()})
    with pytest.raises(ForcingError, match='not hourly'):
        Era5Reader(str(d), [45.6], [7.3])
    # through the namelist: a run outside the files' period is a one-line UserError
    d = synthetic_set(tmp_path / 'd', secs, LAT, LON, f)
    s = config.loads(f"""&experiment start='2017-06-01', end='2017-06-02' /
        &domain point_lat=45.6, point_lon=7.3 /
        &forcing source='era5', file='{d}' /""")
    from colmda.setup import build_inputs
    with pytest.raises(UserError, match=r"forcing file = .*covers 2017-05-01T00:00:00 .. 2017-05-01T05:00:00 UTC but"):
        build_inputs(s)


def test_namelist_run_with_era5(tmp_path):
    """&forcing source = 'era5' with a directory of files runs a two-column box for two days end to end; the
    forcing the run used equals the reader's interpolation at the column centres."""
    secs = hourly('2017-07-01', 24 * 3 + 1)
    lat = np.arange(50.0, 40.0 - 0.1, -0.5)
    lon = np.arange(0.0, 12.01, 0.5)
    f = diurnal_fields(secs, lat, lon)
    d = synthetic_set(tmp_path / 'e', secs, lat, lon, f)
    s = config.loads(f"""&experiment name='e5', start='2017-07-01T01:00', end='2017-07-03T01:00' /
        &domain box = 44.0, 46.0, 4.0, 8.0 /
        &forcing source='era5', file='{d}/*.nc' /
        &output directory='{tmp_path / 'run'}', restart_days=0 /""")
    from colmda.run import run
    from colmda.setup import build_inputs
    inputs = build_inputs(s)
    w = inputs.forcing.window(s.start, 48, np.arange(inputs.ncol))
    r = Era5Reader(str(d), inputs.lat, inputs.lon)
    ref = ReaderForcing(r, 1800).generate(np.datetime64(s.start, 's'), 48)
    np.testing.assert_allclose(w, ref)
    res = run(s, inputs=inputs, progress=False)
    assert res.status.phase == 'experiment' and len(res.history_files) >= 1
