"""Numeric regression baseline: a small deterministic run with SEKF analyses, compared variable by variable.

The run (namelists/test_small.nml, a 10 x 8 cell box over western Europe, shortened to two daily windows after
one spin-up cycle): a truth run that simulates L-band retrievals, then an SEKF run with another forcing seed
that assimilates them, so the analyses make real increments. Every data variable of the SEKF run's history
files and of its analysis files (per window) is compared with the committed baseline
``tests/baseline/small_sekf.npz`` under the per-variable tolerance in :data:`TOLERANCES`.

    python scripts/baseline.py --check     # (default) rerun, print per variable what changed, exit 1 beyond tolerance
    python scripts/baseline.py --update    # rerun and overwrite the baseline (after an intended change)

``--keep DIR`` keeps the run directories. Exit status: 0 within tolerance, 1 beyond, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NAMELIST = REPO / "namelists" / "test_small.nml"
BASELINE = REPO / "tests" / "baseline" / "small_sekf.npz"
META = BASELINE.with_suffix(".json")

COMMON = ["experiment.end='2005-06-03'", "experiment.spinup_max_cycles=1"]
TRUTH = ["observations.simulate=L"]
SEKF = ["forcing.seed=4", "assimilation.method=sekf", "observations.sensors=L", "observations.error=0.02",
        "assimilation.background_error=0.03"]

#: Per-variable tolerances, first matching pattern wins. ``close``: |new - old| <= atol + rtol |old| with
#: atol = scale * max|old| (history is stored as float32, about 6e-8 relative; a refactor or a compiler change
#: may move iterative solvers by ~1e-7 relative, physics changes move far more). ``exact``: integers and
#: bookkeeping must match exactly. ``bound``: balance residuals are round-off themselves; they must stay below
#: ``factor`` times the baseline's largest magnitude (plus ``floor``).
TOLERANCES = [
    ("history/*BalErr", {"kind": "bound", "factor": 10.0, "floor": 1e-9}),
    ("history/SoilHeatErr", {"kind": "bound", "factor": 10.0, "floor": 1e-9}),
    ("history/LeafEnergyRes", {"kind": "bound", "factor": 10.0, "floor": 1e-9}),
    ("history/*", {"kind": "close", "rtol": 1e-5, "scale": 1e-5}),
    ("history_inst/*", {"kind": "close", "rtol": 1e-5, "scale": 1e-5}),
    ("analysis/*/reason", {"kind": "exact"}),
    ("analysis/*/n_obs", {"kind": "exact"}),
    ("analysis/*/obs_column", {"kind": "exact"}),
    ("analysis/*/sensor", {"kind": "exact"}),
    ("analysis/*/time", {"kind": "exact"}),
    ("analysis/*/column", {"kind": "exact"}),
    # finite-difference Jacobians divide state differences by perturbations of 1e-4: allow 10x more
    ("analysis/*", {"kind": "close", "rtol": 1e-4, "scale": 1e-4}),
]


def tolerance_for(name: str) -> dict:
    for pattern, tol in TOLERANCES:
        if fnmatch.fnmatchcase(name, pattern):
            return tol
    raise KeyError(name)


def run_case(workdir: Path) -> dict[str, np.ndarray]:
    """Run truth and SEKF in ``workdir`` and return {name: array} of everything the baseline holds."""
    import xarray as xr

    from colmda import config
    from colmda.parallel import SerialComm
    from colmda.run import run

    truth = workdir / "truth"
    sekf = workdir / "sekf"
    run(config.load(NAMELIST, overrides=COMMON + TRUTH + [f"output.directory='{truth}'"]), comm=SerialComm(),
        progress=False)
    run(config.load(NAMELIST, overrides=COMMON + SEKF + [f"output.directory='{sekf}'",
                                                          f"observations.directory='{truth / 'obs'}'"]),
        comm=SerialComm(), progress=False)
    arrays: dict[str, np.ndarray] = {}
    history = sorted((sekf / "history").glob("*.nc"))
    analyses = sorted((sekf / "analysis").glob("*.nc"))
    if not history or not analyses:
        raise RuntimeError(f"{sekf}: the run wrote no history or no analysis files")
    for path in history:
        # interval means in history/, the end-of-interval ALMA states (*_inst.nc, docs/output.md) in history_inst/
        inst = path.stem.endswith("_inst")
        group = [p for p in history if p.stem.endswith("_inst") == inst]
        prefix = "history_inst" if inst else "history"
        with xr.open_dataset(path, decode_times=False) as ds:
            for name, var in ds.data_vars.items():
                key = f"{prefix}/{name}" if len(group) == 1 else f"{prefix}/{path.stem}/{name}"
                arrays[key] = np.asarray(var.values)
    for path in analyses:
        stamp = path.stem.rsplit("_", 1)[-1]
        with xr.open_dataset(path, decode_times=False) as ds:
            for name in list(ds.data_vars) + list(ds.coords):
                arrays[f"analysis/{stamp}/{name}"] = np.asarray(ds[name].values)
    return arrays


def compare(old: dict, new: dict) -> tuple[list[dict], bool]:
    """Compare every variable; returns (rows, ok). A row: name, status, worst |diff|, worst diff / allowed."""
    rows = []
    ok = True
    for name in sorted(set(old) | set(new)):
        if name not in new:
            rows.append({"name": name, "status": "MISSING", "detail": "in the baseline, not in the run"})
            ok = False
            continue
        if name not in old:
            rows.append({"name": name, "status": "new", "detail": "not in the baseline (run --update to add)"})
            continue
        a, b = np.asarray(old[name]), np.asarray(new[name])
        if a.shape != b.shape:
            rows.append({"name": name, "status": "SHAPE", "detail": f"{a.shape} -> {b.shape}"})
            ok = False
            continue
        tol = tolerance_for(name)
        nan_a, nan_b = _isnan(a), _isnan(b)
        if np.any(nan_a != nan_b):
            rows.append({"name": name, "status": "NAN", "detail": f"{int((nan_a != nan_b).sum())} values change "
                                                                 "between missing and present"})
            ok = False
            continue
        fa = np.where(nan_a, 0, a).astype(np.float64) if a.dtype.kind in "fiub" else None
        fb = np.where(nan_b, 0, b).astype(np.float64) if b.dtype.kind in "fiub" else None
        if fa is None or fb is None:
            same = np.array_equal(a, b)
            rows.append({"name": name, "status": "ok" if same else "CHANGED", "detail": "non-numeric"})
            ok &= same
            continue
        diff = np.abs(fb - fa)
        if tol["kind"] == "exact":
            allowed = np.zeros_like(fa)
        elif tol["kind"] == "close":
            allowed = tol["scale"] * (np.abs(fa).max() if fa.size else 0.0) + tol["rtol"] * np.abs(fa)
        else:  # bound: the new residual must stay small, whatever its sign
            limit = tol["factor"] * (np.abs(fa).max() if fa.size else 0.0) + tol["floor"]
            worst = float(np.abs(fb).max()) if fb.size else 0.0
            good = worst <= limit
            rows.append({"name": name, "status": "ok" if good else "BEYOND", "max_abs_diff": float(diff.max(initial=0)),
                         "ratio": worst / limit, "detail": f"max |residual| {worst:.3g} (limit {limit:.3g})"})
            ok &= good
            continue
        excess = diff - allowed
        beyond = excess > 0
        per_value = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1), np.where(diff > 0, np.inf, 0))
        ratio = float(np.max(per_value, initial=0.0))
        worst_diff = float(diff.max(initial=0))
        row = {"name": name, "status": "BEYOND" if beyond.any() else ("changed" if worst_diff > 0 else "ok"),
               "max_abs_diff": worst_diff, "ratio": ratio}
        if beyond.any():
            k = np.unravel_index(int(np.argmax(excess)), diff.shape)
            row["detail"] = (f"{int(beyond.sum())} of {diff.size} values beyond tolerance; worst at index "
                             f"{tuple(map(int, k))}: {fa[k]:.7g} -> {fb[k]:.7g}")
            ok = False
        rows.append(row)
    return rows, ok


def _isnan(a):
    return np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, dtype=bool)


def print_rows(rows, verbose=False):
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if not verbose and r["status"] == "ok":
            continue
        diff = f"{r['max_abs_diff']:.3g}" if "max_abs_diff" in r else "-"
        ratio = f"{r['ratio']:.3g}" if "ratio" in r else "-"
        print(f"  {r['name']:{width}s}  {r['status']:8s} max|diff| {diff:>9s}  diff/allowed {ratio:>8s}  "
              f"{r.get('detail', '')}")


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_baseline(arrays: dict):
    BASELINE.parent.mkdir(parents=True, exist_ok=True)
    tmp = BASELINE.with_name(BASELINE.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(BASELINE)
    meta = {
        "what": "colmda regression baseline: history and SEKF analysis variables of a small run (scripts/baseline.py)",
        "namelist": str(NAMELIST.relative_to(REPO)), "common_overrides": COMMON, "truth_overrides": TRUTH,
        "sekf_overrides": SEKF, "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(), "numpy": np.__version__,
        "variables": {name: {"shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype),
                             "tolerance": tolerance_for(name), **_stats(a)} for name, a in sorted(arrays.items())},
    }
    tmpj = META.with_suffix(".json.tmp")
    tmpj.write_text(json.dumps(meta, indent=1) + "\n")
    tmpj.replace(META)


def _stats(a):
    a = np.asarray(a)
    if a.dtype.kind not in "fiub" or a.size == 0:
        return {}
    f = a.astype(np.float64)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return {"finite": 0}
    return {"min": float(f.min()), "max": float(f.max()), "mean": float(f.mean()), "median": float(np.median(f))}


def load_baseline() -> dict:
    with np.load(BASELINE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with the committed baseline (default)")
    mode.add_argument("--update", action="store_true", help="regenerate the committed baseline")
    ap.add_argument("--keep", type=Path, help="keep the run directories here")
    ap.add_argument("--verbose", action="store_true", help="list unchanged variables too")
    args = ap.parse_args(argv)
    if not args.update and not BASELINE.exists():
        print(f"baseline: {BASELINE.relative_to(REPO)} does not exist; create it with "
              "python scripts/baseline.py --update", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="colmda-baseline-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        arrays = run_case(work)
    if args.update:
        old = load_baseline() if BASELINE.exists() else {}
        if old:
            rows, _ = compare(old, arrays)
            print("baseline: changes against the previous baseline")
            print_rows(rows, args.verbose)
        write_baseline(arrays)
        print(f"baseline: wrote {BASELINE.relative_to(REPO)} ({len(arrays)} variables) and "
              f"{META.relative_to(REPO)}")
        return 0
    rows, ok = compare(load_baseline(), arrays)
    changed = [r for r in rows if r["status"] != "ok"]
    print(f"baseline: {len(rows)} variables, {len(changed)} not identical, "
          f"{sum(r['status'] in ('BEYOND', 'MISSING', 'SHAPE', 'NAN', 'CHANGED') for r in rows)} beyond tolerance")
    print_rows(rows, args.verbose)
    if not ok:
        print("baseline: results drifted beyond tolerance. If the change is intended, regenerate with "
              "python scripts/baseline.py --update and commit tests/baseline/.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
