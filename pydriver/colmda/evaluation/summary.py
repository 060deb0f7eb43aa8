"""``python -m colmda.evaluation.summary RUNDIR``: skill tables and figures of a matrix of twin experiments.

Writes into ``RUNDIR/summary/`` (each file atomically: a temporary file in the same directory, then ``os.replace``):

- ``skill.csv``: every score in long format (:data:`colmda.evaluation.skill.CSV_FIELDS`);
- ``skill.md``: headline tables per reference (group 'all'), then the gains by vegetation class and latitude band;
- ``timeseries.csv``: the daily spatial R and RMSE of every experiment against each reference (group 'all');
- the figures of :mod:`colmda.evaluation.figures` (unless ``--no-figures``).

and prints the headline tables (at most 100 characters wide). See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import textwrap
from pathlib import Path

import numpy as np

from ..errors import USER_ERROR_EXIT, UserError
from ..output import atomic_path
from . import skill

REFERENCE_TITLES = {
    "truth": "truth (all land columns of the runs)",
    "reference": "reference field (ERA5-Land-like: truth + spatially correlated error)",
    "insitu": "in-situ stations (model column of the station's cell)",
}
GROUP_TITLES = {"pft": "vegetation class (sparse to dense)", "lat_band": "latitude band"}


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def _fmt(v) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.6g}"


def csv_text(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(skill.CSV_FIELDS)
    for r in rows:
        w.writerow([_fmt(r[k]) if isinstance(r[k], float) else r[k] for k in skill.CSV_FIELDS])
    return buf.getvalue()


def timeseries_text(ev: skill.Evaluation) -> str:
    """Long-format CSV of the daily spatial scores: reference, experiment, layer, date, spatial_R, spatial_RMSE."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("reference", "experiment", "layer", "date", "spatial_R", "spatial_RMSE"))
    for ref, s in ev.series.items():
        for e in ev.matrix.experiments:
            if e.name not in s:
                continue
            for q, layer in enumerate(s["layers"]):
                for d, r, m in zip(s["time"], s[e.name]["spatial_R"][:, q], s[e.name]["spatial_RMSE"][:, q]):
                    w.writerow((ref, e.name, layer, str(d), _fmt(r), _fmt(m)))
    return buf.getvalue()


class Table:
    """Rows indexed by (experiment, reference, phase, layer, group_kind, group, metric)."""

    def __init__(self, rows):
        self.rows = {(r["experiment"], r["reference"], r["phase"], r["layer"], r["group_kind"], r["group"],
                      r["metric"]): r for r in rows}

    def get(self, exp, ref, phase, layer, kind, group, metric, key="value"):
        r = self.rows.get((exp, ref, phase, layer, kind, group, metric))
        return np.nan if r is None else r[key]

    def layers(self, ref):
        seen = []
        for k in self.rows:
            if k[1] == ref and k[3] not in seen:
                seen.append(k[3])
        return seen

    def phases(self, ref):
        seen = []
        for k in self.rows:
            if k[1] == ref and k[2] not in seen:
                seen.append(k[2])
        return seen

    def groups(self, ref, kind):
        seen = []
        for k in self.rows:
            if k[1] == ref and k[4] == kind and k[5] not in seen:
                seen.append(k[5])
        return seen


def _phase_span(m: skill.Matrix, phase: str) -> str:
    one = np.timedelta64(1, "D")
    if phase == "assimilation":
        return f"{m.start} to {m.forecast_start - one}"
    if phase == "forecast":
        return f"{m.forecast_start} to {m.end - one}"
    return f"{m.start} to {m.end - one}"


def _num(v, fmt) -> str:
    return format(v, fmt) if np.isfinite(v) else "-"


def _short(e) -> str:
    """The experiment's label if it fits the headline's first column, else its name."""
    return e.label if len(e.label) <= 17 else e.name[:17]


def headline_text(ev: skill.Evaluation) -> str:
    """The compact headline tables (group 'all'): per reference and phase, rows experiments, columns per layer
    R, dR (gain over the control) and ubRMSE. At most 100 characters wide for three layers."""
    t = Table(ev.rows)
    m = ev.matrix
    out = [f"Skill of {m.name}: temporal R, dR = R - R({m.control}), ubRMSE (m3 m-3); mean over columns/stations"]
    for ref in skill.REFERENCES:
        layers = t.layers(ref)
        if not layers:
            continue
        for phase in t.phases(ref):
            out.append("")
            out.append(f"vs {ref} - {phase} phase ({_phase_span(m, phase)})")
            out.append(f"{'experiment':<18}" + "".join(f" | {ly:^19}" for ly in layers))
            out.append(f"{'':<18}" + "".join(f" | {'R':>5} {'dR':>6} {'ubRMSE':>6}" for _ in layers))
            for e in m.experiments:
                cells = []
                for ly in layers:
                    r = t.get(e.name, ref, phase, ly, "all", "all", "R")
                    dr = t.get(e.name, ref, phase, ly, "all", "all", "R", "gain")
                    ub = t.get(e.name, ref, phase, ly, "all", "all", "ubRMSE")
                    cells.append(f" | {_num(r, '5.2f'):>5} {_num(dr, '+6.3f'):>6} {_num(ub, '6.4f'):>6}")
                out.append(f"{_short(e):<18}" + "".join(cells))
    for note in ev.notes:
        out += textwrap.wrap(f"note: {note}", 100, subsequent_indent="  ")
    return "\n".join(out) + "\n"


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown_text(ev: skill.Evaluation) -> str:
    """skill.md: headline tables per reference and phase, then dR / dubRMSE by vegetation class and latitude
    band."""
    t = Table(ev.rows)
    m = ev.matrix
    da = [e for e in m.experiments if e.name != m.control]
    lines = [f"# Skill of the experiments of {m.name}", "",
             f"Period {m.start} to {m.end - np.timedelta64(1, 'D')}"
             + (f", forecast phase from {m.forecast_start}" if m.forecast_start is not None else "")
             + f"; control `{m.control}`. Temporal scores per column/station over the days of each phase, then "
             "averaged over the group; gain = experiment - control (dR > 0 and dubRMSE < 0 are improvements). "
             "spatial R = mean over the days of the daily spatial correlation. Definitions: docs/evaluation.md.",
             ""]
    for note in ev.notes:
        lines.append(f"- note: {note}")
    for ref in skill.REFERENCES:
        layers = t.layers(ref)
        if not layers:
            continue
        lines += ["", f"## Against the {REFERENCE_TITLES[ref]}", ""]
        for phase in t.phases(ref):
            lines += [f"### {phase.capitalize()} phase ({_phase_span(m, phase)}), all", ""]
            header = ["experiment", "n"]
            for ly in layers:
                header += [f"{ly} R", "dR", "ubRMSE", "dubRMSE", "spatial R"]
            rows = []
            for e in m.experiments:
                n = t.get(e.name, ref, phase, layers[0], "all", "all", "R", "n")
                row = [e.label, _num(n, ".0f")]
                for ly in layers:
                    g = lambda metric, key="value": t.get(e.name, ref, phase, ly, "all", "all", metric, key)  # noqa
                    row += [_num(g("R"), ".3f"), _num(g("R", "gain"), "+.3f"), _num(g("ubRMSE"), ".4f"),
                            _num(g("ubRMSE", "gain"), "+.4f"), _num(g("spatial_R"), ".3f")]
                rows.append(row)
            lines += _md_table(header, rows) + [""]
        for kind in ("pft", "lat_band"):
            groups = t.groups(ref, kind)
            if not groups or not da:
                continue
            lines += [f"### By {GROUP_TITLES[kind]}: dR / dubRMSE over {m.control}", ""]
            for phase in t.phases(ref):
                lines += [f"{phase.capitalize()} phase:", ""]
                header = ["group", "layer", "n", f"{m.control} R"] + [e.label for e in da]
                rows = []
                for grp in groups:
                    for ly in layers:
                        n = t.get(m.control, ref, phase, ly, kind, grp, "R", "n")
                        if not np.isfinite(n):
                            continue
                        row = [grp, ly, _num(n, ".0f"), _num(t.get(m.control, ref, phase, ly, kind, grp, "R"), ".3f")]
                        for e in da:
                            dr = t.get(e.name, ref, phase, ly, kind, grp, "R", "gain")
                            du = t.get(e.name, ref, phase, ly, kind, grp, "ubRMSE", "gain")
                            row.append(f"{_num(dr, '+.3f')} / {_num(du, '+.4f')}")
                        rows.append(row)
                lines += _md_table(header, rows) + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_summary(rundir, *, figures: bool = True, min_days=skill.MIN_DAYS, min_columns=skill.MIN_COLUMNS,
                  min_spatial=skill.MIN_SPATIAL, progress=None) -> tuple[skill.Evaluation, list[Path]]:
    """Evaluate a matrix run directory and write ``summary/`` (see the module docstring)."""
    ev = skill.evaluate(rundir, min_days=min_days, min_columns=min_columns, min_spatial=min_spatial,
                        progress=progress)
    out = Path(rundir) / "summary"
    written = [write_text(out / "skill.csv", csv_text(ev.rows)),
               write_text(out / "skill.md", markdown_text(ev)),
               write_text(out / "timeseries.csv", timeseries_text(ev))]
    if figures:
        from . import figures as F

        written += F.make_figures(ev, out, log=progress)
    return ev, written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="colmda summary", description="Skill of a matrix of twin DA experiments "
                                "against the truth, the reference field and in-situ stations.")
    p.add_argument("rundir", help="matrix run directory (holds matrix.json)")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="write the PNG figures (default: yes)")
    p.add_argument("--min-days", type=int, default=skill.MIN_DAYS,
                   help=f"valid days for a per-column score (default {skill.MIN_DAYS})")
    p.add_argument("--min-columns", type=int, default=skill.MIN_COLUMNS,
                   help=f"columns/stations for a group mean (default {skill.MIN_COLUMNS})")
    p.add_argument("--min-spatial", type=int, default=skill.MIN_SPATIAL,
                   help=f"columns for a daily spatial score (default {skill.MIN_SPATIAL})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    a = p.parse_args(argv)
    for name in ("min_days", "min_columns", "min_spatial"):
        if getattr(a, name) < 2:
            p.error(f"--{name.replace('_', '-')} must be at least 2")
    log = None if a.quiet else (lambda msg: print(f"colmda summary: {msg}", file=sys.stderr))
    try:
        ev, written = write_summary(a.rundir, figures=a.figures, min_days=a.min_days, min_columns=a.min_columns,
                                    min_spatial=a.min_spatial, progress=log)
    except UserError as exc:
        print(f"colmda summary: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    print(headline_text(ev), end="")
    print(f"\nwrote {len(written)} files to {Path(a.rundir) / 'summary'}:")
    print(textwrap.fill(", ".join(p.name for p in written), 100, initial_indent="  ", subsequent_indent="  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
