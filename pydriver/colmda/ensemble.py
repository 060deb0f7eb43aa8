"""Ensembles: the one (member, column) <-> flat-column convention, ensemble statistics and the control vector.

The core advances a batch of independent columns, so an ensemble of ``nmem`` members over ``ncol`` columns runs
as ``ncol * nmem`` flat columns in the same core call. This module fixes how the two indices map onto one.

Convention: column-major blocks (members of a column are adjacent)
------------------------------------------------------------------
::

    flat = column * nmem + member          column = flat // nmem,  member = flat % nmem

so the flat columns are ``[c0 m0, c0 m1, ..., c0 m(N-1), c1 m0, ...]``; any array whose last axis is the flat
column axis, shape ``(..., ncol * nmem)``, reshapes (C order) to ``(..., ncol, nmem)`` and back without moving
data when it is C-contiguous (:func:`unflatten` / :func:`flatten`). This is the order of
``ColumnState.repeat`` today. ``forcing.perturb.flatten_members`` uses the other order (member-major,
``flat = member * ncol + column``); :func:`from_member_major` and :func:`to_member_major` convert.

Why column-major, and what the restructure should adopt everywhere (state, forcing, perturbations, restarts,
output): **the rank that owns a column owns all its members**. With members adjacent,

* a contiguous block of columns ``[c0, c1)`` (what ``parallel.decompose`` gives a rank) is the contiguous block of
  flat columns ``[c0 * nmem, c1 * nmem)``: scattering, gathering and rebalancing move slices, and a column moves
  with its members by construction; the member-major order would scatter every column's members ``ncol`` apart;
* the analysis of a column (or of a local domain) reads its members as one contiguous ``(nmem, n)`` block;
* a restart or output file written per column with a member dimension is the same array reshaped;
* the layout does not depend on the number of columns, so one rank's flat index of (column, member) is the same
  function of its *local* column index whatever the decomposition, and keyed random numbers take the global
  column and member from :func:`global_keys`, never from the flat index or the rank.

Arrays of the analysis algebra (:mod:`colmda.assim.enkf`) put the column first, then the member, then the
state component: an ensemble ``E`` is ``(ncol, nmem, n)``. :func:`control_vector` builds it from a core state of
flat columns; :func:`split_control` splits a control-vector increment back into the state's variables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import layout as L
from .keyed import keyed_normal
from .keys import Key

__all__ = [
    'flat_index', 'member_and_column', 'global_keys', 'flatten', 'unflatten', 'from_member_major',
    'to_member_major', 'repeat_columns', 'ensemble_mean', 'anomalies', 'ensemble_spread', 'ControlSpec',
    'control_vector', 'split_control', 'KEYS', 'member_mean', 'mean_state', 'StatePerturbation',
]

A = "assimilation"
#: the ensemble's keys beside &assimilation n_members (colmda.config aggregates them)
KEYS = (
    Key(A, "state_perturbation_std", "float_list", [], "m3 m-3", "ensemble: standard deviation of the additive "
        "AR(1) perturbation of the total soil moisture of each top layer applied to every member at every window "
        "start (one value per layer from the top; empty = none; centred over the members, so the ensemble mean is "
        "not moved; through the consistency layer)",
        check=lambda v: None if all(0 <= x < 0.1 for x in v) and len(v) <= L.NL_SOIL
        else f"at most {L.NL_SOIL} values in [0, 0.1)"),
    Key(A, "state_perturbation_tau_hours", "float", 24.0, "h", "ensemble: correlation time of the state "
        "perturbations (AR(1) between windows: correlation exp(-window / tau))", lo=0.0, lo_open=True),
)


# ---------------------------------------------------------------------------------------------------------
# Index convention
# ---------------------------------------------------------------------------------------------------------

def flat_index(column, member, nmem: int):
    """Flat column index of (column, member): ``column * nmem + member`` (column-major blocks)."""
    _check_nmem(nmem)
    column = np.asarray(column)
    member = np.asarray(member)
    if np.any((member < 0) | (member >= nmem)):
        raise ValueError(f'member index outside [0, {nmem})')
    return column * nmem + member


def member_and_column(flat, nmem: int):
    """(member, column) of flat column indices (inverse of :func:`flat_index`)."""
    _check_nmem(nmem)
    column, member = np.divmod(np.asarray(flat), nmem)
    return member, column


def global_keys(columns, nmem: int):
    """The (global column, member) of every flat column, each of shape (ncol * nmem,), for keyed random
    numbers: ``columns`` are the global indices of the (local) columns in their local order."""
    _check_nmem(nmem)
    columns = np.asarray(columns, dtype=np.int64)
    return np.repeat(columns, nmem), np.tile(np.arange(nmem, dtype=np.int64), columns.size)


def flatten(a, axis_column: int = -2):
    """(..., ncol, nmem) -> (..., ncol * nmem) with the column and member axes at ``axis_column`` and
    ``axis_column + 1`` (default: the last two). A view when the input allows it."""
    a = np.asarray(a)
    ax = axis_column % a.ndim
    if ax + 1 >= a.ndim:
        raise ValueError('flatten: the member axis must follow the column axis')
    return a.reshape(a.shape[:ax] + (a.shape[ax] * a.shape[ax + 1],) + a.shape[ax + 2:])


def unflatten(a, nmem: int, axis: int = -1):
    """(..., ncol * nmem, ...) -> (..., ncol, nmem, ...) for the flat axis ``axis`` (default last)."""
    _check_nmem(nmem)
    a = np.asarray(a)
    ax = axis % a.ndim
    nflat = a.shape[ax]
    if nflat % nmem:
        raise ValueError(f'unflatten: {nflat} flat columns are not a whole number of {nmem}-member blocks')
    return a.reshape(a.shape[:ax] + (nflat // nmem, nmem) + a.shape[ax + 1:])


def from_member_major(a, nmem: int, axis: int = -1):
    """Reorder a flat axis from member-major (``member * ncol + column``, ``forcing.perturb.flatten_members``)
    to this module's column-major blocks (``column * nmem + member``). Returns a new array."""
    _check_nmem(nmem)
    a = np.asarray(a)
    ax = axis % a.ndim
    nflat = a.shape[ax]
    if nflat % nmem:
        raise ValueError(f'from_member_major: {nflat} flat columns are not {nmem} members of equal size')
    ncol = nflat // nmem
    b = a.reshape(a.shape[:ax] + (nmem, ncol) + a.shape[ax + 1:])
    return np.ascontiguousarray(np.swapaxes(b, ax, ax + 1)).reshape(a.shape)


def to_member_major(a, nmem: int, axis: int = -1):
    """Inverse of :func:`from_member_major`."""
    _check_nmem(nmem)
    a = np.asarray(a)
    ax = axis % a.ndim
    nflat = a.shape[ax]
    if nflat % nmem:
        raise ValueError(f'to_member_major: {nflat} flat columns are not a whole number of {nmem}-member blocks')
    b = a.reshape(a.shape[:ax] + (nflat // nmem, nmem) + a.shape[ax + 1:])
    return np.ascontiguousarray(np.swapaxes(b, ax, ax + 1)).reshape(a.shape)


def repeat_columns(a, nmem: int, axis: int = -1):
    """Every column of ``a`` repeated ``nmem`` times along ``axis`` in this module's order (the per-column
    parameters of an ensemble, or an ensemble started from one state)."""
    _check_nmem(nmem)
    return np.repeat(np.asarray(a), nmem, axis=axis)


def _check_nmem(nmem):
    if int(nmem) != nmem or nmem < 1:
        raise ValueError(f'member count must be a positive integer, got {nmem!r}')


# ---------------------------------------------------------------------------------------------------------
# Ensemble statistics on (ncol, nmem, n) arrays
# ---------------------------------------------------------------------------------------------------------

def ensemble_mean(E, axis: int = -2):
    """Mean over the member axis (default: the second last, as in ``(ncol, nmem, n)``)."""
    return np.mean(E, axis=axis)


def anomalies(E, axis: int = -2):
    """Deviations from the ensemble mean, same shape as ``E`` (they sum to zero over members)."""
    E = np.asarray(E, dtype=float)
    return E - np.mean(E, axis=axis, keepdims=True)


def ensemble_spread(E, axis: int = -2):
    """Ensemble standard deviation with the unbiased (N - 1) normalisation."""
    return np.std(E, axis=axis, ddof=1)


# ---------------------------------------------------------------------------------------------------------
# Control vector
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlSpec:
    """What the EnKF family analyses in each column: volumetric soil moisture (liquid + ice, m3 m-3) of the top
    ``layers`` soil layers, optionally the top soil layer's temperature (K) and the snow water equivalent
    (kg m-2). The components are ordered as :attr:`names`."""

    layers: int = 7
    soil_temperature: bool = False
    swe: bool = False

    def __post_init__(self):
        if not 1 <= self.layers <= L.NL_SOIL:
            raise ValueError(f'control layers must be in [1, {L.NL_SOIL}], got {self.layers}')

    @property
    def size(self) -> int:
        return self.layers + int(self.soil_temperature) + int(self.swe)

    @property
    def names(self) -> tuple:
        names = [f'theta_{k + 1}' for k in range(self.layers)]
        if self.soil_temperature:
            names.append('t_soil_1')
        if self.swe:
            names.append('swe')
        return tuple(names)

    @property
    def units(self) -> tuple:
        return ('m3 m-3',) * self.layers + (('K',) if self.soil_temperature else ()) + \
            (('kg m-2',) if self.swe else ())


def control_vector(state, dz_soil, nmem: int, spec: ControlSpec = ControlSpec()):
    """The control vector of every member and column, ``(ncol, nmem, spec.size)``, from a core state of
    ``ncol * nmem`` flat columns (a ``ColumnState``; only its views ``volumetric_soil_moisture``,
    ``soil_temperature`` and ``cstate`` are used)."""
    theta = np.asarray(state.volumetric_soil_moisture(dz_soil))[:spec.layers]  # (layers, nflat)
    parts = [theta]
    if spec.soil_temperature:
        parts.append(np.asarray(state.soil_temperature())[:1])
    if spec.swe:
        parts.append(np.asarray(state.cstate)[L.CS_SCV][None, :])
    x = np.concatenate(parts, axis=0)  # (size, nflat)
    return np.ascontiguousarray(np.moveaxis(unflatten(x, nmem, axis=1), 0, -1))


def split_control(dx, spec: ControlSpec):
    """Split control-vector values ``(..., spec.size)`` into a dict: ``theta`` (..., layers) and, when
    controlled, ``t_soil_1`` (...) and ``swe`` (...)."""
    dx = np.asarray(dx)
    if dx.shape[-1] != spec.size:
        raise ValueError(f'control vector has {dx.shape[-1]} components, the spec {spec.size}')
    out = {'theta': dx[..., :spec.layers]}
    k = spec.layers
    if spec.soil_temperature:
        out['t_soil_1'] = dx[..., k]
        k += 1
    if spec.swe:
        out['swe'] = dx[..., k]
    return out



# ---------------------------------------------------------------------------------------------------------
# Member means (history of an ensemble run) and state perturbations
# ---------------------------------------------------------------------------------------------------------

def member_mean(a, nmem: int, axis: int = -1):
    """Mean over the members of a flat axis, by sequential element-wise additions, so that every column's mean
    is independent of how many columns the array holds (bitwise identical for any rank count)."""
    if nmem == 1:
        return np.asarray(a)
    u = np.moveaxis(unflatten(a, nmem, axis=axis), axis % np.ndim(a) + 1, 0)  # (nmem, ..., ncol, ...)
    acc = u[0].copy()
    for m in range(1, nmem):
        acc += u[m]
    return acc / nmem


def mean_state(state, nmem: int):
    """The member mean of every array of a core state of flat columns (a ``ColumnState`` of the columns): what
    the history of an ensemble run shows. Water and energy storages are linear in these arrays, so the storages
    of the mean state are the means of the members' storages."""
    if nmem == 1:
        return state
    return type(state)(**{k: np.asfortranarray(member_mean(v, nmem)) for k, v in state.arrays().items()})


_STREAM_STATE = 201  # key stream of the state perturbations (forcing perturbations use 101-112)


@dataclass(frozen=True)
class StatePerturbation:
    """Additive AR(1) perturbations of the total soil moisture of the top layers of every member, applied at
    every window start (GEOSldas / LIS practice for land-state perturbations).

    For member m of global column c and layer k, ``a_w = phi a_(w-1) + sqrt(1 - phi^2) z_w`` with
    ``phi = exp(-window / tau)`` and ``z_w`` standard normal keyed by (seed, stream, window, layer, c, m), never by
    rank; ``a`` starts stationary (``a_0 = z_0``). The increment of window w is ``std_k (a_w - mean over members)``:
    centred so that the perturbations spread the members without moving the ensemble mean. ``a`` is carried
    between windows (in the restart files).
    """

    std: tuple  # m3 m-3 per top layer
    phi: float  # AR(1) coefficient between consecutive windows

    @classmethod
    def from_settings(cls, settings) -> "StatePerturbation | None":
        a = settings.assimilation
        std = tuple(float(x) for x in a.state_perturbation_std)
        if not std or not any(std) or a.n_members < 2:
            return None
        return cls(std, math.exp(-a.window_hours / a.state_perturbation_tau_hours))

    @property
    def layers(self) -> int:
        return len(self.std)

    def step(self, previous, seed: int, window: int, columns, nmem: int):
        """(new AR(1) values, increment) for window ``window`` (global experiment window index): ``previous``
        (layers, ncol * nmem) or None at the first window, ``columns`` the global index of each (local) column.
        The increment (layers, ncol * nmem) is in m3 m-3."""
        col, mem = global_keys(columns, nmem)
        k = np.arange(self.layers, dtype=np.int64)[:, None]
        z = keyed_normal(seed, _STREAM_STATE, window, k, col[None, :], mem[None, :])
        a = z if previous is None else self.phi * previous + math.sqrt(1.0 - self.phi ** 2) * z
        centred = a - repeat_columns(member_mean(a, nmem), nmem)
        return a, np.asarray(self.std)[:, None] * centred
