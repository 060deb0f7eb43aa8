"""Keyed random numbers: pure functions of integer keys (seed, stream, member, time index, global column ...).

:func:`keyed_uniform` hashes the keys with the SplitMix64 finaliser (Steele et al. 2014) and :func:`keyed_normal`
maps the result through the inverse normal CDF. Nothing depends on request order, on the set of columns requested
or on the MPI rank, so any split of the columns and any restart reproduce the same numbers bit for bit. Used by
the forcing perturbations (:mod:`colmda.forcing.perturb`), the ensemble's state perturbations
(:mod:`colmda.ensemble`) and the analyses' perturbed observations.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["keyed_uniform", "keyed_normal"]

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_START = np.uint64(0x243F6A8885A308D3)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix64(x):
    x = x ^ (x >> _S30)
    x = x * _C1
    x = x ^ (x >> _S27)
    x = x * _C2
    return x ^ (x >> _S31)


def _hash(keys):
    with np.errstate(over='ignore'):
        h = _START
        for k in keys:
            k = np.asarray(k)
            if k.dtype != np.uint64:
                k = k.astype(np.int64).astype(np.uint64)
            h = _mix64(h ^ _mix64(k + _GOLD))
    return h


def keyed_uniform(*keys):
    """Uniform numbers in (0, 1), a pure function of integer keys (broadcast like numpy).

    Put scalar keys first and arrays last (it is faster). 53-bit resolution; never exactly 0 or 1.
    """
    h = _hash(keys)
    return ((h >> _S11).astype(np.float64) + 0.5) * (2.0 ** -53)


def keyed_normal(*keys):
    """Standard normal numbers, a pure function of integer keys (inverse CDF of :func:`keyed_uniform`)."""
    return special.ndtri(keyed_uniform(*keys))
