"""The compiled extension's interface: layout agreement, call signatures, default grid."""

import re

import numpy as np
import pytest

from colmda import _core
from colmda import layout as L
from colmda.core import default_soil_thickness, soil_interfaces


def _fortran_parameters(repo_root):
    src = (repo_root / "fortran" / "colm_layout.f90").read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"integer, parameter :: (\w+)\s*=\s*(\d+)", src)}


def test_python_layout_matches_fortran_module(repo_root):
    """Every index in fortran/colm_layout.f90 exists in colmda.layout, zero-based, and the sizes agree
    with what the compiled core reports (so Python and Fortran cannot silently disagree)."""
    params = _fortran_parameters(repo_root)
    assert params, "no parameters parsed"
    for name, value in params.items():
        expected = value if name.startswith("N") else value - 1
        assert getattr(L, name) == expected, name
    sizes = _core.layout_sizes()
    assert list(sizes) == [L.NL_SOIL, L.NSNOW_MAX, L.NLEV, L.NCS, L.NSP, L.NVP, L.NCP, L.NF, L.ND, L.NDS]


def test_advance_signature():
    """f2py keeps the arrays-first signature with ncol/nsteps as trailing optional dimensions (f2py has
    changed this between numpy releases; the Python wrapper relies on it)."""
    doc = _core.advance.__doc__
    first = doc.strip().splitlines()[0]
    assert first.startswith("diag,diag_soil,ierr = advance(nper,nout,dt,hydr_model,dz_soil,forc,soilpar,vegpar,"
                            "colpar,t_soisno,wliq_soisno,wice_soisno,dz_snow,cstate")
    assert first.endswith("[ncol,nsteps])")
    assert "forc : input rank-3 array('d') with bounds (8,nsteps,ncol)" in doc
    assert "t_soisno : in/output rank-2 array('d') with bounds (15,ncol)" in doc


def test_default_soil_grid_follows_colm_node_formula():
    """Thicknesses come from CoLM's node depths z_j = 0.025 (exp(0.5 (j - 0.5)) - 1); the bottom interface is
    at 3.433 m as in CoLM (used as the initial water-table depth)."""
    j = np.arange(1, 11)
    z = 0.025 * (np.exp(0.5 * (j - 0.5)) - 1.0)
    dz = np.empty(10)
    dz[0] = 0.5 * (z[0] + z[1])
    dz[1:-1] = 0.5 * (z[2:] - z[:-2])
    dz[-1] = z[-1] - z[-2]
    np.testing.assert_allclose(default_soil_thickness(), dz, rtol=1e-14)
    assert soil_interfaces(dz)[-1] == pytest.approx(3.433, abs=1e-3)
