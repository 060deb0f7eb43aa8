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

from dataclasses import dataclass

import numpy as np

from . import layout as L

__all__ = [
    'flat_index', 'member_and_column', 'global_keys', 'flatten', 'unflatten', 'from_member_major',
    'to_member_major', 'repeat_columns', 'ensemble_mean', 'anomalies', 'ensemble_spread', 'ControlSpec',
    'control_vector', 'split_control',
]


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
