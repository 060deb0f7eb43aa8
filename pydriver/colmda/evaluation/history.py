"""Read volumetric soil moisture per model layer from a run's history files (docs/output.md).

:func:`load_soil_moisture` concatenates every ``history/<name>_<period>.nc`` of a run directory in time order and
returns a :class:`LayerSeries` of daily means on the run's land columns, whatever the file layout (``grid`` or
``points``).

Day convention: a daily mean is labelled by the day it covers, i.e. the start of its averaging interval
(``time_bnds[:, 0]``; without bounds the day the time stamp lies in, since colmda stamps means at the interval
centre and ``cdo daymean`` inside the day). Times are decoded by cftime (:mod:`colmda.timeaxis`), so any CF time
units work (a file whose units CDO or NCO rewrote). History written more often than daily (``&output frequency = '6h'`` ...) is averaged to days over the
intervals that start in each day; intervals longer than a day are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..timeaxis import decode_seconds

VARIABLE = "SoilMoistV"
DAY = np.timedelta64(1, "D")
_STAMP = re.compile(r"^(?P<name>.+)_(?P<stamp>\d{4}(-\d{2}(-\d{2}(T\d{4})?)?)?)\.nc$")


@dataclass
class LayerSeries:
    """Daily volumetric soil moisture of a run's land columns.

    ``time`` (ntime,) datetime64[D], the day each mean covers, contiguous; ``theta`` (ntime, nlayer, ncol) m3 m-3
    (NaN where missing); ``column`` (ncol,) int64 global column index ``j * nlon + i``, sorted; ``lat``/``lon``
    (ncol,) degrees; ``dz_soil`` (nlayer,) layer thicknesses (m); ``files`` the history files read.
    """

    time: np.ndarray
    theta: np.ndarray
    column: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    dz_soil: np.ndarray
    files: list = field(default_factory=list)

    @property
    def ncol(self) -> int:
        return len(self.column)

    def where_columns(self, columns) -> np.ndarray:
        """Position of each global column index in :attr:`column` (-1 where the run has no such column)."""
        return locate(self.column, columns)


def interval_starts(nc, path) -> np.ndarray:
    """Start of each record's interval (datetime64[s]) of an open netCDF4 history file: ``time_bnds[:, 0]``, or
    without bounds the start of the day the time stamp lies in; any CF time units (cftime)."""
    tv = nc["time"] if "time" in nc.variables else None
    # colmda's own units when a file gives none (files written by hand in tests, older tools)
    units = getattr(tv, "units", "seconds since 1970-01-01 00:00:00")
    cal = getattr(tv, "calendar", "standard")
    where = f"{path}: variable 'time'"
    bname = getattr(tv, "bounds", "time_bnds")
    if bname in nc.variables:
        sec = decode_seconds(np.asarray(nc[bname][:], dtype=float)[:, 0], units, cal, where=where)
    elif tv is not None:
        sec = np.floor(decode_seconds(np.asarray(tv[:], dtype=float), units, cal, where=where) / 86400.0) * 86400.0
    else:
        raise UserError(f"{path}: variables 'time' and 'time_bnds' are missing")
    return np.datetime64("1970-01-01T00:00:00", "s") + np.round(sec).astype(np.int64).astype("timedelta64[s]")


def mean_files(rundir) -> list[Path]:
    """The interval-mean history files of a run directory (``history/*.nc`` without the ``*_inst.nc`` states)."""
    return sorted(p for p in Path(rundir, "history").glob("*.nc") if not p.name.endswith("_inst.nc"))


def soil_moisture_array(nc) -> np.ndarray:
    """``SoilMoistV`` of an open history file as (time, depth, lat, lon) or (time, depth, point), NaN for fill."""
    v = nc["SoilMoistV"]
    sm = np.ma.filled(v[:].astype(float), np.nan)
    if tuple(v.dimensions) == ("time", "point", "depth"):
        sm = np.swapaxes(sm, 1, 2)
    return sm


def locate(sorted_values, wanted) -> np.ndarray:
    """Index of each of ``wanted`` in the sorted array ``sorted_values``, -1 where absent."""
    sorted_values = np.asarray(sorted_values)
    wanted = np.asarray(wanted, dtype=sorted_values.dtype)
    if sorted_values.size == 0:
        return np.full(wanted.shape, -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_values, wanted), 0, sorted_values.size - 1)
    return np.where(sorted_values[pos] == wanted, pos, -1).astype(np.int64)


def experiment_names(rundir) -> list[str]:
    """Names of the experiments whose history files are in ``rundir/history``."""
    hdir = Path(rundir) / "history"
    names = {m.group("name") for p in hdir.glob("*.nc") if (m := _STAMP.match(p.name))} if hdir.is_dir() else set()
    return sorted(names)


def history_files(rundir, experiment: str | None = None) -> tuple[str, list[Path]]:
    """The experiment name and the history files of a run directory (sorted by name, i.e. by period).

    Without ``experiment`` the name is taken from the file names; the directory must then hold one experiment.
    """
    rundir = Path(rundir)
    hdir = rundir / "history"
    if not rundir.is_dir():
        raise UserError(f"run directory {rundir} does not exist")
    if not hdir.is_dir():
        raise UserError(f"{rundir}: no 'history' directory (expected history/<name>_<period>.nc files, "
                        "see docs/output.md)")
    found = {}
    for p in sorted(hdir.glob("*.nc")):
        m = _STAMP.match(p.name)
        if m:
            found.setdefault(m.group("name"), []).append(p)
    if experiment is None:
        if not found:
            raise UserError(f"{hdir}: no history files (expected <name>_<period>.nc)")
        if len(found) > 1:
            raise UserError(f"{hdir}: history files of several experiments ({', '.join(sorted(found))}); "
                            "name the experiment")
        experiment = next(iter(found))
    if experiment not in found:
        others = f" (found: {', '.join(sorted(found))})" if found else ""
        raise UserError(f"{hdir}: no history files {experiment}_<period>.nc{others}")
    return experiment, found[experiment]


def _read_file(path: Path):
    """(day start datetime64[s], interval length s, theta (nt, nl, ncol), column, lat, lon, dz) of one file."""
    import xarray as xr

    try:
        ds = xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # unreadable or not netCDF
        raise UserError(f"{path}: cannot be read as netCDF ({exc})") from None
    with ds:
        for name in (VARIABLE, "time", "column"):
            if name not in ds.variables:
                what = "volumetric soil moisture per layer; add 'SoilMoistV' (group 'soil' or 'default') to " \
                       "&output variables" if name == VARIABLE else "see docs/output.md"
                raise UserError(f"{path}: variable '{name}' is missing ({what})")
        v = ds[VARIABLE]
        if v.dims == ("time", "point", "depth"):  # points layout: time series of profiles
            v = v.transpose("time", "depth", "point")
        layout = "grid" if v.dims[-2:] == ("lat", "lon") else "points" if v.dims[-1] == "point" else None
        ndim = 4 if layout == "grid" else 3
        if layout is None or len(v.dims) != ndim or v.dims[0] != "time":
            raise UserError(f"{path}: variable '{VARIABLE}' has dimensions {v.dims}, expected "
                            "(time, depth, lat, lon) or (time, point, depth)")
        if "dz" in ds.variables:
            dz = np.asarray(ds["dz"].values, dtype=float)
        elif "depth_bnds" in ds.variables:
            b = np.asarray(ds["depth_bnds"].values, dtype=float)
            dz = b[:, 1] - b[:, 0]
        else:
            raise UserError(f"{path}: variables 'dz' and 'depth_bnds' are missing (layer thicknesses needed)")
        tvar = ds["time"]
        units = str(tvar.attrs.get("units", ""))
        calendar = str(tvar.attrs.get("calendar", "standard"))
        where = f"{path}: variable 'time'"
        t = decode_seconds(np.asarray(tvar.values, dtype=float), units, calendar, where=where)
        bname = str(tvar.attrs.get("bounds", "time_bnds"))
        if bname in ds.variables:  # CF: bounds share the units and calendar of their coordinate
            tb = decode_seconds(np.asarray(ds[bname].values, dtype=float), units, calendar, where=where)
            begin, length = tb[:, 0], tb[:, 1] - tb[:, 0]
        else:  # no bounds: the record describes the day its time stamp lies in
            begin, length = np.floor(t / 86400.0) * 86400.0, np.full(t.shape, 86400.0)
        raw_col = np.asarray(ds["column"].values)
        col = np.where(np.isfinite(raw_col), raw_col, -1).astype(np.int64)
        data = np.asarray(v.values, dtype=np.float64)  # fill values become NaN (mask_and_scale)
        if layout == "grid":
            iy, ix = np.nonzero(col >= 0)
            column = col[iy, ix]
            theta = data[:, :, iy, ix]
            lat = np.asarray(ds["lat"].values, dtype=float)[iy]
            lon = np.asarray(ds["lon"].values, dtype=float)[ix]
        else:
            column = col
            theta = data
            lat = np.asarray(ds["lat"].values, dtype=float)
            lon = np.asarray(ds["lon"].values, dtype=float)
    theta[np.abs(theta) >= 1e19] = np.nan  # a fill value left undecoded
    order = np.argsort(column, kind="stable")
    return (begin, length, theta[:, :, order], column[order], lat[order], lon[order] % 360.0, dz)


def load_soil_moisture(rundir, experiment: str | None = None) -> LayerSeries:
    """Daily soil moisture per layer of a run: all ``history/<experiment>_*.nc`` files concatenated in time order.

    Raises :class:`~colmda.errors.UserError` for a missing directory, missing files or variables, files that
    disagree on columns or layers, overlapping or missing days.
    """
    experiment, files = history_files(rundir, experiment)
    parts = [_read_file(p) for p in files]
    parts.sort(key=lambda p: p[0][0] if len(p[0]) else np.inf)
    first = parts[0]
    for p, path in zip(parts, files):
        if not np.array_equal(p[3], first[3]):
            raise UserError(f"{path}: the history files of {rundir} hold different columns "
                            f"({len(p[3])} vs {len(first[3])})")
        if not np.allclose(p[6], first[6]):
            raise UserError(f"{path}: soil layer thicknesses 'dz' differ between the history files of {rundir}")
    begin = np.concatenate([p[0] for p in parts])
    length = np.concatenate([p[1] for p in parts])
    theta = np.concatenate([p[2] for p in parts], axis=0)
    if len(begin) == 0:
        raise UserError(f"{Path(rundir) / 'history'}: the history files hold no time")
    if np.any(np.diff(begin) <= 0):
        raise UserError(f"{Path(rundir) / 'history'}: history times overlap or are out of order across files "
                        f"({', '.join(p.name for p in files)})")
    if np.any(length > 86400.0 + 1.0):
        raise UserError(f"{Path(rundir) / 'history'}: variable 'time_bnds' gives intervals of "
                        f"{length.max() / 86400:.3g} days; expected daily or shorter means (&output frequency)")
    day = (np.floor(begin / 86400.0).astype("int64")).astype("datetime64[D]")
    days, inverse = np.unique(day, return_inverse=True)
    if len(days) != len(day):  # sub-daily output: mean over the intervals starting in each day
        total = np.zeros((len(days),) + theta.shape[1:])
        cnt = np.zeros_like(total)
        ok = np.isfinite(theta)
        np.add.at(total, inverse, np.where(ok, theta, 0.0))
        np.add.at(cnt, inverse, ok)
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
    if np.any(np.diff(days) != DAY):
        gap = int(np.argmax(np.diff(days) != DAY))
        raise UserError(f"{Path(rundir) / 'history'}: history days are not contiguous: {days[gap]} is followed "
                        f"by {days[gap + 1]} (a missing or extra history file?)")
    return LayerSeries(time=days, theta=theta, column=first[3], lat=first[4], lon=first[5],
                       dz_soil=np.asarray(first[6], float), files=list(files))
