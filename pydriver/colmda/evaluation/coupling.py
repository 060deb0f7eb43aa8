"""Surface-root-zone coupling strength (seed 004, eq. 1; a Kling-Gupta-like distance).

    CP = 1 - sqrt((R - 1)^2 + (alpha - 1)^2)

R: correlation (Spearman by default, as the seed) between the surface (SSM) and root-zone (RZSM) anomaly series;
alpha = std(SSM anomalies) / std(RZSM anomalies) (the seed's definition: the ratio of the temporal standard
deviations of SSM to RZSM; population std over the common days). CP = 1 for identical series (strongest
coupling); it falls as the root zone decorrelates from or damps the surface (alpha > 1) -- or, for alpha < 1,
varies more than it. The coupling ERROR of a model is dCP = CP_model - CP_obs (negative: the model's root zone
is too loosely coupled). Arrays (station, time), anomalies computed by the caller
(:mod:`colmda.evaluation.anomalies`).
"""

from __future__ import annotations

import numpy as np

from .bootstrap import correlation

__all__ = ['coupling_strength']


def coupling_strength(ssm, rzsm, kind: str = 'spearman') -> dict:
    """dict of (station,) arrays: cp, r, alpha, n (common days)."""
    s = np.asarray(ssm, dtype=np.float64)
    z = np.asarray(rzsm, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(z)
    n = ok.sum(axis=-1)
    r = correlation(s, z, kind, ok)
    with np.errstate(invalid='ignore', divide='ignore'):
        def std(a):
            a = np.where(ok, a, 0.0)
            m = a.sum(axis=-1) / n
            return np.sqrt((np.where(ok, a - m[..., None], 0.0) ** 2).sum(axis=-1) / n)
        alpha = std(s) / std(z)
    cp = 1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2)
    return {'cp': cp, 'r': r, 'alpha': alpha, 'n': n}
