"""Evaluation of a run against ISMN in-situ stations (``colmda evaluate RUNDIR --insitu ISMN_DIR``).

1. Stations: an ISMN archive folder (``header_values`` or ``ceop_sep`` layout: Network/Station/*.stm) read with the
   ``ismn`` package (``ISMN_Interface``, metadata written to a temporary folder so the archive may be read-only),
   or single ``.stm`` files (``ismn.filehandlers.DataFile``). Soil moisture sensors whose depth range lies within
   ``depth`` (default 0-0.2 m) are used; hourly values with an ISMN quality flag in ``flags`` (default ``G`` only)
   are averaged to daily means (UTC days with at least ``min_hours`` good hours).
2. Model at the station: the history of the run (``SoilMoistV``, daily), at the run column whose cell holds the
   station (``match='cell'``; for a point run the nearest point) or bilinear between the four surrounding cell
   centres (``'bilinear'``, grid layout only); the station's depth range is matched to the model layers by their
   overlap (:func:`colmda.obs.operators.layer_weights`; a point sensor at depth z takes the layer holding z).
3. Scores per station with pytesmo (``pytesmo.metrics``): Pearson R, anomaly R (anomalies from a 35-day moving
   average, ``pytesmo.time_series.anomaly.calc_anomaly``), ubRMSE and bias = mean(model) - mean(station)
   (``pytesmo.metrics.bias(model, station)``: positive = model too wet), each with pytesmo's analytical 95 %
   confidence interval (``with_analytical_ci``; it assumes independent days, see docs/evaluation.md). With an
   open-loop run: dR and d(anomaly R) = DA - open loop with a 95 % moving-block bootstrap interval (blocks of
   ``block_days`` days, the same resampled days for both runs, keyed seed).
4. Averages over stations (mean of each score; stations without ``min_days`` common days are skipped and counted).

Bad input (no station, all values flagged, no overlap with the run, missing SoilMoistV) is a one-line UserError
or a logged skip with counts, never a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("colmda")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclasses.dataclass
class Station:
    network: str
    name: str
    lat: float
    lon: float
    depth_from: float  # m
    depth_to: float  # m
    instrument: str
    days: np.ndarray  # datetime64[D]
    sm: np.ndarray  # daily mean m3 m-3
    counts: dict


def _daily(index, values, good, min_hours):
    t = np.asarray(index, dtype="datetime64[s]")
    day = t.astype("datetime64[D]")
    v = np.where(good, np.asarray(values, dtype=float), np.nan)
    ud, inv = np.unique(day, return_inverse=True)
    s = np.bincount(inv, weights=np.nan_to_num(v), minlength=ud.size)
    n = np.bincount(inv, weights=np.isfinite(v).astype(float), minlength=ud.size)
    ok = n >= min_hours
    return ud[ok], s[ok] / n[ok]


def read_stations(path, flags=("G",), depth=(0.0, 0.2), min_hours=12, start=None, end=None) -> list[Station]:
    """Daily station series from an ISMN archive folder or .stm file(s); see the module docstring."""
    path = Path(path)
    sensors = []  # (network, station, lat, lon, d0, d1, instrument, dataframe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.is_file() or (path.is_dir() and not any(p.is_dir() for p in path.iterdir()) and
                              any(path.glob("*.stm"))):
            from ismn.filehandlers import DataFile

            files = [path] if path.is_file() else sorted(path.glob("*.stm"))
            for f in files:
                try:
                    df = DataFile(f.parent, f.name)
                except Exception as exc:  # the ismn package raises assorted errors for a file it cannot parse
                    raise UserError(f"{f}: not a readable ISMN .stm file ({type(exc).__name__}: {exc})") from None
                m = df.metadata
                dep = m["variable"].depth
                network = f.name.split("_")[0]  # the file name starts with the network; the metadata has the station
                sensors.append((network, str(m["station"].val), float(m["latitude"].val),
                                float(m["longitude"].val), float(dep.start), float(dep.end),
                                str(m["instrument"].val), m["variable"].val, df.read_data()))
        elif path.is_dir():
            from ismn.interface import ISMN_Interface

            with tempfile.TemporaryDirectory() as meta:
                try:
                    import contextlib
                    import io

                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        ds = ISMN_Interface(str(path), meta_path=meta)
                except Exception as exc:
                    raise UserError(f"{path}: not a readable ISMN archive ({type(exc).__name__}: {exc})") from None
                for net, st, sen in ds.collection.iter_sensors():
                    sensors.append((net.name, st.name, float(st.lat), float(st.lon), float(sen.depth.start),
                                    float(sen.depth.end), str(sen.instrument), sen.variable, sen.read_data()))
        else:
            raise UserError(f"{path}: ISMN archive folder or .stm file not found")
    out = []
    skipped = {"other variable": 0, "outside depth": 0, "no good daily value": 0}
    for net, name, lat, lon, d0, d1, inst, var, df in sensors:
        if var != "soil_moisture":
            skipped["other variable"] += 1
            continue
        if d0 < depth[0] - 1e-9 or d1 > depth[1] + 1e-9:
            skipped["outside depth"] += 1
            continue
        t = df.index.values.astype("datetime64[s]")
        sel = np.ones(t.size, bool)
        if start is not None:
            sel &= t >= np.datetime64(start, "s")
        if end is not None:
            sel &= t < np.datetime64(end, "s")
        flag = df["soil_moisture_flag"].astype(str).values
        good = np.isin(flag, list(flags)) & sel
        days, sm = _daily(t, df["soil_moisture"].values, good, min_hours)
        counts = {"hours": int(sel.sum()), "hours_good": int(good.sum()), "days": int(days.size)}
        if days.size == 0:
            skipped["no good daily value"] += 1
            log.warning("ISMN %s %s %.2f-%.2f m: no day with %d hours flagged %s in the period (%d hours read)",
                        net, name, d0, d1, min_hours, "/".join(flags), counts["hours"])
            continue
        out.append(Station(net, name, lat, lon, d0, d1, inst, days, sm, counts))
    if not out:
        raise UserError(f"{path}: no ISMN soil moisture sensor with good data in depth {depth[0]:g}-{depth[1]:g} m "
                        f"and the period (skipped: {', '.join(f'{k} {v}' for k, v in skipped.items())})")
    return out


def model_daily(rundir, station: Station, match="cell"):
    """(days datetime64[D], daily model soil moisture over the station's depth range) from the run's history."""
    import netCDF4

    from ..obs import operators

    from .history import interval_starts, mean_files, soil_moisture_array

    files = mean_files(rundir)
    if not files:
        raise UserError(f"{rundir}: no history file in {Path(rundir, 'history')} (not a finished colmda run?)")
    days, vals = [], []
    for f in files:
        with netCDF4.Dataset(f) as nc:
            if "SoilMoistV" not in nc.variables:
                raise UserError(f"{f}: variable 'SoilMoistV' missing; run with &output variables including "
                                "'SoilMoistV' (or the 'soil' group) to evaluate against in situ")
            dz = np.asarray(nc["dz"][:], dtype=float)
            if station.depth_to > station.depth_from:
                w = operators.layer_weights(dz, station.depth_from, station.depth_to)
            else:
                w = operators.point_weights(dz, station.depth_from)
            t = interval_starts(nc, f)
            sm = soil_moisture_array(nc)
            lat, lon = np.asarray(nc["lat"][:], float), np.asarray(nc["lon"][:], float)
            dlon = lambda a: np.abs(np.mod(a - station.lon + 180.0, 360.0) - 180.0)  # noqa: E731
            if sm.ndim == 3:  # points layout: the nearest point
                k = int(np.argmin((lat - station.lat) ** 2 + (dlon(lon) * np.cos(np.deg2rad(station.lat))) ** 2))
                series = sm[:, :, k]
            elif match == "cell":
                j, i = int(np.argmin(np.abs(lat - station.lat))), int(np.argmin(dlon(lon)))
                series = sm[:, :, j, i]
            else:
                j = int(np.clip(np.searchsorted(lat, station.lat) - 1, 0, lat.size - 2))
                xl = np.mod(lon - lon[0], 360.0)
                xs = np.mod(station.lon - lon[0], 360.0)
                i = int(np.clip(np.searchsorted(xl, xs) - 1, 0, lon.size - 2))
                wy = np.clip((station.lat - lat[j]) / (lat[j + 1] - lat[j]), 0, 1)
                wx = np.clip((xs - xl[i]) / (xl[i + 1] - xl[i]), 0, 1)
                corners = [(j, i, (1 - wy) * (1 - wx)), (j, i + 1, (1 - wy) * wx), (j + 1, i, wy * (1 - wx)),
                           (j + 1, i + 1, wy * wx)]
                num = np.zeros(sm.shape[:2])
                den = np.zeros(sm.shape[:2])
                for jj, ii, ww in corners:
                    v = sm[:, :, jj, ii]
                    num += np.where(np.isfinite(v), v * ww, 0.0)
                    den += np.where(np.isfinite(v), ww, 0.0)
                series = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            days.append(t.astype("datetime64[D]"))
            vals.append(series[:, : w.size] @ w[: series.shape[1]])
    return np.concatenate(days), np.concatenate(vals)


def _anomaly(days, values, window=35):
    import pandas as pd
    from pytesmo.time_series.anomaly import calc_anomaly

    s = pd.Series(values, index=pd.DatetimeIndex(days.astype("datetime64[ns]")))
    return calc_anomaly(s, window_size=window).values


def scores(model, insitu):
    """pytesmo scores of the daily model series against the station: value and 95 % CI of R, anomaly R, ubRMSE,
    bias (model - station)."""
    from pytesmo import metrics as pm

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, (x, y) in (("R", pm.pearson_r, (model["v"], insitu["v"])),
                                 ("anomaly_R", pm.pearson_r, (model["a"], insitu["a"])),
                                 ("ubRMSE", pm.ubrmsd, (model["v"], insitu["v"])),
                                 ("bias", pm.bias, (model["v"], insitu["v"]))):
            ok = np.isfinite(x) & np.isfinite(y)
            v, lo, hi = pm.with_analytical_ci(fn, x[ok], y[ok])
            out[name] = (float(v), float(lo), float(hi))
    return out


def block_bootstrap_diff(a, b, ref, block_days=30, n=2000, seed=1, alpha=0.05):
    """95 % moving-block bootstrap interval of R(a, ref) - R(b, ref) (same resampled days for both)."""
    from ..evaluation import metrics

    nd = ref.size
    rng = np.random.default_rng(seed)
    L = max(1, min(block_days, nd))
    nb = int(np.ceil(nd / L))
    starts = rng.integers(0, nd - L + 1, size=(n, nb))
    idx = (starts[:, :, None] + np.arange(L)[None, None, :]).reshape(n, -1)[:, :nd]   # (n, nd)
    d = metrics.pearson_r(ref[idx].T, a[idx].T) - metrics.pearson_r(ref[idx].T, b[idx].T)
    d = d[np.isfinite(d)]
    return float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2))


def evaluate(rundir, insitu, openloop=None, *, flags=("G",), depth=(0.0, 0.2), match="cell", min_days=30,
             start=None, end=None, block_days=30, figure=True) -> dict:
    """Scores of ``rundir`` (and ``openloop``) against the stations of ``insitu``; written to
    ``rundir/evaluation/insitu.json`` and ``insitu.md`` (and a time-series figure per station)."""
    from ..manifest import write_json

    stations = read_stations(insitu, flags=flags, depth=depth, start=start, end=end)
    runs = {"run": rundir} if openloop is None else {"DA": rundir, "open_loop": openloop}
    result = {"insitu": str(insitu), "flags": list(flags), "depth_m": list(depth), "match": match,
              "bias_sign": "mean(model) - mean(station)", "stations": [], "skipped": {}}
    for st in stations:
        series = {k: model_daily(p, st, match) for k, p in runs.items()}
        common = st.days
        for d, _ in series.values():
            common = np.intersect1d(common, d)
        vals = {k: v[np.searchsorted(d, common)] for k, (d, v) in series.items()}
        obs = st.sm[np.searchsorted(st.days, common)]
        ok = np.isfinite(obs) & np.all([np.isfinite(v) for v in vals.values()], axis=0)
        common, obs = common[ok], obs[ok]
        vals = {k: v[ok] for k, v in vals.items()}
        key = f"{st.network}/{st.name} {st.depth_from:g}-{st.depth_to:g} m"
        if not all(np.isfinite(v).any() for _, v in series.values()):
            result["skipped"][key] = "no model data at the station (a cell outside the run's land columns?)"
            log.warning("in situ %s: %s; skipped", key, result["skipped"][key])
            continue
        if common.size < min_days:
            result["skipped"][key] = f"{common.size} common days with the run (< {min_days})"
            log.warning("in situ %s: %d common days with the run (< %d); skipped", key, common.size, min_days)
            continue
        ins = {"v": obs, "a": _anomaly(common, obs)}
        entry = {"station": key, "lat": st.lat, "lon": st.lon, "instrument": st.instrument, "days": int(common.size),
                 "counts": st.counts, "scores": {}}
        for k, v in vals.items():
            entry["scores"][k] = scores({"v": v, "a": _anomaly(common, v)}, ins)
        if openloop is not None:
            from . import metrics

            anomalies = (_anomaly(common, vals["DA"]), _anomaly(common, vals["open_loop"]), ins["a"])
            for name, (a, b, r) in (("dR", (vals["DA"], vals["open_loop"], obs)), ("d_anomaly_R", anomalies)):
                m = np.isfinite(a) & np.isfinite(b) & np.isfinite(r)
                a, b, r = a[m], b[m], r[m]
                diff = float(metrics.pearson_r(r, a) - metrics.pearson_r(r, b))
                entry[name] = (diff, *block_bootstrap_diff(a, b, r, block_days=block_days))
        result["stations"].append(entry)
        if figure:
            entry["figure"] = _figure(Path(rundir) / "evaluation", key, common, obs, vals)
    if not result["stations"]:
        raise UserError(f"{insitu}: no station overlaps the run by {min_days} days or more "
                        f"({'; '.join(f'{k}: {v}' for k, v in result['skipped'].items())})")
    result["mean"] = {k: {m: float(np.mean([s["scores"][k][m][0] for s in result["stations"]]))
                          for m in ("R", "anomaly_R", "ubRMSE", "bias")} for k in runs}
    if openloop is not None:
        result["mean"]["dR"] = float(np.mean([s["dR"][0] for s in result["stations"]]))
        result["mean"]["d_anomaly_R"] = float(np.mean([s["d_anomaly_R"][0] for s in result["stations"]]))
    out = Path(rundir) / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "insitu.json", result)
    md = markdown(result)
    (out / "insitu.md").write_text(md)
    return result


def markdown(result) -> str:
    lines = [f"In situ: {result['insitu']} (flags {'/'.join(result['flags'])}, depth {result['depth_m'][0]:g}-"
             f"{result['depth_m'][1]:g} m, model {result['match']}); 95 % confidence intervals in brackets; "
             f"bias = {result['bias_sign']}.", "",
             "| station | run | days | R | anomaly R | ubRMSE (m3 m-3) | bias (m3 m-3) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]

    def f(v, d=3):
        return f"{v[0]:.{d}f} [{v[1]:.{d}f}, {v[2]:.{d}f}]"

    for s in result["stations"]:
        for k, sc in s["scores"].items():
            lines.append(f"| {s['station']} | {k} | {s['days']} | {f(sc['R'], 2)} | {f(sc['anomaly_R'], 2)} | "
                         f"{f(sc['ubRMSE'])} | {f(sc['bias'])} |")
        if "dR" in s:
            lines.append(f"| {s['station']} | DA - open loop | {s['days']} | dR {f(s['dR'], 3)} | "
                         f"{f(s['d_anomaly_R'], 3)} | | |")
    lines.append("")
    lines.append(f"Mean over {len(result['stations'])} station(s): " + "; ".join(
        f"{k}: " + (", ".join(f"{m} {v:.3f}" for m, v in sc.items()) if isinstance(sc, dict) else f"{sc:.3f}")
        for k, sc in result["mean"].items()))
    if result["skipped"]:
        lines.append("")
        lines.append("Skipped: " + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items()))
    return "\n".join(lines) + "\n"


def _figure(directory, key, days, obs, vals):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    name = "insitu_" + "".join(c if c.isalnum() else "_" for c in key) + ".png"
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(days, obs, "k.", ms=3, label="station (daily mean, flag G)")
    styles = {"open_loop": ("tab:blue", "open loop"), "DA": ("tab:red", "SEKF (DA)"), "run": ("tab:red", "run")}
    for k, v in vals.items():
        c, lab = styles.get(k, ("tab:gray", k))
        ax.plot(days, v, "-", color=c, lw=1.2, label=lab)
    ax.set_ylabel("soil moisture (m3 m-3)")
    ax.set_title(key)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / name, dpi=110)
    plt.close(fig)
    return str(directory / name)
