"""A discrete curvelet frame that is an exact Parseval tight frame on any grid shape (numpy / scipy.fft only).

Construction (frequency wrapping, after Candes, Demanet, Donoho and Ying 2006, "fast discrete curvelet
transforms", evaluated on the grid's own discrete frequencies so that no divisibility condition arises):

* **Grid.** A field (ny, nx) = (latitude, longitude) is zero-padded along every non-periodic axis by ``pad``
  cells (appended at the end; the padded length is rounded up to a fast FFT length). Zero padding is an isometry,
  so the frame of the padded grid restricted to the field is still Parseval. Longitude of a global grid is
  periodic (no padding); latitude and the longitude of a regional box are not, and the padding keeps the frame
  elements at one edge from wrapping onto the other: with the default pad of 2**(nscales + 1) cells, a point at
  one latitude edge reaches the opposite edge with at most 2.5 % of its peak in the coarsest scale (98 % without
  padding; tests/test_curvelet.py). The image analysis transforms innovation fields that are zero on ocean, so
  the padding is "more ocean" (see :mod:`colmda.assim.image`).
* **Frequencies.** f_y = fftfreq(Ny), f_x = fftfreq(Nx) in cycles per cell, radius r = sqrt(f_x^2 + f_y^2),
  orientation theta = atan2(f_y, f_x).
* **Radial windows.** With the Meyer polynomial nu(t) = t^4 (35 - 84 t + 70 t^2 - 20 t^3) (nu(t) + nu(1-t) = 1) and
  dyadic edges b_j = 0.5 / 2^(J-j) (j = 1..J-1; J = nscales; for J = 4: 1/16, 1/8, 1/4 cycles per cell, i.e.
  wavelengths of 16, 8 and 4 cells), the low-pass L_j(r) = cos(pi/2 nu(log2(r/b_j) + 1/2)) is 1 below
  b_j/sqrt(2) and 0 above b_j sqrt(2). W_0 = L_1 (coarsest scale, one isotropic window), W_j = sqrt(L_{j+1}^2 -
  L_j^2), W_{J-1} = sqrt(1 - L_{J-1}^2) (finest scale, out to the corners). sum_j W_j^2 = 1 exactly.
* **Angular windows.** Scale j >= 1 has ``wedges[j-1]`` = n orientations over [0, pi); over the full circle that
  is 2n windows, u = theta n / pi in [0, 2n), centred at u = l + 1/2: V_l(u)^2 = cos^2(pi/2 nu(|d|)) for the
  periodic distance |d| <= 1 to the centre, else 0. Neighbouring windows overlap by one wedge width and
  sum_l V_l^2 = 1 exactly. Window l + n is the point mirror (theta + pi) of window l.
* **Symmetrisation.** On an even-length axis the Nyquist frequency is its own mirror, so the continuous
  symmetry U(-f) = U(f + pi) does not hold exactly on the grid. The squared windows are therefore averaged with
  their mirror's squared window at the mirrored grid frequency, Q_w(k) = (P_w(k) + P_mirror(-k)) / 2, which keeps
  sum_w Q_w = 1 exactly and makes U_w = sqrt(Q_w) satisfy U_mirror(k) = U_w(-k) on the grid.
* **Coefficients.** c_w = IFFT_M(wrap_M(U_w X)) with unitary FFTs, where wrap_M periodises the product onto an
  M_y x M_x grid; (M_y, M_x) is the extent of the window's support (the shortest cyclic index interval holding
  it along each axis), so the wrap folds no two non-zero entries together and is an isometry on the support:
  this is the exact "wrapping" decimation on any size. For a real field the mirror wedge's coefficients are the
  complex conjugates of wedge l's, so only wedges l = 0..n-1 are kept and the real frame coefficients are
  sqrt(2) Re c_w and sqrt(2) Im c_w; the coarsest scale is real by itself. Parseval: sum of squared
  coefficients = sum of squared field values, and the inverse is the adjoint:
  x = Re IFFT_N(sum_w m_w U_w unwrap(FFT_M(c_w))) with m_w = 2 for angular wedges and 1 for the coarsest.

Redundancy (coefficients per field value, :attr:`CurveletFrame.redundancy`): 3.7 for 256 x 128 with 4 scales and
4, 8, 8 orientations; 2.4 to 7.1 on the test shapes (most for small boxes, where the padding is large).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .errors import UserError

#: default orientations over [0, pi) of scales 1..J-1 for J = 4 (full-circle windows 1 + 8 + 16 + 16 = 41)
DEFAULT_WEDGES = (4, 8, 8)
#: fields transformed together in forward / inverse (keeps the working set in cache-friendly pieces)
CHUNK = 10
#: width (octaves) of the transition between two radial scales; a narrower transition lowers the redundancy
#: but spreads the frame elements further in space
RADIAL_WIDTH = 0.5
#: half-width (in wedge widths, at most 1/2) of the transition between two neighbouring orientations
ANGULAR_OVERLAP = 0.25


def meyer_nu(t: np.ndarray) -> np.ndarray:
    """Meyer's transition polynomial: 0 for t <= 0, 1 for t >= 1, nu(t) + nu(1 - t) = 1, smooth (C^3)."""
    t = np.clip(t, 0.0, 1.0)
    return t ** 4 * (35.0 - 84.0 * t + 70.0 * t ** 2 - 20.0 * t ** 3)


def lowpass(r: np.ndarray, b: float, width: float = RADIAL_WIDTH) -> np.ndarray:
    """Smooth low-pass window: 1 for r <= b 2^(-width/2), 0 for r >= b 2^(width/2), cos(pi/2 nu) in log2 r
    between (``width`` in octaves)."""
    with np.errstate(divide="ignore"):
        s = np.where(r > 0, np.log2(np.where(r > 0, r, 1.0) / b), -np.inf)
    t = s / width + 0.5
    # exact 0 beyond the transition (cos(pi/2) is 6e-17, which would make every window's support the whole grid)
    return np.where(t >= 1.0, 0.0, np.cos(0.5 * np.pi * meyer_nu(t)))


def angular(d: np.ndarray, overlap: float = ANGULAR_OVERLAP) -> np.ndarray:
    """Angular window of the periodic distance ``d`` (in wedge widths) to the wedge centre: 1 for |d| <= 1/2 -
    overlap, 0 for |d| >= 1/2 + overlap, cos(pi/2 nu) between, so that neighbours' squares add up to 1."""
    t = (np.abs(d) - (0.5 - overlap)) / (2.0 * overlap)
    return np.where(t >= 1.0, 0.0, np.cos(0.5 * np.pi * meyer_nu(t)))


def _cyclic_interval(idx: np.ndarray, n: int) -> tuple[int, int]:
    """(start, length) of the shortest cyclic interval of 0..n-1 that holds every index in ``idx``."""
    u = np.unique(idx)
    if len(u) == 0:
        return 0, 0
    if len(u) == n:
        return 0, n
    gaps = np.diff(np.concatenate([u, [u[0] + n]]))  # gap after each present index
    g = int(np.argmax(gaps))
    start = int(u[(g + 1) % len(u)])
    return start, n - int(gaps[g]) + 1


def _cyclic_blocks(start: int, length: int, n: int):
    """The cyclic index range start .. start + length - 1 (mod n) as (destination, source) slice pairs."""
    first = min(length, n - start)
    out = [(slice(start, start + first), slice(0, first))]
    if length > first:
        out.append((slice(0, length - first), slice(first, length)))
    return out


@dataclass
class Wedge:
    """One stored window: scale j, orientation l (0..n-1 over [0, pi); -1 for the coarsest scale)."""

    scale: int
    angle: int
    window: np.ndarray  # (m_y, m_x) U_w on its support box (rows iy, columns ix of the padded frequency grid)
    iy: np.ndarray  # padded-grid row of every box row
    ix: np.ndarray
    wy: np.ndarray  # position of every box row in the wrapped (M_y) grid
    wx: np.ndarray
    shape: tuple[int, int]  # wrapped grid (M_y, M_x) = shape of the coefficient array
    parts: int  # 1: real (coarsest scale); 2: sqrt(2) Re and sqrt(2) Im of a complex wedge


class Coefficients:
    """Curvelet coefficients of a batch of fields: one real array (..., parts, M_y, M_x) per stored wedge.

    Index by ``c[j, l]`` (scale, orientation; the coarsest scale is ``c[0, 0]``) or iterate ``c.scale(j)``.
    Arithmetic a + b, a - b, k * a and ``map`` return new coefficient objects of the same frame."""

    def __init__(self, frame: "CurveletFrame", data: list[np.ndarray]):
        self.frame = frame
        self.data = data

    def __getitem__(self, key):
        j, l = key
        return self.data[self.frame.index(j, l)]

    def __setitem__(self, key, value):
        j, l = key
        self.data[self.frame.index(j, l)][...] = value

    def scale(self, j: int) -> list[np.ndarray]:
        return [d for d, w in zip(self.data, self.frame.wedges) if w.scale == j]

    def map(self, fn) -> "Coefficients":
        return Coefficients(self.frame, [fn(d) for d in self.data])

    def __add__(self, other):
        return Coefficients(self.frame, [a + b for a, b in zip(self.data, other.data)])

    def __sub__(self, other):
        return Coefficients(self.frame, [a - b for a, b in zip(self.data, other.data)])

    def __rmul__(self, k):
        return Coefficients(self.frame, [k * a for a in self.data])

    def energy(self) -> np.ndarray:
        """Sum of squared coefficients per field of the batch."""
        return sum(np.sum(d ** 2, axis=(-3, -2, -1)) for d in self.data)

    def scale_energy(self) -> np.ndarray:
        """Energy per scale, (..., nscales)."""
        out = [sum(np.sum(d ** 2, axis=(-3, -2, -1)) for d in self.scale(j)) for j in range(self.frame.nscales)]
        return np.stack(out, axis=-1)

    @property
    def size(self) -> int:
        return sum(int(np.prod(d.shape[-3:])) for d in self.data)


class CurveletFrame:
    """The frame of one grid shape. ``shape`` = (ny, nx); ``nscales`` J >= 1; ``wedges`` orientations over
    [0, pi) of each scale 1..J-1 (one value: all scales); ``periodic`` per axis (y, x); ``pad`` zero-padding cells
    of non-periodic axes (None: 2**(nscales + 1); an axis of length 1 is never padded)."""

    def __init__(self, shape, nscales: int = 4, wedges=DEFAULT_WEDGES, periodic=(False, True), pad=None,
                 name: str = "curvelet"):
        ny, nx = (int(s) for s in shape)
        if ny < 1 or nx < 1:
            raise UserError(f"{name}: grid {ny} x {nx} has no cell")
        nscales = int(nscales)
        if nscales < 1:
            raise UserError(f"{name}: nscales = {nscales}: expected at least 1")
        wedges = tuple(int(w) for w in np.atleast_1d(wedges)) if nscales > 1 else ()
        if nscales > 1 and len(wedges) == 1:
            wedges = wedges * (nscales - 1)
        if len(wedges) != nscales - 1 or any(w < 1 for w in wedges):
            raise UserError(f"{name}: wedges = {list(wedges)}: expected {nscales - 1} positive value(s), one per "
                            f"scale after the coarsest (nscales = {nscales})")
        if nscales > 1 and max(ny, nx) < 2 ** nscales:
            raise UserError(f"{name}: grid {ny} x {nx} is too small for nscales = {nscales} (the coarsest scale "
                            f"needs at least 2**nscales = {2 ** nscales} cells along one axis); use fewer scales")
        self.shape = (ny, nx)
        self.nscales = nscales
        self.wedges_per_scale = wedges
        self.periodic = tuple(bool(p) for p in periodic)
        if pad is None:
            pad = 2 ** (nscales + 1)
        self.pad = int(pad)
        padded = []
        for n, per in zip(self.shape, self.periodic):
            padded.append(n if per or self.pad == 0 or n == 1 else int(sfft.next_fast_len(n + self.pad)))
        self.padded = tuple(padded)
        self.wedges: list[Wedge] = []
        self._build()
        self._index = {(w.scale, w.angle if w.scale else 0): i for i, w in enumerate(self.wedges)}

    # ---- windows
    def _build(self):
        Ny, Nx = self.padded
        fy = np.fft.fftfreq(Ny)[:, None]
        fx = np.fft.fftfreq(Nx)[None, :]
        r = np.sqrt(fx ** 2 + fy ** 2)
        theta = np.arctan2(np.broadcast_to(fy, r.shape), np.broadcast_to(fx, r.shape)) % (2 * np.pi)
        J = self.nscales
        mir_y = (-np.arange(Ny)) % Ny  # row of the mirrored frequency -k
        mir_x = (-np.arange(Nx)) % Nx

        def mirror(a):
            return a[mir_y][:, mir_x]

        low = [lowpass(r, 0.5 / 2 ** (J - j)) for j in range(1, J)]  # L_1..L_{J-1}
        radial = []
        if J == 1:
            radial.append(np.ones_like(r))
        else:
            radial.append(low[0])
            for j in range(1, J - 1):
                radial.append(np.sqrt(np.maximum(low[j] ** 2 - low[j - 1] ** 2, 0.0)))
            radial.append(np.sqrt(np.maximum(1.0 - low[-1] ** 2, 0.0)))
        p0 = radial[0] ** 2
        self._add(0, -1, 0.5 * (p0 + mirror(p0)), parts=1)
        for j in range(1, J):
            n = self.wedges_per_scale[j - 1]
            u = theta * n / np.pi  # in [0, 2n)
            for l in range(n):
                ang = []
                for c in (l, l + n):  # the wedge and its point mirror
                    ang.append(angular((u - (c + 0.5) + n) % (2 * n) - n))
                p = (radial[j] * ang[0]) ** 2
                pm = (radial[j] * ang[1]) ** 2
                self._add(j, l, 0.5 * (p + mirror(pm)), parts=2)

    def _add(self, j, l, q, parts):
        Ny, Nx = self.padded
        nz = q > 0
        if parts == 1:  # symmetric box [-a, a] so that the wrap keeps Hermitian symmetry (real coefficients)
            sy, my = self._symmetric_interval(np.flatnonzero(nz.any(axis=1)), Ny)
            sx, mx = self._symmetric_interval(np.flatnonzero(nz.any(axis=0)), Nx)
        else:
            sy, my = _cyclic_interval(np.flatnonzero(nz.any(axis=1)), Ny)
            sx, mx = _cyclic_interval(np.flatnonzero(nz.any(axis=0)), Nx)
        if my == 0 or mx == 0:  # no frequency of this grid falls in the window (e.g. 1 x n grids)
            return
        iy = (sy + np.arange(my)) % Ny
        ix = (sx + np.arange(mx)) % Nx
        # wrapped size: the support length, rounded up to a fast FFT length when that still fits the axis
        My = min(int(sfft.next_fast_len(my)), Ny) if my < Ny else Ny
        Mx = min(int(sfft.next_fast_len(mx)), Nx) if mx < Nx else Nx
        ky = sy + np.arange(my)  # unwrapped frequency index of the box rows
        kx = sx + np.arange(mx)
        if parts == 1:  # signed -a..a, so that the wrap maps -k to -(wrap of k): real coefficients
            if my < Ny:
                ky = np.arange(my) - (my - 1) // 2
            if mx < Nx:
                kx = np.arange(mx) - (mx - 1) // 2
        self.wedges.append(Wedge(j, l, np.sqrt(q[np.ix_(iy, ix)]), iy, ix, ky % My, kx % Mx, (My, Mx), parts))

    @staticmethod
    def _symmetric_interval(idx, n):
        if len(idx) == 0:
            return 0, 0
        signed = np.where(idx > n // 2, idx - n, idx)
        a = int(np.abs(signed).max())
        if 2 * a + 1 >= n:
            return 0, n
        return (-a) % n, 2 * a + 1

    # ---- indexing and sizes
    def index(self, j: int, l: int) -> int:
        try:
            return self._index[(j, l if j else 0)]
        except KeyError:
            raise IndexError(f"no wedge (scale {j}, orientation {l}) on this {self.shape} grid") from None

    @property
    def redundancy(self) -> float:
        return sum(w.parts * w.shape[0] * w.shape[1] for w in self.wedges) / (self.shape[0] * self.shape[1])

    # ---- transforms
    def _spectrum(self, x: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Unitary 2-D spectrum (..., Ny, Nx) of the zero-padded fields (real FFT, negative x frequencies filled
        by Hermitian symmetry)."""
        x = np.asarray(x, dtype=dtype)
        if x.shape[-2:] != self.shape:
            raise ValueError(f"field shape {x.shape[-2:]} differs from the frame's {self.shape}")
        Ny, Nx = self.padded
        ny, nx = self.shape
        if (Ny, Nx) != (ny, nx):
            xp = np.zeros(x.shape[:-2] + (Ny, Nx), dtype=dtype)
            xp[..., :ny, :nx] = x
            x = xp
        half = sfft.rfft2(x, norm="ortho", workers=1)
        nh = half.shape[-1]
        X = np.empty(x.shape[:-2] + (Ny, Nx), dtype=half.dtype)
        X[..., :nh] = half
        if Nx > nh:  # X(ky, kx) = conj X(-ky, -kx) for the columns the real FFT leaves out (slices, no gather)
            cols = slice(Nx - nh, 0, -1)  # kx = nh .. Nx-1  <-  Nx - kx = Nx-nh .. 1
            np.conjugate(half[..., :1, cols], out=X[..., :1, nh:])
            np.conjugate(half[..., :0:-1, cols], out=X[..., 1:, nh:])  # ky = 1 .. Ny-1  <-  Ny - ky
        return X

    def wedge_forward(self, X: np.ndarray, w: Wedge) -> np.ndarray:
        """Coefficients (..., parts, M_y, M_x) of one wedge from the unitary spectrum X of the padded fields."""
        my, mx = len(w.iy), len(w.ix)
        Ny, Nx = self.padded
        prod = np.empty(X.shape[:-2] + (my, mx), dtype=X.dtype)
        for zy, by in _cyclic_blocks(int(w.iy[0]), my, Ny):  # gather the support box (cyclic in both axes)
            for zx, bx in _cyclic_blocks(int(w.ix[0]), mx, Nx):
                prod[..., by, bx] = X[..., zy, zx]
        prod *= w.window
        wrapped = np.zeros(X.shape[:-2] + w.shape, dtype=X.dtype)  # box row t -> (k0 + t) mod M
        for dy, sy in _cyclic_blocks(int(w.wy[0]), my, w.shape[0]):
            for dx, sx in _cyclic_blocks(int(w.wx[0]), mx, w.shape[1]):
                wrapped[..., dy, dx] = prod[..., sy, sx]
        c = sfft.ifft2(wrapped, norm="ortho", workers=1, overwrite_x=True)
        rdt = c.real.dtype
        if w.parts == 1:
            return c.real[..., None, :, :]
        out = np.empty(c.shape[:-2] + (2,) + c.shape[-2:], dtype=rdt)
        out[..., 0, :, :] = c.real
        out[..., 1, :, :] = c.imag
        out *= np.sqrt(2.0).astype(rdt)
        return out

    def wedge_adjoint(self, c: np.ndarray, w: Wedge, Z: np.ndarray) -> None:
        """Add the spectrum contribution of one wedge's coefficients to Z (..., Ny, Nx) in place."""
        if w.parts == 1:
            cc = c[..., 0, :, :].astype(complex)
            m = 1.0
        else:
            cc = (c[..., 0, :, :] + 1j * c[..., 1, :, :]) * (1.0 / np.sqrt(2.0))
            m = 2.0
        C = sfft.fft2(cc, norm="ortho", workers=1, overwrite_x=True)
        my, mx = len(w.iy), len(w.ix)
        # unwrap: box row t sits at (k0 + t) mod M; roll it back to t, keep the box, weight it
        box = np.empty(C.shape[:-2] + (my, mx), dtype=C.dtype)
        for dy, sy in _cyclic_blocks(int(w.wy[0]), my, w.shape[0]):
            for dx, sx in _cyclic_blocks(int(w.wx[0]), mx, w.shape[1]):
                box[..., sy, sx] = C[..., dy, dx]
        box *= m * w.window
        for zy, by in _cyclic_blocks(int(w.iy[0]), my, self.padded[0]):
            for zx, bx in _cyclic_blocks(int(w.ix[0]), mx, self.padded[1]):
                Z[..., zy, zx] += box[..., by, bx]

    def forward(self, x: np.ndarray, dtype=np.float64) -> Coefficients:
        """Coefficients of a field (ny, nx) or a batch (..., ny, nx) (for example members first). ``dtype``
        float32 halves the cost (single-precision FFTs; round-off about 1e-7 relative): enough for ensemble
        variances, not for the exact transform of a state. Large batches go in chunks of ``CHUNK`` fields (the
        full spectra of 100 fields would be 100 MB of freshly touched memory)."""
        x = np.asarray(x, dtype=dtype)
        lead = x.shape[:-2]
        flat = x.reshape((-1,) + x.shape[-2:])
        n = flat.shape[0]
        if n <= CHUNK:
            X = self._spectrum(flat, dtype)
            data = [self.wedge_forward(X, w) for w in self.wedges]
        else:
            data = [np.empty((n, w.parts) + w.shape, dtype=dtype) for w in self.wedges]
            for i in range(0, n, CHUNK):
                X = self._spectrum(flat[i:i + CHUNK], dtype)
                for d, w in zip(data, self.wedges):
                    d[i:i + CHUNK] = self.wedge_forward(X, w)
        return Coefficients(self, [d.reshape(lead + d.shape[1:]) for d in data])

    def inverse(self, coef: Coefficients) -> np.ndarray:
        """The field(s) whose coefficients are ``coef`` (the adjoint = exact inverse of :meth:`forward`)."""
        lead = coef.data[0].shape[:-3]
        flat = [d.reshape((-1,) + d.shape[-3:]) for d in coef.data]
        n = flat[0].shape[0]
        out = np.empty((n,) + self.shape)
        for i in range(0, n, CHUNK):
            Z = np.zeros((min(CHUNK, n - i),) + self.padded, dtype=complex)
            for d, w in zip(flat, self.wedges):
                self.wedge_adjoint(d[i:i + CHUNK], w, Z)
            out[i:i + CHUNK] = sfft.ifft2(Z, norm="ortho", workers=1, overwrite_x=True).real[
                ..., : self.shape[0], : self.shape[1]]
        return out.reshape(lead + self.shape)

    def reconstruct_scales(self, x: np.ndarray, scales) -> np.ndarray:
        """The part of ``x`` carried by the given scales (sum of the inverse of those scales' coefficients); the
        parts of all scales add up to x exactly (the seed's "first k modes", Fig. 1)."""
        c = self.forward(x)
        keep = set(int(s) for s in scales)
        c = Coefficients(self, [d if w.scale in keep else np.zeros_like(d) for d, w in zip(c.data, self.wedges)])
        return self.inverse(c)
