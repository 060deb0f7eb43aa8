"""Sensor specifications of the simulated soil moisture products: orbit, swath, sensing depth and error model.

Three sensors after seed 000 (sect. 2.1, Fig. 7, Fig. 10a); defaults and their sources are tabulated in
``docs/observations.md``:

* ``L``: SMAP-like L-band radiometer (L2_SM_P_E). 685 km sun-synchronous, 6:00 descending / 18:00 ascending,
  1000 km swath (NASA JPL SMAP fact sheet), sensing depth ~5 cm (Entekhabi et al. 2010, Proc. IEEE 98),
  volumetric; mission accuracy target 0.04 m3 m-3 unbiased RMSE (Entekhabi et al. 2010; Chan et al. 2016,
  IEEE TGRS 54), which the product reports; error slightly decreasing with vegetation density (seed Fig. 7).
* ``C``: ASCAT-like C-band scatterometer on Metop-B and Metop-C (same orbit, half an orbit apart), 817 km,
  09:30 descending / 21:30 ascending (EUMETSAT EPS-PG appendix B: LTAN 21:30, i = 98.7 deg), two 550 km
  swaths separated by a 670 km nadir gap (NWP SAF ASCAT-C page), sensing depth ~2 cm, degree of saturation
  (change detection, Wagner et al. 1999; Bartalis et al. 2007, GRL 34) converted with an external porosity
  (the seed uses ESA CCI porosity) that differs from the model's; error grows with vegetation (seed Fig. 7;
  Dorigo et al. 2010, HESS 14).
* ``X``: FY-3D MWRI-like X-band radiometer (10.65 GHz), 836 km, 13:40 ascending / 01:40 descending, 1400 km
  swath (WMO OSCAR, FY-3D and MWRI-1 pages), sensing depth ~1 cm, volumetric; error grows strongly with
  vegetation (Kang et al. 2021; Owe et al. 2008, JGR 113) and in dense canopies slow spurious wet/dry excursions
  uncorrelated with rain (seed Fig. 10a).

Error model of one retrieval (all errors in m3 m-3 of volumetric water content; for the saturation product they are
divided by the true porosity before the saturation is reported)::

    value = sum_l w_l theta_liq_l                                 (operators.sensing_weights, sensing_depth)
            + sqrt(sigma(LAI)^2 + repr_std^2) * N(0, 1)          (white per retrieval)
            + excursion_amplitude * ramp(LAI) * X(t)             (X: unit-variance AR(1), excursion_tau_days)
    sigma(LAI) = clip(error_std_bare + error_slope_lai * LAI, error_std_min, error_std_max)
    ramp(LAI)  = clip((LAI - excursion_lai_threshold) / excursion_lai_ramp, 0, 1)

Namelist mapping (lists over sensors L, C, X): error std at bare soil -> ``error_std_bare``; error slope with
vegetation -> ``error_slope_lai``; sensing depth -> ``sensing_depth``; swath width -> ``swath_km``;
representativeness std -> ``repr_std``; excursion amplitude -> ``excursion_amplitude``.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import UserError, suggestion
from .format import QUANTITIES
from .orbits import Orbit

__all__ = ['SensorSpec', 'default_specs', 'spec_with', 'validate_spec', 'SENSOR_NAMES']

SENSOR_NAMES = ('L', 'C', 'X')


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    """One simulated soil moisture product (units in the comments; see module docstring for the error model)."""

    name: str                          # 'L', 'C', 'X' (or any short id)
    long_name: str
    quantity: str                      # 'volumetric' (m3 m-3) or 'saturation' (1)
    # ---- orbit and swath
    altitude_km: float                 # km
    node_time_h: float                 # h, local mean solar time of `node`
    node: str                          # 'ascending' or 'descending'
    swath_km: float                    # km, total imaged width
    gap_km: float = 0.0                # km, unimaged band centred on the ground track
    phases_deg: tuple = (0.0,)         # deg, one per satellite in the orbit plane
    inclination_deg: float | None = None   # deg; None = sun-synchronous
    passes: str = 'both'               # 'both', 'ascending', 'descending' half-orbits used
    # ---- sensed layer
    sensing_depth: float = 0.05        # m, e-folding depth of the sensed signal
    # ---- random error (m3 m-3) as a function of LAI (m2 m-2)
    error_std_bare: float = 0.04       # m3 m-3, random error std at LAI = 0
    error_slope_lai: float = 0.0       # m3 m-3 per m2 m-2
    error_std_min: float = 0.01        # m3 m-3, floor of sigma(LAI)
    error_std_max: float = 0.20        # m3 m-3, cap of sigma(LAI)
    repr_std: float = 0.01             # m3 m-3, footprint-to-cell representativeness error std
    # ---- slow spurious excursions in dense canopies (MWRI, seed Fig. 10a)
    excursion_amplitude: float = 0.0   # m3 m-3, std of the excursion where ramp(LAI) = 1
    excursion_tau_days: float = 7.0    # d, e-folding time of the AR(1) excursion
    excursion_lai_threshold: float = 3.0   # m2 m-2, LAI above which excursions appear
    excursion_lai_ramp: float = 1.0    # m2 m-2, LAI range over which they grow to full amplitude
    # ---- product metadata and QC
    nominal_error: float = 0.04        # m3 m-3, error std the product reports (saturation: / porosity)
    porosity_error_std: float = 0.0    # m3 m-3, std of external-minus-true porosity (saturation products)
    dense_lai_threshold: float = 5.0   # m2 m-2, LAI at and above which FLAG_DENSE_VEGETATION is set
    swe_threshold: float = 5.0         # kg m-2, SWE above which FLAG_SNOW is set
    ice_threshold: float = 0.001       # m3 m-3, ice in a sensed layer above which FLAG_FROZEN is set
    source: str = ''

    @property
    def orbit(self) -> Orbit:
        return Orbit(self.altitude_km, self.node_time_h, self.node, self.swath_km, self.gap_km,
                     self.inclination_deg, tuple(self.phases_deg), passes=self.passes)


def default_specs() -> dict:
    """The three default sensors keyed 'L', 'C', 'X' (sources in the module docstring and the docs)."""
    L = SensorSpec(
        name='L', long_name='SMAP-like L-band radiometer soil moisture (L2_SM_P_E-like)', quantity='volumetric',
        altitude_km=685.0, node_time_h=6.0, node='descending', swath_km=1000.0,
        sensing_depth=0.05,
        error_std_bare=0.040, error_slope_lai=-0.002, error_std_min=0.025, repr_std=0.015,
        nominal_error=0.04, dense_lai_threshold=6.0,
        source='colmda OSSE: simulated SMAP-like L-band retrievals')
    C = SensorSpec(
        name='C', long_name='ASCAT-like C-band scatterometer surface degree of saturation (H SAF-like)',
        quantity='saturation',
        altitude_km=817.0, node_time_h=9.5, node='descending', swath_km=1100.0, gap_km=670.0,
        phases_deg=(0.0, 180.0),
        sensing_depth=0.02,
        error_std_bare=0.035, error_slope_lai=0.010, repr_std=0.010,
        nominal_error=0.05, porosity_error_std=0.04, dense_lai_threshold=4.0,
        source='colmda OSSE: simulated ASCAT-like C-band retrievals (Metop-B/C)')
    X = SensorSpec(
        name='X', long_name='FY-3D MWRI-like X-band radiometer soil moisture', quantity='volumetric',
        altitude_km=836.0, node_time_h=13.0 + 40.0 / 60.0, node='ascending', swath_km=1400.0,
        sensing_depth=0.01,
        error_std_bare=0.035, error_slope_lai=0.020, repr_std=0.015,
        excursion_amplitude=0.08, excursion_tau_days=7.0, excursion_lai_threshold=3.0, excursion_lai_ramp=1.0,
        nominal_error=0.06, dense_lai_threshold=3.0,
        source='colmda OSSE: simulated FY-3D MWRI-like X-band retrievals')
    return {'L': L, 'C': C, 'X': X}


_RULES = {
    'quantity': (lambda v: v in QUANTITIES, f"one of {sorted(QUANTITIES)}"),
    'altitude_km': (lambda v: 150.0 <= v <= 5000.0, 'in [150, 5000] km'),
    'node_time_h': (lambda v: 0.0 <= v < 24.0, 'in [0, 24) h'),
    'node': (lambda v: v in ('ascending', 'descending'), "'ascending' or 'descending'"),
    'swath_km': (lambda v: 0.0 < v <= 5000.0, 'in (0, 5000] km'),
    'gap_km': (lambda v: 0.0 <= v < 5000.0, 'in [0, 5000) km'),
    'phases_deg': (lambda v: len(tuple(v)) >= 1 and all(math.isfinite(float(x)) for x in v),
                   'a non-empty list of finite phases in deg'),
    'inclination_deg': (lambda v: v is None or 0.0 < v < 180.0, 'None or in (0, 180) deg'),
    'passes': (lambda v: v in ('both', 'ascending', 'descending'), "'both', 'ascending' or 'descending'"),
    'sensing_depth': (lambda v: 0.001 <= v <= 1.0, 'in [0.001, 1] m'),
    'error_std_bare': (lambda v: 0.0 <= v <= 0.5, 'in [0, 0.5] m3 m-3'),
    'error_slope_lai': (lambda v: -0.1 <= v <= 0.2, 'in [-0.1, 0.2] m3 m-3 per m2 m-2'),
    'error_std_min': (lambda v: 0.0 <= v <= 0.5, 'in [0, 0.5] m3 m-3'),
    'error_std_max': (lambda v: 0.0 <= v <= 0.5, 'in [0, 0.5] m3 m-3'),
    'repr_std': (lambda v: 0.0 <= v <= 0.5, 'in [0, 0.5] m3 m-3'),
    'excursion_amplitude': (lambda v: 0.0 <= v <= 0.5, 'in [0, 0.5] m3 m-3'),
    'excursion_tau_days': (lambda v: 0.1 <= v <= 365.0, 'in [0.1, 365] days'),
    'excursion_lai_threshold': (lambda v: 0.0 <= v <= 20.0, 'in [0, 20] m2 m-2'),
    'excursion_lai_ramp': (lambda v: 0.0 <= v <= 20.0, 'in [0, 20] m2 m-2 (0 = step)'),
    'nominal_error': (lambda v: 0.0 < v <= 0.5, 'in (0, 0.5] m3 m-3'),
    'porosity_error_std': (lambda v: 0.0 <= v <= 0.3, 'in [0, 0.3] m3 m-3'),
    'dense_lai_threshold': (lambda v: 0.0 <= v <= 20.0, 'in [0, 20] m2 m-2'),
    'swe_threshold': (lambda v: 0.0 <= v <= 1000.0, 'in [0, 1000] kg m-2'),
    'ice_threshold': (lambda v: 0.0 <= v <= 1.0, 'in [0, 1] m3 m-3'),
}


def validate_spec(spec: SensorSpec) -> SensorSpec:
    """Raise :class:`UserError` naming the field if a value is out of its documented range."""
    for name, (ok, what) in _RULES.items():
        v = getattr(spec, name)
        try:
            good = bool(ok(v))
        except (TypeError, ValueError):
            good = False
        if not good:
            raise UserError(f"sensor {spec.name}: {name} = {v!r}, expected {what}")
    if spec.error_std_min > spec.error_std_max:
        raise UserError(f"sensor {spec.name}: error_std_min = {spec.error_std_min} exceeds "
                        f"error_std_max = {spec.error_std_max}")
    spec.orbit  # noqa: B018  (the orbit validates its own fields)
    return spec


def spec_with(name: str, **overrides) -> SensorSpec:
    """The default spec of sensor ``name`` ('L', 'C', 'X') with fields replaced, validated."""
    specs = default_specs()
    if name not in specs:
        raise UserError(f"unknown sensor '{name}'{suggestion(name, specs)}")
    fields = {f.name for f in dataclasses.fields(SensorSpec)}
    for k in overrides:
        if k not in fields:
            raise UserError(f"sensor {name}: unknown field '{k}'{suggestion(k, fields)}")
    if 'phases_deg' in overrides:
        overrides['phases_deg'] = tuple(float(x) for x in overrides['phases_deg'])
    return validate_spec(dataclasses.replace(specs[name], **overrides))
