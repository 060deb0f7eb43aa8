"""Command line: ``colmda run | twin | skill | namelist | make-domain | summary | report`` (also ``python -m colmda``).

Exit status: 0 success, 2 user error (message on stderr, no traceback), 1 anything else (a bug: traceback).
Under MPI, a failure on one rank aborts all ranks.
"""

from __future__ import annotations

import argparse
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
    r.add_argument("--resume", action="store_true", help="continue from the newest restart in the run directory")
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

    s = sub.add_parser("summary", help="print the summary of a finished run")
    s.add_argument("rundir", help="run directory (&output directory)")
    return p


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
    result = run(settings, resume=a.resume, comm=comm, progress=not a.no_progress, namelist_path=a.namelist)
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
    run_twin(settings, comm=comm, progress=not a.no_progress, namelist_path=a.namelist, figures=not a.no_figures)
    return 0


def _cmd_skill(a) -> int:
    from .evaluation.summary import main as summary_main

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
    try:
        rc = make_domain.main(a.args)
    except ImportError as exc:
        raise UserError(f"make-domain needs the packages of the optional 'domain' extra ({exc}); install them "
                        f"with: pip install 'colmda[domain]'") from None
    return int(rc or 0)


def _cmd_summary(a) -> int:
    from .manifest import format_summary

    print(format_summary(a.rundir))
    return 0


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
           "make-domain": _cmd_make_domain, "summary": _cmd_summary, "report": _cmd_report}[a.command]
    comm = None
    if a.command in ("run", "twin"):
        from .parallel import get_comm

        comm = get_comm()
    try:
        return cmd(a)
    except UserError as exc:
        if comm is None or comm.is_root:
            print(f"colmda: error: {exc}", file=sys.stderr)
        sys.stderr.flush()
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("colmda: interrupted", file=sys.stderr)
        return 130
    except BaseException:
        if comm is not None and comm.is_mpi:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            comm.abort(1)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
