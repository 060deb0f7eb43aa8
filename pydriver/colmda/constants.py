"""Physical constants of the column core (``fortran/colm_const.f90``) for the Python side.

Python code that interprets the core's state (freezing tests, kg m-2 <-> m3 m-3 conversions, latent heats) uses
these names instead of literals, so that the driver, the observation simulator and the analyses freeze, melt and
convert water exactly as the core does. ``tests/test_core_api.py`` parses colm_const.f90 and checks every value
here against it.

Note the difference between the core's freezing point of water, :data:`TFRZ` = 273.16 K (CoLM's value, used for
every freezing decision), and the Celsius offset 273.15 K (the definition of degC, used only to convert
temperatures between units, e.g. in the forcing readers).
"""

from __future__ import annotations

TFRZ = 273.16  # K, freezing temperature of water in the core (tfrz)
HFUS = 3.3360e5  # J kg-1, latent heat of fusion (hfus)
HVAP = 2.5104e6  # J kg-1, latent heat of evaporation (hvap)
HSUB = HVAP + HFUS  # J kg-1, latent heat of sublimation (hsub)
DENH2O = 1000.0  # kg m-3, density of liquid water (denh2o)
DENICE = 917.0  # kg m-3, density of ice (denice)
CPLIQ = 4188.0  # J kg-1 K-1, specific heat of liquid water (cpliq)
CPICE = 2117.27  # J kg-1 K-1, specific heat of ice (cpice)
CPAIR = 1004.64  # J kg-1 K-1, specific heat of dry air (cpair)
RGAS = 287.04  # J kg-1 K-1, gas constant of dry air (rgas)
RWAT = 461.296  # J kg-1 K-1, gas constant of water vapour (rwat)
GRAV = 9.80616  # m s-2, gravitational acceleration (grav)
STEFNC = 5.67e-8  # W m-2 K-4, Stefan-Boltzmann constant (stefnc)
VONKAR = 0.4  # -, von Karman constant (vonkar)

#: Python name -> name in colm_const.f90 (the test checks each pair)
FORTRAN_NAMES = {"TFRZ": "tfrz", "HFUS": "hfus", "HVAP": "hvap", "HSUB": "hsub", "DENH2O": "denh2o",
                 "DENICE": "denice", "CPLIQ": "cpliq", "CPICE": "cpice", "CPAIR": "cpair", "RGAS": "rgas",
                 "RWAT": "rwat", "GRAV": "grav", "STEFNC": "stefnc", "VONKAR": "vonkar"}

#: offset between kelvin and degrees Celsius (a unit definition, not a property of water)
CELSIUS_OFFSET = 273.15  # K
