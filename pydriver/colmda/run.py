"""The cycle: spin-up, then for every experiment window forecast -> analysis -> consistency -> output -> restart.

:func:`run` builds a :class:`Cycle` (this process's share of the columns, the analysis method, the output and
restart machinery) and runs it:

* **spin-up** (``&experiment spinup_max_cycles > 0``): the spin-up period again and again from the state at the
  end of the previous cycle, forecasts only, until the largest change of volumetric soil moisture between the ends
  of two cycles falls below ``spinup_tolerance`` (or the cycle limit); a restart at the end of every cycle;
* **window loop** over ``[t0, t1)`` of ``&assimilation window_hours`` (:meth:`Cycle.window`):

  1. the method plans the window (:meth:`colmda.assim.base.AnalysisMethod.plan`: extra forecasts, records);
  2. **forecast**: forcing for this rank's columns (keyed by global column and time, never by rank), LAI/SAI of
     the window's mid-time, then the core over the window with the method's extra columns in the same calls
     (:meth:`Cycle.forecast`);
  3. **analysis**: the method's increments (:meth:`~colmda.assim.base.AnalysisMethod.analyse`);
  4. **consistency**: the increments reach the state through :mod:`colmda.assim.consistency` (bounds, liquid/ice
     vs temperature, water budget), whose report goes back to the method's diagnostics;
  5. **output**: diagnostics gathered to rank 0, history records added, finished history files written;
  6. **restart** every ``restart_days`` and at the end.

The cycle knows no method by name: ``&assimilation method`` selects a registered class
(:func:`colmda.assim.base.get`). Everything that reduces over columns (history, summary) is done by rank 0 on
gathered global arrays and every per-column quantity is computed element by element, so the results are bitwise
identical for any number of ranks.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ensemble as ens
from . import layout as L
from .assim import base as methods
from .assim.base import Analysis, AnalysisContext, AnalysisMethod, Forecast, ForecastRequest
from .assim.consistency import apply_increment, apply_state_increments
from .config import Settings, format_date
from .constants import DENH2O, DENICE
from .core import ColumnState, CoreError, Diagnostics, advance, initial_state
from .errors import UserError
from .manifest import SUMMARY, Manifest, Timer, write_json
from .output import (STORES, HistoryWriter, Inputs, OutputGrid, needs_end_state, resolve_variables,
                     state_diagnostics, storages)
from .parallel import Decomposition, collective, decompose, get_comm
from .progress import Progress
from .restart import RestartData, RunStatus, latest_restart, list_restarts, read_restart, restart_path, write_restart
from .rundir import Session, remove_own_temporaries

log = logging.getLogger("colmda")

#: prefix of the analysis method's per-column arrays (AnalysisMethod.carry) among a restart's arrays
CARRY = "carry__"

# testing aid: seconds to sleep inside every experiment window, between forecast and analysis (lets a test kill
# a run in the middle of a window)
DEBUG_DELAY_ENV = "COLMDA_DEBUG_WINDOW_DELAY"

__all__ = ["run", "Cycle", "RunResult", "HookMethod", "AnalysisContext", "collective"]


# ---------------------------------------------------------------------------------------------------------------
# helpers


def block_mean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` by sequential element-wise additions (no pairwise summation whose association could depend
    on the array's shape), so every column's result is independent of how many columns the array holds."""
    a = np.moveaxis(a, axis, 0)
    acc = a[0].copy()
    for k in range(1, a.shape[0]):
        acc += a[k]
    return acc / a.shape[0]


def layer_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the first axis, sequentially (see :func:`block_mean`)."""
    acc = a[0].copy()
    for k in range(1, a.shape[0]):
        acc += a[k]
    return acc


def total_water(state: ColumnState) -> np.ndarray:
    """Column water storage (kg m-2): soil liquid + ice, snow, canopy, ponding, aquifer (as the core's balance)."""
    c = state.cstate
    return (layer_sum(state.soil_liquid()) + layer_sum(state.soil_ice()) + c[L.CS_SCV] + c[L.CS_LDEW]
            + c[L.CS_WDSRF] + c[L.CS_WA])


def vol_soil_moisture(state: ColumnState, dz: np.ndarray) -> np.ndarray:
    return (state.soil_liquid() / DENH2O + state.soil_ice() / DENICE) / dz[:, None]


def monthly_weights(t: _dt.datetime) -> tuple[int, int, float]:
    """Linear interpolation between mid-month values: (month index a, month index b, weight of b)."""
    def mid(y, m):
        start = _dt.datetime(y, m, 1)
        end = _dt.datetime(y + m // 12, m % 12 + 1, 1)
        return start + (end - start) / 2

    y, m = t.year, t.month
    this = mid(y, m)
    if t >= this:
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        other = mid(ny, nm)
        w = (t - this) / (other - this)
        return m - 1, nm - 1, float(w)
    py, pm = (y - 1, 12) if m == 1 else (y, m - 1)
    prev = mid(py, pm)
    w = (t - prev) / (this - prev)
    return pm - 1, m - 1, float(w)


def interpolate_monthly(monthly: np.ndarray, t: _dt.datetime) -> np.ndarray:
    """Value at time ``t`` of a (12, ncol) monthly climatology (linear between mid-months)."""
    a, b, w = monthly_weights(t)
    return (1.0 - w) * monthly[a] + w * monthly[b]


# ---------------------------------------------------------------------------------------------------------------
# output stage (local reductions on every rank, the rest on rank 0)


class OutputStage:
    """Turns one window's diagnostics into history records, run-summary accumulators and balance statistics."""

    SUMMARY_RESID = ("D_WBAL_ERR", "D_EBAL_ERR", "D_SOILH_ERR")

    def __init__(self, settings: Settings, comm, share: "Share", writer: HistoryWriter | None, ncol: int):
        self.s = settings
        self.comm = comm
        self.share = share
        self.writer = writer
        self.osec = settings.output_seconds
        self.win = settings.window_seconds
        self.nsteps = settings.steps_per_window
        self.instant = settings.output.averaging == "instant"
        self.k = max(1, int(round(self.osec / settings.dt)))  # steps per output interval
        # states at interval ends and storage changes (ALMA), needed by the requested variables?
        self.ends = needs_end_state(resolve_variables(settings.output.variables))
        # end-of-interval states inside a window: the forecast records them at the end of every block
        self.inner_ends = (not self.instant) and self.ends and self.osec < self.win
        if self.instant:
            self.nper = 1
        elif self.osec <= self.win:
            self.nper = self.k
        else:
            self.nper = self.nsteps
        self.ncol = ncol
        if writer is not None:  # finished history files are written by a child process while the run goes on
            writer.start_background()
        # rank-0 accumulators (global arrays)
        self.acc = {}
        if comm.is_root:
            self.reset_summary()

    def reset_summary(self):
        nl = L.NL_SOIL
        self.acc = {"out_d": np.zeros((L.ND, self.ncol)), "out_ds": np.zeros((L.NDS, nl, self.ncol)),
                    "out_sw": np.zeros(self.ncol), "g_out_n": np.zeros(1), "sum_d": np.zeros((L.ND, self.ncol)),
                    "sum_ds": np.zeros((L.NDS, nl, self.ncol)), "g_sum_n": np.zeros(1),
                    "maxabs": np.zeros((len(self.SUMMARY_RESID), self.ncol)), "tws_start": np.zeros(self.ncol),
                    "store_begin": np.zeros((len(STORES), self.ncol)),
                    "del_acc": np.zeros((len(STORES), self.ncol))}

    def start_storages(self, state) -> None:
        """Collective: the water storages at the experiment start (begin of the first output interval)."""
        if not self.ends:
            return
        st = self.share.gather(storages(*state_diagnostics(state)))
        if self.comm.is_root:
            self.acc["store_begin"][:] = st

    def process(self, diag, t0: _dt.datetime, t1: _dt.datetime, end_state=None, post_state=None) -> None:
        """Collective: one window's output. ``end_state``: the forecast state at ``t1`` (before the analysis),
        ``post_state``: the state the next window starts from (after the analysis); both needed only when
        end-of-interval states or storage changes are written."""
        d, ds = diag.diag, diag.diag_soil  # (ND, nout, n), (NDS, nl, nout, n)
        sw = getattr(diag, "swdown", None)  # (nout, n) downward shortwave over the same blocks
        end_d = end_ds = None
        if self.inner_ends:  # state rows at the end of every interval, recorded by the forecast
            end_d, end_ds = diag.end
        nout = d.shape[1]
        start = self.s.start
        closes = (t1 - start).total_seconds() % self.osec == 0
        # records of this window (local)
        if self.instant:
            if self.osec <= self.win:
                idx = np.arange(self.k - 1, nout, self.k)
            else:
                idx = np.array([nout - 1]) if closes else np.array([], int)
            rec_d, rec_ds = d[:, idx], ds[:, :, idx]
            rec_sw = None if sw is None else sw[idx]
            if self.osec <= self.win:
                end_d, end_ds = rec_d, rec_ds
        elif self.osec <= self.win:
            rec_d, rec_ds, rec_sw = d, ds, sw
        else:
            rec_d, rec_ds = d[:, :0], ds[:, :, :0]
            rec_sw = None
        if self.ends and end_d is None:  # one interval ends with this window: the state at its end
            sd, sds = state_diagnostics(end_state)
            end_d, end_ds = sd[:, None], sds[:, :, None]
        wm_d = block_mean(d, 1)
        wm_ds = block_mean(ds, 2)
        wm_sw = None if sw is None else block_mean(sw, 0)
        maxabs = np.stack([np.abs(d[getattr(L, n)]).max(axis=0) for n in self.SUMMARY_RESID])
        g = self.share.gather
        if rec_d.shape[1]:  # the same decision on every rank (it depends on time only)
            rec_d, rec_ds = g(np.asfortranarray(rec_d)), g(np.asfortranarray(rec_ds))
            rec_sw = None if rec_sw is None else g(np.ascontiguousarray(rec_sw))
        wm_d, wm_ds, maxabs = g(wm_d), g(wm_ds), g(maxabs)
        wm_sw = None if wm_sw is None else g(wm_sw)
        if self.ends:
            end_d, end_ds = g(np.asfortranarray(end_d)), g(np.asfortranarray(end_ds))
            post = g(storages(*state_diagnostics(post_state)))
        if not self.comm.is_root:
            return
        a = self.acc
        a["sum_d"] += wm_d
        a["sum_ds"] += wm_ds
        a["g_sum_n"] += 1
        np.maximum(a["maxabs"], maxabs, out=a["maxabs"])
        # storage changes of the model over each interval (analysis increments excluded)
        dels = []
        if self.ends:
            ends = [storages(end_d[:, i], end_ds[:, :, i]) for i in range(end_d.shape[1])]
            if self.osec <= self.win:
                begin = a["store_begin"]
                for e in ends:
                    dels.append(e - begin)
                    begin = e
            else:
                a["del_acc"] += ends[-1] - a["store_begin"]
                if closes:
                    dels.append(a["del_acc"].copy())
                    a["del_acc"][:] = 0.0
            a["store_begin"][:] = post
        if self.writer is None:
            return

        def bundle(md, mds, msw, i):
            return Inputs(md, mds, self.writer.dz, end_d=None if end_d is None else end_d[:, i],
                          end_ds=None if end_ds is None else end_ds[:, :, i], swdown=msw,
                          dels=dels[i] if dels else None)

        if self.instant or self.osec <= self.win:
            nrec = rec_d.shape[1]
            for i in range(nrec):
                if self.instant and self.osec > self.win:
                    tend = t1
                else:
                    tend = t0 + _dt.timedelta(seconds=(i + 1) * self.osec)
                self.writer.add(tend, tend - _dt.timedelta(seconds=self.osec),
                                bundle(rec_d[:, i], rec_ds[:, :, i], None if rec_sw is None else rec_sw[i], i))
        else:
            a["out_d"] += wm_d
            a["out_ds"] += wm_ds
            if wm_sw is not None:
                a["out_sw"] += wm_sw
            a["g_out_n"] += 1
            if closes:
                m = a["g_out_n"][0]
                self.writer.add(t1, t1 - _dt.timedelta(seconds=self.osec),
                                bundle(a["out_d"] / m, a["out_ds"] / m, a["out_sw"] / m if wm_sw is not None
                                       else None, -1))
                a["out_d"][:] = 0.0
                a["out_ds"][:] = 0.0
                a["out_sw"][:] = 0.0
                a["g_out_n"][:] = 0.0
        self.writer.flush(now=t1)

    def summary(self, inputs, state_end: ColumnState | None, status: RunStatus, analysed: bool = False) -> dict:
        """Run summary (rank 0): area-weighted land means over the experiment and balance checks (the water budget
        of the run only when no analysis changed the state: ``analysed`` False)."""
        a = self.acc
        n = max(a["g_sum_n"][0], 1.0)
        md = a["sum_d"] / n
        mds = a["sum_ds"] / n
        w = inputs.area if inputs.area is not None else np.cos(np.deg2rad(inputs.lat))
        w = w / w.sum()

        def gm(x):
            return float((w * x).sum())

        day = 86400.0
        dz = inputs.params.dz_soil
        top = mds[L.DS_SOILMOIST, 0] - mds[L.DS_SOILICE, 0]
        theta_top = (top / DENH2O + mds[L.DS_SOILICE, 0] / DENICE) / dz[0]
        means = {
            "Precip": (gm((md[L.D_RAINF] + md[L.D_SNOWF]) * day), "kg m-2 d-1"),
            "Evap": (gm(md[L.D_EVAP] * day), "kg m-2 d-1"),
            "Runoff": (gm((md[L.D_QS] + md[L.D_QSB]) * day), "kg m-2 d-1"),
            "Qle": (gm(md[L.D_QLE]), "W m-2"),
            "Qh": (gm(md[L.D_QH]), "W m-2"),
            "Qg": (gm(md[L.D_QG]), "W m-2"),
            "SWnet": (gm(md[L.D_SWNET]), "W m-2"),
            "AvgSurfT": (gm(md[L.D_AVGSURFT]), "K"),
            "SoilMoistV_1": (gm(theta_top), "m3 m-3"),
            "SWE": (gm(md[L.D_SWE]), "kg m-2"),
            "TWS": (gm(md[L.D_TWS]), "kg m-2"),
        }
        bal = {
            "WaterBalErr (core)": (float(a["maxabs"][0].max()), "kg m-2 s-1", "water balance residual per step"),
            "EnergyBalErr (core)": (float(a["maxabs"][1].max()), "W m-2", "surface energy balance residual"),
            "SoilHeatErr (core)": (float(a["maxabs"][2].max()), "W m-2", "snow/soil heat balance residual"),
        }
        if state_end is not None and not analysed:
            dS = total_water(state_end) - a["tws_start"]
            net = (md[L.D_RAINF] + md[L.D_SNOWF] - md[L.D_EVAP] - md[L.D_QS] - md[L.D_QSB]) * self.win * n
            bal["water budget of run"] = (float(np.abs(dS - net).max()), "kg m-2",
                                          "|storage change - (P - E - Qs - Qsb) dt| over the experiment")
        return {"global_means": means, "balance": bal}


# ---------------------------------------------------------------------------------------------------------------
# this rank's share of the columns, and dynamic load balancing


class Share:
    """This rank's contiguous block of the run's columns: its state and everything sliced from the inputs for it.

    With an ensemble (``nmem`` > 1) the state holds every member of every local column as flat columns
    (:mod:`colmda.ensemble`: ``flat = local_column * nmem + member``), and ``params`` is repeated to match; a rank
    owns all members of its columns, so moving a block of columns moves its members with it (``flat_decomp`` is
    the column decomposition scaled by ``nmem``). ``carry`` holds the analysis method's per-column arrays
    (``(..., ncol_local)``) and ``members`` the driver's per-member ones (``(..., ncol_local * nmem)``, e.g. the
    state perturbations): both move with their columns and go into the restart files.

    :meth:`rebalance` moves the block boundaries so that every rank spends about the same time in the core: rank 0
    keeps a per-column cost estimate (the core time of a block spread evenly over its columns, smoothed over
    windows), and when the slowest rank is clearly slower than the average, new contiguous blocks of equal
    estimated cost are computed and the state is moved (gather on rank 0, scatter). Columns are independent and all
    reductions over columns are done on gathered arrays, so moving columns never changes a result.
    """

    SMOOTH = 0.5  # weight of the newest window in the cost estimate
    TRIGGER = 1.05  # rebalance when max(rank time) / mean(rank time) exceeds this ...
    GAIN = 0.02  # ... and the new blocks are predicted to lower that ratio by at least this much

    def __init__(self, comm, inputs, decomp: Decomposition, nmem: int = 1):
        self.comm = comm
        self.inputs = inputs
        self.nmem = int(nmem)
        self.cost = None  # (ncol,) estimated core seconds per column and window (rank 0 only)
        self.rebalances = 0
        self.state: ColumnState | None = None
        self.carry: dict[str, np.ndarray] = {}
        self.members: dict[str, np.ndarray] = {}
        self.core_seconds = 0.0  # core time of this rank since the last rebalance check
        self.assign(decomp)

    def assign(self, decomp: Decomposition) -> None:
        self.decomp = decomp
        self.flat_decomp = Decomposition(decomp.ncol * self.nmem, tuple(n * self.nmem for n in decomp.counts))
        sl = decomp.slice(self.comm.rank)
        self.local = np.arange(sl.start, sl.stop)
        inp = self.inputs
        self.params = inp.params.take(ens.repeat_columns(self.local, self.nmem))
        self.lai_m = np.asfortranarray(inp.lai_monthly[:, self.local])
        self.sai_m = np.asfortranarray(inp.sai_monthly[:, self.local])

    def gather(self, a):
        """Per-column array (..., ncol_local) -> global (..., ncol) on rank 0."""
        return self.comm.gather_columns(a, self.decomp)

    def gather_flat(self, a):
        """Per-member array (..., ncol_local * nmem) -> global (..., ncol * nmem) on rank 0."""
        return self.comm.gather_columns(a, self.flat_decomp)

    def gather_state(self) -> dict:
        return {k: self.gather_flat(v) for k, v in self.state.arrays().items()}

    def mean_state(self) -> ColumnState:
        """The member mean of the state (the state itself for one member): what the history shows."""
        return ens.mean_state(self.state, self.nmem)

    def scatter_state(self, glob: ColumnState | None) -> None:
        c = self.comm
        self.state = ColumnState(**{k: c.scatter_columns(getattr(glob, k) if c.is_root else None,
                                                         self.flat_decomp)
                                    for k in ("t_soisno", "wliq_soisno", "wice_soisno", "dz_snow", "cstate")})

    def scatter_arrays(self, carry: dict | None, members: dict | None) -> None:
        """Collective: the per-column and per-member arrays from global ones on rank 0 (names from rank 0)."""
        c = self.comm
        names = c.bcast((sorted(carry or {}), sorted(members or {})) if c.is_root else None)
        self.carry = {k: c.scatter_columns(carry[k] if c.is_root else None, self.decomp) for k in names[0]}
        self.members = {k: c.scatter_columns(members[k] if c.is_root else None, self.flat_decomp)
                        for k in names[1]}

    def gather_arrays(self) -> tuple[dict, dict]:
        """Collective: (per-column, per-member) arrays as global arrays on rank 0."""
        return ({k: self.gather(v) for k, v in sorted(self.carry.items())},
                {k: self.gather_flat(v) for k, v in sorted(self.members.items())})

    def rebalance(self) -> bool:
        """Collective: check the core times of all ranks since the last check and move columns if worth it."""
        c = self.comm
        if c.size == 1:
            return False
        times = c.gather(self.core_seconds)
        self.core_seconds = 0.0
        new_counts = None
        if c.is_root:
            t = np.asarray(times, dtype=float)
            counts = np.asarray(self.decomp.counts)
            density = np.repeat(t / np.maximum(counts, 1), counts)
            self.cost = density if self.cost is None else (1 - self.SMOOTH) * self.cost + self.SMOOTH * density
            ratio = t.max() / max(t.mean(), 1e-12)
            if ratio > self.TRIGGER and np.all(self.cost > 0):
                cand = decompose(self.decomp.ncol, c.size, weights=self.cost)
                loads = np.array([self.cost[cand.slice(r)].sum() for r in range(c.size)])
                old = np.array([self.cost[self.decomp.slice(r)].sum() for r in range(c.size)])
                predicted, current = loads.max() / loads.mean(), old.max() / old.mean()
                if cand.counts != self.decomp.counts and predicted < min(ratio, current) - self.GAIN and \
                        min(cand.counts) > 0:
                    new_counts = cand.counts
        new_counts = c.bcast(new_counts)
        if new_counts is None:
            return False
        self.move(new_counts)
        return True

    def move(self, counts) -> None:
        """Collective: new block sizes ``counts`` (same on every rank); the state follows its columns."""
        glob = self.gather_state()
        carry, members = self.gather_arrays()
        self.assign(Decomposition(self.decomp.ncol, tuple(int(n) for n in counts)))
        self.scatter_state(ColumnState(**glob) if self.comm.is_root else None)
        self.scatter_arrays(carry, members)
        self.rebalances += 1
        if self.comm.is_root:
            log.debug("rebalanced columns over ranks: %s", list(self.decomp.counts))


# ---------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class RunResult:
    rundir: Path
    status: RunStatus
    history_files: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class HookMethod(AnalysisMethod):
    """Testing aid: ``run(..., analysis=fn)`` calls ``fn(ctx)`` at every window end instead of the namelist's
    method; ``fn`` returns None (no analysis) or an :class:`colmda.assim.base.Analysis`, or raises."""

    name = "hook"

    def __init__(self, fn):
        super().__init__(None, None, None)
        self.fn = fn
        self.changes_state = False  # until the hook returns an analysis

    def analyse(self, ctx, request, forecast):
        out = self.fn(ctx)
        if out is not None and not isinstance(out, Analysis):
            raise TypeError(f"analysis hook {self.fn!r} returned {type(out).__name__}, expected None or an Analysis "
                            f"(increments go through colmda.assim.consistency)")
        self.changes_state = self.changes_state or out is not None
        return out


def run(settings: Settings, *, resume: bool = False, overwrite: bool = False, inputs=None, analysis=None, comm=None,
        progress: bool = True, namelist_path=None) -> RunResult:
    """Run the experiment described by ``settings`` on this process's share of the columns.

    ``inputs`` (a :class:`colmda.setup.RunInputs`) defaults to what :func:`colmda.setup.build_inputs` makes of the
    settings; tests pass synthetic ones. ``analysis`` (testing aid) replaces the method of ``&assimilation method``:
    an :class:`~colmda.assim.base.AnalysisMethod` instance or a function ``fn(ctx)`` (:class:`HookMethod`).
    A fresh start (not ``resume``) over an earlier run of the experiment is refused unless ``overwrite``; the run
    holds the experiment's lock on the run directory throughout (:mod:`colmda.rundir`).
    """
    comm = comm or get_comm()
    with Session(comm, settings, resume=resume, overwrite=overwrite, namelist_path=namelist_path) as session:
        cycle = Cycle(session, settings, comm, resume=resume, inputs=inputs, analysis=analysis, progress=progress,
                      namelist_path=namelist_path)
        cycle.spin_up()
        cycle.experiment()
        return cycle.finish()


class Cycle:
    """One run on this process: set-up at construction, then :meth:`spin_up`, :meth:`experiment`, :meth:`finish`."""

    def __init__(self, session: Session, settings: Settings, comm, *, resume: bool, inputs, analysis, progress: bool,
                 namelist_path):
        s = self.s = settings
        self.comm = comm
        self.session = session
        self.timer = session.timer = Timer()
        self.progress = progress
        self.rundir = s.output_directory
        self.restart_dir = self.rundir / "restart"
        self.dt = s.dt
        self.nsteps = s.steps_per_window
        self.win = _dt.timedelta(seconds=s.window_seconds)
        self.delay = float(os.environ.get(DEBUG_DELAY_ENV, "0") or 0)
        self.fingerprint = s.fingerprint()
        self.last_restart = None
        if s.parallel.omp_threads:
            os.environ["OMP_NUM_THREADS"] = str(s.parallel.omp_threads)
        with self.timer("setup"):
            if inputs is None:
                from .setup import build_inputs

                inputs = collective(comm, lambda: build_inputs(s))
            self.inputs = inputs
            self.ncol = inputs.ncol
            if self.ncol < comm.size:
                raise UserError(f"{s.source}: {self.ncol} column(s) cannot be shared by {comm.size} MPI ranks; use "
                                f"mpiexec -n {max(self.ncol, 1)} or fewer")
            self.nmem = s.assimilation.n_members
            self.sh = Share(comm, inputs, decompose(self.ncol, comm.size), self.nmem)
            rdata, resumed_from = self.initial_state(resume)
            # the analysis method reads its inputs (observations, fields) now, so that bad ones stop the run here
            self.method = self.analysis_method(analysis)
            for name, (shape, value) in getattr(self.method, "carry", {}).items():  # absent from a restart: start
                if name not in self.sh.carry:
                    self.sh.carry[name] = np.full(tuple(shape) + (len(self.sh.local),), float(value))
            self.perturbation = ens.StatePerturbation.from_settings(s)
            # inputs are good: now an earlier run's files may go (--overwrite)
            session.delete_earlier()
            self.output_machinery(rdata, resumed_from, namelist_path)
            self.simulation = None  # the observation simulator of a truth run
            if s.observations.simulate:
                from .obs.truth import TruthObserver

                self.simulation = collective(comm, lambda: TruthObserver(s, inputs, comm, self.rundir / "obs",
                                                                         self.sh))
                if resume:
                    self.simulation.discard_after(self.status.seq)
                elif comm.is_root:
                    self.simulation.clear()

    # ---- set-up

    def load_restart_collective(self, path_fn, check):
        comm = self.comm

        def rd():
            if not comm.is_root:
                return None
            p = path_fn()
            data = read_restart(p)
            check(p, data)
            return p, data

        got = collective(comm, rd)
        path = comm.bcast(got[0] if got else None)
        data = got[1] if got else None
        return path, data

    def initial_state(self, resume: bool):
        """The run status and this rank's initial state: the newest usable restart (resume), the state of
        ``&experiment initial_restart`` or a cold start. Returns (restart data on rank 0, path resumed from)."""
        s, comm, sh, inputs = self.s, self.comm, self.sh, self.inputs
        rdata = None
        resumed_from = None
        if resume:
            def check(p, data):
                old = data.attrs.get("fingerprint")
                new = s.fingerprint()
                if old is not None and json_norm(old) != json_norm(new):
                    diff = settings_diff(old, new)
                    raise UserError(f"{p}: the restart was written with different settings ({diff}); resume with "
                                    f"the namelist of the original run (only &experiment end, "
                                    f"&output directory and &parallel omp_threads may change)")
                if not np.array_equal(data.column, inputs.column):
                    raise UserError(f"{p}: the restart holds {len(data.column)} columns, not the "
                                    f"{len(inputs.column)} columns this namelist selects")
                if data.n_members != self.nmem:
                    raise UserError(f"{p}: the restart holds {data.n_members} member(s) per column but "
                                    f"&assimilation n_members = {self.nmem}")

            got = collective(comm, lambda: find_resume_restart(self.restart_dir, s.experiment.name, check)
                             if comm.is_root else None)
            resumed_from = comm.bcast(got[0] if got else None)
            rdata = got[1] if got else None
            self.status = comm.bcast(rdata.status if comm.is_root else None)
            sh.scatter_state(rdata.state if comm.is_root else None)
            sh.scatter_arrays({k[len(CARRY):]: v for k, v in rdata.arrays.items() if k.startswith(CARRY)}
                              if comm.is_root else None, rdata.members if comm.is_root else None)
            if comm.is_root:
                log.info("resuming from %s (%s, %s)", resumed_from, self.status.phase, format_date(self.status.time))
            return rdata, resumed_from
        spinup = s.experiment.spinup_max_cycles > 0
        self.status = RunStatus("spinup" if spinup else "experiment", 0, s.spinup_start if spinup else s.start)
        if s.experiment.initial_restart:
            def check0(p, data):
                missing = np.setdiff1d(inputs.column, data.column)
                if len(missing):
                    raise UserError(f"&experiment initial_restart = '{p}': {len(missing)} of the run's columns "
                                    f"are not in the file (first global column {missing[0]})")
                if data.n_members not in (1, self.nmem):
                    raise UserError(f"&experiment initial_restart = '{p}': the file holds {data.n_members} "
                                    f"members per column; expected 1 (every member starts from it) or "
                                    f"&assimilation n_members = {self.nmem}")

            _, d0 = self.load_restart_collective(lambda: Path(s.experiment.initial_restart), check0)
            if comm.is_root:  # the run's columns (with their members) in the run's order
                pos = np.searchsorted(d0.column, inputs.column)
                if d0.n_members == 1:
                    glob = d0.state.take(pos).repeat(self.nmem)
                else:
                    glob = d0.state.take(ens.flat_index(pos[:, None], np.arange(self.nmem)[None, :],
                                                        self.nmem).ravel())
            sh.scatter_state(glob if comm.is_root else None)
        else:
            tinit = s.experiment.init_soil_temperature
            if tinit == 0:
                tinit = ens.repeat_columns(inputs.t_clim[sh.local], self.nmem) if inputs.t_clim is not None \
                    else 283.15
            sh.state = initial_state(sh.params, temperature=tinit, saturation=s.experiment.init_saturation)
        return rdata, resumed_from

    def output_machinery(self, rdata, resumed_from, namelist_path) -> None:
        """History writer and accumulators (rank 0), the output stage, the manifest."""
        s, comm, inputs, rundir = self.s, self.comm, self.inputs, self.rundir
        self.writer = None
        if comm.is_root:
            remove_own_temporaries(rundir, s.experiment.name)
            from .config import parse_period

            grid = OutputGrid.for_columns(s.output_layout, inputs.column, inputs.grid_lat, inputs.grid_lon,
                                          names=inputs.names, point_lat=inputs.point_lat if
                                          s.output_layout == "points" else None,
                                          point_lon=inputs.point_lon if s.output_layout == "points" else None)
            self.writer = HistoryWriter(rundir / "history", experiment=s.experiment.name,
                                        variables=resolve_variables(s.output.variables), grid=grid,
                                        dz_soil=self.sh.params.dz_soil, averaging=s.output.averaging,
                                        frequency=s.output.frequency, period=parse_period(s.output.file_period),
                                        origin=s.start, precision=s.output.precision, complevel=s.output.complevel,
                                        attrs={"forcing_source": s.forcing.source, "forcing_seed": s.forcing.seed,
                                               **input_check_attrs(inputs)})
        self.stage = OutputStage(s, comm, self.sh, self.writer, self.ncol)
        if comm.is_root and rdata is not None:
            for k, v in rdata.arrays.items():
                if k in self.stage.acc:
                    self.stage.acc[k][...] = v
            self.writer.restore_pending(rdata.pending)
        self.manifest = None
        if comm.is_root:
            m = self.manifest = Manifest(rundir, s, ranks=comm.size, namelist=namelist_path,
                                         resumed_from=resumed_from)
            for role, path in inputs.input_files:
                m.add_input(path, role)
            if s.experiment.initial_restart:
                m.add_input(s.experiment.initial_restart, "initial_restart")
            (rundir / "namelist.nml").write_text(s.to_namelist())
            m.extra["columns"] = self.ncol
            m.extra["n_windows"] = s.n_windows
            m.extra["decomposition_initial"] = list(self.sh.decomp.counts)
            m.write("running", self.timer)
            self.session.manifest = m

    def analysis_method(self, analysis) -> AnalysisMethod:
        """The registered method of ``&assimilation method`` (built on every rank), or the testing hook."""
        if analysis is not None:
            return analysis if isinstance(analysis, AnalysisMethod) else HookMethod(analysis)
        cls = methods.get(self.s.assimilation.method, self.s.source)
        return collective(self.comm, lambda: cls(self.s, self.inputs, self.comm))

    # ---- forecast

    def forecast(self, t0: _dt.datetime, nper: int, request: ForecastRequest | None = None, observe=None,
                 ends: bool = False) -> Forecast:
        """Advance this rank's columns over the window starting at ``t0``. Without extra columns or records: one
        core call (one per block of ``nper`` steps with ``ends``). Otherwise step by step, with the request's extra
        columns batched into the same core calls and the record functions (the request's and ``observe``) called
        after every step. ``ends``: the diagnostics also carry ``end`` = the state rows at the end of every block
        (history states)."""
        s, sh, inputs, timer = self.s, self.sh, self.inputs, self.timer
        local, params = sh.local, sh.params
        with timer("forcing"):
            forc = inputs.forcing.window(t0, self.nsteps, local)
            if s.forcing.perturb:  # every member its own realisation, keyed by global column, member and time
                from .setup import perturb_window

                forc = perturb_window(forc, s, inputs.column[local], t0, self.dt, getattr(inputs, "domain", None),
                                      self.nmem)
            elif self.nmem > 1:
                forc = np.asfortranarray(ens.repeat_columns(forc, self.nmem))
            if s.forcing.precip_scale != 1.0:
                forc[L.F_PREC] *= s.forcing.precip_scale
        tmid = t0 + self.win / 2
        params.colpar[L.CP_LAI] = ens.repeat_columns(interpolate_monthly(sh.lai_m, tmid), self.nmem)
        params.colpar[L.CP_SAI] = ens.repeat_columns(interpolate_monthly(sh.sai_m, tmid), self.nmem)
        extra = request.extra if request is not None else None
        records = [f for f in ((request.record if request is not None else None), observe) if f is not None]
        with timer("core"):
            t_core = time.perf_counter()
            try:
                if extra is None and not records and not ends:
                    out = Forecast(advance(sh.state, params, forc, self.dt, hydr_model=s.model.hydr_model,
                                           nper=nper))
                elif extra is None and not records:
                    out = Forecast(self._blockwise(forc, params, nper))
                else:
                    out = self._stepwise(forc, params, nper, extra,
                                         request.extra_positions if extra is not None else None, records, ends)
                # downward shortwave over the same blocks as the diagnostics (weights of the Albedo mean)
                sw = forc[L.F_SWDOWN]
                out.diagnostics.swdown = block_mean(sw.reshape(-1, nper, sw.shape[-1]), 1)
                return out
            except CoreError as exc:
                bad = local[exc.columns]
                raise RuntimeError(f"column core failed at {format_date(t0)} (window start) in {len(bad)} "
                                   f"column(s); first: global column {inputs.column[bad[0]]} at lat "
                                   f"{inputs.lat[bad[0]]:.3f} lon {inputs.lon[bad[0]]:.3f}, step "
                                   f"{int(exc.steps[0])}") from exc
            finally:
                sh.core_seconds += time.perf_counter() - t_core

    def _blockwise(self, forc, params, nper) -> Diagnostics:
        """One core call per block of ``nper`` steps (the core keeps no state between calls, so the results are
        those of one call), with the state rows recorded at the end of every block."""
        sh = self.sh
        nout = self.nsteps // nper
        parts = []
        end_d = np.empty((L.ND, nout, sh.state.ncol))
        end_ds = np.empty((L.NDS, L.NL_SOIL, nout, sh.state.ncol))
        for i in range(nout):
            try:
                parts.append(advance(sh.state, params, forc[:, i * nper:(i + 1) * nper], self.dt,
                                     hydr_model=self.s.model.hydr_model, nper=nper))
            except CoreError as exc:
                raise CoreError(exc.columns, exc.steps + i * nper) from exc
            end_d[:, i], end_ds[:, :, i] = state_diagnostics(sh.state)
        diag = Diagnostics(np.concatenate([p.diag for p in parts], axis=1),
                           np.concatenate([p.diag_soil for p in parts], axis=2))
        diag.end = (end_d, end_ds)
        return diag

    def _stepwise(self, forc, params, nper, extra, extra_positions, records, ends=False) -> Forecast:
        sh = self.sh
        nsteps = self.nsteps
        nloc = sh.state.ncol
        if extra is not None:
            idx = np.concatenate([np.arange(nloc), np.asarray(extra_positions, dtype=np.int64)])
            batch = ColumnState.concatenate([sh.state, extra])
            bparams = params.take(idx)
        else:
            idx, batch, bparams = None, sh.state, params
        nout = nsteps // nper
        d = np.zeros((L.ND, nout, nloc), order="F")
        ds = np.zeros((L.NDS, L.NL_SOIL, nout, nloc), order="F")
        snaps = []
        end_d = np.empty((L.ND, nout, nloc)) if ends else None
        end_ds = np.empty((L.NDS, L.NL_SOIL, nout, nloc)) if ends else None
        for k in range(nsteps):
            fk = forc[:, k:k + 1] if idx is None else forc[:, k:k + 1][:, :, idx]
            try:
                dk = advance(batch, bparams, fk, self.dt, hydr_model=self.s.model.hydr_model, nper=1)
            except CoreError as exc:  # report the background column behind a failing extra column
                cols = exc.columns if idx is None else idx[exc.columns]
                raise CoreError(cols, exc.steps + k) from exc
            p = k // nper
            d[:, p] += dk.diag[:, 0, :nloc]
            ds[:, :, p] += dk.diag_soil[:, :, 0, :nloc]
            if ends and (k + 1) % nper == 0:  # the background's state rows at the end of the block
                sd, sds = state_diagnostics(batch)
                end_d[:, p], end_ds[:, :, p] = sd[:, :nloc], sds[:, :, :nloc]
            snap = {}
            for f in records:
                snap.update(f(batch))
            snaps.append(snap)
        d /= nper
        ds /= nper
        stacked = {key: np.stack([sn[key] for sn in snaps]) for key in snaps[0]} if records else None
        extra_end = None
        if extra is not None:
            sh.state = batch.take(np.arange(nloc))
            extra_end = batch.take(np.arange(nloc, batch.ncol))
        diag = Diagnostics(d, ds)
        if ends:
            diag.end = (end_d, end_ds)
        return Forecast(diag, extra_end, stacked)

    # ---- bookkeeping between windows

    def balance(self) -> None:
        with self.timer("balance"):
            self.sh.rebalance()

    def save_restart(self, label: str):
        s, comm, status = self.s, self.comm, self.status
        if self.simulation is not None:
            with self.timer("simulate"):
                self.simulation.flush(status.seq)
        with self.timer("restart"):
            gathered = self.sh.gather_state()
            carry, members = self.sh.gather_arrays()
            if comm.is_root:
                arrays = dict(self.stage.acc)
                arrays.update({CARRY + k: v for k, v in carry.items()})
                data = RestartData(status=status, column=self.inputs.column, state=ColumnState(**gathered),
                                   arrays=arrays, pending=self.writer.pending_arrays(),
                                   attrs={"fingerprint": self.fingerprint, "experiment_seed": s.experiment.seed,
                                          "forcing_seed": s.forcing.seed, "experiment": s.experiment.name},
                                   n_members=self.nmem, members=members)
                p = write_restart(restart_path(self.restart_dir, s.experiment.name, status.seq, label), data)
                log.debug("restart written: %s", p)
                self.session.last_restart = p
                self.last_restart = p
                return p
        return None

    # ---- spin-up

    def spin_up(self) -> None:
        """Cycle the spin-up period (forecasts only) until converged or ``spinup_max_cycles``."""
        s, comm, sh, status = self.s, self.comm, self.sh, self.status
        if status.phase != "spinup":
            return
        dz = sh.params.dz_soil
        nsw = s.spinup_windows
        tol = s.experiment.spinup_tolerance
        maxc = s.experiment.spinup_max_cycles
        if comm.is_root:
            log.info("spin-up: up to %d cycle(s) of %s .. %s (%d windows each), tolerance %.1e m3 m-3", maxc,
                     format_date(s.spinup_start), format_date(s.spinup_end), nsw, tol)
        with self.timer("spinup"), Progress(nsw * (maxc - status.spinup_cycles), "spin-up", rank=comm.rank,
                                            enabled=self.progress, work_per_unit=self.ncol * self.nsteps) as bar:
            while status.phase == "spinup":
                ref = sh.gather_flat(vol_soil_moisture(sh.state, dz))
                self.session.position = f"spin-up cycle {status.spinup_cycles + 1}"
                for w in range(nsw):
                    self.forecast(s.spinup_start + w * self.win, self.nsteps)
                    self.balance()
                    bar.update(1, date=s.spinup_start + (w + 1) * self.win, cycle=status.spinup_cycles + 1)
                end = sh.gather_flat(vol_soil_moisture(sh.state, dz))
                change = comm.bcast(float(np.abs(end - ref).max()) if comm.is_root else None)
                status.spinup_cycles += 1
                status.spinup_last_change = change
                status.spinup_converged = change < tol
                status.seq += nsw
                if comm.is_root:
                    log.info("spin-up cycle %d: largest soil moisture change %.3e m3 m-3%s", status.spinup_cycles,
                             change, " (converged)" if status.spinup_converged else "")
                if status.spinup_converged or status.spinup_cycles >= maxc:
                    if not status.spinup_converged and comm.is_root:
                        log.warning("spin-up did not converge in %d cycles (last change %.3e > tolerance %.1e)",
                                    maxc, change, tol)
                    status.phase = "experiment"
                    status.time = s.start
                    status.window_index = 0
                self.save_restart(f"spinup-cycle{status.spinup_cycles:03d}")

    # ---- the experiment windows

    def experiment(self) -> None:
        s, comm, sh, status = self.s, self.comm, self.sh, self.status
        if status.window_index == 0:
            mean = sh.mean_state()
            tws = sh.gather(total_water(mean))
            if comm.is_root:
                self.stage.acc["tws_start"][:] = tws
            self.stage.start_storages(mean)
        self.first_window = status.window_index
        n_windows = s.n_windows
        if comm.is_root:
            log.info("experiment: %s .. %s, %d window(s) of %g h, %d column(s) on %d rank(s)", format_date(s.start),
                     format_date(s.end), n_windows, s.assimilation.window_hours, self.ncol, comm.size)
        with self.timer("experiment"), Progress(n_windows - self.first_window, "experiment", rank=comm.rank,
                                                enabled=self.progress, work_per_unit=self.ncol * self.nsteps) as bar:
            for w in range(self.first_window, n_windows):
                self.session.position = f"experiment window {w + 1} of {n_windows}"
                self.window(w)
                bar.update(1, date=status.time)

    def context(self, w: int, t0: _dt.datetime, t1: _dt.datetime) -> AnalysisContext:
        sh, inputs = self.sh, self.inputs
        loc = sh.local
        return AnalysisContext(self.s, self.comm, sh.decomp, w, t0, t1, sh.state, sh.params, inputs.column[loc],
                               inputs.lat[loc], inputs.lon[loc], None, self.nmem, inputs, sh.carry)

    def window(self, w: int) -> None:
        """One window: forecast -> analysis -> consistency -> output -> restart."""
        s, sh, stage, timer, method = self.s, self.sh, self.stage, self.timer, self.method
        t0 = s.start + w * self.win
        t1 = t0 + self.win
        if self.perturbation is not None:
            with timer("analysis"):
                self.perturb_state(w)
        ctx = self.context(w, t0, t1)
        request = method.plan(ctx)
        observe = self.simulation.snapshot if self.simulation is not None else None
        forecast = self.forecast(t0, stage.nper, request, observe, ends=stage.inner_ends)
        if self.delay:
            time.sleep(self.delay)
        if self.simulation is not None:
            with timer("simulate"):
                self.simulation.window(sh.local, t0, forecast.records)
        end_state = sh.mean_state().copy() if stage.ends else None  # the forecast at t1, before the analysis
        with timer("analysis"):
            ctx.state, ctx.diagnostics = sh.state, forecast.diagnostics
            analysis = method.analyse(ctx, request, forecast)
            if analysis is not None:
                report = apply_increment(sh.state, sh.params, analysis.columns, analysis.increment)
                if analysis.state_increments:
                    report.state = apply_state_increments(sh.state, analysis.columns, **analysis.state_increments)
                method.write_diagnostics(ctx, analysis, report)
        with timer("output"):
            stage.process(self.member_mean(forecast.diagnostics), t0, t1, end_state, sh.mean_state())
        self.balance()
        status = self.status
        status.window_index = w + 1
        status.seq += 1
        status.time = t1
        if w + 1 < s.n_windows and s.restart_seconds and (t1 - s.start).total_seconds() % s.restart_seconds == 0:
            self.save_restart(t1.strftime("%Y-%m-%dT%H%M"))

    def perturb_state(self, w: int) -> None:
        """The ensemble's AR(1) state perturbations of window ``w`` (:class:`colmda.ensemble.StatePerturbation`),
        through the consistency layer."""
        sh, pert = self.sh, self.perturbation
        a, inc = pert.step(sh.members.get("state_perturbation"), self.s.experiment.seed, w,
                           self.inputs.column[sh.local], self.nmem)
        sh.members["state_perturbation"] = a
        apply_increment(sh.state, sh.params, np.arange(sh.state.ncol), inc)

    def member_mean(self, diag: Diagnostics) -> Diagnostics:
        """The diagnostics of the history: the member mean of an ensemble's (the diagnostics themselves for one
        member)."""
        if self.nmem == 1:
            return diag
        n = self.nmem
        out = Diagnostics(np.asfortranarray(ens.member_mean(diag.diag, n)),
                          np.asfortranarray(ens.member_mean(diag.diag_soil, n)))
        if getattr(diag, "swdown", None) is not None:
            out.swdown = ens.member_mean(diag.swdown, n)
        if getattr(diag, "end", None) is not None:
            out.end = tuple(ens.member_mean(x, n) for x in diag.end)
        return out

    # ---- the end

    def finish(self) -> RunResult:
        """Final restart (with the open file period's records), last history file, summary, manifest."""
        s, comm, sh, status, timer = self.s, self.comm, self.sh, self.status, self.timer
        self.session.position = "the end of the run (final restart and output)"
        if self.first_window < s.n_windows or self.last_restart is None:
            self.save_restart(status.time.strftime("%Y-%m-%dT%H%M"))
        mean_end = sh.mean_state()
        gathered_end = {k: sh.gather(v) for k, v in mean_end.arrays().items()}
        method_entries = self.method.summary_entries(self.rundir)  # collective
        per_rank = comm.gather({k: round(v, 3) for k, v in timer.seconds.items()})
        result = RunResult(self.rundir, status)
        if not comm.is_root:
            return result
        manifest = self.manifest
        manifest.extra["wall_time_per_rank_s"] = per_rank
        manifest.extra["decomposition_final"] = list(sh.decomp.counts)
        manifest.extra["rebalances"] = sh.rebalances
        last_restart = self.last_restart or latest_restart(self.restart_dir, s.experiment.name)
        with timer("output"):
            self.writer.flush(now=s.end, final=True)
        hist = sorted(str(p) for p in (self.rundir / "history").glob(f"{s.experiment.name}_*.nc"))
        if self.simulation is not None:
            manifest.extra["simulated_observations"] = self.simulation.finish()
        summary = {
            "experiment": s.experiment.name,
            "start": format_date(s.start),
            "end": format_date(s.end),
            "columns": self.ncol,
            "spinup": {"max_cycles": s.experiment.spinup_max_cycles, "cycles": status.spinup_cycles,
                       "converged": status.spinup_converged, "last_change": status.spinup_last_change,
                       "tolerance": s.experiment.spinup_tolerance, "start": format_date(s.spinup_start),
                       "end": format_date(s.spinup_end)},
            "history_files": hist,
            "input_checks": dict(getattr(self.inputs, "checks", {}) or {}),
            "last_restart": str(last_restart) if last_restart else None,
            **self.stage.summary(self.inputs, ColumnState(**gathered_end), status,
                                 self.method.changes_state or self.perturbation is not None),
            **method_entries,
        }
        write_json(self.rundir / SUMMARY, summary)
        manifest.extra["spinup"] = summary["spinup"]
        manifest.extra["outputs"] = {"history": hist, "last_restart": summary["last_restart"]}
        manifest.write("completed", timer)
        result.history_files = hist
        result.summary = summary
        return result


def find_resume_restart(restart_dir: Path, experiment: str, check) -> tuple[Path, RestartData]:
    """The newest restart of ``experiment`` that reads and passes its checks; damaged or invalid newer ones are
    skipped with a warning naming them. ``check(path, data)`` raises UserError for a restart that does not belong
    to this run (different settings): that is never skipped."""
    found = list_restarts(restart_dir, experiment)
    if not found:
        raise UserError(f"--resume: no restart file of experiment '{experiment}' in {restart_dir} (run without "
                        f"--resume to start from the beginning)")
    skipped = []
    for p in reversed(found):
        try:
            data = read_restart(p)
        except UserError as exc:
            log.warning("--resume: skipping %s: %s", p.name, str(exc).split(": ", 1)[-1])
            skipped.append(p)
            continue
        check(p, data)
        if skipped:
            log.warning("--resume: resuming from %s, an older restart, because the newer %s could not be used",
                        p.name, ", ".join(q.name for q in skipped))
        return p, data
    raise UserError(f"--resume: none of the {len(found)} restart file(s) of experiment '{experiment}' in "
                    f"{restart_dir} is usable (newest: {found[-1].name}); start again with --overwrite")


def input_check_attrs(inputs) -> dict:
    """History-file attributes for the input checks that changed what runs (clipped records, nearest land)."""
    checks = getattr(inputs, "checks", {}) or {}
    return {"input_checks": "; ".join(f"{k}: {v}" for k, v in checks.items())} if checks else {}


def json_norm(obj) -> str:
    import json

    return json.dumps(json.loads(obj) if isinstance(obj, str) else obj, sort_keys=True)


def settings_diff(old, new) -> str:
    import json

    a = json.loads(old) if isinstance(old, str) else old
    b = json.loads(new) if isinstance(new, str) else new
    diffs = []
    for g in sorted(set(a) | set(b)):
        for k in sorted(set(a.get(g, {})) | set(b.get(g, {}))):
            if a.get(g, {}).get(k) != b.get(g, {}).get(k):
                diffs.append(f"&{g} {k}: {a.get(g, {}).get(k)!r} -> {b.get(g, {}).get(k)!r}")
    return "; ".join(diffs[:5]) + (" ..." if len(diffs) > 5 else "")
