"""Cost of ensemble runs and of the EnKF family's analyses relative to the control run (CTL).

On the main job's region (namelists/default.nml, 202 columns) and one process, over ``--days`` days from the same
spun-up state: CTL (one member), an ensemble open loop of N members (``method = 'none'``, perturbed forcing, no
analysis) and LETKF runs (column-local and 3-D at 100 km) and a stochastic EnKF run with N members assimilating L
retrievals simulated by a truth run. Reports from each run's manifest the wall time of the experiment phase and
of its core calls, and:

* ``core_per_member``: ensemble core time / (N x CTL core time), the issue's target <= 1.1 (members batched as
  more columns in the same core calls);
* for the analysis runs: the core time (step-by-step calls, as the analysis records the model equivalents after
  every step) relative to the open loop's, and the analysis time (the method's plan + analyse + consistency +
  diagnostics) relative to the open loop's experiment time.

Writes ``benchmarks/results/bench_enkf.json``. The ratios compare runs made one after the other, so they are
only meaningful on an otherwise idle machine; on a shared one compare two runs with farm-bench pairs (A B A B ...,
the ratio taken pair by pair), e.g. an LETKF run against the open loop made with the same settings
(docs/assimilation.md, "Cost of the ensemble methods").

    python benchmarks/bench_enkf.py [--days 7] [--members 24]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sekf import REPO, colmda  # noqa: E402 (one way to run colmda and read its manifest)


def times(m: dict) -> dict:
    w = m["wall_time_s"]
    return {"experiment_s": w["experiment"], "core_s": w["core"], "analysis_s": w.get("analysis", 0.0),
            "forcing_s": w.get("forcing", 0.0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--members", type=int, default=24)
    ap.add_argument("--workdir", default=str(REPO / "runs" / "bench_enkf"))
    a = ap.parse_args()
    w = Path(a.workdir)
    N = a.members
    end = f"experiment.end='2005-06-{1 + a.days:02d}'"
    sets = lambda *kv: [x for k in kv for x in ("--set", k)]  # noqa: E731
    colmda(sets(end, "experiment.name=truth", "forcing.seed=101", "forcing.perturb=.false.",
                "forcing.precip_scale=1.0", "observations.simulate=L"), w / "truth")
    colmda(sets(end, "experiment.name=spinup"), w / "spinup")
    init = sorted((w / "spinup" / "restart").glob("spinup_*spinup-cycle*.nc"))[-1]
    start = [f"experiment.initial_restart={init}", "experiment.spinup_max_cycles=0"]
    ctl = times(colmda(sets(end, "experiment.name=CTL", *start), w / "CTL"))
    ens = [f"assimilation.n_members={N}", "forcing.perturb=.true."]
    openloop = times(colmda(sets(end, "experiment.name=OL", *start, *ens), w / "OL"))
    openloop["core_per_member"] = openloop["core_s"] / (N * ctl["core_s"])
    openloop["experiment_per_member"] = openloop["experiment_s"] / (N * ctl["experiment_s"])
    rows = {"CTL": ctl, f"open_loop_{N}": openloop}
    obs = [f"observations.directory={w / 'truth' / 'obs'}", "observations.sensors=L", "observations.error=0.04"]
    for name, method, km in (("letkf_1d", "letkf", 0), ("letkf_100km", "letkf", 100), ("enkf_100km", "enkf", 100)):
        r = times(colmda(sets(end, f"experiment.name={name}", *start, *ens, *obs, f"assimilation.method={method}",
                              f"enkf.localization_km={km}"), w / name))
        r["core_ratio_to_open_loop"] = r["core_s"] / openloop["core_s"]
        r["core_per_member"] = r["core_s"] / (N * ctl["core_s"])
        r["analysis_ratio_to_open_loop_experiment"] = r["analysis_s"] / openloop["experiment_s"]
        r["experiment_ratio_to_open_loop"] = r["experiment_s"] / openloop["experiment_s"]
        rows[name] = r
    out = {"days": a.days, "members": N, "columns": int(json.loads((w / "CTL" / "manifest.json").read_text())
                                                          ["columns"]), "runs": rows}
    res = REPO / "benchmarks" / "results" / "bench_enkf.json"
    res.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
