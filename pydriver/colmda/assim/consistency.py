"""The consistency layer: every analysis increment reaches the model state through here, whatever the method.

A method (SEKF, image analysis, each member of an EnKF) hands the driver an increment of the total (liquid + ice)
volumetric soil moisture of the top layers of some columns (:class:`colmda.assim.base.Analysis`). Before it
changes the core's state it is made physical and its water is counted:

* **bounds**: the analysed total water of a layer stays within [residual water content, porosity]
  (``SP_THETA_R``, ``SP_THETA_S``; a layer already below its residual content is not pushed up by the bound, only
  kept from going lower);
* **liquid/ice split consistent with temperature**: the increment changes liquid water only and leaves ice alone;
  a layer at or below the core's freezing point (:data:`colmda.constants.TFRZ`, 273.16 K, the core's ``tfrz``) is
  not changed at all, because liquid water added to (or taken from) frozen soil would contradict its temperature
  and the core's phase-change bookkeeping; liquid water never becomes negative;
* **water budget**: per column, the water added (kg m-2, negative = removed) is the sum over layers of the applied
  increment times rho_w dz, and the water the rules above refused is reported beside it
  (:class:`IncrementReport`); ``tests/test_consistency.py`` checks that it equals the change of the column's
  storage to round-off.

Arrays follow the core: layers first, columns last. The columns are flat columns, so the members of an ensemble
(:mod:`colmda.ensemble`: ``flat = column * nmem + member``) go through one call and every member is bounded by
its own state; :func:`per_member` views a report as (ncol, nmem). Temperatures, snow and everything else in the
state are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE, TFRZ


def bounded_increment(theta_liq: np.ndarray, theta_ice: np.ndarray, increment: np.ndarray, lower: np.ndarray,
                      porosity: np.ndarray, frozen: np.ndarray) -> np.ndarray:
    """The increment of liquid soil moisture that can actually be applied (all arrays the same shape, m3 m-3).

    The analysed total water is kept within [lower, porosity] (``lower``: residual water content; a total already
    below it may stay), liquid water stays non-negative, and layers that are frozen (``frozen`` True) are not
    changed. Element-wise, so it works on any layout (layers x columns or columns x layers).
    """
    total = theta_liq + theta_ice
    target = np.clip(total + increment, np.minimum(lower, total), porosity)
    inc = target - total
    inc = np.maximum(inc, -theta_liq)  # cannot remove more liquid than there is
    return np.where(frozen, 0.0, inc)


@dataclass
class IncrementReport:
    """What :func:`apply_increment` did to the analysed columns (``columns``: local flat column indices)."""

    columns: np.ndarray  # (nc,) int: local flat columns the increment was applied to
    background: np.ndarray  # (nl, nc) m3 m-3: total (liquid + ice) soil moisture before the analysis
    requested: np.ndarray  # (nl, nc) m3 m-3: the method's increment
    applied: np.ndarray  # (nl, nc) m3 m-3: the increment after bounds and frozen layers
    water_added: np.ndarray  # (nc,) kg m-2: water added to each column by the analysis (negative: removed)
    water_refused: np.ndarray  # (nc,) kg m-2: requested minus applied water (what the rules refused)
    frozen_layers: np.ndarray  # (nl, nc) bool: layers left unchanged because they are frozen
    #: what apply_state_increments applied ({'t_soil_1': K, 'swe': kg m-2, 'swe_refused': kg m-2}, each (nc,))
    state: dict | None = None

    @property
    def layers(self) -> int:
        return self.applied.shape[0]


def layer_water(increment: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Column water (kg m-2) of a volumetric increment (nl, nc) over layers of thickness ``dz`` (nl,) m, summed
    layer by layer in order (the same association for any number of columns, ranks or members)."""
    w = increment * DENH2O * dz[:, None]
    acc = np.zeros(w.shape[1]) if w.shape[0] == 0 else w[0].copy()
    for k in range(1, w.shape[0]):
        acc += w[k]
    return acc


def apply_increment(state, params, columns, increment: np.ndarray, freezing_point: float = TFRZ
                    ) -> IncrementReport:
    """Apply a soil-moisture increment to ``state`` IN PLACE through the rules of this module.

    state: a :class:`colmda.core.ColumnState` of flat columns; params: its :class:`colmda.core.ColumnParameters`;
    columns: local flat column indices (distinct) the increment belongs to; increment: (nl, len(columns)) total
    volumetric soil moisture (m3 m-3) of the top ``nl`` soil layers. Returns the :class:`IncrementReport`.
    """
    columns = np.asarray(columns, dtype=np.int64)
    increment = np.asarray(increment, dtype=np.float64)
    nl = increment.shape[0]
    if increment.shape != (nl, len(columns)):
        raise ValueError(f"increment of shape {increment.shape} for {len(columns)} column(s)")
    if len(np.unique(columns)) != len(columns):
        raise ValueError("an increment names a column twice")
    s = L.NSNOW_MAX
    dz = params.dz_soil[:nl]
    dzc = dz[:, None]
    liq = state.wliq_soisno[s:s + nl, columns] / DENH2O / dzc
    ice = state.wice_soisno[s:s + nl, columns] / DENICE / dzc
    par = params.soilpar
    lower = np.maximum(par[L.SP_THETA_R, :nl][:, columns], 0.0)
    porosity = par[L.SP_THETA_S, :nl][:, columns]
    frozen = state.t_soisno[s:s + nl, columns] <= freezing_point
    inc = bounded_increment(liq, ice, increment, lower, porosity, frozen)
    updated = state.wliq_soisno[s:s + nl, columns] + inc * DENH2O * dzc
    # removing all the liquid of a layer can leave -1e-17 kg m-2 of round-off: keep liquid water >= 0
    state.wliq_soisno[s:s + nl, columns] = np.maximum(updated, 0.0)
    added = layer_water(inc, dz)
    return IncrementReport(columns=columns, background=liq + ice, requested=increment, applied=inc,
                           water_added=added, water_refused=layer_water(increment, dz) - added,
                           frozen_layers=frozen)


def violations(before, after, params, nl: int | None = None, freezing_point: float = TFRZ) -> list[str]:
    """What an analysis did wrong between the states ``before`` and ``after`` (empty list: nothing): total soil
    moisture outside [min(residual, before), porosity], negative liquid water, changed ice, temperature, snow or
    column scalars, or a changed frozen layer. Checks the top ``nl`` soil layers' bounds (all by default)."""
    s = L.NSNOW_MAX
    nl = L.NL_SOIL if nl is None else nl
    dzc = params.dz_soil[:nl, None]
    out = []
    for name in ("t_soisno", "wice_soisno", "dz_snow", "cstate"):
        if not np.array_equal(getattr(before, name), getattr(after, name)):
            out.append(f"{name} changed")
    if not np.array_equal(before.wliq_soisno[:s], after.wliq_soisno[:s]):
        out.append("snow liquid water changed")
    theta_b = (before.wliq_soisno[s:s + nl] / DENH2O + before.wice_soisno[s:s + nl] / DENICE) / dzc
    theta_a = (after.wliq_soisno[s:s + nl] / DENH2O + after.wice_soisno[s:s + nl] / DENICE) / dzc
    lower = np.minimum(np.maximum(params.soilpar[L.SP_THETA_R, :nl], 0.0), theta_b)
    upper = np.maximum(params.soilpar[L.SP_THETA_S, :nl], theta_b)  # a layer above porosity may not grow
    tol = 1e-12
    if np.any(theta_a < lower - tol):
        out.append(f"{int((theta_a < lower - tol).sum())} layer(s) below the residual water content")
    if np.any(theta_a > upper + tol):
        out.append(f"{int((theta_a > upper + tol).sum())} layer(s) above porosity")
    if np.any(after.wliq_soisno[s:s + nl] < 0):
        out.append("negative liquid water")
    frozen = before.t_soisno[s:s + nl] <= freezing_point
    if np.any(frozen & (after.wliq_soisno[s:s + nl] != before.wliq_soisno[s:s + nl])):
        out.append("a frozen layer changed")
    return out


def per_member(values: np.ndarray, nmem: int) -> np.ndarray:
    """A per-flat-column report quantity (..., ncol * nmem) as (..., ncol, nmem) (colmda.ensemble convention)."""
    from ..ensemble import unflatten

    return unflatten(np.asarray(values), nmem)


#: an analysed top-soil temperature stays this far (K) above the freezing point: a temperature increment never
#: thaws or freezes a layer (that would need the phase-change bookkeeping of the core)
PHASE_MARGIN = 0.01
#: an analysis never removes more than this fraction of a column's snow (the core merges thin layers itself)
MAX_SNOW_REMOVED = 0.99


def apply_state_increments(state, columns, t_soil_1=None, swe=None) -> dict:
    """Apply increments of the top soil layer's temperature (K) and of the snow water equivalent (kg m-2) to the
    flat ``columns`` of ``state`` IN PLACE, with the rules of this module; returns what was applied (each (nc,)).

    Temperature: only a thawed top soil layer without ice changes, and it stays above the freezing point by
    :data:`PHASE_MARGIN` (the liquid/ice split stays consistent with the temperature); a frozen layer is left alone.
    SWE: only where there is snow; every snow layer's liquid water, ice and thickness and the column's SWE and
    snow depth are scaled by the same factor (density, layering and temperature unchanged), so the snow stays
    self-consistent; at most :data:`MAX_SNOW_REMOVED` of the snow is removed, and no snow is created where there is
    none (its temperature and density would be unknown). ``swe_refused`` is the requested minus applied SWE.
    """
    columns = np.asarray(columns, dtype=np.int64)
    s = L.NSNOW_MAX
    out = {}
    if t_soil_1 is not None:
        t = state.t_soisno[s, columns]
        ok = (t > TFRZ) & (state.wice_soisno[s, columns] <= 0.0)
        target = np.maximum(t + np.asarray(t_soil_1, float), TFRZ + PHASE_MARGIN)
        applied = np.where(ok, target - t, 0.0)
        state.t_soisno[s, columns] = t + applied
        out["t_soil_1"] = applied
    if swe is not None:
        swe = np.asarray(swe, float)
        scv = state.cstate[L.CS_SCV, columns]
        snowy = scv > 0.0
        target = np.maximum(scv + swe, (1.0 - MAX_SNOW_REMOVED) * scv)
        factor = np.where(snowy, target / np.where(snowy, scv, 1.0), 1.0)
        state.wliq_soisno[:s, columns] *= factor
        state.wice_soisno[:s, columns] *= factor
        state.dz_snow[:, columns] *= factor
        state.cstate[L.CS_SCV, columns] = scv * factor
        state.cstate[L.CS_SNOWDP, columns] *= factor
        applied = scv * factor - scv
        out["swe"] = applied
        out["swe_refused"] = swe - applied
    return out

