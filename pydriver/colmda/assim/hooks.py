"""Run-loop glue of the analysis methods: what to batch with the background forecast, and the analysis.

A method object has ``plan(ctx) -> WindowPlan | None`` (called at the window start: extra columns to advance in
the same core calls as the background, and what to record after every model step) and
``analyse(ctx, plan, extra_end, snapshots) -> (ColumnState | None, diagnostics | None)`` (called at the window
end). :class:`SekfMethod` is the point-wise SEKF of :mod:`colmda.assim.sekf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE, TFRZ
from ..core import ColumnState
from ..obs import operators
from . import sekf
from .observations import GROSS_ERROR, MODEL_QC, USED, ObservationSet, WindowObservations

SNOW_QC = 1.0  # kg m-2: model snow above this at the observation time rejects a retrieval


@dataclass
class WindowPlan:
    """What a method asks the forecast of one window to do besides advancing the background columns."""

    extra: ColumnState | None = None  # more columns, advanced with the background in the same core calls
    extra_positions: np.ndarray | None = None  # local column whose parameters and forcing each extra column uses
    snapshot: Callable[[ColumnState], dict] | None = None  # called on the whole batch after every step
    payload: dict = field(default_factory=dict)


def volumetric_layers(state: ColumnState, dz: np.ndarray, nl: int) -> np.ndarray:
    """Total (liquid + ice) volumetric soil moisture of the top ``nl`` layers (nl, ncol)."""
    s = L.NSNOW_MAX
    return (state.wliq_soisno[s:s + nl] / DENH2O + state.wice_soisno[s:s + nl] / DENICE) / dz[:nl, None]


class SekfMethod:
    """Point-wise SEKF: perturbed runs of the columns that have retrievals in the window, batched with the
    background; Jacobians by finite differences; update at the window end (see :mod:`colmda.assim.sekf`)."""

    name = "sekf"

    def __init__(self, settings, inputs):
        a = settings.assimilation
        self.s = settings
        self.n = a.control_layers
        pert = np.asarray(a.perturbation, dtype=float)
        bge = np.asarray(a.background_error, dtype=float)
        src = settings.source
        from ..errors import UserError

        if len(pert) < self.n:
            raise UserError(f"{src}: &assimilation perturbation has {len(pert)} value(s) for control_layers = "
                            f"{self.n}")
        if len(bge) not in (1, self.n):
            raise UserError(f"{src}: &assimilation background_error needs 1 or control_layers = {self.n} values, "
                            f"got {len(bge)}")
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

        def weights(depths):  # operator weights per sensor over the soil layers
            w = np.zeros((len(depths), L.NL_SOIL))
            for k, depth in enumerate(depths):
                if a.obs_operator == "layer":
                    w[k, a.obs_layer - 1] = 1.0
                else:
                    w[k] = operators.sensing_weights(dz, depth)
            return w

        self.obs = ObservationSet(settings, inputs.column, inputs.pft, domain=getattr(inputs, "domain", None),
                                  weights=weights, lat=inputs.lat, lon=inputs.lon, cell_deg=cell,
                                  run_porosity=inputs.params.soilpar[L.SP_THETA_S, 0])
        w = weights(self.obs.sensing_depth)
        self.nsnap = max(self.n, int(np.flatnonzero(w.any(axis=0)).max()) + 1)
        self.weights = w[:, : self.nsnap]  # (nsensor, nsnap) operator weights per sensor
        self.nrun = 2 * self.n if self.two_sided else self.n

    # ---- window start
    def plan(self, ctx) -> WindowPlan | None:
        if ctx.time > self.end:
            return None  # free forecast after the last analysis
        obs = self.obs.window(ctx.window_start, ctx.time, ctx.column)
        cand = obs.reason == USED
        if not cand.any():
            return WindowPlan(payload={"obs": obs, "sub": np.zeros(0, dtype=np.int64)}, snapshot=None)
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
        nsnap = self.nsnap

        def snapshot(batch: ColumnState) -> dict:
            nb = ctx.state.ncol
            return {"theta": volumetric_layers(batch, self.dz, nsnap),
                    "t_top": batch.t_soisno[s, :nb].copy(), "swe": batch.cstate[L.CS_SCV, :nb].copy()}

        return WindowPlan(extra=extra, extra_positions=np.tile(sub, len(blocks)), snapshot=snapshot,
                          payload={"obs": obs, "sub": sub, "step": step})

    # ---- window end
    def analyse(self, ctx, plan: WindowPlan | None, extra_end: ColumnState | None, snaps: dict | None):
        if plan is None:
            return None, None
        obs: WindowObservations = plan.payload["obs"]
        sub = plan.payload["sub"]
        if len(sub) == 0:
            return None, self._diagnostics(ctx, obs, None, None, None, sub, None)
        n, nsub, nloc = self.n, len(sub), ctx.state.ncol
        step = plan.payload["step"]
        dt = self.s.dt
        nsteps = snaps["theta"].shape[0]
        k = operators.step_index(obs.time, ctx.window_start, dt, nsteps)
        # model-side QC on the background at the observation time
        model_bad = (snaps["t_top"][k, obs.position] <= TFRZ) | (snaps["swe"][k, obs.position] > SNOW_QC)
        obs.reason[(obs.reason == USED) & model_bad] = MODEL_QC
        keep = np.flatnonzero(obs.reason == USED)
        w = self.weights[obs.sensor[keep]]  # (nkeep, nsnap)
        th = snaps["theta"]  # (nsteps, nsnap, nloc + nrun * nsub)
        kk, pp = k[keep], obs.position[keep]
        yb = np.einsum("rl,rl->r", w, th[kk, :, pp])
        j = np.searchsorted(sub, pp)  # index of the row's column among the perturbed ones
        ypert = np.stack([np.einsum("rl,rl->r", w, th[kk, :, nloc + i * nsub + j]) for i in range(self.nrun)], 1)
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
        # apply at the analysis time within bounds; frozen layers unchanged
        s = L.NSNOW_MAX
        st = ctx.state
        dzc = self.dz[:n, None]
        liq = (st.wliq_soisno[s:s + n, sub] / DENH2O / dzc).T
        ice = (st.wice_soisno[s:s + n, sub] / DENICE / dzc).T
        par = ctx.params.soilpar
        lower = np.maximum(par[L.SP_THETA_R, :n][:, sub].T, 0.0)
        porosity = par[L.SP_THETA_S, :n][:, sub].T
        frozen = (st.t_soisno[s:s + n, sub] <= TFRZ).T
        inc = sekf.bounded_increment(liq, ice, res.increment, lower, porosity, frozen)
        new = st.copy()
        new.wliq_soisno[s:s + n, sub] += (inc * DENH2O * self.dz[:n][None, :]).T
        row_gain = np.zeros((len(obs), n))
        row_gain[keep[order[used[jj, slot]]]] = res.gain[jj[used[jj, slot]], :, slot[used[jj, slot]]]
        row_H = np.full((len(obs), n), np.nan)
        row_H[keep] = Hrow
        row_hx = np.full(len(obs), np.nan)
        row_hx[keep] = yb
        percol = {"background": liq + ice, "increment": inc, "increment_unbounded": res.increment, "analysis_std": np.sqrt(
            res.analysis_variance), "water_added": (inc * DENH2O * self.dz[:n][None, :]).sum(1)}
        diag = self._diagnostics(ctx, obs, row_hx, row_H, row_gain, sub, percol)
        if lin is not None:
            row_lin = np.full((len(obs), n), np.nan)
            row_lin[keep] = lin
            diag["rows"]["linearity"] = row_lin
        return new, diag

    def _diagnostics(self, ctx, obs, hx, H, gain, sub, percol):
        """Per-retrieval and per-column diagnostics of this rank (global column indices), for the writer."""
        n = self.n
        nobs = len(obs)
        rows = {"time": obs.time, "column": obs.column, "sensor": obs.sensor, "value": obs.value,
                "error": obs.error, "reason": obs.reason,
                "hx": hx if hx is not None else np.full(nobs, np.nan),
                "jacobian": H if H is not None else np.full((nobs, n), np.nan),
                "gain": gain if gain is not None else np.zeros((nobs, n))}
        rows["innovation"] = rows["value"] - rows["hx"]
        cols = {"column": ctx.column[sub]}
        if percol is not None:
            cols.update(percol)
        return {"rows": rows, "columns": cols}
