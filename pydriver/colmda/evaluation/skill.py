"""Skill of twin (OSSE) data assimilation experiments against the truth, a reference field and in-situ stations.

Pure array functions (layer aggregation, temporal and spatial scores, groups, phases, group means and gains) and a
driver, :func:`evaluate`, that reads a matrix run directory (``matrix.json``, see docs/evaluation.md) and returns an
:class:`Evaluation`: the long-format rows of ``summary/skill.csv``, the daily spatial scores for the time series
figures and the per-station correlation gains for the PDF figures.

Conventions (pytesmo, "ref" first, population moments; see :mod:`colmda.evaluation.metrics`):

- temporal scores per column or station over the days of a phase: Pearson R, RMSE, ubRMSE, bias (= mean(x - ref));
  a column counts when it has at least ``min_days`` valid pairs;
- a group's value is the plain mean over its columns of the per-column score, over the columns where both the
  experiment and the control have a score (so ``gain = value - control_value`` is also the mean per-column gain);
  a group needs at least ``min_columns`` such columns;
- spatial scores on each day over the group's columns (the seed's spatial correlation coefficient); a day counts
  when at least ``min_spatial`` columns are valid; ``spatial_R`` / ``spatial_RMSE`` rows are the means over the
  valid days of the phase (``n`` = days);
- gain = experiment minus control for every metric: positive dR and negative dRMSE / dubRMSE are improvements.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..obs.operators import EVALUATION_LAYERS, INSITU_DEPTH, layer_weights, point_weights
from ..pft import PFT_NAMES
from . import metrics
from .history import LayerSeries, experiment_names, load_soil_moisture

MIN_DAYS = 10  # valid days for a per-column (per-station) temporal score
MIN_COLUMNS = 5  # columns (stations) with a score for a group mean
MIN_SPATIAL = 10  # valid columns for a daily spatial R / RMSE
LAT_BANDS = (("90S-30S", -90.0, -30.0), ("30S-30N", -30.0, 30.0), ("30N-90N", 30.0, 90.0))
TEMPORAL = ("R", "RMSE", "ubRMSE", "bias")
SPATIAL = ("spatial_R", "spatial_RMSE")
METRICS = TEMPORAL + SPATIAL
REFERENCES = ("truth", "reference", "insitu")
CSV_FIELDS = ("experiment", "label", "reference", "phase", "layer", "group_kind", "group", "metric", "value",
              "control_value", "gain", "n")


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def layer_label(top: float, bottom: float | None = None) -> str:
    """'0-7cm' for a depth range, '10cm' for a point depth (m)."""
    if bottom is None:
        return f"{100 * top:g}cm"
    return f"{100 * top:g}-{100 * bottom:g}cm"


def layer_matrix(dz_soil, bounds=EVALUATION_LAYERS) -> np.ndarray:
    """(nq, nlayer) weights of the thickness-weighted mean of the model layers over each depth range (m)."""
    return np.stack([layer_weights(dz_soil, top, bottom) for top, bottom in bounds])


def to_layers(theta, weights) -> np.ndarray:
    """Apply (nq, nlayer) weights to ``theta`` (ntime, nlayer, ncol): (ntime, nq, ncol). NaN propagates."""
    return np.einsum("ql,tlc->tqc", np.asarray(weights, float), np.asarray(theta, float))


def temporal_scores(ref, x, min_days: int = MIN_DAYS) -> dict:
    """Scores over time (axis 0) of ``x`` against ``ref`` (ntime, ...): R, RMSE, ubRMSE, bias and n (valid pairs);
    NaN where fewer than ``min_days`` pairs (or a constant series, for R)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # empty slices: columns without data
        n = metrics.count(ref, x, axis=0)
        out = {"R": metrics.pearson_r(ref, x, axis=0), "RMSE": metrics.rmse(ref, x, axis=0),
               "ubRMSE": metrics.ubrmse(ref, x, axis=0), "bias": metrics.bias(x, ref, axis=0)}
    few = n < min_days
    out = {k: np.where(few | ~np.isfinite(v), np.nan, v) for k, v in out.items()}
    out["n"] = n
    return out


def spatial_scores(ref, x, min_columns: int = MIN_SPATIAL) -> dict:
    """Scores over columns (last axis) on each day: spatial_R, spatial_RMSE and n (valid columns); NaN where fewer
    than ``min_columns`` columns."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        n = metrics.count(ref, x, axis=-1)
        out = {"spatial_R": metrics.pearson_r(ref, x, axis=-1), "spatial_RMSE": metrics.rmse(ref, x, axis=-1)}
    few = n < min_columns
    out = {k: np.where(few | ~np.isfinite(v), np.nan, v) for k, v in out.items()}
    out["n"] = n
    return out


def lat_band_names(lat) -> np.ndarray:
    """Latitude band of each latitude: '90S-30S' (< 30S), '30S-30N' ([30S, 30N)), '30N-90N' (>= 30N)."""
    lat = np.asarray(lat, dtype=float)
    names = np.array([b[0] for b in LAT_BANDS], dtype=object)
    return names[np.digitize(lat, [-30.0, 30.0])]


def vegetation_order(domain) -> list[int]:
    """PFT indices ordered by vegetation density: the mean over the domain's land columns of each PFT of the annual
    maximum of the monthly LAI climatology (``lai_clim``); PFTs absent from the domain keep their index order at
    the end."""
    cols = domain.all_land_columns()
    pft = domain.get("pft", cols)
    lai = domain.get("lai_clim", cols).max(axis=0)
    tot = np.bincount(pft, weights=lai, minlength=len(PFT_NAMES))
    cnt = np.bincount(pft, minlength=len(PFT_NAMES))
    dens = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.inf)
    return [int(k) for k in np.lexsort((np.arange(len(PFT_NAMES)), dens))]


def group_masks(pft, lat, pft_order=None) -> list[tuple[str, str, np.ndarray]]:
    """(group_kind, group, mask) for 'all', each vegetation class present (in ``pft_order``) and each latitude
    band present."""
    pft = np.asarray(pft, dtype=np.int64)
    lat = np.asarray(lat, dtype=float)
    out = [("all", "all", np.ones(pft.shape, bool))]
    order = range(len(PFT_NAMES)) if pft_order is None else pft_order
    for k in order:
        m = pft == k
        if m.any():
            out.append(("pft", PFT_NAMES[k], m))
    bands = lat_band_names(lat)
    for name, _, _ in LAT_BANDS:
        m = bands == name
        if m.any():
            out.append(("lat_band", name, m))
    return out


def phase_masks(days, start, forecast_start, end) -> list[tuple[str, np.ndarray]]:
    """('assimilation', [start, forecast_start)) and ('forecast', [forecast_start, end)) day masks; a single
    ('all', [start, end)) phase when there is no forecast phase."""
    d = np.asarray(days, dtype="datetime64[D]")
    s, e = np.datetime64(start, "D"), np.datetime64(end, "D")
    if forecast_start is None or np.datetime64(forecast_start, "D") >= e:
        return [("all", (d >= s) & (d < e))]
    f = np.datetime64(forecast_start, "D")
    return [("assimilation", (d >= s) & (d < f)), ("forecast", (d >= f) & (d < e))]


def group_mean(value, control, mask, min_columns: int = MIN_COLUMNS):
    """Mean over the columns of ``mask`` (last axis) where both ``value`` and ``control`` are finite:
    (mean value, mean control, n); NaN means where n < ``min_columns``. Works on (..., ncol) arrays."""
    ok = np.isfinite(value) & np.isfinite(control) & mask
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(ok, value, 0.0).sum(axis=-1) / n
        c = np.where(ok, control, 0.0).sum(axis=-1) / n
    few = n < min_columns
    return np.where(few, np.nan, v), np.where(few, np.nan, c), n


# ---------------------------------------------------------------------------------------------------------------
# inputs


@dataclass
class Experiment:
    name: str
    label: str
    sensors: tuple
    assimilation_end: str | None
    rundir: Path


@dataclass
class Matrix:
    """The contents of ``RUNDIR/matrix.json`` with paths resolved."""

    rundir: Path
    name: str
    start: np.datetime64
    end: np.datetime64
    forecast_start: np.datetime64 | None
    domain_file: str | None
    truth: Path | None
    reference: Path | None
    insitu: Path | None
    control: str
    experiments: list

    def experiment(self, name) -> Experiment:
        return next(e for e in self.experiments if e.name == name)


def _date(path, key, value):
    try:
        return np.datetime64(str(value), "D")
    except ValueError:
        raise UserError(f"{path}: key '{key}' = {value!r} is not a date (expected 'YYYY-MM-DD')") from None


def load_matrix(rundir) -> Matrix:
    """Read and check ``RUNDIR/matrix.json`` (docs/evaluation.md)."""
    rundir = Path(rundir)
    path = rundir / "matrix.json"
    if not rundir.is_dir():
        raise UserError(f"run directory {rundir} does not exist")
    if not path.is_file():
        raise UserError(f"{path}: file not found (a matrix run directory holds matrix.json)")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(m, dict):
        raise UserError(f"{path}: expected a JSON object")
    for key in ("start", "end", "control", "experiments"):
        if key not in m:
            raise UserError(f"{path}: key '{key}' is missing")
    start, end = _date(path, "start", m["start"]), _date(path, "end", m["end"])
    if end <= start:
        raise UserError(f"{path}: key 'end' ({end}) must be after 'start' ({start})")
    fs = m.get("forecast_start")
    fs = None if fs in (None, "") else _date(path, "forecast_start", fs)
    if fs is not None and not start < fs <= end:
        raise UserError(f"{path}: key 'forecast_start' ({fs}) must lie in ('start', 'end'] = ({start}, {end}]")
    if not isinstance(m["experiments"], list) or not m["experiments"]:
        raise UserError(f"{path}: key 'experiments' must be a non-empty list")
    exps = []
    for k, e in enumerate(m["experiments"]):
        if not isinstance(e, dict) or "name" not in e:
            raise UserError(f"{path}: experiments[{k}] must be an object with a 'name'")
        name = str(e["name"])
        if any(x.name == name for x in exps):
            raise UserError(f"{path}: experiment name '{name}' appears twice in 'experiments'")
        exps.append(Experiment(name, str(e.get("label") or name), tuple(e.get("sensors") or ()),
                               e.get("assimilation_end"), rundir / str(e.get("rundir") or name)))
    control = str(m["control"])
    if not any(e.name == control for e in exps):
        raise UserError(f"{path}: control '{control}' is not one of the experiments "
                        f"({', '.join(e.name for e in exps)})")

    def opt(key):
        v = m.get(key)
        return None if v in (None, "") else rundir / str(v)

    return Matrix(rundir, str(m.get("name", rundir.name)), start, end, fs, m.get("domain_file"), opt("truth"),
                  opt("reference"), opt("insitu"), control, exps)


@dataclass
class Target:
    """Values to compare with on a set of days and columns/stations.

    ``values`` (ntime, nq, npoint); ``column`` global column of each point; ``weights`` (nq, nlayer) model-layer
    weights giving the model equivalent; ``pft``, ``lat`` per point; ``layers`` labels (nq)."""

    name: str
    time: np.ndarray
    values: np.ndarray
    column: np.ndarray
    lat: np.ndarray
    pft: np.ndarray
    weights: np.ndarray
    layers: tuple
    point_names: tuple = ()


def _day_labels(path, ds) -> np.ndarray:
    """Days of a reference file: the start of ``time_bnds`` when present, else the day of ``time``."""
    name = "time_bnds" if "time_bnds" in ds.variables else "time"
    t = np.asarray(ds[name].values)
    if name == "time_bnds":
        t = t[:, 0]
    if not np.issubdtype(t.dtype, np.datetime64):
        raise UserError(f"{path}: variable '{name}' has no CF time units (expected e.g. 'days since ...')")
    d = t.astype("datetime64[D]")
    if len(d) > 1 and np.any(np.diff(d) <= np.timedelta64(0, "D")):
        raise UserError(f"{path}: variable 'time' must hold increasing distinct days")
    return d


def _open(path, what):
    import xarray as xr

    if not Path(path).is_file():
        raise UserError(f"{path}: {what} file not found")
    try:
        return xr.open_dataset(path)
    except Exception as exc:
        raise UserError(f"{path}: cannot be read as netCDF ({exc})") from None


def _need(path, ds, name, dims):
    if name not in ds.variables:
        raise UserError(f"{path}: variable '{name}' is missing (expected dimensions {dims})")
    if tuple(ds[name].dims) != tuple(dims):
        raise UserError(f"{path}: variable '{name}' has dimensions {tuple(ds[name].dims)}, expected {dims}")
    return ds[name].values


def load_reference(path, domain, dz_soil) -> Target:
    """The reference field file (``sm(time, column, layer)``, or ``sm(time, layer, column)`` of older files; layer
    bounds in m)."""
    with _open(path, "reference field") as ds:
        if "sm" in ds.variables and tuple(ds["sm"].dims) == ("time", "layer", "column"):
            sm = np.asarray(ds["sm"].values, dtype=float)
        else:
            sm = np.swapaxes(np.asarray(_need(path, ds, "sm", ("time", "column", "layer")), dtype=float), 1, 2)
        top = np.asarray(_need(path, ds, "layer_top", ("layer",)), dtype=float)
        bot = np.asarray(_need(path, ds, "layer_bottom", ("layer",)), dtype=float)
        col = np.asarray(_need(path, ds, "column", ("column",))).astype(np.int64)
        lat = np.asarray(_need(path, ds, "lat", ("column",)), dtype=float)
        days = _day_labels(path, ds)
    try:
        w = layer_matrix(dz_soil, list(zip(top, bot)))
    except ValueError as exc:
        raise UserError(f"{path}: variables 'layer_top'/'layer_bottom': {exc}") from None
    return Target("reference", days, sm, col, lat, _pft(domain, col, path), w,
                  tuple(layer_label(a, b) for a, b in zip(top, bot)))


def load_insitu(path, domain, dz_soil) -> Target:
    """The in-situ file (``sm(time, station)``, ``column(station)``, scalar ``depth`` m)."""
    with _open(path, "in-situ") as ds:
        sm = np.asarray(_need(path, ds, "sm", ("time", "station")), dtype=float)
        col = np.asarray(_need(path, ds, "column", ("station",))).astype(np.int64)
        lat = np.asarray(_need(path, ds, "station_lat", ("station",)), dtype=float)
        depth = float(ds["depth"].values) if "depth" in ds.variables else INSITU_DEPTH
        if "pft" in ds.variables:
            raw = np.asarray(ds["pft"].values, dtype=float)
            if not np.all(np.isfinite(raw)):
                raise UserError(f"{path}: variable 'pft' has missing values (expected a PFT index per station)")
            pft = raw.astype(np.int64)
        else:
            pft = _pft(domain, col, path)
        names = tuple(str(s) for s in ds["station_name"].values) if "station_name" in ds.variables else ()
        days = _day_labels(path, ds)
    if np.any((pft < 0) | (pft >= len(PFT_NAMES))):
        raise UserError(f"{path}: variable 'pft' has values outside 0..{len(PFT_NAMES) - 1}")
    return Target("insitu", days, sm[:, None, :], col, lat, pft, point_weights(dz_soil, depth)[None, :],
                  (layer_label(depth),), names)


def truth_target(truth: LayerSeries, domain) -> Target:
    """The truth run as a target: its model layers averaged over :data:`EVALUATION_LAYERS`."""
    w = layer_matrix(truth.dz_soil, EVALUATION_LAYERS)
    return Target("truth", truth.time, to_layers(truth.theta, w), truth.column, truth.lat,
                  _pft(domain, truth.column, "truth run"), w, tuple(layer_label(a, b) for a, b in EVALUATION_LAYERS))


def _pft(domain, columns, what):
    from ..domain import DomainError

    try:
        return np.asarray(domain.get("pft", columns), dtype=np.int64)
    except DomainError as exc:
        raise UserError(f"{what}: column indices do not fit the domain file: {exc}") from None


def model_equivalent(series: LayerSeries, target: Target) -> np.ndarray:
    """The run's values on the target's days and points (ntime, nq, npoint); NaN where the run has no such day or
    column."""
    eq = to_layers(series.theta, target.weights)  # (nt_run, nq, ncol_run)
    ti = (target.time - series.time[0]).astype(np.int64)
    tok = (ti >= 0) & (ti < len(series.time))
    ci = series.where_columns(target.column)
    cok = ci >= 0
    out = eq[np.where(tok, ti, 0)][:, :, np.where(cok, ci, 0)]
    out[~tok] = np.nan
    out[:, :, ~cok] = np.nan
    return out


def load_run(directory: Path, name: str) -> LayerSeries:
    """History of one experiment's run directory (the only experiment there, or the one called ``name``)."""
    if not Path(directory).is_dir():
        raise UserError(f"run directory {directory} of experiment '{name}' does not exist")
    names = experiment_names(directory)
    return load_soil_moisture(directory, name if (len(names) > 1 and name in names) else None)


# ---------------------------------------------------------------------------------------------------------------
# driver


@dataclass
class Evaluation:
    """Everything :mod:`colmda.evaluation.summary` writes.

    ``rows``: dicts with :data:`CSV_FIELDS`. ``series[reference]``: ``{"time", "layers", experiment: {"spatial_R":
    (ntime, nq), "spatial_RMSE": (ntime, nq)}}`` for the group 'all'. ``station_gain[(experiment, phase)]``:
    per-station dR over the control (NaN where undefined). ``pft_order``: vegetation class names, sparse to dense.
    """

    matrix: Matrix
    rows: list = field(default_factory=list)
    series: dict = field(default_factory=dict)
    station_gain: dict = field(default_factory=dict)
    pft_order: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def score_target(target: Target, runs: dict, control: str, phases, labels: dict, pft_order, *,
                 min_days=MIN_DAYS, min_columns=MIN_COLUMNS, min_spatial=MIN_SPATIAL):
    """Rows, daily spatial series (group 'all') and per-point dR for one target.

    ``runs``: experiment name -> model equivalent (ntime, nq, npoint) on the target's days and points."""
    rows, series, gains = [], {"time": target.time, "layers": target.layers}, {}
    groups = group_masks(target.pft, target.lat, pft_order)
    ref = target.values
    for name, x in runs.items():
        sp = spatial_scores(ref, x, min_spatial)
        series[name] = {k: sp[k] for k in SPATIAL}
    for phase, pmask in phases:
        if not pmask.any():
            continue
        r = ref[pmask]
        xs = {name: x[pmask] for name, x in runs.items()}
        temporal = {name: temporal_scores(r, x, min_days) for name, x in xs.items()}
        spatial = {}
        for kind, gname, gmask in groups:  # a few groups; everything inside is vectorised
            if gmask.sum() < min_spatial:
                continue
            for name, x in xs.items():
                spatial[(name, gname, kind)] = spatial_scores(r[:, :, gmask], x[:, :, gmask], min_spatial)
        ctl_t = temporal[control]
        for name in runs:
            t = temporal[name]
            gains[(name, phase)] = t["R"][0] - ctl_t["R"][0]  # first quantity (the in-situ depth)
            for kind, gname, gmask in groups:
                for metric in TEMPORAL:
                    v, c, n = group_mean(t[metric], ctl_t[metric], gmask, min_columns)
                    for q, layer in enumerate(target.layers):
                        if n[q] >= min_columns:
                            rows.append(_row(name, labels[name], target.name, phase, layer, kind, gname, metric,
                                             v[q], c[q], int(n[q])))
                if (name, gname, kind) not in spatial:
                    continue
                s, sc = spatial[(name, gname, kind)], spatial[(control, gname, kind)]
                for metric in SPATIAL:
                    v, c, n = group_mean(s[metric].T, sc[metric].T, np.ones(s[metric].shape[0], bool), 1)
                    for q, layer in enumerate(target.layers):
                        if n[q] >= 1:
                            rows.append(_row(name, labels[name], target.name, phase, layer, kind, gname, metric,
                                             v[q], c[q], int(n[q])))
    return rows, series, gains


def _row(exp, label, ref, phase, layer, kind, group, metric, value, control, n):
    return {"experiment": exp, "label": label, "reference": ref, "phase": phase, "layer": layer,
            "group_kind": kind, "group": group, "metric": metric, "value": float(value),
            "control_value": float(control), "gain": float(value - control), "n": n}


def evaluate(rundir, *, min_days=MIN_DAYS, min_columns=MIN_COLUMNS, min_spatial=MIN_SPATIAL,
             progress=None) -> Evaluation:
    """Evaluate every experiment of a matrix run directory against the truth, the reference and the stations."""
    from ..domain import Domain, DomainError

    say = progress or (lambda msg: None)
    m = load_matrix(rundir)
    dfile = m.domain_file
    if dfile not in (None, "") and not Path(dfile).is_absolute() and not Path(dfile).exists():
        dfile = m.rundir / dfile
    try:
        domain = Domain.load(None if dfile in (None, "") else dfile)
    except DomainError as exc:
        raise UserError(f"{m.rundir / 'matrix.json'}: key 'domain_file': {exc}") from None
    ev = Evaluation(m)
    order = vegetation_order(domain)
    ev.pft_order = [PFT_NAMES[k] for k in order]

    # targets first (the control gives the soil layers), then one run at a time (global runs are large)
    ctl = load_run(m.experiment(m.control).rundir, m.control)
    targets = []
    if m.truth is not None:
        say("reading the truth run")
        targets.append(truth_target(load_run(m.truth, "truth"), domain))
    else:
        ev.notes.append("no truth run in matrix.json: truth comparison skipped")
    if m.reference is not None:
        targets.append(load_reference(m.reference, domain, ctl.dz_soil))
    else:
        ev.notes.append("no reference field in matrix.json: reference comparison skipped")
    if m.insitu is not None:
        targets.append(load_insitu(m.insitu, domain, ctl.dz_soil))
    else:
        ev.notes.append("no in-situ file in matrix.json: station comparison skipped")
    phases = {}
    for target in targets:
        phases[target.name] = phase_masks(target.time, m.start, m.forecast_start, m.end)
        if not any(p.any() for _, p in phases[target.name]):
            raise UserError(f"{target.name}: no day of the {target.name} data lies in [{m.start}, {m.end}) "
                            "(keys 'start' and 'end' of matrix.json)")
        missing = ~np.isin(target.column, ctl.column)
        if missing.any():
            ev.notes.append(f"{target.name}: {int(missing.sum())} of {len(missing)} points are outside the "
                            "control run's columns and are ignored")
    eq = {t.name: {} for t in targets}
    for e in m.experiments:
        say(f"reading experiment {e.name}")
        run = ctl if e.name == m.control else load_run(e.rundir, e.name)
        if run.dz_soil.shape != ctl.dz_soil.shape or not np.allclose(run.dz_soil, ctl.dz_soil):
            raise UserError(f"{e.rundir}: soil layers ('dz') differ from those of the control '{m.control}'")
        for t in targets:
            eq[t.name][e.name] = model_equivalent(run, t)
        del run
    labels = {e.name: e.label for e in m.experiments}
    for target in targets:
        say(f"scoring against {target.name}")
        rows, series, gains = score_target(target, eq[target.name], m.control, phases[target.name], labels, order,
                                           min_days=min_days, min_columns=min_columns, min_spatial=min_spatial)
        ev.rows.extend(rows)
        ev.series[target.name] = series
        if target.name == "insitu":
            ev.station_gain = gains
    return ev
