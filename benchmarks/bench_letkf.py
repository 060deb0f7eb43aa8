"""Cost of one LETKF analysis of the global default domain on one core.

The 10,806 land columns of ``colmda.domain`` (1.40625 deg grid), 24 members, a control vector of 7 layers of
soil moisture, synthetic observations at about half of the columns (chosen by keyed random numbers, located at
the column centres, error 0.04 m3 m-3, model equivalent = a nonlinear function of the top two layers of the
observed column). Timed separately: the neighbour search (k-d tree on the unit sphere, Gaspari-Cohn weights)
and the analysis (gather, N x N eigen-decompositions, transform), for the 100 km half-width of the issue's
target, the column-local filter (0 km), a 300 km half-width and 100 km with adaptive inflation. Each timing is
the best of ``--repeat`` runs; BLAS is pinned to one thread. Writes ``benchmarks/results/bench_letkf.json``.

    python benchmarks/bench_letkf.py [--repeat 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core: set before numpy loads
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from colmda.assim import enkf  # noqa: E402
from colmda.domain import Domain  # noqa: E402
from colmda.forcing.perturb import keyed_normal, keyed_uniform  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NMEM, NLAYER, OBS_ERROR = 24, 7, 0.04
TARGET_S = 2.0


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    dom = Domain.load()
    cols = dom.land_columns()
    lat, lon = dom.column_lat(cols), dom.column_lon(cols)
    ncol = cols.size
    # ensemble: keyed by (global column, member, layer), so the problem is the same on every machine
    g = cols[:, None, None]
    mem = np.arange(NMEM)[None, :, None]
    lay = np.arange(NLAYER)[None, None, :]
    E = 0.25 + 0.05 * keyed_normal(1, 900, lay, mem, g)
    observed = keyed_uniform(2, 901, cols) < 0.5
    owner = np.flatnonzero(observed)
    HE = 0.6 * E[owner, :, 0] + 0.4 * np.sqrt(np.abs(E[owner, :, 1]))  # (nobs, N)
    y = HE.mean(axis=1) + OBS_ERROR * keyed_normal(3, 902, cols[owner])
    r = np.full(owner.size, OBS_ERROR ** 2)

    rows = []
    for label, radius, adaptive in (("100 km", 100.0, False), ("0 km (column-local)", 0.0, False),
                                    ("300 km", 300.0, False), ("100 km + adaptive inflation", 100.0, True)):
        t_search, local = best_of(lambda: enkf.local_observations(lat, lon, lat[owner], lon[owner], radius,
                                                                  column_id=cols, obs_column=cols[owner]),
                                  args.repeat)
        settings = enkf.AdaptiveInflation() if adaptive else None
        t_an, res = best_of(lambda: enkf.letkf(E, HE, y, r, local, inflation=1.0, adaptive=settings), args.repeat)
        rows.append({
            "case": label, "localization_km": radius, "adaptive_inflation": adaptive,
            "columns": int(ncol), "members": NMEM, "layers": NLAYER, "observations": int(owner.size),
            "obs_per_column_mean": float(local.n_obs.mean()), "obs_per_column_max": int(local.n_obs.max()),
            "columns_without_obs": int((local.n_obs == 0).sum()),
            "search_s": round(t_search, 4), "analysis_s": round(t_an, 4), "total_s": round(t_search + t_an, 4),
            "mean_abs_increment_layer1": float(np.abs(res.mean_increment[:, 0]).mean()),
        })

    print(f"LETKF on the global default domain: {ncol} columns, {NMEM} members, {NLAYER} layers, "
          f"{owner.size} observations; one core, best of {args.repeat}")
    print(f"{'case':30s} {'obs/col':>8s} {'max':>5s} {'search s':>9s} {'analysis s':>11s} {'total s':>8s}")
    for row in rows:
        print(f"{row['case']:30s} {row['obs_per_column_mean']:8.2f} {row['obs_per_column_max']:5d} "
              f"{row['search_s']:9.3f} {row['analysis_s']:11.3f} {row['total_s']:8.3f}")
    main_case = rows[0]
    verdict = "meets" if main_case["total_s"] < TARGET_S else "MISSES"
    print(f"100 km case: {main_case['total_s']:.3f} s, {verdict} the target of < {TARGET_S} s on one core")
    out = REPO / "benchmarks" / "results" / "bench_letkf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({
        "benchmark": "bench_letkf", "target_s": TARGET_S, "meets_target": main_case["total_s"] < TARGET_S,
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeat": args.repeat, "rows": rows,
    }, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
