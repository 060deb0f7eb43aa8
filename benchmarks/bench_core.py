"""Speed of the Fortran column core: column-steps per second for batches of 1, 100 and 10,000 columns.

Single core (OMP_NUM_THREADS=1), full physics, 30-min steps, a mix of PFTs and climates from the synthetic
test columns. Prints a table and writes ``benchmarks/results/bench_core.json``.

    python benchmarks/bench_core.py [--column-steps 1e6] [--batches 1 100 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from colmda import core  # noqa: E402
from colmda.testing import climate_forcing, column_parameters  # noqa: E402


def bench(ncol: int, nsteps: int, repeats: int = 2) -> dict:
    climates = ["tropical", "arid", "temperate", "boreal", "tundra"]
    names = [climates[i % len(climates)] for i in range(ncol)]
    params = column_parameters(names)
    forc = climate_forcing(names, nsteps, start_doy=150)
    base = core.initial_state(params, temperature=285.0)
    # warm up one day so that the timing sees a developed state (canopy water, snow, ...)
    core.advance(base, params, forc[:, :48], 1800.0)
    best = np.inf
    for _ in range(repeats):
        state = base.copy()
        t0 = time.perf_counter()
        core.advance(state, params, forc, 1800.0)
        best = min(best, time.perf_counter() - t0)
    return {"ncol": ncol, "nsteps": nsteps, "seconds": best, "column_steps_per_second": ncol * nsteps / best}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--column-steps", type=float, default=1.0e6,
                    help="column-steps per timed call (steps = this / ncol, at least 96)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 100, 10000])
    args = ap.parse_args()
    rows = []
    for ncol in args.batches:
        nsteps = int(max(96, min(17520, args.column_steps // ncol)))
        r = bench(ncol, nsteps)
        rows.append(r)
        print(f"ncol={ncol:6d} nsteps={nsteps:6d} time={r['seconds']:8.3f} s "
              f"column-steps/s={r['column_steps_per_second']:12.0f}", flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    info = {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "threads": os.environ.get("OMP_NUM_THREADS"), "results": rows}
    (out / "bench_core.json").write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
