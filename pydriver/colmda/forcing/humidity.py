"""Saturation humidity (shared by the weather generator, the forcing readers and the forcing perturbations).

Its own module so that :mod:`colmda.forcing.perturb` and :mod:`colmda.forcing.weather` do not import each other.
"""

from __future__ import annotations

import numpy as np

__all__ = ['saturation_vapour_pressure', 'saturation_specific_humidity']


def saturation_vapour_pressure(t_k):
    """Saturation vapour pressure (Pa): over water for T >= 273.15 K (Bolton 1980 form of Magnus), over ice
    below (Magnus form, Sonntag 1990 coefficients)."""
    tc = np.clip(np.asarray(t_k, dtype=np.float64) - 273.15, -150.0, 100.0)
    warm = tc >= 0.0
    return 611.2 * np.exp(np.where(warm, 17.67, 22.46) * tc / (tc + np.where(warm, 243.5, 272.62)))


def saturation_specific_humidity(t_k, p_pa):
    """Saturation specific humidity (kg kg-1) at temperature (K) and pressure (Pa)."""
    e = saturation_vapour_pressure(t_k)
    p = np.asarray(p_pa, dtype=np.float64)
    e = np.minimum(e, 0.5 * p)
    return 0.622 * e / (p - 0.378 * e)
