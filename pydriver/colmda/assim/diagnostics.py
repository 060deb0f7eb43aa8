"""Analysis diagnostics files: one netCDF file per analysis, ``<run>/analysis/<experiment>_<YYYY-MM-DDTHHMM>.nc``.

Dimensions ``obs`` (every retrieval of the window on the run's columns, used or rejected) and ``column`` (the
columns that were analysed), ``layer`` (controlled layers). Variables are listed in docs/assimilation.md. Rows
are gathered from all ranks and sorted by (column, time, sensor), so the file is the same for any number of
ranks. Written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .observations import NO_CLIMATOLOGY, REASONS

#: the reasons of files without brightness temperatures (their layout is unchanged by the Tb reasons)
RETRIEVAL_REASONS = {k: v for k, v in REASONS.items() if k != NO_CLIMATOLOGY}

ROW_META = {
    "time": ("seconds since 1970-01-01 00:00:00", "observation time"),
    "column": ("1", "global column index (j * nlon + i) of the model cell"),
    "sensor": ("1", "index into the file attribute 'sensors'"),
    "value": ("m3 m-3", "retrieved volumetric soil moisture"),
    "error": ("m3 m-3", "observation error standard deviation used (after error, error_scale, vegetation rule)"),
    "reason": ("1", "0 = used, else the rejection reason (attribute 'reasons')"),
    "hx": ("m3 m-3", "model equivalent of the background at the observation time"),
    "innovation": ("m3 m-3", "observation minus background (O - B)"),
    "jacobian": ("1", "d(model equivalent) / d(soil moisture of each controlled layer at the window start)"),
    "gain": ("1", "Kalman gain: d(window-start increment of each layer) / d(innovation)"),
    "linearity": ("1", "two-sided runs: |forward - backward slope| / (|forward| + |backward|)"),
    "value_raw": ("m3 m-3", "observation before the seasonal Tb rescaling (&observations tb_climatology)"),
}
#: units and meanings of the observation-space rows of brightness-temperature sensors (files of Tb sensors only)
TB_ROW_META = {
    "value": ("K", "observed brightness temperature (after the seasonal rescaling when configured)"),
    "value_raw": ("K", "observed brightness temperature before the seasonal rescaling"),
    "error": ("K", "observation error standard deviation used (after error, error_scale, vegetation rule)"),
    "hx": ("K", "model equivalent (tau-omega Tb) of the background at the observation time"),
    "innovation": ("K", "observation minus background (O - B)"),
    "jacobian": ("K", "d(model Tb) / d(soil moisture of each controlled layer at the window start), K per m3 m-3"),
    "gain": ("m3 m-3 K-1", "Kalman gain: d(window-start increment of each layer) / d(innovation)"),
}
COL_META = {
    "column": ("1", "global column index"),
    "background": ("m3 m-3", "background soil moisture (liquid + ice) of the controlled layers at the analysis time"),
    "increment": ("m3 m-3", "applied soil moisture increment at the analysis time (after bounds)"),
    "increment_unbounded": ("m3 m-3", "Kalman increment at the analysis time before bounds"),
    "analysis_std": ("m3 m-3", "analysis error standard deviation at the window start (filter estimate)"),
    "water_added": ("kg m-2", "water added to the column by the analysis (negative: removed)"),
}


class AnalysisWriter:
    def __init__(self, comm, directory: Path, experiment: str, sensors, layers: int, row_meta=None, col_meta=None,
                 *, units: tuple = ()):
        """``row_meta`` / ``col_meta``: {variable: (units, meaning)} of the per-retrieval and per-column variables a
        method writes (default: the SEKF's :data:`ROW_META`, :data:`COL_META`). ``units``: per sensor 'm3 m-3' or
        'K' (default: all 'm3 m-3'). Files of retrieval sensors only keep the retrieval layout; with Tb sensors the
        observation-space rows carry the Tb units (all Tb) or the per-sensor units in the attribute
        ``sensor_units`` (mixed), and the reasons include 'no Tb climatology'."""
        self.comm = comm
        self.row_meta = dict(ROW_META if row_meta is None else row_meta)
        self.col_meta = COL_META if col_meta is None else col_meta
        self.units = tuple(units) or ("m3 m-3",) * len(tuple(sensors))
        self.has_tb = "K" in self.units
        self.reasons = REASONS if self.has_tb else RETRIEVAL_REASONS
        if self.has_tb and set(self.units) == {"K"}:
            self.row_meta.update(TB_ROW_META)
        elif self.has_tb:
            self.row_meta.update({k: ("1" if k != "jacobian" else v[0], v[1] + " (units per sensor: attribute "
                                      "sensor_units)") for k, v in TB_ROW_META.items()})
        self.dir = Path(directory)
        self.experiment = experiment
        self.sensors = tuple(sensors)
        self.layers = layers
        if comm.is_root:
            self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, t1, diag) -> Path | None:
        """Collective: gather this rank's diagnostics of the analysis at ``t1`` and write them on rank 0."""
        parts = self.comm.gather(diag)
        if not self.comm.is_root:
            return None
        parts = [p for p in parts if p is not None]
        rows = _cat([p["rows"] for p in parts])
        cols = _cat([p["columns"] for p in parts])
        if rows and len(rows["time"]):
            order = np.lexsort((rows["sensor"], rows["time"], rows["column"]))
            rows = {k: v[order] for k, v in rows.items()}
        if cols and len(cols["column"]):
            order = np.argsort(cols["column"], kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
        return self._write_file(t1, rows, cols)

    def _write_file(self, t1, rows, cols) -> Path:
        import netCDF4

        from ..output import atomic_path

        path = self.dir / f"{self.experiment}_{t1.strftime('%Y-%m-%dT%H%M')}.nc"
        with atomic_path(path) as tmp:
            with netCDF4.Dataset(tmp, "w") as nc:
                from ..output import global_attributes

                extra = {"sensor_units": ",".join(self.units)} if self.has_tb else {}
                nc.setncatts(global_attributes(
                    "colmda analysis diagnostics", analysis_time=t1.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    experiment=self.experiment, sensors=",".join(self.sensors),
                    reasons="; ".join(f"{k} = {v}" for k, v in self.reasons.items()), **extra))
                nrow = len(rows.get("time", [])) if rows else 0
                ncolumn = len(cols.get("column", [])) if cols else 0
                nc.createDimension("obs", nrow)
                nc.createDimension("column", ncolumn)
                nc.createDimension("layer", self.layers)
                reasons = self.reasons
                for name, (units, long_name) in self.row_meta.items():
                    if not rows or name not in rows:
                        continue
                    a = rows[name]
                    if name == "time":
                        a = a.astype("datetime64[s]").astype(np.int64).astype(np.float64)
                    dims = ("obs",) if a.ndim == 1 else ("obs", "layer")
                    dtype = "f8" if name == "time" else ("i4" if name in ("column", "sensor", "reason") else "f8")
                    v = nc.createVariable(name if name != "column" else "obs_column", dtype, dims, zlib=True)
                    v.units, v.long_name = units, long_name
                    if name == "time":
                        v.standard_name, v.calendar, v.axis = "time", "proleptic_gregorian", "T"
                    elif name != "column":
                        v.coordinates = "time obs_column"
                    if name == "reason":
                        v.flag_values = np.array(sorted(reasons), dtype=np.int32)
                        v.flag_meanings = " ".join(re.sub(r"[^A-Za-z0-9]+", "_", str(reasons[k])).strip("_")
                                                   for k in sorted(reasons))
                        del v.units
                    v[:] = a
                # per-sensor summary: counts by reason, innovation statistics of the used retrievals
                nc.createDimension("sensors", len(self.sensors))
                nc.createDimension("reasons", len(reasons))
                counts = np.zeros((len(self.sensors), len(reasons)), dtype=np.int64)
                imean = np.full(len(self.sensors), np.nan)
                istd = np.full(len(self.sensors), np.nan)
                if nrow:
                    np.add.at(counts, (rows["sensor"], rows["reason"]), 1)
                    for k in range(len(self.sensors)):
                        d = rows["innovation"][(rows["sensor"] == k) & (rows["reason"] == 0)]
                        if len(d):
                            imean[k], istd[k] = d.mean(), d.std()
                v = nc.createVariable("n_obs", "i4", ("sensors", "reasons"))
                v.units, v.long_name = "1", "number of retrievals per sensor and reason (0 = used)"
                v[:] = counts
                for name, arr, what in (("innovation_mean", imean, "mean"), ("innovation_std", istd, "standard "
                                                                                    "deviation")):
                    v = nc.createVariable(name, "f8", ("sensors",))
                    v.units = self.row_meta["innovation"][0]
                    v.long_name = f"{what} of the innovations (O - B) of the used retrievals"
                    v[:] = arr
                for name, (units, long_name) in self.col_meta.items():
                    if not cols or name not in cols:
                        continue
                    a = cols[name]
                    dims = ("column",) if a.ndim == 1 else ("column", "layer")
                    v = nc.createVariable(name, "i4" if name == "column" else "f8", dims, zlib=True)
                    v.units, v.long_name = units, long_name
                    v[:] = a
        return path


def _cat(dicts):
    """Concatenate the ranks' parts (dicts of arrays with the same first dimension). A part without rows (a rank
    with no analysed column) may lack variables the others have: it is left out, so the file is the same for any
    number of ranks; when every part is empty the keys all of them have are kept (zero-length)."""
    dicts = [d for d in dicts if d]
    if not dicts:
        return {}
    use = [d for d in dicts if len(next(iter(d.values())))] or dicts
    keys = [k for k in use[0] if all(k in d for d in use)]
    return {k: np.concatenate([np.asarray(d[k]) for d in use]) for k in keys}


def obs_statistics(directory: Path, experiment: str, sensors, units=()) -> dict:
    """Observation-minus-forecast (O - B) statistics per sensor over every analysis file of the run (so a resumed
    run counts its earlier analyses too): retrievals per reason, and mean, standard deviation and RMS of the
    innovations of the used ones, with the mean and RMS of the normalised innovation d / sqrt(R) (about 1 when
    R and B are right, as HBH' << R here). Tb sensors (``units`` 'K') also get the statistics of the innovations
    before the seasonal rescaling (``omf_raw_mean``, ``omf_raw_std``) when the files hold ``value_raw``."""
    import netCDF4

    files = sorted(Path(directory).glob(f"{experiment}_*.nc"))
    ns = len(sensors)
    units = tuple(units) or ("m3 m-3",) * ns
    counts = np.zeros((ns, len(REASONS)), dtype=np.int64)
    s1, s2, n, z2 = np.zeros(ns), np.zeros(ns), np.zeros(ns, dtype=np.int64), np.zeros(ns)
    r1, r2 = np.zeros(ns), np.zeros(ns)
    for f in files:
        with netCDF4.Dataset(f) as nc:
            if "n_obs" not in nc.variables:
                continue
            got = np.asarray(nc["n_obs"][:], dtype=np.int64)
            counts[:, :got.shape[1]] += got
            if "innovation" in nc.variables and len(nc.dimensions["obs"]):
                r = np.asarray(nc["reason"][:])
                k = np.asarray(nc["sensor"][:])
                d = np.asarray(nc["innovation"][:], dtype=float)
                e = np.asarray(nc["error"][:], dtype=float)
                u = r == 0
                np.add.at(s1, k[u], d[u])
                np.add.at(s2, k[u], d[u] ** 2)
                np.add.at(z2, k[u], (d[u] / e[u]) ** 2)
                np.add.at(n, k[u], 1)
                if "value_raw" in nc.variables:
                    dr = np.asarray(nc["value_raw"][:], dtype=float) - np.asarray(nc["hx"][:], dtype=float)
                    np.add.at(r1, k[u], dr[u])
                    np.add.at(r2, k[u], dr[u] ** 2)
    out = {}
    for i, name in enumerate(sensors):
        m = s1[i] / n[i] if n[i] else float("nan")
        out[name] = {"analyses": len(files), "used": int(n[i]),
                     "rejected": {REASONS[j]: int(counts[i, j]) for j in REASONS if j and counts[i, j]},
                     "omf_mean": float(m), "omf_std": float(np.sqrt(max(s2[i] / n[i] - m * m, 0))) if n[i] else
                     float("nan"), "omf_rms": float(np.sqrt(s2[i] / n[i])) if n[i] else float("nan"),
                     "omf_normalised_rms": float(np.sqrt(z2[i] / n[i])) if n[i] else float("nan"),
                     "units": units[i]}
        if units[i] == "K" and n[i] and r2[i]:
            mr = r1[i] / n[i]
            out[name]["omf_raw_mean"] = float(mr)
            out[name]["omf_raw_std"] = float(np.sqrt(max(r2[i] / n[i] - mr * mr, 0)))
    return out
