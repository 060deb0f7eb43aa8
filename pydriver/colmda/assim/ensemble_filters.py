"""The EnKF family as analysis methods of the cycle (:mod:`colmda.assim.base`): 'enkf', 'etkf', 'letkf'.

Three registered methods share one implementation and the keys of ``&enkf`` (docs/assimilation.md, "The EnKF
family"):

* ``'enkf'``: stochastic EnKF with perturbed observations (Burgers et al. 1998), each column analysed with its
  local observations (R-localisation as the LETKF's); the perturbations are keyed random numbers of (experiment
  seed, analysis time, member, observation), never of the rank (:func:`colmda.assim.enkf.observation_noise`);
* ``'etkf'``: the square-root ETKF with every observation of the domain, unlocalised (for small domains; cost
  grows as columns x observations);
* ``'letkf'``: the local ETKF (Hunt et al. 2007): ``localization_km`` = 0 is the column-local 1-D filter of LIS
  and GEOSldas (each column its own observations), > 0 the 3-D filter with Gaspari-Cohn weights of the
  great-circle distance between the column centre and the observation's column centre.

The ensemble lives in the driver's state as flat columns (``flat = column * N + member``, :mod:`colmda.ensemble`).
The analysis is **asynchronous** (Sakov et al. 2010): the control vector is the members' state at the window end
(the analysis time) and each observation is compared with every member's state at the end of the model step that
contains its time; the ensemble covariance between the two carries the information from the observation time to
the window end, as the SEKF's tangent-linear propagation does with its perturbed runs. Observation handling is the
SEKF's (:mod:`colmda.assim.hooks`): the same observation files, operators per sensor, vegetation rule, value and
location checks, model QC (here on the ensemble mean at the observation time), gross-error check (with H P H^T
from the ensemble), tallies and diagnostics files.

Rank invariance: for localisation the model equivalents of every used observation (all members), their values,
errors, columns and ids are allgathered and sorted by (column, time, sensor, id) so that every rank holds the
same arrays; every rank then analyses its own columns with all observations within the radius. A column's result
depends on its own observations only (:func:`colmda.assim.enkf.letkf` groups columns by observation count), so
the history, the restarts and the diagnostics are bitwise identical for any rank count. The column-local filter
needs no communication.

Inflation (``&enkf inflation``): 'multiplicative' (``inflation_factor`` on the prior covariance), 'rtpp' and
'rtps' (``relaxation``; the factor is still applied to the prior), 'adaptive' (the Desroziers / Li-Kalnay-Miyoshi
estimate with the Gaussian update of Miyoshi 2011, per column, carried between windows by the driver in
``ctx.carry['inflation']``). Columns without a usable observation in the window are not analysed and not inflated
(their spread is kept by the forcing and state perturbations).
"""

from __future__ import annotations

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE, TFRZ
from ..errors import UserError
from ..keys import Key, where
from ..obs import operators
from . import enkf
from .base import Analysis, AnalysisMethod, ForecastRequest, Variable, register
from .hooks import SNOW_QC
from .observations import GROSS_ERROR, MODEL_QC, USED, ObservationSet, WindowObservations, check_settings
from .tally import ObservationTally

G = "enkf"
INFLATION_KINDS = ("multiplicative", "rtpp", "rtps", "adaptive")
KEYS = (
    Key(G, "control_layers", "int", 7, "-", "control vector: total (liquid + ice) volumetric soil moisture of "
        "this many top soil layers at the analysis time (window end); the increments of these layers are applied",
        lo=1, hi=10),
    Key(G, "control_soil_temperature", "bool", False, "-", "control vector: also the top soil layer's temperature "
        "(K), updated through the ensemble's covariances with the observed quantities; applied only to thawed "
        "layers, which stay thawed (docs/assimilation.md)"),
    Key(G, "control_swe", "bool", False, "-", "control vector: also the snow water equivalent (kg m-2); applied "
        "where there is snow by scaling the snow layers (no snow is created)"),
    Key(G, "localization_km", "float", 0.0, "km", "Gaspari-Cohn half-width of the localisation by great-circle "
        "distance (weight 5/24 at this distance, 0 from twice it); 0 = column-local 1-D filter (each column only "
        "its own observations, as LIS and GEOSldas); > 0 = 3-D across neighbouring columns ('enkf', 'letkf'; "
        "'etkf' is never localised)", lo=0.0),
    Key(G, "inflation", "str", "multiplicative", "-", "inflation: 'multiplicative' (inflation_factor on the "
        "prior covariance), 'rtpp' / 'rtps' (relaxation to prior perturbations / spread with weight "
        "'relaxation', after the factor), 'adaptive' (Desroziers-based estimate per column, Miyoshi 2011, "
        "starting from inflation_factor and kept between windows and in restarts)", choices=INFLATION_KINDS),
    Key(G, "inflation_factor", "float", 1.0, "-", "multiplicative inflation rho of the prior covariance "
        "(anomalies times sqrt(rho)); the first value of the adaptive estimate", lo=1.0, hi=10.0),
    Key(G, "relaxation", "float", 0.5, "-", "alpha of 'rtpp' (Zhang et al. 2004) and 'rtps' (Whitaker & Hamill "
        "2012): 0 = no relaxation, 1 = the prior perturbations / spread", lo=0.0, hi=1.0),
    Key(G, "adaptive_std", "float", 0.05, "-", "'adaptive': prior standard deviation of the inflation estimate "
        "(Miyoshi 2011 keeps it fixed; sparse land observations need a larger one to adapt within weeks)", lo=0.0,
        lo_open=True, hi=10.0),
    Key(G, "inflation_max", "float", 5.0, "-", "'adaptive': upper bound of the inflation estimate (lower "
        "bound 1)", lo=1.0, hi=100.0),
)

#: the diagnostics of the EnKF family (one netCDF file per analysis): rows = retrievals, columns = analysed columns
SCHEMA = {
    "time": Variable(("obs",), "seconds since 1970-01-01 00:00:00", "observation time"),
    "column": Variable(("obs",), "1", "global column index (j * nlon + i) of the model cell"),
    "sensor": Variable(("obs",), "1", "index into the file attribute 'sensors'"),
    "value": Variable(("obs",), "m3 m-3", "retrieved volumetric soil moisture"),
    "error": Variable(("obs",), "m3 m-3", "observation error standard deviation used"),
    "reason": Variable(("obs",), "1", "0 = used, else the rejection reason (attribute 'reasons')"),
    "hx": Variable(("obs",), "m3 m-3", "ensemble mean of the model equivalents at the observation time"),
    "innovation": Variable(("obs",), "m3 m-3", "observation minus the ensemble-mean background (O - B)"),
    "hx_spread": Variable(("obs",), "m3 m-3", "ensemble standard deviation of the model equivalents, "
                          "sqrt(H P H^T) of the (uninflated) ensemble"),
    "columns/column": Variable(("column",), "1", "global column index"),
    "columns/background": Variable(("column", "layer"), "m3 m-3", "ensemble-mean background soil moisture of the "
                                   "controlled layers at the analysis time"),
    "columns/increment": Variable(("column", "layer"), "m3 m-3", "ensemble mean of the applied increments (after "
                                  "the consistency layer)"),
    "columns/increment_unbounded": Variable(("column", "layer"), "m3 m-3", "ensemble mean of the filter's "
                                            "increments before the consistency layer"),
    "columns/background_spread": Variable(("column", "layer"), "m3 m-3", "ensemble standard deviation of the "
                                          "background"),
    "columns/analysis_spread": Variable(("column", "layer"), "m3 m-3", "ensemble standard deviation of the "
                                        "analysis (after the consistency layer)"),
    "columns/inflation": Variable(("column",), "1", "multiplicative inflation of the prior covariance used"),
    "columns/n_local_obs": Variable(("column",), "1", "observations with a non-zero localisation weight"),
    "columns/water_added": Variable(("column",), "kg m-2", "ensemble mean of the water added to the column "
                                    "(negative: removed)"),
}
ROW_META = {k: (v.units, v.meaning) for k, v in SCHEMA.items() if "/" not in k}
COL_META = {k.split("/", 1)[1]: (v.units, v.meaning) for k, v in SCHEMA.items() if k.startswith("columns/")}


def operator_weights(settings, dz, depths) -> np.ndarray:
    """Operator weights (nsensor, nlayer) over the soil layers of each sensor: one layer (``obs_operator =
    'layer'``) or the exponential sensing-depth weighting (the SEKF's operators)."""
    a = settings.assimilation
    w = np.zeros((len(depths), L.NL_SOIL))
    for k, depth in enumerate(depths):
        if a.obs_operator == "layer":
            w[k, a.obs_layer - 1] = 1.0
        else:
            w[k] = operators.sensing_weights(dz, depth)
    return w


def window_observations(obs_set: ObservationSet, t0, t1, columns) -> tuple[WindowObservations, np.ndarray]:
    """Retrievals with t0 < time <= t1 on the sorted global ``columns`` (as ``ObservationSet.window``) and their
    global ids (row in the observation set, the same on every rank: the set holds the run's columns)."""
    a = np.searchsorted(obs_set.tsec, np.datetime64(t0, "s").astype(np.int64), side="right")
    b = np.searchsorted(obs_set.tsec, np.datetime64(t1, "s").astype(np.int64), side="right")
    r = obs_set.rows
    col = r["column"][a:b]
    columns = np.asarray(columns, dtype=np.int64)
    pos = np.searchsorted(columns, col)
    ok = (pos < len(columns)) & (columns[np.minimum(pos, len(columns) - 1)] == col)
    sel = np.arange(a, b)[ok]
    obs = WindowObservations(r["time"][sel], r["column"][sel], pos[ok], r["sensor"][sel], r["value"][sel],
                             r["error"][sel], r["reason"][sel].copy(), raw=r["raw"][sel])
    return obs, sel.astype(np.int64)


def soil_layers(state, flat, dz, nl) -> np.ndarray:
    """Total volumetric soil moisture (nl, len(flat)) of the top ``nl`` layers of the flat columns ``flat``."""
    s = L.NSNOW_MAX
    return (state.wliq_soisno[s:s + nl, flat] / DENH2O + state.wice_soisno[s:s + nl, flat] / DENICE) / dz[:nl, None]


def equivalents_recorder(flat, dz, nsnap):
    """The record function of the forecast: after every step, the soil moisture of the ``nsnap`` top layers, the
    top soil layer's temperature and the SWE of the flat columns ``flat`` (the members of the observed columns).
    One small function so that a shared model-equivalent module can replace it."""
    s = L.NSNOW_MAX

    def record(batch) -> dict:
        return {"theta": soil_layers(batch, flat, dz, nsnap), "t_top": batch.t_soisno[s, flat].copy(),
                "swe": batch.cstate[L.CS_SCV, flat].copy()}

    return record


def local_stochastic_enkf(E, HE, y, obs_var, noise, local: enkf.LocalObservations, inflation=1.0,
                          adaptive: enkf.AdaptiveInflation | None = None, chunk: int = 2048) -> enkf.EnsembleAnalysis:
    """The stochastic EnKF for every column with its local observations (R-localised as in the LETKF): E (ncol,
    N, n), HE and noise (nobs, N) (standard normal perturbations of every observation and member, the same for
    whichever column uses the observation), y, obs_var (nobs,). Columns are grouped by their observation count and
    solved without padding, so a column's numbers depend on its own observations only (any split of the columns
    between ranks gives the same result). Adaptive inflation as :func:`colmda.assim.enkf.letkf`."""
    E = np.asarray(E, dtype=float)
    ncol, N, n = E.shape
    rho = np.broadcast_to(np.asarray(inflation, dtype=float), (ncol,)).copy()
    rho_var = None if adaptive is None else np.full(ncol, adaptive.prior_std ** 2)
    Ea = E.copy()
    n_obs = local.n_obs
    for k in np.unique(n_obs):
        k = int(k)
        group = np.flatnonzero(n_obs == k)
        for i in range(0, group.size, chunk):
            sel = group[i:i + chunk]
            if k == 0:
                Ea[sel] = E[sel]
                continue
            idx, weight = local.index[sel, :k], local.weight[sel, :k]
            HEl = np.swapaxes(HE[idx], 1, 2)  # (nsel, N, k)
            if adaptive is not None:
                yb = HEl.mean(axis=1)
                rho_o, var_o = enkf.inflation_observation(HEl - yb[:, None, :], y[idx] - yb, obs_var[idx], weight,
                                                          rho[sel])
                rho[sel], rho_var[sel] = enkf.update_inflation(rho[sel], rho_o, var_o, adaptive)
            res = enkf.stochastic_enkf(E[sel], HEl, y[idx], obs_var[idx], np.swapaxes(noise[idx], 1, 2), weight,
                                       inflation=rho[sel])
            Ea[sel] = res.ensemble
    return enkf.EnsembleAnalysis(Ea, Ea.mean(axis=1) - E.mean(axis=1), n_obs, rho, rho_var)


def nearest_neighbour_km(lat, lon) -> np.ndarray:
    """Great-circle distance (km) from every column centre to its nearest other column centre (inf: alone)."""
    from scipy.spatial import cKDTree

    x = enkf.unit_vectors(np.ravel(lat), np.ravel(lon))
    if len(x) < 2:
        return np.full(len(x), np.inf)
    chord, _ = cKDTree(x).query(x, k=2)
    return enkf._chord_to_km(chord[:, 1])


class EnsembleFilter(AnalysisMethod):
    """The shared implementation of 'enkf', 'etkf' and 'letkf' (module docstring); ``kind`` selects the update."""

    kind = ""
    group = G
    group_doc = "the EnKF family (&assimilation method = 'enkf', 'etkf' or 'letkf')"
    schema = SCHEMA
    members = "ensemble"
    #: the adaptive inflation of every column (0 = not yet estimated: the inflation_factor)
    carry = {"inflation": ((), 0.0)}

    @classmethod
    def validate(cls, settings) -> None:
        g, src = settings.enkf, settings.source
        if cls.kind == "etkf" and g.localization_km > 0:
            raise UserError(f"{where(src, G, 'localization_km')} = {g.localization_km:g}: method 'etkf' uses every "
                            f"observation of the domain unlocalised; expected 0, or &assimilation method = 'letkf'")
        check_settings(settings)

    def __init__(self, settings, inputs, comm=None):
        super().__init__(settings, inputs, comm)
        s = self.s = settings
        g = self.g = settings.enkf
        self.n = g.control_layers
        self.end = s.assimilation.end or s.end
        self.gross = s.assimilation.gross_error
        self.nmem = s.assimilation.n_members
        self.localization = np.inf if self.kind == "etkf" else float(g.localization_km)
        self.adaptive = (enkf.AdaptiveInflation(g.adaptive_std, 1.0, g.inflation_max) if g.inflation == "adaptive"
                         else None)
        if self.adaptive is not None and g.inflation_factor > g.inflation_max:
            raise UserError(f"{where(s.source, G, 'inflation_factor')} = {g.inflation_factor:g}: the first value of "
                            f"the adaptive inflation must not exceed inflation_max = {g.inflation_max:g}")
        if 0 < self.localization < np.inf:
            near = nearest_neighbour_km(inputs.lat, inputs.lon)
            if len(near) > 1 and not np.any(2.0 * self.localization > near):
                raise UserError(f"{where(s.source, G, 'localization_km')} = {g.localization_km:g}: the Gaspari-Cohn "
                                f"support (2 x {g.localization_km:g} km) reaches no neighbouring column (nearest "
                                f"column centres {near.min():.0f} km apart), so no column would see another's "
                                f"observations; expected 0 (column-local filter) or more than "
                                f"{0.5 * near.min():.0f} km")
        glat, glon = np.asarray(inputs.grid_lat, float), np.asarray(inputs.grid_lon, float)
        cell = (float(np.abs(np.diff(glat)).max()) if len(glat) > 1 else 180.0,
                float(np.abs(np.diff(glon)).max()) if len(glon) > 1 else 360.0)
        dz = self.dz = inputs.params.dz_soil

        def weights(depths):
            return operator_weights(settings, dz, depths)

        self.obs = ObservationSet(settings, inputs.column, inputs.pft, domain=getattr(inputs, "domain", None),
                                  weights=weights, lat=inputs.lat, lon=inputs.lon, cell_deg=cell,
                                  run_porosity=inputs.params.soilpar[L.SP_THETA_S, 0])
        w = weights(self.obs.sensing_depth)
        self.nsnap = max(self.n, int(np.flatnonzero(w.any(axis=0)).max()) + 1)
        self.weights = w[:, : self.nsnap]
        # brightness-temperature sensors: the shared model-equivalent layer (retrieval-only runs keep the code below)
        self.eq = None
        if any(self.obs.is_tb):
            from .equivalents import ModelEquivalents, operator_params

            self.eq = ModelEquivalents.for_observations(self.obs, dz, obs_operator=s.assimilation.obs_operator,
                                                        obs_layer=s.assimilation.obs_layer, min_layers=self.n,
                                                        tau_omega_params=operator_params(s))
            self.nsnap = self.eq.nsnap
        self.units = tuple("K" if tb else "m3 m-3" for tb in self.obs.is_tb)
        self.run_lat, self.run_lon = np.asarray(inputs.lat, float), np.asarray(inputs.lon, float)
        self.run_column = np.asarray(inputs.column, dtype=np.int64)
        self.tally = ObservationTally(self.obs.sensors, self.obs)
        self.writer = None
        if comm is not None and s.assimilation.diagnostics:
            from .diagnostics import AnalysisWriter

            self.writer = AnalysisWriter(comm, s.output_directory / "analysis", s.experiment.name, self.obs.sensors,
                                         self.n, row_meta=ROW_META, col_meta=COL_META, units=self.units)

    # ---- window start
    def plan(self, ctx) -> ForecastRequest | None:
        if ctx.time > self.end:
            return None
        N = ctx.n_members
        obs, ids = window_observations(self.obs, ctx.window_start, ctx.time, ctx.column)
        sub = np.unique(obs.position[obs.reason == USED])  # local columns with candidate retrievals
        flat = (sub[:, None] * N + np.arange(N)[None, :]).ravel()
        if not len(sub):
            record = None
        elif self.eq is not None:
            record = self.eq.record_function(flat)
        else:
            record = equivalents_recorder(flat, self.dz, self.nsnap)
        return ForecastRequest(record=record, payload={"obs": obs, "ids": ids, "sub": sub})

    # ---- window end
    def equivalents(self, ctx, obs, sub, records):
        """Model equivalents (nrow, N) of the window's candidate rows and the model QC (ensemble mean frozen or
        snow-covered at the observation time)."""
        N = ctx.n_members
        cand = np.flatnonzero(obs.reason == USED)
        if len(cand) == 0 or records is None:
            return cand, np.zeros((0, N))
        th = records["theta"]  # (nsteps, nsnap, nsub * N)
        k = operators.step_index(obs.time[cand], ctx.window_start, self.s.dt, th.shape[0])
        j = np.searchsorted(sub, obs.position[cand])
        fl = j[:, None] * N + np.arange(N)[None, :]  # (nrow, N) into the recorded flat columns
        frozen = records["t_top"][k[:, None], fl].mean(axis=1) <= TFRZ
        snow = records["swe"][k[:, None], fl].mean(axis=1) > SNOW_QC
        if self.eq is not None:  # Tb (and retrieval) rows through the shared layer; Tb rows: no member frozen
            from .equivalents import site_parameters

            flat = (sub[:, None] * N + np.arange(N)[None, :]).ravel()
            site = site_parameters(ctx, flat)
            he = self.eq.member_values(records, k, j * N, obs.sensor[cand], N, site)
            member_bad = self.eq.model_qc(records, np.repeat(k, N), fl.ravel(),
                                          np.repeat(obs.sensor[cand], N)).reshape(-1, N)
            frozen |= self.eq.is_tb[obs.sensor[cand]] & member_bad.any(axis=1)
        else:
            he = np.einsum("rl,rlm->rm", self.weights[obs.sensor[cand]], th[k[:, None], :, fl].transpose(0, 2, 1))
        obs.reason[cand[frozen | snow]] = MODEL_QC
        ok = ~(frozen | snow)
        return cand[ok], he[ok]

    def analyse(self, ctx, request: ForecastRequest | None, forecast) -> Analysis | None:
        if request is None:
            return None
        g = self.g
        N = ctx.n_members
        obs: WindowObservations = request.payload["obs"]
        ids, sub = request.payload["ids"], request.payload["sub"]
        nloc = len(ctx.column)
        rows, he = self.equivalents(ctx, obs, sub, forecast.records)
        row_hx = np.full(len(obs), np.nan)
        row_sd = np.full(len(obs), np.nan)
        row_hx[rows] = he.mean(axis=1) if len(rows) else 0.0
        if len(rows):
            row_sd[rows] = he.std(axis=1, ddof=1)
        # gross-error check per observation (the same whichever column uses it)
        if self.gross > 0 and len(rows):
            r = obs.error[rows] ** 2
            bad = np.abs(obs.value[rows] - row_hx[rows]) > self.gross * np.sqrt(g.inflation_factor * row_sd[rows] ** 2
                                                                                 + r)
            obs.reason[rows[bad]] = GROSS_ERROR
            rows, he = rows[~bad], he[~bad]
        mine = {"column": obs.column[rows], "time": obs.time[rows].astype(np.int64), "sensor": obs.sensor[rows],
                "id": ids[rows], "y": obs.value[rows], "r": obs.error[rows] ** 2, "he": he,
                "lat": self.run_lat[np.searchsorted(self.run_column, obs.column[rows])],
                "lon": self.run_lon[np.searchsorted(self.run_column, obs.column[rows])]}
        if self.localization > 0:  # every rank needs every observation within the radius: allgather, global order
            parts = ctx.comm.allgather(mine)
            allobs = {k: np.concatenate([p[k] for p in parts]) for k in mine}
        else:
            allobs = mine
        order = np.lexsort((allobs["id"], allobs["sensor"], allobs["time"], allobs["column"]))
        allobs = {k: v[order] for k, v in allobs.items()}
        local = enkf.local_observations(ctx.lat, ctx.lon, allobs["lat"], allobs["lon"], self.localization,
                                        column_id=ctx.column, obs_column=allobs["column"])
        analysed = np.flatnonzero(local.n_obs > 0)
        info = {"obs": obs, "row_hx": row_hx, "row_sd": row_sd}
        if len(analysed) == 0:
            return Analysis(np.zeros(0, dtype=np.int64), np.zeros((self.n, 0)), info)
        local = enkf.LocalObservations(local.index[analysed], local.weight[analysed])
        from ..ensemble import ControlSpec, control_vector, split_control

        flat = (analysed[:, None] * N + np.arange(N)[None, :]).ravel()
        spec = ControlSpec(layers=self.n, soil_temperature=g.control_soil_temperature, swe=g.control_swe)
        E = control_vector(ctx.state.take(flat), self.dz, N, spec)  # (na, N, spec.size)
        rho = np.full(len(analysed), g.inflation_factor)
        if self.adaptive is not None:
            carried = self.carried(ctx)[analysed]
            rho = np.where(carried > 0, carried, g.inflation_factor)
        if self.kind == "enkf":
            noise = enkf.observation_noise(self.s.experiment.seed, int(np.datetime64(ctx.time, "s").astype(np.int64)),
                                           allobs["id"], N)
            res = local_stochastic_enkf(E, allobs["he"], allobs["y"], allobs["r"], noise, local, rho, self.adaptive)
        else:
            res = enkf.letkf(E, allobs["he"], allobs["y"], allobs["r"], local, rho, self.adaptive)
        Ea = res.ensemble
        if g.inflation == "rtpp":
            Ea = enkf.rtpp(Ea, E, g.relaxation)
        elif g.inflation == "rtps":
            Ea = enkf.rtps(Ea, E, g.relaxation)
        if self.adaptive is not None:
            self.carried(ctx)[analysed] = res.inflation
        parts = split_control((Ea - E).reshape(len(flat), spec.size), spec)  # flat order
        inc = parts["theta"].T  # (n, na * N)
        extra = {k: v for k, v in parts.items() if k != "theta"}  # t_soil_1 (K), swe (kg m-2)
        info.update({"analysed": analysed, "inflation": res.inflation, "n_local": res.n_obs,
                     "increment_unbounded": (Ea - E)[..., :self.n].mean(axis=1), "background": E[..., :self.n]})
        return Analysis(flat, inc, info, state_increments=extra)

    @staticmethod
    def carried(ctx) -> np.ndarray:
        try:
            return ctx.carry["inflation"]
        except KeyError:
            raise RuntimeError("adaptive inflation needs the driver's per-column carry state "
                               "(AnalysisContext.carry['inflation'])") from None

    # ---- diagnostics
    def write_diagnostics(self, ctx, analysis: Analysis, report) -> None:
        diag = self.diagnostics(ctx, analysis, report)
        self.tally.add(diag)
        if self.writer is not None:
            self.writer.write(ctx.time, diag)

    def diagnostics(self, ctx, analysis: Analysis, report) -> dict:
        """Per-retrieval and per-analysed-column diagnostics of this rank (global column indices)."""
        info = analysis.diagnostics
        obs = info["obs"]
        rows = {"time": obs.time, "column": obs.column, "sensor": obs.sensor, "value": obs.value,
                "error": obs.error, "reason": obs.reason, "hx": info["row_hx"],
                "innovation": obs.value - info["row_hx"], "hx_spread": info["row_sd"]}
        if self.eq is not None and obs.raw is not None:
            rows["value_raw"] = obs.raw
        analysed = info.get("analysed", np.zeros(0, dtype=np.int64))
        cols = {"column": ctx.column[analysed]}
        # every key on every rank, also without analysed columns: the writer keeps the keys all ranks have
        cols.update({k: np.zeros((0, self.n)) for k in ("background", "increment", "increment_unbounded",
                                                          "background_spread", "analysis_spread")})
        cols.update({k: np.zeros(0) for k in ("inflation", "n_local_obs", "water_added")})
        if len(analysed):
            N = ctx.n_members
            na, n = len(analysed), self.n
            E = info["background"]  # (na, N, n)
            applied = report.applied.T.reshape(na, N, n)
            cols.update({"background": E.mean(axis=1), "increment": applied.mean(axis=1),
                         "increment_unbounded": info["increment_unbounded"],
                         "background_spread": E.std(axis=1, ddof=1),
                         "analysis_spread": (E + applied).std(axis=1, ddof=1),
                         "inflation": info["inflation"], "n_local_obs": info["n_local"].astype(float),
                         "water_added": report.water_added.reshape(na, N).mean(axis=1)})
        return {"rows": rows, "columns": cols}

    def summary_entries(self, rundir) -> dict:
        """Collective: retrievals per sensor and reason ('observations') and, from the analysis files, the O - B
        statistics per sensor with the normalised innovation variance d^2 / (HPH^T + R) ('innovations')."""
        counts = self.tally.summary(self.comm)
        if counts is None:
            return {}
        out = {}
        if self.writer is not None:
            from .diagnostics import obs_statistics

            stats = obs_statistics(rundir / "analysis", self.s.experiment.name, self.obs.sensors, self.units)
            for name, v in ensemble_innovation_statistics(rundir / "analysis", self.s.experiment.name,
                                                          self.obs.sensors).items():
                stats[name].update(v)
            out["innovations"] = stats
        self.tally.warn(counts, self.s.source)
        out["observations"] = counts
        return out


def ensemble_innovation_statistics(directory, experiment: str, sensors) -> dict:
    """Per sensor over every analysis file: the normalised innovation variance mean(d^2 / (HPH^T + R)) with
    HPH^T from the ensemble spread of the model equivalents (1 for a consistent ensemble and R), and the mean
    ensemble spread of the model equivalents."""
    from pathlib import Path

    import netCDF4

    ns = len(sensors)
    z2, sd2, n = np.zeros(ns), np.zeros(ns), np.zeros(ns, dtype=np.int64)
    for f in sorted(Path(directory).glob(f"{experiment}_*.nc")):
        with netCDF4.Dataset(f) as nc:
            if "hx_spread" not in nc.variables or not len(nc.dimensions["obs"]):
                continue
            u = np.asarray(nc["reason"][:]) == 0
            k = np.asarray(nc["sensor"][:])[u]
            d = np.asarray(nc["innovation"][:], float)[u]
            sd = np.asarray(nc["hx_spread"][:], float)[u]
            e = np.asarray(nc["error"][:], float)[u]
            np.add.at(z2, k, d * d / (sd * sd + e * e))
            np.add.at(sd2, k, sd * sd)
            np.add.at(n, k, 1)
    return {name: {"normalised_innovation_variance": float(z2[i] / n[i]) if n[i] else float("nan"),
                   "hx_spread_rms": float(np.sqrt(sd2[i] / n[i])) if n[i] else float("nan")}
            for i, name in enumerate(sensors)}


@register
class EnkfMethod(EnsembleFilter):
    """Stochastic EnKF with perturbed observations (keyed by seed, analysis time, member and observation)."""

    name = "enkf"
    kind = "enkf"
    summary = "stochastic ensemble Kalman filter with perturbed observations (&enkf, docs/assimilation.md)"
    keys = KEYS  # the &enkf keys, declared once for the three methods


@register
class EtkfMethod(EnsembleFilter):
    """Square-root ETKF with every observation of the domain (no localisation)."""

    name = "etkf"
    kind = "etkf"
    summary = "ensemble transform Kalman filter, unlocalised (&enkf, docs/assimilation.md)"


@register
class LetkfMethod(EnsembleFilter):
    """Local ETKF: column-local (localization_km = 0) or 3-D with Gaspari-Cohn localisation."""

    name = "letkf"
    kind = "letkf"
    summary = "local ensemble transform Kalman filter, 1-D or 3-D (&enkf localization_km, docs/assimilation.md)"
