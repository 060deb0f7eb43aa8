"""Observation operators shared by the observation simulator, the analyses and the evaluation.

Everything here maps model soil layers (thicknesses ``dz_soil``, metres, top to bottom) to an observed quantity.
One place, so that the truth's retrievals, the filter's model equivalents and the evaluation all use the same
geometry.

Time convention: a forecast window covers the state times ``t0 + (k + 1) dt`` for steps ``k = 0 .. nsteps-1``.
An observation at time ``t`` belongs to the window when ``t0 < t <= t0 + nsteps dt`` and is compared with the
state at the end of the model step that contains it (:func:`step_index`).
"""

from __future__ import annotations

import numpy as np


def interfaces(dz_soil) -> np.ndarray:
    """Depths of the layer interfaces (m), length nlayer + 1, starting at 0."""
    return np.concatenate([[0.0], np.cumsum(np.asarray(dz_soil, dtype=float))])


def nodes(dz_soil) -> np.ndarray:
    """Depths of the layer centres (m)."""
    z = interfaces(dz_soil)
    return 0.5 * (z[:-1] + z[1:])


def layer_weights(dz_soil, top: float, bottom: float) -> np.ndarray:
    """Weights (sum 1) of each layer in the thickness-weighted mean over the depth range [top, bottom] (m)."""
    z = interfaces(dz_soil)
    if not 0.0 <= top < bottom <= z[-1]:
        raise ValueError(f"depth range [{top}, {bottom}] m must lie within the soil column [0, {z[-1]:.3f}] m")
    overlap = np.clip(np.minimum(z[1:], bottom) - np.maximum(z[:-1], top), 0.0, None)
    return overlap / overlap.sum()


def sensing_weights(dz_soil, sensing_depth: float, cutoff: float = 3.0) -> np.ndarray:
    """Weights (sum 1) of each layer for a microwave sensing depth ``sensing_depth`` (m): the contribution of depth
    z decays as exp(-z / sensing_depth) (penetration of the emitted or backscattered signal), integrated exactly
    over each layer and truncated at ``cutoff`` sensing depths."""
    if sensing_depth <= 0:
        raise ValueError(f"sensing depth must be positive, got {sensing_depth}")
    z = np.minimum(interfaces(dz_soil), cutoff * sensing_depth)
    w = np.exp(-z[:-1] / sensing_depth) - np.exp(-z[1:] / sensing_depth)
    return w / w.sum()


def point_weights(dz_soil, depth: float) -> np.ndarray:
    """Weights (sum 1) that interpolate linearly between layer centres to a point depth (m) (a probe at ``depth``);
    constant extrapolation above the first and below the last centre."""
    zn = nodes(dz_soil)
    w = np.zeros(len(zn))
    if depth <= zn[0]:
        w[0] = 1.0
    elif depth >= zn[-1]:
        w[-1] = 1.0
    else:
        k = int(np.searchsorted(zn, depth)) - 1
        f = (depth - zn[k]) / (zn[k + 1] - zn[k])
        w[k], w[k + 1] = 1.0 - f, f
    return w


def apply_weights(weights: np.ndarray, layered: np.ndarray, axis: int = 0) -> np.ndarray:
    """Weighted sum over the layer axis of ``layered`` (weights of length nlayer, or shorter: the top layers)."""
    w = np.asarray(weights, dtype=float)
    a = np.moveaxis(np.asarray(layered, dtype=float), axis, 0)[: len(w)]
    return np.tensordot(w, a, axes=(0, 0))


def step_index(times, t0, dt: float, nsteps: int) -> np.ndarray:
    """Index k of the model step whose end state is compared with an observation at ``times`` (datetime64 or
    datetime) in the window starting at ``t0``: k = ceil((t - t0) / dt) - 1. Raises if a time is outside
    (t0, t0 + nsteps dt]."""
    t = np.asarray(times, dtype="datetime64[s]")
    sec = (t - np.datetime64(t0, "s")).astype(np.int64)
    k = -(-sec // int(round(dt))) - 1
    if np.any((k < 0) | (k >= nsteps)):
        raise ValueError("observation time outside the window (t0, t0 + nsteps dt]")
    return k


# depth ranges (m) of the evaluation layers (the seed's ERA5-Land layers 0-7, 7-28, 28-100 cm)
EVALUATION_LAYERS = ((0.0, 0.07), (0.07, 0.28), (0.28, 1.0))
# depth of the in-situ probes (m) (the seed's 10 cm stations)
INSITU_DEPTH = 0.10
