"""Image (curvelet-space EnKF-like) analysis, colmda.assim.image.

What each test proves:
- the effective gain C^T diag(K) C is symmetric positive semi-definite with eigenvalues in [0, max K]
  (computed as a full matrix on a small grid with a land mask);
- K = 1 (sigma_o = 0) gives the observed field on valid land cells; sigma_o -> infinity gives the background;
- in the linear-Gaussian limit (spatially white, uniform errors, large ensemble) the update is the point-wise
  Kalman filter x_b + sigma_b^2 / (sigma_b^2 + sigma_o^2) d, to the sampling error of the ensemble;
- ocean cells never change (both ocean treatments); per-scale weights are linear and exclusion works;
- observation gaps: far inside a gap the analysis stays the background;
- the keyed perturbations of a subset of columns equal those of the full set (rank independence);
- the layer distribution changes the model equivalent by exactly the analysed increment;
- bad input (no valid cell, wrong scale_weight length) gives one-line errors.
"""

import numpy as np
import pytest

from colmda.assim import image
from colmda.curvelet import CurveletFrame
from colmda.errors import UserError


def _fields(shape, seed=0, members=50):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    bg = 0.25 + 0.05 * np.sin(2 * np.pi * xx / nx) + 0.02 * rng.standard_normal(shape)
    ob = 0.30 + 0.08 * np.cos(2 * np.pi * (xx / nx + yy / ny)) + 0.02 * rng.standard_normal(shape)
    return bg, ob, rng.standard_normal((members,) + shape), rng.standard_normal((members,) + shape)


def _land(shape):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return ((xx - nx / 2) ** 2 / (0.4 * nx) ** 2 + (yy - ny / 2) ** 2 / (0.45 * ny) ** 2) < 1.0


def test_gain_operator_symmetric_psd_bounded():
    shape = (12, 16)
    frame = CurveletFrame(shape, nscales=3, wedges=(2, 4))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape, members=30)
    res = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1)
    kmax = max(k.max() for k in res.gain)
    assert 0 < kmax <= 1
    idx = np.flatnonzero(land.ravel())
    G = np.zeros((len(idx), len(idx)))
    for n, i in enumerate(idx):
        e = np.zeros(shape)
        e.flat[i] = 1.0
        G[:, n] = image.apply_gain(frame, res.gain, e).ravel()[idx]
    assert np.abs(G - G.T).max() < 1e-12
    ev = np.linalg.eigvalsh(0.5 * (G + G.T))
    assert ev.min() > -1e-12 and ev.max() <= kmax + 1e-12
    # the analysis increment is that operator applied to the innovation
    d = np.where(land, ob - bg, 0.0)
    assert np.allclose(G @ d.ravel()[idx], res.increment.ravel()[idx], atol=1e-12)


def test_k_one_gives_observed_and_infinite_r_gives_background():
    shape = (40, 64)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape)
    a1 = bg + image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.0).increment
    assert np.abs((a1 - ob)[land]).max() < 1e-6
    a0 = bg + image.analysis(bg, ob, land, frame, nb, no, 0.15, 1e6).increment
    assert np.abs((a0 - bg)[land]).max() < 1e-9
    for ocean in ("zero", "nearest"):
        inc = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, ocean=ocean).increment
        assert np.all(inc[~land] == 0.0)
        assert np.abs(inc[land]).max() > 0.01


def test_linear_gaussian_limit_is_pointwise_kalman_filter():
    shape = (32, 48)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8), periodic=(True, True))
    land = np.ones(shape, bool)
    bg, ob, nb, no = _fields(shape, members=800)
    sb, so = 0.15, 0.1
    inc = image.analysis(bg, ob, land, frame, nb, no, sb, so).increment
    k = sb ** 2 / (sb ** 2 + so ** 2)
    expected = k * (ob - bg)
    # sampling error of the gain with 800 members is a few per cent
    assert np.abs(inc - expected).max() < 0.05 * np.abs(ob - bg).max()
    ratio = np.sum(inc * (ob - bg)) / np.sum((ob - bg) ** 2)
    assert abs(ratio - k) < 0.02


def test_scale_weights_linear_and_exclusion():
    shape = (40, 64)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape)
    full = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1).increment
    coarse = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[1, 0, 0]).increment
    fine = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[0, 1, 1]).increment
    assert np.abs(coarse + fine - full).max() < 1e-12
    none = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[0, 0, 0]).increment
    assert np.all(none == 0)
    # the coarse-only increment is smooth: its cell-to-cell differences are much smaller than the full one's
    assert np.abs(np.diff(coarse, axis=1)[land[:, 1:] & land[:, :-1]]).mean() < \
        0.5 * np.abs(np.diff(full, axis=1)[land[:, 1:] & land[:, :-1]]).mean()


def test_gaps_keep_background_far_from_valid_cells():
    shape = (48, 96)
    frame = CurveletFrame(shape, nscales=4, wedges=(4, 8, 8), periodic=(True, True))
    land = np.ones(shape, bool)
    bg, ob, nb, no = _fields(shape)
    gap = ob.copy()
    gap[:, 30:70] = np.nan  # a 40-cell wide missing swath
    inc = image.analysis(bg, gap, land, frame, nb, no, 0.15, 0.1).increment
    inc_full = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1).increment
    middle = np.abs(inc[:, 45:55]).mean()
    assert middle < 0.1 * np.abs(inc_full[:, 45:55]).mean()
    assert np.abs(inc[:, :20]).mean() > 0.5 * np.abs(inc_full[:, :20]).mean()


def test_keyed_noise_rank_independent():
    cols = np.array([5, 17, 200, 3001, 3002])
    full = image.perturbation_noise(1, image.STREAM_BACKGROUND, 123, cols, 6)
    part = image.perturbation_noise(1, image.STREAM_BACKGROUND, 123, cols[2:], 6)
    assert np.array_equal(full[:, 2:], part)
    other = image.perturbation_noise(1, image.STREAM_OBSERVATION, 123, cols, 6)
    assert not np.allclose(full, other)
    assert abs(image.perturbation_noise(1, 301, 5, np.arange(4000), 50).std() - 1) < 0.01


def test_layer_distribution():
    dz = np.array([0.0175, 0.0276, 0.0455, 0.0750, 0.1236, 0.2038, 0.3360, 0.5539, 0.9133, 1.5058])
    h, a = image.layer_distribution(dz, 0.0, 0.1)
    assert abs(h.sum() - 1) < 1e-12 and abs(np.sum(h * a) - 1) < 1e-12
    assert np.allclose(a[:3], a[0]) and 0 < a[3] < a[0] and np.all(a[4:] == 0)
    h2, a2 = image.layer_distribution(dz, 0.1, 0.4)
    assert h2[0] == 0 and abs(np.sum(h2 * a2) - 1) < 1e-12
    with pytest.raises(UserError, match="depth"):
        image.layer_distribution(dz, 5.0, 6.0)


def test_bad_input():
    shape = (20, 32)
    frame = CurveletFrame(shape, nscales=3, wedges=(2, 4))
    bg, ob, nb, no = _fields(shape, members=5)
    with pytest.raises(UserError, match="no valid land cell"):
        image.analysis(bg, np.full(shape, np.nan), np.ones(shape, bool), frame, nb, no)
    with pytest.raises(UserError, match="scale_weight"):
        image.analysis(bg, ob, np.ones(shape, bool), frame, nb, no, scale_weight=[1, 1])


def test_image_grid_of_columns():
    lat = np.linspace(-88, 88, 12)
    lon = np.arange(0, 360, 15.0)  # 24
    cols = np.array([2 * 24 + 23, 2 * 24 + 0, 3 * 24 + 1, 5 * 24 + 22])  # a box across the date line
    g = image.ImageGrid.of_columns(np.sort(cols), lat, lon, is_global=True)
    assert g.shape == (4, 4) and not g.periodic_lon
    assert list(g.lon) == [330.0, 345.0, 0.0, 15.0]
    full = np.arange(12 * 24)
    g2 = image.ImageGrid.of_columns(full, lat, lon, is_global=True)
    assert g2.shape == (12, 24) and g2.periodic_lon
