"""History output: CF-1.8 netCDF files with ALMA variable names, written atomically by rank 0.

The table :data:`VARIABLES` maps every output variable to the core diagnostic it comes from (``D_*`` /
``DS_*`` rows of :mod:`colmda.layout`), with its units, CF ``standard_name`` (only where CF defines one) and
``long_name``. ``docs/output.md`` is generated from the same table (``tests/test_output.py`` checks it).

Files: per file period (``&output file_period``) ``history/<name>_<period start>.nc`` (interval means and the ALMA
``Del*`` changes, stamped at the interval centre with ``time_bnds``) and, with ``averaging = 'mean'``,
``history/<name>_<period start>_inst.nc`` (ALMA state variables, instantaneous at the interval end), written once
when the period is complete (the last one at the end of the run), through a temporary file in the same directory and
``os.replace``; a killed run never leaves a half-written history file and never rewrites a finished one.

Layouts: ``grid`` (``time, [depth,] lat, lon`` on the lat-lon grid of the selected box, cells without a land column
hold ``_FillValue``) or ``points`` (``time, point, [depth]``, a CF timeSeries discrete sampling geometry with
``lat(point)``, ``lon(point)``, ``column(point)``).
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
    """One output variable. ``source`` is a ``D_*``/``DS_*`` layout name, ``derived`` or ``derived_soil`` (then
    ``fn`` computes it from an :class:`Inputs` bundle).

    ``cell`` is how the value relates to its output interval (ALMA's averaging column): ``mean`` (time mean over
    the interval), ``end`` (instantaneous value at the end of the interval: ALMA state variables) or ``sum``
    (change accumulated over the interval: ALMA ``Del*`` terms). ``alma``: the name and definition are ALMA's
    (``False``: a colmda extra, see docs/output.md)."""

    name: str
    source: str
    units: str
    long_name: str
    standard_name: str = ""
    groups: tuple = ("default",)
    fn: Callable | None = None
    note: str = ""
    cell: str = "mean"
    alma: bool = True

    @property
    def layered(self) -> bool:
        return self.source.startswith("DS_") or self.source == "derived_soil"


@dataclass
class Inputs:
    """What one output record is computed from (all arrays of the same columns, last axis = column).

    ``d``/``ds``: interval-mean diagnostics (ND, ncol) / (NDS, nl, ncol) (instantaneous values for instantaneous
    output); ``end_d``/``end_ds``: the same rows at the end of the interval (only the state rows are used);
    ``swdown``: downward shortwave (W m-2) over the interval, mean (or instantaneous, as ``d``); ``dels``: storage
    changes over the interval (kg m-2), rows :data:`STORES`; ``dz``: soil layer thicknesses (m)."""

    d: np.ndarray
    ds: np.ndarray
    dz: np.ndarray
    end_d: np.ndarray | None = None
    end_ds: np.ndarray | None = None
    swdown: np.ndarray | None = None
    dels: np.ndarray | None = None


#: storages whose change over an output interval is written as ALMA ``Del*`` terms (rows of ``Inputs.dels``)
STORES = ("soil", "swe", "surface", "intercept", "aquifer")
#: downward shortwave below which the albedo of an interval is undefined (night): written as _FillValue
ALBEDO_MIN_SWDOWN = 1.0e-3  # W m-2


def storages(d: np.ndarray, ds: np.ndarray) -> np.ndarray:
    """(len(STORES), ncol) water storages (kg m-2) from state rows of diagnostics at one instant."""
    soil = ds[L.DS_SOILMOIST][0].copy()
    for j in range(1, ds.shape[1]):  # sequential layer sum: a column's value never depends on other columns
        soil += ds[L.DS_SOILMOIST][j]
    return np.stack([soil, d[L.D_SWE], d[L.D_POND], d[L.D_CANOPINT], d[L.D_WA]])


def _pick(x: Inputs, cell: str):
    return (x.end_d, x.end_ds) if cell == "end" and x.end_d is not None else (x.d, x.ds)


def _soil_moist_v(x: Inputs, cell: str):
    """Volume fraction of condensed water: liquid / rho_liq + ice / rho_ice over the layer thickness."""
    _, ds = _pick(x, cell)
    total = ds[L.DS_SOILMOIST]
    ice = ds[L.DS_SOILICE]
    return ((total - ice) / RHO_LIQ + ice / RHO_ICE) / x.dz[:, None]


def _frac(frozen: bool):
    def f(x: Inputs, cell: str):
        _, ds = _pick(x, cell)
        total = ds[L.DS_SOILMOIST]
        part = ds[L.DS_SOILICE] if frozen else total - ds[L.DS_SOILICE]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0.0, part / np.where(total > 0.0, total, 1.0), np.nan)
    f.__doc__ = f"mass fraction of the soil water that is {'frozen' if frozen else 'liquid'}"
    return f


def _albedo(x: Inputs, cell: str):
    """Radiation-weighted albedo of the interval: 1 - mean(SWnet) / mean(SWdown) = sum(albedo SWdown) / sum(
    SWdown); undefined (NaN -> _FillValue) without sunlight. Instantaneous output: the step's albedo in daylight."""
    sw = x.swdown
    if sw is None:  # no forcing information: the core's value as it is
        return x.d[L.D_ALBEDO]
    day = sw > ALBEDO_MIN_SWDOWN
    with np.errstate(invalid="ignore", divide="ignore"):
        alb = 1.0 - x.d[L.D_SWNET] / np.where(day, sw, 1.0)
    return np.where(day, alb, np.nan)


def _swdown(x: Inputs, cell: str):
    return np.full(x.d.shape[-1], np.nan) if x.swdown is None else x.swdown


def _delta(row: int):
    def f(x: Inputs, cell: str):
        return np.full(x.d.shape[-1], np.nan) if x.dels is None else x.dels[row]
    return f


_E = ("default", "energy")
_W = ("default", "water")
_S = ("default", "snow")
_SOIL = ("default", "soil")
_BAL = ("balance",)
_DEL = ("water", "balance")

VARIABLES: dict[str, OutVar] = {v.name: v for v in (
    # energy balance
    OutVar("SWnet", "D_SWNET", "W m-2", "net shortwave radiation", "surface_net_downward_shortwave_flux", _E),
    OutVar("LWnet", "D_LWNET", "W m-2", "net longwave radiation", "surface_net_downward_longwave_flux", _E),
    OutVar("Qle", "D_QLE", "W m-2", "latent heat flux", "surface_upward_latent_heat_flux", _E),
    OutVar("Qh", "D_QH", "W m-2", "sensible heat flux", "surface_upward_sensible_heat_flux", _E),
    OutVar("Qg", "D_QG", "W m-2", "ground heat flux into snow/soil",
           "downward_heat_flux_at_ground_level_in_soil", _E, note="positive downward"),
    OutVar("SWdown", "derived", "W m-2", "downward shortwave radiation (forcing)",
           "surface_downwelling_shortwave_flux_in_air", ("energy",), fn=_swdown,
           note="the forcing as given to the core (after perturbation); the weight of the Albedo mean"),
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
    # storage changes (ALMA Del* terms; with the fluxes they close the water budget of the interval)
    OutVar("DelSoilMoist", "derived", "kg m-2", "change in soil moisture (all layers, liquid + ice)", "", _DEL,
           fn=_delta(0), cell="sum", note="over the output interval, without analysis increments"),
    OutVar("DelSWE", "derived", "kg m-2", "change in snow water equivalent", "", _DEL, fn=_delta(1), cell="sum",
           note="over the output interval, without analysis increments"),
    OutVar("DelSurfStor", "derived", "kg m-2", "change in surface water storage (ponding)", "", _DEL,
           fn=_delta(2), cell="sum", note="over the output interval"),
    OutVar("DelIntercept", "derived", "kg m-2", "change in interception storage", "", _DEL, fn=_delta(3),
           cell="sum", note="over the output interval"),
    OutVar("DelGroundwStor", "derived", "kg m-2", "change in aquifer water storage", "", _DEL, fn=_delta(4),
           cell="sum", alma=False, note="closes the budget with the other Del* terms and the fluxes"),
    # ALMA states: instantaneous values at the end of the interval
    OutVar("SoilMoist", "DS_SOILMOIST", "kg m-2", "average layer soil moisture (liquid + ice)",
           "mass_content_of_water_in_soil_layer", _SOIL, cell="end"),
    OutVar("SMLiqFrac", "derived_soil", "1", "average layer fraction of liquid moisture", "", _SOIL,
           fn=_frac(False), cell="end", note="liquid mass / SoilMoist; fill where the layer holds no water"),
    OutVar("SMFrozFrac", "derived_soil", "1", "average layer fraction of frozen moisture", "", _SOIL,
           fn=_frac(True), cell="end", note="ice mass / SoilMoist; fill where the layer holds no water"),
    OutVar("SoilTemp", "DS_SOILTEMP", "K", "average layer soil temperature", "soil_temperature", _SOIL,
           cell="end"),
    OutVar("SWE", "D_SWE", "kg m-2", "snow water equivalent", "surface_snow_amount", _S, cell="end"),
    OutVar("SnowDepth", "D_SNOWDEPTH", "m", "snow depth", "surface_snow_thickness", _S, cell="end"),
    OutVar("CanopInt", "D_CANOPINT", "kg m-2", "total canopy water storage", "canopy_water_amount", _W,
           cell="end"),
    OutVar("SurfStor", "D_POND", "kg m-2", "surface water storage (ponding)", "", ("water",), cell="end"),
    OutVar("WaterTableD", "D_ZWT", "m", "water table depth below the surface", "", _W, cell="end"),
    OutVar("GroundwStor", "D_WA", "kg m-2", "water stored in the unconfined aquifer", "", ("water",),
           cell="end"),
    # colmda extras that are interval means
    OutVar("SoilMoistV", "derived_soil", "m3 m-3", "volumetric soil moisture per layer (liquid + ice)",
           "volume_fraction_of_condensed_water_in_soil", _SOIL, fn=_soil_moist_v, alma=False,
           note="(liquid / 1000 + ice / 917) / layer thickness; interval mean (the quantity evaluated)"),
    OutVar("SoilIce", "DS_SOILICE", "kg m-2", "frozen soil water per layer", "", ("soil",), alma=False,
           note="interval mean; the ALMA form is SMFrozFrac"),
    OutVar("TWS", "D_TWS", "kg m-2", "total column water storage", "", _W, alma=False,
           note="soil + snow + canopy + ponded + aquifer water; interval mean"),
    # surface states that ALMA averages
    OutVar("SnowFrac", "D_SNOWFRAC", "1", "snow covered fraction", "surface_snow_area_fraction", _S),
    OutVar("AvgSurfT", "D_AVGSURFT", "K", "average surface (ground/snow) temperature", "surface_temperature", _E),
    OutVar("RadT", "D_RADT", "K", "surface radiative temperature", "", _E),
    OutVar("VegT", "D_VEGT", "K", "vegetation canopy temperature", "canopy_temperature", ("energy",)),
    OutVar("Albedo", "derived", "1", "surface albedo", "surface_albedo", _E, fn=_albedo,
           note="weighted by SWdown over the interval; _FillValue without sunlight"),
    OutVar("GPP", "D_GPP", "kg m-2 s-1", "gross primary production (mass of carbon)",
           "gross_primary_productivity_of_biomass_expressed_as_carbon", ("default", "carbon")),
    OutVar("BTran", "D_BTRAN", "1", "soil water stress factor for transpiration", "", ("water",), alma=False),
    OutVar("HeatC", "D_HEATC", "J m-2", "snow + soil heat content relative to ice at 0 C", "", _BAL, alma=False),
    # balance residuals (round-off if the core is right)
    OutVar("WaterBalErr", "D_WBAL_ERR", "kg m-2 s-1", "water balance residual: storage change minus net input",
           "", _BAL, alma=False),
    OutVar("EnergyBalErr", "D_EBAL_ERR", "W m-2", "surface energy balance residual", "", _BAL, alma=False),
    OutVar("SoilHeatErr", "D_SOILH_ERR", "W m-2", "snow/soil heat balance residual", "", _BAL, alma=False),
    OutVar("LeafEnergyRes", "D_LEAF_RES", "W m-2", "leaf energy balance residual at convergence", "", _BAL,
           alma=False),
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


def compute(name: str, x: Inputs, instant: bool = False) -> np.ndarray:
    """One output variable for one record: (ncol,) or (nl, ncol). ``instant``: every value is taken as it is at
    the end of the interval (``&output averaging = 'instant'``)."""
    v = VARIABLES[name]
    cell = "end" if (v.cell == "end" and not instant) else "mean"
    if v.fn is not None:
        return v.fn(x, cell)
    d, ds = _pick(x, cell)
    if v.source.startswith("DS_"):
        return ds[getattr(L, v.source)]
    return d[getattr(L, v.source)]


def state_diagnostics(state) -> tuple[np.ndarray, np.ndarray]:
    """Diagnostic arrays (ND, ncol), (NDS, nl, ncol) whose state rows hold ``state`` (a ColumnState) as it is now
    (the same values the core writes into those rows at the end of a step); the other rows are NaN."""
    n = state.ncol
    d = np.full((L.ND, n), np.nan)
    ds = np.full((L.NDS, L.NL_SOIL, n), np.nan)
    c = state.cstate
    for row, cs in ((L.D_SWE, L.CS_SCV), (L.D_SNOWDEPTH, L.CS_SNOWDP), (L.D_CANOPINT, L.CS_LDEW),
                    (L.D_ZWT, L.CS_ZWT), (L.D_WA, L.CS_WA), (L.D_POND, L.CS_WDSRF)):
        d[row] = c[cs]
    ds[L.DS_SOILMOIST] = state.soil_liquid() + state.soil_ice()
    ds[L.DS_SOILICE] = state.soil_ice()
    ds[L.DS_SOILTEMP] = state.soil_temperature()
    return d, ds


def cell_of(name: str, averaging: str) -> str:
    """'mean', 'end' (instantaneous) or 'sum' for a variable in a run with ``averaging`` ('mean'/'instant')."""
    c = VARIABLES[name].cell
    if averaging == "instant" and c == "mean":
        return "end"
    return c


def needs_end_state(names) -> bool:
    """Whether any of ``names`` needs values at interval ends (states or storage changes)."""
    return any(VARIABLES[n].cell in ("end", "sum") for n in names)


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

    time: _dt.datetime  # end of the interval (the file stamps means at the interval centre)
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
        self._background: BackgroundWriter | None = None

    def description(self) -> "HistoryWriter":
        """A copy without records or process handle: what the writer process needs to write a file."""
        import copy

        d = copy.copy(self)
        d.pending, d.written, d._background = [], [], None
        return d

    def start_background(self) -> bool:
        """Write finished files in a child process from now on (:class:`BackgroundWriter`), unless the environment
        variable ``COLMDA_HISTORY_WRITER`` is ``inline``. Returns whether it did."""
        if self._background is None and os.environ.get(WRITER_ENV, "process").strip().lower() != "inline":
            self._background = BackgroundWriter()
        return self._background is not None

    def wait(self) -> None:
        """Return when every file handed to the writer process is on disk (raise if one failed)."""
        if self._background is not None:
            self._background.wait()

    # ---- records
    def add(self, time, begin, x: "Inputs | np.ndarray", ds: np.ndarray | None = None) -> None:
        """Add the output interval ``[begin, time]`` from an :class:`Inputs` bundle of global arrays (or, for
        simple callers, interval diagnostics ``d`` (ND, ncol) and ``ds`` (NDS, nl, ncol) only)."""
        if not isinstance(x, Inputs):
            x = Inputs(np.asarray(x), np.asarray(ds), self.dz)
        instant = self.averaging == "instant"
        # kept in the file's precision: the records of an open file period are held in memory (and in restarts)
        fields = {n: np.array(compute(n, x, instant), dtype=self.dtype) for n in self.variables}
        self.pending.append(Record(time, begin, fields))

    def streams(self) -> list[tuple[str, list[str]]]:
        """(file name suffix, variables) of the files of one period: interval means and sums in the main file,
        instantaneous end-of-interval states in ``*_inst.nc`` (mean averaging only; see docs/output.md)."""
        if self.averaging == "instant":
            return [("", list(self.variables))]
        main = [n for n in self.variables if VARIABLES[n].cell != "end"]
        inst = [n for n in self.variables if VARIABLES[n].cell == "end"]
        return [(sfx, names) for sfx, names in (("", main), ("_inst", inst)) if names]

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
            files = [(self.directory / f"{self.experiment}_{file_stamp(pstart, self.period)}{sfx}.nc", names,
                      sfx == "_inst" or self.averaging == "instant") for sfx, names in self.streams()]
            if self._background is not None:
                self._background.submit(files, recs, self.description())
            else:
                for path, names, inst in files:
                    write_history_file(path, recs, self, names, inst=inst)
            done.extend(f[0] for f in files)
        self.written.extend(done)
        if final and self._background is not None:
            self._background.close()
            self._background = None
        return done

    # ---- restart support: pending records as plain arrays
    def pending_arrays(self) -> dict:
        """The records of the open file period as arrays (for a restart file). Waits until every finished file is
        on disk first: a restart never records as written a file that a killed run did not finish."""
        self.wait()
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


#: environment variable: ``inline`` writes history files in the run's own process (default: a writer process)
WRITER_ENV = "COLMDA_HISTORY_WRITER"


class BackgroundWriter:
    """A child process that writes history files (:func:`write_history_file`) in the order they are submitted.

    The run hands over a finished file period's records and goes on with the next window; pickling and sending
    happen in a sender thread, compression and the file system in the child (a new Python interpreter running
    :func:`_writer_main`), on another core when there is one.
    The child writes exactly what the run's own process would (same function, same records), through the same
    temporary file and atomic rename. A child process rather than a thread: the HDF5 library under netCDF4 is not
    thread-safe, and the run reads and writes other netCDF files (restarts, observations, diagnostics) meanwhile.

    :meth:`wait` returns when every submitted file is written and raises if one failed; it is called before a
    restart is written (:meth:`HistoryWriter.pending_arrays`), at the final flush and at exit. If the run's process
    dies, the child finishes the files it has received and stops.
    """

    def __init__(self):
        import atexit
        import queue
        import subprocess
        import sys
        import threading
        from multiprocessing.connection import Connection

        # a fresh interpreter, not a fork: forking an MPI process (registered network memory) or one with threads is
        # unsafe, and multiprocessing's spawn would re-run the command's __main__
        self.proc = subprocess.Popen([sys.executable, "-c", "from colmda.output import _writer_main; _writer_main()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self.conn = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self.answers = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.outstanding: list[Path] = []  # submitted, not yet acknowledged
        self._queue = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="colmda-history-sender", daemon=True)
        self._sender.start()
        atexit.register(self._at_exit)

    def _send_loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self.conn.send(job)
            except (OSError, ValueError):  # the child is gone: wait() reports it
                return
            if job is None:
                return

    def submit(self, files, records, writer) -> None:
        """Write ``records`` to each of ``files`` = [(path, variable names, inst), ...] (one period's files)."""
        self._drain(block=False)
        self.outstanding.extend(Path(f[0]) for f in files)
        self._queue.put(([(str(p), list(n), bool(i)) for p, n, i in files], records, writer))

    def _drain(self, block: bool) -> None:
        while self.outstanding and (block or self.answers.poll()):
            try:
                path, err = self.answers.recv()
            except (EOFError, OSError):
                missing, self.outstanding = self.outstanding, []
                raise RuntimeError(f"the history writer process (pid {self.proc.pid}) ended before writing "
                                   f"{missing[0]}") from None
            self.outstanding.pop(0)
            if err:
                raise RuntimeError(f"writing history file {path} failed in the writer process: {err}")

    def wait(self) -> None:
        self._drain(block=True)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._queue.put(None)
            self._sender.join(timeout=60)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=60)
            self.conn.close()
            self.answers.close()

    def _at_exit(self) -> None:  # a run that stops on an error still finishes the files it handed over
        if not self.conn.closed:
            with contextlib.suppress(Exception):
                self.close()


def _writer_main() -> None:
    """Entry point of the writer process: jobs on standard input, answers on standard output."""
    from multiprocessing.connection import Connection

    jobs = Connection(os.dup(0), writable=False)
    answers = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # anything printed goes to stderr, not into the answers
    _writer_loop(jobs, answers)


def _writer_loop(jobs, answers) -> None:
    """The writer process: write each submitted file, answer (path, error message or '') for each; stop at None or
    when the run's end of the pipe closes (the run ended or died)."""
    import traceback

    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        files, records, writer = job
        for path, names, inst in files:
            try:
                write_history_file(path, records, writer, names, inst=inst)
                err = ""
            except Exception as exc:  # noqa: BLE001 - reported to the run, which raises it
                err = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
            try:
                answers.send((path, err))
            except (EOFError, OSError):
                return


def global_attributes(title: str, **extra) -> dict:
    """CF global attributes shared by every file colmda writes (no wall-clock time: equal runs give equal bytes).

    ``institution`` comes from the environment variable ``COLMDA_INSTITUTION`` (default: not set)."""
    from . import __version__

    return {
        "Conventions": "CF-1.8",
        "title": title,
        "institution": os.environ.get("COLMDA_INSTITUTION", "not set (environment variable COLMDA_INSTITUTION)"),
        "source": f"colmda {__version__}: CoLM-style column core, Python driver",
        "history": f"written by colmda {__version__}",
        "references": "docs/output.md of colmda",
        **extra,
    }


def put_strings(nc, name: str, dim: str, values, **attrs):
    """A CF character-array string variable ``name(dim, <name>_strlen)`` (fixed length: vlen strings are not CF)."""
    import netCDF4

    vals = [str(v) for v in values]
    n = max([1] + [len(v.encode("utf-8")) for v in vals])
    sdim = f"{name}_strlen"
    nc.createDimension(sdim, n)
    v = nc.createVariable(name, "S1", (dim, sdim))
    v.setncatts(attrs)
    if vals:
        v[:] = netCDF4.stringtochar(np.array([x.encode("utf-8") for x in vals], dtype=f"S{n}"))
    return v


def write_history_file(path, records: list[Record], w: HistoryWriter, variables=None, inst: bool = False) -> None:
    """Write ``records`` (the variables ``variables``, default all of the writer's) to ``path`` atomically.

    ``inst``: instantaneous file, time stamped at the end of each interval; otherwise the time of a record is the
    centre of its interval, with ``time_bnds`` (so that ``cdo daymean`` and ``xarray resample`` see each record in
    the day it covers)."""
    import netCDF4

    variables = list(w.variables if variables is None else variables)
    g = w.grid
    nt = len(records)
    nl = len(w.dz)
    fill = w.dtype.type(FILL_VALUE)
    bounds = not inst or any(cell_of(n, w.averaging) == "sum" for n in variables)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            nc.createDimension("time", None)  # unlimited: NCO ncrcat / ncra concatenate along it
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
            t.long_name = "end of the output interval" if inst else "centre of the output interval"
            t.units = TIME_UNITS
            t.calendar = "proleptic_gregorian"
            t.axis = "T"
            ends = np.array([to_seconds(r.time) for r in records], dtype=float)
            begins = np.array([to_seconds(r.begin) for r in records], dtype=float)
            t[:] = ends if inst else 0.5 * (begins + ends)
            if bounds:
                t.bounds = "time_bnds"
                tb = nc.createVariable("time_bnds", "f8", ("time", "nv"))
                tb[:] = np.stack([begins, ends], axis=1) if nt else np.zeros((0, 2))
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
            extra = {}
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
                col = nc.createVariable("column", "i4", hdims, fill_value=np.int32(-1))
                col.long_name = "global column index of the domain (flat row-major (lat, lon) index)"
                col.units = "1"
                cmap = np.full(hshape, -1, dtype=np.int32)
                cmap[g.iy, g.ix] = g.column
                col[:] = cmap
                coords = None
            else:  # CF discrete sampling geometry: one time series per point (orthogonal multidimensional)
                extra["featureType"] = "timeSeries"
                for name, vals, units, std in (("lat", g.point_lat, "degrees_north", "latitude"),
                                               ("lon", g.point_lon, "degrees_east", "longitude")):
                    v = nc.createVariable(name, "f8", ("point",))
                    v.standard_name = std
                    v.long_name = std
                    v.units = units
                    v[:] = vals
                col = nc.createVariable("column", "i4", ("point",))
                col.long_name = "global column index of the domain (flat row-major (lat, lon) index)"
                col.units = "1"
                col[:] = np.asarray(g.column, dtype=np.int32)
                if g.names:
                    put_strings(nc, "point_name", "point", g.names, long_name="point (site) name",
                                cf_role="timeseries_id")
                    coords = "lat lon point_name"
                else:
                    col.cf_role = "timeseries_id"
                    coords = "lat lon column"
            # ---- data
            for n in variables:
                meta = VARIABLES[n]
                cell = cell_of(n, w.averaging)
                if g.layout == "grid":  # CF order T, Z, Y, X
                    dims = ("time",) + (("depth",) if meta.layered else ()) + hdims
                    inner = ((nl,) if meta.layered else ()) + hshape
                else:  # time series of profiles: (time, point, depth), the record dimension first for NCO
                    dims = ("time",) + hdims + (("depth",) if meta.layered else ())
                    inner = hshape + ((nl,) if meta.layered else ())
                # about 64k values per chunk: one time per chunk for global fields, many for a few points
                ntc = int(max(1, min(max(nt, 1), 65536 // int(np.prod(inner)))))
                chunks = (ntc,) + inner
                v = nc.createVariable(n, w.dtype, dims, zlib=w.complevel > 0, complevel=max(w.complevel, 1),
                                      shuffle=w.complevel > 0, fill_value=fill, chunksizes=chunks)
                if meta.standard_name:
                    v.standard_name = meta.standard_name
                v.long_name = meta.long_name
                v.units = meta.units
                if cell == "mean":
                    v.cell_methods = "time: mean"
                elif cell == "sum":
                    v.cell_methods = "time: sum"
                else:
                    v.cell_methods = "time: point"
                if n == "Albedo" and cell == "mean":
                    v.cell_methods = "time: mean (weighted by SWdown; _FillValue without sunlight)"
                if coords:
                    v.coordinates = coords
                if meta.note:
                    v.comment = meta.note
                if nt == 0:
                    continue
                data = np.stack([r.fields[n] for r in records])  # (nt, [nl,] ncol)
                data = np.where(np.isfinite(data), data, fill).astype(w.dtype)
                if g.layout == "grid":
                    full = np.full((nt,) + data.shape[1:-1] + hshape, fill, dtype=w.dtype)
                    full[..., g.iy, g.ix] = data
                    v[:] = full
                else:
                    v[:] = np.swapaxes(data, 1, 2) if meta.layered else data
            nc.setncatts(global_attributes(
                f"colmda history output, experiment {w.experiment}" + (" (instantaneous states)" if inst
                                                                        and w.averaging == "mean" else ""),
                experiment=w.experiment, output_frequency=w.frequency, averaging=w.averaging, layout=g.layout,
                comment="ALMA variable names; fluxes positive in the direction named by long_name / comment; "
                        "see docs/output.md", **extra, **w.attrs))
        finally:
            nc.close()


# ---------------------------------------------------------------------------------------------------------------
# documentation


_CELL_DOC = {"mean": "mean", "end": "end (instant.)", "sum": "change over interval"}


def variables_markdown() -> str:
    """The generated part of docs/output.md: one row per variable."""
    rows = ["| name | units | CF standard_name | long_name | from core | time | ALMA | groups | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in VARIABLES.values():
        if v.fn is None:
            src = v.source
        elif v.name.startswith("Del"):
            src = "state at interval ends"
        elif v.name in ("Albedo", "SWdown"):
            src = "D_SWNET, forcing SWdown" if v.name == "Albedo" else "forcing"
        else:
            src = "DS_SOILMOIST, DS_SOILICE"
        dims = " (per layer)" if v.layered else ""
        rows.append(f"| `{v.name}` | {v.units} | {v.standard_name or '-'} | {v.long_name}{dims} | `{src}` | "
                    f"{_CELL_DOC[v.cell]} | {'yes' if v.alma else 'extra'} | {', '.join(v.groups)} | "
                    f"{v.note or '-'} |")
    groups = ["", "Groups usable in `&output variables`: " + ", ".join(f"`{g}`" for g in VARIABLE_GROUPS)
              + " (`all` = every variable)."]
    return "\n".join(rows + groups) + "\n"


DOC_BEGIN = "<!-- BEGIN GENERATED: colmda.output.variables_markdown() -->"
DOC_END = "<!-- END GENERATED -->"
