"""The curvelet frame (colmda.curvelet): exact Parseval tight frame on any grid shape.

What each test proves:
- perfect reconstruction and Parseval to 1e-12 on 10 shapes (odd, prime, 256 x 128, 144 x 73, 1 x n, n x 1,
  periodic / non-periodic axes, 1 to 4 scales), for a batch of fields;
- the squared windows sum to one at every discrete frequency (the frame condition itself);
- scale parts add up to the field and separate plane waves by wavelength as the windows say;
- the zero padding of latitude keeps a point at one edge from reaching the opposite edge;
- cross-check with the PyPI `curvelets` UDCT (optional): the same per-scale energy partition where UDCT is exact,
  and on a non-divisible shape UDCT's inverse is wrong while ours stays exact;
- bad input (grid too small for the scales, wrong wedge count) gives one-line UserErrors naming the key.
"""

import numpy as np
import pytest

from colmda.curvelet import CurveletFrame
from colmda.errors import UserError

SHAPES = [
    ((128, 256), {}),  # the default domain, (lat, lon)
    ((73, 144), {}),  # 144 x 73 (2.5 degree grid), odd latitude count
    ((257, 131), {}),  # primes
    ((1, 97), {}),  # 1 x n
    ((97, 1), {}),  # n x 1
    ((31, 37), {"nscales": 3, "wedges": (4, 8)}),
    ((64, 64), {"periodic": (True, True)}),
    ((50, 81), {"periodic": (False, False)}),  # regional box
    ((17, 17), {"nscales": 2, "wedges": 1}),
    ((3, 2), {"nscales": 1}),
]


@pytest.mark.parametrize("shape,kw", SHAPES)
def test_perfect_reconstruction_and_parseval(shape, kw):
    rng = np.random.default_rng(7)
    f = CurveletFrame(shape, **kw)
    x = rng.standard_normal((3,) + shape) + 0.3
    c = f.forward(x)
    y = f.inverse(c)
    assert np.abs(y - x).max() / np.abs(x).max() < 1e-12
    energy = np.sum(x ** 2, axis=(-2, -1))
    assert np.allclose(c.energy(), energy, rtol=1e-12, atol=0)
    # one field alone gives the same coefficients as inside the batch
    c1 = f.forward(x[1])
    assert all(np.allclose(a[1], b, rtol=0, atol=1e-12) for a, b in zip(c.data, c1.data))


@pytest.mark.parametrize("shape,kw", SHAPES[:4])
def test_windows_partition_unity(shape, kw):
    f = CurveletFrame(shape, **kw)
    total = np.zeros(f.padded)
    for w in f.wedges:
        q = np.zeros(f.padded)
        q[np.ix_(w.iy, w.ix)] = w.window ** 2
        total += q
        if w.parts == 2:  # the mirror wedge, U(-k)
            total += q[(-np.arange(f.padded[0])) % f.padded[0]][:, (-np.arange(f.padded[1])) % f.padded[1]]
    assert np.abs(total - 1.0).max() < 1e-13


def test_float32_forward_close_to_float64():
    f = CurveletFrame((64, 96))
    x = np.random.default_rng(1).standard_normal((2, 64, 96))
    a, b = f.forward(x), f.forward(x.astype(np.float32), dtype=np.float32)
    assert b.data[3].dtype == np.float32
    assert max(np.abs(p - q).max() for p, q in zip(a.data, b.data)) < 1e-5


def test_scales_add_up_and_separate_wavelengths():
    n = 128
    f = CurveletFrame((n, n), nscales=4, periodic=(True, True))
    yy, xx = np.mgrid[0:n, 0:n]
    # radii 0.016, 0.094, 0.175, 0.35 cycles per cell: inside the flat parts of scales 0, 1, 2, 3 (edges 1/16, 1/8,
    # 1/4 with half an octave of transition)
    waves = {0: (2, 0), 1: (12, 0), 2: (20, 10), 3: (40, 20)}
    comp = {j: np.cos(2 * np.pi * (a * xx + b * yy) / n + 0.4) for j, (a, b) in waves.items()}
    x = sum(comp.values())
    parts = [f.reconstruct_scales(x, [j]) for j in range(4)]
    assert np.abs(sum(parts) - x).max() < 1e-12
    for j in range(4):
        assert np.abs(parts[j] - comp[j]).max() < 1e-10


def test_latitude_padding_limits_wraparound():
    x = np.zeros((128, 256))
    x[0, 100] = 1.0  # a point on the southern edge
    padded = CurveletFrame((128, 256)).reconstruct_scales(x, [0])
    periodic = CurveletFrame((128, 256), periodic=(True, True)).reconstruct_scales(x, [0])
    leak = lambda y: np.abs(y[-1]).max() / np.abs(y).max()  # noqa: E731
    assert leak(periodic) > 0.5
    assert leak(padded) < 0.03


def test_coefficient_indexing():
    f = CurveletFrame((64, 128), nscales=3, wedges=(4, 8))
    c = f.forward(np.random.default_rng(2).standard_normal((5, 64, 128)))
    assert c[0, 0].shape[:2] == (5, 1)
    assert c[2, 7].shape[:2] == (5, 2)
    assert len(c.scale(1)) == 4 and len(c.scale(2)) == 8
    assert np.allclose(c.scale_energy().sum(-1), c.energy())
    d = 2.0 * (c - c.map(np.zeros_like))
    assert np.allclose(f.inverse(d), 2 * f.inverse(c))
    with pytest.raises(IndexError):
        c[1, 4]


def test_bad_input():
    with pytest.raises(UserError, match="too small for nscales = 4"):
        CurveletFrame((10, 12), nscales=4, name="&image nscales")
    with pytest.raises(UserError, match="wedges"):
        CurveletFrame((64, 64), nscales=4, wedges=(4, 8))


def _udct_scale_energy(udct, x):
    c = udct.forward(x)

    def flat(a):
        if isinstance(a, list):
            for b in a:
                yield from flat(b)
        else:
            yield np.asarray(a)

    return np.array([sum(np.sum(np.abs(b) ** 2) for b in flat(s)) for s in c])


def test_cross_check_with_pypi_curvelets():
    udct_mod = pytest.importorskip("curvelets.numpy", reason="optional test dependency 'curvelets' (PyPI) not "
                                   "installed")
    rng = np.random.default_rng(3)
    n = 128
    yy, xx = np.mgrid[0:n, 0:n]
    # plane waves whose frequencies lie in the flat parts of both frames' radial windows (3 scales: edges at
    # 1/8 and 1/4 cycles per cell in both)
    freqs = [(3, 2), (6, 5), (22, 2), (21, 10), (45, 10), (52, 30)]
    x = sum(rng.uniform(0.5, 2) * np.cos(2 * np.pi * (a * xx + b * yy) / n + rng.uniform(0, 6)) for a, b in freqs)
    theirs = _udct_scale_energy(udct_mod.UDCT((n, n), num_scales=3, wedges_per_direction=3), x)
    ours = CurveletFrame((n, n), nscales=3, wedges=(3, 6), periodic=(True, True)).forward(x).scale_energy()
    assert np.allclose(theirs.sum(), np.sum(x ** 2), rtol=1e-10)
    assert np.abs(theirs / theirs.sum() - ours / ours.sum()).max() < 1e-3
    # a size UDCT cannot handle: its inverse is wrong, ours is exact
    shape = (73, 144)
    z = rng.standard_normal(shape)
    u = udct_mod.UDCT(shape, num_scales=3, wedges_per_direction=3)
    assert np.abs(u.backward(u.forward(z)) - z).max() > 0.05
    f = CurveletFrame(shape, nscales=3, wedges=(3, 6))
    assert np.abs(f.inverse(f.forward(z)) - z).max() < 1e-12
