"""colmda: land data assimilation for soil moisture on a CoLM-style column core.

The Python API (docs/api.md)::

    import colmda
    result = colmda.run_experiment("namelists/test_small.nml", directory="runs/demo")
    means = colmda.open_history(result.rundir)
"""

__version__ = "0.1.0"

from .api import (  # noqa: E402
    evaluate,
    history_files,
    load_settings,
    load_soil_moisture,
    open_history,
    read_summary,
    run_experiment,
    run_twin,
)
from .errors import UserError  # noqa: E402

__all__ = ["__version__", "run_experiment", "run_twin", "evaluate", "open_history", "history_files",
           "load_soil_moisture", "load_settings", "read_summary", "UserError", "Settings", "RunResult"]


def __getattr__(name):  # the settings and result classes, imported on first use
    if name == "Settings":
        from .config import Settings

        return Settings
    if name == "RunResult":
        from .run import RunResult

        return RunResult
    raise AttributeError(f"module 'colmda' has no attribute {name!r}")
