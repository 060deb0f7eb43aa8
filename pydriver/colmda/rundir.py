"""Run-directory safety: what an earlier run left, the per-experiment lock, and what a fresh start may delete.

A run directory (``&output directory``) belongs to one experiment: ``manifest.json`` and ``summary.json`` are
that experiment's, history and restart files carry its name. The rules (docs/driver.md, "Run directories"):

* a fresh start into a directory that holds an earlier run of the same experiment refuses and says what is
  there (finished, or interrupted at which window) unless ``--overwrite``; ``--resume`` continues it;
* a directory whose manifest belongs to another experiment is refused (its files are never touched);
* ``--overwrite`` deletes only this experiment's history, analysis, restart, manifest and summary files, never
  a file named as ``&experiment initial_restart``;
* a lock file ``.<experiment>.lock`` (JSON: pid, host, start time) is held for the run's life; a second run of
  the experiment into the directory stops with an error naming the holder; a lock whose process is gone (same
  host, pid not alive) is stale and taken over, and the run it belonged to counts as interrupted.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import glob
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

log = logging.getLogger("colmda")

MANIFEST = "manifest.json"
SUMMARY = "summary.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------------------------
# the lock


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    return True


class RunLock:
    """The lock of one experiment in one run directory (rank 0 takes it; see the module docstring).

    Acquisition is serialised by ``flock`` on the run directory itself, so two runs starting at the same moment
    cannot both decide that the directory is free. ``stale`` holds the contents of a stale lock taken over.
    """

    def __init__(self, rundir, experiment: str):
        self.rundir = Path(rundir)
        self.experiment = experiment
        self.path = self.rundir / f".{experiment}.lock"
        self.held = False
        self.stale: dict | None = None

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "RunLock":
        import fcntl

        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "experiment": self.experiment}
        fd = os.open(self.rundir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old = self.read()
            if old is not None:
                pid, host = int(old.get("pid", -1) or -1), str(old.get("host", ""))
                if host and host != socket.gethostname():
                    raise UserError(f"{self.path}: experiment '{self.experiment}' in {self.rundir} is locked by pid "
                                    f"{pid} on host {host} (since {old.get('started', '?')}); if that run is no "
                                    f"longer running, delete {self.path}")
                if pid_alive(pid) and pid != os.getpid():
                    raise UserError(f"{self.rundir}: experiment '{self.experiment}' is already running there (pid "
                                    f"{pid} on {host or 'this host'}, since {old.get('started', '?')}; lock "
                                    f"{self.path}); wait for it to finish or stop it")
                self.stale = old
                log.warning("%s: stale lock of pid %s on %s (since %s): that run stopped without finishing; "
                            "taking the lock over", self.path, pid, host or "?", old.get("started", "?"))
            tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(me) + "\n")
            os.replace(tmp, self.path)
            self.held = True
        finally:
            os.close(fd)
        return self

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False


# ---------------------------------------------------------------------------------------------------------------
# what is in a run directory


@dataclass
class EarlierRun:
    """What an earlier run of an experiment left in a run directory."""

    rundir: Path
    experiment: str
    manifest: dict = field(default_factory=dict)
    restarts: list = field(default_factory=list)
    history: list = field(default_factory=list)
    analysis: list = field(default_factory=list)
    lock: dict | None = None

    @property
    def exists(self) -> bool:
        return bool(self.manifest or self.restarts or self.history or self.analysis)

    @property
    def status(self) -> str:
        """'completed', 'interrupted' or 'unknown' (files without a manifest)."""
        st = self.manifest.get("status")
        if st == "completed":
            return "completed"
        if st in ("running", "interrupted", "failed"):
            return "interrupted"
        return "unknown"

    def files(self) -> list[Path]:
        own = [self.rundir / n for n in (MANIFEST, SUMMARY, "namelist.nml") if (self.rundir / n).exists()]
        return own + self.history + self.analysis + self.restarts

    def describe(self) -> str:
        """One phrase: 'a finished run (...)' or 'an interrupted run (...)'."""
        n = self.manifest.get("n_windows")
        where = ""
        if self.restarts:
            from .restart import read_status

            st = read_status(self.restarts[-1])
            if st is not None:
                where = (f"spin-up cycle {st.spinup_cycles}" if st.phase == "spinup" else
                         f"window {st.window_index}" + (f" of {n}" if n else ""))
            where = f"last restart {self.restarts[-1].name}" + (f", {where}" if where else "")
        parts = [p for p in (f"{len(self.history)} history file(s)" if self.history else "",
                             f"{len(self.restarts)} restart(s)" if self.restarts else "", where) if p]
        detail = ", ".join(parts)
        if self.status == "completed":
            return f"a finished run of experiment '{self.experiment}' ({detail or 'manifest.json'})"
        why = self.manifest.get("interrupted", {}).get("reason") if isinstance(self.manifest.get("interrupted"),
                                                                                dict) else None
        if self.status == "interrupted":
            return (f"an interrupted run of experiment '{self.experiment}'" + (f" ({why})" if why else "")
                    + (f": {detail}" if detail else ""))
        return f"files of experiment '{self.experiment}' ({detail})"


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {"status": "unreadable"}


def inspect(rundir, experiment: str) -> EarlierRun:
    """What ``experiment`` left in ``rundir`` (nothing when the directory does not exist)."""
    from .restart import list_restarts

    rd = Path(rundir)
    found = EarlierRun(rd, experiment)
    if not rd.is_dir():
        return found
    m = _read_json(rd / MANIFEST)
    if m and m.get("experiment") == experiment:
        found.manifest = m
    found.restarts = list_restarts(rd / "restart", experiment)
    found.history = own_files(rd / "history", experiment)
    found.analysis = own_files(rd / "analysis", experiment)
    return found


#: history and analysis file names: '<experiment>_<YYYY[-MM[-DD[THHMM]]]>[_inst].nc' (so that experiment 'a' never
#: claims the files of experiment 'a_b'; '_inst' = the end-of-interval states of docs/output.md)
_STAMP = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{4})?)?)?(_inst)?\.nc$")


def own_files(directory: Path, experiment: str) -> list[Path]:
    prefix = experiment + "_"
    return sorted(p for p in directory.glob(f"{glob.escape(experiment)}_*.nc")
                  if p.name.startswith(prefix) and _STAMP.match(p.name[len(prefix):]))


def other_experiment(rundir) -> str | None:
    """The experiment whose manifest.json is in ``rundir``, if any."""
    m = _read_json(Path(rundir) / MANIFEST)
    return str(m["experiment"]) if m.get("experiment") else None


def prepare_directory(rundir: Path, key_text: str) -> list[Path]:
    """Create the run directory and check that it is writable; OS errors become one-line UserErrors. Returns the
    directories created (deepest last), so that a run failing in its set-up can remove them again."""
    created = []
    try:
        created = [p for p in [*reversed(rundir.absolute().parents), rundir.absolute()] if not p.exists()]
        created += [rundir.absolute() / sub for sub in ("history", "restart") if not (rundir / sub).exists()]
        rundir.mkdir(parents=True, exist_ok=True)
        for sub in ("history", "restart"):
            (rundir / sub).mkdir(exist_ok=True)
        probe = rundir / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        remove_empty(created)
        raise UserError(f"{key_text} = '{rundir}': {os_error_text(exc)}") from None
    return created


def remove_empty(directories) -> None:
    """Remove the given directories, deepest first, where they are empty."""
    for d in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


def os_error_text(exc: OSError) -> str:
    """A short text for an OS error: what went wrong and on which file."""
    what = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM:
            "permission denied", errno.ENAMETOOLONG: "file name too long", errno.ENOTDIR:
            "a path component is a file, not a directory", errno.EEXIST: "exists and is a file, not a directory",
            errno.EISDIR: "is a directory, not a file", errno.ENOENT: "no such file or directory",
            errno.EPIPE: "broken pipe"}.get(exc.errno, exc.strerror or str(exc))
    name = exc.filename
    return f"{what}" + (f" ({name})" if name else "")


def check_fresh_start(rundir: Path, experiment: str, *, overwrite: bool, keep=(), source: str = "") -> list[Path]:
    """For a fresh start: refuse over an earlier run unless ``overwrite``; return the files to delete (this
    experiment's only, none of ``keep``). Never deletes anything itself."""
    other = other_experiment(rundir)
    if other is not None and other != experiment:
        raise UserError(f"{rundir}: the run directory holds a run of experiment '{other}' ({rundir / MANIFEST}); "
                        f"experiment '{experiment}' needs its own directory (set &output directory)")
    earlier = inspect(rundir, experiment)
    if not earlier.exists:
        return []
    if not overwrite:
        if earlier.status == "completed" and earlier.restarts:
            hint = ("extend it with --resume and a later &experiment end, or start again with --overwrite (deletes "
                    "that run's files)")
        elif earlier.restarts:
            hint = "continue it with --resume, or start again with --overwrite (deletes that run's files)"
        else:
            hint = "start again with --overwrite (deletes that run's files)"
        raise UserError(f"{rundir}: holds {earlier.describe()}; {hint}")
    keep_set = {Path(k).resolve() for k in keep if k}
    return [p for p in earlier.files() if p.resolve() not in keep_set]


def delete(files) -> None:
    for p in files:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    if files:
        log.info("--overwrite: deleted %d file(s) of the earlier run", len(files))


def remove_own_temporaries(rundir: Path, experiment: str) -> None:
    """Temporaries of a killed writer of this experiment ('.<experiment>_*.tmp<pid>' and the manifest/summary's),
    leaving those of other experiments alone."""
    pats = {"history": [f".{experiment}_*.tmp*"], "restart": [f".{experiment}_*.tmp*"],
            "analysis": [f".{experiment}_*.tmp*"], ".": [f".{MANIFEST}.tmp*", f".{SUMMARY}.tmp*"]}
    for sub, globs in pats.items():
        d = rundir / sub
        if d.is_dir():
            for g in globs:
                for p in d.glob(g):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()


# ---------------------------------------------------------------------------------------------------------------
# one run's hold on its directory


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (the command line turns SIGTERM into this, so that clean-up runs)."""

    def __init__(self, signame: str = "SIGINT"):
        super().__init__(signame)
        self.signame = signame


def interrupt_reason(exc: BaseException) -> str:
    return getattr(exc, "signame", "SIGINT")


def on_root(comm, fn):
    """``fn()`` on rank 0; a UserError there is raised on every rank (same message)."""
    err, out = None, None
    if comm.is_root:
        try:
            out = fn()
        except UserError as exc:
            err = str(exc)
    err = comm.bcast(err)
    if err is not None:
        raise UserError(err)
    return out


def resume_command(namelist_path=None) -> str:
    """The command that continues this run: this process's `colmda run ...` (same --set options) with --resume."""
    import shlex
    import sys

    argv = [a for a in sys.argv[1:] if a not in ("--overwrite", "--force", "--resume")]
    if argv[:1] == ["twin"] and namelist_path and str(namelist_path) in argv:  # a matrix continues by itself
        return "colmda " + " ".join(shlex.quote(a) for a in argv)
    if argv[:1] == ["run"] and namelist_path and str(namelist_path) in argv:
        return "colmda " + " ".join(shlex.quote(a) for a in argv) + " --resume"
    return f"colmda run {namelist_path or 'NAMELIST'} --resume"


class Session:
    """Rank 0's hold on the run directory during one run (``with Session(...) as session:``).

    On entry: the directory is created and checked writable, the experiment's lock is taken, a manifest left
    'running' by a killed run (stale lock) is marked interrupted, and a fresh start is checked against an earlier
    run (refused, or with ``overwrite`` the files to delete are noted; :meth:`delete_earlier` deletes them once the
    inputs are known to be good). On exit: an exception marks the manifest 'interrupted' (SIGINT/SIGTERM, with
    how to continue) or 'failed' (with the error), and the lock is released in every case.
    """

    def __init__(self, comm, settings, *, resume: bool, overwrite: bool, namelist_path=None):
        self.comm = comm
        self.s = settings
        self.rundir = Path(settings.output_directory)
        self.resume = resume
        self.overwrite = overwrite
        self.lock = RunLock(self.rundir, settings.experiment.name)
        self.to_delete: list[Path] = []
        self.created: list[Path] = []  # directories made by this run (removed again if it fails in set-up)
        self.manifest = None  # colmda.manifest.Manifest, set by the run once written
        self.timer = None
        self.position = "set-up"  # where the run is (for the interrupted message)
        self.last_restart = None
        self.continue_command = resume_command(namelist_path)

    def __enter__(self) -> "Session":
        s = self.s

        def enter():
            self.created = prepare_directory(self.rundir, f"{s.source}: &output directory")
            self.lock.acquire()
            try:
                if self.lock.stale is not None:
                    self._mark_killed(self.lock.stale)
                if not self.resume:
                    self.to_delete = check_fresh_start(self.rundir, s.experiment.name, overwrite=self.overwrite,
                                                       keep=[s.experiment.initial_restart], source=s.source)
            except BaseException:
                self.lock.release()
                raise

        on_root(self.comm, enter)
        return self

    def _mark_killed(self, stale: dict) -> None:
        path = self.rundir / MANIFEST
        m = _read_json(path)
        if m.get("experiment") == self.s.experiment.name and m.get("status") == "running":
            m["status"] = "interrupted"
            m["interrupted"] = {"reason": f"process {stale.get('pid')} on {stale.get('host')} stopped without "
                                          f"finishing (killed or crashed; found at the next start {_now()})",
                                "continue_with": self.continue_command}
            from .manifest import write_json

            write_json(path, m)

    def delete_earlier(self) -> None:
        if self.comm.is_root:
            delete(self.to_delete)
        self.to_delete = []

    def __exit__(self, etype, exc, tb):
        if not self.comm.is_root:
            return False
        try:
            if exc is not None and self.manifest is not None:
                if isinstance(exc, KeyboardInterrupt):
                    info = {"reason": interrupt_reason(exc), "at": self.position,
                            "last_restart": str(self.last_restart) if self.last_restart else None,
                            "continue_with": self.continue_command}
                    self.manifest.extra["interrupted"] = info
                    status = "interrupted"
                else:
                    self.manifest.extra["error"] = str(exc) or type(exc).__name__
                    status = "failed"
                with contextlib.suppress(Exception):  # the disk may be full: the lock must still go
                    self.manifest.write(status, self.timer)
            if exc is not None and isinstance(exc, KeyboardInterrupt):
                exc.colmda_hint = (f"interrupted ({interrupt_reason(exc)}) during {self.position}"
                                   + (f"; continue with: {self.continue_command}" if self.last_restart
                                      or self.resume else
                                      "; no restart was written yet: run it again (with --overwrite)"))
        finally:
            self.lock.release()
            if exc is not None and self.manifest is None:  # failed in set-up: leave no empty run directory
                remove_empty(self.created)
        return False
