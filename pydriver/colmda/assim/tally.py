"""Observations per sensor and rejection reason over a whole run, for the run summary and the zero-use warning."""

from __future__ import annotations

import logging

import numpy as np

from .observations import REASONS, USED

log = logging.getLogger("colmda")


class ObservationTally:
    """Counts (sensor, reason) of every retrieval the analyses saw on this rank; :meth:`summary` (collective)
    adds the ranks and returns {sensor: {'used': n, reason: n, ...}} on rank 0."""

    def __init__(self, sensors, obs_set=None):
        self.sensors = tuple(sensors)
        self.counts = np.zeros((len(self.sensors), max(REASONS) + 1), dtype=np.int64)
        self.obs_set = obs_set

    def add(self, diagnostics) -> None:
        rows = (diagnostics or {}).get("rows") if isinstance(diagnostics, dict) else None
        if rows is None or not len(rows.get("sensor", ())):
            return
        np.add.at(self.counts, (np.asarray(rows["sensor"], int), np.asarray(rows["reason"], int)), 1)

    def summary(self, comm) -> dict | None:
        parts = comm.gather(self.counts)
        if not comm.is_root:
            return None
        total = np.sum(parts, axis=0)
        out = {}
        for k, name in enumerate(self.sensors):
            d = {"used": int(total[k, USED])}
            d.update({REASONS[r]: int(total[k, r]) for r in sorted(REASONS) if r != USED and total[k, r]})
            if self.obs_set is not None and self.obs_set.outside_run.get(name):
                d["outside the run period (never seen)"] = self.obs_set.outside_run[name]
            out[name] = d
        return out

    def warn(self, summary: dict, source: str) -> None:
        """Rank 0: warn when the analyses used no retrieval at all, or none of a sensor."""
        if summary is None:
            return
        used = {k: v["used"] for k, v in summary.items()}
        if not any(used.values()):
            log.warning("%s: the analyses used no observation at all (%s): the run is a control run; check "
                        "&observations and the rejection counts in the summary", source,
                        ", ".join(f"{k}: {v}" for k, v in summary.items()))
        else:
            for k, n in used.items():
                if n == 0:
                    log.warning("%s: sensor '%s': no retrieval used (%s)", source, k, summary[k])
