"""colmda.constants mirrors the physical constants of the core (fortran/colm_const.f90)."""

import re

import pytest

from colmda import constants as C


def _fortran_real_parameters(repo_root):
    """name -> value of every ``real(r8), parameter`` of colm_const.f90 (expressions of earlier names evaluated)."""
    src = (repo_root / "fortran" / "colm_const.f90").read_text()
    values = {}
    for m in re.finditer(r"real\(r8\), parameter :: (\w+)\s*=\s*([^!\n]+)", src):
        expr = re.sub(r"_r8\b", "", m.group(2)).strip()
        values[m.group(1)] = float(eval(expr, {"__builtins__": {}}, dict(values)))  # noqa: S307 (trusted source)
    return values


def test_python_constants_match_fortran_module(repo_root):
    """Every constant of colmda.constants has the value of its namesake in colm_const.f90 (parsed from the
    source), so Python's freezing tests and unit conversions cannot drift from the core's; in particular the
    freezing point is the core's 273.16 K, not the Celsius offset."""
    f = _fortran_real_parameters(repo_root)
    assert len(f) > 20, "colm_const.f90 not parsed"
    for py, fo in C.FORTRAN_NAMES.items():
        assert getattr(C, py) == pytest.approx(f[fo], rel=1e-15), py
    assert C.TFRZ == 273.16 and C.CELSIUS_OFFSET == 273.15


def test_python_freezing_decisions_use_the_core_freezing_point():
    """The analyses' QC (SEKF) and the frozen-layer rule of every method (the consistency layer the increments of
    the SEKF, the image analysis and any other method go through: frozen layers are not updated) and the retrieval
    simulator's frozen flag use the core's freezing point."""
    import inspect

    from colmda.assim import consistency, equivalents
    from colmda.obs import simulate

    assert equivalents.TFRZ == C.TFRZ
    assert inspect.signature(consistency.apply_increment).parameters["freezing_point"].default == C.TFRZ
    assert inspect.signature(consistency.violations).parameters["freezing_point"].default == C.TFRZ
    assert simulate.T_FREEZE == C.TFRZ
