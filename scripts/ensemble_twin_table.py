#!/usr/bin/env python3
"""Tables of a `colmda twin` matrix with SEKF and EnKF-family experiments (docs/results.md, "SEKF vs EnKF vs
LETKF"), printed as markdown:

1. RMSE of the daily-mean soil moisture against the truth per model layer (1-7) over the whole experiment (all
   land columns and days; an ensemble experiment's history is its ensemble mean);
2. temporal correlation R at the simulated in-situ stations (10 cm) per phase, from the matrix's summary
   (``summary/skill.csv``, recomputed by ``colmda skill``) when it holds them;
3. ensemble spread vs actual error: for the ensemble experiments, the RMS background spread of each controlled
   layer at the analysis times (analysis files) against the RMSE of the ensemble-mean background against the
   truth's state at the same times (the truth's ``*_inst.nc`` history, the state at the end of each day), and
   the normalised innovation variance from summary.json;
4. cost: wall time of the experiment phase and of the core calls, and the analysis time, from each run's
   manifest, relative to CTL (runs made one after the other on a shared machine: indicative).

    python scripts/ensemble_twin_table.py RUNDIR [--extra NAME=LABEL ...]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import netCDF4
import numpy as np

from colmda.evaluation.history import load_soil_moisture

LAYERS = 7


def truth_states(truth_dir: Path) -> dict:
    """{analysis time string 'YYYY-MM-DDTHHMM': (column, theta (ncol, LAYERS))} from the truth's *_inst.nc."""
    out = {}
    for f in sorted((truth_dir / "history").glob("*_inst.nc")):
        with netCDF4.Dataset(f) as nc:
            t = netCDF4.num2date(nc["time"][:], nc["time"].units, only_use_cftime_datetimes=False)
            dz = np.asarray(nc["dz"][:LAYERS], float)
            col = np.ma.filled(nc["column"][:], -1).ravel()  # global column of every cell (points or grid)
            sm = np.ma.filled(nc["SoilMoist"][:], np.nan).astype(float)  # kg m-2, (time, depth, ...)
            sm = sm.reshape(sm.shape[0], sm.shape[1], -1)[:, :LAYERS] / (1000.0 * dz[None, :, None])
            land = col >= 0
            order = np.argsort(col[land])
            for k, tk in enumerate(t):
                out[tk.strftime("%Y-%m-%dT%H%M")] = (col[land][order], sm[k][:, land][:, order].T)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rundir", type=Path)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=LABEL",
                    help="another run directory RUNDIR/NAME of the same matrix (e.g. a variant made with colmda run)")
    a = ap.parse_args()
    root = a.rundir
    m = json.loads((root / "matrix.json").read_text())
    exps = [e["name"] for e in m["experiments"]]
    labels = {e["name"]: e["label"] for e in m["experiments"]}
    for x in a.extra:
        name, _, label = x.partition("=")
        exps.append(name)
        labels[name] = label or name
    truth = load_soil_moisture(root / "truth")
    dz = truth.dz_soil
    top = np.concatenate([[0], np.cumsum(dz)])
    print("RMSE against the truth per layer (m3 m-3, daily means, all columns and days)\n")
    print("| experiment | " + " | ".join(f"{100 * top[k]:.0f}-{100 * top[k + 1]:.0f} cm" for k in range(LAYERS)) +
          " |")
    print("| --- |" + " --- |" * LAYERS)
    rmse = {}
    for e in exps:
        h = load_soil_moisture(root / e)
        pos = truth.where_columns(h.column)
        days = np.intersect1d(h.time, truth.time)
        hi = np.searchsorted(h.time, days)
        ti = np.searchsorted(truth.time, days)
        d = h.theta[hi][:, :LAYERS] - truth.theta[ti][:, :LAYERS][:, :, pos]
        rmse[e] = np.sqrt(np.nanmean(d ** 2, axis=(0, 2)))
        print(f"| {labels[e]} | " + " | ".join(f"{x:.4f}" for x in rmse[e]) + " |")
    skill = root / "summary" / "skill.csv"
    if skill.is_file():
        rows = list(csv.DictReader(skill.open()))
        sel = [r for r in rows if r["reference"] == "insitu" and r["group_kind"] == "all" and
               r["metric"] in ("R", "temporal_R", "anomaly_R")]
        if sel:
            print("\nStation correlation (10 cm, median over stations)\n")
            print("| experiment | metric | phase | value | CTL |")
            print("| --- | --- | --- | --- | --- |")
            for r in sel:
                print(f"| {r['label']} | {r['metric']} | {r['phase']} | {float(r['value']):.3f} | "
                      f"{float(r['control_value']):.3f} |")
    # spread vs error (ensemble experiments)
    states = truth_states(root / "truth")
    print("\nEnsemble spread vs actual error of the background at the analysis times (m3 m-3, RMS over analysed "
          "columns and analyses)\n")
    print("| experiment | layer | spread | error | spread / error |")
    print("| --- | --- | --- | --- | --- |")
    for e in exps:
        files = sorted((root / e / "analysis").glob(f"{e}_*.nc")) if (root / e / "analysis").is_dir() else []
        sp2, er2 = [], []
        for f in files:
            with netCDF4.Dataset(f) as nc:
                if "background_spread" not in nc.variables or not len(nc.dimensions["column"]):
                    continue
                stamp = f.stem[len(e) + 1:]
                if stamp not in states:
                    continue
                col_t, th_t = states[stamp]
                cols = np.asarray(nc["column"][:])
                tpos = np.searchsorted(col_t, cols)
                sp2.append(np.asarray(nc["background_spread"][:]) ** 2)
                er2.append((np.asarray(nc["background"][:]) - th_t[tpos]) ** 2)
        if not sp2:
            continue
        sp = np.sqrt(np.concatenate(sp2).mean(axis=0))
        er = np.sqrt(np.concatenate(er2).mean(axis=0))
        for k in range(LAYERS):
            print(f"| {labels[e]} | {k + 1} | {sp[k]:.4f} | {er[k]:.4f} | {sp[k] / er[k]:.2f} |")
    print("\nInnovation statistics (summary.json)\n")
    print("| experiment | sensor | used | O-B mean | O-B std | d^2 / (HPH' + R) (ensemble); d^2 / R (SEKF) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for e in exps:
        p = root / e / "summary.json"
        if not p.is_file():
            continue
        inn = json.loads(p.read_text()).get("innovations", {})
        for k, v in inn.items():
            niv = v.get("normalised_innovation_variance", v.get("omf_normalised_rms", float("nan")) ** 2)
            print(f"| {labels[e]} | {k} | {v['used']} | {v['omf_mean']:.4f} | {v['omf_std']:.4f} | {niv:.2f} |")
    print("\nCost (wall seconds from the manifests; relative to CTL)\n")
    print("| experiment | experiment s | core s | analysis s | experiment / CTL |")
    print("| --- | --- | --- | --- | --- |")
    ctl = json.loads((root / "CTL" / "manifest.json").read_text())["wall_time_s"]
    for e in exps:
        w = json.loads((root / e / "manifest.json").read_text())["wall_time_s"]
        print(f"| {labels[e]} | {w['experiment']:.1f} | {w['core']:.1f} | {w.get('analysis', 0):.1f} | "
              f"{w['experiment'] / ctl['experiment']:.1f} |")


if __name__ == "__main__":
    main()
