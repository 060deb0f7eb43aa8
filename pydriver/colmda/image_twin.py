"""Seed 003 experiments as a twin: CTL vs IMAGE (curvelet image assimilation) vs a point-wise SEKF on a
"GLDAS-like" observed field, with a free forecast after the assimilation phase.

``python -m colmda.image_twin NAMELIST [--set group.key=value ...]`` (MPI: ``mpiexec -n N python -m ...``).
The namelist is a run namelist with &image (the image settings) and &matrix truth_seed / forecast_start /
insitu_stations / insitu_box. Steps, in ``&output directory``:

1. ``truth/``: the "real world": truth weather (``&matrix truth_seed``), the model's hydraulics, no forcing bias.
2. ``gldas/``: the "GLDAS-like analysis": the SAME truth weather, but the other soil hydraulic functions
   (Clapp-Hornberger instead of van Genuchten or vice versa) and hence a different water-retention structure;
   its 0-10, 10-40 and 40-100 cm fields are smoothed (Gaussian, ``SMOOTH_CELLS`` cells, as a regridding from a
   finer product would) and given their own bias: a mean (``BIAS``) plus a time-constant spatial pattern
   (``BIAS_PATTERN`` std, correlation ``BIAS_CELLS`` cells, keyed by global grid cell) standing for GLDAS's
   different soil map; written to ``eval/observed.nc`` every 6 h. It is not the truth plus noise: its spatial
   pattern differs from the truth's and from the model's.
3. ``eval/insitu.nc``: the simulated 10 cm station network from the truth (colmda.obs.insitu), for station R.
4. ``CTL/``: the model: other weather (``&forcing seed``), the namelist's forcing errors, spun up.
5. ``IMAGE/``: CTL + &assimilation method = 'image' on ``eval/observed.nc`` at 00/06/12/18 UTC until
   ``forecast_start``, then a free forecast.
   ``IMAGE_L<n>/`` (with ``--large-scales n``): the same with only the n coarsest scales analysed.
6. ``SEKF/``: CTL + the point-wise SEKF assimilating the same 0-10 cm field (as sensor 'G', every land cell every
   6 h, error &image sigma_o, B = &image sigma_b on the top 4 layers = the 0-10 cm layers, sensing-depth
   operator), same phases.
7. With ``--ensemble`` (default on): ``LETKF/``: the LETKF (``&matrix n_members`` members, perturbed forcing, the
   namelist's &enkf keys and state perturbations) assimilating the same sensor 'G' field, same phases; and
   ``IMAGE_ENS/``: the image analysis with the same ensemble, B from the members' fields instead of perturbed
   copies of one background (docs/image.md).
8. ``summary/``: image_twin.json / image_twin.md and the figures (seed Figs. 4-9 analogues).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from .config import Settings, format_date
from .errors import UserError

log = logging.getLogger("colmda")

DEPTHS = ((0.0, 0.1), (0.1, 0.4), (0.4, 1.0))  # m: the GLDAS Noah layers evaluated (seed Fig. 8)
SMOOTH_CELLS = 1.0  # Gaussian smoothing (std, cells) of the GLDAS-like fields
BIAS = (0.02, 0.015, 0.01)  # m3 m-3: the GLDAS-like fields' own mean bias per depth range
BIAS_PATTERN = (0.04, 0.03, 0.02)  # m3 m-3: std of its spatially structured, time-constant bias per depth range
BIAS_CELLS = 3.0  # Gaussian correlation scale (cells, about 450 km) of that bias pattern (a different soil map)
STREAM_BIAS = 361
OBS_VARS = ("sm", "sm_10_40", "sm_40_100")


def _derived(s: Settings, changes: dict) -> Settings:
    from .matrix import derived

    return derived(s, changes)


def read_fields(rundir: Path):
    """(times datetime64[s] (nt,), theta (nt, nlayer, ny, nx) m3 m-3, lat, lon, column (ny, nx), dz) of a run's
    6-hourly instantaneous SoilMoistV history (grid layout)."""
    import xarray as xr

    files = sorted((rundir / "history").glob("*.nc"))
    if not files:
        raise UserError(f"{rundir}/history: no history file")
    parts, times = [], []
    for f in files:
        with xr.open_dataset(f) as ds:
            parts.append(np.asarray(ds["SoilMoistV"].values, float))
            times.append(ds["time"].values.astype("datetime64[s]"))
            lat, lon = np.asarray(ds["lat"].values), np.asarray(ds["lon"].values)
            col = np.asarray(ds["column"].values)
            dz = np.asarray(ds["dz"].values, float)
    return np.concatenate(times), np.concatenate(parts), lat, lon, col, dz


def depth_mean(theta, dz, top, bottom):
    """Mean volumetric water content of [top, bottom] from layer values (..., nlayer, ny, nx)."""
    from .assim.image import layer_distribution

    h, _ = layer_distribution(dz, top, bottom)
    return np.tensordot(h, theta, axes=(0, -3))


def smooth_nan(field, sigma):
    """Gaussian smoothing of a field with NaN cells (normalised convolution: NaN stays NaN)."""
    from scipy import ndimage

    ok = np.isfinite(field)
    num = ndimage.gaussian_filter(np.where(ok, field, 0.0), sigma, mode="nearest")
    den = ndimage.gaussian_filter(ok.astype(float), sigma, mode="nearest")
    return np.where(ok, num / np.maximum(den, 1e-12), np.nan)


def bias_pattern(column_grid, nlon: int, seed: int) -> np.ndarray:
    """Unit-std, time-constant spatial pattern on the run's box (Gaussian smoothing of keyed white noise over the
    box plus a margin, so that a box's pattern does not depend on where it ends), NaN off the run's cells."""
    from scipy import ndimage

    from .forcing.perturb import keyed_normal

    ok = np.isfinite(column_grid)
    c0 = int(np.nanmin(column_grid))
    r0, k0 = divmod(c0, nlon)
    m = int(4 * BIAS_CELLS)
    ny, nx = column_grid.shape
    rr = np.arange(-m, ny + m)[:, None] + r0
    cc = np.arange(-m, nx + m)[None, :] + (int(np.nanmin(np.where(ok, column_grid % nlon, np.nan))))
    z = keyed_normal(int(seed), STREAM_BIAS, rr, cc % nlon)
    f = ndimage.gaussian_filter(z, BIAS_CELLS, mode="wrap")[m:m + ny, m:m + nx]
    f = f / np.std(f[ok])
    return np.where(ok, f, np.nan)


def write_observed(path: Path, times, theta, lat, lon, dz, pattern=None):
    """The GLDAS-like fields (6-hourly, 3 depth ranges) on the run's box of the domain grid."""
    import xarray as xr

    from .output import atomic_path

    data = {}
    for (top, bottom), name, bias, pat in zip(DEPTHS, OBS_VARS, BIAS, BIAS_PATTERN):
        f = depth_mean(theta, dz, top, bottom)
        f = np.stack([smooth_nan(x, SMOOTH_CELLS) for x in f]) + bias
        if pattern is not None:
            f = f + pat * pattern
        data[name] = (("time", "lat", "lon"), f.astype("f4"), {"units": "m3 m-3", "long_name": f"GLDAS-like "
                      f"volumetric soil moisture {top * 100:g}-{bottom * 100:g} cm"})
    ds = xr.Dataset(data, coords={"time": times.astype("datetime64[ns]"), "lat": lat, "lon": lon})
    ds.attrs["source"] = ("colmda image twin: a run with the truth's weather and the other soil hydraulic functions, "
                          f"smoothed (Gaussian, {SMOOTH_CELLS} cells), biased {BIAS} plus a spatial bias pattern of "
                          f"std {BIAS_PATTERN} (correlation {BIAS_CELLS} cells)")
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp)


def write_sekf_obs(path: Path, obs_file: Path, column_grid, lat, lon, sigma_o: float):
    """The 0-10 cm observed field as an observation file of sensor 'G' (every land cell every 6 h)."""
    import xarray as xr

    from .obs.format import ObsTable, write_obs

    with xr.open_dataset(obs_file) as ds:
        sm = np.asarray(ds["sm"].values, float)
        times = ds["time"].values.astype("datetime64[s]")
    iy, ix = np.nonzero(np.isfinite(column_grid))
    col = column_grid[iy, ix].astype(np.int64)
    rows = []
    for k, t in enumerate(times):
        v = sm[k, iy, ix]
        ok = np.isfinite(v)
        n = int(ok.sum())
        rows.append(ObsTable("G", "volumetric", 0.05, np.full(n, t), col[ok], lat[iy][ok], lon[ix][ok], v[ok],
                             np.full(n, sigma_o), np.full(n, np.nan), np.zeros(n, np.int32),
                             source="colmda image twin: GLDAS-like 0-10 cm field"))
    write_obs(path, ObsTable.concatenate(rows).sorted())


def spatial_scores(model, ref):
    """SCC and ubRMSE per time between fields (nt, ny, nx) over cells valid in both."""
    from .assim.image import spatial_stats

    out = np.full((len(model), 2), np.nan)
    for k in range(len(model)):
        ok = np.isfinite(model[k]) & np.isfinite(ref[k])
        scc, ub, _ = spatial_stats(model[k], ref[k], ok)
        out[k] = scc, ub
    return out


def station_r(times, theta, column_grid, dz, insitu, start, end):
    """Mean over stations of the daily correlation R between the model at 10 cm and the stations (days in
    [start, end))."""
    from .obs import operators

    w = operators.point_weights(dz, insitu.depth) if hasattr(operators, "point_weights") else None
    x10 = np.tensordot(w, theta, axes=(0, 1)) if w is not None else depth_mean(theta, dz, 0.05, 0.15)
    day = times.astype("datetime64[D]")
    days = np.unique(day)
    daily = np.stack([x10[day == d].mean(axis=0) for d in days])  # (nd, ny, nx), NaN off the run's cells
    pos = {int(c): (i, j) for (i, j), c in np.ndenumerate(column_grid) if np.isfinite(c)}
    sday = insitu.time.astype("datetime64[D]")
    sel = (days >= np.datetime64(start, "D")) & (days < np.datetime64(end, "D"))
    rs = []
    for s in range(insitu.nstation):
        ij = pos.get(int(insitu.column[s]))
        if ij is None:
            continue
        m = daily[:, ij[0], ij[1]]
        idx = np.searchsorted(sday, days)
        idx = np.clip(idx, 0, len(sday) - 1)
        o = np.where(sday[idx] == days, insitu.sm[idx, s], np.nan)
        ok = sel & np.isfinite(m) & np.isfinite(o)
        if ok.sum() >= 5 and np.std(m[ok]) > 0 and np.std(o[ok]) > 0:
            rs.append(np.corrcoef(m[ok], o[ok])[0, 1])
    return float(np.mean(rs)) if rs else float("nan"), len(rs)


def run_image_twin(s: Settings, *, comm=None, progress=True, figures=True, sekf=True, reuse=(),
                   large_scales: int = 0, ensemble: bool = True) -> dict:
    """Run the chain (``reuse``: names of the truth / gldas / CTL runs to take from an earlier, completed run in
    the same directory instead of running them again; ``large_scales`` > 0 adds the experiment IMAGE_L<n> that
    analyses only the n coarsest curvelet scales, &image scale_weight = 1 for those and 0 for the others)."""
    from .matrix import _spinup_restart, forecast_start
    from .parallel import get_comm
    from .run import run

    comm = comm or get_comm()
    root = Path(s.output_directory)
    mx = s.matrix
    if mx.truth_seed == s.forcing.seed:
        raise UserError(f"{s.source}: &matrix truth_seed = {mx.truth_seed} equals &forcing seed: the model needs "
                        f"another weather realisation than the truth")
    fc = forecast_start(s)
    six = {"assimilation": {"window_hours": 6.0, "method": "none"},
           "output": {"frequency": "6h", "averaging": "instant", "variables": ["SoilMoistV"]}}
    other = "campbell" if s.model.hydr_model == "vangenuchten" else "vangenuchten"
    runs = {}
    for name, changes in (
            ("truth", {"forcing": {"seed": mx.truth_seed, "perturb": False, "precip_scale": 1.0}}),
            ("gldas", {"forcing": {"seed": mx.truth_seed, "perturb": False, "precip_scale": 1.0},
                       "model": {"hydr_model": other}}),
            ("CTL", {})):
        ch = {**six, **changes, "experiment": {"name": name},
              "output": {**six["output"], "directory": str(root / name)}}
        runs[name] = root / name
        if name in reuse and (root / name / "summary.json").exists():
            if comm.is_root:
                log.info("image twin: %s reused from %s", name, root / name)
            continue
        if comm.is_root:
            log.info("image twin: %s -> %s", name, root / name)
        run(_derived(s, ch), comm=comm, progress=progress)
    eval_dir = root / "eval"
    obs_file = eval_dir / "observed.nc"
    if comm.is_root:
        t, th, lat, lon, colg, dz = read_fields(runs["gldas"])
        from .domain import Domain

        nlon = Domain.load(s.domain.file or None).nlon
        write_observed(obs_file, t, th, lat, lon, dz, bias_pattern(colg, nlon, s.experiment.seed))
        _simulate_insitu(s, runs["truth"], eval_dir)
        if sekf or ensemble:
            write_sekf_obs(eval_dir / "obs" / "G.nc", obs_file, colg, lat, lon, s.image.sigma_o)
    comm.barrier()
    init = _spinup_restart(runs["CTL"], "CTL")
    start_from = {"initial_restart": str(init), "spinup_max_cycles": 0} if init else {}
    exps = [("IMAGE", {"assimilation": {"window_hours": 6.0, "method": "image", "end": format_date(fc)},
                       "image": {"file": str(obs_file), "variable": "sm", "depth": [0.0, 0.1]}})]
    if large_scales:
        w = [1.0 if j < large_scales else 0.0 for j in range(s.image.nscales)]
        exps.append((f"IMAGE_L{large_scales}", {**exps[0][1], "image": {**exps[0][1]["image"], "scale_weight": w}}))
    if sekf:
        exps.append(("SEKF", {"assimilation": {"window_hours": 6.0, "method": "sekf", "end": format_date(fc),
                                               "background_error": [s.image.sigma_b], "obs_operator": "sensing_depth",
                                               "control_layers": 4},
                              "observations": {"directory": str(eval_dir / "obs"), "sensors": ["G"], "error": []}}))
    if ensemble:  # the point-wise ensemble filter and the image analysis with the same ensemble
        members = {"n_members": s.matrix.n_members, "end": format_date(fc), "obs_operator": "sensing_depth"}
        exps.append(("LETKF", {"assimilation": {"window_hours": 6.0, "method": "letkf", **members},
                               "forcing": {"perturb": True},
                               "observations": {"directory": str(eval_dir / "obs"), "sensors": ["G"], "error": []}}))
        exps.append(("IMAGE_ENS", {**exps[0][1], "assimilation": {**exps[0][1]["assimilation"],
                                                                  "n_members": s.matrix.n_members},
                                   "forcing": {"perturb": True}}))
    for name, ch in exps:
        ch = {**six, **ch, "assimilation": {**six["assimilation"], **ch["assimilation"]},
              "experiment": {"name": name, **start_from}, "output": {**six["output"], "directory": str(root / name)}}
        if comm.is_root:
            log.info("image twin: %s -> %s", name, root / name)
        run(_derived(s, ch), comm=comm, progress=progress)
        runs[name] = root / name
    result = {}
    if comm.is_root:
        result = evaluate(s, root, runs, obs_file, eval_dir / "insitu.nc", fc, figures=figures)
    return result


def _simulate_insitu(s: Settings, truth_dir: Path, eval_dir: Path):
    from .domain import Domain
    from .obs.insitu import simulate_insitu, write_insitu

    t, th, lat, lon, colg, dz = read_fields(truth_dir)
    day = t.astype("datetime64[D]")
    days = np.unique(day)
    daily = np.stack([th[day == d].mean(axis=0) for d in days])  # (nd, nl, ny, nx) from 4 instants a day
    iy, ix = np.nonzero(np.isfinite(colg))
    col = colg[iy, ix].astype(np.int64)
    order = np.argsort(col)
    dom = Domain.load(s.domain.file or None)
    pft = np.asarray(dom.fields["pft"]).ravel()[col[order]] if "pft" in dom.fields else np.zeros(len(col), int)
    table = simulate_insitu(daily[:, :, iy[order], ix[order]], days.astype("datetime64[s]"), col[order],
                            lat[iy[order]], lon[ix[order]], dz, pft, box=tuple(s.matrix.insitu_box) or None,
                            n_stations=s.matrix.insitu_stations, seed=s.experiment.seed)
    write_insitu(eval_dir / "insitu.nc", table)


def evaluate(s: Settings, root: Path, runs: dict, obs_file: Path, insitu_file: Path, fc, figures=True) -> dict:
    import xarray as xr

    from .obs.insitu import read_insitu

    with xr.open_dataset(obs_file) as ds:
        otimes = ds["time"].values.astype("datetime64[s]")
        obs = {k: np.asarray(ds[k].values, float) for k in OBS_VARS}
    fields = {n: read_fields(runs[n]) for n in runs if n not in ("truth", "gldas")}
    names = list(fields)
    t0 = np.datetime64(s.start, "s")
    tfc = np.datetime64(fc, "s")
    tend = np.datetime64(s.end, "s")
    out = {"start": format_date(s.start), "forecast_start": format_date(fc), "end": format_date(s.end),
           "experiments": names, "scores": {}, "station_r": {}, "persistence": {}}
    series = {}
    for n in names:
        t, th, lat, lon, colg, dz = fields[n]
        k = np.searchsorted(otimes, t)
        k = np.clip(k, 0, len(otimes) - 1)
        match = otimes[k] == t
        for (top, bottom), v in zip(DEPTHS, OBS_VARS):
            m = depth_mean(th[match], dz, top, bottom)
            sc = spatial_scores(m, obs[v][k[match]])
            series[(n, v)] = (t[match], sc)
            tt = t[match]
            phases = {"assimilation": (tt > t0) & (tt <= tfc), "forecast": (tt > tfc) & (tt <= tend),
                      "first_day": (tt > t0) & (tt <= t0 + np.timedelta64(1, "D")),
                      "last_week": tt > tend - np.timedelta64(7, "D")}
            out["scores"].setdefault(n, {})[v] = {ph: {"scc": float(np.nanmean(sc[sel, 0])),
                                                       "ubrmse": float(np.nanmean(sc[sel, 1]))}
                                                  for ph, sel in phases.items() if sel.any()}
        ins = read_insitu(insitu_file)
        for ph, (a, b) in {"assimilation": (s.start, fc), "forecast": (fc, s.end)}.items():
            r, nst = station_r(t, th, colg, dz, ins, a, b)
            out["station_r"].setdefault(n, {})[ph] = {"r": r, "stations": nst}
    summ = root / "summary"
    summ.mkdir(parents=True, exist_ok=True)
    if figures:
        out["figures"] = [str(p) for p in make_figures(s, root, fields, series, fc, summ)]
    (summ / "image_twin.json").write_text(json.dumps(out, indent=1))
    (summ / "image_twin.md").write_text(markdown(out))
    print(markdown(out))
    return out


def markdown(out) -> str:
    lines = ["| experiment | depth | phase | SCC | ubRMSE (m3 m-3) |", "|---|---|---|---|---|"]
    for n, by in out["scores"].items():
        for v, ph in by.items():
            for p, sc in ph.items():
                lines.append(f"| {n} | {v} | {p} | {sc['scc']:.3f} | {sc['ubrmse']:.4f} |")
    lines += ["", "| experiment | phase | station R | stations |", "|---|---|---|---|"]
    for n, by in out["station_r"].items():
        for p, r in by.items():
            lines.append(f"| {n} | {p} | {r['r']:.3f} | {r['stations']} |")
    return "\n".join(lines) + "\n"


def make_figures(s, root, fields, series, fc, outdir) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    paths = []
    # seed Fig. 8: SCC and ubRMSE against the observed field at every analysis time
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
    for j, v in enumerate(OBS_VARS):
        for n in fields:
            t, sc = series[(n, v)]
            for i in range(2):
                axes[i, j].plot(t.astype("datetime64[m]").astype(object), sc[:, i], label=n, lw=1)
        for i, lab in enumerate(("SCC", "ubRMSE (m3 m-3)")):
            axes[i, j].axvline(fc, color="k", ls=":", lw=0.8)
            axes[i, j].set_ylabel(lab)
        axes[0, j].set_title(f"{DEPTHS[j][0] * 100:g}-{DEPTHS[j][1] * 100:g} cm vs GLDAS-like")
    axes[0, 0].legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    p = outdir / "image_scc_ubrmse.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    # seed Fig. 7: depth-time cross sections of IMAGE - CTL at the four most common vegetation types
    if "IMAGE" in fields and "CTL" in fields:
        from .domain import Domain
        t, thi, lat, lon, colg, dz = fields["IMAGE"]
        _, thc, *_ = fields["CTL"]
        dom = Domain.load(s.domain.file or None)
        pftg = np.full(colg.shape, -1)
        ok = np.isfinite(colg)
        if "pft" in dom.fields:
            pftg[ok] = np.asarray(dom.fields["pft"]).ravel()[colg[ok].astype(np.int64)]
        kinds, counts = np.unique(pftg[ok], return_counts=True)
        top = kinds[np.argsort(-counts)][:4]
        fig, axes = plt.subplots(1, len(top), figsize=(4 * len(top), 3.5), sharey=True, squeeze=False)
        zi = np.concatenate([[0], np.cumsum(dz)])
        diff = thi - thc
        for a, k in zip(axes[0], top):
            d = np.nanmean(diff[:, :, pftg == k], axis=2).T  # (nl, nt)
            lim = max(np.nanmax(np.abs(d)), 1e-6)
            im = a.pcolormesh(np.arange(len(t) + 1), zi[:7], d[:6], cmap="BrBG", vmin=-lim, vmax=lim)
            a.invert_yaxis()
            from .pft import PFT_NAMES

            a.set_title(f"{PFT_NAMES[int(k)] if 0 <= k < len(PFT_NAMES) else k} ({int((pftg == k).sum())} cells)",
                        fontsize=9)
            a.set_xlabel("6-h step")
            fig.colorbar(im, ax=a, label="IMAGE - CTL (m3 m-3)")
        axes[0, 0].set_ylabel("depth (m)")
        fig.tight_layout()
        p = outdir / "image_depth_time.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    # seed Figs. 4-6: background, observed, analysis and increment at the first 00 UTC analysis
    maps = sorted((root / "IMAGE" / "analysis").glob("image_fields_*.nc"))
    if maps:
        with xr.open_dataset(maps[0]) as ds:
            bg, ob, inc = (np.asarray(ds[k].values) for k in ("background", "observed", "increment"))
            la, lo = ds["lat"].values, ds["lon"].values
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
        for a, f, title, cmap in ((axes[0], bg, "background", "YlGnBu"), (axes[1], ob, "observed (GLDAS-like)",
                                  "YlGnBu"), (axes[2], bg + inc, "analysis", "YlGnBu"),
                                  (axes[3], inc, "increment", "BrBG")):
            kw = {"vmin": 0.0, "vmax": 0.5} if cmap != "BrBG" else {"vmin": -0.1, "vmax": 0.1}
            im = a.pcolormesh(lo, la, f, cmap=cmap, shading="nearest", **kw)
            a.set_title(f"{title} {maps[0].stem[-13:]}")
            fig.colorbar(im, ax=a)
        fig.tight_layout()
        p = outdir / "image_maps.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    from . import config
    from .errors import USER_ERROR_EXIT

    ap = argparse.ArgumentParser(prog="python -m colmda.image_twin", description=__doc__.splitlines()[0])
    ap.add_argument("namelist")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--no-sekf", action="store_true", help="skip the point-wise SEKF experiment")
    ap.add_argument("--no-ensemble", action="store_true", help="skip the LETKF and IMAGE_ENS experiments")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--large-scales", type=int, default=0, metavar="N",
                    help="also run IMAGE_L<N>: only the N coarsest curvelet scales analysed")
    ap.add_argument("--reuse", action="append", default=[], choices=("truth", "gldas", "CTL"),
                    help="take this base run from a completed earlier run in the directory (repeatable)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        s = config.load(a.namelist, overrides=a.overrides)
        run_image_twin(s, progress=not a.no_progress, figures=not a.no_figures, sekf=not a.no_sekf,
                       reuse=tuple(a.reuse), large_scales=a.large_scales, ensemble=not a.no_ensemble)
    except UserError as exc:
        print(f"colmda: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
