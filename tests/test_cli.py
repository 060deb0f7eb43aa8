"""The command line: exit statuses, user errors without tracebacks, `namelist`, `summary`, `python -m colmda`."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda import cli, config  # noqa: E402


def test_namelist_prints_every_key(capsys):
    """`colmda namelist` exits 0 and lists every key with its default."""
    assert cli.main(["namelist"]) == 0
    out = capsys.readouterr().out
    for k in config.KEYS:
        assert f"{k.name} = {k.default_text()}" in out


def test_namelist_markdown_is_the_docs_table(capsys):
    """`colmda namelist --markdown` prints the table that docs/namelist.md embeds."""
    assert cli.main(["namelist", "--markdown"]) == 0
    assert capsys.readouterr().out == config.reference_markdown()


def test_namelist_check_file(capsys, tmp_path):
    """`colmda namelist FILE` validates the file and prints resolved settings that load back identically."""
    p = tmp_path / "x.nml"
    p.write_text("&output\n frequency = '3h'\n/\n")
    assert cli.main(["namelist", str(p)]) == 0
    out = capsys.readouterr().out
    assert config.loads(out.split("\n", 1)[1]).output.frequency == "3h"


@pytest.mark.parametrize("text, expect", [
    ("&output\n frequncy = '3h'\n/\n", "did you mean 'frequency'"),
    ("&experiment\n dt = 'x'\n/\n", "&experiment dt = 'x': expected a number"),
    ("&output\n complevel = 99\n/\n", "&output complevel = 99: expected a value in [0, 9]"),
])
def test_user_errors_exit_2_without_traceback(capsys, tmp_path, text, expect):
    """Namelist mistakes: exit status 2, the message on stderr naming the file, no traceback."""
    p = tmp_path / "bad.nml"
    p.write_text(text)
    assert cli.main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert expect in err and str(p) in err and "Traceback" not in err and err.startswith("colmda: error:")


def test_missing_files_are_user_errors(capsys, tmp_path):
    """A missing namelist, a missing run directory for `summary`: exit 2 with a message."""
    assert cli.main(["run", str(tmp_path / "none.nml")]) == 2
    assert "namelist file not found" in capsys.readouterr().err
    assert cli.main(["summary", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys):
    """argparse errors (unknown subcommand or option) also exit with status 2."""
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2
    assert cli.main([]) == 2


def test_python_dash_m_run_and_summary(tmp_path):
    """`python -m colmda`-style run in a subprocess (synthetic inputs): exit 0, prints the summary, writes
    manifest.json with settings, seeds, inputs with sha256 and wall time per phase; `colmda summary RUNDIR` prints
    the same summary; a user error in a subprocess gives status 2 and no traceback."""
    d = tmp_path / "run"
    r = H.run_cli(["run", str(H.REPO / "namelists" / "test_small.nml"), "--set", f"output.directory={d}",
                   "--set", "domain.box=-40,60,-60,80"], env=H.clean_env(**{H.TOY_CORE_ENV: 1}))
    assert r.returncode == 0, r.stderr
    assert "colmda run 'small'" in r.stdout and "balance checks" in r.stdout
    m = json.loads((d / "manifest.json").read_text())
    assert m["status"] == "completed" and m["ranks"] == 1
    assert m["seeds"] == {"experiment": 1, "forcing": 3}
    assert m["settings"]["output"]["directory"] == str(d)
    assert {"setup", "core", "forcing", "output", "restart", "spinup", "total"} <= set(m["wall_time_s"])
    nml = [i for i in m["inputs"] if i["role"] == "namelist"][0]
    assert len(nml["sha256"]) == 64
    assert config.load(d / "namelist.nml").to_dict() == m["settings"]
    s = H.run_cli(["summary", str(d)], synthetic=False)
    assert s.returncode == 0 and s.stdout.strip() == r.stdout.strip()
    bad = H.run_cli(["run", str(tmp_path / "missing.nml")], synthetic=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "namelist file not found" in bad.stderr
    v = H.run_cli(["--version"], synthetic=False)
    assert v.returncode == 0 and "colmda" in v.stdout
