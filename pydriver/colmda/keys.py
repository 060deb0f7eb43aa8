"""The namelist key: one entry of the table that drives parsing, ``colmda namelist``, docs/namelist.md and
did-you-mean errors.

Subsystems declare the keys they own with :class:`Key` (e.g. an analysis method, :mod:`colmda.assim.base`);
:mod:`colmda.config` aggregates them into its table. This module imports nothing of colmda but the date format,
so any subsystem can declare keys without importing the configuration.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable

from .timeutil import format_date


@dataclass(frozen=True)
class Key:
    """One namelist key. ``kind`` is one of str, int, float, bool, date, duration, frequency, period, path,
    float_list, str_list. ``allowed`` is the human-readable range shown in the docs; ``check`` returns an
    error text ('expected ...') or None."""

    group: str
    name: str
    kind: str
    default: Any
    unit: str
    meaning: str
    allowed: str = ""
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    lengths: tuple = ()
    reserved: bool = False
    check: Callable[[Any], str | None] | None = None
    paths: bool = False  # a str_list of file paths (resolved like 'path' keys)

    @property
    def python_type(self):
        return {"str": str, "int": int, "float": float, "bool": bool, "date": object, "duration": str,
                "frequency": str, "period": str, "path": str, "float_list": list, "str_list": list}[self.kind]

    def allowed_text(self) -> str:
        if self.allowed:
            return self.allowed
        if self.choices:
            return ", ".join(repr(c) for c in self.choices)
        if self.lo is not None or self.hi is not None:
            lo = "-inf" if self.lo is None else format_number(self.lo)
            hi = "inf" if self.hi is None else format_number(self.hi)
            return f"{'(' if self.lo_open else '['}{lo}, {hi}]"
        return {"bool": ".true. / .false.", "date": "YYYY-MM-DD[THH:MM]", "path": "file path",
                "duration": "N s|min|h|d", "str": "text"}.get(self.kind, "")

    def default_text(self) -> str:
        return namelist_literal(self.default)


def format_number(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def namelist_literal(v) -> str:
    if isinstance(v, bool):
        return ".true." if v else ".false."
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(namelist_literal(x) for x in v) if v else "(empty)"
    if isinstance(v, _dt.datetime):
        return "'" + format_date(v) + "'"
    return str(v)


def where(src: str, group: str, key: str | None = None) -> str:
    """'<namelist>: &group key' for error messages."""
    return f"{src}: &{group}" + (f" {key}" if key else "")


def check_box(v: list):
    """A lat-lon box 'south, north, west, east' (degrees): None when valid, else what is expected."""
    s, n, w, e = v
    if not (-90 <= s < n <= 90):
        return "south < north, both in [-90, 90] degrees_north"
    if not (-180 <= w <= 360 and -180 <= e <= 360):
        return "west and east in [-180, 360] degrees_east"
    return None

