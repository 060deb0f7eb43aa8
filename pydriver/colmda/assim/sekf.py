"""Simplified extended Kalman filter (SEKF), point-wise: pure functions on batches of independent columns.

Notation (seed 000 section 3.3; Balsamo et al. 2004; de Rosnay et al. 2013): the control vector x is the
volumetric soil moisture (m3 m-3) of the top ``n`` layers at the START of the assimilation window ``t0``. The
nonlinear observation operator ``Hop`` includes the model forecast from t0 to each observation time, so its
Jacobian ``H`` (m x n per column) is estimated by finite differences of perturbed model runs over the window:

    H[j, i] = (Hop_j(M(x_b + dx_i e_i)) - Hop_j(M(x_b))) / dx_i

The same perturbed runs also give the Jacobian of the state at the END of the window (the analysis time t1)
with respect to x(t0): ``Mt[k, i] = (x_k^(i)(t1) - x_k(t1)) / dx_i``. The analysis is the Kalman update of the
window-start state, carried to the analysis time with that tangent-linear propagator:

    dx0 = B H^T (H B H^T + R)^-1 d = (B^-1 + H^T R^-1 H)^-1 H^T R^-1 d,    d = y - Hop(x_b)
    x_a(t1) = x_b(t1) + Mt dx0

which is exactly the Kalman filter's update of x(t1) when the model and the operator are linear and the errors
Gaussian (tests/test_sekf.py). It needs no forecast beyond the background and the n perturbed runs, so an SEKF
window costs 1 + n forecasts (two-sided differences: 1 + 2n). B is static and diagonal per layer (ECMWF
practice); R diagonal. Every function here works on arrays with the column index first and loops only over
the small dimensions, never over columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .consistency import bounded_increment  # noqa: F401 (the bounds every method's increments go through)

#: the seed's per-layer perturbation sizes (m3 m-3) for the top seven layers (seed 000, section 3.3)
SEED_PERTURBATIONS = (0.001, 0.0001, 0.0001, 0.0001, 0.0005, 0.001, 0.0005)


def perturbation_signs(theta_b: np.ndarray, dx: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """+1 where x_b + dx stays below ``upper`` (e.g. porosity minus ice), else -1 (perturb downward), so that a
    perturbed state is always physical. Arrays (ncol, n)."""
    return np.where(theta_b + dx[None, :] <= upper, 1.0, -1.0)


def fd_jacobian(y_pert: np.ndarray, y_b: np.ndarray, step: np.ndarray) -> np.ndarray:
    """One-sided finite-difference Jacobian.

    y_pert: (ncol, n, m) model equivalents of the m observations from the run with control component i
    perturbed; y_b: (ncol, m) from the background run; step: (ncol, n) signed perturbation sizes.
    Returns H (ncol, m, n)."""
    return np.transpose((y_pert - y_b[:, None, :]) / step[:, :, None], (0, 2, 1))


def fd_jacobian_two_sided(y_plus: np.ndarray, y_minus: np.ndarray, step: np.ndarray):
    """Centred Jacobian from runs perturbed by +step and -step (both (ncol, n, m)); H (ncol, m, n). Its error is
    second order in the step where the one-sided difference is first order; :func:`linearity` measures how
    different the two one-sided slopes are."""
    return np.transpose((y_plus - y_minus) / (2.0 * step[:, :, None]), (0, 2, 1))


def linearity(y_plus: np.ndarray, y_minus: np.ndarray, y_b: np.ndarray) -> np.ndarray:
    """Nonlinearity of the operator for each perturbation: |forward slope - backward slope| / (|forward| +
    |backward|), 0 for a linear operator, up to 1; (ncol, n, m) -> (ncol, n) (max over observations; NaN-free:
    0 where both slopes vanish)."""
    fwd = y_plus - y_b[:, None, :]
    bwd = y_b[:, None, :] - y_minus
    den = np.abs(fwd) + np.abs(bwd)
    r = np.where(den > 0, np.abs(fwd - bwd) / np.where(den > 0, den, 1.0), 0.0)
    return r.max(axis=2) if r.shape[2] else np.zeros(r.shape[:2])


@dataclass
class SekfAnalysis:
    """Result of :func:`analysis` for a batch of columns."""

    increment0: np.ndarray  # (ncol, n) increment of the window-start state (m3 m-3)
    increment: np.ndarray  # (ncol, n) increment at the analysis time, Mt @ increment0 (m3 m-3)
    gain: np.ndarray  # (ncol, n, m) Kalman gain of the window-start state (zero columns for unused observations)
    hbh: np.ndarray  # (ncol, m) H B H^T diagonal: background error variance in observation space
    analysis_variance: np.ndarray  # (ncol, n) diagonal of the analysis error covariance at t0


def analysis(innovation: np.ndarray, H: np.ndarray, obs_var: np.ndarray, bg_var: np.ndarray,
             used: np.ndarray, Mt: np.ndarray | None = None) -> SekfAnalysis:
    """The SEKF update for a batch of columns, each with up to m observations (padded; ``used`` marks real ones).

    innovation: (ncol, m) y - Hop(x_b) (m3 m-3); H: (ncol, m, n); obs_var: (ncol, m) R diagonal; bg_var: (n,) or
    (ncol, n) B diagonal; used: (ncol, m) bool; Mt: (ncol, n, n) tangent-linear propagator to the analysis
    time (identity when None). Unused rows contribute nothing (their gain is exactly zero).

    Solved in information form with an n x n system per column (n = 7 controlled layers), which is exact and
    avoids inverting an m x m matrix whose size varies between columns.
    """
    ncol, m, n = H.shape
    bvar = np.broadcast_to(np.asarray(bg_var, dtype=float), (ncol, n))
    w = np.where(used, 1.0 / np.where(used, obs_var, 1.0), 0.0)  # R^-1 diagonal, 0 for unused rows
    Hw = H * w[:, :, None]  # R^-1 H
    A = np.einsum("cji,cjk->cik", H, Hw)  # H^T R^-1 H
    A[:, np.arange(n), np.arange(n)] += 1.0 / bvar
    b = np.einsum("cji,cj->ci", Hw, np.where(used, innovation, 0.0))  # H^T R^-1 d
    Ainv = np.linalg.inv(A)  # analysis error covariance at t0
    dx0 = np.einsum("cik,ck->ci", Ainv, b)
    gain = np.einsum("cik,cjk->cij", Ainv, Hw)  # K = (B^-1 + H^T R^-1 H)^-1 H^T R^-1
    hbh = np.einsum("cji,ci,cji->cj", H, bvar, H)
    dx1 = dx0 if Mt is None else np.einsum("cki,ci->ck", Mt, dx0)
    return SekfAnalysis(dx0, dx1, gain, hbh, np.einsum("cii->ci", Ainv).copy())


def gross_error_check(innovation: np.ndarray, hbh: np.ndarray, obs_var: np.ndarray, k: float) -> np.ndarray:
    """True where |d| <= k sqrt(H B H^T + R) (the innovation is plausible); everything passes when k <= 0."""
    if k <= 0:
        return np.ones(innovation.shape, dtype=bool)
    return np.abs(innovation) <= k * np.sqrt(hbh + obs_var)
