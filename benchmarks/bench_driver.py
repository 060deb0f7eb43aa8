"""Speed of a global control run through the whole driver, on 1, 2 (and more) MPI ranks.

Runs ``namelists/global_30day.nml`` (shortened with ``--days``) with ``mpiexec -n N`` and reports, from each
run's ``manifest.json`` and the operating system's accounting of the finished processes:

* wall time of the whole command (start-up, set-up, the experiment, the final files), column-steps per second;
* **Python share** = 1 - (rank 0's time in the Fortran core) / wall time: the share of the run's wall time that
  rank 0's main thread spends outside the core (start-up, set-up, forcing, output, restarts, waiting for other
  ranks). Work done in the background meanwhile (forcing read-ahead thread, history writer process) is not in
  it: it runs while the core runs;
* the CPU seconds of every process of the run (ranks, writer process, threads): the background work is in it;
* every rank's wall time per phase (``setup``, ``forcing``, ``core``, ``output``, ``balance``, ``restart``);
* the strong-scaling efficiency from the first rank count to N, and the peak memory (max RSS of one process).

More ranks than cores (``--ranks 4`` on a 2-core machine) is oversubscription: MPICH's mpiexec places them
without a flag (Open MPI would need ``--oversubscribe``); such a figure shows the driver's behaviour with ranks
that share cores, not strong scaling. Writes ``benchmarks/results/bench_driver.json``.

    python benchmarks/bench_driver.py [--days 30] [--ranks 1 2] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PHASES = ("setup", "forcing", "core", "output", "balance", "restart")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(ranks: int, days: int, workdir: Path) -> dict:
    out = workdir / f"global_{ranks}ranks"
    end = f"2005-06-{1 + days:02d}" if days < 30 else "2005-07-01"
    cmd = [str(BIN / "colmda"), "run", str(REPO / "namelists" / "global_30day.nml"), "--no-progress", "--overwrite",
           "--set", f"experiment.end='{end}'", "--set", f"output.directory='{out}'",
           "--set", "experiment.spinup_max_cycles=0"]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    manifest = json.loads((out / "manifest.json").read_text())
    per_rank = manifest["wall_time_per_rank_s"]
    ncol = int(manifest["columns"])
    core0 = float(per_rank[0].get("core", float("nan")))
    core_all = sum(float(p.get("core", 0.0)) for p in per_rank)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    steps = days * 86400 / 1800
    return {"ranks": ranks, "days": days, "cores": os.cpu_count(), "oversubscribed": ranks > (os.cpu_count() or 1),
            "wall_s": wall, "core_s": core0, "ncol": ncol, "column_steps_per_s": ncol * steps / wall,
            "python_share": 1 - core0 / wall, "cpu_s_all_processes": cpu, "core_s_all_ranks": core_all,
            "phases_per_rank_s": [{k: float(p.get(k, 0.0)) for k in PHASES} for p in per_rank],
            "peak_rss_mb_any_process": rss_mb}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workdir", default=str(REPO / "runs" / "bench"))
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "bench_driver.json"))
    a = ap.parse_args()
    rows = []
    for n in a.ranks:
        rows.append(run(n, a.days, Path(a.workdir)))
        if not a.keep:
            shutil.rmtree(Path(a.workdir) / f"global_{n}ranks", ignore_errors=True)
    base = rows[0]
    for r in rows:
        r["scaling_efficiency"] = base["wall_s"] / (r["wall_s"] * r["ranks"] / base["ranks"])
        over = " (oversubscribed)" if r["oversubscribed"] else ""
        print(f"ranks={r['ranks']}{over} days={r['days']} wall={r['wall_s']:.1f} s core(rank 0)={r['core_s']:.1f} s "
              f"column-steps/s={r['column_steps_per_s']:.0f} python-share={r['python_share']:.1%} "
              f"cpu(all processes)={r['cpu_s_all_processes']:.1f} s efficiency={r['scaling_efficiency']:.2f} "
              f"peak-RSS={r['peak_rss_mb_any_process']:.0f} MB")
        for i, p in enumerate(r["phases_per_rank_s"]):
            print(f"    rank {i}: " + ", ".join(f"{k} {v:.1f} s" for k, v in p.items()))
    res = Path(a.output)
    res.parent.mkdir(parents=True, exist_ok=True)
    res.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
