"""The ensemble Kalman filter family as pure functions on batches: stochastic EnKF, ETKF, LETKF, inflation.

Notation (Evensen 2003; Hunt, Kostelich & Szunyogh 2007, "Hunt"; Sakov & Oke 2008). For one batch element
(a column or a local domain) with ``N`` members, ``n`` control-vector components and ``m`` observations:

* ``E`` (N x n): ensemble, one member per row; ``xb = mean(E)``, anomalies ``X = E - xb`` (rows sum to 0);
  ``B = X^T X / (N - 1)`` is the ensemble's background error covariance.
* ``HE`` (N x m): the model equivalents of the observations for each member, ``Hop(E_i)``. Any observation
  operator plugs in this way (linear or not, with or without the model forecast to the observation time);
  ``yb = mean(HE)``, ``Y = HE - yb``, and ``Y^T Y / (N - 1)`` estimates ``H B H^T``.
* ``y`` (m): observations, ``d = y - yb`` the innovation; ``R = diag(r)`` (m): observation error variances.
* ``rho``: multiplicative inflation of the background covariance (``B -> rho B``, anomalies times
  ``sqrt(rho)``).

Every analysis is written in the N x N ensemble space, so its cost does not depend on m, observations can be
padded (``weight = 0``), and R-localisation (``R^-1 -> diag(loc) R^-1``) only reweights rows:

    A       = (N - 1) / rho I + Y^T R^-1 Y                        (N x N, symmetric positive definite)
    P~a     = A^-1                                                 (analysis covariance in ensemble space)
    K       = X^T P~a Y^T R^-1       = B H^T (H B H^T + R)^-1      (Kalman gain, push-through identity)

* **Stochastic EnKF** (Burgers et al. 1998; Evensen 2003): every member assimilates perturbed observations
  ``y + eps_i``, ``eps_i ~ N(0, R)``: ``E_i^a = E_i + K (y + eps_i - HE_i)`` (perturbations centred over the
  members by default, so the analysis mean is exactly ``xb + K d``).
* **ETKF** (Bishop et al. 2001; Hunt eqs. 20-24; the symmetric square root of Wang et al. 2004):
  ``wa = P~a Y^T R^-1 d``, ``W = [(N - 1) P~a]^(1/2)`` (symmetric), ``E^a = xb + (W + 1 wa^T) X`` (row form of
  Hunt's ``X^a = X W``, ``x^a = xb + X wa``). In the linear-Gaussian case with ``B = X^T X / (N - 1)`` the mean
  and the covariance of ``E^a`` are exactly the Kalman filter's.
* **LETKF** (Hunt section 2.3): the ETKF solved independently for every column, with the observations within
  the support of the Gaspari-Cohn function of the great-circle distance, their ``R^-1`` multiplied by it
  (R-localisation). ``localization_km = c`` is the Gaspari-Cohn half-width: weight 1 at 0, 5/24 at ``c``,
  0 from ``2 c``; ``c = 0`` is the column-local (1-D) filter of LIS and GEOSldas: each column uses exactly the
  observations assigned to it, with weight 1; ``c = inf`` uses every observation with weight 1 (the ETKF).

Inflation, applied to the anomalies (the mean is untouched):

* multiplicative, ``rho`` above (Anderson & Anderson 1999);
* RTPP, relaxation to prior perturbations (Zhang et al. 2004): ``X^a <- (1 - alpha) X^a + alpha X^b``;
* RTPS, relaxation to prior spread (Whitaker & Hamill 2012): ``X^a <- X^a (alpha sigma_b / sigma_a + 1 - alpha)``
  per component;
* adaptive, spatially varying, from innovation statistics (Desroziers et al. 2005 / Li et al. 2009 in the local
  Gaussian form of Miyoshi 2011): see :func:`inflation_observation` and :func:`update_inflation`.

Arrays carry the batch index first: ``E`` (nb, N, n), ``HE`` (nb, N, m), ``y`` / ``obs_var`` / ``weight``
(nb, m). Nothing loops over the batch in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..domain import EARTH_RADIUS_M

EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000.0

#: stream id of the observation perturbations of the stochastic EnKF in the keyed random numbers
OBS_PERTURBATION_STREAM = 201

__all__ = [
    'EnsembleAnalysis', 'LocalObservations', 'AdaptiveInflation', 'gaspari_cohn', 'unit_vectors',
    'great_circle_km', 'local_observations', 'observation_noise', 'inflate', 'rtpp', 'rtps', 'stochastic_enkf',
    'etkf', 'letkf', 'inflation_observation', 'update_inflation', 'EARTH_RADIUS_KM', 'OBS_PERTURBATION_STREAM',
]


@dataclass
class EnsembleAnalysis:
    """Result of an ensemble analysis for a batch of nb columns or local domains."""

    ensemble: np.ndarray  # (nb, N, n) analysis ensemble
    mean_increment: np.ndarray  # (nb, n) analysis mean minus background mean
    n_obs: np.ndarray  # (nb,) observations with a non-zero weight
    inflation: np.ndarray  # (nb,) multiplicative inflation used (after the adaptive update, if any)
    inflation_var: np.ndarray | None = None  # (nb,) variance of the adaptive inflation estimate


# ---------------------------------------------------------------------------------------------------------
# Localisation
# ---------------------------------------------------------------------------------------------------------

def gaspari_cohn(distance, half_width):
    """Gaspari & Cohn (1999, eq. 4.10) fifth-order piecewise rational correlation with compact support.

    With ``z = |distance| / half_width``::

        z <= 1:      1 - 5/3 z^2 + 5/8 z^3 + 1/2 z^4 - 1/4 z^5
        1 < z < 2:   4 - 5 z + 5/3 z^2 + 5/8 z^3 - 1/2 z^4 + 1/12 z^5 - 2 / (3 z)
        z >= 2:      0

    so it is 1 at 0, 5/24 at the half-width and 0 from twice the half-width. ``half_width = inf`` gives 1
    everywhere; ``half_width = 0`` gives 1 at distance 0 and 0 elsewhere.
    """
    d = np.abs(np.asarray(distance, dtype=float))
    c = float(half_width)
    if c < 0:
        raise ValueError(f'Gaspari-Cohn half-width must be >= 0, got {half_width}')
    if np.isinf(c):
        return np.ones_like(d)
    if c == 0:
        return np.where(d == 0, 1.0, 0.0)
    z = d / c
    inner = (((-0.25 * z + 0.5) * z + 0.625) * z - 5.0 / 3.0) * z * z + 1.0
    zs = np.where(z > 1.0, z, 1.0)  # no division by zero in the unused branch
    outer = ((((z / 12.0 - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z - 5.0) * z + 4.0 - 2.0 / (3.0 * zs)
    return np.where(z <= 1.0, inner, np.where(z < 2.0, np.maximum(outer, 0.0), 0.0))


def unit_vectors(lat, lon):
    """Points on the unit sphere (..., 3) from latitude and longitude in degrees."""
    la = np.deg2rad(np.asarray(lat, dtype=float))
    lo = np.deg2rad(np.asarray(lon, dtype=float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _chord_to_km(chord):
    return EARTH_RADIUS_KM * 2.0 * np.arcsin(np.clip(0.5 * np.asarray(chord), 0.0, 1.0))


def great_circle_km(lat1, lon1, lat2, lon2):
    """Great-circle distance (km) on a sphere of the Earth's mean radius (from the chord; exact)."""
    return _chord_to_km(np.linalg.norm(unit_vectors(lat1, lon1) - unit_vectors(lat2, lon2), axis=-1))


@dataclass
class LocalObservations:
    """The observations each column (local domain) uses: ``index`` (ncol, k) into the observation arrays and
    their localisation ``weight`` (ncol, k) in (0, 1]; padding entries have weight 0 (and index 0) and come after
    the used ones in every row (:func:`letkf` relies on it)."""

    index: np.ndarray
    weight: np.ndarray

    @property
    def n_obs(self):
        return np.count_nonzero(self.weight > 0, axis=1)


def local_observations(column_lat, column_lon, obs_lat, obs_lon, localization_km, *, column_id=None,
                       obs_column=None) -> LocalObservations:
    """Which observations every column uses in the LETKF, and with which Gaspari-Cohn weight.

    ``localization_km`` > 0: the observations within the support (twice the half-width) of the column's centre
    by great-circle distance, found with a k-d tree on unit-sphere coordinates (the chord is monotonic in the
    great-circle distance), weighted by :func:`gaspari_cohn`. ``localization_km`` = 0: the column-local filter,
    the observations whose ``obs_column`` equals the column's ``column_id`` (e.g. global column indices), each
    with weight 1. ``inf``: every observation, weight 1.
    """
    c = float(localization_km)
    if c < 0 or np.isnan(c):
        raise ValueError(f'localization_km must be >= 0, got {localization_km}')
    ncol = np.size(column_lat)
    nobs = np.size(obs_lat)
    if c == 0:
        if column_id is None or obs_column is None:
            raise ValueError('localization_km = 0 (column-local filter) needs column_id and obs_column')
        column_id = np.asarray(column_id).ravel()
        obs_column = np.asarray(obs_column).ravel()
        order = np.argsort(obs_column, kind='stable')
        lo = np.searchsorted(obs_column[order], column_id, side='left')
        hi = np.searchsorted(obs_column[order], column_id, side='right')
        count = hi - lo
        k = int(count.max()) if ncol else 0
        slot = np.arange(k)[None, :]
        valid = slot < count[:, None]
        index = np.where(valid, order[np.minimum(lo[:, None] + slot, max(nobs - 1, 0))] if nobs else 0, 0)
        return LocalObservations(index.astype(np.int64), valid.astype(float))
    if nobs == 0:
        return LocalObservations(np.zeros((ncol, 0), np.int64), np.zeros((ncol, 0)))
    from scipy.spatial import cKDTree

    xo = unit_vectors(np.ravel(obs_lat), np.ravel(obs_lon))
    xc = unit_vectors(np.ravel(column_lat), np.ravel(column_lon))
    angle = min(2.0 * c / EARTH_RADIUS_KM, np.pi) if np.isfinite(c) else np.pi
    chord = 2.0 * np.sin(0.5 * angle) * (1.0 + 1e-12) + (1e-12 if not np.isfinite(c) else 0.0)
    # every (column, observation) pair within the support, from two k-d trees in C; then packed row by row
    pairs = cKDTree(xc).sparse_distance_matrix(cKDTree(xo), chord, output_type='ndarray')
    col, obs, dist_km = pairs['i'].astype(np.int64), pairs['j'].astype(np.int64), _chord_to_km(pairs['v'])
    weight = gaspari_cohn(dist_km, c)
    keep = weight > 0
    col, obs, weight = col[keep], obs[keep], weight[keep]
    order = np.lexsort((obs, col))  # by column, then by observation: independent of the tree's traversal
    col, obs, weight = col[order], obs[order], weight[order]
    count = np.bincount(col, minlength=ncol)
    k = int(count.max()) if count.size else 0
    slot = np.arange(col.size) - np.repeat(np.cumsum(count) - count, count)
    index = np.zeros((ncol, k), np.int64)
    wts = np.zeros((ncol, k))
    index[col, slot] = obs
    wts[col, slot] = weight
    return LocalObservations(index, wts)


# ---------------------------------------------------------------------------------------------------------
# Observation perturbations (stochastic EnKF)
# ---------------------------------------------------------------------------------------------------------

def observation_noise(seed: int, time_key: int, obs_id, nmem: int):
    """Standard normal perturbations (len(obs_id), nmem), a pure function of (seed, time, member, observation
    id) through the keyed random numbers of :mod:`colmda.forcing.perturb`: the same for any MPI rank count,
    any order of the observations and any restart. ``obs_id`` must identify an observation globally (e.g. its
    row in the observation file); ``time_key`` e.g. the analysis time in seconds since 1970."""
    from ..forcing.perturb import keyed_normal

    obs_id = np.asarray(obs_id, dtype=np.int64)
    member = np.arange(nmem, dtype=np.int64)
    return keyed_normal(int(seed), OBS_PERTURBATION_STREAM, int(time_key), member[None, :], obs_id[..., None])


# ---------------------------------------------------------------------------------------------------------
# Inflation
# ---------------------------------------------------------------------------------------------------------

def _per_batch(value, nb):
    return np.broadcast_to(np.asarray(value, dtype=float), (nb,))


def inflate(E, inflation):
    """Multiplicative inflation: anomalies times ``sqrt(inflation)`` (``inflation`` multiplies the covariance;
    scalar or one value per batch element), mean unchanged. ``E`` (nb, N, n)."""
    E = np.asarray(E, dtype=float)
    mean = E.mean(axis=1, keepdims=True)
    return mean + np.sqrt(_per_batch(inflation, E.shape[0]))[:, None, None] * (E - mean)


def rtpp(Ea, Eb, alpha):
    """Relaxation to prior perturbations (Zhang et al. 2004): analysis anomalies ``(1 - alpha) X^a + alpha X^b``
    around the analysis mean; ``alpha = 1`` returns the prior anomalies. ``Ea``, ``Eb`` (nb, N, n)."""
    Ea = np.asarray(Ea, dtype=float)
    Eb = np.asarray(Eb, dtype=float)
    mean = Ea.mean(axis=1, keepdims=True)
    return mean + (1.0 - alpha) * (Ea - mean) + alpha * (Eb - Eb.mean(axis=1, keepdims=True))


def rtps(Ea, Eb, alpha):
    """Relaxation to prior spread (Whitaker & Hamill 2012): analysis anomalies of every component multiplied by
    ``alpha (sigma_b / sigma_a) + 1 - alpha`` (standard deviations over the members); ``alpha = 1`` restores the
    prior spread exactly. Components whose analysis spread is zero are left unchanged."""
    Ea = np.asarray(Ea, dtype=float)
    Eb = np.asarray(Eb, dtype=float)
    mean = Ea.mean(axis=1, keepdims=True)
    sa = Ea.std(axis=1, ddof=1, keepdims=True)
    sb = Eb.std(axis=1, ddof=1, keepdims=True)
    factor = np.where(sa > 0, alpha * sb / np.where(sa > 0, sa, 1.0) + 1.0 - alpha, 1.0)
    return mean + factor * (Ea - mean)


@dataclass(frozen=True)
class AdaptiveInflation:
    """Settings of the adaptive multiplicative inflation (Miyoshi 2011 Gaussian update of a spatially varying
    ``rho``): the prior variance ``prior_std**2`` of ``rho`` (kept fixed from cycle to cycle, as Miyoshi does,
    so the estimate keeps adapting), and bounds ``[lower, upper]`` of ``rho``."""

    prior_std: float = 0.05
    lower: float = 1.0
    upper: float = 5.0


def inflation_observation(Y, d, obs_var, weight, inflation_b):
    """An observation of the inflation ``rho`` from the innovations of one batch element (Desroziers et al.
    2005; Li, Kalnay & Miyoshi 2009; Miyoshi 2011 eqs. 3-11, with R-localisation).

    With ``W = diag(loc) R^-1`` and the innovation covariance ``E[d d^T] = rho H B H^T + R`` of a correct
    ``R``, ``E[d^T W d] = rho tr(W H B H^T) + sum(loc)``, so

        rho_o = (d^T W d - sum(loc)) / tr(W H B H^T),       H B H^T = Y^T Y / (N - 1)

    is unbiased for the true ``rho``. Its variance for Gaussian ``d`` is exactly
    ``var_o = 2 tr((W S)^2) / tr(W H B H^T)^2`` with ``S = rho_b H B H^T + R`` (evaluated at the prior
    ``rho_b``), i.e. ``2 (rho_b^2 ||Y W Y^T||_F^2 / (N - 1)^2 + 2 rho_b sum(loc W diag(HBH^T)) + sum(loc^2))
    / tr(W HBH^T)^2`` (Miyoshi's ``2/p ((rho_b t + p) / t)^2`` when ``W H B H^T`` is a multiple of I).

    Y: (nb, N, m) model-equivalent anomalies; d, obs_var, weight: (nb, m); inflation_b: scalar or (nb,).
    Returns (rho_o, var_o), each (nb,); NaN and inf where no observation informs the batch element.
    """
    nb, N, m = Y.shape
    w = np.where(weight > 0, weight / np.where(weight > 0, obs_var, 1.0), 0.0)  # diag(W)
    hbh = np.einsum('bim,bim->bm', Y, Y) / (N - 1)
    t = np.einsum('bm,bm->b', w, hbh)
    q = np.einsum('bm,bm->b', w, d * d)
    p = weight.sum(axis=1)
    Yw = Y * w[:, None, :]
    YWY = Yw @ np.swapaxes(Y, 1, 2)  # Y W Y^T in the row form, (nb, N, N)
    rho_b = _per_batch(inflation_b, nb)
    tr_s2 = rho_b ** 2 * np.einsum('bij,bij->b', YWY, YWY) / (N - 1) ** 2 + 2.0 * rho_b * (weight * w * hbh).sum(1) \
        + (weight ** 2).sum(axis=1)
    ok = t > 0
    ts = np.where(ok, t, 1.0)
    return np.where(ok, (q - p) / ts, np.nan), np.where(ok, 2.0 * tr_s2 / ts ** 2, np.inf)


def update_inflation(inflation_b, rho_o, var_o, settings: AdaptiveInflation):
    """Gaussian (Kalman) update of the inflation ``rho`` with the observation ``rho_o`` of variance ``var_o``
    (Miyoshi 2011 eq. 12): ``rho_a = (rho_b var_o + rho_o var_b) / (var_b + var_o)``, ``var_b = prior_std^2``;
    unchanged where nothing was observed; clipped to ``[lower, upper]``. Returns ``(rho_a, var_a)``."""
    rho_b = np.asarray(inflation_b, dtype=float)
    vb = settings.prior_std ** 2
    informed = np.isfinite(var_o) & np.isfinite(rho_o)
    vo = np.where(informed, var_o, 1.0)
    rho_a = np.where(informed, (rho_b * vo + np.where(informed, rho_o, 0.0) * vb) / (vb + vo), rho_b)
    var_a = np.where(informed, vb * vo / (vb + vo), vb)
    return np.clip(rho_a, settings.lower, settings.upper), var_a


# ---------------------------------------------------------------------------------------------------------
# Analyses
# ---------------------------------------------------------------------------------------------------------

def _check(E, HE, y, obs_var, weight):
    E = np.asarray(E, dtype=float)
    HE = np.asarray(HE, dtype=float)
    if E.ndim != 3 or HE.ndim != 3 or HE.shape[:2] != E.shape[:2]:
        raise ValueError(f'E (nb, N, n) and HE (nb, N, m) must agree in nb and N, got {E.shape} and {HE.shape}')
    nb, N, _ = E.shape
    m = HE.shape[2]
    if N < 2:
        raise ValueError(f'an ensemble analysis needs at least 2 members, got {N}')
    y = np.broadcast_to(np.asarray(y, dtype=float), (nb, m))
    obs_var = np.broadcast_to(np.asarray(obs_var, dtype=float), (nb, m))
    weight = np.ones((nb, m)) if weight is None else np.broadcast_to(np.asarray(weight, dtype=float), (nb, m))
    if np.any(obs_var[weight > 0] <= 0):
        raise ValueError('observation error variances must be positive')
    return E, HE, y, obs_var, weight


def _ensemble_transform(Y, d, obs_var, weight, inflation):
    """Hunt's ensemble-space solution: returns the mean weights ``wa`` (nb, N) and the symmetric square root
    ``W`` (nb, N, N) for anomalies ``Y`` (nb, N, k), innovations ``d`` (nb, k), variances and weights (nb, k)
    and the inflation (nb,).

    With ``S = Y R^-1/2 diag(loc)^1/2`` (N x k) and ``c = (N - 1) / rho``, ``A = c I + S S^T``. When k >= N the
    N x N matrix is diagonalised. When k < N (the usual local domain) the k x k Gram matrix
    ``S^T S = V diag(lam) V^T`` is, and the same functions of A follow exactly from
    ``f(A) = f(c) I + S V diag((f(c + lam) - f(c)) / lam) V^T S^T`` with the divided differences written in a form
    that stays finite as lam -> 0: for ``f(a) = 1/a``, ``-1 / (c (c + lam))``; for ``f(a) = a^-1/2``,
    ``-1 / (sqrt(c) sqrt(c + lam) (sqrt(c) + sqrt(c + lam)))``.
    """
    nb, N, k = Y.shape
    w = np.where(weight > 0, weight / np.where(weight > 0, obs_var, 1.0), 0.0)  # diag(loc) R^-1
    c = (N - 1) / inflation  # (nb,)
    if k == 0:
        return np.zeros((nb, N)), np.sqrt((N - 1) / c)[:, None, None] * np.eye(N)
    sw = np.sqrt(w)
    S = Y * sw[:, None, :]
    g = np.einsum('bik,bk->bi', S, sw * d)  # Y^T R^-1 d
    if k >= N:
        A = S @ np.swapaxes(S, 1, 2)
        A[:, np.arange(N), np.arange(N)] += c[:, None]
        lam, V = np.linalg.eigh(A)
        wa = np.einsum('bij,bj->bi', V, np.einsum('bji,bj->bi', V, g) / lam)
        W = (V * np.sqrt((N - 1) / lam)[:, None, :]) @ np.swapaxes(V, 1, 2)
        return wa, W
    lam, V = np.linalg.eigh(np.swapaxes(S, 1, 2) @ S)
    lam = np.maximum(lam, 0.0)  # round-off below zero on a positive semi-definite matrix
    SV = S @ V  # (nb, N, k)
    cc = c[:, None]
    inv_dd = -1.0 / (cc * (cc + lam))
    sc, sl = np.sqrt(cc), np.sqrt(cc + lam)
    isqrt_dd = -1.0 / (sc * sl * (sc + sl))
    wa = g / c[:, None] + np.einsum('bik,bk->bi', SV, inv_dd * np.einsum('bik,bi->bk', SV, g))
    W = (SV * isqrt_dd[:, None, :]) @ np.swapaxes(SV, 1, 2)
    W[:, np.arange(N), np.arange(N)] += 1.0 / np.sqrt(c)[:, None]
    return wa, np.sqrt(N - 1.0) * W


def _apply_transform(X, xb, wa, W):
    return xb[:, None, :] + (W + wa[:, None, :]) @ X


def etkf(E, HE, y, obs_var, weight=None, inflation=1.0) -> EnsembleAnalysis:
    """Ensemble transform Kalman filter with the symmetric square root (module docstring), for every batch
    element with its own observations. E (nb, N, n); HE (nb, N, m); y, obs_var (R diagonal), weight (nb, m)
    (weight: R-localisation factors, 0 = unused/padding; default 1); inflation: scalar or (nb,)."""
    E, HE, y, obs_var, weight = _check(E, HE, y, obs_var, weight)
    nb = E.shape[0]
    rho = _per_batch(inflation, nb).copy()
    xb = E.mean(axis=1)
    yb = HE.mean(axis=1)
    wa, W = _ensemble_transform(HE - yb[:, None, :], y - yb, obs_var, weight, rho)
    Ea = _apply_transform(E - xb[:, None, :], xb, wa, W)
    return EnsembleAnalysis(Ea, Ea.mean(axis=1) - xb, np.count_nonzero(weight > 0, axis=1), rho)


def stochastic_enkf(E, HE, y, obs_var, noise, weight=None, inflation=1.0, center_noise=True) -> EnsembleAnalysis:
    """Stochastic EnKF with perturbed observations (module docstring). ``noise`` (nb, N, m): standard normal
    numbers (e.g. :func:`observation_noise`), scaled here by ``sqrt(obs_var)``; ``center_noise`` removes their
    mean over the members. The prior anomalies of E and HE are inflated by ``sqrt(inflation)`` first. The gain
    uses the prescribed R (Evensen 2003, eq. 52 with the exact R), ``K = X^T Y (Y^T Y + (N - 1) R)^-1``, solved
    in ensemble space (N x N) when N <= m, else in observation space (m x m). Centred perturbations are not
    rescaled: their (N - 1)-normalised sample covariance has expectation R (DAPPER's ``mean0`` rescales them by
    ``sqrt(N / (N - 1))`` instead)."""
    E, HE, y, obs_var, weight = _check(E, HE, y, obs_var, weight)
    nb, N, n = E.shape
    m = HE.shape[2]
    noise = np.asarray(noise, dtype=float)
    if noise.shape != HE.shape:
        raise ValueError(f'noise must have the shape of HE {HE.shape}, got {noise.shape}')
    rho = _per_batch(inflation, nb).copy()
    s = np.sqrt(rho)[:, None, None]
    xb = E.mean(axis=1)
    yb = HE.mean(axis=1)
    X = s * (E - xb[:, None, :])
    Y = s * (HE - yb[:, None, :])
    eps = noise * np.sqrt(obs_var)[:, None, :]
    if center_noise:
        eps = eps - eps.mean(axis=1, keepdims=True)
    D = y[:, None, :] + eps - (yb[:, None, :] + Y)  # perturbed innovations of every member (nb, N, m)
    w = np.where(weight > 0, weight / np.where(weight > 0, obs_var, 1.0), 0.0)  # diag(loc) R^-1
    if N <= m:  # ensemble space: D R^-1 Y^T [(N - 1) I + Y R^-1 Y^T]^-1 X (row form), via (nb, N, N)
        Yw = Y * w[:, None, :]
        A = Yw @ np.swapaxes(Y, 1, 2)
        A[:, np.arange(N), np.arange(N)] += N - 1
        G = (D * w[:, None, :]) @ np.swapaxes(Y, 1, 2)
        increment = np.swapaxes(np.linalg.solve(A, np.swapaxes(G, 1, 2)), 1, 2) @ X
    else:  # observation space, the same gain: W^1/2 [W^1/2 Y^T Y W^1/2 + (N - 1) I]^-1 W^1/2, (nb, m, m)
        sw = np.sqrt(w)
        Ys = Y * sw[:, None, :]
        C = np.swapaxes(Ys, 1, 2) @ Ys
        C[:, np.arange(m), np.arange(m)] += N - 1
        T = np.swapaxes(np.linalg.solve(C, np.swapaxes(D * sw[:, None, :], 1, 2)), 1, 2)  # (nb, N, m)
        increment = (T * sw[:, None, :]) @ (np.swapaxes(Y, 1, 2) @ X)  # (nb, N, m) @ (nb, m, n)
    Ea = xb[:, None, :] + X + increment
    return EnsembleAnalysis(Ea, Ea.mean(axis=1) - xb, np.count_nonzero(weight > 0, axis=1), rho)


def letkf(E, HE, y, obs_var, local: LocalObservations, inflation=1.0, adaptive: AdaptiveInflation | None = None,
          chunk: int = 2048) -> EnsembleAnalysis:
    """Local ETKF: every column analysed with its local observations (:func:`local_observations`).

    E: (ncol, N, n) the columns' ensembles; HE: (nobs, N) model equivalents of every observation any column
    uses (on a rank: its own and its halo's); y, obs_var: (nobs,); local: the (ncol, k) neighbourhoods;
    inflation: scalar or (ncol,) prior ``rho``. With ``adaptive`` set, each column's ``rho`` is first updated from
    its local innovations (:func:`inflation_observation`, :func:`update_inflation`) and the updated value is
    used in this analysis (Miyoshi 2011); the result carries it for the next cycle. ``chunk``: columns per
    batched solve (memory ~ chunk * N * (N + k) numbers); the result does not depend on it.
    """
    E = np.asarray(E, dtype=float)
    HE = np.asarray(HE, dtype=float)
    ncol, N, n = E.shape
    if N < 2:
        raise ValueError(f'an ensemble analysis needs at least 2 members, got {N}')
    if HE.ndim != 2 or HE.shape[1] != N:
        raise ValueError(f'HE must be (nobs, N={N}), got {HE.shape}')
    if local.index.shape[0] != ncol:
        raise ValueError(f'local observations for {local.index.shape[0]} columns, ensemble for {ncol}')
    if np.any((local.weight[:, :-1] <= 0) & (local.weight[:, 1:] > 0)):
        raise ValueError('local observations: padding (weight 0) must come after the used entries of each row')
    y = np.asarray(y, dtype=float)
    obs_var = np.asarray(obs_var, dtype=float)
    if HE.shape[0] and np.any(obs_var[local.index][local.weight > 0] <= 0):
        raise ValueError('observation error variances must be positive')
    yb = HE.mean(axis=1)
    Yall = HE - yb[:, None]  # (nobs, N)
    dall = y - yb
    rho = _per_batch(inflation, ncol).copy()
    rho_var = None if adaptive is None else np.full(ncol, adaptive.prior_std ** 2)
    xb = E.mean(axis=1)
    Ea = np.empty_like(E)
    # columns grouped by their number of observations k and solved without padding (cost follows the number of
    # (column, observation) pairs); a column's result depends on its own observations only, not on which other
    # columns share its batch, so any split of the columns between ranks gives the same numbers
    n_obs = local.n_obs
    batches = [(int(k), grp[i:i + chunk]) for k in np.unique(n_obs) for grp in [np.flatnonzero(n_obs == k)]
               for i in range(0, grp.size, chunk)]
    for k, sel in batches:
        idx = local.index[sel, :k]
        weight = local.weight[sel, :k]
        Y = np.swapaxes(Yall[idx], 1, 2) if k else np.zeros((sel.size, N, 0))  # (nsel, N, k)
        d = dall[idx] if k else np.zeros((sel.size, 0))
        r = obs_var[idx] if k else np.ones((sel.size, 0))
        if adaptive is not None:
            rho_o, var_o = inflation_observation(Y, d, r, weight, rho[sel])
            rho[sel], rho_var[sel] = update_inflation(rho[sel], rho_o, var_o, adaptive)
        wa, W = _ensemble_transform(Y, d, r, weight, rho[sel])
        Ea[sel] = _apply_transform(E[sel] - xb[sel][:, None, :], xb[sel], wa, W)
    return EnsembleAnalysis(Ea, Ea.mean(axis=1) - xb, local.n_obs, rho, rho_var)
