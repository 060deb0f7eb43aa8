"""Plant functional type (PFT) parameter table of the column core.

Index order (fixed): 0 bare soil, 1 NET temperate, 2 NET boreal, 3 NDT boreal, 4 BET tropical,
5 BET temperate, 6 BDT tropical, 7 BDT temperate, 8 BDT boreal, 9 BES temperate, 10 BDS temperate,
11 BDS boreal, 12 C3 arctic grass, 13 C3 non-arctic grass, 14 C4 grass, 15 crop (corn, C4).
(NET/NDT needleleaf evergreen/deciduous tree, BET/BDT broadleaf evergreen/deciduous tree,
BES/BDS broadleaf evergreen/deciduous shrub.)

``vegpar(pft)`` returns the packed ``vegpar(NVP, ncol)`` array the Fortran core reads (rows ``VP_*`` of
``colmda.layout``); ``root_fractions(pft, zi)`` the per-layer root fractions (Zeng 2001) for ``SP_ROOTFR``.

Sources, per column of ``TABLE`` (Oleson et al. 2013 = CLM4.5 Technical Note, NCAR/TN-503+STR):

- ``htop``: canopy top height (m), CLM4.5 Table 2.2 (Bonan et al. 2002). Corn: 2.5 m, the maximum crop
  height ``ztopmx`` of corn in CLM5's crop model (Lombardozzi et al. 2020); CLM4.5 uses 0.5 m for generic crops.
- ``laimx``: crops only (corn 5 m2 m-2, CLM5 pftcon): the core takes the crop's height from its current LAI as
  CLM5's VegStructUpdate does, htop = ztopmx min(LAI / (laimx - 1), 1)^2, at least 0.05 m, with roughness and
  displacement scaled alike (without CLM5's season-maximum memory: LAI is prescribed and harvest is unknown).
  0 for all other PFTs (fixed height).
- ``z0m_ratio``, ``displa_ratio``, ``dleaf``: roughness length and displacement height as fractions of htop, and
  the characteristic leaf dimension (m); CLM4.5/CLM5 Table 5.1 (0.055 / 0.67 needleleaf and deciduous
  broadleaf trees, 0.075 / 0.67 evergreen broadleaf trees, 0.12 / 0.68 shrubs, grasses and crops; 0.04 m).
  VP_Z0M = z0m_ratio * htop, VP_DISPLA = displa_ratio * htop. Bare soil: VP_Z0M = 0.01 m (CoLM zlnd).
- ``chil``, ``rho_vis``, ``rho_nir``, ``tau_vis``, ``tau_nir``: leaf angle index and leaf optics, CLM4.5
  Table 3.1 (Dorman and Sellers 1989 for trees/shrubs, Asner et al. 1998 for grasses/crops; corn chi_L = -0.5 from
  the crop rows, the core bounds chi_L to [-0.4, 0.6] as CLM does).
- ``c3``: photosynthetic pathway (Table 8.1 of CLM4.5; C4 grass and corn are C4).
- ``vcmax25``: Vcmax at 25 C at the canopy top (umol m-2 s-1 in the table, mol m-2 s-1 in vegpar), CLM4.5
  Table 8.1 (from leaf nitrogen, Kattge et al. 2009; Bonan et al. 2011, 2012).
- ``effcon``: quantum efficiency (mol CO2 mol-1 photon), 0.08 C3 and 0.05 C4 (Collatz et al. 1991, 1992;
  Sellers et al. 1996; CoLM; CLM4.5 Table 8.1 gives 0.05 for C4).
- ``g1``, ``g0``: Ball-Berry slope (-) 9 for C3 and 4 for C4 and intercept 10000 / 40000 umol m-2 s-1
  (0.01 / 0.04 mol m-2 s-1); Collatz et al. (1991, 1992), Sellers et al. (1996), CLM4.5 section 8.1.
- ``extkn``: nitrogen (Vcmax) extinction coefficient K_n = 0.30 (CLM4.5 section 8.2, tuned to match a
  multi-layer canopy, Bonan et al. 2012; CoLM2014 and Bonan et al. 2011 use 0.11).
- ``smpso``, ``smpsc``: soil matric potential (mm) at which stomata start to close / are fully closed,
  CLM4.5 Table 8.1.
- ``root_a``, ``root_b``: Zeng (2001) root distribution parameters (m-1), CLM4.5 Table 8.3. Bare soil has no roots.

L-band microwave parameters of the tau-omega operator (:mod:`colmda.obs.tau_omega`), in ``MICROWAVE`` (not
``TABLE``: the core never reads them). ``b`` (m2 kg-1) and ``omega`` (-) are the SMAP L2_SM_P single-channel
values per IGBP class (O'Neill et al. 2021, SMAP L2/L3 Radiometer Soil Moisture ATBD, Table 3: forests b 0.10
(evergreen) / 0.12 (deciduous), omega 0.05; shrubs 0.11, 0.05; grasses 0.10, 0.05; croplands 0.11, 0.05;
barren 0, 0), mapped to our PFTs by growth form. ``vwc_stem`` (kg m-2) is the stem/trunk water the LAI does not
carry, of the order of SMAP's stem factors times a typical maximum NDVI (O'Neill et al. 2021, section on VWC:
forests 4-10, shrubs 2-3, grasses 0, crops ~1; forests thus get tau ~0.6-1.3, the range of
SMAP's forest VOD); the leaf water is ``VWC_PER_LAI`` = 0.5 kg m-2 per unit LAI
(Wigneron et al. 2007, L-MEB, herbaceous canopies). These are order-of-magnitude values for a twin, not a
calibration (SMAP L4 calibrates its own against SMOS, De Lannoy et al. 2014).
"""

from __future__ import annotations

import numpy as np

from . import layout as L

PFT_NAMES = (
    "bare soil",
    "needleleaf evergreen tree, temperate",
    "needleleaf evergreen tree, boreal",
    "needleleaf deciduous tree, boreal",
    "broadleaf evergreen tree, tropical",
    "broadleaf evergreen tree, temperate",
    "broadleaf deciduous tree, tropical",
    "broadleaf deciduous tree, temperate",
    "broadleaf deciduous tree, boreal",
    "broadleaf evergreen shrub, temperate",
    "broadleaf deciduous shrub, temperate",
    "broadleaf deciduous shrub, boreal",
    "C3 arctic grass",
    "C3 non-arctic grass",
    "C4 grass",
    "crop (corn, C4)",
)
NPFT = len(PFT_NAMES)

# (name, unit, source) of each column of TABLE
COLUMNS = (
    ("isveg", "-", "1 vegetated, 0 bare soil"),
    ("htop", "m", "CLM4.5 Table 2.2; corn: CLM5 crop ztopmx"),
    ("z0m_ratio", "-", "CLM4.5/CLM5 Table 5.1"),
    ("displa_ratio", "-", "CLM4.5/CLM5 Table 5.1"),
    ("dleaf", "m", "CLM4.5/CLM5 Table 5.1"),
    ("chil", "-", "CLM4.5 Table 3.1"),
    ("rho_vis", "-", "CLM4.5 Table 3.1"),
    ("rho_nir", "-", "CLM4.5 Table 3.1"),
    ("tau_vis", "-", "CLM4.5 Table 3.1"),
    ("tau_nir", "-", "CLM4.5 Table 3.1"),
    ("c3", "-", "CLM4.5 Table 8.1"),
    ("vcmax25", "umol m-2 s-1", "CLM4.5 Table 8.1 (Kattge et al. 2009)"),
    ("effcon", "mol mol-1", "Collatz et al. 1991/1992, Sellers et al. 1996"),
    ("g1", "-", "CLM4.5 Table 8.1 / Sellers et al. 1996"),
    ("g0", "mol m-2 s-1", "Sellers et al. 1996, CLM4.5 section 8.1"),
    ("extkn", "-", "CLM4.5 section 8.2 (Bonan et al. 2012)"),
    ("smpso", "mm", "CLM4.5 Table 8.1"),
    ("smpsc", "mm", "CLM4.5 Table 8.1"),
    ("root_a", "m-1", "Zeng 2001, CLM4.5 Table 8.3"),
    ("root_b", "m-1", "Zeng 2001, CLM4.5 Table 8.3"),
    ("laimx", "m2 m-2", "crops: CLM5 laimx (corn 5), height htop min(LAI/(laimx-1),1)^2 (CLM5 VegStructUpdate); "
     "0 = fixed height"),
)
_COL = {name: k for k, (name, _, _) in enumerate(COLUMNS)}

# Groups of shared values (see the module docstring for sources).
_NEEDLE = dict(chil=0.01, rho_vis=0.07, rho_nir=0.35, tau_vis=0.05, tau_nir=0.10)
_BROAD = dict(rho_vis=0.10, rho_nir=0.45, tau_vis=0.05, tau_nir=0.25)
_HERB = dict(chil=-0.30, rho_vis=0.11, rho_nir=0.35, tau_vis=0.05, tau_nir=0.34)
_C3 = dict(c3=1.0, effcon=0.08, g1=9.0, g0=0.01)
_C4 = dict(c3=0.0, effcon=0.05, g1=4.0, g0=0.04)
_TREE = dict(isveg=1.0, dleaf=0.04, extkn=0.30)

_ROWS = [
    # 0 bare soil: no canopy; leaf parameters are zero (never used: VP_ISVEG = 0)
    dict(isveg=0.0, htop=0.0, z0m_ratio=0.0, displa_ratio=0.0, dleaf=0.04, chil=0.0, rho_vis=0.0, rho_nir=0.0,
         tau_vis=0.0, tau_nir=0.0, c3=1.0, vcmax25=0.0, effcon=0.0, g1=0.0, g0=0.0, extkn=0.30,
         smpso=-74000.0, smpsc=-275000.0, root_a=0.0, root_b=0.0),
    # 1 NET temperate
    dict(**_TREE, **_NEEDLE, **_C3, htop=17.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=62.5,
         smpso=-66000.0, smpsc=-255000.0, root_a=7.0, root_b=2.0),
    # 2 NET boreal
    dict(**_TREE, **_NEEDLE, **_C3, htop=17.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=62.6,
         smpso=-66000.0, smpsc=-255000.0, root_a=7.0, root_b=2.0),
    # 3 NDT boreal
    dict(**_TREE, **_NEEDLE, **_C3, htop=14.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=39.1,
         smpso=-66000.0, smpsc=-255000.0, root_a=7.0, root_b=2.0),
    # 4 BET tropical
    dict(**_TREE, **_BROAD, **_C3, chil=0.10, htop=35.0, z0m_ratio=0.075, displa_ratio=0.67, vcmax25=55.0,
         smpso=-66000.0, smpsc=-255000.0, root_a=7.0, root_b=1.0),
    # 5 BET temperate
    dict(**_TREE, **_BROAD, **_C3, chil=0.10, htop=35.0, z0m_ratio=0.075, displa_ratio=0.67, vcmax25=61.5,
         smpso=-66000.0, smpsc=-255000.0, root_a=7.0, root_b=1.0),
    # 6 BDT tropical
    dict(**_TREE, **_BROAD, **_C3, chil=0.01, htop=18.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=41.0,
         smpso=-35000.0, smpsc=-224000.0, root_a=6.0, root_b=2.0),
    # 7 BDT temperate
    dict(**_TREE, **_BROAD, **_C3, chil=0.25, htop=20.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=57.7,
         smpso=-35000.0, smpsc=-224000.0, root_a=6.0, root_b=2.0),
    # 8 BDT boreal
    dict(**_TREE, **_BROAD, **_C3, chil=0.25, htop=20.0, z0m_ratio=0.055, displa_ratio=0.67, vcmax25=57.7,
         smpso=-35000.0, smpsc=-224000.0, root_a=6.0, root_b=2.0),
    # 9 BES temperate (needleleaf-like optics in CLM4.5 Table 3.1)
    dict(**_TREE, **_NEEDLE, **_C3, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=61.7,
         smpso=-83000.0, smpsc=-428000.0, root_a=7.0, root_b=1.5),
    # 10 BDS temperate
    dict(**_TREE, **_BROAD, **_C3, chil=0.25, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=54.0,
         smpso=-83000.0, smpsc=-428000.0, root_a=7.0, root_b=1.5),
    # 11 BDS boreal
    dict(**_TREE, **_BROAD, **_C3, chil=0.25, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=54.0,
         smpso=-83000.0, smpsc=-428000.0, root_a=7.0, root_b=1.5),
    # 12 C3 arctic grass
    dict(**_TREE, **_HERB, **_C3, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=78.2,
         smpso=-74000.0, smpsc=-275000.0, root_a=11.0, root_b=2.0),
    # 13 C3 non-arctic grass
    dict(**_TREE, **_HERB, **_C3, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=78.2,
         smpso=-74000.0, smpsc=-275000.0, root_a=11.0, root_b=2.0),
    # 14 C4 grass
    dict(**_TREE, **_HERB, **_C4, htop=0.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=51.6,
         smpso=-74000.0, smpsc=-275000.0, root_a=11.0, root_b=2.0),
    # 15 crop: corn (C4)
    dict(**{**_TREE, **_HERB, "chil": -0.50}, **_C4, htop=2.5, z0m_ratio=0.12, displa_ratio=0.68, vcmax25=100.7,
         smpso=-74000.0, smpsc=-275000.0, root_a=6.0, root_b=3.0, laimx=5.0),
]

TABLE = np.array([[{"laimx": 0.0, **row}[name] for name, _, _ in COLUMNS] for row in _ROWS], dtype=float)
TABLE.setflags(write=False)

#: L-band tau-omega parameters per PFT (rows as TABLE): b (m2 kg-1), omega (-), vwc_stem (kg m-2); sources above
MICROWAVE_COLUMNS = ("b", "omega", "vwc_stem")
MICROWAVE = np.array([
    (0.00, 0.00, 0.0),                                            # 0 bare soil
    (0.10, 0.05, 6.0), (0.10, 0.05, 5.0), (0.12, 0.05, 4.0),      # 1-3 needleleaf trees
    (0.10, 0.05, 10.0), (0.10, 0.05, 8.0),                        # 4-5 broadleaf evergreen trees
    (0.12, 0.05, 7.0), (0.12, 0.05, 6.0), (0.12, 0.05, 4.0),      # 6-8 broadleaf deciduous trees
    (0.11, 0.05, 3.0), (0.11, 0.05, 3.0), (0.11, 0.05, 2.0),      # 9-11 shrubs
    (0.10, 0.05, 0.0), (0.10, 0.05, 0.0), (0.10, 0.05, 0.0),      # 12-14 grasses
    (0.11, 0.05, 1.0),                                            # 15 crop (corn)
])
MICROWAVE.setflags(write=False)
VWC_PER_LAI = 0.5  # kg m-2 of leaf water per m2 m-2 of LAI (Wigneron et al. 2007)

ZLND = 0.01  # roughness length of bare soil (m), colm_const zlnd


def column(name: str) -> np.ndarray:
    """One column of TABLE (all PFTs) by name, e.g. ``column('vcmax25')``."""
    return TABLE[:, _COL[name]]


def _index(pft) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(pft))
    if not np.issubdtype(idx.dtype, np.integer):
        if not np.all(idx == np.round(idx)):
            raise ValueError("PFT indices must be integers")
        idx = idx.astype(int)
    if np.any((idx < 0) | (idx >= NPFT)):
        raise ValueError(f"PFT index out of range 0..{NPFT - 1}: {idx}")
    return idx


def vegpar(pft) -> np.ndarray:
    """Packed vegetation parameters ``(NVP, ncol)``, Fortran order, for an array of PFT indices."""
    idx = _index(pft)
    t = TABLE[idx]
    c = _COL
    out = np.zeros((L.NVP, idx.size), order="F")
    htop = t[:, c["htop"]]
    out[L.VP_ISVEG] = t[:, c["isveg"]]
    out[L.VP_HTOP] = htop
    out[L.VP_Z0M] = np.where(t[:, c["isveg"]] > 0.5, t[:, c["z0m_ratio"]] * htop, ZLND)
    out[L.VP_DISPLA] = t[:, c["displa_ratio"]] * htop
    out[L.VP_DLEAF] = t[:, c["dleaf"]]
    out[L.VP_CHIL] = t[:, c["chil"]]
    out[L.VP_RHO_VIS] = t[:, c["rho_vis"]]
    out[L.VP_RHO_NIR] = t[:, c["rho_nir"]]
    out[L.VP_TAU_VIS] = t[:, c["tau_vis"]]
    out[L.VP_TAU_NIR] = t[:, c["tau_nir"]]
    out[L.VP_C3] = t[:, c["c3"]]
    out[L.VP_VCMAX25] = t[:, c["vcmax25"]] * 1.0e-6  # umol -> mol
    out[L.VP_EFFCON] = t[:, c["effcon"]]
    out[L.VP_G1] = t[:, c["g1"]]
    out[L.VP_G0] = t[:, c["g0"]]
    out[L.VP_EXTKN] = t[:, c["extkn"]]
    out[L.VP_SMPSO] = t[:, c["smpso"]]
    out[L.VP_SMPSC] = t[:, c["smpsc"]]
    out[L.VP_LAIMX] = t[:, c["laimx"]]
    return out


def root_fractions(pft, zi) -> np.ndarray:
    """Root fraction of each soil layer ``(nl, ncol)`` (Zeng 2001).

    The cumulative root fraction above depth d is Y(d) = 1 - 0.5 (exp(-a d) + exp(-b d)); layer j gets
    Y(zi[j+1]) - Y(zi[j]), normalised by Y at the bottom of the column so that the fractions sum to 1.
    ``zi`` are the interface depths (m) from the surface (0) down, length nl + 1. Bare soil gets no roots.
    """
    idx = _index(pft)
    zi = np.asarray(zi, dtype=float)
    if zi.ndim != 1 or zi.size < 2 or zi[0] != 0.0 or np.any(np.diff(zi) <= 0):
        raise ValueError("zi must be increasing interface depths starting at 0")
    a = TABLE[idx, _COL["root_a"]]
    b = TABLE[idx, _COL["root_b"]]
    y = 1.0 - 0.5 * (np.exp(-np.outer(zi, a)) + np.exp(-np.outer(zi, b)))  # (nl + 1, ncol)
    frac = np.diff(y, axis=0)
    total = y[-1]
    out = np.zeros_like(frac)
    veg = (a > 0) & (b > 0)
    out[:, veg] = frac[:, veg] / total[veg]
    return np.asfortranarray(out)
