"""Correlations of many stations at once and the bootstrap significance of dR = R_DA - R_OL (seed 004).

Arrays are (station, time); a pair is used where every series involved is finite. ``kind`` is 'spearman'
(seed 004's choice: robust to outliers) or 'pearson'. Both equal scipy.stats' values (and so pytesmo's
``pearsonr`` / ``spearmanr``) to round-off (tests).

Bootstrap of dR (paired: the same resampled days for the observations, DA and OL): a resample with replacement
is a vector of multiplicities w_t (how often day t is drawn), so every statistic is a w-weighted one and no
series is copied. For Spearman the ranks OF THE RESAMPLE are needed, not those of the original series: with the
series sorted once, the rank of day t in the resample is C_<(t) + (G(t) + 1)/2, C_< the summed multiplicity of
strictly smaller values and G that of values equal to it (average ranks of ties, duplicates of a drawn day being
ties) -- cumulative sums in sorted order, no sort per resample, so the result is exactly the Spearman
correlation scipy would give on the resampled series (tested). Draws are iid days by default or moving blocks of
``block`` days (serially correlated errors make iid intervals too narrow; the seed uses iid). The random
numbers are keyed by (seed, station index), not by how many stations are evaluated together.
Significance: the two-sided percentile interval [2.5 %, 97.5 %] (``level``) excludes zero.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ['correlation', 'delta_r', 'weighted_ranks']

BLOCK_RESAMPLES = 100


def _ranks(x, ok):
    """Average ranks (1..n_valid) of the valid entries along the last axis (invalid entries get ranks > n)."""
    from scipy.stats import rankdata

    return rankdata(np.where(ok, x, np.inf), axis=-1)


def _pearson_masked(a, b, ok):
    n = ok.sum(axis=-1)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    with np.errstate(invalid='ignore', divide='ignore'):
        ma = a.sum(axis=-1) / n
        mb = b.sum(axis=-1) / n
        da = np.where(ok, a - ma[..., None], 0.0)
        db = np.where(ok, b - mb[..., None], 0.0)
        r = (da * db).sum(axis=-1) / np.sqrt((da * da).sum(axis=-1) * (db * db).sum(axis=-1))
    return np.where(n >= 3, r, np.nan)


def correlation(a, b, kind: str = 'spearman', ok=None):
    """Correlation along the last axis of ``a`` and ``b`` over the pairs where both are finite (and ``ok``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    valid = np.isfinite(a) & np.isfinite(b)
    if ok is not None:
        valid &= ok
    if kind == 'pearson':
        return _pearson_masked(a, b, valid)
    if kind == 'spearman':
        return _pearson_masked(_ranks(a, valid), _ranks(b, valid), valid)
    raise UserError(f"correlation kind '{kind}': expected 'spearman' or 'pearson'")


def weighted_ranks(x, w, order=None):
    """Ranks of a resample given as multiplicities ``w`` (..., n) of the values ``x`` (n,) (module docstring),
    returned in the order ``order`` of the days (default: the days' own order; pass argsort(x) to get them in
    sorted order without a scatter)."""
    srt = np.argsort(x, kind='stable')
    xs = x[srt]
    ws = w[..., srt]
    cw = np.cumsum(ws, axis=-1)
    if np.all(xs[1:] != xs[:-1]):                 # no ties among distinct days: C_< = cw - w, G = w
        r_sorted = cw - 0.5 * (ws - 1.0)
    else:
        new = np.concatenate([[True], xs[1:] != xs[:-1]])
        gid = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        ends = np.concatenate([starts[1:], [xs.size]]) - 1
        before = np.where(starts > 0, cw[..., np.maximum(starts - 1, 0)], 0.0)     # (..., ngroups)
        total = cw[..., ends] - before
        r_sorted = before[..., gid] + 0.5 * (total[..., gid] + 1.0)
    pos = np.empty(x.size, dtype=np.int64)
    pos[srt] = np.arange(x.size)                  # position of each day in sorted order
    want = np.arange(x.size) if order is None else np.asarray(order)
    return r_sorted[..., pos[want]]


def _wpearson(a, b, w):
    """Weighted Pearson along the last axis, from one-pass weighted sums (float64 accumulation)."""
    sw = w.sum(axis=-1, dtype=np.float64)
    sa = np.einsum('ij,ij->i', w, a, dtype=np.float64)
    sb = np.einsum('ij,ij->i', w, b, dtype=np.float64)
    saa = np.einsum('ij,ij,ij->i', w, a, a, dtype=np.float64)
    sbb = np.einsum('ij,ij,ij->i', w, b, b, dtype=np.float64)
    sab = np.einsum('ij,ij,ij->i', w, a, b, dtype=np.float64)
    return (sw * sab - sa * sb) / np.sqrt((sw * saa - sa * sa) * (sw * sbb - sb * sb))


def _multiplicities(rng, n, nboot, block):
    """(nboot, n) draw counts of n days by iid (block = 1) or moving-block resampling."""
    if block <= 1:
        idx = rng.integers(0, n, size=(nboot, n))
    else:
        nblk = -(-n // block)
        starts = rng.integers(0, n - block + 1, size=(nboot, nblk))
        idx = (starts[..., None] + np.arange(block)).reshape(nboot, -1)[:, :n]
    flat = idx + n * np.arange(nboot)[:, None]
    return np.bincount(flat.ravel(), minlength=n * nboot).reshape(nboot, n).astype(np.float32)


def delta_r(obs, da, ol, kind: str = 'spearman', n_boot: int = 1000, level: float = 0.95, block: int = 1,
            seed: int = 0, min_pairs: int = 10) -> dict:
    """Per station: R_DA, R_OL, dR = R_DA - R_OL against ``obs`` and its bootstrap interval.

    Returns dict of (station,) arrays: r_da, r_ol, dr, lo, hi (percentile interval), p (two-sided bootstrap
    p-value: 2 min(P(dR* <= 0), P(dR* >= 0))), significant (interval excludes 0), n (pairs used)."""
    obs, da, ol = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (obs, da, ol))
    if not (obs.shape == da.shape == ol.shape):
        raise UserError(f"delta_r: obs {obs.shape}, DA {da.shape}, OL {ol.shape} must have the same shape")
    ok = np.isfinite(obs) & np.isfinite(da) & np.isfinite(ol)
    nst = obs.shape[0]
    out = {k: np.full(nst, np.nan) for k in ('r_da', 'r_ol', 'dr', 'lo', 'hi', 'p')}
    out['n'] = ok.sum(axis=1)
    out['significant'] = np.zeros(nst, dtype=bool)
    out['r_da'] = correlation(obs, da, kind, ok)
    out['r_ol'] = correlation(obs, ol, kind, ok)
    out['dr'] = out['r_da'] - out['r_ol']
    if kind not in ('spearman', 'pearson'):
        raise UserError(f"correlation kind '{kind}': expected 'spearman' or 'pearson'")
    alpha = (1.0 - level) / 2.0
    for i in range(nst):
        m = ok[i]
        n = int(m.sum())
        if n < max(min_pairs, 3):
            out['dr'][i] = np.nan
            continue
        rng = np.random.default_rng([int(seed), i])
        x, y, z = obs[i, m], da[i, m], ol[i, m]
        o = np.argsort(x, kind='stable')
        d = np.empty(int(n_boot))
        # blocks of BLOCK_RESAMPLES resamples in float32 (counts and ranks are exact): small arrays stay in cache
        for b0 in range(0, int(n_boot), BLOCK_RESAMPLES):
            nb = min(BLOCK_RESAMPLES, int(n_boot) - b0)
            w = _multiplicities(rng, n, nb, int(block))
            if kind == 'spearman':
                # everything in the sorted order of the observations (saves scattering ranks back to days)
                xr, yr, zr = weighted_ranks(x, w, o), weighted_ranks(y, w, o), weighted_ranks(z, w, o)
                wo = w[:, o]
            else:
                xr, yr, zr = (np.broadcast_to(v.astype(np.float32), w.shape) for v in (x, y, z))
                wo = w
            with np.errstate(invalid='ignore', divide='ignore'):
                d[b0:b0 + nb] = _wpearson(xr, yr, wo) - _wpearson(xr, zr, wo)
        d = d[np.isfinite(d)]
        if d.size == 0:
            continue
        out['lo'][i], out['hi'][i] = np.quantile(d, [alpha, 1.0 - alpha])
        out['p'][i] = min(1.0, 2.0 * min(np.mean(d <= 0.0), np.mean(d >= 0.0)))
        out['significant'][i] = (out['lo'][i] > 0.0) or (out['hi'][i] < 0.0)
    return out
