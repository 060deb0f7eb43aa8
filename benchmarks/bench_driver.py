"""Speed of a global control run through the whole driver, on 1 and 2 MPI ranks.

Runs ``namelists/global_30day.nml`` (shortened with ``--days``) with ``mpiexec -n N`` and reports, from each
run's ``manifest.json``: wall time, column-steps per second, the share of wall time spent outside the Fortran
core, the strong-scaling efficiency from 1 to N ranks, and the peak memory (max RSS over ranks). Writes
``benchmarks/results/bench_driver.json``.

    python benchmarks/bench_driver.py [--days 30] [--ranks 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(ranks: int, days: int, workdir: Path) -> dict:
    out = workdir / f"global_{ranks}ranks"
    end = f"2005-06-{1 + days:02d}" if days < 30 else "2005-07-01"
    cmd = [str(BIN / "colmda"), "run", str(REPO / "namelists" / "global_30day.nml"), "--no-progress",
           "--set", f"experiment.end='{end}'", "--set", f"output.directory='{out}'",
           "--set", "experiment.spinup_max_cycles=0"]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    manifest = json.loads((out / "manifest.json").read_text())
    phases = manifest["wall_time_s"]
    ncol = int(manifest["columns"])
    core = float(phases.get("core", float("nan")))
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    steps = days * 86400 / 1800
    return {"ranks": ranks, "days": days, "wall_s": wall, "core_s": core, "ncol": ncol,
            "column_steps_per_s": (ncol or 0) * steps / wall, "outside_core_share": 1 - core / wall,
            "peak_rss_mb_any_process": rss_mb}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workdir", default=str(REPO / "runs" / "bench"))
    a = ap.parse_args()
    rows = [run(n, a.days, Path(a.workdir)) for n in a.ranks]
    base = rows[0]
    for r in rows:
        r["scaling_efficiency"] = base["wall_s"] / (r["wall_s"] * r["ranks"] / base["ranks"])
        print(f"ranks={r['ranks']} days={r['days']} wall={r['wall_s']:.1f} s core={r['core_s']:.1f} s "
              f"column-steps/s={r['column_steps_per_s']:.0f} outside-core={r['outside_core_share']:.1%} "
              f"efficiency={r['scaling_efficiency']:.2f} peak-RSS={r['peak_rss_mb_any_process']:.0f} MB")
    res = REPO / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "bench_driver.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
