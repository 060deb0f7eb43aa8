"""The Python API of colmda: run experiments, evaluate them and load their output from Python (docs/api.md).

Everything the command line does is available here, with the same settings (namelists, ``--set``-style
overrides) and the same files; the functions are re-exported by the package (``colmda.run_experiment`` ...)::

    import colmda

    result = colmda.run_experiment("namelists/test_small.nml", overrides=["output.directory=runs/demo"])
    ds = colmda.open_history(result.rundir)                # interval means (xarray.Dataset, CF-decoded)
    states = colmda.open_history(result.rundir, states=True)  # ALMA states at the end of each interval
    theta = colmda.load_soil_moisture(result.rundir)       # daily volumetric soil moisture per layer

Errors in user input raise :class:`colmda.UserError` (a one-line message naming the file, key or value), as on the
command line. Heavy modules (the core, MPI) are imported only when a function needs them.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import xarray

    from .config import Settings
    from .evaluation.history import LayerSeries
    from .evaluation.skill import Evaluation
    from .run import RunResult

__all__ = ["load_settings", "run_experiment", "run_twin", "evaluate", "open_history", "load_soil_moisture",
           "read_summary", "history_files"]

NamelistLike = Union[str, PathLike, "Settings"]


def load_settings(namelist: NamelistLike | None = None, overrides: Sequence[str] = ()) -> "Settings":
    """Settings from a namelist file (path), from :class:`~colmda.config.Settings` (copied, then ``overrides``
    applied) or the defaults (``None``). ``overrides`` are ``group.key=value`` strings as for ``--set``."""
    from . import config

    overrides = list(overrides)
    if namelist is None:
        return config.loads("", source="<defaults>", overrides=overrides)
    if isinstance(namelist, config.Settings):
        if not overrides:
            return namelist
        return config.loads(namelist.to_namelist(), source=namelist.source, overrides=overrides)
    if isinstance(namelist, (str, PathLike)):
        return config.load(namelist, overrides=overrides)
    raise TypeError(f"namelist must be a path, a colmda Settings or None, not {type(namelist).__name__}")


def _with_directory(overrides: Sequence[str], directory) -> list[str]:
    out = list(overrides)
    if directory is not None:
        out.append(f"output.directory={Path(directory)}")
    return out


def run_experiment(namelist: NamelistLike, *, overrides: Sequence[str] = (), directory=None, resume: bool = False,
                   progress: bool = False, comm=None) -> "RunResult":
    """Run one experiment (what ``colmda run NAMELIST`` does) and return its :class:`~colmda.run.RunResult`
    (``rundir``, ``status``, ``history_files``, ``summary``).

    ``directory`` overrides ``&output directory``; ``resume`` continues from the newest restart; ``progress``
    shows the progress bar / log lines; ``comm`` is an MPI communicator wrapper (default: MPI when the process was
    started by mpiexec, else serial). Under ``mpiexec -n N python script.py`` every rank must call this."""
    from .run import run

    settings = load_settings(namelist, _with_directory(overrides, directory))
    path = namelist if isinstance(namelist, (str, PathLike)) else None
    return run(settings, resume=resume, comm=comm, progress=progress, namelist_path=path)


def run_twin(namelist: NamelistLike, *, overrides: Sequence[str] = (), directory=None, figures: bool = False,
             progress: bool = False, comm=None) -> dict:
    """Run the twin-experiment matrix (truth, observations, control and the DA experiments; ``colmda twin``) and
    return its description (the content of ``matrix.json``). :func:`evaluate` scores it."""
    from .matrix import run_twin as _run_twin

    settings = load_settings(namelist, _with_directory(overrides, directory))
    path = namelist if isinstance(namelist, (str, PathLike)) else None
    return _run_twin(settings, comm=comm, progress=progress, namelist_path=path, figures=figures)


def evaluate(rundir, *, insitu=None, openloop=None, write: bool = True, figures: bool = False, **options):
    """Scores of finished runs.

    Without ``insitu``: the skill of a twin matrix (``colmda skill RUNDIR``): every experiment against the truth,
    the reference field and the stations; returns the :class:`~colmda.evaluation.skill.Evaluation` (``rows`` = the
    table of ``summary/skill.csv``); with ``write`` also writes ``RUNDIR/summary/`` (CSV, Markdown, and PNG
    figures if ``figures``); ``options``: ``min_days``, ``min_columns``, ``min_spatial`` (docs/evaluation.md).

    With ``insitu`` (an ISMN archive folder or ``.stm`` file): the run (and its ``openloop``) against the ISMN
    stations (``colmda evaluate RUNDIR --insitu ...``); returns the result dict also written to
    ``RUNDIR/evaluation/insitu.json``; ``options``: ``flags``, ``depth``, ``match``, ``min_days``, ``start``,
    ``end`` of :func:`colmda.evaluation.ismn.evaluate`."""
    if insitu is not None:
        from .evaluation.ismn import evaluate as _ismn

        return _ismn(rundir, insitu, openloop, figure=figures, **options)
    if openloop is not None:
        raise UserError("evaluate: 'openloop' goes with 'insitu' (the ISMN evaluation); a twin matrix holds its own "
                        "control run")
    from .evaluation import skill, summary

    if write:
        ev, _ = summary.write_summary(rundir, figures=figures, **options)
        return ev
    return skill.evaluate(rundir, **options)


def history_files(rundir, experiment: str | None = None, *, states: bool = False) -> list[Path]:
    """History files of a run directory in time order: interval means (``<name>_<period>.nc``) or, with
    ``states``, the instantaneous ALMA states (``<name>_<period>_inst.nc``)."""
    from .evaluation.history import history_files as _files

    name, files = _files(rundir, experiment)
    if not states:
        return files
    inst = [p.with_name(p.stem + "_inst.nc") for p in files]
    return [p for p in inst if p.is_file()]


def open_history(rundir, experiment: str | None = None, *, states: bool = False, variables=None,
                 decode_times: bool = True) -> "xarray.Dataset":
    """All history files of a run as one :class:`xarray.Dataset` along ``time`` (loaded into memory; CF times
    decoded by xarray/cftime). ``states``: the instantaneous end-of-interval ALMA states instead of the interval
    means (files written with ``&output averaging = 'instant'`` hold everything in the main files).
    ``variables``: names to keep (coordinates are always kept)."""
    import xarray as xr

    files = history_files(rundir, experiment, states=states)
    if not files:
        what = "instantaneous state (*_inst.nc)" if states else "history"
        raise UserError(f"{Path(rundir) / 'history'}: no {what} files")
    parts = []
    for p in files:
        with xr.open_dataset(p, decode_times=decode_times) as ds:
            if variables is not None:
                missing = [v for v in variables if v not in ds.variables]
                if missing:
                    raise UserError(f"{p}: variable(s) {', '.join(missing)} not in the file (see &output variables)")
                ds = ds[list(variables)]
            parts.append(ds.load())
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, "time", data_vars="minimal", coords="minimal", compat="override",
                     combine_attrs="override")


def load_soil_moisture(rundir, experiment: str | None = None) -> "LayerSeries":
    """Daily volumetric soil moisture per model layer of a run (what the evaluation reads), see
    :func:`colmda.evaluation.history.load_soil_moisture`."""
    from .evaluation.history import load_soil_moisture as _load

    return _load(rundir, experiment)


def read_summary(rundir) -> dict:
    """The run summary (``summary.json``: global means, balance checks, files) of a finished run."""
    p = Path(rundir) / "summary.json"
    if not p.is_file():
        raise UserError(f"{p}: not found (is {rundir} the directory of a finished run?)")
    return json.loads(p.read_text())
