"""Random-forest attribution of skill changes to control factors (seed 004, section 2.6).

The target (dR per station/cell, or R_OL, R_DA) is regressed on the control factors (precipitation error,
coupling error dCP, Tb innovation std, roughness h, LAI, ...) with scikit-learn's RandomForestRegressor:

* skill of the regression: 10-fold cross-validated predictions (``cv``), their correlation with the target
  (seed Fig. 5a);
* importance: permutation importance on the held-out fold of each split (the drop of R^2 when one factor's
  values are shuffled; computed on data the forest did not see, so an irrelevant factor scores about 0 and
  correlated noise is not rewarded as the impurity importance would), averaged over folds, normalised to sum
  to 1 over the positive values;
* spread: the whole procedure repeated ``n_repeat`` times (default 5; the seed uses 50) on bootstrap resamples
  of the stations with different forest seeds; mean and standard deviation over repeats (the seed's error bars).
* forest: 100 trees, leaves of at least 5 stations, each tree on a half-sample (max_samples = 0.5): smoother
  and about twice as fast as full bootstrap samples with the same importances.

Random numbers derive from ``seed`` only. Rows with a non-finite target or factor are dropped (counted).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

__all__ = ['attribute']


def _r2(y, p):
    return 1.0 - ((y - p) ** 2).sum(axis=-1) / ((y - y.mean()) ** 2).sum()


def _permutation_importance(model, X, y, rng, n_repeats: int = 3):
    """Mean drop of R^2 on (X, y) when each column is shuffled (``n_repeats`` shuffles), all in one predict call
    (the same quantity as sklearn.inspection.permutation_importance with the R^2 scorer)."""
    n, k = X.shape
    Xp = np.repeat(X[None, None], n_repeats, axis=1).repeat(k, axis=0)      # (k, reps, n, k)
    for j in range(k):
        for r in range(n_repeats):
            Xp[j, r, :, j] = X[rng.permutation(n), j]
    pred = model.predict(Xp.reshape(-1, k)).reshape(k, n_repeats, n)
    return _r2(y, model.predict(X)) - _r2(y, pred).mean(axis=1)


def attribute(factors, target, names, *, cv: int = 10, n_repeat: int = 5, n_estimators: int = 100,
              seed: int = 0, n_jobs: int = 1) -> dict:
    """Importance of each factor for ``target``. ``factors`` (n, k), ``target`` (n,), ``names`` k strings.

    Returns dict: names, importance (k,) mean normalised permutation importance, importance_std (k,), cv_r
    (mean over repeats of the correlation of the CV predictions with the target), cv_r_std, n_used, n_dropped,
    ranking (names, most important first)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    X = np.asarray(factors, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).ravel()
    names = [str(n) for n in names]
    if X.ndim != 2 or X.shape[0] != y.size or X.shape[1] != len(names):
        raise UserError(f"attribution: factors {X.shape}, target {y.shape} and {len(names)} names do not match")
    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    X, y = X[keep], y[keep]
    n, k = X.shape
    if n < 2 * cv:
        raise UserError(f"attribution: {n} stations with a finite target and all factors; need at least "
                        f"{2 * cv} for {cv}-fold cross-validation")
    rng = np.random.default_rng(seed)
    imps, cvr = [], []
    for rep in range(n_repeat):
        rows = np.arange(n) if rep == 0 else rng.integers(0, n, n)
        Xr, yr = X[rows], y[rows]
        pred = np.empty(n)
        imp = np.zeros(k)
        folds = KFold(n_splits=cv, shuffle=True, random_state=int(rng.integers(2 ** 31)))
        for tr, te in folds.split(Xr):
            rf = RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=5, max_samples=0.5, n_jobs=n_jobs,
                                       random_state=int(rng.integers(2 ** 31))).fit(Xr[tr], yr[tr])
            pred[te] = rf.predict(Xr[te])
            imp += _permutation_importance(rf, Xr[te], yr[te], rng) / cv
        pos = np.clip(imp, 0.0, None)
        imps.append(pos / pos.sum() if pos.sum() > 0 else pos)
        cvr.append(np.corrcoef(pred, yr)[0, 1])
    imps = np.array(imps)
    mean = imps.mean(axis=0)
    return {'names': names, 'importance': mean, 'importance_std': imps.std(axis=0),
            'cv_r': float(np.mean(cvr)), 'cv_r_std': float(np.std(cvr)), 'n_used': int(n),
            'n_dropped': int((~keep).sum()), 'ranking': [names[i] for i in np.argsort(-mean)]}
