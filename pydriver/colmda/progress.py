"""Logging set-up and the rank-0 progress bar.

Log records go to stderr as ``colmda[rank] LEVEL message`` (the rank only in MPI runs); ranks other than 0 log
warnings and errors only, so that an N-rank run prints like a 1-rank run. The progress bar (tqdm) is shown on
rank 0 only, and only when stderr is a terminal, so logs and CI output stay clean.
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


class Progress:
    """A tqdm bar over ``total`` units on rank 0 when ``enabled`` and stderr is a terminal; else silent."""

    def __init__(self, total: int, desc: str, *, rank: int = 0, enabled: bool = True, unit: str = "window"):
        self.bar = None
        if enabled and rank == 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=sys.stderr)

    def update(self, n: int = 1, **postfix) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
