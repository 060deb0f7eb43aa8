"""Run manifest (``manifest.json``) and run summary (``summary.json``, ``colmda summary RUNDIR``).

The manifest records what is needed to reproduce and audit a run: resolved settings, code version (``git
describe`` of the source tree when available, else the package version), seeds, input files with sha256, wall
time per phase, number of ranks, and -- for resumed runs -- one entry per run segment. It is written by rank 0 at
the start (status ``running``) and at the end (``completed``), atomically.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from .output import atomic_path

MANIFEST = "manifest.json"
SUMMARY = "summary.json"


def sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def code_version() -> str:
    """``git describe --always --dirty`` of the source tree holding this package, else the package version."""
    from . import __version__

    here = Path(__file__).resolve().parent
    with contextlib.suppress(Exception):
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+git.{out.stdout.strip()}"
    return __version__


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


class Timer:
    """Accumulated wall time per phase: ``with timer('forecast'): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds


class Manifest:
    """Builds and writes ``manifest.json`` (rank 0 only)."""

    def __init__(self, rundir, settings, *, ranks: int, namelist=None, resumed_from=None, argv=None):
        self.path = Path(rundir) / MANIFEST
        self.settings = settings
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.t0 = time.perf_counter()
        self.inputs: list[dict] = []
        self.extra: dict = {}
        self.segment = {
            "started": self.started.isoformat(timespec="seconds"),
            "ranks": ranks,
            "omp_threads": os.environ.get("OMP_NUM_THREADS", ""),
            "resumed_from": str(resumed_from) if resumed_from else None,
            "host": socket.gethostname(),
            "command": list(sys.argv if argv is None else argv),
        }
        self.previous_segments = []
        if resumed_from and self.path.exists():
            with contextlib.suppress(Exception):
                old = json.loads(self.path.read_text())
                self.previous_segments = old.get("segments", [])
                for seg in self.previous_segments:  # a segment left 'running' was killed or crashed
                    if seg.get("status") == "running":
                        seg["status"] = "interrupted"
                        seg["note"] = "stopped without finishing (killed or crashed); seen at the next start"
        if namelist:
            self.add_input(namelist, "namelist")

    def add_input(self, path, role: str) -> None:
        p = Path(path)
        if p.is_file():
            self.inputs.append({"role": role, "path": str(p.resolve()), "bytes": p.stat().st_size,
                                "sha256": sha256(p)})

    def document(self, status: str, timer: Timer | None = None) -> dict:
        from . import __version__

        seg = dict(self.segment)
        seg["status"] = status
        # 'setup', 'spinup', 'experiment' (and 'finish', the rest) partition the run; 'forcing', 'core',
        # 'analysis', 'output', 'restart' are parts of them
        seg["wall_time_s"] = {k: round(v, 3) for k, v in (timer.seconds if timer else {}).items()}
        seg["wall_time_s"]["total"] = round(time.perf_counter() - self.t0, 3)
        if status != "running":
            seg["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        s = self.settings
        import numpy

        return {
            "colmda_version": __version__,
            "code_version": code_version(),
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "platform": platform.platform(),
            "status": status,
            "experiment": s.experiment.name,
            "seeds": {"experiment": s.experiment.seed, "forcing": s.forcing.seed},
            "ranks": self.segment["ranks"],
            "settings": s.to_dict(),
            "fingerprint": s.fingerprint(),
            "namelist_resolved": s.to_namelist(),
            "inputs": self.inputs,
            **self.extra,
            "wall_time_s": seg["wall_time_s"],
            "segments": self.previous_segments + [seg],
        }

    def write(self, status: str, timer: Timer | None = None) -> None:
        write_json(self.path, self.document(status, timer))


# ---------------------------------------------------------------------------------------------------------------
# summary


def format_summary(rundir) -> str:
    """The short text printed at the end of a run and by ``colmda summary RUNDIR``."""
    from .errors import UserError

    rd = Path(rundir)
    sp = rd / SUMMARY
    mp = rd / MANIFEST
    if not sp.exists():
        if not rd.exists():
            raise UserError(f"{rundir}: no such run directory")
        raise UserError(f"{sp}: no run summary (the run has not finished; see {mp} for its status)")
    try:
        s = json.loads(sp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{sp}: unreadable summary ({exc})") from None
    m = {}
    with contextlib.suppress(Exception):
        m = json.loads(mp.read_text())
    lines = [f"colmda run '{s.get('experiment', '?')}' in {rd.resolve()}"]
    lines.append(f"  period      {s.get('start')} .. {s.get('end')} ({s.get('columns')} land columns, "
                 f"{m.get('ranks', '?')} rank(s), status {m.get('status', '?')})")
    sp_ = s.get("spinup") or {}
    if sp_.get("max_cycles"):
        lines.append(f"  spin-up     {sp_.get('cycles')} cycle(s) of {sp_.get('start')} .. {sp_.get('end')}, "
                     f"last change {sp_.get('last_change', float('nan')):.2e} m3 m-3 "
                     f"({'converged' if sp_.get('converged') else 'NOT converged'}, tolerance "
                     f"{sp_.get('tolerance'):.1e})")
    hist = s.get("history_files", [])
    lines.append(f"  history     {len(hist)} file(s) in {rd.resolve() / 'history'}"
                 + (f" ({Path(hist[0]).name} .. {Path(hist[-1]).name})" if hist else ""))
    lines.append(f"  restart     {s.get('last_restart', '-')}")
    lines.append(f"  manifest    {mp.resolve()}")
    for sensor, counts in (s.get("observations") or {}).items():
        rest = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "used")
        lines.append(f"  observations {sensor}: {counts.get('used', 0)} used" + (f" (rejected/unused: {rest})"
                                                                                   if rest else ""))
    for what, note in (s.get("input_checks") or {}).items():
        lines.append(f"  input check {what}: {note}")
    means = s.get("global_means", {})
    if means:
        lines.append("  land means over the experiment (area weighted):")
        for name, (val, units) in means.items():
            lines.append(f"    {name:<12s} {val:12.5g} {units}")
    bal = s.get("balance", {})
    if bal:
        lines.append("  balance checks (largest absolute value over columns and windows):")
        for name, (val, units, meaning) in bal.items():
            lines.append(f"    {name:<22s} {val:10.3e} {units:<11s} {meaning}")
    for name, o in (s.get("innovations") or {}).items():
        rej = ", ".join(f"{k} {v}" for k, v in o["rejected"].items()) or "none"
        lines.append(f"  obs {name:<8s} used {o['used']} (rejected: {rej}); O-B mean {o['omf_mean']:.4f}, std "
                     f"{o['omf_std']:.4f} {o['units']}, normalised RMS {o['omf_normalised_rms']:.2f}")
    wt = m.get("wall_time_s", {})
    if wt:
        lines.append("  wall time   " + ", ".join(f"{k} {v:.1f} s" for k, v in wt.items()))
    return "\n".join(lines)
