"""The observations an analysis uses: files of &observations read once, then selected per window and column.

Each sensor's file (``<directory>/<sensor>.nc``, the colmda observation format of :mod:`colmda.obs.format`) is
read on every rank and reduced to the run's columns. Per window, :meth:`ObservationSet.window` returns the
retrievals with ``t0 < time <= t1`` for a set of (global) columns, with their error standard deviation after the
namelist error, ``error_scale`` and the vegetation rule, and a rejection reason where one already applies.
Everything is a function of global column and time, so the selection is the same for any MPI decomposition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..keys import where
from ..obs.bias import bias_method  # noqa: F401 (part of this module's interface)
from ..obs.format import TB_QUANTITIES
from .rules import multiplier_table

log = logging.getLogger("colmda")


# rejection reasons (0 = used); the analysis adds MODEL_QC and GROSS_ERROR
USED, QUALITY_FLAG, VEGETATION_RULE, MISSING, MODEL_QC, GROSS_ERROR, OUT_OF_RANGE, LOCATION, NO_CLIMATOLOGY = range(9)
REASONS = {USED: "used", QUALITY_FLAG: "quality flag (frozen, snow, range...)",
           VEGETATION_RULE: "excluded by the vegetation rule", MISSING: "missing value",
           MODEL_QC: "model soil frozen or snow-covered at the observation time",
           GROSS_ERROR: "gross error check",
           OUT_OF_RANGE: "value outside [0, porosity + 0.05] m3 m-3 (porosity: the column's top soil layer or the "
                         "file's, the larger)",
           LOCATION: "lat/lon farther than half a grid cell from the centre of its column",
           NO_CLIMATOLOGY: "Tb: no climatology for the seasonal rescaling (too few open-loop pairs)"}
#: slack of the value bounds (m3 m-3): a retrieval in [-VALUE_SLACK_LOW, porosity + VALUE_SLACK_HIGH] is plausible
VALUE_SLACK_LOW, VALUE_SLACK_HIGH = 0.0, 0.05


def value_out_of_range(value, porosity_model, porosity_file) -> np.ndarray:
    """True where a volumetric retrieval cannot be soil moisture (NaN values are 'missing', not out of range)."""
    upper = np.fmax(np.asarray(porosity_model, float), np.asarray(porosity_file, float)) + VALUE_SLACK_HIGH
    v = np.asarray(value, float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & ((v < -VALUE_SLACK_LOW) | (v > np.minimum(upper, 1.0)))


def location_mismatch(lat, lon, col_lat, col_lon, cell_deg) -> np.ndarray:
    """True where a retrieval's lat/lon lie more than half a grid cell (plus 1 %) from its column's centre."""
    dlat, dlon = cell_deg
    dl = np.abs(np.asarray(lat, float) - col_lat)
    dx = np.abs((np.asarray(lon, float) - col_lon + 180.0) % 360.0 - 180.0)
    with np.errstate(invalid="ignore"):
        return ~((dl <= 0.505 * dlat) & (dx <= 0.505 * dlon))


def check_settings(settings) -> None:
    """The observation source of a method that assimilates retrievals: product files, or a directory of colmda
    observation files with at least one sensor (UserError naming the key otherwise)."""
    o, src, method = settings.observations, settings.source, settings.assimilation.method
    if o.products:
        return
    if not o.directory:
        raise UserError(f"{where(src, 'observations', 'directory')}: required for &assimilation method = '{method}' "
                        f"(the directory of the observation files)")
    if not Path(o.directory).is_dir():
        raise UserError(f"{where(src, 'observations', 'directory')} = '{o.directory}': directory not found")
    if not o.sensors:
        raise UserError(f"{where(src, 'observations', 'sensors')}: name at least one sensor file to assimilate")


@dataclass
class WindowObservations:
    """Retrievals of one window (rows), already matched to run-local positions."""

    time: np.ndarray  # datetime64[s]
    column: np.ndarray  # global column
    position: np.ndarray  # index into the columns passed to ObservationSet.window
    sensor: np.ndarray  # index into ObservationSet.sensors
    value: np.ndarray  # m3 m-3 (retrievals) or K (Tb, after the seasonal rescaling when configured)
    error: np.ndarray  # same units, after namelist error, error_scale and vegetation rule
    reason: np.ndarray  # int, USED or a rejection code
    raw: np.ndarray | None = None  # the value before the Tb rescaling (= value for retrievals)

    def __len__(self):
        return len(self.time)

    def take(self, idx) -> "WindowObservations":
        return WindowObservations(**{k: None if getattr(self, k) is None else getattr(self, k)[idx]
                                     for k in self.__dataclass_fields__})


def _product_table(settings, k, name, domain, run_columns):
    """Sensor ``name`` read from its product file with its reader (&observations products / product_files)."""
    from ..obs.readers import read_observations

    o = settings.observations
    if len(o.products) != len(o.sensors) or len(o.product_files) != len(o.sensors):
        raise UserError(f"{settings.source}: &observations products and product_files need one entry per sensor in "
                        f"'sensors' ({len(o.sensors)}); got {len(o.products)} and {len(o.product_files)}")
    if domain is None:
        raise UserError(f"{settings.source}: &observations products need the run's domain")
    res = read_observations(o.product_files[k], o.products[k], domain, run_columns, start=settings.start,
                            end=settings.end, sensor=name)
    return res.table


class ObservationSet:
    def __init__(self, settings, run_columns: np.ndarray, run_pft: np.ndarray, domain=None, weights=None,
                 lat=None, lon=None, *, cell_deg=None, run_porosity=None, tb_climatology: bool = True):
        """``lat``/``lon`` (run column centres) with ``cell_deg`` = (dlat, dlon) enable the location check,
        ``run_porosity`` (top-layer porosity per run column, m3 m-3) the value bounds; ``domain`` and ``weights``
        (operator weights per sensing depth) serve product readers and bias fitting. Brightness-temperature files
        (quantity tb_h / tb_v, K) are read as they are, QC'd with ``tb_reject_flags`` and, when &observations
        tb_climatology is set and ``tb_climatology`` is True, rescaled to the model's seasonal climatology
        (:mod:`colmda.obs.tb_climatology`)."""
        from ..obs.format import read_obs

        o = settings.observations
        src = settings.source
        self.sensors = tuple(o.sensors)
        self.skipped = {}  # reason -> count of retrievals left out before the analysis (logged)
        if not o.directory and not o.products:
            raise UserError(f"{src}: &observations directory is required for &assimilation method = "
                            f"'{settings.assimilation.method}'")
        if not self.sensors:
            raise UserError(f"{src}: &observations sensors is empty; name the sensor files to assimilate")
        if o.error and len(o.error) != len(self.sensors):
            raise UserError(f"{src}: &observations error has {len(o.error)} value(s) for {len(self.sensors)} "
                            f"sensor(s) ({', '.join(self.sensors)})")
        table = multiplier_table(settings.assimilation.vegetation_rule, self.sensors)
        run_columns = np.asarray(run_columns, dtype=np.int64)
        parts = []
        self.sensing_depth = []
        self.quantities = []  # per sensor: the file's quantity ('volumetric', 'saturation', 'tb_h', 'tb_v')
        tables, paths = [], []
        self.outside_run = {}  # sensor -> retrievals on the run's columns outside (start, end]
        self.rejected_on_read = {}  # sensor -> {reason: count} of the checks made when reading
        for k, name in enumerate(self.sensors):
            if o.products:
                t = _product_table(settings, k, name, domain, run_columns)
                path = o.product_files[k]
            else:
                path = Path(o.directory) / f"{name}.nc"
                if not path.is_file():
                    raise UserError(f"{src}: &observations sensors = '{name}': file {path} not found (&observations "
                                    f"directory = '{o.directory}')")
                t = read_obs(path)
            tables.append(t)
            paths.append(path)
            self.sensing_depth.append(float(t.sensing_depth))
            self.quantities.append(str(t.quantity))
        self.is_tb = [q in TB_QUANTITIES for q in self.quantities]
        self.climatology = None
        if any(self.is_tb) and o.tb_climatology and tb_climatology:
            from ..obs.tb_climatology import read_climatology

            self.climatology = read_climatology(o.tb_climatology)
        self.bias = None
        if bias_method(settings) != "none" and any(self.is_tb):
            raise UserError(f"{where(src, 'observations', 'bias_correction')} = '{o.bias_correction}': applies to "
                            f"soil moisture retrievals only; Tb sensors "
                            f"({', '.join(n for n, b in zip(self.sensors, self.is_tb) if b)}) are rescaled with "
                            f"&observations tb_climatology")
        if bias_method(settings) != "none":
            from ..obs.bias import parameters_for_run

            self.bias = parameters_for_run(settings, tables, run_columns, weights, lat, lon)
        for k, (name, t, path) in enumerate(zip(self.sensors, tables, paths)):
            tb = self.is_tb[k]
            value, err = (t.value.astype(float), t.error.astype(float)) if tb else t.volumetric()
            raw = value.copy()
            no_clim = np.zeros(len(t), dtype=bool)
            if tb and self.climatology is not None:
                value = self.climatology.rescale(name, t.column, t.time, value, o.tb_climatology)
                no_clim = np.isfinite(raw) & ~np.isfinite(value)
            if self.bias is not None:
                value, fac = self.bias.apply(np.full(len(t), k), t.column, t.time, value)
                err = err * fac
                n_unfitted = int(np.sum(np.isnan(value) & np.isfinite(t.value)))
                if n_unfitted:
                    self.skipped[f"{name}: no bias parameters for the column"] = n_unfitted
            pos = np.searchsorted(run_columns, t.column)
            inside = (pos < len(run_columns)) & (run_columns[np.minimum(pos, len(run_columns) - 1)] == t.column)
            pos = pos[inside]
            err = np.asarray(err, dtype=float)[inside]
            if o.error:
                err = np.full(len(pos), float(o.error[k]))
            mult = table[k, np.asarray(run_pft)[pos]]
            reason = np.full(len(pos), USED, dtype=np.int32)
            reason[~np.isfinite(value[inside])] = MISSING
            reason[no_clim[inside]] = NO_CLIMATOLOGY
            reason[(np.asarray(t.quality)[inside] & (o.tb_reject_flags if tb else o.reject_flags)) != 0] = \
                QUALITY_FLAG
            if run_porosity is not None and not tb:
                out = value_out_of_range(value[inside], np.asarray(run_porosity)[pos],
                                         np.asarray(t.porosity, float)[inside])
                reason[out & (reason == USED)] = OUT_OF_RANGE
            if lat is not None and cell_deg is not None:
                far = location_mismatch(np.asarray(t.lat)[inside], np.asarray(t.lon)[inside],
                                        np.asarray(lat)[pos], np.asarray(lon)[pos], cell_deg)
                reason[far] = LOCATION  # whatever else: this retrieval is not of this column
            reason[(mult == 0) & (reason == USED)] = VEGETATION_RULE
            tt = np.asarray(t.time, dtype="datetime64[s]")[inside]
            lo, hi = np.datetime64(settings.start, "s"), np.datetime64(settings.end, "s")
            self.outside_run[name] = int(((tt <= lo) | (tt > hi)).sum())
            self.rejected_on_read[name] = {REASONS[c]: int((reason == c).sum()) for c in (OUT_OF_RANGE, LOCATION)
                                           if (reason == c).any()}
            bad = (reason == USED) & ~(np.isfinite(err) & (err > 0))
            if np.any(bad):
                raise UserError(f"{path}: {int(bad.sum())} retrieval(s) have no positive error standard deviation; "
                                f"give &observations error for sensor '{name}'")
            parts.append(dict(time=np.asarray(t.time, dtype="datetime64[s]")[inside], column=t.column[inside],
                              sensor=np.full(len(pos), k, dtype=np.int32), value=np.asarray(value)[inside],
                              error=err * o.error_scale * np.where(mult > 0, mult, 1.0), reason=reason,
                              raw=raw[inside]))
        for why, n in self.skipped.items():
            log.warning("observations %s: %d retrieval(s) left out", why, n)
        cat = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        # sorted by (time, column, sensor): a window is a contiguous slice, and the order is decomposition-free
        order = np.lexsort((cat["sensor"], cat["column"], cat["time"]))
        self.rows = {key: v[order] for key, v in cat.items()}
        self.tsec = self.rows["time"].astype(np.int64)

    def __len__(self):
        return len(self.tsec)

    def window(self, t0, t1, columns: np.ndarray) -> WindowObservations:
        """Retrievals with t0 < time <= t1 on the given global ``columns`` (sorted)."""
        a = np.searchsorted(self.tsec, np.datetime64(t0, "s").astype(np.int64), side="right")
        b = np.searchsorted(self.tsec, np.datetime64(t1, "s").astype(np.int64), side="right")
        col = self.rows["column"][a:b]
        columns = np.asarray(columns, dtype=np.int64)
        pos = np.searchsorted(columns, col)
        ok = (pos < len(columns)) & (columns[np.minimum(pos, len(columns) - 1)] == col)
        sel = np.arange(a, b)[ok]
        r = self.rows
        return WindowObservations(r["time"][sel], r["column"][sel], pos[ok], r["sensor"][sel], r["value"][sel],
                                  r["error"][sel], r["reason"][sel].copy(), raw=r["raw"][sel])
