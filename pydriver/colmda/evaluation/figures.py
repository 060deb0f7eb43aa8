"""Figures of a matrix evaluation, after the seed paper's Figs. 2, 5, 8 and 11 (PNG, matplotlib Agg backend).

- ``fig2_timeseries_<reference>.png``: daily spatial R and RMSE against the reference field (and the truth) for
  each layer; the control dashed, the single-sensor experiments coloured (L red, C green, X purple), a vertical
  line at ``forecast_start``.
- ``fig5_vegetation_gain.png``: dR and dRMSE over the control by vegetation class (sparse to dense) for the
  single-sensor experiments, against the reference field (the truth when there is no reference), assimilation
  phase.
- ``fig8_station_gain_pdf.png``: PDF over the stations of the per-station correlation gain over the control for
  every DA experiment (assimilation phase), the mean gain in the legend.
- ``fig11_combination_gain_pdf.png``: the same for NEW, L+C and L+C+X.

A figure whose experiments (or data) are absent is skipped with a message. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..output import atomic_path
from . import skill

SENSOR_COLOURS = {"L": "tab:red", "C": "tab:green", "X": "tab:purple"}
OTHER_COLOURS = ("tab:blue", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
KDE_MIN_STATIONS = 20  # fewer stations with a gain: a histogram instead of a kernel density estimate


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> Path:
    """Save a figure as PNG atomically and close it."""
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------------------------------------------------------
# experiment selection


def _two_phase(m: skill.Matrix, e: skill.Experiment) -> bool:
    return e.assimilation_end not in (None, "") and np.datetime64(e.assimilation_end, "D") < m.end


def single_sensor_experiments(m: skill.Matrix) -> list:
    """Experiments assimilating one sensor: the two-phase ones (assimilation then forecast) when there are any,
    else the continuous ones."""
    one = [e for e in m.experiments if e.name != m.control and len(e.sensors) == 1]
    two = [e for e in one if _two_phase(m, e)]
    return two or one


def combination_experiments(m: skill.Matrix) -> list:
    """NEW, L+C and L+C+X (those present; continuous assimilation preferred when both kinds exist)."""
    out = []
    for wanted in ("NEW", {"L", "C"}, {"L", "C", "X"}):
        if wanted == "NEW":
            cand = [e for e in m.experiments if e.name.upper() == "NEW" or e.label.upper() == "NEW"]
        else:
            cand = [e for e in m.experiments if set(e.sensors) == wanted and e.name != m.control
                    and e.name.upper() != "NEW" and e.label.upper() != "NEW"]
        cand.sort(key=lambda e: _two_phase(m, e))
        if cand:
            out.append(cand[0])
    return out


def colours(experiments) -> dict:
    """A colour per experiment: the sensor colour for single-sensor experiments, then a cycle."""
    out, k = {}, 0
    used = set()
    for e in experiments:
        c = SENSOR_COLOURS.get(e.sensors[0]) if len(e.sensors) == 1 else None
        if c is None or c in used:
            c = OTHER_COLOURS[k % len(OTHER_COLOURS)]
            k += 1
        used.add(c)
        out[e.name] = c
    return out


# ---------------------------------------------------------------------------------------------------------------
# figures


def fig_timeseries(ev: skill.Evaluation, reference: str, path):
    """Fig. 2: daily spatial R (left) and RMSE (right) per layer against ``reference``."""
    plt = _plt()
    m = ev.matrix
    s = ev.series.get(reference)
    exps = single_sensor_experiments(m)
    if s is None:
        return None, f"no {reference} data"
    if not exps:
        return None, "no single-sensor experiment"
    col = colours(exps)
    nq = len(s["layers"])
    fig, axes = plt.subplots(nq, 2, figsize=(11, 2.6 * nq), sharex=True, squeeze=False)
    t = s["time"].astype("datetime64[D]")
    for q, layer in enumerate(s["layers"]):
        for j, metric in enumerate(("spatial_R", "spatial_RMSE")):
            ax = axes[q, j]
            ax.plot(t, s[m.control][metric][:, q], "k--", lw=1.4, label=m.experiment(m.control).label)
            for e in exps:
                ax.plot(t, s[e.name][metric][:, q], color=col[e.name], lw=1.4, label=e.label)
            if m.forecast_start is not None:
                ax.axvline(m.forecast_start, color="0.4", ls="--", lw=1)
            ax.set_ylabel("R" if j == 0 else "RMSE (m3 m-3)")
            ax.set_title(f"({chr(97 + 2 * q + j)}) spatial {'R' if j == 0 else 'RMSE'} {layer}", fontsize=9,
                         loc="left")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.autofmt_xdate()
    fig.suptitle(f"{m.name}: spatial skill against the {reference} "
                 "(left of the dashed line: assimilation, right: forecast)", fontsize=10)
    return save(fig, path), None


def fig_vegetation(ev: skill.Evaluation, path):
    """Fig. 5: dR and dRMSE over the control by vegetation class, single-sensor experiments."""
    plt = _plt()
    m = ev.matrix
    exps = single_sensor_experiments(m)
    t = {(r["experiment"], r["reference"], r["phase"], r["layer"], r["group"], r["metric"]): r
         for r in ev.rows if r["group_kind"] == "pft"}
    ref = "reference" if any(k[1] == "reference" for k in t) else "truth"
    phase = next((k[2] for k in t if k[1] == ref), None)
    if not exps:
        return None, "no single-sensor experiment"
    if phase is None:
        return None, "no vegetation class with enough columns"
    layers = list(dict.fromkeys(k[3] for k in t if k[1] == ref))
    groups = [g for g in ev.pft_order if any(k[4] == g and k[1] == ref for k in t)]
    col = colours(exps)
    fig, axes = plt.subplots(len(layers), 2, figsize=(12, 2.8 * len(layers)), sharex=True, squeeze=False)
    x = np.arange(len(groups))
    width = 0.8 / len(exps)
    for q, layer in enumerate(layers):
        for j, metric in enumerate(("R", "RMSE")):
            ax = axes[q, j]
            for k, e in enumerate(exps):
                g = [t.get((e.name, ref, phase, layer, grp, metric), {}).get("gain", np.nan) for grp in groups]
                ax.bar(x + (k - (len(exps) - 1) / 2) * width, g, width, color=col[e.name], label=e.label)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_title(f"({chr(97 + 2 * q + j)}) d{metric} {layer}", fontsize=9, loc="left")
            ax.grid(axis="y", alpha=0.3)
    for ax in axes[-1]:
        ax.set_xticks(x)
        ax.set_xticklabels(groups, rotation=60, ha="right", fontsize=7)
    fig.suptitle(f"{m.name}: gain over {m.control} by vegetation class (sparse to dense), against the {ref}, "
                 f"{phase} phase", fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=len(exps), fontsize=8,
               bbox_to_anchor=(0.5, 0.965), frameon=False)
    return save(fig, path), None


def _pdf(ax, values, colour, label):
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return
    lab = f"{label} (mean dR = {v.mean():+.3f}, n = {len(v)})"
    if len(v) >= KDE_MIN_STATIONS and np.std(v) > 0:
        from scipy.stats import gaussian_kde

        grid = np.linspace(v.min() - 0.1, v.max() + 0.1, 400)
        ax.plot(grid, gaussian_kde(v)(grid), color=colour, lw=1.6, label=lab)
    else:
        ax.hist(v, bins=max(5, min(20, len(v) // 2)), density=True, histtype="step", color=colour, lw=1.6,
                label=lab)


def fig_station_pdf(ev: skill.Evaluation, experiments, path, title):
    """Figs. 8 / 11: PDF over stations of the correlation gain over the control (assimilation phase)."""
    plt = _plt()
    m = ev.matrix
    if not ev.station_gain:
        return None, "no in-situ data"
    if not experiments:
        return None, "its experiments are absent"
    phase = next(iter(ev.station_gain))[1]
    col = colours(experiments)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for e in experiments:
        _pdf(ax, ev.station_gain[(e.name, phase)], col[e.name], e.label)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"dR = R(experiment) - R({m.control}) at the stations")
    ax.set_ylabel("probability density")
    ax.set_title(f"{m.name}: {title} ({phase} phase)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path), None


def make_figures(ev: skill.Evaluation, outdir, log=None) -> list[Path]:
    """All figures that the evaluation's experiments and data allow; returns the files written."""
    say = log or (lambda msg: None)
    outdir = Path(outdir)
    m = ev.matrix
    jobs = [(f"fig2_timeseries_{ref}.png", lambda p, r=ref: fig_timeseries(ev, r, p)) for ref in ("reference", "truth")]
    jobs.append(("fig5_vegetation_gain.png", lambda p: fig_vegetation(ev, p)))
    da = [e for e in m.experiments if e.name != m.control]
    jobs.append(("fig8_station_gain_pdf.png",
                 lambda p: fig_station_pdf(ev, da, p, "correlation gain over the control at the stations")))
    combo = combination_experiments(m)
    jobs.append(("fig11_combination_gain_pdf.png",
                 lambda p: fig_station_pdf(ev, combo, p, "correlation gain of NEW, L+C, L+C+X at the stations")
                 if len(combo) >= 2 else (None, "needs at least two of NEW, L+C, L+C+X")))
    written = []
    for name, job in jobs:
        path, why = job(outdir / name)
        if path is None:
            say(f"skipped {name}: {why}")
        else:
            written.append(path)
    return written
