"""Ensemble forcing perturbations, and the keyed random numbers all forcing code uses.

Keyed randomness
----------------
Every random number in :mod:`colmda.forcing` is a pure function of integer keys (seed, stream, member,
time index, global column or cell index ...): :func:`keyed_uniform` hashes the keys with the SplitMix64
finaliser (Steele et al. 2014) and :func:`keyed_normal` maps the result through the inverse normal CDF.
Nothing depends on request order, on the set of columns requested or on the MPI rank, so any split of the
columns and any restart reproduce the same numbers bit for bit.

Perturbations (SMAP L4 / GEOSldas style)
----------------------------------------
Four cross-correlated AR(1) perturbation processes per (member, column): precipitation and shortwave
multiplicative lognormal with mean 1, longwave and air temperature additive with mean 0. Defaults
(:class:`PerturbationSettings`): std 0.5, 0.3, 20 W m-2, 1 K; temporal correlation 24 h; cross-correlations
precipitation-shortwave -0.8, precipitation-longwave +0.5, shortwave-longwave -0.5, shortwave-temperature
+0.4, longwave-temperature +0.4 (the values suggested in GEOSldas' ``LDASsa_DEFAULT_inputs_ensprop.nml``
following Reichle et al. 2007, 2010); precipitation-temperature 0. Optional spatial correlation
(Gaussian kernel, e-folding distance ``spatial_corr_km``) on the full domain grid.

Restartable AR(1) with finite memory: the process lives on nodes every ``node_hours`` (default 3 h,
GEOSldas' ``force_pert_dtstep``). The node value at 00 UTC of day ``d`` is
``X_d = c * sum_{m=1..M} rho^(m-1) A_{d-m}`` with ``rho = exp(-24 h / tau)``, ``A_d`` a keyed normal
(variance ``1 - rho^2``) and ``M = 7`` days for tau = 24 h (``rho^M < 1e-3``; ``c`` restores unit
variance). Within the day the exact AR(1) recursion ``x_j = phi x_{j-1} + sqrt(1 - phi^2) e_j``
(``phi = exp(-node/tau)``) runs from ``X_d`` with keyed innovations ``e_j`` drawn *conditionally on*
their weighted sum being ``A_d``, so that the recursion lands exactly on ``rho X_d + A_d`` at the next
midnight: the process is an AR(1) everywhere, and the value at any time is a function of the keyed numbers
of the previous ``M`` days only. Between nodes the values are interpolated linearly and rescaled to unit
variance.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..keyed import keyed_normal, keyed_uniform

__all__ = [
    'keyed_uniform', 'keyed_normal', 'GaussianSmoother', 'PerturbationSettings', 'DEFAULT_CORR',
    'PERT_VARIABLES', 'perturbation_normals', 'perturbation_factors', 'perturb_forcing', 'flatten_members',
]

# ---------------------------------------------------------------------------------------------------------
# Keyed random numbers
# ---------------------------------------------------------------------------------------------------------

# the keyed hash lives in colmda.keyed (a foundation every layer may use; re-exported here)


# ---------------------------------------------------------------------------------------------------------
# Spatially correlated fields on the full grid
# ---------------------------------------------------------------------------------------------------------

_R_EARTH = 6371.0e3


class GaussianSmoother:
    """Unit-variance Gaussian random fields on a regular lat-lon grid from keyed white noise.

    White noise on a latitude-padded (and, for regional grids, longitude-padded) grid is convolved with a
    Gaussian kernel of standard deviation ``sigma = corr_km / 2`` in physical distance: along latitude with
    explicit taps, along longitude in Fourier space with a per-row transfer function
    ``exp(-0.5 (2 pi k sigma / L_j)^2)`` (``L_j`` the length of row ``j``, the latitude circle for global
    grids), so the correlation is about ``exp(-d^2 / corr_km^2)`` in every direction and at every latitude
    (e-folding distance ``corr_km``). Every point is rescaled to exactly unit variance. All sums are
    element-wise or FFTs of fixed shape, so a field depends only on its keys, not on anything requested.
    """

    def __init__(self, lat, lon, corr_km, is_global=True, extra_pad_km=0.0):
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.nlat, self.nlon = self.lat.size, self.lon.size
        self.sigma = 0.5 * corr_km * 1e3  # m
        dlat = np.deg2rad(self.lat[1] - self.lat[0]) if self.nlat > 1 else np.pi
        dlon = np.deg2rad(self.lon[1] - self.lon[0]) if self.nlon > 1 else 2 * np.pi
        sc = self.sigma / (_R_EARTH * dlat)
        self.ntap = int(math.ceil(3.0 * sc)) if sc > 0 else 0
        m = np.arange(-self.ntap, self.ntap + 1, dtype=np.float64)
        self.taps = np.exp(-0.5 * (m / sc) ** 2) if sc > 0 else np.ones(1)
        self.is_global = bool(is_global)
        coslat = np.maximum(np.cos(np.deg2rad(self.lat)), 1e-6)
        dx = _R_EARTH * coslat * dlon  # m, per row
        if self.is_global:
            self.pad = 0
        else:
            self.pad = int(math.ceil((3.0 * self.sigma + extra_pad_km * 1e3) / dx.min()))
        n = self.nlon + 2 * self.pad
        self.next = int(2 ** math.ceil(math.log2(n))) if not self.is_global else n
        self.nrow = self.nlat + 2 * self.ntap
        self.row_len = self.next * dx  # m
        k = np.arange(self.next // 2 + 1, dtype=np.float64)
        self.k = k
        H = np.exp(-0.5 * (2.0 * np.pi * k[None, :] * self.sigma / self.row_len[:, None]) ** 2)
        full = H ** 2
        mult = np.full(k.size, 2.0)
        mult[0] = 1.0
        if self.next % 2 == 0:
            mult[-1] = 1.0
        var = (self.taps ** 2).sum() * (full * mult[None, :]).sum(axis=1) / self.next
        self.transfer = H / np.sqrt(var)[:, None]

    @property
    def white_shape(self):
        return (self.nrow, self.next)

    def white(self, *keys):
        """Keyed white noise of :attr:`white_shape`."""
        idx = np.arange(self.nrow * self.next, dtype=np.int64)
        return keyed_normal(*keys, idx).reshape(self.nrow, self.next)

    def spectrum(self, white):
        """Latitude convolution then real FFT along longitude: (nlat, nk) complex (before the transfer)."""
        acc = np.zeros((self.nlat, self.next))
        for a, g in enumerate(self.taps):
            acc = acc + g * white[a:a + self.nlat]
        return np.fft.rfft(acc, axis=1)

    def field(self, spec):
        """Apply the transfer function to a spectrum and return the (nlat, nlon) unit-variance field."""
        y = np.fft.irfft(self.transfer * spec, n=self.next, axis=1)
        return y[:, self.pad:self.pad + self.nlon]

    def sample(self, *keys):
        """One unit-variance correlated field (nlat, nlon) for the keys."""
        return self.field(self.spectrum(self.white(*keys)))


# ---------------------------------------------------------------------------------------------------------
# Perturbation settings
# ---------------------------------------------------------------------------------------------------------

#: Perturbed variables, in the order of the correlation matrix.
PERT_VARIABLES = ('prec', 'swdown', 'lwdown', 'tair')

#: Default cross-correlation matrix (order :data:`PERT_VARIABLES`).
DEFAULT_CORR = (
    (1.0, -0.8, 0.5, 0.0),
    (-0.8, 1.0, -0.5, 0.4),
    (0.5, -0.5, 1.0, 0.4),
    (0.0, 0.4, 0.4, 1.0),
)

_STREAM_AGG, _STREAM_FINE = 101, 102
_STREAM_AGG_SP, _STREAM_FINE_SP = 111, 112


@dataclasses.dataclass(frozen=True)
class PerturbationSettings:
    """Forcing perturbation parameters (defaults: SMAP L4 / GEOSldas practice, see module docstring).

    ``std_prec`` / ``std_swdown``: standard deviation of the multiplicative lognormal factor (mean 1).
    ``std_lwdown`` (W m-2) / ``std_tair`` (K): standard deviation of the additive perturbation.
    ``corr``: 4 x 4 correlation matrix in the order prec, swdown, lwdown, tair.
    ``tau_hours``: AR(1) correlation time; ``node_hours``: spacing of the AR(1) nodes (divides 24).
    ``spatial_corr_km``: e-folding distance of spatial correlation (0 = independent columns).
    ``max_normal``: clip the underlying standard normals at +-max_normal (None = no clipping; GEOSldas
    uses 2.5, which lowers the standard deviations by about 3 %).
    ``memory_tol``: the AR(1) memory M (days) is the smallest with ``rho^M < memory_tol``.
    """

    std_prec: float = 0.5
    std_swdown: float = 0.3
    std_lwdown: float = 20.0
    std_tair: float = 1.0
    corr: tuple = DEFAULT_CORR
    tau_hours: float = 24.0
    node_hours: float = 3.0
    spatial_corr_km: float = 0.0
    max_normal: float | None = None
    memory_tol: float = 1e-3

    def validate(self):
        c = np.asarray(self.corr, dtype=np.float64)
        if c.shape != (4, 4) or not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0):
            raise ValueError('perturbation corr must be a symmetric 4x4 matrix with unit diagonal '
                             f'(order {PERT_VARIABLES})')
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise ValueError('perturbation corr is not positive definite') from None
        node_s = self.node_hours * 3600.0
        if node_s <= 0 or abs(node_s - round(node_s)) > 1e-9 or 86400 % int(round(node_s)) != 0:
            raise ValueError(f'perturbation node_hours {self.node_hours} must divide 24 h into whole seconds')
        if self.tau_hours <= 0:
            raise ValueError('perturbation tau_hours must be positive')
        for name in ('std_prec', 'std_swdown', 'std_lwdown', 'std_tair', 'spatial_corr_km'):
            if getattr(self, name) < 0:
                raise ValueError(f'perturbation {name} must be >= 0')
        return self


# ---------------------------------------------------------------------------------------------------------
# AR(1) normals
# ---------------------------------------------------------------------------------------------------------

def _to_seconds(t):
    """datetime64, ISO string or integer seconds since 1970-01-01 -> int seconds since 1970-01-01."""
    if isinstance(t, str):
        return int(np.datetime64(t, 's').astype(np.int64))
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.datetime64):
        return int(t.astype('datetime64[s]').astype(np.int64))
    return int(t)


class _NormalSource:
    """Keyed unit normals for (stream, var, day, j) over (members, columns): arrays (nmem, ncol)."""

    def __init__(self, seed, members, columns, settings, grid):
        self.seed = int(seed)
        self.members = np.asarray(members, dtype=np.int64)
        self.columns = np.asarray(columns, dtype=np.int64)
        self.spatial = settings.spatial_corr_km > 0
        if self.spatial:
            if grid is None:
                raise ValueError('spatially correlated perturbations need the domain (grid)')
            self.smoother = GaussianSmoother(grid.lat, grid.lon, settings.spatial_corr_km, grid.is_global)

    def __call__(self, stream, var, day, j=0):
        if not self.spatial:
            return keyed_normal(self.seed, stream, var, day, j, self.members[:, None], self.columns[None, :])
        out = np.empty((self.members.size, self.columns.size))
        for a, m in enumerate(self.members):
            out[a] = self.smoother.sample(self.seed, stream, var, day, j, int(m)).ravel()[self.columns]
        return out


def perturbation_normals(seed, columns, members, start, nsteps, dt, settings=None, grid=None):
    """Cross-correlated AR(1) standard normals at step mid-times: array (4, nsteps, nmem, ncol).

    ``columns``: global column indices; ``members``: member indices (integers); ``start``: datetime64 of
    the first step's start; ``dt``: step (s). ``grid``: the :class:`colmda.domain.Domain` (needed only
    for spatially correlated perturbations). Pure function of its arguments: the value for
    (member, column, time) does not depend on the other members, columns or times requested.
    The AR(1) correlation ``exp(-lag / tau)`` holds between node times (every ``node_hours``); between
    nodes values are interpolated linearly and rescaled to unit variance.
    """
    s = (settings or PerturbationSettings()).validate()
    cols = np.asarray(columns, dtype=np.int64).ravel()
    mems = np.atleast_1d(np.asarray(members, dtype=np.int64)).ravel()
    t0 = _to_seconds(start)
    node_s = int(round(s.node_hours * 3600.0))
    J = 86400 // node_s
    tau = s.tau_hours * 3600.0
    phi = math.exp(-node_s / tau)
    rho = phi ** J
    M = max(1, int(math.ceil(math.log(s.memory_tol) / math.log(rho)))) if rho > 0 else 1
    cM = 1.0 / math.sqrt(1.0 - rho ** (2 * M))
    sq_phi = math.sqrt(1.0 - phi * phi)
    sq_rho = math.sqrt(1.0 - rho * rho)
    wv = [sq_phi * phi ** (J - j) for j in range(1, J + 1)]  # weights of e_1..e_J in A_d
    w2 = float(sum(w * w for w in wv))
    src = _NormalSource(seed, mems, cols, s, grid)
    stream_agg = _STREAM_AGG_SP if src.spatial else _STREAM_AGG
    stream_fine = _STREAM_FINE_SP if src.spatial else _STREAM_FINE

    nsteps = int(nsteps)
    tm = t0 + dt * (np.arange(nsteps, dtype=np.float64) + 0.5)  # mid-step times (s)
    kn = np.floor(tm / node_s).astype(np.int64)                  # node index at or before
    wgt = (tm - kn * node_s) / node_s
    d_first = int(np.floor(kn.min() / J))
    d_last = int(np.floor((kn.max() + 1) / J))
    ndays = d_last - d_first + 1
    nmem, ncol = mems.size, cols.size

    nodes = np.empty((4, ndays * J, nmem, ncol))
    for v in range(4):
        A = {}

        def agg(d):
            if d not in A:
                A[d] = sq_rho * src(stream_agg, v, d)
            return A[d]

        for a, d in enumerate(range(d_first, d_last + 1)):
            x = np.zeros((nmem, ncol))
            for m in range(M, 0, -1):
                x = x + rho ** (m - 1) * agg(d - m)
            x = cM * x
            nodes[v, a * J] = x
            xi = [src(stream_fine, v, d, j) for j in range(1, J + 1)]
            proj = np.zeros((nmem, ncol))
            for j in range(J):
                proj = proj + wv[j] * xi[j]
            corr = (agg(d) - proj) / w2
            for j in range(1, J):
                x = phi * x + sq_phi * (xi[j - 1] + wv[j - 1] * corr)
                nodes[v, a * J + j] = x
    # cross-correlation (lower Cholesky factor), element-wise in a fixed order
    L = np.linalg.cholesky(np.asarray(s.corr, dtype=np.float64))
    mixed = np.empty_like(nodes)
    for v in range(4):
        acc = np.zeros(nodes.shape[1:])
        for k in range(v + 1):
            acc = acc + L[v, k] * nodes[k]
        mixed[v] = acc
    rel = kn - d_first * J
    scale = 1.0 / np.sqrt((1.0 - wgt) ** 2 + wgt ** 2 + 2.0 * wgt * (1.0 - wgt) * phi)
    wa = ((1.0 - wgt) * scale)[:, None, None]
    wb = (wgt * scale)[:, None, None]
    out = np.empty((4, nsteps, nmem, ncol))
    for v in range(4):
        out[v] = wa * mixed[v][rel] + wb * mixed[v][rel + 1]
    if s.max_normal is not None:
        np.clip(out, -s.max_normal, s.max_normal, out=out)
    return out


def perturbation_factors(seed, columns, members, start, nsteps, dt, settings=None, grid=None):
    """Perturbations at step mid-times as a dict of arrays (nsteps, nmem, ncol):
    ``prec`` and ``swdown`` multiplicative factors (mean 1), ``lwdown`` (W m-2) and ``tair`` (K) offsets."""
    s = (settings or PerturbationSettings()).validate()
    z = perturbation_normals(seed, columns, members, start, nsteps, dt, s, grid)
    out = {}
    for v, name, std in ((0, 'prec', s.std_prec), (1, 'swdown', s.std_swdown)):
        sl = math.sqrt(math.log1p(std * std))
        out[name] = np.exp(sl * z[v] - 0.5 * sl * sl)
    out['lwdown'] = s.std_lwdown * z[2]
    out['tair'] = s.std_tair * z[3]
    return out


def perturb_forcing(forc, seed, columns, members, start, dt, settings=None, grid=None):
    """Perturbed copies of a forcing array for ensemble members.

    ``forc``: (NF, nsteps, ncol) as produced by the weather generator or a reader. Returns
    (NF, nsteps, nmem, ncol) float64: precipitation and shortwave multiplied, longwave (kept >= 0) and air
    temperature shifted, specific humidity capped at saturation at the perturbed temperature; other rows
    unchanged. Use :func:`flatten_members` to get the (NF, nsteps, nmem * ncol) layout of the core.
    """
    from ..layout import F_LWDOWN, F_PREC, F_PSURF, F_QAIR, F_SWDOWN, F_TAIR
    forc = np.asarray(forc, dtype=np.float64)
    nf, nsteps, ncol = forc.shape
    cols = np.asarray(columns, dtype=np.int64).ravel()
    if cols.size != ncol:
        raise ValueError(f'perturb_forcing: {cols.size} column indices for a forcing array with {ncol} columns')
    f = perturbation_factors(seed, cols, members, start, nsteps, dt, settings, grid)
    nmem = f['prec'].shape[1]
    out = np.repeat(forc[:, :, None, :], nmem, axis=2)
    out[F_PREC] = forc[F_PREC][:, None, :] * f['prec']
    out[F_SWDOWN] = forc[F_SWDOWN][:, None, :] * f['swdown']
    out[F_LWDOWN] = np.maximum(forc[F_LWDOWN][:, None, :] + f['lwdown'], 0.0)
    out[F_TAIR] = forc[F_TAIR][:, None, :] + f['tair']
    from .humidity import saturation_specific_humidity
    qs = saturation_specific_humidity(out[F_TAIR], out[F_PSURF])
    out[F_QAIR] = np.minimum(out[F_QAIR], qs)
    return out


def flatten_members(forc_ens):
    """(NF, nsteps, nmem, ncol) -> (NF, nsteps, nmem * ncol) in Fortran order; column ``m * ncol + c`` is
    member ``m`` of column ``c`` (member-major)."""
    a = np.asarray(forc_ens)
    nf, ns, nm, nc = a.shape
    return np.asfortranarray(a.reshape(nf, ns, nm * nc))
