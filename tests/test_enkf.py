"""The EnKF family (colmda.assim.enkf) against the Kalman filter, closed forms, brute force and DAPPER.

What each test proves is in its docstring; docs/assimilation.md ("The EnKF family") summarises them.
Tolerances are either round-off (exact identities) or a number of standard deviations of the sampling
distribution derived in the test, never tuned to the outcome.
"""

import numpy as np
import pytest

from colmda.assim import enkf

RNG_SEED = 20261204


def exact_ensemble(mean, cov, N, rng):
    """N members whose sample mean and (N - 1)-normalised sample covariance are exactly ``mean`` and ``cov``."""
    n = mean.size
    Z = rng.standard_normal((N, n))
    Z -= Z.mean(axis=0)
    chol = np.linalg.cholesky(Z.T @ Z / (N - 1))
    Z = np.linalg.solve(chol, Z.T).T
    return mean + Z @ np.linalg.cholesky(cov).T


def random_problem(rng, n, m):
    A = rng.standard_normal((n, n))
    B = A @ A.T / n + 0.5 * np.eye(n)
    H = rng.standard_normal((m, n))
    r = rng.uniform(0.3, 2.0, m)
    return rng.standard_normal(n), B, H, r, rng.standard_normal(m)


def kalman(mu, B, H, r, y):
    """The Kalman filter analysis (mean, covariance) computed directly in state space."""
    S = H @ B @ H.T + np.diag(r)
    K = B @ H.T @ np.linalg.inv(S)
    return mu + K @ (y - H @ mu), (np.eye(mu.size) - K @ H) @ B, K


# ---------------------------------------------------------------------------------------------------------
# Localisation geometry
# ---------------------------------------------------------------------------------------------------------

def test_gaspari_cohn_closed_form():
    """The Gaspari-Cohn function is 1 at 0, 5/24 at the half-width c, 0 at 2c and beyond (compact support),
    continuous with continuous first and second derivatives at c and 2c (their eq. 4.10 is C2), decreasing,
    and yields a positive semi-definite correlation matrix for points on the sphere with chordal distances
    (Gaspari & Cohn 1999, section 4: it is a correlation function in R^3)."""
    c = 250.0
    assert enkf.gaspari_cohn(0.0, c) == 1.0
    assert enkf.gaspari_cohn(c, c) == pytest.approx(5.0 / 24.0, abs=1e-15)
    assert enkf.gaspari_cohn(2 * c, c) == 0.0
    assert np.all(enkf.gaspari_cohn(np.array([2 * c + 1e-9, 3 * c, 1e9]), c) == 0.0)
    d = np.linspace(0, 2.5 * c, 5001)
    g = enkf.gaspari_cohn(d, c)
    assert np.all(np.diff(g) <= 1e-15) and np.all(g >= 0)
    h = 1e-4 * c
    for x0 in (c, 2 * c):  # one-sided second-order differences from the left and from the right
        left = enkf.gaspari_cohn(x0 - h * np.arange(3), c)
        right = enkf.gaspari_cohn(x0 + h * np.arange(3), c)
        assert abs(left[0] - right[0]) < 1e-12
        d1_left = (3 * left[0] - 4 * left[1] + left[2]) / (2 * h)
        d1_right = -(3 * right[0] - 4 * right[1] + right[2]) / (2 * h)
        assert abs(d1_left - d1_right) < 1e-6 / c  # truncation error O(h^2 / c^3) = 1e-8 / c
        d2_left = (left[0] - 2 * left[1] + left[2]) / h ** 2
        d2_right = (right[0] - 2 * right[1] + right[2]) / h ** 2
        assert abs(d2_left - d2_right) < 1e-3 / c ** 2  # truncation error O(h / c^3) = 1e-4 / c^2
    # independent values: the polynomial pieces evaluated directly
    for z in (0.3, 0.9, 1.2, 1.7):
        if z <= 1:
            ref = 1 - 5 / 3 * z ** 2 + 5 / 8 * z ** 3 + z ** 4 / 2 - z ** 5 / 4
        else:
            ref = 4 - 5 * z + 5 / 3 * z ** 2 + 5 / 8 * z ** 3 - z ** 4 / 2 + z ** 5 / 12 - 2 / (3 * z)
        assert enkf.gaspari_cohn(z * c, c) == pytest.approx(ref, abs=1e-14)
    rng = np.random.default_rng(RNG_SEED)
    lat = np.rad2deg(np.arcsin(rng.uniform(-1, 1, 300)))
    lon = rng.uniform(0, 360, 300)
    u = enkf.unit_vectors(lat, lon)
    chord_km = np.linalg.norm(u[:, None] - u[None], axis=-1) * enkf.EARTH_RADIUS_KM
    C = enkf.gaspari_cohn(chord_km, 3000.0)
    assert np.linalg.eigvalsh(C).min() > -1e-10
    assert np.all(enkf.gaspari_cohn(d, np.inf) == 1.0)
    np.testing.assert_array_equal(enkf.gaspari_cohn(np.array([0.0, 1e-9]), 0.0), [1.0, 0.0])


def test_great_circle_distance_against_haversine():
    """The chord-based great-circle distance equals the haversine formula (an independent expression) to 1e-9
    relative, and a quarter meridian is pi R / 2."""
    rng = np.random.default_rng(RNG_SEED)
    la1, la2 = rng.uniform(-90, 90, (2, 1000))
    lo1, lo2 = rng.uniform(-180, 360, (2, 1000))
    p1, p2, dl = np.deg2rad(la1), np.deg2rad(la2), np.deg2rad(lo2 - lo1)
    hav = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    ref = 2 * enkf.EARTH_RADIUS_KM * np.arcsin(np.sqrt(hav))
    np.testing.assert_allclose(enkf.great_circle_km(la1, lo1, la2, lo2), ref, rtol=1e-9, atol=1e-6)
    assert enkf.great_circle_km(0, 10, 90, 10) == pytest.approx(np.pi / 2 * enkf.EARTH_RADIUS_KM, rel=1e-12)


def _brute_force_weights(clat, clon, olat, olon, c):
    d = enkf.great_circle_km(clat[:, None], clon[:, None], olat[None, :], olon[None, :])
    return enkf.gaspari_cohn(d, c)


def _dense(local, nobs):
    W = np.zeros((local.index.shape[0], nobs))
    rows = np.repeat(np.arange(local.index.shape[0]), local.index.shape[1])
    np.add.at(W, (rows, local.index.ravel()), local.weight.ravel())
    return W


@pytest.mark.parametrize("c", [100.0, 800.0, 5000.0, np.inf])
def test_local_observations_match_brute_force(c):
    """The k-d tree neighbourhoods hold exactly the observations within 2c by great-circle distance (including
    across the date line and near the poles), each once, with the Gaspari-Cohn weight of the all-pairs
    computation."""
    rng = np.random.default_rng(RNG_SEED)
    clat = np.rad2deg(np.arcsin(rng.uniform(-1, 1, 400)))
    clon = rng.uniform(-180, 180, 400)
    olat = np.concatenate([np.rad2deg(np.arcsin(rng.uniform(-1, 1, 600))), [89.9, -89.95]])
    olon = np.concatenate([rng.uniform(0, 360, 600), [12.0, 200.0]])
    local = enkf.local_observations(clat, clon, olat, olon, c)
    ref = _brute_force_weights(clat, clon, olat, olon, c)
    np.testing.assert_allclose(_dense(local, olat.size), ref, atol=1e-12)
    used = local.weight > 0
    for row, mask in zip(local.index, used):
        assert np.unique(row[mask]).size == mask.sum()
    np.testing.assert_array_equal(local.n_obs, np.count_nonzero(ref > 0, axis=1))


def test_local_observations_radius_zero_is_column_local():
    """localization_km = 0 selects exactly the observations assigned to each column, with weight 1, whatever
    their coordinates."""
    rng = np.random.default_rng(RNG_SEED)
    cols = np.array([5, 17, 3, 40, 8])
    obs_col = rng.choice(np.array([5, 17, 3, 8, 99]), size=50)
    local = enkf.local_observations(np.zeros(5), np.zeros(5), rng.uniform(-90, 90, 50), rng.uniform(0, 360, 50),
                                    0.0, column_id=cols, obs_column=obs_col)
    dense = _dense(local, 50)
    np.testing.assert_array_equal(dense, (obs_col[None, :] == cols[:, None]).astype(float))
    assert local.n_obs[3] == 0
    with pytest.raises(ValueError, match="column_id"):
        enkf.local_observations(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), 0.0)


# ---------------------------------------------------------------------------------------------------------
# Linear-Gaussian: the Kalman filter
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,m,N", [(4, 3, 6), (3, 5, 20), (7, 2, 24), (1, 1, 2)])
def test_etkf_gives_the_kalman_filter_exactly(n, m, N):
    """With B equal to the ensemble's covariance (N > n, so it is any full-rank B) and a linear operator, the
    ETKF analysis mean and (N - 1)-normalised covariance equal the Kalman filter's to round-off, for a batch of
    different problems at once; padded observations (weight 0, arbitrary values) change nothing; the mean
    increment is reported."""
    rng = np.random.default_rng(RNG_SEED + n + 10 * m)
    nb = 5
    E = np.zeros((nb, N, n))
    HE = np.zeros((nb, N, m + 2))
    y = rng.standard_normal((nb, m + 2)) * 100
    r = rng.uniform(0.1, 1.0, (nb, m + 2))
    weight = np.ones((nb, m + 2))
    weight[:, m:] = 0.0
    refs = []
    for b in range(nb):
        mu, B, H, rr, yy = random_problem(rng, n, m)
        E[b] = exact_ensemble(mu, B, N, rng)
        HE[b, :, :m] = E[b] @ H.T
        HE[b, :, m:] = rng.standard_normal((N, 2)) * 50
        y[b, :m], r[b, :m] = yy, rr
        refs.append(kalman(mu, B, H, rr, yy))
    res = enkf.etkf(E, HE, y, r, weight=weight)
    for b, (xa, Pa, _) in enumerate(refs):
        Ea = res.ensemble[b]
        np.testing.assert_allclose(Ea.mean(axis=0), xa, atol=1e-12, rtol=1e-12)
        np.testing.assert_allclose(np.cov(Ea.T, ddof=1).reshape(n, n), Pa, atol=1e-12, rtol=1e-11)
        np.testing.assert_allclose(res.mean_increment[b], xa - E[b].mean(axis=0), atol=1e-12)
    np.testing.assert_array_equal(res.n_obs, m)


def test_stochastic_enkf_matches_the_kalman_filter_within_sampling_error():
    """Stochastic EnKF, N = 10^4, prior ensemble with exactly the KF's mean and B (so only the observation
    perturbations are random). Then each member is x_i + K (y + eps_i - H x_i) with the exact gain K, and:
    the analysis mean error is K eps_bar ~ N(0, K R K^T / N); the error of the sample covariance entry (p, q) has
    variance [S_pp Q_qq + S_qq Q_pp + 2 S_pq Q_pq + Q_pq^2 + Q_pp Q_qq] / (N - 1) with S = (I - KH) B (I - KH)^T,
    Q = K R K^T (Gaussian cross term plus Wishart term). Every entry is within 4.5 of its standard deviations
    of the Kalman filter (uncentred perturbations; with centred ones the mean is exact to round-off)."""
    rng = np.random.default_rng(RNG_SEED)
    n, m, N = 3, 2, 10_000
    mu, B, H, r, y = random_problem(rng, n, m)
    xa, Pa, K = kalman(mu, B, H, r, y)
    E = exact_ensemble(mu, B, N, rng)
    noise = rng.standard_normal((1, N, m))
    res = enkf.stochastic_enkf(E[None], (E @ H.T)[None], y[None], r[None], noise, center_noise=False)
    Ea = res.ensemble[0]
    Q = K @ np.diag(r) @ K.T
    A = np.eye(n) - K @ H
    S = A @ B @ A.T
    sd_mean = np.sqrt(np.diag(Q) / N)
    assert np.all(np.abs(Ea.mean(axis=0) - xa) < 4.5 * sd_mean), (Ea.mean(axis=0) - xa) / sd_mean
    dS, dQ = np.diag(S), np.diag(Q)
    var_cov = (np.outer(dS, dQ) + np.outer(dQ, dS) + 2 * S * Q + Q ** 2 + np.outer(dQ, dQ)) / (N - 1)
    z = (np.cov(Ea.T, ddof=1) - Pa) / np.sqrt(var_cov)
    assert np.all(np.abs(z) < 4.5), z
    centred = enkf.stochastic_enkf(E[None], (E @ H.T)[None], y[None], r[None], noise, center_noise=True)
    np.testing.assert_allclose(centred.ensemble[0].mean(axis=0), xa, atol=1e-12)


def test_stochastic_enkf_error_shrinks_like_one_over_sqrt_n():
    """With randomly sampled prior ensembles (the usual situation), the mean squared error of the EnKF analysis
    mean against the Kalman filter over 60 independent replicates (one batched call) falls by a factor 10 from
    N = 1000 to N = 10^4 (the 1/N of a consistent estimator): the ratio lies within exp(+-4 s) of 10, s = 0.26
    the relative standard deviation of a ratio of two mean squares of 60 replicates (sqrt(2 * 2/60))."""
    rng = np.random.default_rng(RNG_SEED + 1)
    n, m, nrep = 3, 2, 60
    mu, B, H, r, y = random_problem(rng, n, m)
    xa, _, _ = kalman(mu, B, H, r, y)
    ms = {}
    for N in (1000, 10_000):
        E = mu + rng.standard_normal((nrep, N, n)) @ np.linalg.cholesky(B).T
        res = enkf.stochastic_enkf(E, E @ H.T, np.broadcast_to(y, (nrep, m)), np.broadcast_to(r, (nrep, m)),
                                   rng.standard_normal((nrep, N, m)))
        ms[N] = np.mean((res.ensemble.mean(axis=1) - xa) ** 2)
    ratio = ms[1000] / ms[10_000]
    s = np.sqrt(4.0 / nrep)
    assert 10 * np.exp(-4 * s) < ratio < 10 * np.exp(4 * s), ratio


def test_observation_noise_is_keyed():
    """The stochastic EnKF's perturbations are a function of (seed, time, member, observation id) only: the same
    numbers for any subset or order of observations (any rank split), different at another time; they are
    standard normal (mean and variance within 5 standard errors over 10^5 draws)."""
    ids = np.arange(1000, 6000)
    a = enkf.observation_noise(7, 86400, ids, 20)
    perm = np.random.default_rng(0).permutation(ids.size)[:777]
    np.testing.assert_array_equal(enkf.observation_noise(7, 86400, ids[perm], 20), a[perm])
    b = enkf.observation_noise(7, 2 * 86400, ids, 20)
    assert not np.any(a == b)
    n = a.size
    assert abs(a.mean()) < 5 / np.sqrt(n) and abs(a.var() - 1) < 5 * np.sqrt(2 / n)


# ---------------------------------------------------------------------------------------------------------
# LETKF
# ---------------------------------------------------------------------------------------------------------

def _columns_problem(rng, ncol=30, N=12, n=3, nobs=45):
    """Columns scattered over a region, observations at random points, a nonlinear operator ensemble HE."""
    clat = rng.uniform(30, 45, ncol)
    clon = rng.uniform(100, 120, ncol)
    E = rng.standard_normal((ncol, N, n)) * 0.05 + 0.3
    olat = rng.uniform(30, 45, nobs)
    olon = rng.uniform(100, 120, nobs)
    owner = rng.integers(0, ncol, nobs)
    HE = np.tanh(E[owner, :, 0] + 0.3 * E[owner, :, 1] ** 2)  # (nobs, N)
    y = HE.mean(axis=1) + rng.standard_normal(nobs) * 0.05
    r = rng.uniform(0.02, 0.05, nobs) ** 2
    return clat, clon, E, olat, olon, owner, HE, y, r


def test_letkf_with_infinite_radius_is_the_etkf():
    """With an infinite localisation radius every column uses every observation with weight 1, and the LETKF
    equals the global ETKF of the whole state (all columns stacked) to round-off."""
    rng = np.random.default_rng(RNG_SEED)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng)
    ncol, N, n = E.shape
    local = enkf.local_observations(clat, clon, olat, olon, np.inf)
    la = enkf.letkf(E, HE, y, r, local, inflation=1.3)
    Eg = np.swapaxes(E, 0, 1).reshape(1, N, ncol * n)
    ga = enkf.etkf(Eg, HE.T[None], y[None], r[None], inflation=1.3)
    np.testing.assert_allclose(np.swapaxes(la.ensemble, 0, 1).reshape(N, ncol * n), ga.ensemble[0], atol=1e-13,
                               rtol=1e-12)


def test_letkf_with_radius_zero_is_independent_column_filters():
    """localization_km = 0 gives, for every column, the ETKF of that column alone with exactly its own
    observations (LIS / GEOSldas 1-D filter); columns without observations are unchanged."""
    rng = np.random.default_rng(RNG_SEED)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng)
    local = enkf.local_observations(clat, clon, olat, olon, 0.0, column_id=np.arange(E.shape[0]),
                                    obs_column=owner)
    la = enkf.letkf(E, HE, y, r, local)
    for c in range(E.shape[0]):
        mine = owner == c
        if not mine.any():
            np.testing.assert_array_equal(la.ensemble[c], E[c])
            continue
        ref = enkf.etkf(E[c][None], HE[mine].T[None], y[mine][None], r[mine][None])
        np.testing.assert_allclose(la.ensemble[c], ref.ensemble[0], atol=1e-14, rtol=1e-12)


def test_letkf_is_the_etkf_with_gaspari_cohn_r_localisation():
    """For a finite radius, each column's LETKF analysis equals the ETKF of that column with every observation
    and the observation error variances divided by the Gaspari-Cohn weight of the brute-force great-circle
    distance (R-localisation; weight 0 = not used)."""
    rng = np.random.default_rng(RNG_SEED + 3)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng)
    c = 400.0
    local = enkf.local_observations(clat, clon, olat, olon, c)
    assert 0 < local.n_obs.min() and local.n_obs.max() < olat.size
    la = enkf.letkf(E, HE, y, r, local)
    wts = _brute_force_weights(clat, clon, olat, olon, c)
    for k in range(E.shape[0]):
        ref = enkf.etkf(E[k][None], HE.T[None], y[None], r[None], weight=wts[k][None])
        np.testing.assert_allclose(la.ensemble[k], ref.ensemble[0], atol=1e-14, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Inflation
# ---------------------------------------------------------------------------------------------------------

def test_multiplicative_inflation_in_the_etkf_equals_inflating_the_prior():
    """Inflation inside the ETKF (Hunt's (N - 1)/rho) gives the same analysis as the ETKF of the explicitly
    inflated prior ensemble (anomalies of E and HE times sqrt(rho)), per batch element."""
    rng = np.random.default_rng(RNG_SEED)
    E = rng.standard_normal((4, 10, 3))
    H = rng.standard_normal((3, 5))
    HE = E @ H
    y = rng.standard_normal((4, 5))
    r = np.full((4, 5), 0.5)
    rho = np.array([1.0, 1.2, 2.0, 0.7])
    a = enkf.etkf(E, HE, y, r, inflation=rho)
    b = enkf.etkf(enkf.inflate(E, rho), enkf.inflate(HE, rho), y, r)
    np.testing.assert_allclose(a.ensemble, b.ensemble, atol=1e-13)
    np.testing.assert_allclose(enkf.inflate(E, 4.0).std(axis=1), 2 * E.std(axis=1), rtol=1e-13)


def test_rtps_and_rtpp_limits():
    """RTPS with alpha = 1 restores the prior spread of every component exactly (and keeps the analysis mean and
    the analysis correlation structure); RTPP with alpha = 1 returns the prior anomalies around the analysis
    mean; alpha = 0 returns the analysis for both; RTPP alpha = 0.5 averages the anomalies."""
    rng = np.random.default_rng(RNG_SEED)
    Eb = rng.standard_normal((6, 15, 4))
    HE = Eb[:, :, :2] ** 2
    Ea = enkf.etkf(Eb, HE, np.ones((6, 2)), np.full((6, 2), 0.1)).ensemble
    s = enkf.rtps(Ea, Eb, 1.0)
    np.testing.assert_allclose(s.std(axis=1, ddof=1), Eb.std(axis=1, ddof=1), rtol=1e-13)
    np.testing.assert_allclose(s.mean(axis=1), Ea.mean(axis=1), atol=1e-14)
    corr = lambda e: np.array([np.corrcoef(x.T) for x in e])  # noqa: E731
    np.testing.assert_allclose(corr(s), corr(Ea), atol=1e-12)
    p = enkf.rtpp(Ea, Eb, 1.0)
    np.testing.assert_allclose(p - p.mean(axis=1, keepdims=True), Eb - Eb.mean(axis=1, keepdims=True), atol=1e-14)
    np.testing.assert_allclose(p.mean(axis=1), Ea.mean(axis=1), atol=1e-14)
    np.testing.assert_allclose(enkf.rtps(Ea, Eb, 0.0), Ea, atol=1e-14)
    np.testing.assert_allclose(enkf.rtpp(Ea, Eb, 0.0), Ea, atol=1e-14)
    half = enkf.rtpp(Ea, Eb, 0.5)
    Xa, Xb = Ea - Ea.mean(1, keepdims=True), Eb - Eb.mean(1, keepdims=True)
    np.testing.assert_allclose(half - half.mean(1, keepdims=True), 0.5 * (Xa + Xb), atol=1e-14)


def _misspecified_b_problem(rng, nb, N, n, m, true_factor):
    """nb independent local problems whose ensembles have covariance B_e (random, exact) but whose true
    background error has covariance true_factor * B_e, a random linear operator, R-localisation weights in
    [0.2, 1]; returns the anomalies Y (nb, N, m), innovations d, variances r and weights (nb, m)."""
    A = rng.standard_normal((nb, n, n))
    B = A @ np.swapaxes(A, 1, 2) / n + 0.2 * np.eye(n)
    Z = rng.standard_normal((nb, N, n))
    Z -= Z.mean(axis=1, keepdims=True)
    chol = np.linalg.cholesky(np.swapaxes(Z, 1, 2) @ Z / (N - 1))
    Z = np.swapaxes(np.linalg.solve(chol, np.swapaxes(Z, 1, 2)), 1, 2)  # exactly unit sample covariance
    LB = np.linalg.cholesky(B)
    X = Z @ np.swapaxes(LB, 1, 2)  # anomalies with covariance B
    H = rng.standard_normal((nb, m, n))
    Y = X @ np.swapaxes(H, 1, 2)
    r = rng.uniform(0.5, 1.5, (nb, m))
    eb = np.sqrt(true_factor) * np.einsum('bij,bj->bi', LB, rng.standard_normal((nb, n)))
    d = -np.einsum('bmi,bi->bm', H, eb) + np.sqrt(r) * rng.standard_normal((nb, m))
    weight = rng.uniform(0.2, 1.0, (nb, m))  # R-localisation weights: the estimator must stay unbiased
    return Y, d, r, weight


@pytest.mark.parametrize("true_factor", [1.0, 2.5])
def test_inflation_observation_is_unbiased_with_the_stated_variance(true_factor):
    """On 20000 independent local problems whose ensemble B is 1/true_factor of the true background error
    covariance, the innovation-based observation of the inflation (Desroziers / Miyoshi 2011, localised) is
    unbiased: the mean of the standardised errors z = (rho_o - true) / sqrt(var_o) is within 4.5 standard errors
    (sqrt(var(z) / 20000)) of 0, and their variance is within 5 % (about 4.5 standard errors of a sample variance
    of this quadratic form) of 1, which checks the exact variance formula used to weight it."""
    rng = np.random.default_rng(RNG_SEED + int(10 * true_factor))
    nb = 20000
    Y, d, r, weight = _misspecified_b_problem(rng, nb, N=16, n=6, m=12, true_factor=true_factor)
    rho_o, var_o = enkf.inflation_observation(Y, d, r, weight, true_factor)
    z = (rho_o - true_factor) / np.sqrt(var_o)
    assert abs(z.mean()) < 4.5 * np.sqrt(z.var() / nb), z.mean()
    se_var = np.sqrt((np.mean((z - z.mean()) ** 4) - z.var() ** 2) / nb)
    assert abs(z.var() - 1.0) < max(0.05, 4.5 * se_var), (z.var(), se_var)


def test_adaptive_inflation_recovers_a_known_factor():
    """Cycling the Gaussian update (prior_std 0.2, bounds out of the way) from rho = 1 on fresh draws of 200 local
    problems whose ensemble B is true_factor times too small (2.5, and 1 = a correct B): after 300 cycles (the
    transient has decayed below 1e-3) the mean of rho over the problems and the last 100 cycles is true_factor
    within 5 standard deviations of that average (per-cycle spread / sqrt(200), conservative since successive
    cycles are positively correlated) plus the known second-order bias of the scheme: rho_o is unbiased, but its
    weight alpha = v_b / (v_b + v_o(rho_b)) falls as rho_b rises, so the stationary mean exceeds the truth by,
    to first order, -Var(rho) alpha'/alpha <= Var(rho) d ln v_o / d rho <= 2 Var(rho) / true_factor (v_o is a
    quadratic in rho with non-negative coefficients), Var(rho) the measured stationary variance across
    problems (operational prior_std ~0.05 makes it negligible). Bounds clip the update."""
    for true_factor in (2.5, 1.0):
        rng = np.random.default_rng(RNG_SEED + 7)
        nb = 200
        settings = enkf.AdaptiveInflation(prior_std=0.2, lower=0.0, upper=100.0)
        rho = np.ones(nb)
        history = []
        for cycle in range(300):
            Y, d, r, weight = _misspecified_b_problem(rng, nb, N=20, n=12, m=40, true_factor=true_factor)
            rho_o, var_o = enkf.inflation_observation(Y, d, r, weight, rho)
            rho, _ = enkf.update_inflation(rho, rho_o, var_o, settings)
            history.append(rho.copy())
        last = np.array(history[-100:])
        sd = last.std() / np.sqrt(nb)
        bias_bound = 2.0 * last.var() / true_factor
        assert abs(last.mean() - true_factor) < 5 * sd + bias_bound, (last.mean(), sd, bias_bound)
    clipped, _ = enkf.update_inflation(np.array([1.0, 1.0]), np.array([0.2, 50.0]), np.array([0.01, 0.01]),
                                       enkf.AdaptiveInflation(prior_std=1.0, lower=1.0, upper=3.0))
    np.testing.assert_array_equal(clipped, [1.0, 3.0])


def test_letkf_adaptive_inflation_uses_and_returns_the_updated_factor():
    """With adaptive inflation the LETKF updates each column's rho from its local innovations with exactly
    inflation_observation + update_inflation, uses the updated rho in the same analysis (equal to a LETKF with
    that rho given), and leaves rho unchanged where a column has no observation."""
    rng = np.random.default_rng(RNG_SEED)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng)
    clat[0], clon[0] = -60.0, 0.0  # far from every observation
    local = enkf.local_observations(clat, clon, olat, olon, 300.0)
    settings = enkf.AdaptiveInflation(prior_std=0.1)
    rho_b = np.full(E.shape[0], 1.1)
    a = enkf.letkf(E, HE, y, r, local, inflation=rho_b, adaptive=settings)
    Y = np.swapaxes((HE - HE.mean(1, keepdims=True))[local.index], 1, 2)
    rho_o, var_o = enkf.inflation_observation(Y, (y - HE.mean(1))[local.index], r[local.index], local.weight, rho_b)
    expect, _ = enkf.update_inflation(rho_b, rho_o, var_o, settings)
    np.testing.assert_allclose(a.inflation, expect, rtol=1e-14)
    assert a.inflation[0] == 1.1 and local.n_obs[0] == 0
    b = enkf.letkf(E, HE, y, r, local, inflation=expect)
    np.testing.assert_allclose(a.ensemble, b.ensemble, atol=1e-15)


def test_bad_inputs_are_refused():
    """Fewer than 2 members, non-positive observation error variances and mismatched shapes raise ValueError
    naming the problem."""
    E = np.zeros((1, 1, 2))
    with pytest.raises(ValueError, match="at least 2 members"):
        enkf.etkf(E, np.zeros((1, 1, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    E = np.random.default_rng(0).standard_normal((1, 4, 2))
    with pytest.raises(ValueError, match="variances must be positive"):
        enkf.etkf(E, E[:, :, :1], np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="agree"):
        enkf.etkf(E, np.zeros((1, 3, 1)), np.zeros((1, 1)), np.ones((1, 1)))
    with pytest.raises(ValueError, match="localization_km"):
        enkf.local_observations([0], [0], [0], [0], -1.0)


# ---------------------------------------------------------------------------------------------------------
# DAPPER cross-check (optional dependency: pip install "dapper>=1.7,<2", the crosscheck extra)
# ---------------------------------------------------------------------------------------------------------

def _dapper():
    try:
        import dapper.da_methods.ensemble as de
        from dapper.tools.localization import dist2coeff
        from dapper.tools.matrices import CovMat
        from dapper.tools.randvars import GaussRV
    except ImportError:
        pytest.skip("DAPPER is not installed (optional cross-check: pip install 'dapper>=1.7,<2', "
                    "the 'crosscheck' extra)")
    return de, CovMat, GaussRV, dist2coeff


def test_etkf_and_stochastic_enkf_match_dapper():
    """Same inputs, same analysis to round-off: our ETKF equals DAPPER's EnKF('Sqrt') (its eigen- and SVD
    implementations of the symmetric square root), and our stochastic EnKF equals DAPPER's EnKF('PertObs')
    given the same observation perturbations (DAPPER subtracts them, we add them, and its centring rescales
    them by sqrt(N / (N - 1)): passed with the opposite sign and that factor removed)."""
    de, CovMat, GaussRV, _ = _dapper()
    rng = np.random.default_rng(RNG_SEED)
    for N, n, m in ((10, 4, 6), (30, 5, 3), (5, 3, 8)):  # observation- and ensemble-space branches
        E = rng.standard_normal((N, n))
        HE = np.sin(E[:, :m % n + 1]) @ rng.standard_normal((m % n + 1, m))
        y = rng.standard_normal(m)
        r = rng.uniform(0.2, 1.0, m)
        hnoise = GaussRV(C=CovMat(r, "diag"))
        ours = enkf.etkf(E[None], HE[None], y[None], r[None]).ensemble[0]
        for upd in ("Sqrt", "Sqrt svd"):
            theirs = de.EnKF_analysis(E.copy(), HE.copy(), hnoise, y, upd)
            np.testing.assert_allclose(ours, theirs, atol=1e-12, rtol=1e-12)
        noise = rng.standard_normal((N, m))

        class FixedNoise:
            C = CovMat(r, "diag")

            def sample(self, n_draws):
                assert n_draws == N
                return -noise * np.sqrt(r) * np.sqrt((N - 1) / N)  # undo the rescaling of DAPPER's mean0

        theirs = de.EnKF_analysis(E.copy(), HE.copy(), FixedNoise(), y, "PertObs")
        ours = enkf.stochastic_enkf(E[None], HE[None], y[None], r[None], noise[None]).ensemble[0]
        np.testing.assert_allclose(ours, theirs, atol=1e-12, rtol=1e-12)


def test_letkf_matches_dapper_local_analyses():
    """Our LETKF equals DAPPER's local_analyses (the core of its LETKF) to round-off when DAPPER is given the
    same neighbourhoods and Gaspari-Cohn tapering, and our Gaspari-Cohn function equals DAPPER's dist2coeff
    'GC' (whose radius is our half-width / 1.82)."""
    de, CovMat, GaussRV, dist2coeff = _dapper()
    rng = np.random.default_rng(RNG_SEED + 5)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng)
    ncol, N, n = E.shape
    c = 500.0
    local = enkf.local_observations(clat, clon, olat, olon, c)
    ours = enkf.letkf(E, HE, y, r, local).ensemble
    Eflat = np.swapaxes(E, 0, 1).reshape(N, ncol * n).copy()
    batches = [np.arange(k * n, (k + 1) * n) for k in range(ncol)]

    def taperer(ii):
        k = ii[0] // n
        use = local.weight[k] > 0
        return local.index[k][use], local.weight[k][use]

    theirs, _ = de.local_analyses(Eflat, HE.T.copy(), CovMat(r, "diag"), y, batches, taperer)
    np.testing.assert_allclose(np.swapaxes(ours, 0, 1).reshape(N, ncol * n), theirs, atol=1e-13, rtol=1e-12)
    d = np.linspace(0, 3 * c, 301)
    np.testing.assert_allclose(enkf.gaspari_cohn(d, c), dist2coeff(d, c / 1.82, "GC"), atol=1e-12)


def test_letkf_of_a_subset_of_columns_is_bitwise_the_same():
    """A rank analysing only some of the columns (with the same observations: its own and its halo's) gets
    bit-for-bit the rows of the full analysis, whatever the subset and the batch size: columns are solved in
    batches of equal observation count without padding, so no column's numbers depend on its batch mates."""
    rng = np.random.default_rng(RNG_SEED + 11)
    clat, clon, E, olat, olon, owner, HE, y, r = _columns_problem(rng, ncol=60, nobs=90)
    local = enkf.local_observations(clat, clon, olat, olon, 350.0)
    assert np.unique(local.n_obs).size > 3
    full = enkf.letkf(E, HE, y, r, local, inflation=1.1, adaptive=enkf.AdaptiveInflation())
    for sub, chunk in ((np.arange(0, 60, 3), 2048), (np.arange(17, 41), 5), (np.array([59, 2, 30]), 1)):
        part = enkf.local_observations(clat[sub], clon[sub], olat, olon, 350.0)
        res = enkf.letkf(E[sub], HE, y, r, part, inflation=1.1, adaptive=enkf.AdaptiveInflation(), chunk=chunk)
        np.testing.assert_array_equal(res.ensemble, full.ensemble[sub])
        np.testing.assert_array_equal(res.inflation, full.inflation[sub])


def test_letkf_refuses_unpacked_neighbourhoods():
    """Hand-made neighbourhoods with padding before a used observation are refused (the batched solve takes the
    first n_obs entries of every row)."""
    E = np.random.default_rng(0).standard_normal((1, 4, 2))
    local = enkf.LocalObservations(np.array([[0, 1]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="padding"):
        enkf.letkf(E, np.zeros((2, 4)), np.zeros(2), np.ones(2), local)
