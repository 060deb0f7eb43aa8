"""Experiment settings: a Fortran namelist parsed once into typed, validated dataclasses.

The table :data:`KEYS` is the single source of truth: every key with its group, type, default, unit, meaning and
allowed range. The parser (:func:`load`), the ``colmda namelist`` listing and ``docs/namelist.md`` are all generated
from it (``tests/test_config.py`` checks that the document agrees with the table).

Any mistake stops the run before work starts with a :class:`~colmda.errors.UserError` naming the file, the group and
key, the value, what was expected and, for an unknown key, the closest valid one.

Keys marked *reserved* belong to later issues (observations, assimilation): they are accepted only with their
default value so that nobody believes they already do something.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import glob
import json
import math
import os
import re
from dataclasses import field
from pathlib import Path
from typing import Any

from . import ensemble, matrix_keys
from .assim import base as methods
from .assim.rules import check_rule
from .errors import UserError, suggestion
from .keys import Key, check_box
from .keys import namelist_literal as _nml_literal
from .keys import where as _where
from .timeutil import duration_seconds, format_date, parse_date, parse_period  # noqa: F401 (re-exported)

# ---------------------------------------------------------------------------------------------------------------
# the table


def _check_method(v: str):
    names = methods.names()
    return None if v in names else f"one of {', '.join(repr(n) for n in names)} (the registered methods)"


def _check_name(v: str):
    if len(v) > 100:  # file names are '<name>_<seq>_<label>.nc': keep them well below the 255-byte limit
        return f"at most 100 characters (got {len(v)})"
    return None if re.match(r"^[A-Za-z0-9_.-]+$", v) else "letters, digits, '_', '.', '-' only"


def _check_lats(v: list):
    return None if all(-90 <= x <= 90 for x in v) else "latitudes in [-90, 90] degrees_north"


def _check_lons(v: list):
    return None if all(-180 <= x <= 360 for x in v) else "longitudes in [-180, 360] degrees_east"


def _check_variables(v: list):
    from .output import VARIABLE_GROUPS, VARIABLES

    valid = set(VARIABLES) | set(VARIABLE_GROUPS)
    for name in v:
        if name not in valid:
            return f"output variable names or groups ({', '.join(VARIABLE_GROUPS)}); unknown '{name}'" + \
                suggestion(name, sorted(valid))
    return None


def _check_pft(v: list):
    bad = [x for x in v if x != int(x) or not 0 <= x <= 15]
    return f"expected integer PFT indices in [0, 15], got {bad}" if bad else None


def _check_fractions(v: list):
    bad = [x for x in v if not 0.0 <= x <= 1.0]
    return f"expected fractions in [0, 1], got {bad}" if bad else None


def _check_frequency(v: str):
    if v in ("step", "window"):
        return None
    try:
        duration_seconds(v)
    except ValueError:
        return "'step', 'window' or a duration such as '30min', '3h', '1d'"
    return None


E, D, F, M, O, A, OUT, P = ("experiment", "domain", "forcing", "model", "observations", "assimilation", "output",
                            "parallel")

KEYS: tuple[Key, ...] = (
    # ---- &experiment
    Key(E, "name", "str", "control", "-", "experiment name, used in output file names", check=_check_name,
        allowed="letters, digits, _ . -"),
    Key(E, "start", "date", "2005-06-01", "UTC", "start of the experiment window (after spin-up)"),
    Key(E, "end", "date", "2005-06-22", "UTC", "end of the experiment window (exclusive); end - start must be a "
        "whole number of forecast windows"),
    Key(E, "dt", "float", 1800.0, "s", "model time step; must divide the forecast window and the output "
        "frequency", lo=60.0, hi=10800.0),
    Key(E, "spinup_max_cycles", "int", 0, "-", "maximum number of spin-up cycles; 0 = no spin-up", lo=0, hi=1000),
    Key(E, "spinup_start", "date", "", "UTC", "start of the spin-up period that is cycled; '' = experiment start",
        allowed="'' or YYYY-MM-DD[THH:MM]"),
    Key(E, "spinup_end", "date", "", "UTC", "end of the spin-up period (exclusive); '' = spinup_start + 1 year",
        allowed="'' or YYYY-MM-DD[THH:MM]"),
    Key(E, "spinup_tolerance", "float", 1.0e-3, "m3 m-3", "spin-up stops when the largest change of volumetric "
        "soil moisture (any column, any layer) between the ends of two cycles is below this", lo=0.0,
        lo_open=True, hi=1.0),
    Key(E, "seed", "int", 1, "-", "master seed of every random stream of the run other than the weather "
        "(perturbations, observation errors); streams are keyed by (seed, stream, global column, member, time)",
        lo=0, hi=2**32 - 1),
    Key(E, "init_saturation", "float", 0.6, "-", "cold start: soil liquid water as a fraction of porosity",
        lo=0.0, lo_open=True, hi=1.0),
    Key(E, "init_soil_temperature", "float", 0.0, "K", "cold start: uniform soil temperature; 0 = the column's "
        "annual-mean air temperature from the domain climatology (283.15 K where unavailable)",
        allowed="0 or [200, 330]", check=lambda v: None if v == 0 or 200 <= v <= 330 else "0 or [200, 330] K"),
    Key(E, "initial_restart", "path", "", "-", "start from the state in this restart file (columns matched by "
        "global column index) instead of a cold start; spin-up is still done if spinup_max_cycles > 0"),
    # ---- &domain
    Key(D, "file", "path", "", "-", "domain file (netCDF, format in docs/domain.md); '' = the embedded default "
        "global domain"),
    Key(D, "box", "float_list", [], "degrees", "lat-lon box to run: south, north, west, east; empty = whole "
        "domain; west > east wraps around in longitude (170, -170 crosses the date line)", lengths=(0, 4),
        check=lambda v: check_box(v) if v else None,
        allowed="empty or 4 values"),
    Key(D, "point_lat", "float_list", [], "degrees_north", "latitudes of single points to run (nearest land "
        "column of the domain); same length as point_lon", check=_check_lats, allowed="[-90, 90] each"),
    Key(D, "point_lon", "float_list", [], "degrees_east", "longitudes of the points", check=_check_lons,
        allowed="[-180, 360] each"),
    Key(D, "nearest_land", "bool", False, "-", "a point in a cell that is not land: run the nearest land column "
        "(the output and the manifest name the column actually run) instead of stopping with an error"),
    Key(D, "point_name", "str_list", [], "-", "labels of the points (site names), written to the output; empty or "
        "same length as point_lat", allowed="texts"),
    Key(D, "point_pft", "float_list", [], "-", "site override of the PFT index (colmda.pft order) of each point; "
        "empty = the domain's", check=_check_pft, allowed="empty or one integer in [0, 15] per point"),
    Key(D, "point_sand", "float_list", [], "1", "site override of the sand fraction of each point; empty = the "
        "domain's", check=_check_fractions, allowed="empty or one value in [0, 1] per point"),
    Key(D, "point_clay", "float_list", [], "1", "site override of the clay fraction of each point; empty = the "
        "domain's", check=_check_fractions, allowed="empty or one value in [0, 1] per point"),
    # ---- &forcing
    Key(F, "source", "str", "generator", "-", "'generator': the weather generator on the domain climatology; "
        "'plumber2': a PLUMBER2 site file (one point); 'era5': ERA5 hourly single-level netCDF files of the CDS "
        "(docs/forcing.md), interpolated to every run column", choices=("generator", "plumber2", "era5")),
    Key(F, "file", "path", "", "-", "forcing file for a reader source (required unless source = 'generator'); for "
        "'era5' a file, a directory of *.nc files or a glob pattern"),
    Key(F, "era5_interpolation", "str", "bilinear", "-", "'era5': ERA5 grid to run column: 'bilinear' (valid "
        "neighbours only) or 'nearest'", choices=("bilinear", "nearest")),
    Key(F, "lai_from_file", "bool", False, "-", "for a reader source: replace the domain's monthly LAI climatology "
        "by the monthly means of the file's LAI (PLUMBER2 'LAI')"),
    Key(F, "extrapolate_hours", "float", 0.0, "h", "a forcing file may end this much before the start or after the "
        "end of the periods to run; the first / last record is repeated there (e.g. 1 h to run a calendar year in "
        "UTC from a file in local time)", lo=0.0, hi=744.0),
    Key(F, "seed", "int", 1, "-", "weather realisation of the generator (different seeds: different weather, same "
        "climate)", lo=0, hi=2**32 - 1),
    Key(F, "perturb", "bool", False, "-", "perturb the forcing of every member (precipitation and shortwave "
        "multiplicative lognormal with mean 1, longwave and air temperature additive, cross-correlated, AR(1) in "
        "time; colmda.forcing.perturb), keyed by (&experiment seed, global column, member, time)"),
    Key(F, "precip_scale", "float", 1.0, "-", "systematic factor on the precipitation of every column (a forcing "
        "bias, e.g. for the model run of a twin experiment)", lo=0.0, hi=10.0),
    Key(F, "perturb_std_prec", "float", 0.5, "-", "standard deviation of the precipitation factor", lo=0.0,
        hi=5.0),
    Key(F, "perturb_std_swdown", "float", 0.3, "-", "standard deviation of the shortwave factor", lo=0.0, hi=5.0),
    Key(F, "perturb_std_lwdown", "float", 20.0, "W m-2", "standard deviation of the longwave offset", lo=0.0,
        hi=200.0),
    Key(F, "perturb_std_tair", "float", 1.0, "K", "standard deviation of the air temperature offset", lo=0.0,
        hi=20.0),
    Key(F, "perturb_tau_hours", "float", 24.0, "h", "AR(1) correlation time of the perturbations", lo=0.0,
        lo_open=True, hi=8760.0),
    Key(F, "perturb_spatial_km", "float", 0.0, "km", "e-folding distance of spatially correlated perturbations "
        "(0 = independent columns)", lo=0.0, hi=5000.0),
    # ---- &model
    Key(M, "hydr_model", "str", "vangenuchten", "-", "soil hydraulic functions: 'campbell' (Clapp-Hornberger), "
        "'vangenuchten_airentry' (= 'vangenuchten': vG-Mualem with air-entry potential psi_e, CoLM202X) or "
        "'vangenuchten_classic' (psi_e = 0)", choices=("vangenuchten", "vangenuchten_airentry",
                                                          "vangenuchten_classic", "campbell")),
    Key(M, "psi_e", "float", -1.0, "mm", "air-entry potential of 'vangenuchten_airentry'", allowed="[-1e4, 0)",
        check=lambda v: None if -1.0e4 <= v < 0 else "[-1e4, 0) mm"),
    Key(M, "zref", "float", 0.0, "m", "height of the forcing above the ground; 0 = the forcing source's height "
        "when it defines one, else max(30 m, canopy top + 10 m)", allowed="0 or [2, 200]",
        check=lambda v: None if v == 0 or 2 <= v <= 200 else "0 or [2, 200] m"),
    Key(M, "co2_ppm", "float", 0.0, "ppm", "atmospheric CO2 for photosynthesis; 0 = the core's constant",
        reserved=True, lo=0.0, hi=5000.0),
    # ---- &observations
    Key(O, "directory", "path", "", "-", "directory holding one observation file per sensor, '<sensor>.nc' in the "
        "colmda observation format (docs/observations.md); required when &assimilation method is not 'none'"),
    Key(O, "sensors", "str_list", [], "-", "sensors to assimilate (file names without .nc, e.g. 'L', 'C', 'X')",
        check=lambda v: None if all(re.match(r"^[A-Za-z0-9_-]+$", x) for x in v) and len(set(v)) == len(v)
        else "distinct names of letters, digits, '_', '-'"),
    Key(O, "error", "float_list", [], "m3 m-3", "observation error standard deviation of each sensor in "
        "'sensors' (same order; in the sensor's units: K for brightness-temperature sensors); empty = the error "
        "each file reports per retrieval",
        check=lambda v: None if all(x > 0 for x in v) else "positive values"),
    Key(O, "error_scale", "float", 1.0, "-", "multiplier of every observation error standard deviation",
        lo=0.0, lo_open=True),
    Key(O, "reject_flags", "int", 11, "-", "retrievals with any of these quality bits are rejected (1 frozen, "
        "2 snow, 4 dense vegetation, 8 out of range; see docs/observations.md)", lo=0, hi=2 ** 30),
    Key(O, "products", "str_list", [], "-", "real data: the reader of each sensor in 'sensors' (same order; names in "
        "colmda.obs.readers.PRODUCTS, e.g. 'ascat_hsaf_cell'); empty = colmda observation files in 'directory'"),
    Key(O, "product_files", "str_list", [], "-", "real data: the product file or directory of each sensor (same "
        "order as 'sensors')", paths=True),
    Key(O, "bias_correction", "str", "auto", "-", "rescaling of the retrievals to the model climatology per sensor "
        "and column (colmda.obs.bias): 'cdf' matching, 'seasonal' monthly mean/std, 'none'; 'auto' = 'cdf' for "
        "product files, 'none' for colmda observation files (twins)", choices=("auto", "none", "cdf", "seasonal")),
    Key(O, "bias_file", "path", "", "-", "bias parameters: read when the file exists, else fitted and written here"),
    Key(O, "bias_reference_run", "path", "", "-", "open-loop run directory (history with SoilMoistV) that the "
        "parameters are fitted against when bias_file does not exist yet"),
    Key(O, "bias_train_start", "date", "", "UTC", "start of the training period; '' = all of the reference run"),
    Key(O, "bias_train_end", "date", "", "UTC", "end of the training period (exclusive); '' = all"),
    Key(O, "simulate", "str_list", [], "-", "twin experiments: sensors ('L', 'C', 'X'; 'TB' = SMAP-like H and V "
        "brightness temperatures, obs/TbH.nc and obs/TbV.nc) to simulate from this run (the truth) into <run "
        "directory>/obs/<sensor>.nc", check=lambda v: None if set(v) <= {"L", "C", "X", "TB"}
        and len(set(v)) == len(v) else "distinct names from 'L', 'C', 'X', 'TB'"),
    Key(O, "sim_error_bare", "float_list", [], "m3 m-3", "simulated sensors L, C, X: random retrieval error std "
        "over bare soil; empty = the documented defaults (docs/observations.md)", lengths=(0, 3)),
    Key(O, "sim_error_slope", "float_list", [], "m3 m-3 per m2 m-2", "simulated sensors L, C, X: change of the "
        "error std per unit LAI (negative: shrinks with vegetation); empty = defaults", lengths=(0, 3)),
    Key(O, "sim_repr_error", "float_list", [], "m3 m-3", "simulated sensors L, C, X: footprint-to-cell "
        "representativeness error std; empty = defaults", lengths=(0, 3)),
    Key(O, "sim_sensing_depth", "float_list", [], "m", "simulated sensors L, C, X: sensing depth (e-folding) of "
        "the retrieval; empty = defaults", lengths=(0, 3)),
    Key(O, "sim_swath_km", "float_list", [], "km", "simulated sensors L, C, X: swath width; empty = defaults",
        lengths=(0, 3)),
    Key(O, "sim_excursion", "float_list", [], "m3 m-3", "simulated sensors L, C, X: amplitude of the slow "
        "spurious excursions in dense canopies; empty = defaults (only X has them)", lengths=(0, 3)),
    Key(O, "tb_roughness", "float", 0.13, "-", "brightness temperatures: the tau-omega operator's constant soil "
        "roughness h (colmda.obs.tau_omega), used by the truth's Tb simulator and by the filters' model "
        "equivalents of the same run (a twin can give the filter runs another value than the truth: an operator "
        "bias)", lo=0.0, hi=3.0),
    Key(O, "tb_reject_flags", "int", 7, "-", "brightness-temperature sensors (quantity tb_h / tb_v): observations "
        "with any of these quality bits are rejected (1 frozen, 2 snow, 4 dense vegetation (VWC above 5 kg m-2, "
        "SMAP's recommended-quality limit), 8 out of range); replaces reject_flags for Tb sensors", lo=0,
        hi=2 ** 30),
    Key(O, "tb_climatology", "path", "", "-", "Tb sensors: climatology file of the seasonal rescaling of the Tb "
        "innovations (SMAP L4 practice, colmda.obs.tb_climatology): read and applied when set; an open-loop run "
        "with &assimilation method = 'monitor' writes it here; '' = no rescaling"),
    Key(O, "tb_climatology_pentads", "int", 7, "pentads", "Tb climatology: width of the moving window over the "
        "pentads of the year in which the observed and model Tb means are taken (odd; 7 = +-15 days)", lo=1,
        hi=73, check=lambda v: None if v % 2 == 1 else "an odd number"),
    Key(O, "tb_climatology_min_count", "int", 10, "1", "Tb climatology: fewest observation-model pairs in a "
        "(column, sensor, pentad) window for a mean; rows without one are not assimilated", lo=1),
    # ---- &assimilation
    Key(A, "method", "str", "none", "-", "analysis method, one of the registered methods (colmda.assim.base; "
        "docs/architecture.md): " + "; ".join(f"'{n}' = {m.summary}" for n, m in methods.registry().items()),
        allowed=", ".join(repr(n) for n in methods.names()), check=lambda v: _check_method(v)),
    Key(A, "window_hours", "float", 24.0, "h", "length of a forecast window = one assimilation cycle; the driver "
        "forecasts, analyses and writes output once per window (also in control runs)", lo=0.0, lo_open=True,
        hi=8784.0),
    Key(A, "end", "date", "", "UTC", "last analysis time; later windows are a free forecast; '' = the "
        "experiment end"),
    Key(A, "obs_operator", "str", "layer", "-", "model equivalent of a retrieval: 'layer' = volumetric soil "
        "moisture of layer obs_layer (seed 000, after Albergel et al. 2017); 'sensing_depth' = exponential "
        "weighting over the sensor's sensing depth", choices=("layer", "sensing_depth")),
    Key(A, "obs_layer", "int", 2, "-", "soil layer (1 = top) that 'layer' maps retrievals to", lo=1, hi=10),
    Key(A, "vegetation_rule", "str_list", [], "-", "sensor x vegetation table: entries 'SENSOR:CLASS:ACTION' with "
        "CLASS a vegetation class (bare, dense, shrub, grass, crop, all) or a PFT index 0-15 and ACTION 'use', "
        "'exclude' or an error multiplier; later entries override earlier ones; empty = every sensor "
        "everywhere (seed 000 NEW rule: 'X:dense:exclude')", check=check_rule),
    Key(A, "gross_error", "float", 0.0, "-", "reject a retrieval whose innovation exceeds this many standard "
        "deviations of sqrt(HBH' + R); 0 = no check", lo=0.0),
    Key(A, "diagnostics", "bool", True, "-", "write the analysis diagnostics (innovations, Jacobians, gains, "
        "increments, observation counts) to <run directory>/analysis/"),
    Key(A, "n_members", "int", 1, "-", "ensemble size: every column runs this many members, as more columns in "
        "the same core calls, each with its own perturbed forcing (&forcing perturb) and optional state "
        "perturbations (&assimilation state_perturbation_std); history holds the ensemble mean "
        "(docs/ensemble.md)", lo=1, hi=1000),
    # ---- &output
    Key(OUT, "directory", "path", "", "-", "run directory (history/, restart/, manifest.json, summary.json); "
        "'' = runs/<experiment name> under the current directory"),
    Key(OUT, "frequency", "frequency", "1d", "-", "history output interval: 'step', 'window' or a duration "
        "('30min', '3h', '1d'); a multiple of dt that divides the window or is a multiple of it",
        check=_check_frequency, allowed="'step', 'window', N min|h|d"),
    Key(OUT, "averaging", "str", "mean", "-", "'mean': means over each output interval (time stamp at its centre, "
        "with time bounds; ALMA states at the interval end in *_inst.nc); 'instant': values at the end of the interval", choices=("mean", "instant")),
    Key(OUT, "variables", "str_list", ["default"], "-", "output variables (ALMA names, docs/output.md) and/or "
        "groups", check=_check_variables, allowed="names or groups"),
    Key(OUT, "file_period", "period", "1d", "-", "time span of one history file: 'Nd' (N days from the "
        "experiment start), '1mo' or '1y' (calendar); a file is written once, when its period is complete",
        allowed="'Nd', '1mo', '1y'"),
    Key(OUT, "layout", "str", "auto", "-", "'grid': lat-lon grid of the box, ocean/unselected cells _FillValue; "
        "'points': list of land points; 'auto': points for point runs, else grid",
        choices=("auto", "grid", "points")),
    Key(OUT, "precision", "str", "float32", "-", "floating-point type of history variables",
        choices=("float32", "float64")),
    Key(OUT, "complevel", "int", 4, "-", "zlib compression level of history files (0 = uncompressed)", lo=0, hi=9),
    Key(OUT, "restart_days", "float", 7.0, "d", "restart interval in days of model time (also at the end of the "
        "run and of every spin-up cycle); 0 = only at the end; must be a whole number of windows",
        lo=0.0),
    # ---- &parallel
    Key(P, "omp_threads", "int", 0, "-", "OpenMP threads of the core per rank (only with a core built with "
        "-Dopenmp=enabled); 0 = leave OMP_NUM_THREADS as it is", lo=0, hi=1024),
)

#: the keys of the run itself, then those the subsystems own: every registered analysis method's (its group
#: may be a new one, e.g. &image, or &assimilation), and the twin matrix's
BASE_KEYS = KEYS
_METHOD_CLASSES = tuple(methods.registry().values())
KEYS = BASE_KEYS + ensemble.KEYS + tuple(k for m in _METHOD_CLASSES for k in m.keys) + matrix_keys.KEYS
X = matrix_keys.X
BASE_GROUPS = (E, D, F, M, O, A, OUT, P)
GROUPS = BASE_GROUPS + (X,) + tuple(dict.fromkeys(m.group for m in _METHOD_CLASSES if m.group not in BASE_GROUPS))
GROUP_DOC = {
    E: "dates, time step, spin-up, seeds and initial state",
    D: "which columns to run",
    F: "meteorological forcing",
    M: "model options",
    O: "observations to assimilate, and observations to simulate from a truth run",
    A: "analysis method and cycling",
    OUT: "history output and restarts",
    P: "parallel execution (MPI ranks are chosen by mpiexec -n)",
}
GROUP_DOC.update({m.group: m.group_doc for m in _METHOD_CLASSES if m.group not in BASE_GROUPS})
GROUP_DOC[X] = matrix_keys.GROUP_DOC
KEYS_BY_GROUP = {g: {k.name: k for k in KEYS if k.group == g} for g in GROUPS}


# ---------------------------------------------------------------------------------------------------------------
# settings dataclasses, built from the table


def _group_class(group: str):
    fields = [(k.name, k.python_type, _field_for(k)) for k in KEYS_BY_GROUP[group].values()]
    return dataclasses.make_dataclass(group.capitalize() + "Settings", fields, frozen=True)


def _field_for(k: Key):
    if isinstance(k.default, list):
        return field(default_factory=lambda d=k.default: tuple(d))
    if k.kind == "date":
        return field(default=None if k.default == "" else parse_date(k.default))
    return field(default=k.default)


GROUP_CLASSES = {g: _group_class(g) for g in GROUPS}


class _SettingsBase:
    """All settings of a run: one frozen dataclass per namelist group (fields named after :data:`GROUPS`, built
    from the key table), ``source`` (the namelist file or '<defaults>'), plus derived quantities."""

    # ---- derived, all checked by validate()
    @property
    def start(self) -> _dt.datetime:
        return self.experiment.start

    @property
    def end(self) -> _dt.datetime:
        return self.experiment.end

    @property
    def dt(self) -> float:
        return float(self.experiment.dt)

    @property
    def window_seconds(self) -> int:
        return int(round(self.assimilation.window_hours * 3600.0))

    @property
    def steps_per_window(self) -> int:
        return int(round(self.window_seconds / self.dt))

    @property
    def n_windows(self) -> int:
        return int(round((self.end - self.start).total_seconds() / self.window_seconds))

    @property
    def spinup_start(self) -> _dt.datetime:
        return self.experiment.spinup_start or self.start

    @property
    def spinup_end(self) -> _dt.datetime:
        if self.experiment.spinup_end:
            return self.experiment.spinup_end
        s = self.spinup_start
        try:
            return s.replace(year=s.year + 1)
        except ValueError:  # 29 February
            return s.replace(year=s.year + 1, day=28)

    @property
    def spinup_windows(self) -> int:
        if self.experiment.spinup_max_cycles == 0:
            return 0
        return int(round((self.spinup_end - self.spinup_start).total_seconds() / self.window_seconds))

    @property
    def output_seconds(self) -> int:
        """Length of one history output interval (s)."""
        f = self.output.frequency
        if f == "step":
            return int(round(self.dt))
        if f == "window":
            return self.window_seconds
        return duration_seconds(f)

    @property
    def output_directory(self) -> Path:
        return Path(self.output.directory or f"runs/{self.experiment.name}")

    @property
    def is_point_run(self) -> bool:
        return len(self.domain.point_lat) > 0

    @property
    def output_layout(self) -> str:
        if self.output.layout == "auto":
            return "points" if self.is_point_run else "grid"
        return self.output.layout

    @property
    def restart_seconds(self) -> int:
        return int(round(self.output.restart_days * 86400.0))

    def to_dict(self) -> dict:
        """Plain JSON-able dict {group: {key: value}} of every key (dates as ISO strings)."""
        out = {}
        for g in GROUPS:
            grp = getattr(self, g)
            out[g] = {}
            for name in KEYS_BY_GROUP[g]:
                v = getattr(grp, name)
                if isinstance(v, _dt.datetime):
                    v = format_date(v)
                elif v is None:
                    v = ""
                elif isinstance(v, tuple):
                    v = list(v)
                out[g][name] = v
        return out

    def fingerprint(self, exclude=(("parallel", "omp_threads"), ("experiment", "end"), ("output", "directory"))
                    ) -> str:
        """JSON of the settings that determine the numbers a run produces (for restart compatibility checks): all
        keys except the run's end (a run may be extended), the thread count and the run directory (may move)."""
        d = self.to_dict()
        for g, k in exclude:
            d[g].pop(k, None)
        d.pop(X, None)  # &matrix only steers `colmda twin`, not the numbers of a run
        return json.dumps(d, sort_keys=True)

    def to_namelist(self) -> str:
        """The resolved settings as a namelist that :func:`load` reads back to the same settings."""
        lines = []
        d = self.to_dict()
        for g in GROUPS:
            lines.append(f"&{g}")
            for name, v in d[g].items():
                if isinstance(v, list):
                    lit = ", ".join(_nml_literal(x) for x in v) if v else None
                    if lit is None:
                        continue  # empty list = default, f90nml cannot write an empty array
                else:
                    lit = _nml_literal(v)
                lines.append(f"    {name} = {lit}")
            lines.append("/")
        return "\n".join(lines) + "\n"

    def replace(self, group: str, **changes) -> "Settings":
        """A copy with some keys of one group changed (values are validated like namelist values)."""
        raw = self.to_dict()
        raw[group].update(changes)
        return from_dict(raw, source=self.source)


Settings = dataclasses.make_dataclass(
    "Settings", [(g, Any, field(default=None)) for g in GROUPS] + [("source", str, field(default="<defaults>"))],
    bases=(_SettingsBase,), frozen=True)
Settings.__doc__ = _SettingsBase.__doc__
Settings.__module__ = __name__


# ---------------------------------------------------------------------------------------------------------------
# parsing


def _convert(k: Key, value, src: str):
    """Convert and check one value; raise UserError naming file, group, key and value."""
    where = _where(src, k.group, k.name)

    def bad(expected):
        raise UserError(f"{where} = {_show(value)}: expected {expected}")

    if isinstance(value, dict) or value is None or (isinstance(value, list) and any(v is None for v in value)):
        raise UserError(f"{where}: missing or malformed value (expected {k.kind}: {k.allowed_text()})")
    kind = k.kind
    if kind.endswith("_list"):
        items = value if isinstance(value, list) else [value]
        if kind == "float_list":
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
                bad("a list of numbers")
            items = [float(x) for x in items]
        else:
            if not all(isinstance(x, str) for x in items):
                bad("a list of quoted strings")
            items = [x.strip() for x in items]
        if k.lengths and len(items) not in k.lengths:
            bad(f"{' or '.join(str(n) for n in k.lengths)} values, got {len(items)}")
        v = tuple(items)
    elif kind == "bool":
        if not isinstance(value, bool):
            bad(".true. or .false.")
        v = value
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                bad(f"an integer (write {int(value)} without a decimal point)")
            bad("an integer")
        v = value
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        v = float(value)
        if not math.isfinite(v):
            bad("a finite number")
    else:  # string kinds
        if not isinstance(value, str):
            bad("a quoted string" + (f": {k.allowed_text()}" if k.allowed_text() else ""))
        v = value.strip()
        if kind == "str" and k.choices:
            v = v.lower()
            if v not in k.choices:
                raise UserError(f"{where} = {_show(value)}: expected one of {k.allowed_text()}"
                                + suggestion(v, k.choices))
        elif kind == "date":
            if v == "" and k.default == "":
                v = None
            else:
                try:
                    v = parse_date(v)
                except ValueError:
                    bad("a date 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM'")
        elif kind == "duration":
            try:
                duration_seconds(v)
            except ValueError:
                bad("a duration such as '30min', '3h' or '1d'")
        elif kind == "period":
            try:
                parse_period(v)
            except ValueError:
                bad("'Nd' (e.g. '1d', '10d'), '1mo' or '1y'")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and (k.lo is not None or k.hi is not None):
        if (k.lo is not None and (v < k.lo or (k.lo_open and v == k.lo))) or (k.hi is not None and v > k.hi):
            bad(f"a value in {k.allowed_text()}" + (f" {k.unit}" if k.unit not in ("-", "") else ""))
    if k.check is not None:
        msg = k.check(v)
        if msg:
            bad(msg)
    if k.reserved:
        default = _field_for(k)
        dv = default.default_factory() if default.default_factory is not dataclasses.MISSING else default.default
        if v != dv:
            raise UserError(f"{where} = {_show(value)}: this key is reserved for a later issue and has no effect "
                            f"yet; remove it or leave the default {k.default_text()}")
    return v


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, list):
        return ", ".join(_show(x) for x in value)
    return str(value)


def from_dict(raw: dict, source: str = "<dict>") -> Settings:
    """Validated :class:`Settings` from ``{group: {key: value}}`` (the shape f90nml returns)."""
    groups = {}
    for gname, values in raw.items():
        g = str(gname).lower()
        if g not in KEYS_BY_GROUP:
            raise UserError(f"{source}: unknown namelist group '&{gname}'" + suggestion(g, GROUPS))
        if isinstance(values, list):  # f90nml Cogroup: the same group twice
            raise UserError(f"{source}: namelist group '&{g}' appears {len(values)} times; merge them into one")
        converted = {}
        for key, value in dict(values).items():
            kname = str(key).lower()
            if kname not in KEYS_BY_GROUP[g]:
                raise UserError(f"{_where(source, g)}: unknown key '{key}'" + suggestion(kname, KEYS_BY_GROUP[g]))
            converted[kname] = _convert(KEYS_BY_GROUP[g][kname], value, source)
        groups[g] = converted
    built = {g: GROUP_CLASSES[g](**groups.get(g, {})) for g in GROUPS}
    settings = Settings(**built, source=source)
    validate(settings)
    return settings


def resolve_paths(raw: dict, base_dir) -> None:
    """Relative values of 'path' keys in ``raw`` -> absolute, against ``base_dir`` (the namelist's directory)."""
    for g, values in raw.items():
        if not isinstance(values, dict):
            continue
        for k, v in values.items():
            key = KEYS_BY_GROUP.get(str(g).lower(), {}).get(str(k).lower())
            if key is None or not (key.kind == "path" or key.paths):
                continue
            if isinstance(v, str) and v.strip():
                values[k] = _absolute(v, base_dir)
            elif key.paths and isinstance(v, list):
                values[k] = [_absolute(x, base_dir) if isinstance(x, str) and x.strip() else x for x in v]


def _absolute(path: str, base_dir) -> str:
    return os.path.normpath(os.path.join(os.path.abspath(base_dir), os.path.expanduser(path.strip())))


def loads(text: str, source: str = "<string>", overrides: list[str] | tuple = (), base_dir=None) -> Settings:
    """Parse namelist text (plus ``group.key=value`` overrides) into validated settings. Relative paths of the
    text resolve against ``base_dir`` (the namelist's directory; default: the current directory), those of the
    overrides against the current directory."""
    import f90nml

    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # f90nml prints debugging output on some errors
            nml = f90nml.reads(text)
    except Exception as exc:  # f90nml raises assorted errors (AssertionError for an unterminated string)
        detail = f" ({type(exc).__name__}: {exc})" if str(exc) else ""
        raise UserError(f"{source}: not a readable Fortran namelist{detail}") from None
    raw = {}
    for g, v in nml.items():
        if g in raw:
            n = list(nml.keys()).count(g)
            raise UserError(f"{source}: namelist group '&{g}' appears {n} times; merge them into one")
        raw[g] = dict(v)
    if not raw and _has_content(text):
        raise UserError(f"{source}: no namelist group found (expected '&group key = value ... /')")
    resolve_paths(raw, base_dir if base_dir is not None else os.getcwd())
    for ov in overrides:
        g, k, v = _parse_override(ov)
        if isinstance(raw.get(g), list):
            break  # reported by from_dict
        raw.setdefault(g, {})[k] = v
    return from_dict(raw, source=source)


def load(path, overrides: list[str] | tuple = ()) -> Settings:
    """Read and validate the namelist file ``path``."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: namelist file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the namelist ({exc})") from None
    if not _has_groups(text):  # an empty file would silently run every default: a global experiment
        raise UserError(f"{path}: the namelist is empty or only comments; expected at least one group such as "
                        f"'&experiment name = ... /' (`colmda namelist` lists every key)")
    return loads(text, source=str(path), overrides=overrides, base_dir=p.resolve().parent)


def _has_groups(text: str) -> bool:
    return any(line.split("!", 1)[0].strip().startswith(("&", "$")) for line in text.splitlines())


def defaults() -> Settings:
    """Settings with every key at its default."""
    return from_dict({}, source="<defaults>")


def _has_content(text: str) -> bool:
    for line in text.splitlines():
        s = line.split("!", 1)[0].strip()
        if s:
            return True
    return False


def _parse_override(text: str):
    """'output.directory=/tmp/x' -> ('output', 'directory', '/tmp/x'). The value is read in namelist syntax
    (numbers, .true., 'quoted text', lists with commas); unquoted words are text, and unquoted words with commas
    a list of texts."""
    import f90nml

    m = re.match(r"^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*=(.*)$", text, re.S)
    if not m:
        raise UserError(f"--set {text!r}: expected GROUP.KEY=VALUE, e.g. --set output.directory=/tmp/run")
    g, k, v = m.group(1).lower(), m.group(2).lower(), m.group(3).strip()
    key = KEYS_BY_GROUP.get(g, {}).get(k)
    textual = key is not None and key.kind not in ("int", "float", "bool", "float_list")
    if textual and v[:1] not in ("'", '"'):
        parsed = [x.strip() for x in v.split(",")] if key.kind == "str_list" else v
    else:
        try:
            parsed = f90nml.reads(f"&{g}\n {k} = {v}\n/\n")[g][k]
        except Exception:
            parsed = None
        if parsed is None:
            parsed = v
    if g in KEYS_BY_GROUP and k in KEYS_BY_GROUP[g]:
        _convert(KEYS_BY_GROUP[g][k], parsed, f"--set {text}")
    elif g not in KEYS_BY_GROUP:
        raise UserError(f"--set {text}: unknown namelist group '&{g}'" + suggestion(g, GROUPS))
    else:
        raise UserError(f"--set {text}: &{g}: unknown key '{k}'" + suggestion(k, KEYS_BY_GROUP[g]))
    return g, k, parsed


def validate(s: Settings) -> None:
    """Cross-key checks; each message names the keys involved."""
    src = s.source
    e = s.experiment
    if e.end <= e.start:
        raise UserError(f"{_where(src, E, 'end')} = '{format_date(e.end)}': must be after start "
                        f"('{format_date(e.start)}')")
    win = s.assimilation.window_hours * 3600.0
    if abs(win - round(win)) > 1e-6:
        raise UserError(f"{_where(src, A, 'window_hours')} = {s.assimilation.window_hours}: expected a whole "
                        f"number of seconds")
    win = int(round(win))
    if abs(win / s.dt - round(win / s.dt)) > 1e-9:
        raise UserError(f"{_where(src, E, 'dt')} = {s.dt}: must divide the forecast window "
                        f"(&assimilation window_hours = {s.assimilation.window_hours} h = {win} s)")
    if abs(s.dt - round(s.dt)) > 1e-9:
        raise UserError(f"{_where(src, E, 'dt')} = {s.dt}: expected a whole number of seconds")
    length = (e.end - e.start).total_seconds()
    if length % win:
        raise UserError(f"{src}: &experiment start/end span {length / 3600:g} h, not a whole number of forecast "
                        f"windows (&assimilation window_hours = {s.assimilation.window_hours})")
    if e.spinup_max_cycles > 0:
        if s.spinup_end <= s.spinup_start:
            raise UserError(f"{_where(src, E, 'spinup_end')}: must be after spinup_start "
                            f"('{format_date(s.spinup_start)}')")
        sl = (s.spinup_end - s.spinup_start).total_seconds()
        if sl % win:
            raise UserError(f"{src}: &experiment spin-up period {format_date(s.spinup_start)} .. "
                            f"{format_date(s.spinup_end)} is not a whole number of forecast windows "
                            f"(&assimilation window_hours = {s.assimilation.window_hours}); set spinup_end")
    out = s.output
    osec = s.output_seconds
    if osec % s.dt:
        raise UserError(f"{_where(src, OUT, 'frequency')} = '{out.frequency}': must be a multiple of "
                        f"&experiment dt = {s.dt:g} s")
    if not (win % osec == 0 or osec % win == 0):
        raise UserError(f"{_where(src, OUT, 'frequency')} = '{out.frequency}': must divide the forecast window "
                        f"({win} s) or be a multiple of it")
    if osec > win and length % osec:
        raise UserError(f"{_where(src, OUT, 'frequency')} = '{out.frequency}': the experiment length "
                        f"({length / 86400:g} d) is not a whole number of output intervals")
    n, unit = parse_period(out.file_period)
    if unit == "d":
        if (n * 86400) % osec or (n * 86400) % win:
            raise UserError(f"{_where(src, OUT, 'file_period')} = '{out.file_period}': must be a whole number of "
                            f"output intervals ({osec} s) and of forecast windows ({win} s)")
    else:
        if 86400 % osec or 86400 % win or e.start.time() != _dt.time(0):
            raise UserError(f"{_where(src, OUT, 'file_period')} = '{out.file_period}': calendar file periods need "
                            f"output intervals and windows that divide a day and a start at 00:00")
    r = s.restart_seconds
    if abs(out.restart_days * 86400.0 - r) > 1e-6 or (r and r % win):
        raise UserError(f"{_where(src, OUT, 'restart_days')} = {out.restart_days:g}: must be a whole number of "
                        f"forecast windows ({s.assimilation.window_hours:g} h)")
    d = s.domain
    if len(d.point_lat) != len(d.point_lon):
        raise UserError(f"{_where(src, D, 'point_lat')}: {len(d.point_lat)} latitudes but point_lon has "
                        f"{len(d.point_lon)} longitudes")
    if d.point_name and len(d.point_name) != len(d.point_lat):
        raise UserError(f"{_where(src, D, 'point_name')}: {len(d.point_name)} names for {len(d.point_lat)} points")
    for name in ("point_pft", "point_sand", "point_clay"):
        values = getattr(d, name)
        if values and len(values) != len(d.point_lat):
            raise UserError(f"{_where(src, D, name)}: {len(values)} values for {len(d.point_lat)} points")
    if d.point_lat and d.box:
        raise UserError(f"{src}: &domain box and point_lat/point_lon are exclusive; give one of them")
    for g, k, p in ((D, "file", d.file), (F, "file", s.forcing.file), (E, "initial_restart", e.initial_restart),
                    (X, "truth_initial_restart", s.matrix.truth_initial_restart)):
        if k == "file" and g == F and s.forcing.source == "era5" and p and (Path(p).is_dir() or glob.glob(p)):
            continue
        if p and not Path(p).is_file():
            raise UserError(f"{_where(src, g, k)} = '{p}': file not found (a relative path in a namelist is "
                            f"relative to the namelist's directory, in --set to the current directory)")
    a, o = s.assimilation, s.observations
    methods.check_members(methods.get(a.method, src), a.n_members, src)
    methods.get(a.method, src).validate(s)  # the method's own checks
    if o.products or o.product_files:
        if not (len(o.products) == len(o.product_files) == len(o.sensors)):
            raise UserError(f"{_where(src, O, 'products')}: products ({len(o.products)}), product_files "
                            f"({len(o.product_files)}) and sensors ({len(o.sensors)}) need one entry per sensor")
        for f in o.product_files:
            if not Path(f).exists():
                raise UserError(f"{_where(src, O, 'product_files')} = '{f}': file or directory not found (relative "
                                f"paths are relative to the current directory, {Path.cwd()})")
    if o.error and len(o.error) != len(o.sensors):
        raise UserError(f"{_where(src, O, 'error')}: {len(o.error)} value(s) for {len(o.sensors)} sensor(s)")
    if a.end is not None:
        if not e.start < a.end <= e.end or (a.end - e.start).total_seconds() % win:
            raise UserError(f"{_where(src, A, 'end')} = '{format_date(a.end)}': expected a window end between "
                            f"start ('{format_date(e.start)}') and end ('{format_date(e.end)}')")
    if o.simulate and a.method != "none":
        raise UserError(f"{_where(src, O, 'simulate')}: observations are simulated from a truth run, which has "
                        f"&assimilation method = 'none' (got '{a.method}')")
    if o.simulate and a.n_members > 1:
        raise UserError(f"{_where(src, O, 'simulate')}: observations are simulated from one truth, not an "
                        f"ensemble; expected &assimilation n_members = 1 (got {a.n_members})")
    f = s.forcing
    if f.source != "generator":
        if not f.file:
            raise UserError(f"{_where(src, F, 'file')}: required for source = '{f.source}'")
        if f.source == "plumber2" and len(d.point_lat) != 1:
            raise UserError(f"{src}: &forcing source = '{f.source}' is a single-site file; give exactly one point "
                            f"in &domain point_lat / point_lon (got {len(d.point_lat)})")


# ---------------------------------------------------------------------------------------------------------------
# reference listings (colmda namelist, docs/namelist.md)


def reference_text() -> str:
    """Every key with its default, unit, allowed range and meaning (what ``colmda namelist`` prints)."""
    import textwrap

    out = []
    for g in GROUPS:
        out.append(f"&{g}    ! {GROUP_DOC[g]}")
        for k in KEYS_BY_GROUP[g].values():
            head = f"    {k.name} = {k.default_text()}"
            tags = f"[{k.kind}; unit {k.unit}; allowed {k.allowed_text() or 'any'}]"
            if k.reserved:
                tags += " RESERVED (not used yet)"
            out.append(head)
            out.extend(textwrap.wrap(f"{k.meaning} {tags}", 110, initial_indent="        ! ",
                                     subsequent_indent="        ! "))
        out.append("/")
        out.append("")
    return "\n".join(out)


def reference_markdown() -> str:
    """The generated part of docs/namelist.md: one table per group."""
    out = []
    for g in GROUPS:
        out.append(f"### `&{g}`: {GROUP_DOC[g]}")
        out.append("")
        out.append("| key | type | default | unit | allowed | meaning |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        for k in KEYS_BY_GROUP[g].values():
            meaning = k.meaning + (" **Reserved**: accepted only at its default until a later issue uses it."
                                   if k.reserved else "")
            cells = [f"`{k.name}`", k.kind, f"`{k.default_text()}`", k.unit, k.allowed_text() or "any", meaning]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


DOC_BEGIN = "<!-- BEGIN GENERATED: colmda.config.reference_markdown() -->"
DOC_END = "<!-- END GENERATED -->"


def generated_section(text: str, begin: str = DOC_BEGIN, end: str = DOC_END) -> str:
    """The text between the generated-section markers of a document."""
    i, j = text.index(begin) + len(begin), text.index(end)
    return text[i:j].strip("\n") + "\n"


def replace_generated_section(text: str, new: str, begin: str = DOC_BEGIN, end: str = DOC_END) -> str:
    i, j = text.index(begin) + len(begin), text.index(end)
    return text[:i] + "\n" + new.rstrip("\n") + "\n" + text[j:]
