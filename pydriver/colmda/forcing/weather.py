"""Stochastic weather generator: sub-daily forcing whose expected monthly means are the domain climatology.

``WeatherGenerator(domain, seed, dt=1800).generate(start, nsteps, columns)`` returns the core's forcing
array ``forc[NF, nsteps, ncol]`` (float64, Fortran order, rows :mod:`colmda.layout` ``F_*``).

Design (details and references in ``docs/forcing.md``)
-----------------------------------------------------
* Three latent Gaussian fields on the domain's full grid, unit variance: precipitation/cloud (e-folding
  correlation distance 400 km), temperature anomaly (1500 km), wind (800 km). Each is a *process
  convolution*: keyed white-noise fields at nodes every 6/12/6 h, smoothed in space
  (:class:`colmda.forcing.perturb.GaussianSmoother`), advected eastward/westward with a zonal wind profile
  (westerlies 10 m/s at 45 deg, trade easterlies 5 m/s at the equator, a phase shift in longitude Fourier
  space) and blended in time with a Gaussian kernel (sd 9/24/12 h, cut at 3 sd). The field at time t is a
  function of the nodes within 3 sd of t only: finite memory, so any window is generated directly.
* Precipitation: latent ``Z = sqrt(0.7) Z_synoptic + sqrt(0.3) Z_fast`` (``Z_fast`` independent per
  column, nodes every 3 h, linear in time) is wet above ``c = Phi^-1(1 - p)``, with ``p`` the wet-step
  fraction that gives the climatological wet-day fraction; the amount is the Weibull (shape 0.75, mean 1)
  quantile of the exceedance probability times ``P_m / p``, so ``E[P] = P_m``, the calendar month's
  climatological rate (a step function: it only scales the rain amounts, and keeps every monthly mean
  exact and non-negative). ``T(t)`` is the monthly climatology interpolated between mid-months with
  mean-preserving adjusted mid-month values (Killworth 1995); the wet-day fraction is interpolated
  linearly. So the expected monthly means equal the climatology.
* Cloudiness ``n = Phi((Z - c + 0.8) / 0.7)`` (overcast when raining); shortwave = Haurwitz (1945) clear
  sky from the step-mean solar geometry times the Angstrom-Prescott reduction ``(a + b s) / (a + b)`` with
  the FAO-56 coefficients a = 0.25, b = 0.5 and relative sunshine ``s = 1 - n``, i.e. ``1 - 0.67 n``.
* Air temperature = climatology + sd(lat) * Z_T + cloud effect (zero mean) + diurnal cycle (peak 15 h
  local solar time, range from aridity, insolation and cloud). Humidity from a relative humidity tied to
  the wet-day fraction and cloud at the daily-mean temperature (so RH falls in the afternoon), capped at
  saturation. Longwave: Brutsaert (1975) clear-sky emissivity with the Crawford and Duchon (1999) cloud
  correction. Pressure: domain surface pressure, lower under rain systems. Wind: lognormal around a
  land-cover mean with a diurnal cycle.

Invariances (tested): the value for a column depends only on (seed, global column, time); requesting
columns alone or with others, on any MPI rank, and generating a later window alone or inside a longer
run give bitwise identical numbers. Everything is element-wise or fixed-shape FFTs; no BLAS.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading

import numpy as np
from scipy import special

from .. import solar
from ..domain import monthly_interp_weights
from ..layout import F_COSZEN, F_LWDOWN, F_PREC, F_PSURF, F_QAIR, F_SWDOWN, F_TAIR, F_WIND, NF
from .humidity import saturation_specific_humidity, saturation_vapour_pressure
from .perturb import GaussianSmoother, keyed_normal

__all__ = ['WeatherSettings', 'WeatherGenerator', 'saturation_vapour_pressure',
           'saturation_specific_humidity', 'wet_step_fraction', 'STEFAN_BOLTZMANN']

STEFAN_BOLTZMANN = 5.670374419e-8  # W m-2 K-4
_STREAM_PREC, _STREAM_TAIR, _STREAM_WIND, _STREAM_FAST = 1, 2, 3, 4
#: columns per pass of the per-column computations (about 0.2 MB per (one day x block) float64 array at 30-min
#: steps): large enough that per-call overheads do not matter, small enough for the CPU cache
COLUMN_BLOCK = 512


def wet_step_fraction(wet_day_fraction):
    """Fraction of model steps with rain that gives the requested fraction of days with >= 1 mm.

    The latent precipitation field is correlated over hours to a day, so rain covers fewer steps than days.
    Calibrated on this generator with its default settings over all non-ice land columns (one July and one
    January, ``docs/forcing.md``): the realised wet-day fraction is close to ``f = 1.66 p^0.9``, inverted
    here as ``p = (f / 1.66)^1.11``.
    """
    f = np.clip(np.asarray(wet_day_fraction, dtype=np.float64), 0.0, 0.98)
    return np.clip((f / 1.66) ** 1.11, 1e-5, 0.9)


@dataclasses.dataclass(frozen=True)
class WeatherSettings:
    """Parameters of the weather generator (defaults documented in ``docs/forcing.md``)."""

    prec_corr_km: float = 400.0        # e-folding correlation distance of the precipitation latent field
    prec_node_hours: float = 6.0
    prec_sigma_hours: float = 9.0      # temporal kernel sd
    prec_fast_fraction: float = 0.3    # variance share of the column-independent fast component
    prec_fast_node_hours: float = 3.0
    weibull_shape: float = 0.75        # shape of the wet-step intensity distribution
    cloud_offset: float = 0.8          # cloud fraction 0.5 at 0.8 sd below the rain threshold
    cloud_width: float = 0.7
    angstrom_b: float = 0.67           # shortwave / clear sky = 1 - b * cloud (Angstrom-Prescott a=0.25, b=0.5)
    tair_corr_km: float = 1500.0
    tair_node_hours: float = 12.0
    tair_sigma_hours: float = 24.0
    tair_sd_equator: float = 1.0       # K, synoptic temperature anomaly sd: a + (b - a) sin^2(lat)
    tair_sd_pole: float = 4.0
    dtr_min: float = 6.0               # K, clear-sky diurnal range, humid .. arid
    dtr_max: float = 16.0
    cloud_tair_day: float = -4.0       # K per unit cloud-fraction anomaly, full sun .. polar night
    cloud_tair_night: float = 3.0
    wind_corr_km: float = 800.0
    wind_node_hours: float = 6.0
    wind_sigma_hours: float = 12.0
    wind_log_sd: float = 0.45
    wind_diurnal: float = 0.25         # relative amplitude, peak 14 h local solar time
    psurf_sd_frac: float = 0.006       # relative pressure anomaly per sd of the synoptic rain field
    u_westerly: float = 10.0           # m/s at +-45 deg
    westerly_lat: float = 45.0
    westerly_width: float = 15.0
    u_easterly: float = 5.0            # m/s at the equator (towards the west)
    easterly_width: float = 12.0
    kernel_cut: float = 3.0
    eval_hours_prec: float = 1.0       # time resolution at which latent fields are evaluated
    eval_hours_slow: float = 3.0


# mean wind speed (m/s) by PFT: bare, trees (1-8), shrubs (9-11), grasses/crops (12-15); ice sheets 5
_WIND_MEAN = np.array([4.0] + [2.5] * 8 + [3.0] * 3 + [3.5] * 4)


class _LatentField:
    """Advected process-convolution Gaussian field on the full grid, unit variance, keyed by node.

    Only the band of grid rows (latitudes) that holds the requested columns is computed: every row's values are
    the same whatever band it is computed in (keyed white noise, latitude taps and per-row FFTs are all row by
    row), so a rank that owns half of the columns does about half of the work. The band grows when columns
    outside it are requested (after a rebalance of the MPI ranks)."""

    def __init__(self, domain, seed, stream, corr_km, node_hours, sigma_hours, eval_hours, s, advect=True):
        self.seed, self.stream = int(seed), int(stream)
        self.node_s = int(round(node_hours * 3600))
        self.sig = sigma_hours * 3600.0
        self.cut = s.kernel_cut * self.sig
        self.eval_s = int(round(eval_hours * 3600))
        if 86400 % self.eval_s:
            raise ValueError('latent field evaluation interval must divide one day')
        lat = domain.lat
        u = (s.u_westerly * np.exp(-((np.abs(lat) - s.westerly_lat) / s.westerly_width) ** 2)
             - s.u_easterly * np.exp(-(lat / s.easterly_width) ** 2)) if advect else np.zeros_like(lat)
        pad_km = float(np.abs(u).max()) * self.cut / 1e3
        self.sm = GaussianSmoother(domain.lat, domain.lon, corr_km, domain.is_global, extra_pad_km=pad_km)
        self.kx = 2.0 * np.pi * self.sm.k[None, :] * u[:, None] / self.sm.row_len[:, None]  # rad per s of lag
        self.nlon = domain.nlon
        self.lo, self.hi = 0, 0  # the band of grid rows computed: [lo, hi)
        self._spec = collections.OrderedDict()
        self._phase = {}
        self._blocks = collections.OrderedDict()

    def _band(self, cols):
        """Make the computed band hold the rows of global cells ``cols`` (forgetting cached values if it grows)."""
        rows = cols // self.nlon
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if self.lo <= lo and hi <= self.hi:
            return
        if self.hi > self.lo:
            lo, hi = min(lo, self.lo), max(hi, self.hi)
        self.lo, self.hi = lo, hi
        self._spec.clear()
        self._phase.clear()
        self._blocks.clear()

    def _node_spec(self, n):
        """Latitude-smoothed keyed white noise of node ``n``, Fourier transformed along longitude, for the band's
        rows: the rows ``lo .. hi`` of :meth:`GaussianSmoother.spectrum` of :meth:`GaussianSmoother.white`."""
        if n in self._spec:
            self._spec.move_to_end(n)
            return self._spec[n]
        sm, lo, hi = self.sm, self.lo, self.hi
        nb, ntap = hi - lo, len(sm.taps)
        idx = np.arange(lo * sm.next, (hi + ntap - 1) * sm.next, dtype=np.int64)
        white = keyed_normal(self.seed, self.stream, n, idx).reshape(nb + ntap - 1, sm.next)
        acc = np.zeros((nb, sm.next))
        for a, g in enumerate(sm.taps):
            acc = acc + g * white[a:a + nb]
        sp = np.fft.rfft(acc, axis=1)
        self._spec[n] = sp
        if len(self._spec) > 64:
            self._spec.popitem(last=False)
        return sp

    def _weighted_phase(self, tau, w):
        """``w * exp(-i kx tau)`` on the band (advection by ``tau`` seconds times the kernel weight, which depends
        on ``tau`` only): cached per lag."""
        p = self._phase.get(tau)
        if p is None:
            p = w * np.exp(-1j * self.kx[self.lo:self.hi] * tau)
            self._phase[tau] = p
        return p

    def block(self, day):
        """Field at the evaluation times of one UTC day on the band: (n_eval_per_day, (hi - lo) * nlon)."""
        if day in self._blocks:
            self._blocks.move_to_end(day)
            return self._blocks[day]
        nper = 86400 // self.eval_s
        sm = self.sm
        transfer = sm.transfer[self.lo:self.hi]
        out = np.empty((nper, (self.hi - self.lo) * self.nlon))
        term_buf = np.empty((self.hi - self.lo, len(sm.k)), dtype=complex)
        for h in range(nper):
            t = day * 86400 + h * self.eval_s
            n_lo = int(math.ceil((t - self.cut) / self.node_s))
            n_hi = int(math.floor((t + self.cut) / self.node_s))
            acc = None
            w2 = 0.0
            for n in range(n_lo, n_hi + 1):
                tau = t - n * self.node_s
                w = math.exp(-0.5 * (tau / self.sig) ** 2)
                if acc is None:
                    acc = self._weighted_phase(tau, w) * self._node_spec(n)
                else:  # acc + (w * phase) * spectrum, without temporaries
                    term = np.multiply(self._weighted_phase(tau, w), self._node_spec(n), out=term_buf)
                    np.add(acc, term, out=acc)
                w2 += w * w
            y = np.fft.irfft(transfer * acc, n=sm.next, axis=1)[:, sm.pad:sm.pad + sm.nlon]  # GaussianSmoother.field
            out[h] = (y / math.sqrt(w2)).ravel()
        self._blocks[day] = out
        if len(self._blocks) > 6:
            self._blocks.popitem(last=False)
        return out

    def at(self, tm, cols):
        """Values at times ``tm`` (s, (nst,)) for global cells ``cols``: (nst, ncol), linear in time."""
        self._band(cols)
        cells = cols - self.lo * self.nlon
        k = np.floor(tm / self.eval_s).astype(np.int64)
        w = (tm - k * self.eval_s) / self.eval_s
        k0, k1 = int(k.min()), int(k.max()) + 1
        nper = 86400 // self.eval_s
        vals = np.empty((k1 - k0 + 1, cols.size))
        for kk in range(k0, k1 + 1):
            d, h = divmod(kk, nper)
            vals[kk - k0] = self.block(d)[h, cells]
        return (1.0 - w)[:, None] * vals[k - k0] + w[:, None] * vals[k - k0 + 1]


@dataclasses.dataclass
class _Request:
    t0: int  # s since 1970
    nsteps: int
    cols: np.ndarray

    def matches(self, t0, nsteps, cols) -> bool:
        return self.t0 == t0 and self.nsteps == nsteps and np.array_equal(self.cols, cols)


class _ReadAhead(_Request):
    """A request computed speculatively in a daemon thread; :meth:`take` waits for it (None if it failed: the
    caller then computes it again, so that an error is raised where it is asked for)."""

    def __init__(self, fn, t0, nsteps, cols):
        super().__init__(t0, nsteps, cols)
        self._result = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name='colmda-forcing-read-ahead', daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self._result = fn(self.t0, self.nsteps, self.cols)
        except Exception:  # noqa: BLE001 - recomputed (and raised) by the caller if it asks for this request
            self._result = None

    def take(self):
        self._thread.join()
        return self._result


class WeatherGenerator:
    """Synthetic forcing for a domain's land columns, deterministic in (seed, global column, time).

    Parameters: ``domain`` (:class:`colmda.domain.Domain`), ``seed`` (int), ``dt`` (model step in
    seconds, default 1800), ``settings`` (:class:`WeatherSettings`).
    """

    def __init__(self, domain, seed=0, dt=1800, settings=None):
        self.domain = domain
        self.seed = int(seed)
        if int(dt) != dt or dt <= 0:
            raise ValueError(f'weather generator: dt must be a positive whole number of seconds, got {dt}')
        self.dt = int(dt)
        self.s = settings or WeatherSettings()
        s = self.s
        self._tstar = domain.monthly_field('tair_clim', mean_preserving=True)
        self._pmon = domain.monthly_field('prec_clim')
        self._fd = domain.monthly_field('wetday_frac_clim')
        self._fp = _LatentField(domain, seed, _STREAM_PREC, s.prec_corr_km, s.prec_node_hours,
                                s.prec_sigma_hours, s.eval_hours_prec, s)
        self._ft = _LatentField(domain, seed, _STREAM_TAIR, s.tair_corr_km, s.tair_node_hours,
                                s.tair_sigma_hours, s.eval_hours_slow, s)
        self._fw = _LatentField(domain, seed, _STREAM_WIND, s.wind_corr_km, s.wind_node_hours,
                                s.wind_sigma_hours, s.eval_hours_slow, s)
        self.prefetch = os.environ.get('COLMDA_FORCING_PREFETCH', '1').strip() not in ('0', 'no', 'false')
        self._lock = threading.Lock()
        self._last = None  # the previous request (_Request)
        self._ahead = None  # the request after it, being computed (_ReadAhead)

    def generate(self, start, nsteps, columns=None):
        """Forcing for ``nsteps`` steps from ``start`` (datetime64 / ISO string, UTC) for global columns.

        Returns ``forc`` (NF, nsteps, ncol) float64 in Fortran order. ``columns`` defaults to the domain's
        selected land columns. Step k covers [start + k dt, start + (k+1) dt); precipitation and shortwave
        are step means, the other variables values at mid-step.

        Read-ahead: when a request starts where the previous one ended (same length, same columns), the one after
        it is computed in a background thread (the column core releases the GIL, so this runs during the core)
        and returned by the next call if it asks for it; the numbers are the same either way. Set
        :attr:`prefetch` False (or the environment variable ``COLMDA_FORCING_PREFETCH=0``) to switch it off.
        """
        d = self.domain
        cols = d.columns if columns is None else np.asarray(columns, dtype=np.int64).ravel()
        if cols.size and (cols.min() < 0 or cols.max() >= d.nlat * d.nlon):
            raise ValueError(f'weather generator: column index outside 0..{d.nlat * d.nlon - 1}')
        nsteps = int(nsteps)
        t0 = int(solar.to_seconds(np.datetime64(start, 's') if isinstance(start, str) else start))
        with self._lock:
            forc = None
            ahead, self._ahead = self._ahead, None
            if ahead is not None:
                got = ahead.take()  # always wait: the caches are not shared between threads
                if got is not None and ahead.matches(t0, nsteps, cols):
                    forc = got
            if forc is None:
                forc = self._generate(t0, nsteps, cols)
            last, self._last = self._last, _Request(t0, nsteps, cols.copy())
            if self.prefetch and nsteps > 0 and cols.size and last is not None and \
                    last.matches(t0 - nsteps * self.dt, nsteps, cols):
                self._ahead = _ReadAhead(self._generate, t0 + nsteps * self.dt, nsteps, self._last.cols)
        return forc

    def _generate(self, t0, nsteps, cols):
        forc = np.empty((NF, nsteps, cols.size), order='F')
        if nsteps == 0 or cols.size == 0:
            return forc
        st = self._column_statics(cols)
        for f in (self._fp, self._ft, self._fw):  # the latent fields' band of rows: all of this request's
            f._band(cols)
        chunk = max(1, 86400 // self.dt)
        # blocks of columns whose (steps x columns) temporaries stay in the CPU cache: every value is element-wise
        # in (step, column), so the blocks give the same numbers as one pass over all columns
        for c0 in range(0, cols.size, COLUMN_BLOCK):
            c1 = min(cols.size, c0 + COLUMN_BLOCK)
            sub = {k: v[..., c0:c1] for k, v in st.items()}
            for k0 in range(0, nsteps, chunk):
                k1 = min(nsteps, k0 + chunk)
                self._chunk(t0, k0, k1, cols[c0:c1], sub, forc[:, :, c0:c1])
        return forc

    # ------------------------------------------------------------------------------------------------
    def _column_statics(self, cols):
        d, s = self.domain, self.s
        lat, lon = d.column_lat(cols), d.column_lon(cols)
        pft = d.get('pft', cols)
        wind = _WIND_MEAN[np.clip(pft, 0, 15)]
        if 'glacier' in d.fields:
            wind = np.where(d.get('glacier', cols) == 1, 5.0, wind)
        sin2 = np.sin(np.deg2rad(lat)) ** 2
        return {
            'lat': lat, 'lon': lon, 'tstar': self._tstar[:, cols], 'pmon': self._pmon[:, cols],
            'fd': self._fd[:, cols], 'psurf': d.get('psurf_clim', cols).astype(np.float64), 'wind': wind,
            'tsd': s.tair_sd_equator + (s.tair_sd_pole - s.tair_sd_equator) * sin2,
        }

    def _daily(self, days, st):
        """Quantities that change slowly, evaluated once per UTC day (at 12 UTC): (ndays, ncol) arrays."""
        s = self.s
        noon = days.astype(np.float64) * 86400.0 + 43200.0
        m0, m1, wm = monthly_interp_weights(noon.astype(np.int64))
        a, b = (1.0 - wm)[:, None], wm[:, None]
        fd = a * st['fd'][m0] + b * st['fd'][m1]
        tnoon = a * st['tstar'][m0] + b * st['tstar'][m1]
        p = wet_step_fraction(fd)
        c = special.ndtri(1.0 - p)
        sfac = np.clip(solar.daily_mean_toa(st['lat'][None, :], noon[:, None]) / 300.0, 0.15, 1.0)
        wet = np.sqrt(np.minimum(fd / 0.6, 1.0))
        rh0 = 0.25 + 0.55 * wet
        rh0 = rh0 + (0.85 - rh0) * np.clip((278.15 - tnoon) / 20.0, 0.0, 1.0)
        return {
            'p': p, 'c': c, 'sfac': sfac, 'rh0': rh0,
            'cf_mean': special.ndtr((s.cloud_offset - c) / math.sqrt(1.0 + s.cloud_width ** 2)),
            'dtr': (s.dtr_min + (s.dtr_max - s.dtr_min) * (1.0 - wet)) * sfac,
            'kappa': s.cloud_tair_day * sfac + s.cloud_tair_night * (1.0 - sfac),
        }

    def _chunk(self, t0, k0, k1, cols, st, forc):
        s, dt = self.s, self.dt
        kk = np.arange(k0, k1, dtype=np.float64)
        tstart = t0 + dt * kk
        tm = tstart + 0.5 * dt
        m0, m1, wm = monthly_interp_weights(np.floor(tm).astype(np.int64))
        a, b = (1.0 - wm)[:, None], wm[:, None]
        tclim = a * st['tstar'][m0] + b * st['tstar'][m1]
        cal = np.floor(tm).astype(np.int64).astype('datetime64[s]').astype('datetime64[M]').astype(np.int64) % 12
        pmean = st['pmon'][cal]            # calendar-month mean rate: exact monthly means, never negative
        day = np.floor(tm / 86400.0).astype(np.int64)
        days = np.arange(day.min(), day.max() + 1)
        dq = self._daily(days, st)
        di = day - days[0]
        p, c = dq['p'][di], dq['c'][di]

        # --- precipitation and cloud -------------------------------------------------------------------
        zs = self._fp.at(tm, cols)
        zf = self._fast(tm, cols)
        beta = s.prec_fast_fraction
        z = math.sqrt(1.0 - beta) * zs + math.sqrt(beta) * zf
        wet = (z > c) & (pmean > 0.0)
        k = s.weibull_shape
        e = np.maximum(np.log(p[wet]) - special.log_ndtr(-z[wet]), 0.0)   # -ln(1 - u), u = P(Z < z | wet)
        prec = np.zeros_like(z)
        prec[wet] = pmean[wet] / p[wet] * e ** (1.0 / k) / math.gamma(1.0 + 1.0 / k)
        cf = special.ndtr((z - c + s.cloud_offset) / s.cloud_width)

        # --- solar geometry ----------------------------------------------------------------------------
        cz, mu, lit, e0 = solar.step_geometry(st['lat'], st['lon'], tstart, dt)
        eot = solar.equation_of_time(tm)
        hsol = (np.mod(tm, 86400.0) / 3600.0 + eot / 60.0)[:, None] + st['lon'][None, :] / 15.0
        phase = (2.0 * np.pi / 24.0) * hsol

        # --- temperature ---------------------------------------------------------------------------------
        zt = self._ft.at(tm, cols)
        tday = tclim + st['tsd'][None, :] * zt + dq['kappa'][di] * (cf - dq['cf_mean'][di])
        tair = tday + 0.5 * dq['dtr'][di] * (1.0 - 0.5 * cf) * np.cos(phase - np.pi * 15.0 / 12.0)

        # --- pressure, humidity, wind ------------------------------------------------------------------
        psurf = st['psurf'][None, :] * (1.0 - s.psurf_sd_frac * zs)
        rh0 = dq['rh0'][di]
        rh = np.clip(rh0 + (0.95 - rh0) * 0.7 * cf, 0.05, 0.97)
        qair = np.minimum(rh * saturation_specific_humidity(tday, psurf),
                          0.99 * saturation_specific_humidity(tair, psurf))
        zw = self._fw.at(tm, cols)
        sw_ = s.wind_log_sd
        wind = st['wind'][None, :] * np.exp(sw_ * zw - 0.5 * sw_ * sw_) * \
            (1.0 + s.wind_diurnal * np.cos(phase - np.pi * 14.0 / 12.0))
        wind = np.clip(wind, 0.2, 30.0)

        # --- radiation -----------------------------------------------------------------------------------
        with np.errstate(divide='ignore', invalid='ignore'):
            clear = np.where(mu > 0, 1098.0 * e0[:, None] * mu * np.exp(-0.059 * lit / np.where(mu > 0, mu, 1.0)),
                             0.0)
        swdown = clear * (1.0 - s.angstrom_b * cf)
        ea = qair * psurf / (0.622 + 0.378 * qair)  # Pa
        eps_clr = np.maximum(1.24 * (0.01 * ea / tair) ** (1.0 / 7.0), 0.55)
        t2 = tair * tair
        lwdown = (cf + (1.0 - cf) * eps_clr) * STEFAN_BOLTZMANN * (t2 * t2)

        # --- output: forc is Fortran-ordered (NF, nsteps, ncol), i.e. C-ordered (ncol, nsteps, NF): write each
        # variable through that view (one strided copy per variable)
        dst = forc.T[:, k0:k1, :]
        for row, val in ((F_TAIR, tair), (F_QAIR, qair), (F_PSURF, psurf), (F_PREC, prec), (F_WIND, wind),
                         (F_SWDOWN, swdown), (F_LWDOWN, lwdown), (F_COSZEN, solar.model_coszen(cz, mu, lit))):
            dst[:, :, row] = val.T

    def _fast(self, tm, cols):
        """Column-independent fast precipitation component: keyed nodes, linear in time, unit variance."""
        node = int(round(self.s.prec_fast_node_hours * 3600))
        k = np.floor(tm / node).astype(np.int64)
        w = ((tm - k * node) / node)[:, None]
        kk = np.arange(int(k.min()), int(k.max()) + 2, dtype=np.int64)
        e = np.stack([keyed_normal(self.seed, _STREAM_FAST, int(n), cols) for n in kk])
        i = k - kk[0]
        return ((1.0 - w) * e[i] + w * e[i + 1]) / np.sqrt((1.0 - w) ** 2 + w ** 2)
