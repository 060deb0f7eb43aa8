"""Meteorological forcing for the column core: generator, readers, time interpolation, perturbations.

Every forcing source returns the core's array ``forc[NF, nsteps, ncol]`` (float64, Fortran order, rows
``colmda.layout.F_*``) from ``source.generate(start, nsteps, columns)``:

* :class:`WeatherGenerator` - synthetic weather matching the domain's monthly climatology.
* :class:`ReaderForcing` - a :class:`ForcingReader` (e.g. :class:`Plumber2Reader`) interpolated to the
  model step by :mod:`colmda.forcing.interp`.

:func:`perturb_forcing` makes ensemble members (SMAP L4 / GEOSldas-style perturbations).
See ``docs/forcing.md``.
"""

from .interp import ReaderForcing, interp_block_mean, interp_linear, interp_shortwave, to_model_forcing
from .perturb import (PerturbationSettings, flatten_members, keyed_normal, keyed_uniform, perturb_forcing,
                      perturbation_factors, perturbation_normals)
from .readers import ForcingChunk, ForcingError, ForcingReader, Plumber2Reader
from .weather import WeatherGenerator, WeatherSettings

__all__ = [
    'WeatherGenerator', 'WeatherSettings', 'ForcingReader', 'ForcingChunk', 'ForcingError', 'Plumber2Reader',
    'ReaderForcing', 'to_model_forcing', 'interp_linear', 'interp_block_mean', 'interp_shortwave',
    'PerturbationSettings', 'perturb_forcing', 'perturbation_factors', 'perturbation_normals',
    'flatten_members', 'keyed_normal', 'keyed_uniform',
]
