"""Synthetic columns in five climates, for verification runs, stability tests and benchmarks.

Each climate is a point with a latitude, a plant functional type, a soil texture and an analytic forcing:
seasonal and diurnal temperature cycles, shortwave from solar geometry with cloudiness tied to rain,
Brutsaert clear-sky longwave with a cloud correction, humidity from a relative humidity, and intermittent
precipitation from a thresholded AR(1) Gaussian process with exponential amounts. Everything is deterministic from the
seed. These are test inputs, not a climate data set; the driver's weather generator (colmda.forcing) is the
one that follows a real climatology.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from scipy.stats import norm

from . import layout as L
from .core import ColumnParameters, default_soil_thickness, soil_interfaces


@dataclass(frozen=True)
class Climate:
    lat: float  # latitude (deg)
    t_mean: float  # annual mean air temperature (K)
    t_seasonal: float  # half the annual range of monthly temperature (K)
    t_diurnal: float  # half the diurnal range (K)
    precip_annual: float  # annual precipitation (kg m-2 yr-1)
    wet_fraction: float  # fraction of wet half-hours in a wet spell regime (-)
    rh: float  # mean relative humidity (-)
    pft: int  # dominant PFT index (colmda.pft)
    sand: float  # sand fraction (-)
    clay: float  # clay fraction (-)
    lai_max: float  # peak leaf area index (m2 m-2)
    lai_min: float  # minimum leaf area index (m2 m-2)


CLIMATES = {
    "tropical": Climate(2.0, 299.0, 1.0, 4.0, 2400.0, 0.10, 0.82, 4, 0.35, 0.40, 5.5, 5.0),
    "arid": Climate(23.0, 297.0, 7.0, 8.0, 80.0, 0.01, 0.25, 0, 0.80, 0.08, 0.0, 0.0),
    "temperate": Climate(48.0, 284.0, 9.0, 5.0, 800.0, 0.06, 0.72, 7, 0.40, 0.20, 5.0, 0.5),
    "boreal": Climate(62.0, 271.0, 18.0, 5.0, 550.0, 0.06, 0.75, 2, 0.55, 0.12, 3.0, 2.5),
    "tundra": Climate(70.0, 262.0, 15.0, 3.0, 300.0, 0.05, 0.80, 12, 0.45, 0.15, 1.2, 0.1),
}


def _rng(seed: int, name: str, k: int) -> np.random.Generator:
    return np.random.default_rng([seed, sum(map(ord, name)), k])


def column_parameters(climates: list[str], *, dz_soil=None, zref: float = 30.0) -> ColumnParameters:
    """Parameters for columns in the named climates (PFT table + pedotransfer functions), LAI at its peak."""
    from .pft import root_fractions, vegpar
    from .soilparams import soil_parameters

    dz = default_soil_thickness() if dz_soil is None else np.asarray(dz_soil, dtype=float)
    cl = [CLIMATES[c] for c in climates]
    pft = np.array([c.pft for c in cl])
    sand = np.array([c.sand for c in cl])
    clay = np.array([c.clay for c in cl])
    rootfr = root_fractions(pft, soil_interfaces(dz))
    soilpar = soil_parameters(sand, clay, nl=L.NL_SOIL, rootfr=rootfr, dz=dz)
    colpar = np.zeros((L.NCP, len(cl)), order="F")
    colpar[L.CP_LAI] = [c.lai_max for c in cl]
    colpar[L.CP_SAI] = [0.1 * c.lai_max + (0.2 if c.pft else 0.0) for c in cl]
    colpar[L.CP_ZREF] = zref
    # a medium soil colour class (CLM class 4 of 8)
    colpar[L.CP_ALBSAT_VIS], colpar[L.CP_ALBSAT_NIR] = 0.09, 0.18
    colpar[L.CP_ALBDRY_VIS], colpar[L.CP_ALBDRY_NIR] = 0.18, 0.36
    return ColumnParameters(soilpar, vegpar(pft), colpar, dz)


def seasonal_lai(climate: str, doy: np.ndarray) -> np.ndarray:
    """LAI following the temperature cycle (peak in mid-summer) between the climate's min and max."""
    c = CLIMATES[climate]
    phase = np.cos(2 * np.pi * (doy - 200.0) / 365.0) * np.sign(c.lat or 1.0)
    return c.lai_min + (c.lai_max - c.lai_min) * 0.5 * (1 + phase)


def cos_zenith(lat_deg: float, doy: np.ndarray, hour_utc: np.ndarray, lon_deg: float = 0.0) -> np.ndarray:
    """Cosine of the solar zenith angle (Cooper declination, no equation of time; test input only)."""
    decl = np.deg2rad(23.45) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.deg2rad(15.0 * (hour_utc + lon_deg / 15.0 - 12.0))
    lat = np.deg2rad(lat_deg)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def climate_forcing(climates: list[str], nsteps: int, *, dt: float = 1800.0, start_doy: float = 0.0,
                    seed: int = 1) -> np.ndarray:
    """Forcing (NF, nsteps, ncol) for the named climates, Fortran order. Column k uses the random stream
    (seed, climate, k) so that adding columns never changes existing ones."""
    ncol = len(climates)
    forc = np.zeros((L.NF, nsteps, ncol), order="F")
    t_mid = (np.arange(nsteps) + 0.5) * dt / 86400.0 + start_doy  # day of year at mid-step (days)
    doy = np.mod(t_mid, 365.0)
    hour = np.mod(t_mid, 1.0) * 24.0
    for k, name in enumerate(climates):
        c = CLIMATES[name]
        rng = _rng(seed, name, k)
        hemis = 1.0 if c.lat >= 0 else -1.0
        # precipitation: a thresholded AR(1) Gaussian process gives storms lasting hours (lag-1 corr 0.9)
        rho = 0.9
        latent = lfilter([np.sqrt(1 - rho ** 2)], [1.0, -rho], rng.standard_normal(nsteps))
        wet = latent > norm.ppf(1.0 - c.wet_fraction)
        seasonal_p = 1.0 + 0.5 * np.cos(2 * np.pi * (doy - 200.0) / 365.0) * hemis
        mean_rate = c.precip_annual / (365.0 * 86400.0)  # kg m-2 s-1
        amounts = rng.exponential(1.0, nsteps) * mean_rate / max(c.wet_fraction, 1e-6)
        prec = np.where(wet, amounts * seasonal_p, 0.0)
        cloud = np.clip(0.25 + 0.6 * wet + 0.1 * rng.standard_normal(nsteps), 0.0, 1.0)
        tseas = c.t_mean + c.t_seasonal * np.cos(2 * np.pi * (doy - 200.0) / 365.0) * hemis
        tair = tseas + c.t_diurnal * (1 - 0.5 * cloud) * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        coszen = cos_zenith(c.lat, doy, hour)
        sw = np.maximum(coszen, 0.0) * 1361.0 * 0.75 * (1 - 0.65 * cloud)
        es = 611.2 * np.exp(17.67 * (tair - 273.15) / (tair - 29.65))
        ea = np.clip(c.rh + 0.15 * wet, 0.05, 1.0) * es
        psurf = np.full(nsteps, 101325.0 * np.exp(-200.0 / 8400.0))
        qair = 0.622 * ea / (psurf - 0.378 * ea)
        eps_clear = 1.24 * (ea / 100.0 / tair) ** (1.0 / 7.0)
        lw = (eps_clear * (1 - 0.84 * cloud) + 0.84 * cloud) * 5.67e-8 * tair ** 4
        wind = np.maximum(0.3, rng.weibull(2.0, nsteps) * 3.5)
        forc[L.F_TAIR, :, k] = tair
        forc[L.F_QAIR, :, k] = qair
        forc[L.F_PSURF, :, k] = psurf
        forc[L.F_PREC, :, k] = prec
        forc[L.F_WIND, :, k] = wind
        forc[L.F_SWDOWN, :, k] = sw
        forc[L.F_LWDOWN, :, k] = lw
        forc[L.F_COSZEN, :, k] = coszen
    return forc
