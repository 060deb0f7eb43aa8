"""Cost of an SEKF experiment relative to the control run (CTL), against the finite-difference limit.

Wall-time ratios include what the perturbed runs share with the background (forcing generation, output);
core-time ratios count only the Fortran core.

On the main job's region (namelists/default.nml, 202 columns) and one process: a truth run that simulates the
L, C and X retrievals, then CTL and SEKF runs (L only; L+C+X) over the same days from the same state. Reports
the wall time of the experiment phase of each run, the ratio SEKF / CTL, the finite-difference limit
1 + control_layers (every column perturbed every window) and the effective limit
1 + control_layers * (fraction of columns with usable retrievals per window, from the analysis files; only
those are perturbed). Writes ``benchmarks/results/bench_sekf.json``.

    python benchmarks/bench_sekf.py [--days 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NML = REPO / "namelists" / "default.nml"


def colmda(args, out: Path) -> dict:
    cmd = [str(BIN / "colmda"), "run", str(NML), "--no-progress", "--log-level", "warning",
           "--set", f"output.directory='{out}'", *args]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads((out / "manifest.json").read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--workdir", default=str(REPO / "runs" / "bench_sekf"))
    a = ap.parse_args()
    w = Path(a.workdir)
    end = f"experiment.end='2005-06-{1 + a.days:02d}'"
    sets = lambda *kv: [x for k in kv for x in ("--set", k)]  # noqa: E731
    colmda(sets(end, "experiment.name=truth", "forcing.seed=101", "forcing.perturb=.false.",
                "forcing.precip_scale=1.0", "observations.simulate=L,C,X"), w / "truth")
    colmda(sets(end, "experiment.name=spinup"), w / "spinup")
    init = sorted((w / "spinup" / "restart").glob("spinup_*spinup-cycle*.nc"))[-1]
    start = [f"experiment.initial_restart={init}", "experiment.spinup_max_cycles=0"]
    ctl = colmda(sets(end, "experiment.name=CTL", *start), w / "CTL")
    rows = {"CTL": {"experiment_s": ctl["wall_time_s"]["experiment"], "core_s": ctl["wall_time_s"]["core"]}}
    ncol = int(ctl["columns"])
    layers = 7
    for name, sensors in (("L", "L"), ("LCX", "L,C,X")):
        m = colmda(sets(end, f"experiment.name={name}", *start, "assimilation.method=sekf",
                        f"observations.directory={w / 'truth' / 'obs'}", f"observations.sensors={sensors}",
                        "assimilation.background_error=0.05"), w / name)
        import xarray as xr

        frac = []
        for f in sorted((w / name / "analysis").glob("*.nc")):
            with xr.open_dataset(f, decode_times=False) as ds:
                frac.append(ds.sizes["column"] / ncol)
        t = m["wall_time_s"]["experiment"]
        eff = 1 + layers * float(np.mean(frac))
        rows[name] = {"experiment_s": t, "core_s": m["wall_time_s"]["core"],
                      "ratio_to_ctl": t / rows["CTL"]["experiment_s"], "fd_limit": 1 + layers,
                      "core_ratio_to_ctl": m["wall_time_s"]["core"] / rows["CTL"]["core_s"],
                      "perturbed_fraction": float(np.mean(frac)), "effective_limit": eff,
                      "ratio_to_effective_limit": t / rows["CTL"]["experiment_s"] / eff}
    for k, r in rows.items():
        print(k, json.dumps({kk: round(v, 3) for kk, v in r.items()}))
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_sekf.json").write_text(json.dumps({"days": a.days, "columns": ncol, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
