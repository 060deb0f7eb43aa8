"""Observation simulator: orbits, file formats, retrieval error model, QC flags, determinism, in situ, reference."""

from __future__ import annotations

import dataclasses

import netCDF4
import numpy as np
import pytest

from colmda.errors import UserError
from colmda.obs import operators
from colmda.obs.format import (FLAG_DENSE_VEGETATION, FLAG_FROZEN, FLAG_RANGE, FLAG_SNOW, ObsTable, read_obs,
                               write_obs)
from colmda.obs.insitu import (InsituSettings, ReferenceSettings, read_insitu, read_reference,
                               reference_error_fields, simulate_insitu, simulate_reference, write_insitu,
                               write_reference)
from colmda.obs.orbits import Orbit, local_solar_time, overpass_details, overpasses, sun_synchronous_inclination
from colmda.obs.sensors import default_specs, spec_with
from colmda.obs.simulate import RetrievalSimulator, excursion_ramp, retrieval_error_std

DZ = np.array([0.0175, 0.0276, 0.0455, 0.0750, 0.1236, 0.2038, 0.3360, 0.5539, 0.9133, 1.5058])  # m, CoLM
NL = DZ.size
D = 1.40625  # deg, default grid spacing


def grid_columns(lat_min, lat_max, lon_step=1):
    """Cells of the default 128 x 256 grid in a latitude band: (global column, lat, lon)."""
    lat = -89.296875 + D * np.arange(128)
    lon = 0.703125 + D * np.arange(256)
    j = np.flatnonzero((lat >= lat_min) & (lat <= lat_max))
    i = np.arange(0, 256, lon_step)
    J, I = np.meshgrid(j, i, indexing='ij')
    return (J * 256 + I).ravel(), lat[J].ravel(), lon[I].ravel()


# ------------------------------------------------------------------------------------------------------------
# orbits

def test_orbit_constants_match_published_values():
    """Sun-synchronous inclinations and Kepler periods reproduce the published orbits: SMAP 685 km 98.1 deg
    98.5 min, Metop 817 km 98.7 deg ~101 min, FY-3D 836 km 98.75 deg ~101.5 min."""
    assert sun_synchronous_inclination(685.0) == pytest.approx(98.12, abs=0.05)
    assert sun_synchronous_inclination(817.0) == pytest.approx(98.70, abs=0.05)
    assert sun_synchronous_inclination(836.0) == pytest.approx(98.75, abs=0.05)
    specs = default_specs()
    assert specs['L'].orbit.period_s / 60 == pytest.approx(98.5, abs=0.3)
    assert specs['C'].orbit.period_s / 60 == pytest.approx(101.3, abs=0.3)
    assert specs['X'].orbit.period_s / 60 == pytest.approx(101.6, abs=0.4)
    assert specs['C'].orbit.ltan_h == pytest.approx(21.5)


@pytest.fixture(scope='module')
def tropics_passes():
    col, lat, lon = grid_columns(-20, 20, lon_step=4)
    out = {}
    for name, spec in default_specs().items():
        out[name] = (lat, lon, overpass_details(spec.orbit, lat, lon, '2022-06-01', '2022-06-09'))
    return out


@pytest.mark.parametrize('name', ['L', 'C', 'X'])
def test_pass_local_times_match_node_times(tropics_passes, name):
    """Within 20 deg of the equator every pass happens at the spec's node local times to within the geometric
    bound (outer swath half-width as longitude at 20 deg, plus 15 min of track slant), the median within 10 min;
    both ascending and descending passes occur."""
    spec = default_specs()[name]
    lat, lon, d = tropics_passes[name]
    lst = local_solar_time(d['time'], lon[d['index']])
    for asc, node_t in ((True, spec.orbit.ltan_h), (False, (spec.orbit.ltan_h + 12) % 24)):
        m = d['ascending'] == asc
        assert m.sum() > 100
        dev = (lst[m] - node_t + 12) % 24 - 12          # h
        bound = spec.orbit.outer_half_km / (111.2 * np.cos(np.radians(20.0))) / 15.0 + 0.25   # h
        assert np.abs(dev).max() < bound
        assert abs(np.median(dev)) < 10 / 60


def test_revisit_and_coverage_by_latitude():
    """Mid-latitude (30-50 N) revisit: SMAP-like 2-3 days per node (the mission's 'global maps every 2-3 days'),
    about daily with both nodes; ASCAT-like (two Metops) about twice daily; MWRI-like between once and twice
    daily. Every sensor sees the equator and 75 N; the L orbit (i = 98.1 deg, 500 km half swath, reach about
    86.4 deg) never sees 89.3 N."""
    specs = default_specs()
    col, lat, lon = grid_columns(30, 50, lon_step=2)
    ndays = 16
    rates = {}
    for name, spec in specs.items():
        idx, _ = overpasses(spec.orbit, lat, lon, '2022-06-01', '2022-06-17')
        rates[name] = np.bincount(idx, minlength=lat.size) / ndays          # passes per day per column
    l_desc = dataclasses.replace(specs['L'], passes='descending')       # one node: the SMAP revisit figure
    idx, _ = overpasses(l_desc.orbit, lat, lon, '2022-06-01', '2022-06-17')
    revisit = ndays / np.bincount(idx, minlength=lat.size).mean()
    assert 1.6 <= revisit <= 3.0
    assert 0.7 <= rates['L'].mean() <= 1.3
    assert 1.5 <= rates['C'].mean() <= 2.6
    assert 1.0 <= rates['X'].mean() <= 2.0
    assert rates['C'].mean() > rates['X'].mean() > rates['L'].mean()
    for name, spec in specs.items():
        for la in (-0.703125, 75.234375):
            i, _ = overpasses(spec.orbit, np.full(8, la), np.arange(8) * 45.0, '2022-06-01', '2022-06-05')
            assert np.unique(i).size == 8, (name, la)
    i, _ = overpasses(specs['L'].orbit, np.full(8, 89.296875), np.arange(8) * 45.0, '2022-06-01', '2022-06-09')
    assert i.size == 0
    i, _ = overpasses(specs['L'].orbit, np.full(8, 84.7), np.arange(8) * 45.0, '2022-06-01', '2022-06-09')
    assert i.size > 0


def test_ascat_gap_excludes_nadir():
    """With ASCAT's 670 km nadir gap no pass has a cross-track distance below 335 km or above 885 km; without the
    gap the same orbit does see near-nadir cells."""
    col, lat, lon = grid_columns(-40, 40, lon_step=3)
    orb = default_specs()['C'].orbit
    d = overpass_details(orb, lat, lon, '2022-06-01', '2022-06-03')
    x = np.abs(d['cross_track_km'])
    assert x.min() >= 335.0 - 1e-6 and x.max() <= 885.0 + 1e-6
    d0 = overpass_details(dataclasses.replace(orb, gap_km=0.0), lat, lon, '2022-06-01', '2022-06-03')
    assert np.abs(d0['cross_track_km']).min() < 100.0


def test_overpasses_independent_of_column_set():
    """A column's passes depend only on its own lat/lon: the passes of a subset equal the corresponding rows of
    the passes of the full set."""
    col, lat, lon = grid_columns(-60, 70, lon_step=8)
    orb = default_specs()['X'].orbit
    i_all, t_all = overpasses(orb, lat, lon, '2022-06-01', '2022-06-04')
    sub = np.arange(0, lat.size, 3)
    i_sub, t_sub = overpasses(orb, lat[sub], lon[sub], '2022-06-01', '2022-06-04')
    m = np.isin(i_all, sub)
    a = np.lexsort((t_all[m], i_all[m]))
    b = np.lexsort((t_sub, sub[i_sub]))
    assert np.array_equal(i_all[m][a], sub[i_sub][b])
    assert np.array_equal(t_all[m][a], t_sub[b])


def test_orbit_rejects_bad_values():
    """Bad orbit parameters raise UserError naming the field."""
    with pytest.raises(UserError, match='swath_km'):
        Orbit(700.0, 6.0, 'ascending', swath_km=-5.0)
    with pytest.raises(UserError, match='node'):
        Orbit(700.0, 6.0, 'sideways')


# ------------------------------------------------------------------------------------------------------------
# file format

def small_table(quantity='volumetric'):
    n = 5
    return ObsTable('L' if quantity == 'volumetric' else 'C', quantity, 0.05,
                    time=np.array(['2022-06-01T06:00:00'] * n, dtype='datetime64[s]') + np.arange(n)[::-1],
                    column=np.array([7, 3, 9, 3, 1]), lat=np.linspace(-10, 10, n), lon=np.linspace(0, 40, n),
                    value=np.array([0.2, np.nan, 0.31, 0.05, 0.4]), error=np.full(n, 0.04),
                    porosity=(np.full(n, np.nan) if quantity == 'volumetric' else np.full(n, 0.5)),
                    quality=np.array([0, FLAG_FROZEN, FLAG_RANGE, 0, FLAG_DENSE_VEGETATION]), source='test')


@pytest.mark.parametrize('quantity', ['volumetric', 'saturation'])
def test_obs_file_round_trip(tmp_path, quantity):
    """write_obs / read_obs reproduce every row bit for bit (NaN values included) with CF attributes: units,
    the CF standard name for volumetric products, global sensor/quantity/sensing_depth."""
    t = small_table(quantity)
    p = write_obs(tmp_path / 'obs.nc', t)
    r = read_obs(p)
    assert r.equals(t) and len(r) == 5
    with netCDF4.Dataset(p) as nc:
        assert nc.sensor == t.sensor and nc.quantity == quantity and nc.sensing_depth == 0.05
        v = nc.variables['value']
        assert v.units == ('m3 m-3' if quantity == 'volumetric' else '1')
        if quantity == 'volumetric':
            assert v.standard_name == 'volume_fraction_of_condensed_water_in_soil'
        assert nc.variables['time'].units.startswith('seconds since 1970')
    s = r.sorted()
    assert np.all(np.diff(s.time.astype(np.int64)) >= 0)
    assert len(ObsTable.concatenate([r, r.subset(r.column == 3)])) == 7


def test_saturation_to_volumetric():
    """volumetric() multiplies saturation values and errors by the product's porosity and leaves volumetric
    products unchanged."""
    t = small_table('saturation')
    v, e = t.volumetric()
    np.testing.assert_array_equal(v, t.value * 0.5)
    np.testing.assert_array_equal(e, t.error * 0.5)
    tv = small_table('volumetric')
    np.testing.assert_array_equal(tv.volumetric()[0], tv.value)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """A crash during writing leaves neither a temporary nor a partial file, and an existing file untouched."""
    import colmda.obs.format as fmt
    t = small_table()
    target = tmp_path / 'obs.nc'
    write_obs(target, t)
    before = target.read_bytes()

    def boom(q):
        raise RuntimeError('simulated crash')
    monkeypatch.setattr(fmt, '_value_attrs', boom)
    with pytest.raises(RuntimeError):
        write_obs(target, t.subset(np.arange(2)))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['obs.nc']
    with pytest.raises(RuntimeError):
        write_obs(tmp_path / 'new.nc', t)
    assert not (tmp_path / 'new.nc').exists()


def _break(path, how):
    """Copy of a good file with one defect."""
    with netCDF4.Dataset(path, 'a') as nc:
        if how == 'units':
            nc.variables['value'].units = 'percent'
        elif how == 'dims':
            nc.createDimension('other', 5)
            nc.renameVariable('lat', 'lat_old')
            v = nc.createVariable('lat', 'f8', ('other',))
            v.units = 'degrees_north'
        elif how == 'missing':
            nc.renameVariable('quality', 'qc')


@pytest.mark.parametrize('how,var', [('units', 'value'), ('dims', 'lat'), ('missing', 'quality')])
def test_read_obs_clear_errors(tmp_path, how, var):
    """Wrong units, wrong dimensions and a missing variable raise UserError naming the file and the variable."""
    p = write_obs(tmp_path / 'obs.nc', small_table())
    _break(p, how)
    with pytest.raises(UserError) as e:
        read_obs(p)
    assert str(p) in str(e.value) and f"'{var}'" in str(e.value)
    with pytest.raises(UserError, match='not found'):
        read_obs(tmp_path / 'nope.nc')


# ------------------------------------------------------------------------------------------------------------
# sensors

def test_spec_overrides_and_validation():
    """Specs are frozen and overridable; spec_with validates and names the field (and suggests a spelling)."""
    s = spec_with('X', excursion_amplitude=0.1, swath_km=1200.0)
    assert s.excursion_amplitude == 0.1 and s.orbit.swath_km == 1200.0
    assert dataclasses.replace(default_specs()['L'], sensing_depth=0.03).sensing_depth == 0.03
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.swath_km = 3.0
    with pytest.raises(UserError, match='sensing_depth'):
        spec_with('L', sensing_depth=-0.05)
    with pytest.raises(UserError, match="error_std_bare"):
        spec_with('C', error_std_bar=0.02)
    with pytest.raises(UserError, match='unknown sensor'):
        spec_with('K')
    # the namelist keys map to these fields
    for f in ('error_std_bare', 'error_slope_lai', 'sensing_depth', 'swath_km', 'repr_std', 'excursion_amplitude'):
        assert all(hasattr(sp, f) for sp in default_specs().values())


def test_error_std_vegetation_dependence():
    """sigma(LAI): L does not grow (slightly shrinks) with vegetation; C and X grow, X the most."""
    lai = np.linspace(0, 6, 13)
    sp = default_specs()
    sl, sc, sx = (retrieval_error_std(sp[k], lai) for k in 'LCX')
    assert np.all(np.diff(sl) <= 0) and sl[-1] < sl[0]
    assert np.all(np.diff(sc) > 0) and np.all(np.diff(sx) > 0)
    assert sx[-1] - sx[0] > sc[-1] - sc[0] > 0
    assert np.all(excursion_ramp(sp['X'], lai[lai < 3.0]) == 0) and excursion_ramp(sp['X'], 6.0) == 1.0


# ------------------------------------------------------------------------------------------------------------
# retrieval simulation

def synthetic(npos, nsteps, lai, theta=0.30, porosity=0.55, t_soil=290.0, vary=None):
    """Snapshots with uniform truth (or a per-step variation ``vary`` (nsteps, npos) added to all layers)."""
    th = np.full((nsteps, NL, npos), theta)
    if vary is not None:
        th = th + vary[:, None, :]
    return dict(theta=th, theta_ice=np.zeros((nsteps, NL, npos)), t_soil=np.full((nsteps, NL, npos), t_soil),
                swe=np.zeros((nsteps, npos)), lai=np.asarray(lai, dtype=float),
                porosity=np.full((NL, npos), porosity))


def run_days(sim, positions, lai, ndays, t0='2022-06-01', dt=3600.0, truth_fn=None):
    """Daily windows of 24 one-hour steps; returns the concatenated table and the sensed truth per row."""
    tabs = []
    for d in range(ndays):
        t = np.datetime64(t0, 's') + np.timedelta64(86400 * d, 's')
        vary = truth_fn(d, positions) if truth_fn else None
        tabs.append(sim.sample(positions, t, dt, 24, synthetic(positions.size, 24, lai, vary=vary)))
    return ObsTable.concatenate(tabs)


@pytest.fixture(scope='module')
def stats_columns():
    col, lat, lon = grid_columns(-50, 60, lon_step=1)
    keep = np.arange(0, col.size, 3)
    return col[keep], lat[keep], lon[keep]


@pytest.mark.parametrize('name', ['L', 'C', 'X'])
def test_error_statistics_by_vegetation_class(stats_columns, name):
    """Against a known constant truth (0.30 m3 m-3, porosity 0.55) the empirical error std in each LAI class
    equals the spec's sqrt(sigma(LAI)^2 + repr_std^2) within sampling error (4 standard errors of a std), the mean
    error is ~0, and the std ordering with LAI is the spec's (L not increasing, C and X increasing). C is checked
    in saturation units times the true porosity. Classes stay below the X excursion threshold."""
    spec = default_specs()[name]
    col, lat, lon = stats_columns
    classes = np.array([0.0, 1.0, 2.0, 2.9])
    lai = classes[np.arange(col.size) % classes.size]
    sim = RetrievalSimulator(spec, col, lat, lon, DZ, '2022-06-01', '2022-06-11', seed=11)
    tab = run_days(sim, np.arange(col.size), lai, 10)
    assert len(tab) > 4000 and np.all(np.isfinite(tab.value))
    if spec.quantity == 'saturation':
        err = tab.value * 0.55 - 0.30
    else:
        err = tab.value - 0.30
    pos = np.searchsorted(col, tab.column)
    stds = []
    for c in classes:
        e = err[lai[pos] == c]
        expect = float(np.hypot(retrieval_error_std(spec, c), spec.repr_std))
        se = expect / np.sqrt(2 * e.size)
        assert abs(e.std() - expect) < 4 * se + 0.002, (c, e.std(), expect)
        assert abs(e.mean()) < 4 * expect / np.sqrt(e.size) + 0.002
        stds.append(e.std())
    if name == 'L':
        assert stds[-1] <= stds[0]
    else:
        assert np.all(np.diff(stds) > 0)


def test_x_excursions_dense_canopy_only_and_uncorrelated(stats_columns):
    """X excursions (white error switched off) appear only where LAI exceeds the threshold: the error std there
    matches the excursion amplitude, it is slow (day-to-day correlation near exp(-1/tau)) and it is uncorrelated
    with a time-varying truth; below the threshold the error is the small white error only."""
    spec = spec_with('X', error_std_bare=0.005, error_slope_lai=0.0, error_std_min=0.005, repr_std=0.0)
    col, lat, lon = stats_columns
    lai = np.where(np.arange(col.size) % 2 == 0, 1.0, 5.0)
    phase = (col % 17) / 17.0 * 2 * np.pi

    def truth_fn(d, positions):
        return 0.08 * np.sin(2 * np.pi * (d + np.arange(24)[:, None] / 24) / 12.0 + phase[positions])
    sim = RetrievalSimulator(spec, col, lat, lon, DZ, '2022-06-01', '2022-07-01', seed=5)
    tab = run_days(sim, np.arange(col.size), lai, 30, truth_fn=truth_fn)
    pos = np.searchsorted(col, tab.column)
    day = ((tab.time - np.datetime64('2022-06-01', 's')).astype(np.int64) // 86400)
    hour = ((tab.time - np.datetime64('2022-06-01', 's')).astype(np.int64) % 86400) / 3600
    k = np.ceil(hour).astype(int) - 1
    # as in truth_fn: step k of day d's window holds 0.30 + 0.08 sin(2 pi (d + k/24) / 12 + phase)
    truth = 0.30 + 0.08 * np.sin(2 * np.pi * (day + k / 24) / 12.0 + phase[pos])
    err = tab.value - truth
    dense = lai[pos] == 5.0
    assert err[~dense].std() == pytest.approx(0.005, rel=0.15)
    assert err[dense].std() == pytest.approx(np.hypot(0.08, 0.005), rel=0.15)
    assert abs(np.corrcoef(err[dense], truth[dense])[0, 1]) < 0.1
    # slow: daily mean error of a dense column is strongly autocorrelated from day to day
    e_day = np.full((col.size, 30), np.nan)
    e_day[pos[dense], day[dense]] = err[dense]
    a, b = e_day[:, :-1].ravel(), e_day[:, 1:].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.6


def test_frozen_snow_range_and_dense_flags():
    """Frozen top soil (T < 273.15 K, or ice in the sensed layers) and snow (SWE above the threshold) are kept
    with their flag and value NaN; a truth above porosity is clipped to the porosity and flagged FLAG_RANGE;
    LAI above the dense threshold sets FLAG_DENSE_VEGETATION; untouched columns carry no flag."""
    col, lat, lon = grid_columns(30, 50, lon_step=4)
    spec = spec_with('L', error_std_bare=0.0, error_std_min=0.0, repr_std=0.0)
    sim = RetrievalSimulator(spec, col, lat, lon, DZ, '2022-06-01', '2022-06-05', seed=1)
    pos = np.arange(col.size)
    snap = synthetic(col.size, 24, np.where(pos % 5 == 4, 6.5, 1.0))
    g = pos % 5
    snap['t_soil'][:, 0, g == 0] = 268.0
    snap['theta_ice'][:, 1, g == 1] = 0.05
    snap['swe'][:, g == 2] = 20.0
    snap['theta'][:, :, g == 3] = 0.70
    tabs = [sim.sample(pos, np.datetime64('2022-06-01') + np.timedelta64(d, 'D'), 3600.0, 24, snap)
            for d in range(3)]
    t = ObsTable.concatenate(tabs)
    grp = g[np.searchsorted(col, t.column)]
    assert np.all(t.quality[grp == 0] & FLAG_FROZEN) and np.all(np.isnan(t.value[grp == 0]))
    assert np.all(t.quality[grp == 1] & FLAG_FROZEN) and np.all(np.isnan(t.value[grp == 1]))
    assert np.all(t.quality[grp == 2] & FLAG_SNOW) and np.all(np.isnan(t.value[grp == 2]))
    assert np.all(t.quality[grp == 3] == FLAG_RANGE) and np.allclose(t.value[grp == 3], 0.55)
    assert np.all(t.quality[grp == 4] == FLAG_DENSE_VEGETATION) and np.allclose(t.value[grp == 4], 0.30)
    assert all(np.any(grp == k) for k in range(5))


def test_saturation_product_uses_external_porosity():
    """The C product is a degree of saturation in [0, 1] carrying an external porosity that differs from the
    true one by about porosity_error_std; volumetric() = value * external porosity."""
    col, lat, lon = grid_columns(-40, 40, lon_step=2)
    spec = default_specs()['C']
    sim = RetrievalSimulator(spec, col, lat, lon, DZ, '2022-06-01', '2022-06-03', seed=2)
    pos = np.arange(col.size)
    t = sim.sample(pos, '2022-06-01', 3600.0, 24, synthetic(col.size, 24, np.ones(col.size)))
    assert t.quantity == 'saturation' and np.all((t.value >= 0) & (t.value <= 1))
    d = t.porosity - 0.55
    assert d.std() == pytest.approx(spec.porosity_error_std, rel=0.2)
    np.testing.assert_allclose(t.volumetric()[0], t.value * t.porosity)
    np.testing.assert_allclose(t.error, spec.nominal_error / t.porosity)


@pytest.mark.parametrize('name', ['L', 'C', 'X'])
def test_independent_of_column_split_and_window(name):
    """One call over all columns, two calls over (shuffled) halves and two 12 h windows give identical tables
    after sorting: random numbers are keyed by (seed, stream, global column, time) only."""
    col, lat, lon = grid_columns(-30, 60, lon_step=6)
    sim = RetrievalSimulator(default_specs()[name], col, lat, lon, DZ, '2022-06-01', '2022-06-03', seed=9)
    pos = np.arange(col.size)
    rng = np.random.default_rng(0)
    lai = rng.uniform(0, 6, col.size)
    vary = rng.uniform(-0.05, 0.05, (24, col.size))
    snap = synthetic(col.size, 24, lai, vary=vary)
    t0 = np.datetime64('2022-06-01T00:00:00', 's')
    full = sim.sample(pos, t0, 3600.0, 24, snap)
    assert len(full) > 50
    perm = rng.permutation(col.size)
    halves = []
    for part in (perm[: col.size // 2], perm[col.size // 2:]):
        s = {k: (v[..., part] if k != 'lai' else v[part]) for k, v in snap.items()}
        halves.append(sim.sample(part, t0, 3600.0, 24, s))
    assert ObsTable.concatenate(halves).sorted().equals(full)
    wins = []
    for h in (0, 12):
        s = {k: (v[h:h + 12] if k in ('theta', 'theta_ice', 't_soil', 'swe') else v) for k, v in snap.items()}
        wins.append(sim.sample(pos, t0 + np.timedelta64(h * 3600, 's'), 3600.0, 12, s))
    assert ObsTable.concatenate(wins).sorted().equals(full)
    other = RetrievalSimulator(default_specs()[name], col, lat, lon, DZ, '2022-06-01', '2022-06-03', seed=10)
    assert not np.allclose(other.sample(pos, t0, 3600.0, 24, snap).value, full.value, equal_nan=True)


def test_simulator_bad_input():
    """Unsorted columns, snapshots of the wrong shape and windows outside the period raise UserError naming the
    variable."""
    col, lat, lon = grid_columns(30, 40, lon_step=16)
    with pytest.raises(UserError, match="'column'"):
        RetrievalSimulator(default_specs()['L'], col[::-1], lat, lon, DZ, '2022-06-01', '2022-06-02', seed=0)
    sim = RetrievalSimulator(default_specs()['L'], col, lat, lon, DZ, '2022-06-01', '2022-06-02', seed=0)
    snap = synthetic(col.size, 24, np.ones(col.size))
    snap['theta'] = snap['theta'][:, :3]
    with pytest.raises(UserError, match="'theta'"):
        sim.sample(np.arange(col.size), '2022-06-01', 3600.0, 24, snap)
    with pytest.raises(UserError, match='outside the precomputed period'):
        sim.sample(np.arange(col.size), '2022-06-03', 3600.0, 24, synthetic(col.size, 24, np.ones(col.size)))


# ------------------------------------------------------------------------------------------------------------
# in situ and reference

def test_insitu_representativeness_and_file(tmp_path):
    """Stations lie in the box and inside their cell; the station-minus-cell difference has a persistent part
    equal to the simulated bias (per-station means correlate > 0.9 with it) and a residual std consistent with
    the anomaly and noise settings; gaps occur at about the configured rate; the netCDF layout is the documented
    one and round-trips."""
    col, lat, lon = grid_columns(20, 50, lon_step=1)
    m = (lon >= 75) & (lon <= 135)
    col, lat, lon = col[m], lat[m], lon[m]
    nt = 120
    times = np.datetime64('2022-06-01', 's') + np.arange(nt) * np.timedelta64(86400, 's')
    rng = np.random.default_rng(1)
    th = 0.25 + 0.05 * np.sin(np.arange(nt)[:, None, None] / 9.0 + rng.uniform(0, 6, col.size)[None, None, :])
    th = np.broadcast_to(th, (nt, NL, col.size)).copy()
    pft = (col % 16).astype(np.int32)
    s = InsituSettings(scale_log_std=0.0)
    box = (25.0, 45.0, 80.0, 130.0)
    tab = simulate_insitu(th, times, col, lat, lon, DZ, pft, box=box, n_stations=300, seed=4, settings=s)
    assert tab.nstation == 300 and np.unique(tab.column).size < 300      # some cells hold several stations
    assert np.all((tab.station_lat >= 25 - D) & (tab.station_lat <= 45 + D))
    ci = np.searchsorted(col, tab.column)
    assert np.all(np.abs(tab.station_lat - lat[ci]) <= D / 2) and np.all((lat[ci] >= 25) & (lat[ci] <= 45))
    x = operators.apply_weights(operators.point_weights(DZ, 0.10), th, axis=1)[:, ci]
    diff = tab.sm - x
    miss = np.isnan(tab.sm)
    assert 0.02 <= miss.mean() <= 0.15
    station_mean = np.nanmean(diff, axis=0)
    assert np.corrcoef(station_mean, tab.bias)[0, 1] > 0.9
    resid = diff - station_mean
    assert np.nanstd(resid) == pytest.approx(np.hypot(s.anom_std, s.noise_std), rel=0.25)
    p = write_insitu(tmp_path / 'insitu.nc', tab)
    with netCDF4.Dataset(p) as nc:
        assert set(nc.dimensions) == {'time', 'station', 'nv', 'station_name_strlen'}
        assert nc.dimensions['time'].isunlimited() and nc.variables['sm'].cell_methods == 'time: mean'
        assert {'sm', 'column', 'station_lat', 'station_lon', 'station_name', 'pft', 'depth', 'time'} \
            <= set(nc.variables)
        assert nc.variables['sm'].dimensions == ('time', 'station') and nc.variables['sm'].units == 'm3 m-3'
        assert nc.variables['column'].dtype == np.int32 and float(nc.variables['depth'][...]) == 0.10
    r = read_insitu(p)
    np.testing.assert_array_equal(r.sm, tab.sm)
    np.testing.assert_array_equal(r.time, tab.time)
    assert list(r.station_name) == list(tab.station_name) and np.array_equal(r.pft, tab.pft)
    again = simulate_insitu(th, times, col, lat, lon, DZ, pft, box=box, n_stations=300, seed=4, settings=s)
    np.testing.assert_array_equal(again.sm, tab.sm)
    with netCDF4.Dataset(p, 'a') as nc:
        nc.variables['sm'].units = 'percent'
    with pytest.raises(UserError, match="'sm'"):
        read_insitu(p)


def test_reference_error_statistics_and_file(tmp_path):
    """Reference minus truth has the per-layer bias and std of the settings; its spatial correlation is about
    exp(-1) at the e-folding distance and small at three times it; it is AR(1) in time (lag-1 day correlation
    about exp(-1/tau)); the netCDF layout is the documented one and round-trips."""
    nlat, nlon = 64, 128
    dg = 180.0 / nlat
    glat = -90 + dg / 2 + dg * np.arange(nlat)
    glon = dg / 2 + dg * np.arange(nlon)
    J, I = np.meshgrid(np.arange(nlat), np.arange(nlon), indexing='ij')
    sel = (np.abs(glat[J]) < 60).ravel()
    col = (J * nlon + I).ravel()[sel]
    lat, lon = glat[J].ravel()[sel], glon[I].ravel()[sel]
    nt = 30
    times = np.datetime64('2022-06-01', 's') + np.arange(nt) * np.timedelta64(86400, 's')
    th = np.full((nt, NL, col.size), 0.30)
    s = ReferenceSettings()
    ref = simulate_reference(th, times, col, lat, lon, DZ, (glat, glon), seed=3, settings=s)
    err = ref.sm - 0.30
    for k in range(3):
        assert err[:, k].mean() == pytest.approx(s.bias[k], abs=0.4 * s.std[k])
        assert err[:, k].std() == pytest.approx(s.std[k], rel=0.25)
    E = reference_error_fields((glat, glon), col, np.arange(19144, 19144 + nt), 3, s)[:, 0]   # layer 1
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, col.size, (2, 20000))
    la1, la2, lo1, lo2 = (np.radians(v) for v in (lat[a], lat[b], lon[a], lon[b]))
    dist = 6371.0 * np.arccos(np.clip(np.sin(la1) * np.sin(la2) + np.cos(la1) * np.cos(la2) * np.cos(lo1 - lo2),
                                      -1, 1))

    def corr(lo, hi):
        m = (dist >= lo) & (dist < hi)
        return np.corrcoef(E[:, a[m]].ravel(), E[:, b[m]].ravel())[0, 1]
    assert corr(400, 600) == pytest.approx(np.exp(-1.0), abs=0.15)
    assert abs(corr(1400, 1800)) < 0.15
    lag1 = np.corrcoef(E[:-1].ravel(), E[1:].ravel())[0, 1]
    assert lag1 == pytest.approx(np.exp(-1 / s.tau_days), abs=0.08)
    p = write_reference(tmp_path / 'ref.nc', ref)
    with netCDF4.Dataset(p) as nc:
        assert set(nc.dimensions) == {'time', 'layer', 'column', 'nv'}
        assert nc.variables['sm'].dimensions == ('time', 'column', 'layer')
        assert list(nc.variables['layer_bottom'][:]) == [0.07, 0.28, 1.0]
    r = read_reference(p)
    np.testing.assert_array_equal(r.sm, ref.sm)
    np.testing.assert_array_equal(r.column, ref.column)
    # subset-independence: the errors of a subset of columns equal those of the full run
    sub = np.arange(0, col.size, 7)
    rs = simulate_reference(th[..., sub], times, col[sub], lat[sub], lon[sub], DZ, (glat, glon), seed=3, settings=s)
    np.testing.assert_allclose(rs.sm, ref.sm[..., sub], rtol=0, atol=1e-12)
