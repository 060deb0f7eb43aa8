"""CF time coordinates read through cftime: any ``<unit> since <date> [time] [zone]`` units and real-world calendar.

Every reader in colmda turns a file's time axis into UTC ``datetime64[s]`` (or float seconds since 1970-01-01)
with :func:`decode_seconds` / :func:`decode`, so a file whose units another tool rewrote (``cdo`` writes e.g.
``days since 2005-06-01 00:00:00``, NCO keeps the first file's units) reads the same as the original.

Calendars: ``standard``/``gregorian``, ``proleptic_gregorian``, ``julian`` (identical to the Gregorian ones for the
dates colmda works with) are accepted; model calendars without leap days (``noleap``, ``360_day``, ...) are
refused with a one-line error, because the forcing, the orbits and the observations live on the real calendar.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from .errors import UserError

EPOCH = _dt.datetime(1970, 1, 1)
REAL_CALENDARS = ("standard", "gregorian", "proleptic_gregorian", "julian")


def _calendar(calendar, where: str) -> str:
    cal = str(calendar or "standard").strip().lower()
    if cal not in REAL_CALENDARS:
        raise UserError(f"{where}: calendar '{calendar}' is not supported (expected one of "
                        f"{', '.join(REAL_CALENDARS)}: colmda works on the real calendar)")
    return cal


def decode_seconds(values, units: str, calendar: str | None = "standard", *, where: str = "time") -> np.ndarray:
    """Float seconds since 1970-01-01 UTC of CF time ``values`` with ``units`` (a time zone in the units is
    applied by cftime). ``where`` names the file and variable in errors."""
    import cftime

    cal = _calendar(calendar, where)
    try:
        n0 = float(cftime.date2num(EPOCH, units, cal))
        n1 = float(cftime.date2num(EPOCH + _dt.timedelta(days=1), units, cal))
    except Exception as exc:  # cftime: ValueError for malformed units, 'months since' ...
        raise UserError(f"{where}: time units '{units}' cannot be decoded ({exc}); expected CF units such as "
                        "'seconds since 1970-01-01 00:00:00'") from None
    v = np.asarray(values, dtype=np.float64)
    # linear in the value: units are a fixed multiple of seconds from a reference date (cftime gives both)
    return (v - n0) * (86400.0 / (n1 - n0))


def decode(values, units: str, calendar: str | None = "standard", *, where: str = "time") -> np.ndarray:
    """UTC ``datetime64[s]`` of CF time ``values`` (rounded to the nearest second)."""
    sec = decode_seconds(values, units, calendar, where=where)
    if not np.all(np.isfinite(sec)):
        raise UserError(f"{where}: time values are not all finite")
    return np.datetime64("1970-01-01T00:00:00", "s") + np.round(sec).astype(np.int64).astype("timedelta64[s]")


def units_offset_hours(units: str, *, where: str = "time") -> float | None:
    """The UTC offset written in time units (``hours since 2005-01-01 00:00:00 +01:00`` -> 1.0; ``Z`` / ``UTC``
    -> 0.0), or None when the units name no zone. The offset itself is read by cftime."""
    try:
        head, ref = str(units).split(" since ", 1)
    except ValueError:
        raise UserError(f"{where}: time units '{units}' have no 'since <date>'") from None
    tokens = ref.split()
    if not tokens:
        raise UserError(f"{where}: time units '{units}' have no reference date")
    date = tokens[0]
    rest = tokens[1:]
    if "T" in date:
        date, _, clock = date.partition("T")
        rest = [clock] + rest
    clock = rest[0] if rest and ":" in rest[0] and rest[0][0] not in "+-" else None
    zone = rest[1:] if clock is not None else rest
    if clock is not None and clock[-1:] in ("Z", "z"):
        clock, zone = clock[:-1], ["Z"] + zone
    if not zone:
        return None
    naive = f"{head} since {date}" + (f" {clock}" if clock else "")
    return float(decode_seconds(0.0, naive, where=where) - decode_seconds(0.0, units, where=where)) / 3600.0
