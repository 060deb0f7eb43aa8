"""Logging set-up and the rank-0 progress bar.

Log records go to stderr as ``colmda[rank] LEVEL message`` (the rank only in MPI runs); ranks other than 0 log
warnings and errors only, so that an N-rank run prints like a 1-rank run. Progress is shown on rank 0 only: a
tqdm bar when stderr is a terminal, periodic log lines (window, simulated date, column-steps/s, ETA) when it is
not (batch jobs), see :class:`Progress`.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")

log = logging.getLogger("colmda")


def setup_logging(level: str = "info", rank: int = 0, size: int = 1) -> None:
    """Configure the 'colmda' logger (idempotent)."""
    lvl = getattr(logging, str(level).upper(), logging.INFO)
    if rank != 0 and lvl < logging.WARNING:
        lvl = logging.WARNING
    log.setLevel(lvl)
    for h in list(log.handlers):
        if getattr(h, "_colmda", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._colmda = True
    tag = f"colmda[{rank}]" if size > 1 else "colmda"
    handler.setFormatter(logging.Formatter(f"{tag} %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False


PROGRESS_SECONDS_ENV = "COLMDA_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 60.0


def _duration(sec: float) -> str:
    sec = max(0, int(round(sec)))
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else (f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}")


class Progress:
    """Progress of ``total`` units (windows) on rank 0.

    On a terminal: a tqdm bar. Otherwise (batch jobs: stderr to a file or a pipe) an INFO log line every
    ``interval`` seconds of wall time (environment variable ``COLMDA_PROGRESS_SECONDS``, default 60; 0 = every
    unit) and one at the end, e.g.::

        colmda INFO experiment: window 12/30 (40%), simulated 2005-06-13 00:00, 95.1k column-steps/s,
        elapsed 1m02s, ETA 1m33s

    ``work_per_unit`` (column-steps per window) gives the rate; ``update(date=...)`` the simulated date.
    """

    def __init__(self, total: int, desc: str, *, rank: int = 0, enabled: bool = True, unit: str = "window",
                 work_per_unit: float = 0.0, interval: float | None = None, stream=None):
        import os
        import time

        self.bar = None
        self.lines = False
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.work = float(work_per_unit)
        self.done = 0
        self.date = None
        self._clock = time.perf_counter
        self.t0 = self._clock()
        self.last = self.t0
        if interval is None:
            try:
                interval = float(os.environ.get(PROGRESS_SECONDS_ENV, DEFAULT_PROGRESS_SECONDS))
            except ValueError:
                interval = DEFAULT_PROGRESS_SECONDS
        self.interval = max(0.0, interval)
        stream = sys.stderr if stream is None else stream
        if not (enabled and rank == 0 and self.total > 0):
            return
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=stream)
        else:
            self.lines = True

    def line(self) -> str:
        """The batch-mode progress line for the current state."""
        el = self._clock() - self.t0
        parts = [f"{self.desc}: {self.unit} {self.done}/{self.total} ({100.0 * self.done / self.total:.0f}%)"]
        if self.date is not None:
            d = self.date
            parts.append(f"simulated {d.strftime('%Y-%m-%d %H:%M') if hasattr(d, 'strftime') else d}")
        if self.work > 0 and el > 0:
            parts.append(f"{_rate(self.done * self.work / el)} column-steps/s")
        parts.append(f"elapsed {_duration(el)}")
        if 0 < self.done < self.total:
            parts.append(f"ETA {_duration(el / self.done * (self.total - self.done))}")
        return ", ".join(parts)

    def update(self, n: int = 1, date=None, **postfix) -> None:
        self.done += n
        if date is not None:
            self.date = date
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
        elif self.lines:
            now = self._clock()
            if now - self.last >= self.interval or self.done >= self.total:
                self.last = now
                log.info(self.line())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.lines = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
