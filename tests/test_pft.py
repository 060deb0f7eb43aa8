"""Checks of the PFT parameter table (colmda.pft): completeness, physical ranges, packing into vegpar and the
Zeng (2001) root fractions."""

import numpy as np
import pytest

from colmda import layout as L
from colmda import pft


def test_table_complete_and_ordered():
    """16 PFTs in the fixed order, every column of the table present for every PFT and finite, every column
    documented with a unit and a source, and vegpar fills all NVP rows."""
    assert pft.NPFT == 16 == len(pft.PFT_NAMES)
    assert pft.PFT_NAMES[0] == "bare soil"
    assert "temperate" in pft.PFT_NAMES[1] and "needleleaf evergreen" in pft.PFT_NAMES[1]
    assert pft.PFT_NAMES[13] == "C3 non-arctic grass" and pft.PFT_NAMES[14] == "C4 grass"
    assert "corn" in pft.PFT_NAMES[15]
    assert pft.TABLE.shape == (16, len(pft.COLUMNS))
    assert np.all(np.isfinite(pft.TABLE))
    for name, unit, source in pft.COLUMNS:
        assert unit and source
    vp = pft.vegpar(np.arange(16))
    assert vp.shape == (L.NVP, 16) and vp.flags.f_contiguous and vp.dtype == np.float64
    assert np.all(np.isfinite(vp))
    # every VP_* row is written by vegpar (layout names VP_0..VP_{NVP-1} all distinct)
    rows = sorted(getattr(L, n) for n in dir(L) if n.startswith("VP_") and n != "VP_FIELDS")
    assert rows == list(range(L.NVP))


def test_values_in_physical_ranges():
    """Vegetated PFTs: heights 0.1-50 m, z0m < displacement < htop, leaf optics with rho + tau < 1 and NIR
    brighter than visible, chi_L in [-0.5, 0.6], Vcmax25 10-150 umol m-2 s-1, quantum efficiency 0.04-0.1,
    Ball-Berry slopes 4 (C4) and 9 (C3), smpsc < smpso < 0, Zeng root parameters > 0; bare soil has
    isveg = 0 and the bare-soil roughness."""
    vp = pft.vegpar(np.arange(16))
    veg = vp[L.VP_ISVEG] == 1.0
    assert not veg[0] and np.all(veg[1:])
    v = vp[:, 1:]
    assert np.all((v[L.VP_HTOP] >= 0.1) & (v[L.VP_HTOP] <= 50))
    assert np.all((0 < v[L.VP_Z0M]) & (v[L.VP_Z0M] < v[L.VP_DISPLA]) & (v[L.VP_DISPLA] < v[L.VP_HTOP]))
    assert np.all((v[L.VP_DLEAF] > 0.005) & (v[L.VP_DLEAF] < 0.2))
    assert np.all((v[L.VP_CHIL] >= -0.5) & (v[L.VP_CHIL] <= 0.6))
    for b in ("VIS", "NIR"):
        rho, tau = v[getattr(L, f"VP_RHO_{b}")], v[getattr(L, f"VP_TAU_{b}")]
        assert np.all((rho > 0) & (tau > 0) & (rho + tau < 1))
    assert np.all(v[L.VP_RHO_NIR] > v[L.VP_RHO_VIS])
    assert np.all((v[L.VP_VCMAX25] >= 10e-6) & (v[L.VP_VCMAX25] <= 150e-6))
    c3 = v[L.VP_C3]
    assert set(np.unique(c3)) == {0.0, 1.0}
    assert np.all(np.where(c3 == 1, v[L.VP_G1] == 9, v[L.VP_G1] == 4))
    assert np.all(np.where(c3 == 1, v[L.VP_EFFCON] == 0.08, v[L.VP_EFFCON] == 0.05))
    assert np.all((v[L.VP_G0] > 0) & (v[L.VP_G0] <= 0.05))
    assert np.all((v[L.VP_EXTKN] > 0) & (v[L.VP_EXTKN] < 1))
    assert np.all(v[L.VP_SMPSC] < v[L.VP_SMPSO]) and np.all(v[L.VP_SMPSO] < 0)
    assert list(np.flatnonzero(c3 == 0) + 1) == [14, 15]  # C4 grass and corn
    assert vp[L.VP_Z0M, 0] == pytest.approx(0.01)
    assert np.all(pft.column("root_a")[1:] > 0) and np.all(pft.column("root_b")[1:] > 0)


def test_vegpar_indexing():
    """vegpar picks the rows of the requested PFTs in the requested order (repeats allowed) and converts Vcmax25
    from umol to mol; bad indices are rejected."""
    vp = pft.vegpar([7, 1, 7])
    assert vp.shape == (L.NVP, 3)
    np.testing.assert_array_equal(vp[:, 0], vp[:, 2])
    assert vp[L.VP_VCMAX25, 0] == pytest.approx(pft.column("vcmax25")[7] * 1e-6)
    assert vp[L.VP_HTOP, 1] == pft.column("htop")[1]
    assert vp[L.VP_Z0M, 1] == pytest.approx(pft.column("z0m_ratio")[1] * pft.column("htop")[1])
    with pytest.raises(ValueError):
        pft.vegpar([16])
    with pytest.raises(ValueError):
        pft.vegpar([1.5])


def colm_zi():
    z = 0.025 * (np.exp(0.5 * (np.arange(1, 11) - 0.5)) - 1.0)
    dz = np.empty(10)
    dz[0] = 0.5 * (z[0] + z[1])
    dz[1:-1] = 0.5 * (z[2:] - z[:-2])
    dz[-1] = z[-1] - z[-2]
    return np.concatenate([[0.0], np.cumsum(dz)])


def test_root_fractions():
    """Root fractions are non-negative and sum to 1 for every vegetated PFT on the CoLM grid and on an arbitrary
    grid, equal Zeng's (2001) cumulative profile differences normalised over the column, put more roots in the
    top 30 cm for grasses than for trees, and are zero for bare soil."""
    zi = colm_zi()
    rf = pft.root_fractions(np.arange(16), zi)
    assert rf.shape == (10, 16) and rf.flags.f_contiguous
    assert np.all(rf >= 0)
    np.testing.assert_allclose(rf[:, 1:].sum(axis=0), 1.0, rtol=1e-14)
    assert np.all(rf[:, 0] == 0)
    for k in (1, 7, 13, 15):
        a, b = pft.column("root_a")[k], pft.column("root_b")[k]
        y = lambda d: 1 - 0.5 * (np.exp(-a * d) + np.exp(-b * d))
        np.testing.assert_allclose(rf[:, k], np.diff(y(zi)) / y(zi[-1]), rtol=1e-12)
    top = zi[1:] <= 0.3
    assert rf[top, 13].sum() > rf[top, 4].sum() > 0.3
    zi2 = np.array([0.0, 0.05, 0.2, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(pft.root_fractions([2, 9], zi2).sum(axis=0), 1.0, rtol=1e-14)
    with pytest.raises(ValueError):
        pft.root_fractions([1], np.array([0.1, 0.2]))
