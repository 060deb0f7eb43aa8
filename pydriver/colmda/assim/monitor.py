"""``&assimilation method = 'monitor'``: an open loop that computes the model equivalent and the O - F of every
observation (retrievals and brightness temperatures) and changes nothing.

Uses: the O - F statistics of the open loop (the reference of every assimilation experiment; summary.json
``innovations``, analysis files with ``&assimilation diagnostics``), and the Tb climatology of the seasonal
rescaling (SMAP L4 practice, :mod:`colmda.obs.tb_climatology`): when ``&observations tb_climatology`` names a
file that does not exist yet, the run fits it at its end from the pairs (raw observed Tb, open-loop model Tb) of
the rows its QC used and writes it there; when the file exists, the run applies it like any method (its O - F
are then the rescaled ones). The state is never touched: history and restarts are the open loop's, bit for bit
(the forecast with records advances the same core calls step by step).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import layout as L
from ..obs import operators
from .base import Analysis, AnalysisMethod, ForecastRequest, Variable, register
from .equivalents import ModelEquivalents, operator_params, retrieval_weights, site_parameters
from .hooks import SCHEMA as SEKF_SCHEMA
from .observations import MODEL_QC, USED, ObservationSet, check_settings
from .tally import ObservationTally

log = logging.getLogger("colmda")

SCHEMA = {k: v for k, v in SEKF_SCHEMA.items() if not k.startswith("columns/")
          and k not in ("jacobian", "gain", "linearity")}
SCHEMA["hx"] = Variable(("obs",), "m3 m-3", "model equivalent of the open loop at the observation time (Tb: K)")


@register
class MonitorMethod(AnalysisMethod):
    """Open loop with observation monitoring: model equivalents and O - F, no update; writes the Tb climatology."""

    name = "monitor"
    summary = ("open loop with observation monitoring: model equivalents and O - F of every observation, no "
               "update; writes &observations tb_climatology when that file does not exist yet")
    changes_state = False
    schema = SCHEMA

    @classmethod
    def validate(cls, settings) -> None:
        check_settings(settings)

    def __init__(self, settings, inputs, comm=None):
        super().__init__(settings, inputs, comm)
        a, o = settings.assimilation, settings.observations
        self.s = settings
        dz = inputs.params.dz_soil
        glat, glon = np.asarray(inputs.grid_lat, float), np.asarray(inputs.grid_lon, float)
        cell = (float(np.abs(np.diff(glat)).max()) if len(glat) > 1 else 180.0,
                float(np.abs(np.diff(glon)).max()) if len(glon) > 1 else 360.0)
        self.fit_climatology = bool(o.tb_climatology) and not Path(o.tb_climatology).is_file()

        def weights(depths):
            return np.stack([retrieval_weights(dz, d, a.obs_operator, a.obs_layer) for d in depths])

        self.obs = ObservationSet(settings, inputs.column, inputs.pft, domain=getattr(inputs, "domain", None),
                                  weights=weights, lat=inputs.lat, lon=inputs.lon, cell_deg=cell,
                                  run_porosity=inputs.params.soilpar[L.SP_THETA_S, 0],
                                  tb_climatology=not self.fit_climatology)
        self.eq = ModelEquivalents.for_observations(self.obs, dz, obs_operator=a.obs_operator,
                                                    obs_layer=a.obs_layer,
                                                    tau_omega_params=operator_params(settings))
        self.units = tuple("K" if tb else "m3 m-3" for tb in self.obs.is_tb)
        self.tally = ObservationTally(self.obs.sensors, self.obs)
        self.pairs = []  # Tb rows used: (sensor, column, time, raw observation, model Tb), for the climatology
        self.writer = None
        if comm is not None and a.diagnostics:
            from .diagnostics import AnalysisWriter

            self.writer = AnalysisWriter(comm, settings.output_directory / "analysis", settings.experiment.name,
                                         self.obs.sensors, 1, units=self.units)

    def plan(self, ctx) -> ForecastRequest | None:
        obs = self.obs.window(ctx.window_start, ctx.time, ctx.column)
        if not len(obs):
            return ForecastRequest(payload={"obs": obs})
        return ForecastRequest(record=self.eq.record_function(), payload={"obs": obs})

    def analyse(self, ctx, request, forecast) -> Analysis | None:
        obs = request.payload["obs"]
        hx = np.full(len(obs), np.nan)
        if len(obs):
            recs = forecast.records
            k = operators.step_index(obs.time, ctx.window_start, self.s.dt, recs["t_top"].shape[0])
            bad = self.eq.model_qc(recs, k, obs.position, obs.sensor)
            obs.reason[(obs.reason == USED) & bad] = MODEL_QC
            keep = np.flatnonzero(obs.reason == USED)
            site = site_parameters(ctx) if self.eq.has_tb else None
            hx[keep] = self.eq.values(recs, k[keep], obs.position[keep], obs.sensor[keep], site)
        return Analysis(np.zeros(0, dtype=np.int64), np.zeros((1, 0)), {"obs": obs, "hx": hx})

    def write_diagnostics(self, ctx, analysis: Analysis, report) -> None:
        obs, hx = analysis.diagnostics["obs"], analysis.diagnostics["hx"]
        rows = {"time": obs.time, "column": obs.column, "sensor": obs.sensor, "value": obs.value,
                "error": obs.error, "reason": obs.reason, "hx": hx, "innovation": obs.value - hx}
        if self.eq.has_tb:
            rows["value_raw"] = obs.raw
            tb = (obs.reason == USED) & self.eq.is_tb[obs.sensor]
            if tb.any():
                self.pairs.append({"sensor": obs.sensor[tb], "column": obs.column[tb], "time": obs.time[tb],
                                   "obs": obs.raw[tb], "model": hx[tb]})
        diag = {"rows": rows, "columns": {"column": ctx.column[:0]}}
        self.tally.add(diag)
        if self.writer is not None:
            self.writer.write(ctx.time, diag)

    def summary_entries(self, rundir) -> dict:
        """Collective: observation counts, O - F statistics (with diagnostics) and, when asked, the Tb
        climatology written to &observations tb_climatology."""
        counts = self.tally.summary(self.comm)
        pairs = self.comm.gather(self.pairs) if self.fit_climatology else None
        if counts is None:
            return {}
        out = {"observations": counts}
        if self.writer is not None:
            from .diagnostics import obs_statistics

            out["innovations"] = obs_statistics(Path(rundir) / "analysis", self.s.experiment.name, self.obs.sensors,
                                                self.units)
        if self.fit_climatology:
            out["tb_climatology"] = self._write_climatology([p for part in pairs for p in part], rundir)
        self.tally.warn(counts, self.s.source)
        return out

    def _write_climatology(self, pairs, rundir) -> dict:
        from ..obs import tb_climatology as C

        o = self.s.observations
        cat = {k: np.concatenate([p[k] for p in pairs]) if pairs else np.zeros(0) for k in
               ("sensor", "column", "time", "obs", "model")}
        tb_sensors = [k for k, tb in enumerate(self.obs.is_tb) if tb]
        index = np.full(len(self.obs.sensors), -1)
        index[tb_sensors] = np.arange(len(tb_sensors))  # file sensor index of each Tb sensor
        clim = C.fit([self.obs.sensors[k] for k in tb_sensors], index[cat["sensor"].astype(np.int64)],
                     cat["column"].astype(np.int64),
                     cat["time"].astype("datetime64[s]"), cat["obs"], cat["model"],
                     window_pentads=o.tb_climatology_pentads, min_count=o.tb_climatology_min_count,
                     source_run=str(rundir))
        path = C.write_climatology(o.tb_climatology, clim)
        log.info("Tb climatology from %d open-loop pairs written to %s", len(cat["obs"]), path)
        return {"file": str(path), "pairs": int(len(cat["obs"])),
                "windows_with_means": int((clim.count >= clim.min_count).sum())}

