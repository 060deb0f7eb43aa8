"""Evaluation against ISMN stations (colmda.evaluation.ismn, `colmda evaluate`, docs/evaluation.md): station
reading through the `ismn` package checked against an independent parse of the real .stm files, parity of the
vectorised metrics with pytesmo on real series, scores and signs on a constructed run, and bad input."""

import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from colmda.errors import UserError
from colmda.evaluation import ismn as E
from colmda.evaluation import metrics

ROOT = Path(__file__).resolve().parents[1]
HAWAII = ROOT / 'namelists/hawaii_2017/ismn'
STM = HAWAII / 'COSMOS/SilverSword/COSMOS_COSMOS_SilverSword_sm_0.000000_0.170000_Cosmic-ray-Probe_20170101_20181231.stm'
SCAN = '/work/shared/data/real/ismn/multinetwork_header_values/SCAN/AAMU-jtg'
EPOCH = np.datetime64('1970-01-01T00:00:00', 's')


def parse_ceop(path):
    """Independent parse of an ISMN ceop_sep .stm file: (hour datetime64, value, flag) per line."""
    t, v, f = [], [], []
    for line in open(path):
        p = line.split()
        t.append(np.datetime64(p[0].replace('/', '-') + 'T' + p[1], 's'))
        v.append(float(p[-3]))
        f.append(p[-2])
    return np.array(t), np.array(v), np.array(f)


def daily_good(t, v, f, min_hours=12):
    out = {}
    for day in np.unique(t.astype('datetime64[D]')):
        sel = (t.astype('datetime64[D]') == day) & (f == 'G')
        if sel.sum() >= min_hours:
            out[day] = v[sel].mean()
    return out


def test_station_read_matches_independent_parse():
    """The SilverSword archive (ceop_sep layout, read through ismn.ISMN_Interface with its metadata in a temporary
    folder: the archive may be read-only) gives the station's coordinates and depth, and daily means of the G-flagged
    hours equal to 1e-12 those of an independent parse of the .stm text; 2017 only with a period."""
    st, = E.read_stations(HAWAII, start='2017-01-01', end='2018-01-01')
    assert (st.network, st.name, st.lat, st.lon, st.depth_from, st.depth_to) == \
        ('COSMOS', 'SilverSword', 19.765, -155.4234, 0.0, 0.17)
    t, v, f = parse_ceop(STM)
    keep = t < np.datetime64('2018-01-01')
    ref = daily_good(t[keep], v[keep], f[keep])
    assert st.days.size == len(ref) and st.days[0] == np.datetime64('2017-01-01') and st.days[-1] <= np.datetime64('2017-12-31')
    np.testing.assert_allclose(st.sm, [ref[d] for d in st.days], rtol=1e-12)
    assert st.counts['hours'] == keep.sum() and st.counts['hours_good'] == int((f[keep] == 'G').sum())
    # other flags on request, depth selection
    st_all, = E.read_stations(HAWAII, flags=('G', 'D05'), start='2017-01-01', end='2018-01-01')
    assert st_all.counts['hours_good'] == int(np.isin(f[keep], ['G', 'D05']).sum())
    with pytest.raises(UserError, match='outside depth 1'):
        E.read_stations(HAWAII, depth=(0.0, 0.1))


@pytest.mark.skipif(not os.path.isdir(SCAN), reason='SCAN sample not present')
def test_header_values_single_station_folder():
    """A folder of header_values .stm files (SCAN AAMU-jtg, 5.08 cm, flags U in this old archive) is read with
    ismn.filehandlers.DataFile; with G only it has no good day (a one-line error)."""
    st, = E.read_stations(SCAN, flags=('G', 'U'), start='2010-01-01', end='2011-01-01')   # old archive: U = unchecked
    assert st.network == 'SCAN' and st.depth_from == pytest.approx(0.05, abs=1e-3) and st.days.size == 164   # gaps in 2010
    assert 0.0 < np.nanmin(st.sm) < np.nanmax(st.sm) < 0.6
    with pytest.raises(UserError, match='no good daily value 1'):
        E.read_stations(SCAN, start='2010-01-01', end='2011-01-01')


def test_metric_parity_with_pytesmo_on_real_series():
    """metrics.bias/rmse/ubrmse/pearson_r and the analytical confidence intervals equal pytesmo's on real series (the
    SilverSword daily means of 2017 against its 00 UTC values, and against the daily means of 2018 on the same
    calendar days), both orders of the arguments; bias(x, y) = mean(x) - mean(y) as pytesmo; the vectorised form over
    two columns gives the same numbers; NaN pairs are ignored."""
    from pytesmo import metrics as pm

    t, v, f = parse_ceop(STM)
    days17 = E.read_stations(HAWAII, start='2017-01-01', end='2018-01-01')[0]
    days18 = E.read_stations(HAWAII, start='2018-01-01', end='2019-01-01')[0]
    midnight = {d.astype('datetime64[D]'): x for d, x, g in zip(t, v, f) if str(d)[11:13] == '00' and g == 'G'}
    x = days17.sm
    y1 = np.array([midnight.get(d, np.nan) for d in days17.days])
    y2 = np.array([dict(zip((days18.days - np.timedelta64(365, 'D')), days18.sm)).get(d, np.nan) for d in days17.days])
    for y in (y1, y2):
        ok = np.isfinite(x) & np.isfinite(y)
        assert ok.sum() > 100 and (~ok).sum() > 0
        for a, b in ((x, y), (y, x)):
            assert metrics.bias(a, b) == pytest.approx(pm.bias(a[ok], b[ok]), rel=1e-12)
            assert metrics.rmse(a, b) == pytest.approx(pm.rmsd(a[ok], b[ok]), rel=1e-12)
            assert metrics.ubrmse(a, b) == pytest.approx(pm.ubrmsd(a[ok], b[ok]), rel=1e-10)
            assert metrics.pearson_r(a, b) == pytest.approx(pm.pearson_r(a[ok], b[ok]), rel=1e-10)
            ci = metrics.confidence_intervals(a, b)
            for name, fn in (('R', pm.pearson_r), ('bias', pm.bias), ('ubRMSE', pm.ubrmsd)):
                _, lo, hi = pm.with_analytical_ci(fn, a[ok], b[ok])
                assert ci[name][0] == pytest.approx(lo, rel=1e-8) and ci[name][1] == pytest.approx(hi, rel=1e-8)
    X, Y = np.stack([x, y1], 1), np.stack([y2, x], 1)
    np.testing.assert_allclose(metrics.bias(X, Y), [metrics.bias(x, y2), metrics.bias(y1, x)], rtol=1e-12)
    np.testing.assert_allclose(metrics.pearson_r(X, Y), [metrics.pearson_r(x, y2), metrics.pearson_r(y1, x)])


def test_effective_sample_size_ar1():
    """For two independent AR(1) series with lag-1 autocorrelation rho, n_eff = n (1 - rho^2) / (1 + rho^2)
    (Bretherton et al. 1999) within sampling error; white noise keeps n_eff ~ n; the n_eff interval of R is wider."""
    rng = np.random.default_rng(0)
    n, rho = 20000, 0.8

    def ar1():
        x = np.zeros(n)
        e = rng.standard_normal(n)
        for i in range(1, n):
            x[i] = rho * x[i - 1] + e[i]
        return x

    a, b = ar1(), ar1()
    assert metrics.effective_sample_size(a, b) == pytest.approx(n * (1 - rho ** 2) / (1 + rho ** 2), rel=0.05)
    w1, w2 = rng.standard_normal(n), rng.standard_normal(n)
    assert metrics.effective_sample_size(w1, w2) == pytest.approx(n, rel=0.02)
    lo, hi = metrics.confidence_intervals(a, b)['R']
    lo2, hi2 = metrics.confidence_intervals(a, b, n_eff=metrics.effective_sample_size(a, b))['R']
    assert hi2 - lo2 > 1.5 * (hi - lo)


def test_model_at_station_cell_and_bilinear(tmp_path):
    """Grid-layout history: 'cell' takes the cell holding the station, 'bilinear' the bilinear weights of the four
    surrounding cell centres (exact for a field linear in lat and lon); the station's 0-17 cm range is averaged
    over the model layers by their overlap (a field constant in depth is returned unchanged)."""
    lat, lon = np.array([19.0, 19.5, 20.0]), np.array([204.0, 204.5, 205.0])
    days = np.arange(np.datetime64('2017-01-01'), np.datetime64('2017-01-04'))
    LA, LO = np.meshgrid(lat, lon, indexing='ij')
    field = 0.1 + 0.2 * (LA - 19.0) + 0.1 * (LO - 204.0)
    dz = np.array([0.02, 0.04, 0.06, 0.1, 0.2])
    h = tmp_path / 'g/history'
    h.mkdir(parents=True)
    with netCDF4.Dataset(h / 'g_2017.nc', 'w') as nc:
        for d, n in (('time', 3), ('nv', 2), ('depth', 5), ('lat', 3), ('lon', 3)):
            nc.createDimension(d, n)
        s0 = (days.astype('datetime64[s]') - EPOCH).astype(np.int64)
        nc.createVariable('time_bnds', 'f8', ('time', 'nv'))[:] = np.stack([s0, s0 + 86400], 1)
        nc.createVariable('dz', 'f8', ('depth',))[:] = dz
        nc.createVariable('lat', 'f8', ('lat',))[:] = lat
        nc.createVariable('lon', 'f8', ('lon',))[:] = lon
        nc.createVariable('SoilMoistV', 'f4', ('time', 'depth', 'lat', 'lon'))[:] = \
            np.broadcast_to(field, (3, 5, 3, 3))
    st = E.Station('X', 'x', 19.765, -155.4234, 0.0, 0.17, 'probe', days, np.full(3, 0.2), {})
    _, cell = E.model_daily(tmp_path / 'g', st, 'cell')
    _, bil = E.model_daily(tmp_path / 'g', st, 'bilinear')
    assert cell[0] == pytest.approx(field[2, 1], rel=1e-6)                  # centre 20.0 N, 204.5 E is nearest
    assert bil[0] == pytest.approx(0.1 + 0.2 * 0.765 + 0.1 * (204.5766 - 204.0), rel=1e-5)


def fake_run(path, days, sm, lat=19.8, lon=-155.4, dz=None):
    """A run directory whose history (points layout) holds SoilMoistV = sm in every layer."""
    dz = np.array([0.02, 0.04, 0.06, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5]) if dz is None else dz
    h = Path(path, 'history')
    h.mkdir(parents=True)
    with netCDF4.Dataset(h / 'x_2017.nc', 'w') as nc:
        nc.createDimension('time', days.size)
        nc.createDimension('nv', 2)
        nc.createDimension('depth', dz.size)
        nc.createDimension('point', 1)
        s0 = (days.astype('datetime64[s]') - EPOCH).astype(np.int64)
        nc.createVariable('time', 'f8', ('time',))[:] = s0 + 86400
        nc.createVariable('time_bnds', 'f8', ('time', 'nv'))[:] = np.stack([s0, s0 + 86400], 1)
        nc.createVariable('dz', 'f8', ('depth',))[:] = dz
        nc.createVariable('lat', 'f8', ('point',))[:] = [lat]
        nc.createVariable('lon', 'f8', ('point',))[:] = [lon]
        nc.createVariable('SoilMoistV', 'f4', ('time', 'depth', 'point'))[:] = np.repeat(sm[:, None, None], dz.size, 1)
    return str(path)


def test_evaluate_scores_signs_and_dR(tmp_path):
    """A 'DA' run = station + 0.05 m3 m-3 + small noise and an 'open loop' = station + large noise: bias +0.05
    (model - station, pytesmo's sign with the model first) inside its CI, DA R > open-loop R, dR > 0 with a
    bootstrap interval above zero, ubRMSE of DA close to the noise std; the files and the figure are written."""
    st, = E.read_stations(HAWAII, start='2017-01-01', end='2018-01-01')
    rng = np.random.default_rng(3)
    days = np.arange(np.datetime64('2017-01-01'), np.datetime64('2018-01-01'))
    obs = np.interp(days.astype(int), st.days.astype(int), st.sm)
    da = fake_run(tmp_path / 'da', days, obs + 0.05 + 0.005 * rng.standard_normal(days.size))
    ol = fake_run(tmp_path / 'ol', days, obs + 0.03 * rng.standard_normal(days.size))
    r = E.evaluate(da, HAWAII, ol, start='2017-01-01', end='2018-01-01')
    s, = r['stations']
    b = s['scores']['DA']['bias']
    assert b[0] == pytest.approx(0.05, abs=0.002) and b[1] < 0.05 < b[2]
    assert s['scores']['DA']['R'][0] > 0.95 > s['scores']['open_loop']['R'][0]
    assert s['dR'][0] > 0 and s['dR'][1] > 0
    assert s['scores']['DA']['ubRMSE'][0] == pytest.approx(0.005, abs=0.002)
    assert (Path(da) / 'evaluation/insitu.json').is_file() and Path(s['figure']).is_file()
    assert 'DA - open loop' in (Path(da) / 'evaluation/insitu.md').read_text()


def test_evaluate_bad_input(tmp_path):
    """All data flagged away, no overlap with the run, a history without SoilMoistV, and a missing directory:
    one-line errors; through the command line exit status 2 without a traceback."""
    days = np.arange(np.datetime64('2010-01-01'), np.datetime64('2010-03-01'))
    run = fake_run(tmp_path / 'old', days, np.full(days.size, 0.3))
    with pytest.raises(UserError, match='no good daily value 1'):
        E.read_stations(HAWAII, flags=('X',))
    with pytest.raises(UserError, match='no station overlaps the run by 30 days'):
        E.evaluate(run, HAWAII)
    with pytest.raises(UserError, match='not found'):
        E.read_stations(tmp_path / 'nothing')
    p = subprocess.run([sys.executable, '-m', 'colmda', 'evaluate', run, '--insitu', str(HAWAII)],
                       capture_output=True, text=True)
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 2 and 'Traceback' not in p.stderr and p.stderr.count('colmda: error:') == 1
    assert last.startswith('colmda: error:') and 'no station overlaps the run' in last
