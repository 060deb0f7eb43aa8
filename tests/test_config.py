"""Namelist settings: parsing, validation messages, the reference listing and docs/namelist.md."""

from pathlib import Path

import pytest

from colmda import config
from colmda.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def load_text(text, **kw):
    return config.loads(text, source="test.nml", **kw)


def test_defaults_are_valid_and_typed():
    """Every key's default passes its own validation, and values come out with the declared Python types."""
    s = config.defaults()
    assert s.experiment.dt == 1800.0 and isinstance(s.experiment.spinup_max_cycles, int)
    assert s.start.year == 2005 and s.end > s.start
    explicit = {g: {k.name: k.default for k in config.KEYS_BY_GROUP[g].values()} for g in config.GROUPS}
    assert config.from_dict(explicit).to_dict() == s.to_dict()


def test_unknown_key_names_group_key_and_suggestion():
    """A misspelled key stops with a message naming the file, group, key and the closest valid key."""
    with pytest.raises(UserError) as e:
        load_text("&output\n frequncy = '3h'\n/\n")
    msg = str(e.value)
    assert "test.nml" in msg and "&output" in msg and "'frequncy'" in msg and "did you mean 'frequency'" in msg


def test_unknown_group_suggests_closest_group():
    """A misspelled group name is reported with the closest group."""
    with pytest.raises(UserError, match=r"unknown namelist group '&experiement'; did you mean 'experiment'"):
        load_text("&experiement\n dt = 900.\n/\n")


def test_wrong_type_is_reported():
    """A string where a number is expected, or a float for an integer key, names the key and the expected type."""
    with pytest.raises(UserError, match=r"&experiment dt = 'fast': expected a number"):
        load_text("&experiment\n dt = 'fast'\n/\n")
    with pytest.raises(UserError, match=r"&output complevel = 4.0: expected an integer \(write 4"):
        load_text("&output\n complevel = 4.0\n/\n")
    with pytest.raises(UserError, match=r"&experiment start = 20050601: expected a quoted string"):
        load_text("&experiment\n start = 20050601\n/\n")
    with pytest.raises(UserError, match=r"&forcing perturb = 1: expected .true. or .false."):
        load_text("&forcing\n perturb = 1\n/\n")


def test_out_of_range_values_are_reported():
    """Values outside the documented range name the key, the value and the allowed range."""
    with pytest.raises(UserError, match=r"&output complevel = 12: expected a value in \[0, 9\]"):
        load_text("&output\n complevel = 12\n/\n")
    with pytest.raises(UserError, match=r"&experiment init_saturation = 0.0: expected a value in \(0, 1\]"):
        load_text("&experiment\n init_saturation = 0.0\n/\n")
    with pytest.raises(UserError, match=r"&domain box .*south < north"):
        load_text("&domain\n box = 60.0, 40.0, 0.0, 10.0\n/\n")
    with pytest.raises(UserError, match=r"&domain box .*expected 0 or 4 values, got 3"):
        load_text("&domain\n box = 40.0, 60.0, 0.0\n/\n")


def test_choices_suggest_the_closest_value():
    """A misspelled option value is reported with the closest allowed one."""
    with pytest.raises(UserError, match=r"&output averaging = 'meen': expected one of 'mean', 'instant'; did you "
                                        r"mean 'mean'"):
        load_text("&output\n averaging = 'meen'\n/\n")
    with pytest.raises(UserError, match=r"unknown 'Qhh'; did you mean 'Qh'"):
        load_text("&output\n variables = 'Qle', 'Qhh'\n/\n")


def test_cross_key_checks_name_the_keys():
    """Inconsistent combinations (end before start, dt not dividing the window, incompatible output frequency,
    missing forcing file) are reported with the keys involved."""
    with pytest.raises(UserError, match=r"&experiment end = '2005-05-01T00:00:00': must be after start"):
        load_text("&experiment\n end = '2005-05-01'\n/\n")
    with pytest.raises(UserError, match=r"&experiment dt = 1000.0: must divide the forecast window"):
        load_text("&experiment\n dt = 1000.\n/\n")
    with pytest.raises(UserError, match=r"&output frequency = '7h': must divide the forecast window"):
        load_text("&output\n frequency = '7h'\n/\n")
    with pytest.raises(UserError, match=r"&forcing file: required for source = 'plumber2'"):
        load_text("&forcing\n source = 'plumber2'\n/\n&domain\n point_lat = 50.\n point_lon = 5.\n/\n")
    with pytest.raises(UserError, match=r"&forcing file = '[^']*/no/such.nc': file not found"):
        load_text("&forcing\n source = 'plumber2'\n file = 'no/such.nc'\n/\n")
    with pytest.raises(UserError, match=r"box and point_lat/point_lon are exclusive"):
        load_text("&domain\n box = 40., 50., 0., 10.\n point_lat = 45.\n point_lon = 5.\n/\n")
    with pytest.raises(UserError, match=r"not a whole number of forecast windows"):
        load_text("&experiment\n end = '2005-06-22T12:00'\n/\n")


def test_member_count_is_checked_against_the_method():
    """&assimilation n_members: a method that analyses one state per column refuses N > 1, one line naming the key;
    the control run accepts an ensemble (an ensemble open loop)."""
    s = load_text("&assimilation\n n_members = 1\n/\n")
    assert s.assimilation.n_members == 1
    assert load_text("&assimilation\n n_members = 20\n/\n").assimilation.n_members == 20
    with pytest.raises(UserError, match=r"&assimilation n_members = 20: method 'sekf' analyses one state per column"):
        load_text("&assimilation\n method = 'sekf'\n n_members = 20\n/\n&observations\n directory = '.'\n"
                  " sensors = 'L'\n/\n")
    with pytest.raises(UserError, match=r"&assimilation n_members = 0: expected a value in \[1, 1000\]"):
        load_text("&assimilation\n n_members = 0\n/\n")
    with pytest.raises(UserError, match=r"&assimilation method = 'nosuch': expected one of 'none', 'sekf'"):
        load_text("&assimilation\n method = 'nosuch'\n/\n")


def test_malformed_namelists_are_user_errors():
    """Unreadable text, a group given twice, a missing value or a missing file are UserErrors naming the file."""
    with pytest.raises(UserError, match=r"test.nml: not a readable Fortran namelist"):
        load_text("&output\n directory = 'unterminated\n/\n")
    with pytest.raises(UserError, match=r"'&output' appears 2 times"):
        load_text("&output\n complevel = 1\n/\n&output\n complevel = 2\n/\n")
    with pytest.raises(UserError, match=r"&output complevel: missing or malformed value"):
        load_text("&output\n complevel = ,\n/\n")
    with pytest.raises(UserError, match=r"no namelist group found"):
        load_text("this is not a namelist\n")
    with pytest.raises(UserError, match=r"nothere.nml: namelist file not found"):
        config.load("nothere.nml")


def test_overrides():
    """--set GROUP.KEY=VALUE overrides are validated like namelist values and name the override in errors."""
    s = load_text("", overrides=["output.directory=/tmp/x/y", "output.variables=Qle,Qh",
                                 "experiment.start=2005-06-02", "output.complevel=3"])
    assert s.output.directory == "/tmp/x/y" and s.output.variables == ("Qle", "Qh")
    assert s.output.complevel == 3 and s.start.day == 2
    with pytest.raises(UserError, match=r"--set output.frequncy=3h: &output: unknown key 'frequncy'; did you "
                                        r"mean 'frequency'"):
        load_text("", overrides=["output.frequncy=3h"])
    with pytest.raises(UserError, match=r"expected GROUP.KEY=VALUE"):
        load_text("", overrides=["complevel"])


def load_shipped(p):
    """A shipped namelist; a site forcing file that lives outside the repository (../shared/data, absent in a
    clone elsewhere) is replaced by an existing stand-in path, so that everything else is still validated."""
    try:
        return config.load(p)
    except UserError as exc:
        if "&forcing file" not in str(exc) or "file not found" not in str(exc):
            raise
        return config.load(p, overrides=[f"forcing.file={p}"])


def test_resolved_namelist_round_trip():
    """The resolved namelist written to every run directory reads back to the same settings."""
    for p in sorted((REPO / "namelists").glob("*.nml")):
        s = load_shipped(p)
        again = config.loads(s.to_namelist(), source="resolved")
        assert again.to_dict() == s.to_dict(), p.name


def test_shipped_namelists_are_valid():
    """Every namelist in namelists/ passes validation (run from the repository root, as `make run` does)."""
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        names = {p.name: load_shipped(p) for p in (REPO / "namelists").glob("*.nml")}
    finally:
        os.chdir(cwd)
    assert {"default.nml", "global_30day.nml", "global_control.nml", "site_DK-Fou.nml", "test_small.nml",
            "twin_test.nml", "twin_global.nml"} <= set(names)
    assert names["site_DK-Fou.nml"].forcing.source == "plumber2"
    assert names["site_DK-Fou.nml"].output_seconds == 1800
    assert names["default.nml"].assimilation.method == "none"


def test_reference_lists_every_key():
    """`colmda namelist` output names every group and key with its default and unit."""
    text = config.reference_text()
    for k in config.KEYS:
        assert f"    {k.name} = {k.default_text()}" in text
        assert f"&{k.group}" in text


def test_docs_namelist_agrees_with_table():
    """docs/namelist.md holds exactly the table generated from config.KEYS (regenerate with
    `colmda namelist --markdown`)."""
    doc = (REPO / "docs" / "namelist.md").read_text()
    assert config.generated_section(doc) == config.reference_markdown()
    for k in config.KEYS:
        assert f"`{k.name}`" in doc
