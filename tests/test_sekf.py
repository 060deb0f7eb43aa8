"""SEKF pure functions (colmda.assim.sekf) against the exact Kalman filter and known statistics.

- test_fd_jacobian_linear_exact: on a linear model the finite-difference Jacobian equals the analytic one to
  round-off, for one-sided (either sign) and two-sided differences; the linearity diagnostic is ~0.
- test_linearity_detects_curvature: a quadratic operator gives the expected nonzero linearity diagnostic.
- test_sekf_equals_kalman_filter: on a linear model x(t) = A_t x0 + c_t with Gaussian B and R, the SEKF
  analysis at the window end (Jacobians from perturbed runs, increment carried by the perturbed-run
  propagator) equals the exact conditional mean and covariance of x(t1) given the observations, computed
  independently from the joint Gaussian (gain form, m x m inverse).
- test_unused_rows_have_no_effect: padded/rejected observations change nothing and get zero gain.
- test_innovation_statistics: with the true B and R, normalised innovations have unit variance, the analysis
  error is smaller than the background error, and the filter's analysis variance matches the empirical one.
- test_bounded_increment: bounds (residual to porosity), no liquid below zero, frozen layers unchanged.
"""

import numpy as np
import pytest

from colmda.assim import sekf


def _linear_world(rng, ncol, n, m):
    """A random linear 'model + observation operator' per column: observation j sees state at its own time."""
    A1 = np.eye(n) + 0.1 * rng.standard_normal((ncol, n, n))  # propagator to the window end
    c1 = 0.01 * rng.standard_normal((ncol, n))
    Hop = rng.standard_normal((ncol, m, n)) * rng.uniform(0.2, 1.0, (ncol, m, 1))  # obs op incl. forecast
    cy = 0.01 * rng.standard_normal((ncol, m))
    return A1, c1, Hop, cy


def _runs(x0, A1, c1, Hop, cy):
    return np.einsum("cij,cj->ci", A1, x0) + c1, np.einsum("cij,cj->ci", Hop, x0) + cy


def test_fd_jacobian_linear_exact():
    rng = np.random.default_rng(1)
    ncol, n, m = 5, 7, 4
    A1, c1, Hop, cy = _linear_world(rng, ncol, n, m)
    xb = rng.uniform(0.1, 0.4, (ncol, n))
    dx = np.asarray(sekf.SEED_PERTURBATIONS)
    xb[0, :3] = 0.3999  # near saturation: these components must be perturbed downward
    signs = sekf.perturbation_signs(xb, dx, upper=np.full((ncol, n), 0.4))
    step = signs * dx
    _, yb = _runs(xb, A1, c1, Hop, cy)
    yp = np.stack([_runs(xb + step[:, i, None] * np.eye(n)[i], A1, c1, Hop, cy)[1] for i in range(n)], axis=1)
    H = sekf.fd_jacobian(yp, yb, step)
    # round-off of the difference quotient: eps * |y| / dx
    assert np.allclose(H, Hop, rtol=0, atol=1e-9)
    ym = np.stack([_runs(xb - step[:, i, None] * np.eye(n)[i], A1, c1, Hop, cy)[1] for i in range(n)], axis=1)
    H2 = sekf.fd_jacobian_two_sided(yp, ym, step)
    assert np.allclose(H2, Hop, rtol=0, atol=1e-9)
    assert sekf.linearity(yp, ym, yb).max() < 1e-6
    assert np.any(signs < 0) and np.any(signs > 0)  # both directions exercised


def test_linearity_detects_curvature():
    x, d = 0.2, 0.01
    f = lambda v: v ** 2  # noqa: E731
    yp, ym, yb = (np.array([[[f(x + d)]]]), np.array([[[f(x - d)]]]), np.array([[f(x)]]))
    fwd, bwd = f(x + d) - f(x), f(x) - f(x - d)
    assert sekf.linearity(yp, ym, yb)[0, 0] == pytest.approx(abs(fwd - bwd) / (fwd + bwd))
    H2 = sekf.fd_jacobian_two_sided(yp, ym, np.array([[d]]))
    assert H2[0, 0, 0] == pytest.approx(2 * x)  # centred difference is exact for a quadratic


def test_sekf_equals_kalman_filter():
    rng = np.random.default_rng(2)
    ncol, n, m = 6, 7, 5
    A1, c1, Hop, cy = _linear_world(rng, ncol, n, m)
    xb0 = rng.uniform(0.1, 0.4, (ncol, n))
    bvar = rng.uniform(0.01, 0.05, n) ** 2
    rvar = rng.uniform(0.02, 0.06, (ncol, m)) ** 2
    y = rng.uniform(0.1, 0.4, (ncol, m))
    # the SEKF way: perturbed runs of the (linear) model give H and the end-of-window propagator
    step = np.tile(np.asarray(sekf.SEED_PERTURBATIONS), (ncol, 1))
    x1b, yb = _runs(xb0, A1, c1, Hop, cy)
    pert = [_runs(xb0 + step[:, i, None] * np.eye(n)[i], A1, c1, Hop, cy) for i in range(n)]
    H = sekf.fd_jacobian(np.stack([p[1] for p in pert], 1), yb, step)
    Mt = np.transpose((np.stack([p[0] for p in pert], 1) - x1b[:, None, :]) / step[:, :, None], (0, 2, 1))
    res = sekf.analysis(y - yb, H, rvar, bvar, np.ones((ncol, m), bool), Mt)
    x1a = x1b + res.increment
    for c in range(ncol):  # exact KF for x(t1) from the joint Gaussian of (x1, y), gain form
        B = np.diag(bvar)
        Pxy = A1[c] @ B @ Hop[c].T
        Pyy = Hop[c] @ B @ Hop[c].T + np.diag(rvar[c])
        K = Pxy @ np.linalg.inv(Pyy)
        exact = x1b[c] + K @ (y[c] - yb[c])
        assert np.allclose(x1a[c], exact, rtol=0, atol=1e-10)
        Pa0 = B - B @ Hop[c].T @ np.linalg.inv(Pyy) @ Hop[c] @ B
        assert np.allclose(res.analysis_variance[c], np.diag(Pa0), rtol=1e-8, atol=0)
        # gain of the window-start state equals B H^T (H B H^T + R)^-1
        assert np.allclose(res.gain[c], B @ Hop[c].T @ np.linalg.inv(Pyy), rtol=1e-8, atol=1e-12)


def test_unused_rows_have_no_effect():
    rng = np.random.default_rng(3)
    ncol, n, m = 4, 7, 3
    H = rng.standard_normal((ncol, m, n))
    d = rng.standard_normal((ncol, m)) * 0.02
    r = np.full((ncol, m), 0.04 ** 2)
    b = np.full(n, 0.02 ** 2)
    full = sekf.analysis(d, H, r, b, np.ones((ncol, m), bool))
    # pad with two garbage rows that are marked unused
    Hp = np.concatenate([H, rng.standard_normal((ncol, 2, n)) * 1e3], axis=1)
    dp = np.concatenate([d, np.full((ncol, 2), 7.0)], axis=1)
    rp = np.concatenate([r, np.full((ncol, 2), np.nan)], axis=1)
    used = np.concatenate([np.ones((ncol, m), bool), np.zeros((ncol, 2), bool)], axis=1)
    pad = sekf.analysis(dp, Hp, rp, b, used)
    assert np.array_equal(pad.gain[:, :, m:], np.zeros((ncol, n, 2)))
    assert np.allclose(pad.increment, full.increment, rtol=1e-13, atol=1e-16)
    none = sekf.analysis(dp, Hp, rp, b, np.zeros_like(used))
    assert np.array_equal(none.increment, np.zeros((ncol, n)))


def test_innovation_statistics():
    rng = np.random.default_rng(4)
    ncol, n, m = 20000, 7, 2
    bstd = np.array([0.04, 0.035, 0.03, 0.03, 0.025, 0.02, 0.02])
    rstd = np.array([0.04, 0.06])
    H = np.zeros((ncol, m, n))
    H[:, :, 1] = rng.uniform(0.6, 1.0, (ncol, m))  # layer-2 operator with a forecast-dependent sensitivity
    H[:, :, 0] = rng.uniform(0.0, 0.3, (ncol, m))
    xt = rng.standard_normal((ncol, n)) * bstd  # truth minus background
    e = rng.standard_normal((ncol, m)) * rstd
    d = np.einsum("cjn,cn->cj", H, xt) + e
    res = sekf.analysis(d, H, np.broadcast_to(rstd ** 2, (ncol, m)), bstd ** 2, np.ones((ncol, m), bool))
    nd = d / np.sqrt(res.hbh + rstd ** 2)
    # the sum of two correlated unit normals is checked per observation: var of each normalised innovation ~ 1
    assert np.allclose(nd.var(axis=0), 1.0, atol=0.03)
    err_b = xt
    err_a = xt - res.increment
    assert (err_a ** 2).mean(0)[1] < 0.7 * (err_b ** 2).mean(0)[1]  # the observed layer improves most
    assert np.all((err_a ** 2).mean(0) <= (err_b ** 2).mean(0) * 1.01)  # none degrade
    # the filter's own analysis variance is the actual one (consistency of the gain)
    assert np.allclose((err_a ** 2).mean(0), res.analysis_variance.mean(0), rtol=0.05)


def test_bounded_increment():
    liq = np.array([[0.30, 0.05, 0.20, 0.10]])
    ice = np.array([[0.00, 0.00, 0.10, 0.00]])
    por = np.array([[0.40, 0.40, 0.40, 0.40]])
    low = np.array([[0.02, 0.02, 0.02, 0.02]])
    frozen = np.array([[False, False, True, False]])
    inc = np.array([[0.2, -0.1, 0.05, -0.05]])
    got = sekf.bounded_increment(liq, ice, inc, low, por, frozen)
    assert np.allclose(got, [[0.10, -0.03, 0.0, -0.05]])
    # a state already below the residual is not pushed further down, nor lifted by a negative increment
    got = sekf.bounded_increment(np.array([[0.01]]), np.array([[0.0]]), np.array([[-0.05]]), np.array([[0.02]]),
                                 np.array([[0.4]]), np.array([[False]]))
    assert np.allclose(got, 0.0)
