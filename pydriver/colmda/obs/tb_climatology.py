"""Tb innovations rescaled to a zero seasonal mean (SMAP Level-4 practice), with a stored climatology.

SMAP L4 (Reichle et al. 2017, J. Hydrometeor. 18, 3217-3237; De Lannoy and Reichle 2016, HESS 20, 4895-4911)
does not assimilate the raw brightness temperatures: per pixel, polarisation and time of year it subtracts the
climatological mean difference between the observed and the modelled Tb, so that the filter corrects anomalies
and not the radiative-transfer model's (or the land model's) seasonal bias. Here, for every observed column,
Tb sensor (polarisation) and pentad of the year (73 pentads: day of year // 5, day 366 in the last):

    mu_obs(s, p, c)   = mean of the observed Tb            } over the rows of an open-loop run (&assimilation
    mu_model(s, p, c) = mean of the open-loop model Tb     } method = 'monitor') used by its QC, whose pentad lies
                                                             within +- window // 2 pentads of p (circular in the
                                                             year; several years pool by pentad)
    y' = y - mu_obs(s, p, c) + mu_model(s, p, c)           (the observation rescaled to the model climatology)

so the innovations y' - H(x) of the open loop have zero mean in every (column, sensor, pentad) window, exactly
(tests/test_tb_climatology.py). A row whose (sensor, pentad, column) had fewer than ``min_count`` pairs gets no
rescaling and is not assimilated (reason 'no Tb climatology'). Only the mean is rescaled (SMAP L4's choice); the
observation error is unchanged.

File (netCDF, written atomically): dimensions ``sensor``, ``pentad`` (73), ``column``; variables ``column``
(global column index), ``pentad``, ``obs_mean``, ``model_mean`` (K), ``count`` (pairs in the window); attributes
``sensors`` (the sensor names, comma-separated, in the order of the ``sensor`` dimension), ``window_pentads``,
``min_count``, ``period`` (first and last row time), ``source_run``. CF-1.8 (tests/test_cf.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..output import atomic_path

__all__ = ['NPENTAD', 'TbClimatology', 'pentad', 'fit', 'read_climatology', 'write_climatology']

NPENTAD = 73


def pentad(time) -> np.ndarray:
    """Pentad of the year (0..72) of datetime64 times: (day of year - 1) // 5, the 366th day in pentad 72."""
    t = np.asarray(time, dtype="datetime64[s]")
    year = t.astype("datetime64[Y]")
    doy = (t.astype("datetime64[D]") - year.astype("datetime64[D]")).astype(np.int64)  # 0-based
    return np.minimum(doy // 5, NPENTAD - 1)


@dataclasses.dataclass
class TbClimatology:
    sensors: tuple  # sensor names (index s), e.g. ('TbH', 'TbV')
    column: np.ndarray  # (ncol,) sorted global columns
    obs_mean: np.ndarray  # (nsensor, 73, ncol) K, NaN where count < min_count
    model_mean: np.ndarray  # (nsensor, 73, ncol) K
    count: np.ndarray  # (nsensor, 73, ncol) pairs in the window
    window_pentads: int = 7
    min_count: int = 10
    period: str = ''
    source_run: str = ''

    def offset(self, sensor_name: str, column, time, path='') -> np.ndarray:
        """mu_model - mu_obs (K) for rows of sensor ``sensor_name`` at global ``column`` and ``time``; NaN where the
        climatology has no (or too few) pairs. UserError naming the file when the sensor is not in it."""
        if sensor_name not in self.sensors:
            raise UserError(f"{path or 'Tb climatology'}: sensor '{sensor_name}' not in the file (it holds "
                            f"{', '.join(self.sensors) or 'none'}); rebuild it with an open-loop run "
                            "(&assimilation method = 'monitor') that observes this sensor")
        s = self.sensors.index(sensor_name)
        column = np.asarray(column, dtype=np.int64)
        pos = np.searchsorted(self.column, column)
        known = (pos < self.column.size) & (self.column[np.minimum(pos, self.column.size - 1)] == column)
        out = np.full(column.shape, np.nan)
        p = pentad(np.asarray(time)[known])
        pk = pos[known]
        ok = self.count[s, p, pk] >= self.min_count
        out[np.flatnonzero(known)[ok]] = (self.model_mean[s, p, pk] - self.obs_mean[s, p, pk])[ok]
        return out

    def rescale(self, sensor_name: str, column, time, value, path='') -> np.ndarray:
        """y' = y - mu_obs + mu_model (NaN where the climatology has no value)."""
        return np.asarray(value, dtype=float) + self.offset(sensor_name, column, time, path)


def fit(sensors, sensor, column, time, obs, model, *, window_pentads=7, min_count=10, source_run=''
        ) -> TbClimatology:
    """Climatology of observed and model Tb from pairs (rows: ``sensor`` index into ``sensors``, global ``column``,
    ``time``, ``obs``, ``model`` in K; non-finite pairs are ignored). ``window_pentads`` (odd): width of the
    moving window over the pentads of the year."""
    if window_pentads < 1 or window_pentads % 2 == 0 or window_pentads > NPENTAD:
        raise UserError(f"Tb climatology: window_pentads = {window_pentads}, expected an odd number in 1..73")
    sensor = np.asarray(sensor, dtype=np.int64)
    column = np.asarray(column, dtype=np.int64)
    obs, model = np.asarray(obs, dtype=float), np.asarray(model, dtype=float)
    ok = np.isfinite(obs) & np.isfinite(model)
    sensor, column, obs, model = sensor[ok], column[ok], obs[ok], model[ok]
    times = np.asarray(time, dtype="datetime64[s]")[ok]
    cols = np.unique(column)
    ns = len(sensors)
    shape = (ns, NPENTAD, cols.size)
    n = np.zeros(shape)
    so = np.zeros(shape)
    sm = np.zeros(shape)
    idx = (sensor, pentad(times), np.searchsorted(cols, column))
    np.add.at(n, idx, 1.0)
    np.add.at(so, idx, obs)
    np.add.at(sm, idx, model)
    # box sum over +- half pentads, circular in the year
    half = window_pentads // 2
    box = lambda a: sum(np.roll(a, k, axis=1) for k in range(-half, half + 1))  # noqa: E731
    n, so, sm = box(n), box(so), box(sm)
    with np.errstate(invalid="ignore", divide="ignore"):
        enough = n >= min_count
        obs_mean = np.where(enough, so / n, np.nan)
        model_mean = np.where(enough, sm / n, np.nan)
    period = f"{times.min()} .. {times.max()}" if times.size else ''
    return TbClimatology(tuple(sensors), cols, obs_mean, model_mean, n.astype(np.int64), int(window_pentads),
                         int(min_count), period, str(source_run))


def write_climatology(path, clim: TbClimatology) -> Path:
    import netCDF4

    from ..output import global_attributes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w") as nc:
            nc.setncatts(global_attributes(
                "colmda Tb climatology for the seasonal rescaling of Tb innovations (SMAP L4 practice)",
                sensors=",".join(clim.sensors), window_pentads=clim.window_pentads, min_count=clim.min_count,
                period=clim.period, source_run=clim.source_run))
            nc.createDimension("sensor", len(clim.sensors))
            nc.createDimension("pentad", NPENTAD)
            nc.createDimension("column", clim.column.size)
            v = nc.createVariable("column", "i4", ("column",))
            v.units, v.long_name = "1", "global column index (j * nlon + i)"
            v[:] = clim.column
            v = nc.createVariable("pentad", "i4", ("pentad",))
            v.units, v.long_name = "1", "pentad of the year: (day of year - 1) // 5 (day 366 in pentad 72)"
            v[:] = np.arange(NPENTAD)
            for name, arr, what in (("obs_mean", clim.obs_mean, "mean observed Tb"),
                                    ("model_mean", clim.model_mean, "mean open-loop model Tb")):
                v = nc.createVariable(name, "f8", ("sensor", "pentad", "column"), zlib=True)
                v.units, v.long_name = "K", f"{what} in the moving pentad window"
                v[:] = arr
            v = nc.createVariable("count", "i4", ("sensor", "pentad", "column"), zlib=True)
            v.units, v.long_name = "1", "observation-model pairs in the moving pentad window"
            v[:] = clim.count
    return path


def read_climatology(path, key: str = "&observations tb_climatology") -> TbClimatology:
    """Read a climatology file; one-line UserError naming the file (and the namelist key) when it is missing or
    lacks a variable."""
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{key} = '{path}': file not found (make it with an open-loop run, &assimilation method = "
                        "'monitor', that sets this key)")
    try:
        with netCDF4.Dataset(path) as nc:
            missing = [v for v in ("column", "obs_mean", "model_mean", "count") if v not in nc.variables]
            if missing:
                raise UserError(f"{path}: variable '{missing[0]}' missing; not a colmda Tb climatology file")
            sensors = tuple(str(nc.getncattr("sensors")).split(",")) if "sensors" in nc.ncattrs() else ()
            clim = TbClimatology(sensors, np.asarray(nc["column"][:], dtype=np.int64),
                                 np.ma.filled(nc["obs_mean"][:].astype(float), np.nan),
                                 np.ma.filled(nc["model_mean"][:].astype(float), np.nan),
                                 np.asarray(nc["count"][:], dtype=np.int64),
                                 int(nc.getncattr("window_pentads")), int(nc.getncattr("min_count")),
                                 str(nc.getncattr("period")), str(nc.getncattr("source_run")))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the Tb climatology ({exc})") from None
    if clim.obs_mean.shape != (len(sensors), NPENTAD, clim.column.size):
        raise UserError(f"{path}: obs_mean has shape {clim.obs_mean.shape}, expected (sensor, 73, column)")
    return clim
