"""The point-wise SEKF as an analysis method of the cycle (:mod:`colmda.assim.base`).

:class:`SekfMethod` plans the perturbed runs of the columns that have observations in the window (batched with the
background in the same core calls) and the records of the model equivalents after every step (the shared layer
:mod:`colmda.assim.equivalents`: soil moisture retrievals and L-band brightness temperatures); at the window end it
estimates the Jacobians by finite differences and computes the increments with the pure functions of
:mod:`colmda.assim.sekf`. Bounds, frozen layers and the water budget are the consistency layer's
(:mod:`colmda.assim.consistency`); the diagnostics files are written by :class:`colmda.assim.diagnostics.
AnalysisWriter` in the schema :data:`SCHEMA`.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE
from ..core import ColumnState
from ..errors import UserError
from ..timeutil import format_date
from ..keys import Key
from ..obs import operators
from . import sekf
from .equivalents import (SNOW_QC, ModelEquivalents, operator_params, retrieval_weights,  # noqa: F401
                          site_parameters, volumetric_layers)  # SNOW_QC: imported from here by ensemble_filters
from .base import Analysis, AnalysisMethod, ForecastRequest, Variable, register
from .observations import GROSS_ERROR, MODEL_QC, USED, ObservationSet, WindowObservations, check_settings
from .tally import ObservationTally

log = logging.getLogger("colmda")

A = "assimilation"
#: the SEKF's keys (in &assimilation, where namelists have always had them)
KEYS = (
    Key(A, "control_layers", "int", 7, "-", "SEKF control vector: soil moisture of this many top layers", lo=1,
        hi=10),
    Key(A, "perturbation", "float_list", list(sekf.SEED_PERTURBATIONS), "m3 m-3", "SEKF finite-difference "
        "perturbation of each controlled layer (seed 000: 0.001, 0.0001, 0.0001, 0.0001, 0.0005, 0.001, 0.0005)",
        check=lambda v: None if v and all(0 < x < 0.1 for x in v) else "values in (0, 0.1)"),
    Key(A, "two_sided", "bool", False, "-", "SEKF: centred differences (+dx and -dx runs, twice the cost) and "
        "a linearity diagnostic"),
    Key(A, "propagation", "str", "tangent_linear", "-", "how the window-start increment reaches the analysis time "
        "(window end): 'tangent_linear' = through the Jacobian of the end state from the perturbed runs (the exact "
        "Kalman update for a linear model); 'persistence' = unchanged (M = I, as if B were the error at the window "
        "end: keeps the increments larger where model error makes the background worse than B says)",
        choices=("tangent_linear", "persistence")),
    Key(A, "background_error", "float_list", [0.01], "m3 m-3", "B: background error standard deviation of "
        "each controlled layer (static, diagonal; one value = all layers; ECMWF uses about 0.01)",
        check=lambda v: None if v and all(x > 0 for x in v) else "positive values"),
)

#: the SEKF's diagnostics (one netCDF file per analysis, colmda.assim.diagnostics): rows = retrievals
SCHEMA = {
    "time": Variable(("obs",), "seconds since 1970-01-01 00:00:00", "observation time"),
    "column": Variable(("obs",), "1", "global column index (j * nlon + i) of the model cell"),
    "sensor": Variable(("obs",), "1", "index into the file attribute 'sensors'"),
    "value": Variable(("obs",), "m3 m-3", "retrieved volumetric soil moisture (Tb sensors: K, the brightness "
                      "temperature after the seasonal rescaling; see 'value_raw')"),
    "value_raw": Variable(("obs",), "K", "Tb sensors only: the observation before the seasonal rescaling"),
    "error": Variable(("obs",), "m3 m-3", "observation error standard deviation used (after error, error_scale, "
                      "vegetation rule)"),
    "reason": Variable(("obs",), "1", "0 = used, else the rejection reason (attribute 'reasons')"),
    "hx": Variable(("obs",), "m3 m-3", "model equivalent of the background at the observation time"),
    "innovation": Variable(("obs",), "m3 m-3", "observation minus background (O - B)"),
    "jacobian": Variable(("obs", "layer"), "1", "d(model equivalent) / d(soil moisture of each controlled layer "
                         "at the window start)"),
    "gain": Variable(("obs", "layer"), "1", "Kalman gain: d(window-start increment of each layer) / "
                     "d(innovation)"),
    "linearity": Variable(("obs", "layer"), "1", "two-sided runs: |forward - backward slope| / (|forward| + "
                          "|backward|)"),
    "columns/column": Variable(("column",), "1", "global column index"),
    "columns/background": Variable(("column", "layer"), "m3 m-3", "background soil moisture (liquid + ice) of the "
                                   "controlled layers at the analysis time"),
    "columns/increment": Variable(("column", "layer"), "m3 m-3", "applied soil moisture increment at the analysis "
                                  "time (after the consistency layer)"),
    "columns/increment_unbounded": Variable(("column", "layer"), "m3 m-3", "Kalman increment at the analysis "
                                            "time before bounds"),
    "columns/analysis_std": Variable(("column", "layer"), "m3 m-3", "analysis error standard deviation at the "
                                     "window start (filter estimate)"),
    "columns/water_added": Variable(("column",), "kg m-2", "water added to the column by the analysis "
                                    "(negative: removed)"),
}


@register
class SekfMethod(AnalysisMethod):
    """Point-wise SEKF: perturbed runs of the columns that have retrievals in the window, batched with the
    background; Jacobians by finite differences; update at the window end (see :mod:`colmda.assim.sekf`)."""

    name = "sekf"
    summary = "point-wise simplified extended Kalman filter (docs/assimilation.md)"
    group = A
    keys = KEYS
    schema = SCHEMA

    @classmethod
    def validate(cls, settings) -> None:
        a = settings.assimilation
        src = settings.source
        if len(a.perturbation) < a.control_layers:
            raise UserError(f"{src}: &assimilation perturbation: {len(a.perturbation)} value(s) for "
                            f"control_layers = {a.control_layers}")
        if len(a.background_error) not in (1, a.control_layers):
            raise UserError(f"{src}: &assimilation background_error: 1 or control_layers = {a.control_layers} "
                            f"values, got {len(a.background_error)}")
        check_settings(settings)

    def __init__(self, settings, inputs, comm=None):
        super().__init__(settings, inputs, comm)
        a = settings.assimilation
        self.s = settings
        self.n = a.control_layers
        pert = np.asarray(a.perturbation, dtype=float)
        bge = np.asarray(a.background_error, dtype=float)
        self.dx = pert[: self.n]
        self.bvar = np.broadcast_to(bge, (self.n,)) ** 2
        self.two_sided = a.two_sided
        self.end = a.end or settings.end
        self.gross = a.gross_error
        self.inputs = inputs
        glat, glon = np.asarray(inputs.grid_lat, float), np.asarray(inputs.grid_lon, float)
        cell = (float(np.abs(np.diff(glat)).max()) if len(glat) > 1 else 180.0,
                float(np.abs(np.diff(glon)).max()) if len(glon) > 1 else 360.0)
        dz = inputs.params.dz_soil
        self.dz = dz

        def weights(depths):  # retrieval operator weights per sensing depth over the soil layers (bias fitting)
            return np.stack([retrieval_weights(dz, depth, a.obs_operator, a.obs_layer) for depth in depths])

        self.obs = ObservationSet(settings, inputs.column, inputs.pft, domain=getattr(inputs, "domain", None),
                                  weights=weights, lat=inputs.lat, lon=inputs.lon, cell_deg=cell,
                                  run_porosity=inputs.params.soilpar[L.SP_THETA_S, 0])
        # the model equivalents of every sensor (retrievals and Tb), shared with the other methods
        self.eq = ModelEquivalents.for_observations(self.obs, dz, obs_operator=a.obs_operator,
                                                    obs_layer=a.obs_layer, min_layers=self.n,
                                                    tau_omega_params=operator_params(settings))
        self.units = tuple("K" if tb else "m3 m-3" for tb in self.obs.is_tb)  # per sensor
        self.nrun = 2 * self.n if self.two_sided else self.n
        self.tally = ObservationTally(self.obs.sensors, self.obs)  # retrievals per sensor and reason, for the summary
        self.writer = None
        if comm is not None:
            if comm.is_root:
                for name, count in self.obs.outside_run.items():
                    if count:
                        log.warning("%s/%s.nc: %d retrieval(s) on the run's columns lie outside the run "
                                    "(%s .. %s) and are not used", settings.observations.directory, name, count,
                                    format_date(settings.start), format_date(settings.end))
            if a.diagnostics:
                from .diagnostics import AnalysisWriter

                self.writer = AnalysisWriter(comm, settings.output_directory / "analysis", settings.experiment.name,
                                             self.obs.sensors, self.n, units=self.units)

    # ---- window start
    def plan(self, ctx) -> ForecastRequest | None:
        if ctx.time > self.end:
            return None  # free forecast after the last analysis
        obs = self.obs.window(ctx.window_start, ctx.time, ctx.column)
        cand = obs.reason == USED
        if not cand.any():
            return ForecastRequest(payload={"obs": obs, "sub": np.zeros(0, dtype=np.int64)})
        sub = np.unique(obs.position[cand])  # only columns with candidate retrievals are perturbed
        st = ctx.state
        s = L.NSNOW_MAX
        dz = self.dz[: self.n, None]
        theta = volumetric_layers(st, self.dz, self.n)[:, sub].T  # (nsub, n)
        ice = (st.wice_soisno[s:s + self.n, sub] / DENICE / dz).T
        porosity = ctx.params.soilpar[L.SP_THETA_S, : self.n][:, sub].T
        step = sekf.perturbation_signs(theta, self.dx, porosity - ice) * self.dx[None, :]  # (nsub, n)
        signs = (1.0, -1.0) if self.two_sided else (1.0,)
        blocks = []
        base = st.take(sub)
        for sign in signs:
            for i in range(self.n):
                b = base.copy()
                b.wliq_soisno[s + i] += sign * step[:, i] * DENH2O * self.dz[i]
                blocks.append(b)
        extra = ColumnState.concatenate(blocks)
        return ForecastRequest(extra=extra, extra_positions=np.tile(sub, len(blocks)),
                               record=self.eq.record_function(),
                               payload={"obs": obs, "sub": sub, "step": step})

    # ---- window end
    def analyse(self, ctx, request: ForecastRequest | None, forecast) -> Analysis | None:
        if request is None:
            return None
        obs: WindowObservations = request.payload["obs"]
        sub = request.payload["sub"]
        n = self.n
        if len(sub) == 0:
            return Analysis(sub, np.zeros((n, 0)), {"obs": obs, "rows": None})
        nsub, nloc = len(sub), ctx.state.ncol
        step = request.payload["step"]
        extra_end, snaps = forecast.extra_end, forecast.records
        dt = self.s.dt
        nsteps = snaps["t_top"].shape[0]
        k = operators.step_index(obs.time, ctx.window_start, dt, nsteps)
        # model-side QC on the background at the observation time
        model_bad = self.eq.model_qc(snaps, k, obs.position, obs.sensor)
        obs.reason[(obs.reason == USED) & model_bad] = MODEL_QC
        keep = np.flatnonzero(obs.reason == USED)
        kk, pp, ss = k[keep], obs.position[keep], obs.sensor[keep]
        # sites (LAI, PFT, clay) of the batch: the background columns, then the perturbed copies of `sub`
        site = (site_parameters(ctx, np.concatenate([np.arange(nloc), np.tile(sub, self.nrun)]))
                if self.eq.has_tb else None)
        yb = self.eq.values(snaps, kk, pp, ss, site)
        j = np.searchsorted(sub, pp)  # index of the row's column among the perturbed ones
        ypert = np.stack([self.eq.values(snaps, kk, nloc + i * nsub + j, ss, site) for i in range(self.nrun)], 1)
        # end-of-window control layers of the background and of every perturbed run
        end_b = volumetric_layers(ctx.state, self.dz, n)[:, sub].T  # (nsub, n)
        end_p = volumetric_layers(extra_end, self.dz, n).T.reshape(self.nrun, nsub, n)  # (nrun, nsub, n)
        if self.two_sided:
            Hrow = (ypert[:, :n] - ypert[:, n:]) / (2.0 * step[j])
            Mt = np.transpose((end_p[:n] - end_p[n:]) / (2.0 * step.T[:, :, None]), (1, 2, 0))
            lin = sekf.linearity(ypert[:, :n, None], ypert[:, n:, None], yb[:, None])  # (nkeep, n)
        else:
            Hrow = (ypert - yb[:, None]) / step[j]
            Mt = np.transpose((end_p - end_b[None]) / step.T[:, :, None], (1, 2, 0))  # (nsub, n_to, n_from)
            lin = None
        innov = obs.value[keep] - yb
        rvar = obs.error[keep] ** 2
        # pack rows per perturbed column (padded to the largest count)
        order = np.argsort(j, kind="stable")
        counts = np.bincount(j, minlength=nsub)
        m = max(int(counts.max()) if len(counts) else 0, 1)
        slot = np.arange(len(keep)) - np.repeat(np.cumsum(counts) - counts, counts)
        jj = j[order]
        H = np.zeros((nsub, m, n))
        d = np.zeros((nsub, m))
        r = np.ones((nsub, m))
        used = np.zeros((nsub, m), dtype=bool)
        H[jj, slot] = Hrow[order]
        d[jj, slot] = innov[order]
        r[jj, slot] = rvar[order]
        used[jj, slot] = True
        hbh = np.einsum("cmi,i,cmi->cm", H, self.bvar, H)
        ok = sekf.gross_error_check(d, hbh, r, self.gross) | ~used
        if not ok.all():
            bad_rows = order[~ok[jj, slot]]
            obs.reason[keep[bad_rows]] = GROSS_ERROR
            used &= ok
        res = sekf.analysis(d, H, r, self.bvar, used, Mt if self.s.assimilation.propagation == "tangent_linear"
                            else None)
        # per-retrieval diagnostics; the per-column ones are completed with the consistency layer's report
        row_gain = np.zeros((len(obs), n))
        row_gain[keep[order[used[jj, slot]]]] = res.gain[jj[used[jj, slot]], :, slot[used[jj, slot]]]
        row_H = np.full((len(obs), n), np.nan)
        row_H[keep] = Hrow
        row_hx = np.full(len(obs), np.nan)
        row_hx[keep] = yb
        rows = {"hx": row_hx, "jacobian": row_H, "gain": row_gain}
        if lin is not None:
            row_lin = np.full((len(obs), n), np.nan)
            row_lin[keep] = lin
            rows["linearity"] = row_lin
        return Analysis(sub, res.increment.T, {"obs": obs, "rows": rows, "increment_unbounded": res.increment,
                                               "analysis_std": np.sqrt(res.analysis_variance)})

    def write_diagnostics(self, ctx, analysis: Analysis, report) -> None:
        diag = self.diagnostics(ctx, analysis, report)
        self.tally.add(diag)
        if self.writer is not None:
            self.writer.write(ctx.time, diag)

    def diagnostics(self, ctx, analysis: Analysis, report) -> dict:
        """Per-retrieval and per-column diagnostics of this rank (global column indices), for the writer."""
        n = self.n
        extra = analysis.diagnostics
        obs = extra["obs"]
        nobs = len(obs)
        got = extra["rows"] or {}
        rows = {"time": obs.time, "column": obs.column, "sensor": obs.sensor, "value": obs.value,
                "error": obs.error, "reason": obs.reason,
                "hx": got.get("hx", np.full(nobs, np.nan)),
                "jacobian": got.get("jacobian", np.full((nobs, n), np.nan)),
                "gain": got.get("gain", np.zeros((nobs, n)))}
        rows["innovation"] = rows["value"] - rows["hx"]
        if self.eq.has_tb:
            rows["value_raw"] = obs.raw
        if "linearity" in got:
            rows["linearity"] = got["linearity"]
        cols = {"column": ctx.column[analysis.columns]}
        if len(analysis.columns):
            cols.update({"background": report.background.T, "increment": report.applied.T,
                         "increment_unbounded": extra["increment_unbounded"], "analysis_std": extra["analysis_std"],
                         "water_added": report.water_added})
        return {"rows": rows, "columns": cols}

    def summary_entries(self, rundir) -> dict:
        """Collective: retrievals per sensor and rejection reason over the run (summary.json 'observations', with a
        warning when a sensor, or every sensor, was never used) and the O - B statistics per sensor over the run's
        analysis files ('innovations')."""
        counts = self.tally.summary(self.comm)
        if counts is None:
            return {}
        out = {}
        if self.writer is not None:
            from .diagnostics import obs_statistics

            out["innovations"] = obs_statistics(rundir / "analysis", self.s.experiment.name, self.obs.sensors,
                                                self.units)
        self.tally.warn(counts, self.s.source)
        out["observations"] = counts
        return out
