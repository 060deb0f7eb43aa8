"""Dates, durations and periods as the namelists write them (shared by config, restart files and output).

All times are naive datetimes in UTC.
"""

from __future__ import annotations

import datetime as _dt
import re

_DURATION = re.compile(r"^\s*(\d+)\s*(s|min|h|d)\s*$")
_DURATION_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
_PERIOD = re.compile(r"^\s*(\d+)\s*(d|mo|y)\s*$")


def parse_date(text: str) -> _dt.datetime:
    """'YYYY-MM-DD', 'YYYY-MM-DDTHH:MM' or 'YYYY-MM-DD HH:MM:SS' (UTC, no zone) -> naive datetime."""
    t = str(text).strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?$", t):
        raise ValueError(t)
    return _dt.datetime.fromisoformat(t.replace(" ", "T"))


def format_date(d: _dt.datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S")


def duration_seconds(text: str) -> int:
    """'30min', '3h', '1d', '1800s' -> seconds."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) <= 0:
        raise ValueError(text)
    return int(m.group(1)) * _DURATION_SECONDS[m.group(2)]


def parse_period(text: str) -> tuple[int, str]:
    """History file period: 'Nd' (N days), '1mo' (calendar month) or '1y' (calendar year) -> (N, unit)."""
    m = _PERIOD.match(str(text))
    if not m or int(m.group(1)) <= 0 or (m.group(2) in ("mo", "y") and int(m.group(1)) != 1):
        raise ValueError(text)
    return int(m.group(1)), m.group(2)
