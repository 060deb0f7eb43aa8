"""Model equivalents of observations, shared by every analysis method (SEKF, EnKF family, O-F monitor).

Three steps, each a plain function or method over arrays:

1. **Records** (:meth:`ModelEquivalents.record_function`): a function the forecast calls on the whole batch after
   every model step (``ForecastRequest.record``). It snapshots what the operators need for every column of the
   batch -- background columns, the SEKF's perturbed copies, ensemble members (flat columns
   ``local_column * N + member``), whatever the method put there -- or for a chosen subset (``columns``, e.g. the
   members of the observed columns). Stacked over the steps by the driver, the records are (names, shapes with
   ``nb`` = recorded columns):

   ``theta``      (nsteps, nsnap, nb)  m3 m-3  total (liquid + ice) volumetric water of the top ``nsnap`` layers
   ``t_top``      (nsteps, nb)         K       temperature of the top soil layer (model QC)
   ``swe``        (nsteps, nb)         kg m-2  snow water equivalent (model QC)
   ``theta_ice``  (nsteps, nsense, nb) m3 m-3  ice of the layers a Tb sensor sees (Tb sensors only)
   ``t_soil``     (nsteps, ntemp, nb)  K       soil temperature down to the layer below the 50 cm node (Tb only)

2. **Values** (:meth:`ModelEquivalents.values`): the model equivalent of observation rows given the step index
   ``k`` of each row (:func:`colmda.obs.operators.step_index`), its position in the batch and its sensor:

   * retrieval sensors (volumetric soil moisture; saturation products are converted on reading): the weighted
     total water ``sum_l w_l theta_l`` over the sensed layers (``obs_operator = 'sensing_depth'``: exponential
     sensing weights; ``'layer'``: the single layer ``obs_layer``);
   * brightness-temperature sensors (quantity ``tb_h`` / ``tb_v``): the tau-omega operator
     (:func:`colmda.obs.tau_omega.brightness_temperature`) of the LIQUID water of the sensed layers (sensing
     weights of the file's sensing depth), the Choudhury effective temperature of the layer temperatures, and the
     LAI (this window's), PFT and clay of the column behind the batch position (:class:`SiteParameters`) -- the
     same computation, in the same order, as the twin's truth simulator (:class:`colmda.obs.simulate.TbSimulator`).

3. **Model QC** (:meth:`ModelEquivalents.model_qc`): rows whose model state at the observation step cannot be
   compared with the observation: top soil layer at or below the core's freezing point or SWE above
   :data:`SNOW_QC`; for Tb rows also ice above :data:`ICE_QC` in a sensed layer (the operator models neither
   frozen soil nor snow).

A method builds one :class:`ModelEquivalents` from its :class:`colmda.assim.observations.ObservationSet`
(:meth:`ModelEquivalents.for_observations`), passes ``record_function()`` to the forecast, and at the window end
calls ``values`` / ``model_qc`` with the stacked records and :func:`site_parameters` of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE, TFRZ
from ..errors import UserError
from ..obs import operators, tau_omega
from ..obs.format import TB_QUANTITIES

__all__ = ['SNOW_QC', 'ICE_QC', 'SensorOperator', 'SiteParameters', 'ModelEquivalents', 'volumetric_layers',
           'site_parameters', 'retrieval_weights', 'operator_params']

SNOW_QC = 1.0  # kg m-2: model snow above this at the observation time rejects an observation
ICE_QC = 0.001  # m3 m-3: Tb rows are rejected when a sensed layer (weight >= 1 %) holds more ice than this
TB_LAYER_WEIGHT_MIN = 0.01  # sensed layers with a smaller weight do not count for the Tb ice check


def volumetric_layers(state, dz: np.ndarray, nl: int) -> np.ndarray:
    """Total (liquid + ice) volumetric soil moisture of the top ``nl`` layers (nl, ncol), m3 m-3."""
    s = L.NSNOW_MAX
    return (state.wliq_soisno[s:s + nl] / DENH2O + state.wice_soisno[s:s + nl] / DENICE) / dz[:nl, None]


def retrieval_weights(dz: np.ndarray, sensing_depth: float, obs_operator: str = "sensing_depth",
                      obs_layer: int = 2) -> np.ndarray:
    """Operator weights (nl,) of a retrieval sensor over the soil layers (&assimilation obs_operator/obs_layer)."""
    w = np.zeros(L.NL_SOIL)
    if obs_operator == "layer":
        w[obs_layer - 1] = 1.0
    else:
        w[:] = operators.sensing_weights(dz, sensing_depth)
    return w


@dataclass(frozen=True)
class SensorOperator:
    """The observation operator of one sensor."""

    name: str
    kind: str  # 'retrieval' (m3 m-3) or 'tb' (K)
    weights: np.ndarray  # (nl,) weights over the soil layers (retrieval: of total water; Tb: of liquid water)
    polarisation: str = ""  # 'h' or 'v' (Tb)


@dataclass
class SiteParameters:
    """What the Tb operator needs of the column behind each batch position (arrays over the batch, nb)."""

    lai: np.ndarray  # m2 m-2, this window's leaf area index
    pft: np.ndarray  # int, dominant PFT (colmda.pft order)
    clay: np.ndarray  # 1, clay mass fraction


def site_parameters(ctx, batch_columns=None) -> SiteParameters:
    """:class:`SiteParameters` of a batch from an analysis context at the window END (``ctx.params`` holds this
    window's LAI then). ``batch_columns``: for every batch position the flat local column (index into
    ``ctx.state`` / ``ctx.params``) whose parameters it uses, e.g. ``concatenate([arange(nloc),
    request.extra_positions])``; default: the background columns. PFT and clay come from ``ctx.inputs`` (per global
    column; flat column f belongs to local column f // n_members)."""
    nflat = ctx.params.colpar.shape[1]
    idx = np.arange(nflat) if batch_columns is None else np.asarray(batch_columns, dtype=np.int64)
    inputs = ctx.inputs
    if inputs is None or getattr(inputs, "pft", None) is None or getattr(inputs, "clay", None) is None:
        raise UserError("Tb observation operator: the run inputs lack the PFT or the clay fraction per column "
                        "(RunInputs.pft / RunInputs.clay); the tau-omega operator needs both")
    gcol = np.asarray(ctx.column)[idx // max(int(ctx.n_members), 1)]
    pos = np.searchsorted(inputs.column, gcol)
    return SiteParameters(lai=np.asarray(ctx.params.colpar[L.CP_LAI], float)[idx],
                          pft=np.asarray(inputs.pft, dtype=np.int64)[pos],
                          clay=np.asarray(inputs.clay, dtype=float)[pos])


def operator_params(settings) -> tau_omega.TauOmegaParams:
    """The tau-omega operator settings of a run (&observations tb_roughness; the rest SMAP-like defaults)."""
    return tau_omega.TauOmegaParams(h=float(settings.observations.tb_roughness))


def _wsum(w, a):
    """sum_j w[j] a[:, j] in a fixed order (the truth simulator's order: bitwise the same values)."""
    out = np.zeros(a.shape[0])
    for j in range(w.size):
        out += w[j] * a[:, j]
    return out


class ModelEquivalents:
    """The operators of a set of sensors: what to record after every step, model equivalents and model QC.

    ``sensors``: one :class:`SensorOperator` per sensor (index = the observation rows' ``sensor``); ``dz`` (m)
    soil layer thicknesses; ``min_layers``: record at least this many layers of ``theta`` (e.g. the SEKF's control
    layers, whose window-end values it also needs); ``tau_omega_params``: operator settings of the Tb sensors."""

    def __init__(self, sensors, dz, *, min_layers: int = 0,
                 tau_omega_params: tau_omega.TauOmegaParams | None = None):
        from ..core import soil_nodes

        self.sensors = tuple(sensors)
        self.dz = np.asarray(dz, dtype=float)
        deepest = max((int(np.flatnonzero(s.weights).max()) + 1 for s in self.sensors), default=1)
        self.nsnap = max(int(min_layers), deepest)
        self.weights = np.stack([s.weights[: self.nsnap] for s in self.sensors]) if self.sensors else \
            np.zeros((0, self.nsnap))  # (nsensor, nsnap)
        self.is_tb = np.array([s.kind == "tb" for s in self.sensors], dtype=bool)
        self.params = tau_omega_params or tau_omega.TauOmegaParams()
        if self.is_tb.any():
            tb_w = self.weights[self.is_tb]
            self.nsense = int(np.flatnonzero(tb_w.any(axis=0)).max()) + 1
            self.t_weights = tau_omega.temperature_weights(soil_nodes(self.dz))
            self.ntemp = int(np.flatnonzero(self.t_weights).max()) + 1
        else:
            self.nsense = self.ntemp = 0
            self.t_weights = None

    @classmethod
    def for_observations(cls, obs, dz, *, obs_operator="sensing_depth", obs_layer=2, min_layers=0,
                         tau_omega_params=None) -> "ModelEquivalents":
        """The operators of the sensors of an :class:`~colmda.assim.observations.ObservationSet` (its
        ``sensors``, ``quantities`` and ``sensing_depth``); retrievals follow &assimilation obs_operator /
        obs_layer, Tb sensors always use the sensing weights of their file's sensing depth."""
        ops = []
        for name, quantity, depth in zip(obs.sensors, obs.quantities, obs.sensing_depth):
            if quantity in TB_QUANTITIES:
                ops.append(SensorOperator(name, "tb", operators.sensing_weights(dz, depth), quantity[-1]))
            else:
                ops.append(SensorOperator(name, "retrieval", retrieval_weights(dz, depth, obs_operator, obs_layer)))
        return cls(ops, dz, min_layers=min_layers, tau_omega_params=tau_omega_params)

    @property
    def has_tb(self) -> bool:
        return bool(self.is_tb.any())

    # ---- 1. records
    def record_function(self, columns=None):
        """The per-step record function (``ForecastRequest.record``) for any batch of columns. ``columns``: record
        only these batch columns (e.g. the flat member columns of the observed columns of an ensemble; records
        of every flat column of a large ensemble would not fit in memory), in this order; the ``position`` of the
        rows passed to :meth:`values` / :meth:`model_qc` then indexes them. Default: every batch column."""
        s = L.NSNOW_MAX
        dz, nsnap, nsense, ntemp = self.dz, self.nsnap, self.nsense, self.ntemp
        idx = None if columns is None else np.asarray(columns, dtype=np.int64)

        def record(batch) -> dict:
            if idx is None:
                out = {"theta": volumetric_layers(batch, dz, nsnap), "t_top": batch.t_soisno[s].copy(),
                       "swe": batch.cstate[L.CS_SCV].copy()}
                ice, temp = batch.wice_soisno[s:s + nsense], batch.t_soisno[s:s + ntemp]
            else:
                out = {"theta": (batch.wliq_soisno[s:s + nsnap, idx] / DENH2O
                                 + batch.wice_soisno[s:s + nsnap, idx] / DENICE) / dz[:nsnap, None],
                       "t_top": batch.t_soisno[s, idx], "swe": batch.cstate[L.CS_SCV, idx]}
                ice, temp = batch.wice_soisno[s:s + nsense, idx], batch.t_soisno[s:s + ntemp, idx]
            if nsense:
                out["theta_ice"] = ice / DENICE / dz[:nsense, None]
                out["t_soil"] = temp.copy()
            return out

        return record

    # ---- 2. model equivalents
    def values(self, records: dict, step, position, sensor, site: SiteParameters | None = None,
               jacobian: bool = False):
        """Model equivalents (rows,) of observation rows at model ``step`` (index into the records' first axis),
        batch ``position`` and ``sensor`` (index into ``sensors``); m3 m-3 for retrievals, K for Tb. ``site``
        (:class:`SiteParameters` over the batch) is required when a row is a Tb row. With ``jacobian=True`` also
        returns d(equivalent)/d(theta_l) (rows, nsnap) of the operator alone at the recorded state (retrievals:
        the weights; Tb: dTb/dtheta_s times the liquid-water weight of unfrozen-enough layers)."""
        step = np.asarray(step, dtype=np.int64)
        position = np.asarray(position, dtype=np.int64)
        sensor = np.asarray(sensor, dtype=np.int64)
        tb = self.is_tb[sensor] if len(self.sensors) else np.zeros(len(sensor), dtype=bool)
        th = records["theta"]
        if not tb.any():  # retrieval rows only (the SEKF's path, one einsum as ever)
            hx = np.einsum("rl,rl->r", self.weights[sensor], th[step, :, position])
            return (hx, self.weights[sensor].copy()) if jacobian else hx
        hx = np.empty(len(sensor))
        dh = np.zeros((len(sensor), self.nsnap))
        r = np.flatnonzero(~tb)
        if len(r):
            hx[r] = np.einsum("rl,rl->r", self.weights[sensor[r]], th[step[r], :, position[r]])
            dh[r] = self.weights[sensor[r]]
        if site is None:
            raise UserError("Tb observation operator: no site parameters (LAI, PFT, clay) for the Tb rows")
        for k in np.flatnonzero(self.is_tb):
            rows = np.flatnonzero(sensor == k)
            if not len(rows):
                continue
            tb_k, d_k = self._tb(records, step[rows], position[rows], k, site, jacobian)
            hx[rows] = tb_k
            if jacobian:
                dh[rows] = d_k
        return (hx, dh) if jacobian else hx

    def member_values(self, records, step, first, sensor, n_members: int, site: SiteParameters | None = None):
        """Model equivalents (rows, N) of every member of an ensemble: row r's member m sits at recorded position
        ``first[r] + m`` (members adjacent, as the flat columns ``local_column * N + member``); ``site`` over the
        recorded positions. The ensemble methods' ``HE``."""
        step = np.asarray(step, dtype=np.int64)
        first = np.asarray(first, dtype=np.int64)
        sensor = np.asarray(sensor, dtype=np.int64)
        n = int(n_members)
        pos = (first[:, None] + np.arange(n)[None, :]).ravel()
        return self.values(records, np.repeat(step, n), pos, np.repeat(sensor, n), site).reshape(len(step), n)

    def tb_inputs(self, records, step, position, k):
        """(theta_s, t_eff, liquid weight mask) of Tb sensor ``k``'s rows: the liquid water seen by the sensor
        (m3 m-3) and the Choudhury effective temperature (K) at the recorded state."""
        nw = self.nsense
        w = self.weights[k, :nw]
        theta = records["theta"][step, :nw, position]  # (rows, nw)
        ice = records["theta_ice"][step, :nw, position]
        liquid = np.clip(theta - ice, 0.0, None)
        theta_s = _wsum(w, liquid)
        nz = self.ntemp
        t_eff = _wsum(self.t_weights[:nz], records["t_soil"][step, :nz, position])
        return theta_s, t_eff, theta - ice > 0.0

    def _tb(self, records, step, position, k, site, jacobian):
        theta_s, t_eff, wet = self.tb_inputs(records, step, position, k)
        pol = self.sensors[k].polarisation
        out = tau_omega.brightness_temperature(theta_s, t_eff, site.lai[position], site.pft[position],
                                               site.clay[position], params=self.params, jacobian=jacobian)
        value = out["tb_" + pol]
        if not jacobian:
            return value, None
        d = np.zeros((len(step), self.nsnap))
        nw = self.nsense
        d[:, :nw] = out["dtb_" + pol][:, None] * self.weights[k, :nw][None, :] * wet
        return value, d

    # ---- 3. model QC
    def model_qc(self, records: dict, step, position, sensor) -> np.ndarray:
        """True where the model state at the observation step cannot be compared with the observation: top soil
        layer at or below the core's freezing point, SWE above :data:`SNOW_QC`, and for Tb rows ice above
        :data:`ICE_QC` in a sensed layer."""
        step = np.asarray(step, dtype=np.int64)
        position = np.asarray(position, dtype=np.int64)
        sensor = np.asarray(sensor, dtype=np.int64)
        bad = (records["t_top"][step, position] <= TFRZ) | (records["swe"][step, position] > SNOW_QC)
        if self.has_tb and len(sensor):
            for k in np.flatnonzero(self.is_tb):
                rows = np.flatnonzero(sensor == k)
                if len(rows):
                    seen = self.weights[k, :self.nsense] >= TB_LAYER_WEIGHT_MIN
                    ice = records["theta_ice"][step[rows], :self.nsense, position[rows]][:, seen]
                    bad[rows] |= np.any(ice > ICE_QC, axis=1)
        return bad
