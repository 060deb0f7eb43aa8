"""Errors that are the user's to fix.

A :class:`UserError` is raised for anything a user can correct without touching the code: a misspelled namelist
key, a value out of range, a missing or unreadable input file, a restart that does not match the namelist. Its
message names the file, the key / variable / value at fault and what was expected. The command line prints the
message (no traceback) and exits with status 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib

#: exit status of the command line for user errors (argparse uses the same number for bad arguments)
USER_ERROR_EXIT = 2


class UserError(Exception):
    """A mistake in the user's input (namelist, files, command line); the message says what and where."""


def closest(word: str, candidates, n: int = 1) -> list[str]:
    """The candidates closest to ``word`` (case-insensitive difflib ratio >= 0.5), best first."""
    by_lower = {}
    for c in candidates:
        by_lower.setdefault(str(c).lower(), str(c))
    best = difflib.get_close_matches(str(word).lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[b] for b in best]


def suggestion(word: str, candidates) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, else a list of the valid ones."""
    best = closest(word, candidates)
    if best:
        return f"; did you mean '{best[0]}'?"
    names = sorted(str(c) for c in candidates)
    if len(names) <= 12:
        return "; valid: " + ", ".join(names)
    return ""
