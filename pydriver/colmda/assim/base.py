"""The analysis-method protocol and registry: how any analysis plugs into the cycle of :mod:`colmda.run`.

The cycle knows no method by name. For ``&assimilation method = NAME`` it builds ``get(NAME)(settings, inputs,
comm)`` once (on every rank) and, for every experiment window ``[t0, t1)``, calls:

1. ``plan(ctx) -> ForecastRequest | None`` at the window start: what the forecast must do besides advancing the
   background columns: ``extra`` forecasts (more columns advanced in the same core calls, e.g. the SEKF's
   perturbed runs, later ensemble members) and ``record``, a function called on the whole batch after every model
   step whose results are stacked over the steps (e.g. the model equivalents of the observations at their times);
2. the driver's forecast, which returns a :class:`Forecast` (the background's diagnostics, the extra columns at
   the window end, the records);
3. ``analyse(ctx, request, forecast) -> Analysis | None`` at the window end: the increments (total volumetric
   soil moisture of the top layers of some local columns), computed by pure functions over arrays in the
   method's own module (e.g. :mod:`colmda.assim.sekf`); ``None`` = no analysis in this window (identically on
   every rank);
4. the driver applies the increments through the one consistency layer (:mod:`colmda.assim.consistency`:
   bounds, liquid/ice vs temperature, water budget) and hands its :class:`~colmda.assim.consistency.
   IncrementReport` back to ``write_diagnostics(ctx, analysis, report)`` (collective), which writes the method's
   diagnostics following its declared ``schema``;
5. at the end of the run ``summary_entries(rundir) -> dict`` (collective; the entries on rank 0) adds the
   method's entries to summary.json.

A method declares, as class attributes: ``name`` (the value of ``&assimilation method``), ``summary`` (one line
for the docs and the key table), ``changes_state`` (False: never analyses), ``group`` and ``keys`` (its namelist
group and the :class:`colmda.keys.Key` entries it owns; ``colmda.config`` aggregates them), ``schema`` (its
diagnostics: variable -> (dimensions, units, meaning)), and optionally ``validate(settings)`` (cross-key checks
made when the namelist is loaded, raising UserError). Register a class with :func:`register`; the built-in
methods are listed in :data:`BUILTIN`. How to add a method: docs/architecture.md.

Ensembles (``&assimilation n_members`` = N > 1): the driver's state holds N members of every column as
``ncol_local * N`` flat columns in the order of :mod:`colmda.ensemble` (``flat = column * N + member``, the members
of a column adjacent); ``ctx.state``, ``ctx.params`` and the record functions see the flat columns, ``ctx.column``,
``ctx.lat``, ``ctx.lon`` the ``ncol_local`` columns; ``Analysis.columns`` are flat indices. A method says which
member counts it accepts with ``members``: ``'one'`` (N = 1 only, e.g. the SEKF), ``'any'`` (it analyses every
member alike, or never analyses) or ``'ensemble'`` (N >= 2, e.g. the EnKF family).

Per-column state a method keeps between windows (e.g. adaptive inflation) is declared in ``carry`` as
``{name: (leading shape, initial value)}``; the driver owns these arrays (``ctx.carry[name]``, shape
``leading shape + (ncol_local,)``, updated in place by the method), moves them with their columns when it
rebalances, and writes them to and reads them from the restart files, so a resumed run continues bitwise.
"""

from __future__ import annotations

import datetime as _dt
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ..errors import UserError, suggestion
from ..parallel import keyed_rng

#: modules whose import registers the built-in methods (imported by :func:`registry`)
BUILTIN = ("colmda.assim.identity", "colmda.assim.hooks", "colmda.assim.image", "colmda.assim.ensemble_filters",
           "colmda.assim.monitor")


# ---------------------------------------------------------------------------------------------------------------
# what a method sees and returns


@dataclass
class AnalysisContext:
    """What a method sees of one window (arrays: this rank's columns, column last)."""

    settings: Any  # colmda.config.Settings
    comm: object  # colmda.parallel communicator (SerialComm or MPIComm)
    decomposition: object  # colmda.parallel.Decomposition of the run's columns over the ranks
    window_index: int  # 0-based experiment window
    window_start: _dt.datetime
    time: _dt.datetime  # analysis time = end of the window
    state: object  # colmda.core.ColumnState: the background (at the window start in plan, at the end in analyse)
    params: object  # colmda.core.ColumnParameters of this rank's columns
    column: np.ndarray  # global column index of each local column
    lat: np.ndarray  # latitude of each local column (degrees_north)
    lon: np.ndarray  # longitude (degrees_east)
    diagnostics: object  # colmda.core.Diagnostics of the window's forecast (None in plan)
    n_members: int = 1  # flat columns are [c0 m0, c0 m1, ..., c1 m0, ...] when > 1 (colmda.ensemble)
    inputs: object = None  # the run's colmda.setup.RunInputs (all columns: grid, domain, parameters)
    carry: dict = field(default_factory=dict)  # the method's per-column state between windows ({name: (..., nloc)})

    def rng(self, stream: int, local_column: int, member: int = 0) -> np.random.Generator:
        """Random numbers keyed by (experiment seed, stream, global column, member, window): rank-independent."""
        return keyed_rng(self.settings.experiment.seed, stream, int(self.column[local_column]), member,
                         self.window_index)


@dataclass
class ForecastRequest:
    """What a method asks the forecast of one window to do besides advancing the background columns."""

    extra: object | None = None  # ColumnState: more columns, advanced with the background in the same core calls
    extra_positions: np.ndarray | None = None  # local column whose parameters and forcing each extra column uses
    record: Callable[[object], dict] | None = None  # called on the whole batch after every step
    payload: dict = field(default_factory=dict)  # the method's own bookkeeping between plan and analyse


@dataclass
class Forecast:
    """What the forecast of one window gives back to the method."""

    diagnostics: object  # colmda.core.Diagnostics of the background columns
    extra_end: object | None = None  # ColumnState of the extra columns at the window end
    records: dict | None = None  # {name: array stacked over the steps, (nsteps, ...)} of every record function


@dataclass
class Analysis:
    """A method's result for one window on this rank: increments of total (liquid + ice) volumetric soil moisture
    of the top ``increment.shape[0]`` soil layers at the analysis time, and the method's diagnostics."""

    columns: np.ndarray  # (nc,) local (flat) columns the increment belongs to; may be empty
    increment: np.ndarray  # (nl, nc) m3 m-3, before the consistency layer
    diagnostics: Any = None  # method-specific, completed in write_diagnostics with the consistency report
    #: optional increments of other state variables of the same columns, through the consistency layer
    #: (:func:`colmda.assim.consistency.apply_state_increments`): 't_soil_1' (nc,) K of the top soil layer's
    #: temperature, 'swe' (nc,) kg m-2 of the snow water equivalent
    state_increments: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Variable:
    """One variable of a method's diagnostics schema."""

    dims: tuple[str, ...]
    units: str
    meaning: str


# ---------------------------------------------------------------------------------------------------------------
# the protocol


class AnalysisMethod:
    """Base class of the analysis methods (see the module docstring for the protocol)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    group: ClassVar[str] = "assimilation"
    group_doc: ClassVar[str] = ""  # one line for docs/namelist.md when ``group`` is the method's own
    keys: ClassVar[tuple] = ()
    schema: ClassVar[dict[str, Variable]] = {}
    #: False for a method that never changes the state (then the run summary checks the run's water budget)
    changes_state: ClassVar[bool] = True
    #: member counts the method accepts: 'one' (n_members = 1), 'any', 'ensemble' (n_members >= 2)
    members: ClassVar[str] = "one"
    #: per-column state kept between windows: {name: (leading shape, initial value)} (see the module docstring)
    carry: ClassVar[dict[str, tuple[tuple[int, ...], float]]] = {}

    def __init__(self, settings, inputs, comm):
        self.settings = settings
        self.inputs = inputs
        self.comm = comm

    @classmethod
    def validate(cls, settings) -> None:
        """Cross-key checks of the method's settings, made before any work (raise UserError)."""

    def plan(self, ctx: AnalysisContext) -> ForecastRequest | None:
        """Window start: extra forecasts and records the analysis needs (None: nothing)."""
        return None

    def analyse(self, ctx: AnalysisContext, request: ForecastRequest | None, forecast: Forecast
                ) -> Analysis | None:
        """Window end: the increments (None: no analysis in this window, on every rank)."""
        return None

    def write_diagnostics(self, ctx: AnalysisContext, analysis: Analysis, report) -> None:
        """Collective, after the consistency layer: write this window's diagnostics (``report``: the
        :class:`colmda.assim.consistency.IncrementReport` of this rank)."""

    def summary_entries(self, rundir) -> dict:
        """Rank 0, end of the run: entries of summary.json."""
        return {}


# ---------------------------------------------------------------------------------------------------------------
# the registry

_METHODS: dict[str, type[AnalysisMethod]] = {}


def register(cls: type[AnalysisMethod]) -> type[AnalysisMethod]:
    """Class decorator: make ``cls`` available as ``&assimilation method = cls.name``."""
    if not cls.name or not cls.name.replace("_", "").isalnum():
        raise ValueError(f"analysis method {cls.__name__}: name {cls.name!r} must be letters, digits and '_'")
    known = _METHODS.get(cls.name)
    if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"analysis method '{cls.name}' registered twice ({known.__module__}, {cls.__module__})")
    _METHODS[cls.name] = cls
    return cls


def registry() -> dict[str, type[AnalysisMethod]]:
    """All registered methods by name: the built-in ones in the order of :data:`BUILTIN` (whatever order they were
    imported in), then the others in the order they were registered."""
    for module in BUILTIN:
        importlib.import_module(module)
    rank = {m: i for i, m in enumerate(BUILTIN)}
    order = sorted(_METHODS.items(), key=lambda kv: rank.get(kv[1].__module__, len(BUILTIN)))  # stable
    return dict(order)


def names() -> tuple[str, ...]:
    return tuple(registry())


def check_members(cls: type[AnalysisMethod], n_members: int, source: str) -> None:
    """UserError naming &assimilation n_members when the method does not accept that member count."""
    if cls.members == "one" and n_members != 1:
        raise UserError(f"{source}: &assimilation n_members = {n_members}: method '{cls.name}' analyses one state "
                        f"per column; expected n_members = 1 (ensemble methods: "
                        f"{', '.join(n for n, m in registry().items() if m.members == 'ensemble') or 'none'})")
    if cls.members == "ensemble" and n_members < 2:
        raise UserError(f"{source}: &assimilation n_members = {n_members}: method '{cls.name}' needs an ensemble; "
                        f"expected n_members >= 2")


def get(name: str, source: str = "&assimilation") -> type[AnalysisMethod]:
    """The method class of ``&assimilation method = name``; UserError naming the registered ones otherwise."""
    methods = registry()
    if name not in methods:
        raise UserError(f"{source}: &assimilation method = '{name}' is not a registered analysis method"
                        f"{suggestion(name, sorted(methods))}")
    return methods[name]
