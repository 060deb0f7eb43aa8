"""Bitwise comparison of two run directories (a refactor must not change a single bit of any result).

Every netCDF file under BEFORE (history, analysis, restart, simulated observations, evaluation data, any depth)
must exist under AFTER with the same relative path, and the other way round; in each pair every variable must
have the same dimensions, dtype, attributes and values (NaN equal to NaN, exactly equal otherwise), and so must
the global attributes except those that record when or where a file was made. JSON outputs (summary.json,
matrix.json, analysis statistics; not manifest.json, which records timings) are compared as data without their
timing entries and with the run directories' paths replaced; CSV tables byte for byte.

    python scripts/compare_runs.py BEFORE AFTER        # exit 0: identical; 1: differences (listed); 2: usage

Used to prove that the analysis-method protocol (issue 9) reproduces the SEKF bit for bit: the twin test
matrix (namelists/twin_test.nml) run before and after the change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: global attributes / JSON keys that say when, where or how fast, not what
VOLATILE = {"date_created", "date_modified", "history", "created", "created_utc", "wall_time_s", "timings",
            "wall_time_per_rank_s", "rundir", "host", "hostname", "pid", "elapsed_s", "seconds", "manifest"}


def _equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True)) and bool(np.array_equal(np.signbit(a), np.signbit(b)))
    return bool(np.array_equal(a, b))


def _short(v, n=80) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def compare_netcdf(p: Path, q: Path, roots: tuple = ()) -> list[str]:
    """Differences between two netCDF files; ``roots`` = (before run directory, after run directory): paths of
    the run directories inside string attributes (e.g. a restart's settings fingerprint) are not differences."""
    import netCDF4

    out = []
    with netCDF4.Dataset(p) as a, netCDF4.Dataset(q) as b:
        for name in sorted(set(a.ncattrs()) | set(b.ncattrs())):
            if name in VOLATILE:
                continue
            va = a.getncattr(name) if name in a.ncattrs() else None
            vb = b.getncattr(name) if name in b.ncattrs() else None
            if roots and isinstance(va, str) and isinstance(vb, str):
                va, vb = va.replace(str(roots[0]), "<RUN>"), vb.replace(str(roots[1]), "<RUN>")
            if va is None or vb is None or not _equal(va, vb):
                out.append(f"global attribute {name}: {_short(va)} != {_short(vb)}")
        if {k: len(v) for k, v in a.dimensions.items()} != {k: len(v) for k, v in b.dimensions.items()}:
            out.append("dimensions differ")
        for name in sorted(set(a.variables) | set(b.variables)):
            if name not in a.variables or name not in b.variables:
                out.append(f"variable {name} only in {'after' if name in b.variables else 'before'}")
                continue
            va, vb = a.variables[name], b.variables[name]
            va.set_auto_maskandscale(False)
            vb.set_auto_maskandscale(False)
            if va.dimensions != vb.dimensions or va.dtype != vb.dtype:
                out.append(f"{name}: dims/dtype {va.dimensions} {va.dtype} != {vb.dimensions} {vb.dtype}")
                continue
            attrs_a = {k: va.getncattr(k) for k in va.ncattrs()}
            attrs_b = {k: vb.getncattr(k) for k in vb.ncattrs()}
            if set(attrs_a) != set(attrs_b) or any(not _equal(attrs_a[k], attrs_b[k]) for k in attrs_a):
                out.append(f"{name}: attributes differ")
            if not _equal(va[...], vb[...]):
                x, y = np.asarray(va[...], dtype=float), np.asarray(vb[...], dtype=float)
                out.append(f"{name}: values differ (max |diff| {np.nanmax(np.abs(x - y)):.3g})" if x.shape == y.shape
                           else f"{name}: shapes {x.shape} != {y.shape}")
    return out


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def compare_json(p: Path, q: Path, before: Path, after: Path) -> list[str]:
    a = _strip(json.loads(p.read_text().replace(str(before), "<RUN>")))
    b = _strip(json.loads(q.read_text().replace(str(after), "<RUN>")))
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return [f"JSON entries differ: {', '.join(map(str, keys))}"]
    return ["JSON content differs"]


def compare_trees(before: Path, after: Path, with_json: bool = True) -> tuple[int, int, list[str]]:
    """(files compared, variables compared, differences)."""
    patterns = ["*.nc"] + (["*.json", "*.csv"] if with_json else [])

    def files(root):  # the manifest records timings and hosts, not results
        return {p.relative_to(root) for pat in patterns for p in root.rglob(pat) if p.name != "manifest.json"}

    rel_a, rel_b = files(before), files(after)
    diffs = [f"{r}: only in before" for r in sorted(rel_a - rel_b)]
    diffs += [f"{r}: only in after" for r in sorted(rel_b - rel_a)]
    nvar = 0
    for r in sorted(rel_a & rel_b):
        if r.suffix == ".nc":
            import netCDF4

            with netCDF4.Dataset(before / r) as ds:
                nvar += len(ds.variables)
            found = compare_netcdf(before / r, after / r, (before, after))
        elif r.suffix == ".json":
            found = compare_json(before / r, after / r, before, after)
        else:
            found = [] if (before / r).read_bytes() == (after / r).read_bytes() else ["content differs"]
        diffs += [f"{r}: {d}" for d in found]
    return len(rel_a & rel_b), nvar, diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    a = ap.parse_args(argv)
    for d in (a.before, a.after):
        if not d.is_dir():
            print(f"compare_runs: {d}: not a directory", file=sys.stderr)
            return 2
    nfile, nvar, diffs = compare_trees(a.before.resolve(), a.after.resolve())
    print(f"compare_runs: {nfile} files ({nvar} netCDF variables) compared, {len(diffs)} difference(s)")
    for d in diffs:
        print("  " + d)
    return 1 if diffs or nfile == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
