"""Tests of the forcing package: solar geometry, the weather generator (climate, structure, invariances,
speed), time interpolation, the PLUMBER2 reader and the ensemble perturbations (docs/forcing.md)."""

import shutil
import time

import netCDF4
import numpy as np
import pytest

from colmda import solar
from colmda.domain import Domain
from colmda.forcing import (ForcingError, PerturbationSettings, Plumber2Reader, ReaderForcing, WeatherGenerator,
                            flatten_members, interp_block_mean, interp_linear, interp_shortwave, keyed_normal,
                            perturb_forcing, perturbation_factors, perturbation_normals)
from colmda.forcing.weather import saturation_specific_humidity
from colmda.layout import (F_COSZEN, F_LWDOWN, F_PREC, F_PSURF, F_QAIR, F_SWDOWN, F_TAIR, F_WIND, NF)

PLUMBER = str(__import__('pathlib').Path(__file__).resolve().parents[1] / 'data' / 'sites' / 'DK-Fou'
              / 'DK-Fou_2005-2005_FLUXNET2015_Met.nc')  # shipped with the project (data/sites/DK-Fou)
need_plumber = pytest.mark.skipif(not __import__('os').path.exists(PLUMBER), reason='PLUMBER2 sample not present')


@pytest.fixture(scope='module')
def dom():
    return Domain.load()


@pytest.fixture(scope='module')
def july(dom):
    """One July (31 days, 1-h steps) of generated weather for a global sample of ~370 non-ice land columns."""
    cols = dom.exclude_glacier().columns[::20]
    f = WeatherGenerator(dom, seed=11, dt=3600).generate('2005-07-01', 31 * 24, cols)
    return cols, f


# --------------------------------------------------------------------------------------------------------
# solar geometry
# --------------------------------------------------------------------------------------------------------

def test_solar_geometry_known_values():
    """Equinox noon at the equator has the sun overhead (cos Z ~ 1); the June solstice declination is
    23.44 deg; at DK-Fou (56.48 N) the solstice noon zenith angle is 56.48 - 23.44 deg; the sun is down at
    local midnight; Earth is closest to the Sun in early January."""
    noon = 12.0 - solar.equation_of_time(np.datetime64('2005-03-20T12:33')) / 60.0
    t = np.datetime64('2005-03-20T00:00') + np.timedelta64(int(round(noon * 3600)), 's')
    assert solar.cos_zenith(0.0, 0.0, t) > 0.9999
    assert np.rad2deg(solar.declination(np.datetime64('2005-06-21T06:46'))) == pytest.approx(23.44, abs=0.01)
    tn = np.datetime64('2005-06-21T00:00') + np.timedelta64(
        int(round(solar.solar_noon_utc_hours(9.59, np.datetime64('2005-06-21T11:00')) * 3600)), 's')
    assert solar.cos_zenith(56.48, 9.59, tn) == pytest.approx(np.cos(np.deg2rad(56.48 - 23.44)), abs=2e-4)
    assert solar.cos_zenith(56.48, 9.59, np.datetime64('2005-06-21T23:20')) < 0
    e0 = solar.eccentricity_factor(np.array(['2005-01-03', '2005-07-04'], dtype='datetime64[s]'))
    assert e0[0] == pytest.approx(1.034, abs=1e-3) and e0[1] == pytest.approx(0.967, abs=1e-3)


def test_mean_cos_zenith_is_exact_integral():
    """The analytic interval mean of max(cos Z, 0) and the sunlit fraction match fine numerical quadrature,
    including intervals across sunrise, polar day and polar night (day-long intervals to 1e-3, as the
    declination is held at the interval mid-point)."""
    for lat, lon, a, b in ((56.5, 9.6, '2005-06-21T02:40', '2005-06-21T03:10'), (-80, 30, '2005-12-01T00:00',
                           '2005-12-01T03:00'), (80, 30, '2005-12-01T00:00', '2005-12-02T00:00'),
                          (10, 200, '2005-01-01T16:00', '2005-01-01T19:00'), (40, -100, '2005-04-01', '2005-04-02')):
        s0, s1 = solar.to_seconds(np.datetime64(a, 's')), solar.to_seconds(np.datetime64(b, 's'))
        ts = np.linspace(s0, s1, 100001)
        ts = 0.5 * (ts[1:] + ts[:-1])
        cz = solar.cos_zenith(lat, lon, ts)
        mu, lit = solar.mean_cos_zenith(lat, lon, s0, s1)
        tol = 1e-4 if s1 - s0 <= 3 * 3600 else 1e-3
        assert float(mu) == pytest.approx(np.maximum(cz, 0).mean(), abs=tol)
        assert float(lit) == pytest.approx((cz > 0).mean(), abs=tol)


# --------------------------------------------------------------------------------------------------------
# weather generator
# --------------------------------------------------------------------------------------------------------

def test_generator_output_contract(dom, july):
    """The generator returns (NF, nsteps, ncol) float64 in Fortran order with physically sane values, and
    F_COSZEN > 0 wherever there is shortwave."""
    cols, f = july
    assert f.shape == (NF, 31 * 24, cols.size) and f.dtype == np.float64 and f.flags.f_contiguous
    assert np.all(np.isfinite(f))
    assert 200 < f[F_TAIR].min() and f[F_TAIR].max() < 335
    assert np.all(f[F_QAIR] > 0) and np.all(f[F_QAIR] <= saturation_specific_humidity(f[F_TAIR], f[F_PSURF]))
    assert np.all((f[F_PSURF] > 4e4) & (f[F_PSURF] < 1.1e5))
    assert np.all(f[F_PREC] >= 0) and f[F_PREC].max() < 0.02
    assert np.all((f[F_WIND] >= 0.2) & (f[F_WIND] <= 30))
    assert np.all((f[F_SWDOWN] >= 0) & (f[F_SWDOWN] < 1361))
    assert np.all((f[F_LWDOWN] > 100) & (f[F_LWDOWN] < 600))
    assert np.all(f[F_COSZEN][f[F_SWDOWN] > 0] > 0) and np.all(f[F_COSZEN] <= 1)
    assert np.all(f[F_SWDOWN][f[F_COSZEN] == 0] == 0)


def test_generator_monthly_means_match_climatology(dom, july):
    """Over one month the generated temperature and precipitation match the domain's ERA5 climatology:
    mean temperature bias over the sample within 0.4 K and every column within 4 K (synoptic anomalies
    have sd <= 4 K with multi-day memory); sample precipitation total within 15 % and the median column
    within 30 % (one month of intermittent, spatially correlated rain)."""
    cols, f = july
    tclim = dom.get('tair_clim', cols)[6]
    bias = f[F_TAIR].mean(axis=0) - tclim
    assert abs(bias.mean()) < 0.4
    assert np.abs(bias).max() < 4.0
    pclim = dom.get('prec_clim', cols)[6]
    pgen = f[F_PREC].mean(axis=0)
    assert 0.85 < pgen.sum() / pclim.sum() < 1.15
    wet = pclim * 86400 > 1.0
    assert 0.7 < np.median(pgen[wet] / pclim[wet]) < 1.3
    # radiation climate: daily-mean shortwave below the clear-sky value and longwave near sigma T^4
    toa = solar.daily_mean_toa(dom.column_lat(cols), np.datetime64('2005-07-16'))
    assert np.all(f[F_SWDOWN].mean(axis=0) < 0.8 * toa + 1.0)
    eff = f[F_LWDOWN].mean(axis=0) / (5.67e-8 * f[F_TAIR].mean(axis=0) ** 4)
    assert 0.6 < eff.min() and eff.max() < 1.05


def test_wet_day_fractions_plausible(dom, july):
    """Fractions of days with >= 1 mm follow the climatological wet-day fraction: within 0.1 on average in
    each climate band, increasing from dry to wet climates, and rare in deserts."""
    cols, f = july
    daily = (f[F_PREC] * 3600).reshape(31, 24, -1).sum(axis=1)
    real = (daily >= 1.0).mean(axis=0)
    target = dom.wetday_frac_clim(cols)[6]
    means = []
    for lo, hi in ((0.0, 0.05), (0.15, 0.35), (0.35, 0.55), (0.55, 0.9)):
        sel = (target >= lo) & (target < hi)
        assert sel.sum() >= 10
        assert abs(real[sel].mean() - target[sel].mean()) < 0.1, (lo, hi)
        means.append(real[sel].mean())
    assert np.all(np.diff(means) > 0) and means[0] < 0.05


def test_precipitation_spatial_correlation_decays(dom):
    """Generated daily precipitation is spatially correlated and the correlation decays with distance
    (synoptic systems of a few hundred km; about 0.5 between neighbouring cells, ~0 beyond 1500 km)."""
    box = dom.select_box(35, 65, 0, 100)
    f = WeatherGenerator(dom, seed=2, dt=3600).generate('2005-06-01', 30 * 24, box.columns)
    daily = f[F_PREC].reshape(30, 24, -1).sum(axis=1)
    lat, lon = np.deg2rad(box.column_lat()), np.deg2rad(box.column_lon())
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, box.ncol, (2, 4000))
    keep = i != j
    i, j = i[keep], j[keep]
    d = 6371 * np.arccos(np.clip(np.sin(lat[i]) * np.sin(lat[j]) + np.cos(lat[i]) * np.cos(lat[j]) *
                                 np.cos(lon[i] - lon[j]), -1, 1))
    a = (daily - daily.mean(0)) / (daily.std(0) + 1e-12)
    r = (a[:, i] * a[:, j]).mean(axis=0)
    bins = [(0, 250), (250, 500), (500, 1000), (1500, 3000)]
    rb = [r[(d >= lo) & (d < hi)].mean() for lo, hi in bins]
    assert rb[0] > 0.3 and np.all(np.diff(rb) < 0) and abs(rb[-1]) < 0.1


def test_seed_determinism_and_difference(dom):
    """Same seed -> identical forcing; different seeds -> different weather with the same climate."""
    cols = dom.columns[::97]
    a = WeatherGenerator(dom, seed=1).generate('2005-01-10', 96, cols)
    b = WeatherGenerator(dom, seed=1).generate('2005-01-10', 96, cols)
    c = WeatherGenerator(dom, seed=2).generate('2005-01-10', 96, cols)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[F_PREC], c[F_PREC]) and not np.array_equal(a[F_TAIR], c[F_TAIR])
    np.testing.assert_array_equal(a[F_COSZEN], c[F_COSZEN])            # geometry is not random
    assert abs(a[F_TAIR].mean() - c[F_TAIR].mean()) < 1.0               # same climate


def test_subset_invariance(dom):
    """A column's forcing is bitwise identical whether requested alone, with other columns, in another
    order, or from a generator whose domain is a box selection (MPI ranks own disjoint subsets)."""
    cols = dom.columns[::53]
    full = WeatherGenerator(dom, seed=9).generate('2005-04-03T06:00', 72, cols)
    for k in (0, 17, len(cols) - 1):
        alone = WeatherGenerator(dom, seed=9).generate('2005-04-03T06:00', 72, cols[k:k + 1])
        assert np.array_equal(alone[:, :, 0], full[:, :, k])
    rev = WeatherGenerator(dom, seed=9).generate('2005-04-03T06:00', 72, cols[::-1])
    assert np.array_equal(rev[:, :, ::-1], full)
    box = dom.select_box(-40, 40, 0, 60)
    g = WeatherGenerator(box, seed=9).generate('2005-04-03T06:00', 72)
    sel = np.flatnonzero(np.isin(cols, box.columns))
    pos = np.searchsorted(box.columns, cols[sel])
    assert sel.size > 0 and np.array_equal(g[:, :, pos], full[:, :, sel])


def test_restart_invariance(dom):
    """A later window generated directly (fresh generator, any start within the run) equals the same steps
    inside a longer run: the weather is a function of time, not of the run's history."""
    cols = dom.columns[::211]
    long = WeatherGenerator(dom, seed=5).generate('2005-02-26T00:00', 48 * 5, cols)
    for start_step, n in ((96, 48), (131, 40), (1, 200)):
        t = np.datetime64('2005-02-26T00:00') + np.timedelta64(start_step * 1800, 's')
        part = WeatherGenerator(dom, seed=5).generate(t, n, cols)
        assert np.array_equal(part, long[:, start_step:start_step + n])


def test_row_band_and_column_blocks_do_not_change_numbers(dom):
    """The latent fields are computed only on the band of grid rows a request needs, and the per-column work runs
    in blocks of COLUMN_BLOCK columns: a column's forcing is bitwise the same whether its row is in a narrow band
    (a northern or a southern block of columns, as an MPI rank owns), in the whole grid, or in a band that grew
    when a generator that had served one block is asked for another (a rebalance)."""
    from colmda.forcing import weather

    cols = dom.columns
    n = weather.COLUMN_BLOCK * 2 + 37  # more than two blocks, the last one partial
    south, north = cols[:n], cols[-n:]
    full = WeatherGenerator(dom, seed=4).generate('2005-01-30T12:00', 60, np.concatenate([south, north]))
    g = WeatherGenerator(dom, seed=4)
    a = g.generate('2005-01-30T12:00', 60, north)
    lo, hi = g._fp.lo, g._fp.hi
    assert hi - lo < dom.nlat // 2  # a narrow band
    b = g.generate('2005-01-30T12:00', 60, south)  # the band grows to hold both
    assert g._fp.lo < lo and g._fp.hi == hi
    assert np.array_equal(a, full[:, :, n:]) and np.array_equal(b, full[:, :, :n])
    one = WeatherGenerator(dom, seed=4).generate('2005-01-30T12:00', 60, north[-1:])
    assert np.array_equal(one[:, :, 0], full[:, :, -1])


def test_read_ahead_gives_the_same_numbers(dom):
    """Sequential requests (each starting where the previous ended, same columns) make the generator compute the
    next window in a background thread; what it returns is bitwise what a generator without read-ahead returns,
    also when the next request is not the one read ahead (other columns, other start)."""
    cols = dom.columns[::97]
    g = WeatherGenerator(dom, seed=2)
    ref = WeatherGenerator(dom, seed=2)
    ref.prefetch = False
    t = np.datetime64('2005-03-01T00:00')
    day = np.timedelta64(1, 'D')
    for k in range(4):
        got = g.generate(t + k * day, 48, cols)
        assert (g._ahead is not None) == (k >= 1)  # read-ahead from the second sequential request on
        assert np.array_equal(got, ref.generate(t + k * day, 48, cols))
    assert g._ahead.t0 == int(solar.to_seconds(t + 4 * day))
    other = g.generate(t + 4 * day, 48, cols[:5])  # a miss: computed directly, no read-ahead
    assert g._ahead is None and np.array_equal(other, ref.generate(t + 4 * day, 48, cols[:5]))
    back = g.generate(t, 48, cols[:5])
    assert np.array_equal(back, ref.generate(t, 48, cols[:5]))


def test_generator_speed(dom):
    """A global land run is fast: 2 days at 30 min for all ~10^4 land columns in well under 20 s
    (about 0.4 s per simulated day on one core; see docs/forcing.md)."""
    g = WeatherGenerator(dom, seed=3)
    t = time.perf_counter()
    f = g.generate('2005-05-01', 96)
    elapsed = time.perf_counter() - t
    assert f.shape == (NF, 96, dom.ncol)
    assert elapsed < 20.0


# --------------------------------------------------------------------------------------------------------
# interpolation
# --------------------------------------------------------------------------------------------------------

def test_block_interpolation_conserves_precipitation():
    """Block interpolation conserves precipitation for target steps that are finer, coarser or misaligned
    with the records."""
    rng = np.random.default_rng(1)
    edges = np.arange(0, 10 * 10800 + 1, 10800.0)
    v = rng.gamma(0.5, 1e-4, (10, 3))
    for dt in (1800.0, 2700.0, 10800.0, 21600.0):
        tgt = np.arange(0, 10 * 10800 + 1, dt)
        out = interp_block_mean(edges, v, tgt)
        np.testing.assert_allclose((out * dt).sum(axis=0), (v * 10800).sum(axis=0), rtol=1e-12)
    out = interp_block_mean(edges, v, np.array([5000.0, 9000.0]))       # inside one record
    np.testing.assert_allclose(out[0], v[0])


def test_shortwave_interpolation_conserves_and_follows_sun():
    """Cos-zenith distribution conserves each record's mean, gives zero at night and peaks near solar noon;
    linear interpolation is exact for linear signals."""
    lat, lon = np.array([56.48, -20.0]), np.array([9.59, 300.0])
    t0 = solar.to_seconds(np.datetime64('2005-06-20T00:00'))
    edges = t0 + np.arange(0, 2 * 86400 + 1, 10800.0)
    rng = np.random.default_rng(2)
    mu, _ = solar.mean_cos_zenith(lat[None, :], lon[None, :], edges[:-1, None], edges[1:, None])
    v = 900.0 * mu * rng.uniform(0.3, 1.0, mu.shape)
    tgt = t0 + np.arange(0, 2 * 86400 + 1, 900.0)
    out = interp_shortwave(edges, v, tgt, lat, lon)
    per = out.reshape(16, 12, 2).mean(axis=1)
    np.testing.assert_allclose(per, v, rtol=1e-9, atol=1e-9)
    cz = solar.cos_zenith(lat[None, :], lon[None, :], 0.5 * (tgt[1:] + tgt[:-1])[:, None])
    assert np.all(out[cz < -0.05] == 0)
    clear = interp_shortwave(edges, 900.0 * mu, tgt, lat, lon)[:96, 0]     # same factor for every record
    peak_utc = (np.argmax(clear) + 0.5) * 0.25
    assert abs(peak_utc - solar.solar_noon_utc_hours(9.59, np.datetime64('2005-06-20T11:00'))) < 0.3
    lin = interp_linear(np.array([0.0, 10.0, 20.0]), np.array([[0.0], [5.0], [10.0]]), np.array([2.5, 15.0]))
    np.testing.assert_allclose(lin[:, 0], [1.25, 7.5])


# --------------------------------------------------------------------------------------------------------
# PLUMBER2 reader
# --------------------------------------------------------------------------------------------------------

@need_plumber
def test_plumber2_reader_times_and_values():
    """The DK-Fou file's local-standard-time stamps (start of 30-min intervals, UTC+1) are converted to UTC;
    values are sane in the core's units; the shortwave peak sits at local solar noon; LAI is an extra."""
    r = Plumber2Reader(PLUMBER)
    assert r.utc_offset_hours == 1.0 and 'estimated' in r.utc_offset_source
    assert r.times()[0] == np.datetime64('2004-12-31T23:00:00') and r.interval == 1800
    assert r.lat[0] == pytest.approx(56.484, abs=1e-3) and r.lon[0] == pytest.approx(9.587, abs=1e-3)
    assert r.convention('prec') == 'forward_mean' and 'lai' in r.variables
    assert Plumber2Reader(PLUMBER, utc_offset_hours=1).times()[0] == r.times()[0]
    src = ReaderForcing(r, dt=1800)
    f = src.generate('2005-06-01', 48 * 30)
    assert f.shape == (NF, 1440, 1) and f.flags.f_contiguous
    assert 280 < f[F_TAIR].mean() < 295 and 0.004 < f[F_QAIR].mean() < 0.012
    assert 9.5e4 < f[F_PSURF].mean() < 1.04e5 and 150 < f[F_SWDOWN].mean() < 300
    assert 280 < f[F_LWDOWN].mean() < 380 and 0.5 < f[F_WIND].mean() < 8
    ch = r.read(np.datetime64('2005-06-01'), np.datetime64('2005-07-01'))
    i0 = int(np.flatnonzero(ch.times == np.datetime64('2005-06-01T00:00'))[0])
    np.testing.assert_allclose(f[F_PREC, :, 0].sum(), ch.data['prec'][i0:i0 + 1440, 0].sum(), rtol=1e-12)
    sw = f[F_SWDOWN, :, 0].reshape(30, 48).mean(axis=0)
    hours = (np.arange(48) + 0.5) / 2
    centroid = np.angle(np.sum(sw * np.exp(2j * np.pi * hours / 24))) * 24 / (2 * np.pi)
    assert abs(centroid - solar.solar_noon_utc_hours(r.lon[0], np.datetime64('2005-06-15'))) < 0.25
    lai = src.extras('2005-06-01', 48)['lai']
    assert lai.shape == (48, 1) and 0 <= lai.min() and lai.max() < 8
    # 15-min steps: means conserved
    f15 = ReaderForcing(r, dt=900).generate('2005-06-01', 96 * 30)
    np.testing.assert_allclose(f15[F_SWDOWN].mean(), f[F_SWDOWN].mean(), rtol=1e-10)
    np.testing.assert_allclose(f15[F_PREC].mean(), f[F_PREC].mean(), rtol=1e-10)


@need_plumber
def test_plumber2_reader_errors(tmp_path):
    """Reader errors name the file, the variable and what was expected; windows outside the data are refused."""
    r = Plumber2Reader(PLUMBER)
    with pytest.raises(ForcingError, match='covers'):
        ReaderForcing(r).generate('2005-12-31T12:00', 48)
    ReaderForcing(r, max_extrapolation_s=3600).generate('2005-12-31T00:00', 48)   # calendar year in UTC
    for name, breaker, expect in (
            ('units', lambda ds: setattr(ds['Tair'], 'units', 'F'), "'Tair' has units 'F'"),
            ('missing', lambda ds: ds.renameVariable('LWdown', 'LW_IN'), "'LWdown' is missing"),
            ('range', lambda ds: ds['Wind'].__setitem__((10, 0, 0), 500.0), "'Wind' has value 500")):
        path = tmp_path / f'{name}.nc'
        shutil.copy(PLUMBER, path)
        with netCDF4.Dataset(path, 'a') as ds:
            breaker(ds)
        with pytest.raises(ForcingError) as err:
            Plumber2Reader(path)
        assert str(path) in str(err.value) and expect in str(err.value), str(err.value)


# --------------------------------------------------------------------------------------------------------
# perturbations
# --------------------------------------------------------------------------------------------------------

def test_perturbation_statistics():
    """Perturbations have the requested statistics: multiplicative factors mean 1 and std 0.5 / 0.3,
    additive std 20 W m-2 / 1 K, the documented cross-correlations, and AR(1) correlations exp(-lag/24 h)
    at the 3-hourly nodes (lag 3 h, 9 h and across days)."""
    s = PerturbationSettings()
    cols = np.arange(1500) * 7
    # mid-steps of 3-h steps starting at 22:30 fall on the nodes (00, 03, ... UTC)
    f = perturbation_factors(3, cols, [0, 4], '2004-12-31T22:30', 8 * 30, 10800, s)
    for name, mean, std in (('prec', 1.0, 0.5), ('swdown', 1.0, 0.3), ('lwdown', 0.0, 20.0), ('tair', 0.0, 1.0)):
        assert f[name].mean() == pytest.approx(mean, abs=0.02 * std + 0.01 * mean)
        assert f[name].std() == pytest.approx(std, rel=0.03)
    z = perturbation_normals(3, cols, [0, 4], '2004-12-31T22:30', 8 * 30, 10800, s).reshape(4, 240, -1)
    np.testing.assert_allclose(np.corrcoef(z.reshape(4, -1)), np.array(s.corr), atol=0.02)
    for lag in (1, 3, 8, 12):
        r = [np.mean(z[v, lag:] * z[v, :-lag]) / np.mean(z[v] ** 2) for v in range(4)]
        np.testing.assert_allclose(r, np.exp(-3.0 * lag / 24.0), atol=0.02)


def test_perturbation_keyed_invariance():
    """Perturbations are keyed by (seed, column, member, time): any subset of columns or members and any
    later window give bitwise identical numbers; members and seeds differ."""
    cols = np.array([5, 900, 12345, 20000, 31000])
    full = perturbation_normals(7, cols, [0, 1, 2], '2005-03-01', 48 * 3, 1800)
    part = perturbation_normals(7, cols[[3, 1]], [2], '2005-03-02T05:30', 30, 1800)
    assert np.array_equal(part, full[:, 59:89, 2:3, [3, 1]])
    assert not np.array_equal(full[:, :, 0], full[:, :, 1])
    assert not np.array_equal(perturbation_normals(8, cols, [0], '2005-03-01', 10, 1800), full[:, :10, :1])
    u = keyed_normal(1, 2, np.arange(10))
    assert np.array_equal(u[4:6], keyed_normal(1, 2, np.array([4, 5])))


def test_perturb_forcing_application(dom):
    """perturb_forcing applies the factors to the right rows, keeps longwave non-negative and humidity at
    or below saturation, leaves the other rows unchanged, and flattens member-major for the core."""
    cols = dom.columns[::400]
    forc = WeatherGenerator(dom, seed=2).generate('2005-08-01', 48, cols)
    ens = perturb_forcing(forc, 1, cols, np.arange(4), '2005-08-01', 1800)
    assert ens.shape == (NF, 48, 4, cols.size)
    fac = perturbation_factors(1, cols, np.arange(4), '2005-08-01', 48, 1800)
    np.testing.assert_allclose(ens[F_PREC], forc[F_PREC][:, None] * fac['prec'])
    np.testing.assert_allclose(ens[F_TAIR], forc[F_TAIR][:, None] + fac['tair'])
    assert np.all(ens[F_LWDOWN] >= 0)
    assert np.all(ens[F_QAIR] <= saturation_specific_humidity(ens[F_TAIR], ens[F_PSURF]) * (1 + 1e-12))
    for row in (F_PSURF, F_WIND, F_COSZEN):
        assert np.array_equal(ens[row], np.repeat(forc[row][:, None], 4, axis=1))
    flat = flatten_members(ens)
    assert flat.shape == (NF, 48, 4 * cols.size) and flat.flags.f_contiguous
    assert np.array_equal(flat[:, :, 2 * cols.size + 3], ens[:, :, 2, 3])


def test_spatially_correlated_perturbations(dom):
    """With spatial_corr_km > 0 the perturbations of nearby columns are correlated, distant ones are not,
    and the values are still independent of the requested subset."""
    s = PerturbationSettings(spatial_corr_km=500.0)
    box = dom.select_box(40, 60, 0, 40)
    z = perturbation_normals(1, box.columns, np.arange(6), '2005-01-01', 4, 21600, s, grid=dom)
    x = z[3].reshape(-1, box.ncol)                      # tair, samples = steps x members
    lat, lon = box.column_lat(), box.column_lon()
    c = int(np.argmin(np.hypot(lat - 50.0, lon - 20.0)))
    near = np.flatnonzero((np.abs(lat - lat[c]) < 2) & (np.abs(lon - lon[c]) < 2) & (np.arange(box.ncol) != c))
    far = np.flatnonzero(np.hypot(lat - lat[c], (lon - lon[c]) * 0.64) > 12)
    assert near.size and far.size
    r_near = np.mean([np.corrcoef(x[:, c], x[:, k])[0, 1] for k in near])
    r_far = np.mean([np.corrcoef(x[:, c], x[:, k])[0, 1] for k in far])
    assert r_near > 0.6 and abs(r_far) < 0.35
    sub = perturbation_normals(1, box.columns[[0, 5]], [3], '2005-01-01', 4, 21600, s, grid=dom)
    assert np.array_equal(sub, z[:, :, 3:4, [0, 5]])
