"""Cost of the evaluation suite on a global year against 1,000 stations (synthetic, seed 004's workflow).

Daily series (365 days) at 1,000 stations of the observations and of the DA and OL runs, surface and root zone,
with 20 % missing observation days: moving-window anomalies, Spearman and Pearson R, dR with a 1000-resample
paired bootstrap (surface and root zone), coupling strength CP of the model and of the observations, IVd error
estimates (model vs observations), triple collocation (observations, OL, a third product) and the random-forest
attribution of surface dR to six control factors (10-fold CV, default repeats). Target < 60 s.
Reports wall time and CPU time of this process (the CPU time does not grow when other jobs share the cores).
Writes ``benchmarks/results/bench_evaluation.json``.

    python benchmarks/bench_evaluation.py [--stations 1000] [--days 365]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def synthetic(nst, nt, rng):
    """Truth AR(1) surface signal, damped root zone; obs / DA / OL with station-dependent errors."""
    e = rng.normal(size=(nst, nt))
    ssm = np.zeros((nst, nt))
    for t in range(1, nt):
        ssm[:, t] = 0.85 * ssm[:, t - 1] + e[:, t]
    rz = np.zeros_like(ssm)
    for t in range(1, nt):
        rz[:, t] = 0.95 * rz[:, t - 1] + 0.05 * ssm[:, t]
    precip_err = rng.uniform(0.2, 2.0, nst)
    lai = rng.uniform(0, 6, nst)
    f = dict(precip_error=precip_err, lai=lai, h=rng.uniform(0.1, 0.6, nst), clay_dz=rng.uniform(0, .2, nst),
             tb_innov_std=rng.uniform(2, 8, nst), cp_error=rng.normal(0, .2, nst))
    ol = ssm + precip_err[:, None] * rng.normal(size=ssm.shape)
    da = ssm + 0.5 * precip_err[:, None] * rng.normal(size=ssm.shape) + 0.1 * lai[:, None] * rng.normal(
        size=ssm.shape)
    obs = ssm + 0.8 * rng.normal(size=ssm.shape)
    obs[rng.uniform(size=obs.shape) < 0.2] = np.nan
    return ssm, rz, obs, da, ol, f


def main(argv=None):
    from colmda.evaluation.anomalies import moving_anomaly
    from colmda.evaluation.attribution import attribute
    from colmda.evaluation.bootstrap import correlation, delta_r
    from colmda.evaluation.collocation import ivd, triple_collocation
    from colmda.evaluation.coupling import coupling_strength

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--stations', type=int, default=1000)
    ap.add_argument('--days', type=int, default=365)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ssm, rz, obs, da, ol, f = synthetic(a.stations, a.days, rng)
    rz_obs = rz + 0.2 * rng.normal(size=rz.shape)
    rz_da, rz_ol = rz + 0.3 * rng.normal(size=rz.shape), rz + 0.4 * rng.normal(size=rz.shape)
    third = 2.0 * ssm + 1.5 * rng.normal(size=ssm.shape)
    t = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    an = {k: moving_anomaly(v) for k, v in dict(obs=obs, da=da, ol=ol, rz_obs=rz_obs, rz_da=rz_da, rz_ol=rz_ol,
                                               third=third).items()}
    t['anomalies'] = time.perf_counter() - t0
    t1 = time.perf_counter()
    for kind in ('spearman', 'pearson'):
        correlation(an['obs'], an['da'], kind)
        correlation(an['obs'], an['ol'], kind)
    t['correlations'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    ssm_dr = delta_r(an['obs'], an['da'], an['ol'], n_boot=1000)
    delta_r(an['rz_obs'], an['rz_da'], an['rz_ol'], n_boot=1000)
    t['bootstrap_dR_2x1000'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    coupling_strength(an['da'], an['rz_da'])
    coupling_strength(an['obs'], an['rz_obs'])
    t['coupling'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    ivd(obs, ol)
    t['ivd'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    triple_collocation(an['obs'], an['ol'], an['third'])
    t['triple_collocation'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    X = np.column_stack(list(f.values()))
    att = attribute(X, ssm_dr['dr'], list(f))
    t['attribution'] = time.perf_counter() - t1
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    res = {'stations': a.stations, 'days': a.days, 'seconds': {k: round(v, 3) for k, v in t.items()},
           'total_seconds': round(total, 2), 'cpu_seconds': round(cpu, 2), 'target_seconds': 60.0, 'attribution_ranking': att['ranking'],
           'attribution_cv_r': round(att['cv_r'], 3)}
    print(json.dumps(res, indent=1))
    (REPO / 'benchmarks' / 'results' / 'bench_evaluation.json').write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()
