"""Flux-tower evaluation of a site run: daily latent and sensible heat against PLUMBER2 / FLUXNET observations.

Observations: the PLUMBER2 flux file (``Qle``, ``Qh`` with ``_qc`` flags; 0 measured, 1 good gap-fill). Only
half-hours with QC 0-1 are used; a day counts when at least half of its half-hours are valid, and the daily
mean of model, observation and benchmark is taken over the same valid half-hours.

Benchmark: the PLUMBER "1lin" empirical model, a linear regression of each flux on incoming shortwave fitted
to the site's own valid half-hours (in-sample, so it is a demanding reference for the diurnal and seasonal
radiation-driven part of the flux; PLUMBER fits out of sample across sites).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics

FLUXES = ("Qle", "Qh")


@dataclass
class SiteObservations:
    time_utc: np.ndarray  # (n,) datetime64[s], start of each averaging interval (UTC)
    flux: dict  # name -> (n,) observed flux (W m-2), NaN where QC > 1
    swdown: np.ndarray  # (n,) incoming shortwave (W m-2)


def _site_var(ds, name):
    return np.asarray(ds[name].values, dtype=float).reshape(ds.sizes["time"], -1)[:, 0]


def load_observations(flux_file, met_file, utc_offset_hours: float, corrected: bool = False) -> SiteObservations:
    """Read a PLUMBER2 flux/met pair. Time stamps there are local standard time at the start of each interval.
    ``corrected`` uses the energy-balance-corrected fluxes (``Qle_cor``, ``Qh_cor``) of FLUXNET2015."""
    import xarray as xr

    with xr.open_dataset(flux_file) as f, xr.open_dataset(met_file) as m:
        t_local = f["time"].values.astype("datetime64[s]")
        t_utc = t_local - np.timedelta64(int(round(utc_offset_hours * 3600)), "s")
        flux = {}
        for name in FLUXES:
            var = f"{name}_cor" if corrected else name
            val = _site_var(f, var)
            qc = _site_var(f, f"{var}_qc")
            flux[name] = np.where(qc <= 1, val, np.nan)
        sw = _site_var(m, "SWdown")
        if not np.array_equal(m["time"].values, f["time"].values):
            raise ValueError(f"{flux_file} and {met_file} have different time axes")
    return SiteObservations(t_utc, flux, sw)


def load_model(run_dir, names=FLUXES) -> tuple[np.ndarray, dict]:
    """Half-hourly model fluxes of a point run from its history files: (interval start UTC, {name: values})."""
    import xarray as xr

    files = sorted(glob.glob(str(Path(run_dir) / "history" / "*.nc"))) or sorted(glob.glob(str(Path(run_dir) / "*.nc")))
    files = [f for f in files if not f.endswith("_inst.nc")]  # end-of-interval states: no fluxes
    if not files:
        raise FileNotFoundError(f"no history files in {run_dir}")
    starts, parts = [], {n: [] for n in names}
    for path in files:  # one file per period; concatenated here without dask
        with xr.open_dataset(path) as ds:
            starts.append(ds["time_bnds"].values[:, 0] if "time_bnds" in ds else ds["time"].values)
            for n in names:
                parts[n].append(np.asarray(ds[n].values, dtype=float).reshape(ds.sizes["time"], -1)[:, 0])
    start = np.concatenate(starts)
    out = {n: np.concatenate(v) for n, v in parts.items()}
    return np.asarray(start).astype("datetime64[s]"), out


def linear_shortwave_benchmark(sw: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """PLUMBER 1lin: least-squares fit obs = a + b * SWdown on the valid half-hours, evaluated everywhere."""
    ok = np.isfinite(obs) & np.isfinite(sw)
    b, a = np.polyfit(sw[ok], obs[ok], 1)
    return a + b * sw


def daily_means(time_utc, values, valid, min_fraction=0.5, steps_per_day=48):
    """Daily means over valid half-hours (UTC days); days with fewer than min_fraction valid are NaN."""
    days = time_utc.astype("datetime64[D]")
    uniq, inv = np.unique(days, return_inverse=True)
    n = np.bincount(inv, weights=valid.astype(float), minlength=len(uniq))
    s = np.bincount(inv, weights=np.where(valid, values, 0.0), minlength=len(uniq))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
    mean[n < min_fraction * steps_per_day] = np.nan
    return uniq, mean


def evaluate(obs: SiteObservations, model_time, model: dict) -> dict:
    """Daily RMSE, bias and correlation of the model and of the 1lin benchmark against the observations."""
    common, io, im = np.intersect1d(obs.time_utc, model_time, return_indices=True)
    if len(common) < 48:
        raise ValueError("model and observations overlap in fewer than 48 half-hours")
    result = {"n_halfhours": int(len(common))}
    for name in FLUXES:
        o = obs.flux[name][io]
        m = model[name][im]
        bench = linear_shortwave_benchmark(obs.swdown[io], o)
        valid = np.isfinite(o) & np.isfinite(m)
        days, od = daily_means(common, o, valid)
        _, md = daily_means(common, m, valid)
        _, bd = daily_means(common, bench, valid)
        result[name] = {
            "days": int(np.isfinite(od).sum()),
            "model": {"rmse": float(metrics.rmse(od, md)), "bias": float(metrics.bias(md, od)),
                      "r": float(metrics.pearson_r(od, md))},
            "1lin": {"rmse": float(metrics.rmse(od, bd)), "bias": float(metrics.bias(bd, od)),
                     "r": float(metrics.pearson_r(od, bd))},
            "series": {"day": days, "obs": od, "model": md, "1lin": bd},
        }
    return result


def figure(result: dict, path, title="") -> None:
    """Daily Qle and Qh: observations, model and the 1lin benchmark (time series and scatter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7), gridspec_kw={"width_ratios": [3, 1]})
    for row, name in enumerate(FLUXES):
        r = result[name]
        s = r["series"]
        ax = axes[row, 0]
        ax.plot(s["day"], s["obs"], "k.", ms=3, label="observed (QC 0-1)")
        ax.plot(s["day"], s["model"], "-", color="tab:blue", lw=1,
                label=f"colmda (RMSE {r['model']['rmse']:.1f}, r {r['model']['r']:.2f})")
        ax.plot(s["day"], s["1lin"], "-", color="tab:orange", lw=0.8, alpha=0.8,
                label=f"1lin on SWdown (RMSE {r['1lin']['rmse']:.1f}, r {r['1lin']['r']:.2f})")
        ax.set_ylabel(f"daily {name} (W m-2)")
        ax.legend(fontsize=8, loc="upper left")
        ax = axes[row, 1]
        ax.plot(s["obs"], s["model"], ".", ms=3, color="tab:blue")
        lim = [np.nanmin([s["obs"], s["model"]]), np.nanmax([s["obs"], s["model"]])]
        ax.plot(lim, lim, "k-", lw=0.5)
        ax.set_xlabel(f"observed {name}")
        ax.set_ylabel(f"model {name}")
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(result: dict) -> str:
    lines = ["| flux | days | model RMSE | model bias | model r | 1lin RMSE | 1lin bias | 1lin r |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in FLUXES:
        r = result[name]
        m, b = r["model"], r["1lin"]
        lines.append(f"| {name} | {r['days']} | {m['rmse']:.1f} | {m['bias']:+.1f} | {m['r']:.2f} | "
                     f"{b['rmse']:.1f} | {b['bias']:+.1f} | {b['r']:.2f} |")
    return "\n".join(lines)


def energy_closure(flux_file) -> float:
    """Observed (Qle + Qh) / (Rnet - Qg) over half-hours where all four are measured or good gap-fill."""
    import xarray as xr

    with xr.open_dataset(flux_file) as f:
        v = {n: _site_var(f, n) for n in ("Qle", "Qh", "Rnet", "Qg")}
        ok = np.all([_site_var(f, f"{n}_qc") <= 1 for n in v], axis=0)
    return float((v["Qle"][ok] + v["Qh"][ok]).sum() / (v["Rnet"][ok] - v["Qg"][ok]).sum())


def main(argv=None) -> int:
    """python -m colmda.evaluation.site RUNDIR --flux FLUX.nc --met MET.nc [--utc-offset 1] [--since DATE]
    [--figure PNG]: print the daily skill table (markdown) of a point run against a PLUMBER2 site."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m colmda.evaluation.site", description=main.__doc__)
    ap.add_argument("rundir")
    ap.add_argument("--flux", required=True)
    ap.add_argument("--met", required=True)
    ap.add_argument("--utc-offset", type=float, default=1.0, help="hours the file's local standard time is ahead of UTC")
    ap.add_argument("--since", default=None, help="evaluate from this date (YYYY-MM-DD) on")
    ap.add_argument("--corrected", action="store_true", help="use the energy-balance-corrected Qle_cor / Qh_cor")
    ap.add_argument("--figure", default=None)
    a = ap.parse_args(argv)
    obs = load_observations(a.flux, a.met, a.utc_offset, corrected=a.corrected)
    t, m = load_model(a.rundir)
    if a.since:
        keep = t >= np.datetime64(a.since, "s")
        t, m = t[keep], {k: v[keep] for k, v in m.items()}
    r = evaluate(obs, t, m)
    print(markdown_table(r))
    print(f"\nobserved energy-balance closure (Qle + Qh) / (Rnet - Qg): {energy_closure(a.flux):.2f}")
    if a.figure:
        figure(r, a.figure, title=f"{Path(a.flux).name.split('_')[0]}: daily means over QC 0-1 half-hours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
