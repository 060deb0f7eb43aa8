"""History output: CF-1.8 netCDF files with ALMA variable names, written atomically by rank 0.

The table :data:`VARIABLES` maps every output variable to the core diagnostic it comes from (``D_*`` /
``DS_*`` rows of :mod:`colmda.layout`), with its units, CF ``standard_name`` (only where CF defines one) and
``long_name``. ``docs/output.md`` is generated from the same table (``tests/test_output.py`` checks it).

Files: one per file period (``&output file_period``), ``history/<name>_<period start>.nc``, written once when the
period is complete (the last one at the end of the run), through a temporary file in the same directory and
``os.replace``; a killed run never leaves a half-written history file and never rewrites a finished one.

Layouts: ``grid`` (``time, [depth,] lat, lon`` on the lat-lon grid of the selected box, cells without a land column
hold ``_FillValue``) or ``points`` (``time, [depth,] point`` with ``lat(point)``, ``lon(point)``, ``column(point)``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import layout as L
from .constants import DENH2O, DENICE

FILL_VALUE = 1.0e20  # CF / CMIP convention
RHO_LIQ = DENH2O  # density of liquid water (kg m-3)
RHO_ICE = DENICE  # density of ice (kg m-3)


@dataclass(frozen=True)
class OutVar:
    """One output variable. ``source`` is a ``D_*``/``DS_*`` layout name or ``derived`` (then ``fn`` computes it
    from the diagnostic arrays and the layer thicknesses)."""

    name: str
    source: str
    units: str
    long_name: str
    standard_name: str = ""
    groups: tuple = ("default",)
    fn: Callable | None = None
    note: str = ""

    @property
    def layered(self) -> bool:
        return self.source.startswith("DS_") or self.source == "derived_soil"


def _soil_moist_v(d, ds, dz):
    """Volume fraction of condensed water: liquid / rho_liq + ice / rho_ice over the layer thickness."""
    total = ds[L.DS_SOILMOIST]
    ice = ds[L.DS_SOILICE]
    return ((total - ice) / RHO_LIQ + ice / RHO_ICE) / dz[:, None]


_E = ("default", "energy")
_W = ("default", "water")
_S = ("default", "snow")
_SOIL = ("default", "soil")
_BAL = ("balance",)

VARIABLES: dict[str, OutVar] = {v.name: v for v in (
    # energy balance
    OutVar("SWnet", "D_SWNET", "W m-2", "net shortwave radiation", "surface_net_downward_shortwave_flux", _E),
    OutVar("LWnet", "D_LWNET", "W m-2", "net longwave radiation", "surface_net_downward_longwave_flux", _E),
    OutVar("Qle", "D_QLE", "W m-2", "latent heat flux", "surface_upward_latent_heat_flux", _E),
    OutVar("Qh", "D_QH", "W m-2", "sensible heat flux", "surface_upward_sensible_heat_flux", _E),
    OutVar("Qg", "D_QG", "W m-2", "ground heat flux into snow/soil",
           "downward_heat_flux_at_ground_level_in_soil", _E, note="positive downward"),
    # water fluxes
    OutVar("Rainf", "D_RAINF", "kg m-2 s-1", "rainfall rate", "rainfall_flux", _W),
    OutVar("Snowf", "D_SNOWF", "kg m-2 s-1", "snowfall rate", "snowfall_flux", _W),
    OutVar("Evap", "D_EVAP", "kg m-2 s-1", "total evapotranspiration", "water_evapotranspiration_flux", _W,
           note="positive upward"),
    OutVar("TVeg", "D_TVEG", "kg m-2 s-1", "vegetation transpiration", "transpiration_flux", _W),
    OutVar("ESoil", "D_ESOIL", "kg m-2 s-1", "bare soil evaporation", "water_evaporation_flux_from_soil", _W,
           note="includes evaporation of ponded water"),
    OutVar("ECanop", "D_ECANOP", "kg m-2 s-1", "interception evaporation", "water_evaporation_flux_from_canopy",
           _W),
    OutVar("SubSnow", "D_SUBSNOW", "kg m-2 s-1", "evaporation and sublimation from snow on the ground", "", _S),
    OutVar("Qs", "D_QS", "kg m-2 s-1", "surface runoff", "surface_runoff_flux", _W),
    OutVar("Qsb", "D_QSB", "kg m-2 s-1", "subsurface runoff", "subsurface_runoff_flux", _W),
    OutVar("Qsm", "D_QSM", "kg m-2 s-1", "snowmelt", "surface_snow_melt_flux", _S),
    # storages and states
    OutVar("SoilMoist", "DS_SOILMOIST", "kg m-2", "soil moisture (liquid + ice) per layer",
           "mass_content_of_water_in_soil_layer", _SOIL),
    OutVar("SoilMoistV", "derived_soil", "1", "volumetric soil moisture per layer (m3 m-3)",
           "volume_fraction_of_condensed_water_in_soil", _SOIL, fn=_soil_moist_v,
           note="(liquid / 1000 + ice / 917) / layer thickness"),
    OutVar("SoilIce", "DS_SOILICE", "kg m-2", "frozen soil water per layer", "", ("soil",)),
    OutVar("SoilTemp", "DS_SOILTEMP", "K", "soil temperature per layer", "soil_temperature", _SOIL),
    OutVar("SWE", "D_SWE", "kg m-2", "snow water equivalent", "surface_snow_amount", _S),
    OutVar("SnowDepth", "D_SNOWDEPTH", "m", "snow depth", "surface_snow_thickness", _S),
    OutVar("SnowFrac", "D_SNOWFRAC", "1", "snow covered fraction", "surface_snow_area_fraction", _S),
    OutVar("CanopInt", "D_CANOPINT", "kg m-2", "canopy interception storage", "canopy_water_amount", _W),
    OutVar("SurfStor", "D_POND", "kg m-2", "ponded surface water", "", ("water",)),
    OutVar("WaterTableD", "D_ZWT", "m", "water table depth below the surface", "", _W),
    OutVar("GroundwStor", "D_WA", "kg m-2", "water stored in the unconfined aquifer", "", ("water",)),
    OutVar("TWS", "D_TWS", "kg m-2", "total column water storage", "", _W,
           note="soil + snow + canopy + ponded + aquifer water"),
    OutVar("AvgSurfT", "D_AVGSURFT", "K", "average surface (ground/snow) temperature", "surface_temperature", _E),
    OutVar("RadT", "D_RADT", "K", "radiative surface temperature", "", _E),
    OutVar("VegT", "D_VEGT", "K", "leaf temperature", "canopy_temperature", ("energy",)),
    OutVar("Albedo", "D_ALBEDO", "1", "surface albedo", "surface_albedo", _E),
    OutVar("GPP", "D_GPP", "kg m-2 s-1", "gross primary production (mass of carbon)",
           "gross_primary_productivity_of_biomass_expressed_as_carbon", ("default", "carbon")),
    OutVar("BTran", "D_BTRAN", "1", "soil water stress factor for transpiration", "", ("water",)),
    OutVar("HeatC", "D_HEATC", "J m-2", "snow + soil heat content relative to ice at 0 C", "", _BAL),
    # balance residuals (round-off if the core is right)
    OutVar("WaterBalErr", "D_WBAL_ERR", "kg m-2 s-1", "water balance residual: storage change minus net input",
           "", _BAL),
    OutVar("EnergyBalErr", "D_EBAL_ERR", "W m-2", "surface energy balance residual", "", _BAL),
    OutVar("SoilHeatErr", "D_SOILH_ERR", "W m-2", "snow/soil heat balance residual", "", _BAL),
    OutVar("LeafEnergyRes", "D_LEAF_RES", "W m-2", "leaf energy balance residual at convergence", "", _BAL),
)}

VARIABLE_GROUPS = ("default", "energy", "water", "soil", "snow", "carbon", "balance", "all")


def resolve_variables(names) -> list[str]:
    """Output variable names (table order) for a list of names and/or groups."""
    wanted = set()
    for n in names:
        if n == "all":
            wanted |= set(VARIABLES)
        elif n in VARIABLE_GROUPS:
            wanted |= {v.name for v in VARIABLES.values() if n in v.groups}
        elif n in VARIABLES:
            wanted.add(n)
        else:
            raise KeyError(n)
    return [n for n in VARIABLES if n in wanted]


def compute(name: str, d: np.ndarray, ds: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """One output variable from diagnostics ``d`` (ND, ncol) and ``ds`` (NDS, nl, ncol): (ncol,) or (nl, ncol)."""
    v = VARIABLES[name]
    if v.fn is not None:
        return v.fn(d, ds, dz)
    if v.source.startswith("DS_"):
        return ds[getattr(L, v.source)]
    return d[getattr(L, v.source)]


# ---------------------------------------------------------------------------------------------------------------
# where columns go in the output


@dataclass
class OutputGrid:
    """Placement of the run's columns (in global column order) in the output.

    ``grid``: ``lat``/``lon`` are the cell centres of the smallest lat-lon window of the domain grid that holds all
    columns (longitudes may wrap around the date line), ``iy``/``ix`` the position of each column in it.
    ``points``: one entry per column with its own ``point_lat``/``point_lon`` (and optional names).
    """

    layout: str
    column: np.ndarray  # (ncol,) global column index (flat row-major (lat, lon) index of the domain grid)
    point_lat: np.ndarray  # (ncol,) latitude of each column's cell centre (degrees_north)
    point_lon: np.ndarray  # (ncol,) longitude (degrees_east)
    lat: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (nlat,) grid layout only
    lon: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (nlon,)
    lat_bnds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    lon_bnds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    iy: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    ix: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    names: tuple = ()

    @property
    def ncol(self) -> int:
        return len(self.column)

    @staticmethod
    def for_columns(layout: str, column, grid_lat, grid_lon, names=(), point_lat=None, point_lon=None):
        """Build from the global column indices and the full domain grid's cell centres (1-D lat, lon)."""
        column = np.asarray(column, dtype=np.int64)
        glat = np.asarray(grid_lat, dtype=float)
        glon = np.asarray(grid_lon, dtype=float)
        nlon = len(glon)
        jy, jx = np.divmod(column, nlon)
        plat = glat[jy] if point_lat is None else np.asarray(point_lat, float)
        plon = glon[jx] if point_lon is None else np.asarray(point_lon, float)
        g = OutputGrid(layout, column, plat, plon, names=tuple(names))
        if layout == "points":
            return g
        rows = np.arange(jy.min(), jy.max() + 1)
        used = np.unique(jx)
        # longitude window: start after the largest circular gap between used grid columns
        gaps = np.diff(np.concatenate([used, [used[0] + nlon]]))
        if gaps.max() == 1:  # every longitude is used: the grid's own order
            first, width = 0, nlon
        else:
            k = int(np.argmax(gaps))
            first = used[(k + 1) % len(used)]
            width = nlon - int(gaps[k]) + 1
        unwrapped = first + np.arange(width)
        cols = unwrapped % nlon
        shift = 360.0 * (unwrapped // nlon)  # keeps longitudes increasing across the date line
        if (glon[cols] + shift).max() >= 360.0:  # window crosses the prime meridian of a 0..360 grid
            shift = shift - 360.0
        g.lat, g.lon = glat[rows], glon[cols] + shift
        g.lat_bnds = _bounds(glat)[rows]
        g.lon_bnds = _bounds(glon)[cols] + shift[:, None]
        g.iy = jy - rows[0]
        g.ix = (jx - first) % nlon
        return g


def _bounds(c: np.ndarray) -> np.ndarray:
    """Cell bounds of a regular axis of centres."""
    if len(c) == 1:
        return np.array([[c[0] - 0.5, c[0] + 0.5]])
    step = np.diff(c).mean()
    return np.stack([c - step / 2, c + step / 2], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# atomic files


@contextlib.contextmanager
def atomic_path(final):
    """Yield a temporary path next to ``final``; on success it replaces ``final`` atomically (after fsync), on any
    exception it is removed and ``final`` is untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp{os.getpid()}"
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable
        dfd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def remove_stale_temporaries(directory) -> list[Path]:
    """Delete temporary files left by a killed writer (names '.<file>.tmp<pid>')."""
    removed = []
    d = Path(directory)
    if d.is_dir():
        for p in d.glob(".*.tmp*"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------------------------
# time helpers

EPOCH = _dt.datetime(1970, 1, 1)
TIME_UNITS = "seconds since 1970-01-01 00:00:00"


def to_seconds(t: _dt.datetime) -> float:
    return (t - EPOCH).total_seconds()


def file_period_start(t: _dt.datetime, period: tuple[int, str], origin: _dt.datetime) -> _dt.datetime:
    """Start of the history file period that contains ``t``."""
    n, unit = period
    if unit == "d":
        k = int((t - origin).total_seconds() // (n * 86400))
        return origin + _dt.timedelta(days=n * k)
    if unit == "mo":
        return _dt.datetime(t.year, t.month, 1)
    return _dt.datetime(t.year, 1, 1)


def file_period_end(start: _dt.datetime, period: tuple[int, str]) -> _dt.datetime:
    n, unit = period
    if unit == "d":
        return start + _dt.timedelta(days=n)
    if unit == "mo":
        return _dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return _dt.datetime(start.year + 1, 1, 1)


def file_stamp(start: _dt.datetime, period: tuple[int, str]) -> str:
    if period[1] == "y":
        return start.strftime("%Y")
    if period[1] == "mo":
        return start.strftime("%Y-%m")
    return start.strftime("%Y-%m-%d") + ("" if start.time() == _dt.time(0) else start.strftime("T%H%M"))


# ---------------------------------------------------------------------------------------------------------------
# the writer


@dataclass
class Record:
    """One output time: values of every requested variable for all columns (global column order)."""

    time: _dt.datetime  # time stamp: end of the interval (mean) or the instant
    begin: _dt.datetime  # start of the averaging interval
    fields: dict  # name -> (ncol,) or (nl, ncol), in the output precision


class HistoryWriter:
    """Collects records (rank 0) and writes one netCDF file per file period when the period is complete."""

    def __init__(self, directory, *, experiment: str, variables: list[str], grid: OutputGrid, dz_soil,
                 averaging: str, frequency: str, period: tuple[int, str], origin: _dt.datetime,
                 precision: str = "float32", complevel: int = 4, attrs: dict | None = None):
        self.directory = Path(directory)
        self.experiment = experiment
        self.variables = list(variables)
        self.grid = grid
        self.dz = np.asarray(dz_soil, dtype=float)
        self.averaging = averaging
        self.frequency = frequency
        self.period = period
        self.origin = origin
        self.dtype = np.dtype(precision)
        self.complevel = int(complevel)
        self.attrs = dict(attrs or {})
        self.pending: list[Record] = []
        self.written: list[Path] = []

    # ---- records
    def add(self, time, begin, d: np.ndarray, ds: np.ndarray) -> None:
        """Add one output time from global diagnostics ``d`` (ND, ncol) and ``ds`` (NDS, nl, ncol)."""
        # kept in the file's precision: the records of an open file period are held in memory (and in restarts)
        fields = {n: np.array(compute(n, d, ds, self.dz), dtype=self.dtype) for n in self.variables}
        self.pending.append(Record(time, begin, fields))

    def flush(self, now: _dt.datetime, final: bool = False) -> list[Path]:
        """Write every file period that ended at or before ``now`` (all pending records if ``final``)."""
        done = []
        while self.pending:
            pstart = file_period_start(self.pending[0].begin, self.period, self.origin)
            pend = file_period_end(pstart, self.period)
            if pend > now and not final:
                break
            recs = [r for r in self.pending if r.begin < pend]
            self.pending = self.pending[len(recs):]
            path = self.directory / f"{self.experiment}_{file_stamp(pstart, self.period)}.nc"
            write_history_file(path, recs, self)
            done.append(path)
        self.written.extend(done)
        return done

    # ---- restart support: pending records as plain arrays
    def pending_arrays(self) -> dict:
        if not self.pending:
            return {}
        out = {"time": np.array([to_seconds(r.time) for r in self.pending]),
               "begin": np.array([to_seconds(r.begin) for r in self.pending])}
        for n in self.variables:
            out[n] = np.stack([r.fields[n] for r in self.pending])
        return out

    def restore_pending(self, arrays: dict) -> None:
        self.pending = []
        if not arrays:
            return
        for i, (t, b) in enumerate(zip(arrays["time"], arrays["begin"])):
            self.pending.append(Record(EPOCH + _dt.timedelta(seconds=float(t)),
                                       EPOCH + _dt.timedelta(seconds=float(b)),
                                       {n: np.array(arrays[n][i]) for n in self.variables}))


def write_history_file(path, records: list[Record], w: HistoryWriter) -> None:
    """Write ``records`` to ``path`` atomically (see module docstring for the layout)."""
    import netCDF4

    from . import __version__

    g = w.grid
    nt = len(records)
    nl = len(w.dz)
    fill = w.dtype.type(FILL_VALUE)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            nc.createDimension("time", nt)
            nc.createDimension("nv", 2)
            nc.createDimension("depth", nl)
            if g.layout == "grid":
                nc.createDimension("lat", len(g.lat))
                nc.createDimension("lon", len(g.lon))
                hdims = ("lat", "lon")
                hshape = (len(g.lat), len(g.lon))
            else:
                nc.createDimension("point", g.ncol)
                hdims = ("point",)
                hshape = (g.ncol,)
            # ---- coordinates
            t = nc.createVariable("time", "f8", ("time",))
            t.standard_name = "time"
            t.long_name = "time"
            t.units = TIME_UNITS
            t.calendar = "proleptic_gregorian"
            t.axis = "T"
            t[:] = [to_seconds(r.time) for r in records]
            if w.averaging == "mean":
                t.bounds = "time_bnds"
                tb = nc.createVariable("time_bnds", "f8", ("time", "nv"))
                tb[:] = [[to_seconds(r.begin), to_seconds(r.time)] for r in records]
            zi = np.concatenate([[0.0], np.cumsum(w.dz)])
            dep = nc.createVariable("depth", "f8", ("depth",))
            dep.standard_name = "depth"
            dep.long_name = "depth of soil layer centre"
            dep.units = "m"
            dep.positive = "down"
            dep.axis = "Z"
            dep.bounds = "depth_bnds"
            dep[:] = 0.5 * (zi[:-1] + zi[1:])
            db = nc.createVariable("depth_bnds", "f8", ("depth", "nv"))
            db[:] = np.stack([zi[:-1], zi[1:]], axis=1)
            dz = nc.createVariable("dz", "f8", ("depth",))
            dz.long_name = "soil layer thickness"
            dz.units = "m"
            dz[:] = w.dz
            if g.layout == "grid":
                for name, vals, bnds, units, std in (("lat", g.lat, g.lat_bnds, "degrees_north", "latitude"),
                                                     ("lon", g.lon, g.lon_bnds, "degrees_east", "longitude")):
                    v = nc.createVariable(name, "f8", (name,))
                    v.standard_name = std
                    v.long_name = std
                    v.units = units
                    v.axis = "Y" if name == "lat" else "X"
                    v.bounds = f"{name}_bnds"
                    v[:] = vals
                    b = nc.createVariable(f"{name}_bnds", "f8", (name, "nv"))
                    b[:] = bnds
                col = nc.createVariable("column", "i8", hdims, fill_value=np.int64(-1))
                col.long_name = "global column index of the domain (flat row-major (lat, lon) index)"
                cmap = np.full(hshape, -1, dtype=np.int64)
                cmap[g.iy, g.ix] = g.column
                col[:] = cmap
            else:
                for name, vals, units, std in (("lat", g.point_lat, "degrees_north", "latitude"),
                                               ("lon", g.point_lon, "degrees_east", "longitude")):
                    v = nc.createVariable(name, "f8", ("point",))
                    v.standard_name = std
                    v.long_name = std
                    v.units = units
                    v[:] = vals
                col = nc.createVariable("column", "i8", ("point",))
                col.long_name = "global column index of the domain (flat row-major (lat, lon) index)"
                col[:] = g.column
                if g.names:
                    nm = nc.createVariable("point_name", str, ("point",))
                    nm.long_name = "point (site) name"
                    nm[:] = np.array(list(g.names), dtype=object)
            # ---- data
            cell = "time: mean" if w.averaging == "mean" else "time: point"
            for n in w.variables:
                meta = VARIABLES[n]
                dims = ("time",) + (("depth",) if meta.layered else ()) + hdims
                inner = ((nl,) if meta.layered else ()) + hshape
                # about 64k values per chunk: one time per chunk for global fields, many for a few points
                ntc = int(min(nt, max(1, 65536 // int(np.prod(inner)))))
                chunks = (ntc,) + inner
                v = nc.createVariable(n, w.dtype, dims, zlib=w.complevel > 0, complevel=max(w.complevel, 1),
                                      shuffle=w.complevel > 0, fill_value=fill, chunksizes=chunks)
                if meta.standard_name:
                    v.standard_name = meta.standard_name
                v.long_name = meta.long_name
                v.units = meta.units
                v.cell_methods = cell
                if g.layout == "points":
                    v.coordinates = "lat lon"
                if meta.note:
                    v.comment = meta.note
                data = np.stack([r.fields[n] for r in records])  # (nt, [nl,] ncol)
                if g.layout == "grid":
                    full = np.full((nt,) + data.shape[1:-1] + hshape, fill, dtype=w.dtype)
                    full[..., g.iy, g.ix] = data
                    v[:] = full
                else:
                    v[:] = data.astype(w.dtype)
            # ---- global attributes (no wall-clock times: files from equal runs are byte-identical)
            nc.setncatts({
                "Conventions": "CF-1.8",
                "title": f"colmda history output, experiment {w.experiment}",
                "source": f"colmda {__version__}: CoLM-style column core, Python driver",
                "experiment": w.experiment,
                "output_frequency": w.frequency,
                "averaging": w.averaging,
                "layout": g.layout,
                "comment": "ALMA variable names; fluxes positive in the direction named by long_name / comment; "
                           "see docs/output.md",
                **w.attrs,
            })
        finally:
            nc.close()


# ---------------------------------------------------------------------------------------------------------------
# documentation


def variables_markdown() -> str:
    """The generated part of docs/output.md: one row per variable."""
    rows = ["| name | units | CF standard_name | long_name | from core | groups | note |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for v in VARIABLES.values():
        src = "derived from DS_SOILMOIST, DS_SOILICE" if v.fn else v.source
        dims = " (per layer)" if v.layered else ""
        rows.append(f"| `{v.name}` | {v.units} | {v.standard_name or '-'} | {v.long_name}{dims} | `{src}` | "
                    f"{', '.join(v.groups)} | {v.note or '-'} |")
    groups = ["", "Groups usable in `&output variables`: " + ", ".join(f"`{g}`" for g in VARIABLE_GROUPS)
              + " (`all` = every variable)."]
    return "\n".join(rows + groups) + "\n"


DOC_BEGIN = "<!-- BEGIN GENERATED: colmda.output.variables_markdown() -->"
DOC_END = "<!-- END GENERATED -->"
