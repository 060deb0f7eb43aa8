"""Command line: ``colmda run | twin | skill | namelist | make-domain | summary | evaluate | report`` (also
``python -m colmda``).

Exit status: 0 success, 2 user error (message on stderr, no traceback), 1 anything else (a bug: traceback).
Under MPI, a failure on one rank aborts all ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from .errors import USER_ERROR_EXIT, UserError


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="colmda", description="Land data assimilation for soil moisture on a "
                                "CoLM-style column core.")
    p.add_argument("--version", action="version", version=f"colmda {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment (mpiexec -n N colmda run ... for N ranks)")
    r.add_argument("namelist", help="namelist file (see 'colmda namelist' and docs/namelist.md)")
    r.add_argument("--resume", action="store_true", help="continue from the newest usable restart in the run "
                   "directory")
    r.add_argument("--overwrite", "--force", dest="overwrite", action="store_true",
                   help="start from the beginning even if the run directory holds an earlier run of this experiment "
                   "(deletes that run's history, restarts, manifest and summary; never other experiments' files)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="override a namelist key, e.g. --set output.directory=/tmp/run (repeatable)")
    r.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    r.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    t = sub.add_parser("twin", help="run the twin-experiment matrix of a namelist (truth, observations, CTL, SEKF "
                       "experiments, skill summary); mpiexec -n N colmda twin ... for N ranks")
    t.add_argument("namelist", help="namelist file with a &matrix group (see docs/assimilation.md)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="override a namelist key (repeatable)")
    t.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    t.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    t.add_argument("--no-figures", action="store_true", help="skip the figures of the skill summary")
    t.add_argument("--overwrite", "--force", dest="overwrite", action="store_true",
                   help="start the whole matrix again (without it, a matrix of the same settings continues where "
                   "it stopped: finished experiments are kept, an interrupted one is resumed)")

    k = sub.add_parser("skill", help="skill tables and figures of a finished twin matrix (RUNDIR/summary/)")
    k.add_argument("rundir", help="matrix run directory (holds matrix.json)")
    k.add_argument("--no-figures", action="store_true", help="tables only")

    e = sub.add_parser("report", help="self-contained HTML evaluation report of a finished twin matrix (dR with "
                       "bootstrap significance, coupling, IVd, TC, attribution; docs/evaluation.md)")
    e.add_argument("rundir", help="matrix run directory (holds matrix.json)")
    e.add_argument("--out", help="output file (default RUNDIR/evaluation/report.html)")
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    e.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the random forest")

    n = sub.add_parser("namelist", help="list every namelist key with default, unit and meaning; with a file: "
                       "check it and print the resolved settings")
    n.add_argument("file", nargs="?", help="namelist to check")
    n.add_argument("--markdown", action="store_true", help="the reference as Markdown tables (docs/namelist.md)")
    n.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE")

    m = sub.add_parser("make-domain", help="regenerate the embedded default domain file (needs the 'domain' "
                       "extra: pip install colmda[domain])", add_help=False)
    m.add_argument("args", nargs=argparse.REMAINDER)

    q = sub.add_parser("ranks", help="print how many MPI ranks a namelist's run can use (at most --max): one per "
                       "column at most (`make run` uses it)")
    q.add_argument("namelist")
    q.add_argument("--max", type=int, default=2, help="ranks available (default 2)")
    q.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE")

    s = sub.add_parser("summary", help="print the summary of a finished run")
    s.add_argument("rundir", help="run directory (&output directory)")

    e = sub.add_parser("evaluate", help="scores of a finished run (and its open loop) against ISMN in-situ stations "
                       "(RUNDIR/evaluation/insitu.md, .json, figures; docs/evaluation.md)")
    e.add_argument("rundir", help="run directory with daily SoilMoistV history")
    e.add_argument("--insitu", required=True, help="ISMN archive folder (header_values or ceop_sep) or .stm file")
    e.add_argument("--openloop", help="open-loop run directory: DA vs open loop with dR")
    e.add_argument("--flags", default="G", help="ISMN quality flags accepted, comma separated (default G)")
    e.add_argument("--depth", nargs=2, type=float, default=(0.0, 0.2), metavar=("TOP", "BOTTOM"),
                   help="sensor depth range in m (default 0 0.2)")
    e.add_argument("--match", choices=("cell", "bilinear"), default="cell", help="model at the station")
    e.add_argument("--min-days", type=int, default=30, help="fewest common days to score a station")
    e.add_argument("--no-figures", action="store_true")
    return p


def _cmd_evaluate(a) -> int:
    from .evaluation.ismn import evaluate

    for d in [a.rundir] + ([a.openloop] if a.openloop else []):
        if not __import__("pathlib").Path(d).is_dir():
            raise UserError(f"{d}: run directory not found")
    r = evaluate(a.rundir, a.insitu, a.openloop, flags=tuple(x.strip() for x in a.flags.split(",") if x.strip()),
                 depth=tuple(a.depth), match=a.match, min_days=a.min_days, figure=not a.no_figures)
    from .evaluation.ismn import markdown

    print(markdown(r), end="")
    return 0


def _cmd_run(a) -> int:
    from . import config
    from .manifest import format_summary
    from .parallel import get_comm
    from .progress import setup_logging
    from .run import run

    comm = get_comm()
    setup_logging(a.log_level, comm.rank, comm.size)
    if getattr(comm, "duplicate", False):
        import logging

        logging.getLogger("colmda").warning("started by an MPI launcher but mpi4py is not importable: rank 0 runs "
                                            "the whole experiment on one process, this process does nothing")
        return 0
    settings = config.load(a.namelist, overrides=a.overrides)
    if a.resume and a.overwrite:
        raise UserError("--resume and --overwrite exclude each other: continue the earlier run or start again")
    result = run(settings, resume=a.resume, overwrite=a.overwrite, comm=comm, progress=not a.no_progress,
                 namelist_path=a.namelist)
    if comm.is_root:
        print(format_summary(result.rundir))
    return 0


def _cmd_twin(a) -> int:
    from . import config
    from .matrix import run_twin
    from .parallel import get_comm
    from .progress import setup_logging

    comm = get_comm()
    setup_logging(a.log_level, comm.rank, comm.size)
    settings = config.load(a.namelist, overrides=a.overrides)
    run_twin(settings, comm=comm, progress=not a.no_progress, namelist_path=a.namelist, figures=not a.no_figures,
             overwrite=a.overwrite)
    return 0


def _cmd_skill(a) -> int:
    from .evaluation.summary import main as summary_main
    from .matrix import check_partial

    check_partial(a.rundir)  # a partial matrix: says what is missing (error if the control is)
    return int(summary_main([a.rundir] + (["--no-figures"] if a.no_figures else [])) or 0)


def _cmd_report(a) -> int:
    from .evaluation.report import write_report

    if a.n_boot < 100:
        raise UserError(f"--n-boot {a.n_boot}: expected at least 100 resamples")
    print(write_report(a.rundir, a.out, n_boot=a.n_boot, seed=a.seed))
    return 0


def _cmd_namelist(a) -> int:
    from . import config

    if a.file or a.overrides:
        s = config.load(a.file, overrides=a.overrides) if a.file else config.loads("", source="<defaults>", overrides=a.overrides)
        print(f"! {a.file or '<defaults>'}: valid; resolved settings:")
        print(s.to_namelist(), end="")
    elif a.markdown:
        print(config.reference_markdown(), end="")
    else:
        print(config.reference_text(), end="")
    return 0


def _cmd_make_domain(a) -> int:
    try:
        from . import make_domain
    except ImportError as exc:
        raise UserError(f"make-domain is not available ({exc}); install the optional extra: "
                        f"pip install 'colmda[domain]'") from None
    import importlib.util

    if not {"-h", "--help"} & set(a.args):  # check the extra before any work, so nothing is half-written
        missing = [pkg for pkg, _ in (make_domain.ERA5_REL, make_domain.GLOBE_REL)
                   if importlib.util.find_spec(pkg) is None]
        if missing:
            raise UserError(f"make-domain needs the package(s) {', '.join(missing)} of the optional 'domain' extra; "
                            f"install them with: pip install 'colmda[domain]'")
    try:
        rc = make_domain.main(a.args)
    except ImportError as exc:
        raise UserError(f"make-domain needs the packages of the optional 'domain' extra ({exc}); install them "
                        f"with: pip install 'colmda[domain]'") from None
    except RuntimeError as exc:  # a source file of the extra's packages missing or unusable
        if "colmda[domain]" in str(exc) or "does not contain" in str(exc):
            raise UserError(f"make-domain: {exc}") from None
        raise
    return int(rc or 0)


def _cmd_ranks(a) -> int:
    from . import config
    from .setup import select_domain

    s = config.load(a.namelist, overrides=a.overrides)
    ncol = len(s.domain.point_lat) if s.domain.point_lat else select_domain(s).ncol
    print(max(1, min(a.max, ncol)))
    return 0


def _cmd_summary(a) -> int:
    from .manifest import format_summary

    print(format_summary(a.rundir))
    return 0


def _terminate_as_interrupt() -> None:
    """SIGTERM (batch systems, ``kill``) raises like Ctrl-C, so that the run marks its manifest 'interrupted' and
    releases its lock before it exits."""
    import signal

    from .rundir import Interrupted

    def handler(signum, frame):
        raise Interrupted("SIGTERM")

    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave the default
        signal.signal(signal.SIGTERM, handler)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if argv[:1] == ["make-domain"]:  # its arguments (options included) belong to colmda.make_domain
        a = argparse.Namespace(command="make-domain", args=argv[1:])
    else:
        a = parser.parse_args(argv)
    if a.command is None:
        parser.print_help()
        return USER_ERROR_EXIT
    cmd = {"run": _cmd_run, "twin": _cmd_twin, "skill": _cmd_skill, "namelist": _cmd_namelist,
           "make-domain": _cmd_make_domain, "summary": _cmd_summary, "evaluate": _cmd_evaluate, "report": _cmd_report,
           "ranks": _cmd_ranks}[a.command]
    comm = None
    if a.command in ("run", "twin"):
        from .parallel import get_comm

        comm = get_comm()
    _terminate_as_interrupt()
    try:
        return cmd(a)
    except UserError as exc:
        if comm is None or comm.is_root:
            print(f"colmda: error: {exc}", file=sys.stderr)
        sys.stderr.flush()
        return USER_ERROR_EXIT
    except KeyboardInterrupt as exc:
        if comm is None or comm.is_root:
            print(f"colmda: {getattr(exc, 'colmda_hint', 'interrupted')}", file=sys.stderr)
        return 143 if getattr(exc, "signame", "") == "SIGTERM" else 130
    except BrokenPipeError:  # e.g. `colmda namelist | head`: the reader went away; nothing to report to it
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("colmda: error: broken pipe (the program reading the output stopped)", file=sys.stderr)
        return USER_ERROR_EXIT
    except OSError as exc:  # the environment: disk full, read-only or unwritable output, name too long ...
        from .rundir import os_error_text

        if exc.errno is None:
            raise
        if comm is None or comm.is_root:
            print(f"colmda: error: {os_error_text(exc)}", file=sys.stderr)
        sys.stderr.flush()
        if comm is not None and comm.is_mpi:
            comm.abort(USER_ERROR_EXIT)
        return USER_ERROR_EXIT
    except BaseException:
        if comm is not None and comm.is_mpi:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            comm.abort(1)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
