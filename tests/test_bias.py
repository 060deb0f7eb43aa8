"""Observation bias handling (colmda.obs.bias, docs/observations.md): CDF matching gives the reference's CDF on the
training period, seasonal mean/std rescaling gives each month's reference moments, parameters survive the file, and
unfitted columns and mismatched files are reported."""

import numpy as np
import pytest
from scipy import stats

from colmda.errors import UserError
from colmda.obs import bias as B


def _series(n=730, seed=0):
    rng = np.random.default_rng(seed)
    t = np.datetime64('2016-01-01T06:00', 's') + np.arange(n) * np.timedelta64(86400, 's')
    doy = np.arange(n) / 365.25
    ref = 0.25 + 0.06 * np.sin(2 * np.pi * doy) + 0.03 * rng.standard_normal(n)
    # a retrieval with another climatology: skewed, shifted, compressed (a monotone transform plus noise)
    obs = 0.05 + 0.8 * np.clip(ref - 0.05, 0, None) ** 1.5 + 0.01 * rng.standard_normal(n)
    return t, obs, ref


def test_cdf_matching_reproduces_reference_cdf():
    """On the training period the CDF-matched retrievals have the reference's distribution: two-sample KS
    statistic < 0.05 (n = 730, the raw retrievals have KS ~ 1), quantiles 5..95 % within 0.005 m3 m-3, the same
    mean and standard deviation to 0.003; matching is monotone (ranks unchanged, so R with any series is only
    changed by the non-linearity); another column without enough pairs gets no parameters (NaN)."""
    t, obs, ref = _series()
    cols = np.array([5, 9])
    sensor = np.zeros(t.size, int)
    column = np.full(t.size, 5)
    b = B.fit('cdf', ('ASCAT',), cols, np.r_[sensor, 0], np.r_[column, 9], np.r_[t, t[:1]], np.r_[obs, 0.2],
              np.r_[ref, 0.2], nbins=20)
    matched, fac = b.apply(sensor, column, t, obs)
    assert stats.ks_2samp(obs, ref).statistic > 0.8
    assert stats.ks_2samp(matched, ref).statistic < 0.05
    q = np.linspace(5, 95, 19)
    np.testing.assert_allclose(np.percentile(matched, q), np.percentile(ref, q), atol=5e-3)
    assert matched.mean() == pytest.approx(ref.mean(), abs=3e-3) and matched.std() == pytest.approx(ref.std(), abs=3e-3)
    assert np.all(np.argsort(matched, kind='stable') == np.argsort(obs, kind='stable'))
    assert np.all(fac == pytest.approx(ref.std() / obs.std()))
    v, f = b.apply([0], [9], t[:1], [0.2])
    assert np.isnan(v[0]) and np.isnan(f[0])


def test_seasonal_mean_std_and_training_period(tmp_path):
    """Seasonal rescaling: in every month the rescaled retrievals have the reference's mean and standard deviation
    of that month's 3-month window (exactly, up to round-off, for the middle month's own window statistics);
    pairs outside the training period do not enter the fit; the file round-trips bit for bit."""
    t, obs, ref = _series()
    z = np.zeros(t.size, int)
    col = np.full(t.size, 3)
    b = B.fit('seasonal', ('S',), [3], z, col, t, obs, ref, train_start='2016-01-01', train_end='2017-01-01')
    month = t.astype('datetime64[M]').astype(int) % 12
    train = t < np.datetime64('2017-01-01')
    y, _ = b.apply(z, col, t, obs)
    for m in range(12):
        w = train & np.isin(month, [(m - 1) % 12, m, (m + 1) % 12])
        mo = b.moments[0, 0, m]
        assert mo[0] == pytest.approx(obs[w].mean()) and mo[2] == pytest.approx(ref[w].mean())
        sel = train & (month == m)
        expect = ref[w].mean() + (obs[sel] - obs[w].mean()) * ref[w].std() / obs[w].std()
        np.testing.assert_allclose(y[sel], expect, rtol=1e-12)
    assert b.n_pairs[0, 0] == train.sum()
    p = B.write_bias(tmp_path / 'b.nc', b)
    r = B.read_bias(p)
    assert r.method == 'seasonal' and r.sensors == ('S',) and r.train_end == '2017-01-01T00:00:00'
    np.testing.assert_array_equal(r.moments, b.moments)
    np.testing.assert_array_equal(r.apply(z, col, t, obs)[0], y)


def test_bad_method_and_foreign_file(tmp_path):
    """An unknown method and a file that is not a bias file are one-line UserErrors."""
    with pytest.raises(UserError, match="expected one of cdf, seasonal"):
        B.fit('quantile', ('A',), [1], [0], [1], np.array(['2017-01-01'], 'datetime64[s]'), [0.1], [0.2])
    import netCDF4
    with netCDF4.Dataset(tmp_path / 'x.nc', 'w') as nc:
        nc.title = 'something else'
    with pytest.raises(UserError, match="global attribute 'method' missing"):
        B.read_bias(tmp_path / 'x.nc')


def test_defaults_twin_off_real_on_and_missing_reference(tmp_path):
    """'auto' is off for colmda observation files (twins) and CDF matching for product files (real data); real
    data without a bias file and reference run is a one-line error saying what to give."""
    from pathlib import Path

    from colmda import config
    from colmda.assim.observations import bias_method

    assert bias_method(config.defaults()) == 'none'
    root = Path(__file__).resolve().parents[1]
    f = root / 'namelists/hawaii_2017/ascat_h113_0165.nc'
    s = config.loads(f"&observations sensors='A', products='ascat_hsaf_cell', product_files='{f}' /")
    assert bias_method(s) == 'cdf'
    with pytest.raises(UserError, match='needs bias_file'):
        B.parameters_for_run(s, [], [1], None, None, None)
    s = config.loads(f"&observations sensors='A', products='ascat_hsaf_cell', product_files='{f}', "
                     f"bias_file='{tmp_path}/b.nc' /")
    with pytest.raises(UserError, match='bias_reference_run is empty'):
        B.parameters_for_run(s, [], [1], None, None, None)
    b = B.fit('cdf', ('B',), [1], np.zeros(40, int), np.ones(40, int),
              np.datetime64('2017-01-01', 's') + np.arange(40) * np.timedelta64(86400, 's'),
              np.linspace(0.1, 0.2, 40), np.linspace(0.2, 0.3, 40))
    B.write_bias(tmp_path / 'b.nc', b)
    with pytest.raises(UserError, match="sensors B, but the run asks for 'cdf' and A; delete the file to refit"):
        B.parameters_for_run(s, [], [1], None, None, None)
