"""``&assimilation method = 'none'``: the control run, whose analysis is the identity."""

from __future__ import annotations

from .base import AnalysisMethod, register


@register
class NoAnalysis(AnalysisMethod):
    """No forecast extras, no increments, no diagnostics: the cycle is forecast -> output -> restart."""

    name = "none"
    summary = "control run (the analysis step is the identity)"
    changes_state = False
    members = "any"  # an ensemble open loop: every member forecast, none analysed
