"""Progress in batch jobs: periodic log lines when stderr is not a terminal, a tqdm bar when it is."""

import datetime as dt
import io
import logging
import subprocess
import sys
from pathlib import Path

from colmda import progress as P

REPO = Path(__file__).resolve().parents[1]


def test_progress_lines_when_stderr_is_a_pipe(tmp_path):
    """`colmda run` with stderr to a pipe (as under a scheduler) prints progress log lines for the spin-up and the
    experiment windows, with the simulated date, the column-steps/s rate and an ETA (interval 0 s here: one line
    per window), and no tqdm bar control characters."""
    d = tmp_path / "run"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PMI_", "OMPI_", "HYDRA_"))}
    env[P.PROGRESS_SECONDS_ENV] = "0"
    r = subprocess.run([sys.executable, "-m", "colmda", "run", str(REPO / "namelists" / "test_small.nml"), "--set",
                        f"output.directory={d}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "experiment: window" in ln]
    assert [ln.split("window ")[1].split(" ")[0] for ln in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "simulated 2005-06-02 00:00" in lines[0] and "column-steps/s" in lines[0] and "ETA" in lines[0]
    assert "simulated 2005-06-05 00:00" in lines[-1] and "(100%)" in lines[-1] and "ETA" not in lines[-1]
    assert any("spin-up: window 1/2" in ln for ln in r.stderr.splitlines())
    assert "\r" not in r.stderr and "it/s" not in r.stderr


def test_progress_interval_throttles_lines():
    """With the default interval (60 s) a fast run logs only the final line; nothing at all when disabled or on
    ranks other than 0."""

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.msgs = []

        def emit(self, record):
            self.msgs.append(record.getMessage())

    P.setup_logging("info")
    keep = Keep()
    P.log.addHandler(keep)
    try:
        with P.Progress(5, "experiment", work_per_unit=100, interval=60.0, stream=io.StringIO()) as bar:
            for k in range(5):
                bar.update(1, date=dt.datetime(2005, 6, 2 + k))
        with P.Progress(5, "x", rank=1, stream=io.StringIO()) as bar:
            bar.update(5)
        with P.Progress(5, "y", enabled=False, stream=io.StringIO()) as bar:
            bar.update(5)
    finally:
        P.log.removeHandler(keep)
    assert len(keep.msgs) == 1, keep.msgs
    assert keep.msgs[0].startswith("experiment: window 5/5 (100%), simulated 2005-06-06 00:00")


def test_terminal_gets_the_tqdm_bar():
    """On a terminal the progress is the tqdm bar (drawn on the stream), not log lines."""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    with P.Progress(3, "experiment", stream=s) as bar:
        assert bar.bar is not None and not bar.lines
        bar.update(3)
        assert bar.bar.n == 3
    assert "\rexperiment:" in s.getvalue() and "/3 [" in s.getvalue()
