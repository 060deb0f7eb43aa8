"""Simulated satellite soil moisture retrievals from a truth run (twin / OSSE experiments).

:class:`RetrievalSimulator` precomputes every overpass of all the run's columns once (:mod:`colmda.obs.orbits`),
then :meth:`RetrievalSimulator.sample` turns the truth state of one forecast window into an :class:`ObsTable`.

Reproducibility: every random number is :func:`colmda.forcing.perturb.keyed_normal` of (seed, stream, global
column, overpass time in seconds) -- never of the MPI rank, of the set of columns asked for or of the window --
so one call over all columns, two calls over halves, 24 h or 12 h windows give the same rows.
The error model and its defaults are in :mod:`colmda.obs.sensors` and ``docs/observations.md``.
"""

from __future__ import annotations

import math

import numpy as np

from ..constants import TFRZ
from ..errors import UserError
from ..forcing.perturb import keyed_normal
from . import operators
from .format import (FLAG_DENSE_VEGETATION, FLAG_FROZEN, FLAG_RANGE, FLAG_SNOW, ObsTable)
from .orbits import overpass_details
from .sensors import SensorSpec, validate_spec

__all__ = ['RetrievalSimulator', 'TbSimulator', 'TB_NEDT', 'TB_REPR_STD', 'keyed_ar1', 'retrieval_error_std',
           'excursion_ramp', 'T_FREEZE']

T_FREEZE = TFRZ  # K, the core's freezing point (colmda.constants)
_EPOCH = np.datetime64('1970-01-01T00:00:00', 's')

# keyed random-number streams (distinct from colmda.forcing's 101-112)
STREAM_RANDOM = 201          # white retrieval + representativeness error
STREAM_EXCURSION = 202       # X-band slow excursions
STREAM_POROSITY = 203        # external porosity of saturation products
STREAM_TB = 204              # brightness temperature NEDT + representativeness error
_SENSOR_KEY = {'L': 1, 'C': 2, 'X': 3}


def _sensor_key(name: str) -> int:
    """Integer key of a sensor name (stable across runs: fixed for L/C/X, a byte sum otherwise)."""
    return _SENSOR_KEY.get(name, 1000 + sum((i + 1) * b for i, b in enumerate(name.encode())))


def keyed_ar1(seed, stream, key, t_days, tau_days, node_days=1.0, tol=1e-3):
    """Unit-variance AR(1) process in time (e-folding ``tau_days``), a pure function of its keys.

    Node values every ``node_days``: ``X_d = c sum_{m=0}^{M-1} rho^m a_{d-m}`` with keyed normals
    ``a = keyed_normal(seed, stream, key, d)``, ``rho = exp(-node_days / tau_days)``, ``M`` such that
    ``rho^M < tol`` and ``c`` restoring unit variance: the lag-k correlation is rho^k as for an AR(1), and the value
    at any time depends only on the keys (not on when or for which subset it is asked). Between nodes linear
    interpolation, rescaled to unit variance. ``key`` and ``t_days`` (float days since 1970-01-01) broadcast.
    """
    t = np.asarray(t_days, dtype=np.float64) / node_days
    key = np.asarray(key, dtype=np.int64)
    t, key = np.broadcast_arrays(t, key)
    rho = math.exp(-node_days / tau_days)
    M = max(1, int(math.ceil(math.log(tol) / math.log(rho)))) if rho > 0 else 1
    c = math.sqrt((1.0 - rho ** 2) / (1.0 - rho ** (2 * M)))
    d = np.floor(t).astype(np.int64)
    f = t - d
    m = np.arange(M + 1, dtype=np.int64)
    # a_{d+1-m}, m = 0..M: X_{d+1} uses m = 0..M-1, X_d uses m = 1..M
    a = keyed_normal(seed, stream, key[..., None], d[..., None] + 1 - m)
    # explicit sums in a fixed order (a BLAS dot may change its summation order with the array size, and the
    # values must not depend on how many are asked for)
    x0 = np.zeros(t.shape)
    x1 = np.zeros(t.shape)
    for j in range(M):
        x1 += rho ** j * a[..., j]
        x0 += rho ** j * a[..., j + 1]
    x0 *= c
    x1 *= c
    var = (1 - f) ** 2 + f ** 2 + 2 * f * (1 - f) * rho
    return ((1 - f) * x0 + f * x1) / np.sqrt(var)


def retrieval_error_std(spec: SensorSpec, lai) -> np.ndarray:
    """Random retrieval error std sigma(LAI) (m3 m-3), without representativeness or excursions."""
    s = spec.error_std_bare + spec.error_slope_lai * np.asarray(lai, dtype=np.float64)
    return np.clip(s, spec.error_std_min, spec.error_std_max)


def excursion_ramp(spec: SensorSpec, lai) -> np.ndarray:
    """Fraction (0-1) of the excursion amplitude at LAI (m2 m-2): 0 below the threshold, 1 above it + ramp."""
    lai = np.asarray(lai, dtype=np.float64)
    if spec.excursion_lai_ramp <= 0:
        return (lai >= spec.excursion_lai_threshold).astype(np.float64)
    return np.clip((lai - spec.excursion_lai_threshold) / spec.excursion_lai_ramp, 0.0, 1.0)


def _wsum(w, a):
    """sum_l w[l] a[:, l] in a fixed order (bit-reproducible whatever the number of rows)."""
    out = np.zeros(a.shape[0])
    for j in range(w.size):
        out += w[j] * a[:, j]
    return out


def _seconds(t) -> int:
    return int((np.datetime64(t, 's') - _EPOCH).astype(np.int64))


class RetrievalSimulator:
    """Retrievals of one sensor for the run's columns.

    ``column``: sorted global column indices of ALL the run's columns (int); ``lat``, ``lon`` (deg) their cell
    centres; ``dz_soil`` (m) the layer thicknesses; ``start``, ``end`` the period (UTC) whose overpasses are
    precomputed; ``seed`` the experiment's observation seed.
    """

    def __init__(self, spec: SensorSpec, column, lat, lon, dz_soil, start, end, seed: int):
        self.spec = validate_spec(spec)
        self.column = np.asarray(column, dtype=np.int64).ravel()
        self.lat = np.asarray(lat, dtype=np.float64).ravel()
        self.lon = np.asarray(lon, dtype=np.float64).ravel()
        if not (self.column.size == self.lat.size == self.lon.size):
            raise UserError(f"RetrievalSimulator: column, lat, lon have {self.column.size}, {self.lat.size}, "
                            f"{self.lon.size} values; expected the same number")
        if self.column.size > 1 and np.any(np.diff(self.column) <= 0):
            raise UserError("RetrievalSimulator: 'column' must be strictly increasing global column indices")
        self.dz_soil = np.asarray(dz_soil, dtype=np.float64)
        w = operators.sensing_weights(self.dz_soil, spec.sensing_depth)
        self.nw = int(np.flatnonzero(w > 0).max()) + 1
        self.weights = w[:self.nw]
        self.seed = int(seed)
        self.start, self.end = np.datetime64(start, 's'), np.datetime64(end, 's')
        d = overpass_details(spec.orbit, self.lat, self.lon, self.start, self.end)
        t = (d['time'] - _EPOCH).astype(np.int64)
        order = np.lexsort((d['index'], t))
        self.pass_pos = d['index'][order]            # position into `column`
        self.pass_sec = t[order]                     # s since 1970
        self.pass_ascending = d['ascending'][order]
        self.skey = _sensor_key(spec.name)

    def __len__(self):
        return int(self.pass_sec.size)

    def passes_of(self, positions):
        """(positions, time datetime64[s]) of the precomputed passes of the given run-column positions."""
        m = np.isin(self.pass_pos, np.asarray(positions, dtype=np.int64))
        return self.pass_pos[m], _EPOCH + self.pass_sec[m].astype('timedelta64[s]')

    def _check_snapshots(self, snapshots, nsteps, npos):
        nl = self.dz_soil.size
        shapes = {'theta': (nsteps, nl, npos), 'theta_ice': (nsteps, nl, npos), 't_soil': (nsteps, nl, npos),
                  'swe': (nsteps, npos), 'lai': (npos,), 'porosity': (nl, npos)}
        out = {}
        for k, shp in shapes.items():
            if k not in snapshots:
                raise UserError(f"RetrievalSimulator.sample: snapshot '{k}' missing (expected shape {shp})")
            a = np.asarray(snapshots[k], dtype=np.float64)
            if a.shape != shp:
                raise UserError(f"RetrievalSimulator.sample: snapshot '{k}' has shape {a.shape}, expected {shp}")
            out[k] = a
        return out

    def _window_passes(self, positions, t0, dt, nsteps):
        """Checked ``positions`` and the overpasses in the window t0 < t <= t0 + nsteps dt at them: (positions,
        nsteps, dt, p = index into ``positions`` of each overpass, tsec = its time in s since 1970), time order."""
        who = f"{type(self).__name__}.sample"
        positions = np.asarray(positions, dtype=np.int64).ravel()
        npos = positions.size
        if npos and (positions.min() < 0 or positions.max() >= self.column.size):
            raise UserError(f"{who}: positions must lie in 0..{self.column.size - 1}")
        if np.unique(positions).size != npos:
            raise UserError(f"{who}: positions must be unique")
        nsteps, dt = int(nsteps), float(dt)
        w0 = _seconds(t0)
        w1 = w0 + int(round(nsteps * dt))
        if w0 < _seconds(self.start) or w1 > _seconds(self.end):
            raise UserError(f"{who}: window ({np.datetime64(t0, 's')}, +{nsteps}x{dt:g} s] "
                            f"outside the precomputed period [{self.start}, {self.end}]")
        lo = np.searchsorted(self.pass_sec, w0, side='right')
        hi = np.searchsorted(self.pass_sec, w1, side='right')
        inv = np.full(self.column.size, -1, dtype=np.int64)
        inv[positions] = np.arange(npos)
        pp = inv[self.pass_pos[lo:hi]]
        keep = pp >= 0
        return positions, nsteps, dt, pp[keep], self.pass_sec[lo:hi][keep]

    def sample(self, positions, t0, dt, nsteps, snapshots) -> ObsTable:
        """Retrievals at the run-column ``positions`` (indices into ``column``) whose overpass time t satisfies
        t0 < t <= t0 + nsteps dt (dt in s), from the truth ``snapshots`` (see :meth:`_check_snapshots`: state at
        the END of each step, arrays over ``positions`` in the given order). Rows sorted by time then column."""
        spec = self.spec
        positions, nsteps, dt, p, tsec = self._window_passes(positions, t0, dt, nsteps)
        npos = positions.size
        snap = self._check_snapshots(snapshots, nsteps, npos)
        n = p.size
        times = _EPOCH + tsec.astype('timedelta64[s]')
        gcol = self.column[positions[p]]
        if n == 0:
            return ObsTable.empty(spec.name, spec.quantity, spec.sensing_depth, source=spec.source)
        k = operators.step_index(times, np.datetime64(t0, 's'), dt, nsteps)
        nw, w = self.nw, self.weights
        # truth in the sensed layers at the end of the step containing the overpass (advanced indexing ->
        # shape (n, nw)); microwaves see liquid water, frozen rows are flagged anyway
        theta = snap['theta'][k, :nw, p]
        ice = snap['theta_ice'][k, :nw, p]
        liquid = np.clip(theta - ice, 0.0, None)
        truth = _wsum(w, liquid)                                      # m3 m-3
        phi_true = _wsum(w, snap['porosity'][:nw, p].T)                # m3 m-3
        lai = snap['lai'][p]
        frozen = (snap['t_soil'][k, 0, p] < T_FREEZE) | np.any(ice[:, w >= 0.01] > spec.ice_threshold, axis=1)
        snow = snap['swe'][k, p] > spec.swe_threshold
        # errors (m3 m-3)
        sig = np.hypot(retrieval_error_std(spec, lai), spec.repr_std)
        err = sig * keyed_normal(self.seed, STREAM_RANDOM, self.skey, gcol, tsec)
        if spec.excursion_amplitude > 0:
            ramp = excursion_ramp(spec, lai)
            exc = np.zeros(n)
            m = ramp > 0
            if np.any(m):
                exc[m] = spec.excursion_amplitude * ramp[m] * keyed_ar1(
                    self.seed, STREAM_EXCURSION * 10 + self.skey, gcol[m], tsec[m] / 86400.0,
                    spec.excursion_tau_days)
            err = err + exc
        vol = truth + err
        quality = np.zeros(n, dtype=np.int32)
        if spec.quantity == 'saturation':
            # change detection measures wetness relative to the real soil's pore space; the product is then
            # converted by users with an external porosity that differs from the model's
            value = vol / phi_true
            upper = np.ones(n)
            phi_ext = np.clip(phi_true + spec.porosity_error_std
                              * keyed_normal(self.seed, STREAM_POROSITY, self.skey, gcol), 0.05, 0.95)
            porosity = phi_ext
            error = spec.nominal_error / phi_ext
        else:
            value = vol
            upper = phi_true
            porosity = np.full(n, np.nan)
            error = np.full(n, spec.nominal_error)
        out_of_range = (value < 0.0) | (value > upper)
        value = np.clip(value, 0.0, upper)
        quality[out_of_range] |= FLAG_RANGE
        quality[frozen] |= FLAG_FROZEN
        quality[snow] |= FLAG_SNOW
        quality[lai >= spec.dense_lai_threshold] |= FLAG_DENSE_VEGETATION
        no_retrieval = frozen | snow
        value[no_retrieval] = np.nan
        quality[no_retrieval] &= ~np.int32(FLAG_RANGE)
        table = ObsTable(spec.name, spec.quantity, spec.sensing_depth, time=times, column=gcol,
                         lat=self.lat[positions[p]], lon=self.lon[positions[p]], value=value, error=error,
                         porosity=porosity, quality=quality, source=spec.source)
        return table.sorted()


TB_NEDT = 1.1            # K, SMAP radiometer noise-equivalent delta T at 36 km (Piepmeier et al. 2017, IEEE TGRS 55)
TB_REPR_STD = 3.8        # K, footprint-to-cell representativeness + RTM error; sqrt(NEDT^2 + repr^2) ~ 4 K, the
                         # Tb observation error std of SMAP L4 (Reichle et al. 2017, J. Hydrometeor. 18)
TB_DENSE_VWC = 5.0       # kg m-2, vegetation water content above which SMAP flags retrieval quality


class TbSimulator(RetrievalSimulator):
    """SMAP-like L-band brightness temperatures (one polarisation, 'h' or 'v') from the truth.

    Same orbit and swath as the ``L`` sensor (``spec``), so the same overpasses as the L retrievals; one value per
    model column per overpass (the column stands for the 36 km footprint; the footprint-to-cell mismatch is the
    representativeness error). Truth Tb = :func:`colmda.obs.tau_omega.brightness_temperature` of the liquid water
    of the sensed layers (sensing weights of ``spec.sensing_depth``), the Choudhury effective temperature of the
    layer temperatures, LAI, PFT and clay; plus keyed white noise of std sqrt(nedt^2 + repr_std^2) (K).
    Frozen soil or snow: value NaN and the FROZEN/SNOW bits (not modelled by the operator); VWC > 5 kg m-2: the
    DENSE_VEGETATION bit (value kept). Written as quantity 'tb_h' / 'tb_v' (K)."""

    def __init__(self, spec, column, lat, lon, dz_soil, start, end, seed, *, polarisation, pft, clay,
                 nedt=TB_NEDT, repr_std=TB_REPR_STD, params=None):
        from ..core import soil_nodes
        from . import tau_omega

        super().__init__(spec, column, lat, lon, dz_soil, start, end, seed)
        if polarisation not in ('h', 'v'):
            raise UserError(f"TbSimulator: polarisation = {polarisation!r}, expected 'h' or 'v'")
        n = self.column.size
        if pft is None or np.size(pft) != n:
            raise UserError(f"TbSimulator: pft missing or not one value per column ({n} expected)")
        if clay is None or np.size(clay) != n or not np.all(np.isfinite(clay)):
            raise UserError(f"TbSimulator: clay fraction missing (None, NaN or not {n} values); the dielectric "
                            "model needs it")
        self.pol = polarisation
        self.name = 'Tb' + polarisation.upper()
        self.skey = _sensor_key(self.name)
        self.pft = np.asarray(pft, dtype=np.int64).ravel()
        self.clay = np.asarray(clay, dtype=np.float64).ravel()
        self.nedt, self.repr_std = float(nedt), float(repr_std)
        self.params = params or tau_omega.TauOmegaParams()
        self.t_weights = tau_omega.temperature_weights(soil_nodes(self.dz_soil))

    def sample(self, positions, t0, dt, nsteps, snapshots) -> ObsTable:
        """As :meth:`RetrievalSimulator.sample` (same snapshots), returning brightness temperatures (K)."""
        from . import tau_omega

        positions, nsteps, dt, p, tsec = self._window_passes(positions, t0, dt, nsteps)
        npos = positions.size
        snap = self._check_snapshots(snapshots, nsteps, npos)
        quantity = 'tb_' + self.pol
        if p.size == 0:
            return ObsTable.empty(self.name, quantity, self.spec.sensing_depth, source=self._source())
        times = _EPOCH + tsec.astype('timedelta64[s]')
        run_pos = positions[p]
        gcol = self.column[run_pos]
        k = operators.step_index(times, np.datetime64(t0, 's'), dt, nsteps)
        nw, w = self.nw, self.weights
        ice = snap['theta_ice'][k, :nw, p]
        liquid = np.clip(snap['theta'][k, :nw, p] - ice, 0.0, None)
        theta_s = _wsum(w, liquid)
        nz = int(np.flatnonzero(self.t_weights).max()) + 1
        t_eff = _wsum(self.t_weights[:nz], snap['t_soil'][k, :nz, p])
        lai = snap['lai'][p]
        out = tau_omega.brightness_temperature(theta_s, t_eff, lai, self.pft[run_pos], self.clay[run_pos],
                                               params=self.params)
        truth = out['tb_' + self.pol]
        tau_omega.check_tb(truth, f"TbSimulator {self.name}: simulated truth Tb (check the soil temperatures, K)")
        sig = math.hypot(self.nedt, self.repr_std)
        value = truth + sig * keyed_normal(self.seed, STREAM_TB, self.skey, gcol, tsec)
        frozen, snow = tau_omega.qc_flags(snap['t_soil'][k, 0, p], np.max(ice[:, w >= 0.01], axis=1),
                                          snap['swe'][k, p], self.spec.ice_threshold, self.spec.swe_threshold)
        quality = np.zeros(p.size, dtype=np.int32)
        quality[frozen] |= FLAG_FROZEN
        quality[snow] |= FLAG_SNOW
        quality[out['tau'] / self.pft_b(run_pos) > TB_DENSE_VWC] |= FLAG_DENSE_VEGETATION
        value[frozen | snow] = np.nan
        table = ObsTable(self.name, quantity, self.spec.sensing_depth, time=times, column=gcol,
                         lat=self.lat[run_pos], lon=self.lon[run_pos], value=value, error=np.full(p.size, sig),
                         porosity=np.full(p.size, np.nan), quality=quality, source=self._source())
        return table.sorted()

    def pft_b(self, run_pos):
        """b (m2 kg-1) of the columns' PFTs, bare soil set to inf (VWC = tau / b = 0 there)."""
        from ..pft import MICROWAVE

        b = MICROWAVE[self.pft[run_pos], 0]
        return np.where(b > 0, b, np.inf)

    def _source(self):
        return (f"colmda OSSE: simulated SMAP-like L-band Tb ({self.pol.upper()} pol., "
                f"{self.params.incidence_deg:g} deg, {self.params.dielectric}) with NEDT {self.nedt} K and "
                f"representativeness error {self.repr_std} K")
