"""Cost of the tau-omega operator (colmda.obs.tau_omega) on a global 24-member ensemble at one time.

10,806 columns x 24 members (the size of the default global grid and of SMAP L4's ensemble): H and V Tb and
their analytic Jacobians dTb/dtheta, Mironov dielectric model with the Debye coefficients precomputed per column
(they depend only on clay), SM-dependent roughness. Median of ``--repeat`` calls. Target < 50 ms.
Writes ``benchmarks/results/bench_tau_omega.json``.

    python benchmarks/bench_tau_omega.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from colmda.obs import tau_omega as T

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--columns', type=int, default=10806)
    ap.add_argument('--members', type=int, default=24)
    ap.add_argument('--repeat', type=int, default=20)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(1)
    n, m = a.columns, a.members
    clay = rng.uniform(0.03, 0.6, n)
    lai = rng.uniform(0.0, 6.0, n)
    pft = rng.integers(0, 16, n)
    t_eff = rng.uniform(260.0, 310.0, n)
    theta = rng.uniform(0.02, 0.5, (m, n))
    p = T.TauOmegaParams(h_min=0.1)
    times, times_nojac, cpu = [], [], []
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        coef = T.mironov_coefficients(clay)
        out = T.brightness_temperature(theta, t_eff, lai, pft, clay, params=p, jacobian=True, coef=coef)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        T.brightness_temperature(theta, t_eff, lai, pft, clay, params=p, coef=coef)
        times_nojac.append(time.perf_counter() - t0)
    res = {'columns': n, 'members': m, 'median_ms_with_jacobian': 1e3 * float(np.median(times)),
           'median_ms_tb_only': 1e3 * float(np.median(times_nojac)),
           'median_cpu_ms_with_jacobian': 1e3 * float(np.median(cpu)), 'target_ms': 50.0,
           'tb_h_range_K': [float(out['tb_h'].min()), float(out['tb_h'].max())]}
    print(json.dumps(res, indent=1))
    (REPO / 'benchmarks' / 'results' / 'bench_tau_omega.json').write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()
