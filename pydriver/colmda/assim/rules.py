"""The sensor x vegetation table (``&assimilation vegetation_rule``): which retrievals to use where, and with
what error multiplier, so that rules like seed 000's NEW ("L+C over dense vegetation, L+C+X elsewhere") are
namelist entries, not code.

An entry is ``'SENSOR:CLASS:ACTION'``: SENSOR a sensor name or ``*``; CLASS one of :data:`VEGETATION_CLASSES`
or a PFT index (colmda.pft order); ACTION ``use`` (multiplier 1), ``exclude`` (multiplier 0) or a positive
number (the observation error standard deviation is multiplied by it). Entries apply in order, later ones
overriding earlier ones. The default everywhere is ``use``.
"""

from __future__ import annotations

import numpy as np

from ..pft import NPFT

#: vegetation classes by canopy density, as PFT index sets (colmda.pft.PFT_NAMES): 'dense' = the tree PFTs
#: (the seed's densely vegetated types, where X- and C-band retrievals degrade)
VEGETATION_CLASSES = {
    "all": tuple(range(NPFT)),
    "bare": (0,),
    "dense": tuple(range(1, 9)),
    "shrub": (9, 10, 11),
    "grass": (12, 13, 14),
    "crop": (15,),
}


def parse_rule(entries) -> list[tuple[str, tuple[int, ...], float]]:
    """[(sensor or '*', PFT indices, multiplier)]; raises ValueError naming the bad entry."""
    out = []
    for e in entries:
        parts = str(e).split(":")
        if len(parts) != 3:
            raise ValueError(f"entries 'SENSOR:CLASS:ACTION'; got '{e}'")
        sensor, cls, action = (p.strip() for p in parts)
        if not sensor:
            raise ValueError(f"'{e}': empty sensor name")
        if cls in VEGETATION_CLASSES:
            pfts = VEGETATION_CLASSES[cls]
        elif cls.isdigit() and int(cls) < NPFT:
            pfts = (int(cls),)
        else:
            raise ValueError(f"'{e}': vegetation class '{cls}' is not one of {', '.join(VEGETATION_CLASSES)} or a "
                             f"PFT index 0-{NPFT - 1}")
        if action == "use":
            mult = 1.0
        elif action == "exclude":
            mult = 0.0
        else:
            try:
                mult = float(action)
            except ValueError:
                mult = -1.0
            if not mult > 0:
                raise ValueError(f"'{e}': action '{action}' is not 'use', 'exclude' or a positive multiplier")
        out.append((sensor, tuple(pfts), mult))
    return out


def multiplier_table(entries, sensors) -> np.ndarray:
    """(len(sensors), NPFT) error multipliers, 0 = excluded."""
    table = np.ones((len(sensors), NPFT))
    for sensor, pfts, mult in parse_rule(entries):
        for k, name in enumerate(sensors):
            if sensor in ("*", name):
                table[k, list(pfts)] = mult
    return table


def check_rule(entries):
    """Key check of a sensor x vegetation table: None when valid, else the error (colmda.keys.Key.check)."""
    try:
        parse_rule(entries)
    except ValueError as exc:
        return str(exc)
    return None
