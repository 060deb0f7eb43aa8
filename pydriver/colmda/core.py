"""Python side of the column core: state and parameter containers and the call into Fortran.

The Fortran core (``colmda._core``) keeps no state between calls. Everything it advances lives in the
NumPy arrays of :class:`ColumnState`, Fortran-ordered float64 with the column index last, so that an
ensemble member, an SEKF perturbed run, a restart or an MPI rank's share are all just "more columns".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import layout as L
from .constants import DENH2O, DENICE

HYDRAULIC_MODELS = {"campbell": 1, "vangenuchten": 2, "vangenuchten_airentry": 2, "vangenuchten_classic": 3,
                    "gardner": 4}


def _farray(a, shape=None):
    """A Fortran-contiguous float64 copy of ``a`` (the core rejects anything else for intent(inout))."""
    out = np.asfortranarray(np.asarray(a, dtype=np.float64))
    if shape is not None and out.shape != tuple(shape):
        raise ValueError(f"expected shape {tuple(shape)}, got {out.shape}")
    return out.copy(order="F") if out is a else out


def _core():
    from . import _core  # imported lazily so that pure-Python parts work without the extension

    return _core


def default_soil_thickness() -> np.ndarray:
    """CoLM's 10 soil layer thicknesses (m) from the node-depth formula z_j = 0.025 (exp(0.5 (j - 0.5)) - 1)."""
    return np.asarray(_core().default_soil_thickness(), dtype=np.float64)


def soil_interfaces(dz_soil: np.ndarray) -> np.ndarray:
    """Interface depths (m) from the surface (0) to the bottom of the soil column, length nl + 1."""
    return np.concatenate([[0.0], np.cumsum(dz_soil)])


def soil_nodes(dz_soil: np.ndarray) -> np.ndarray:
    """Node depths (m): the core places nodes at layer centres."""
    zi = soil_interfaces(dz_soil)
    return 0.5 * (zi[:-1] + zi[1:])


@dataclass
class ColumnState:
    """Prognostic state of ``ncol`` columns (all arrays Fortran order, float64, column index last).

    Layered arrays hold 5 snow slots (rows 0-4, top to bottom; a snow layer exists where ``dz_snow > 0``,
    filling from row 4 upward) and 10 soil layers (rows 5-14).
    """

    t_soisno: np.ndarray  # (NLEV, ncol) temperature (K)
    wliq_soisno: np.ndarray  # (NLEV, ncol) liquid water (kg m-2)
    wice_soisno: np.ndarray  # (NLEV, ncol) ice (kg m-2)
    dz_snow: np.ndarray  # (NSNOW_MAX, ncol) snow layer thickness (m), 0 where no layer
    cstate: np.ndarray  # (NCS, ncol) column scalars, rows CS_* (see layout.CS_FIELDS)

    UNITS = {"t_soisno": "K", "wliq_soisno": "kg m-2", "wice_soisno": "kg m-2", "dz_snow": "m", "cstate": "mixed"}

    @property
    def ncol(self) -> int:
        return self.cstate.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def copy(self) -> "ColumnState":
        return ColumnState(**{k: v.copy(order="F") for k, v in self.arrays().items()})

    def take(self, idx) -> "ColumnState":
        """The columns ``idx`` (any integer index array) as a new state."""
        return ColumnState(**{k: np.asfortranarray(v[:, idx]) for k, v in self.arrays().items()})

    def put(self, idx, other: "ColumnState") -> None:
        """Write ``other``'s columns into columns ``idx`` of this state."""
        for k, v in self.arrays().items():
            v[:, idx] = getattr(other, k)

    def repeat(self, n: int) -> "ColumnState":
        """Each column repeated ``n`` times, column-major: [c0 m0, c0 m1, ..., c1 m0, ...]."""
        return ColumnState(**{k: np.asfortranarray(np.repeat(v, n, axis=1)) for k, v in self.arrays().items()})

    @staticmethod
    def concatenate(states: list["ColumnState"]) -> "ColumnState":
        names = [f.name for f in dataclasses.fields(ColumnState)]
        return ColumnState(**{k: np.asfortranarray(np.concatenate([getattr(s, k) for s in states], axis=1)) for k in names})

    # ---- convenient views ----
    def soil_liquid(self) -> np.ndarray:
        """Soil liquid water (kg m-2), shape (NL_SOIL, ncol)."""
        return self.wliq_soisno[L.NSNOW_MAX:]

    def soil_ice(self) -> np.ndarray:
        return self.wice_soisno[L.NSNOW_MAX:]

    def soil_temperature(self) -> np.ndarray:
        return self.t_soisno[L.NSNOW_MAX:]

    def volumetric_soil_moisture(self, dz_soil: np.ndarray) -> np.ndarray:
        """Liquid + ice volumetric soil moisture (m3 m-3), shape (NL_SOIL, ncol)."""
        return (self.soil_liquid() / DENH2O + self.soil_ice() / DENICE) / np.asarray(dz_soil)[:, None]

    def total_water(self) -> np.ndarray:
        """Water stored in the column (kg m-2): soil, snow, canopy, ponding and aquifer."""
        c = self.cstate
        return (self.soil_liquid().sum(0) + self.soil_ice().sum(0) + c[L.CS_SCV] + c[L.CS_LDEW]
                + c[L.CS_WDSRF] + c[L.CS_WA])


@dataclass
class ColumnParameters:
    """Time-invariant (within a call) parameters of ``ncol`` columns."""

    soilpar: np.ndarray  # (NSP, NL_SOIL, ncol) soil parameters per layer, rows SP_*
    vegpar: np.ndarray  # (NVP, ncol) vegetation (PFT) parameters, rows VP_*
    colpar: np.ndarray  # (NCP, ncol) column parameters (LAI, SAI, forcing height, soil albedos), rows CP_*
    dz_soil: np.ndarray  # (NL_SOIL,) soil layer thickness (m), shared by all columns

    def __post_init__(self):
        self.soilpar = _farray(self.soilpar)
        self.vegpar = _farray(self.vegpar)
        self.colpar = _farray(self.colpar)
        self.dz_soil = np.ascontiguousarray(self.dz_soil, dtype=np.float64)
        n = self.colpar.shape[1]
        checks = {"soilpar": (self.soilpar.shape, (L.NSP, L.NL_SOIL, n)), "vegpar": (self.vegpar.shape, (L.NVP, n)),
                  "colpar": (self.colpar.shape, (L.NCP, n)), "dz_soil": (self.dz_soil.shape, (L.NL_SOIL,))}
        for name, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"ColumnParameters.{name}: expected shape {want}, got {got}")

    @property
    def ncol(self) -> int:
        return self.colpar.shape[1]

    def take(self, idx) -> "ColumnParameters":
        return ColumnParameters(self.soilpar[:, :, idx], self.vegpar[:, idx], self.colpar[:, idx], self.dz_soil)

    def repeat(self, n: int) -> "ColumnParameters":
        return ColumnParameters(np.repeat(self.soilpar, n, axis=2), np.repeat(self.vegpar, n, axis=1),
                                np.repeat(self.colpar, n, axis=1), self.dz_soil)


@dataclass
class Diagnostics:
    """Output of one :func:`advance` call: means over consecutive blocks of ``nper`` steps."""

    diag: np.ndarray  # (ND, nout, ncol), rows D_* (see layout.D_FIELDS)
    diag_soil: np.ndarray  # (NDS, NL_SOIL, nout, ncol), rows DS_*

    def __getitem__(self, name: str) -> np.ndarray:
        """A diagnostic by its layout name, e.g. ``d["D_QLE"]`` -> (nout, ncol)."""
        if name.startswith("DS_"):
            return self.diag_soil[getattr(L, name)]
        return self.diag[getattr(L, name)]


class CoreError(RuntimeError):
    """The core reported a failure for some columns (``columns``: zero-based indices, ``steps``: 1-based)."""

    def __init__(self, columns, steps):
        self.columns = np.asarray(columns)
        self.steps = np.asarray(steps)
        super().__init__(f"column core failed in {len(self.columns)} column(s); first column {self.columns[0]} "
                         f"at step {self.steps[0]}")


def initial_state(params: ColumnParameters, temperature=283.0, saturation=0.6) -> ColumnState:
    """A cold-start state: uniform soil temperature (K) and liquid water at ``saturation`` of porosity.

    The water table starts at the bottom of the soil column and the aquifer at its reference storage, the
    consistent pair for the SIMTOP groundwater scheme (see docs/physics-soilwater.md).
    """
    n = params.ncol
    temperature = np.broadcast_to(np.asarray(temperature, dtype=np.float64), (n,))
    saturation = np.broadcast_to(np.asarray(saturation, dtype=np.float64), (n,))
    t = np.zeros((L.NLEV, n), order="F")
    t[:] = temperature
    wliq = np.zeros((L.NLEV, n), order="F")
    porosity = params.soilpar[L.SP_THETA_S]
    wliq[L.NSNOW_MAX:] = saturation * porosity * params.dz_soil[:, None] * DENH2O
    cs = np.zeros((L.NCS, n), order="F")
    cs[L.CS_TGRND] = temperature
    cs[L.CS_TLEAF] = temperature
    cs[L.CS_ZWT] = params.dz_soil.sum()
    cs[L.CS_WA] = AQUIFER_REFERENCE_STORAGE
    return ColumnState(t, wliq, np.zeros((L.NLEV, n), order="F"), np.zeros((L.NSNOW_MAX, n), order="F"), cs)


# Aquifer storage (kg m-2) that corresponds to a water table at the bottom of the soil column.
AQUIFER_REFERENCE_STORAGE = 4800.0


def advance(state: ColumnState, params: ColumnParameters, forc: np.ndarray, dt: float, *,
            hydr_model: str | int = "vangenuchten", nper: int | None = None, raise_on_error=True) -> Diagnostics:
    """Advance ``state`` in place through ``forc.shape[1]`` steps of ``dt`` seconds.

    ``forc`` is (NF, nsteps, ncol) with rows F_*. Diagnostics are means over blocks of ``nper`` steps
    (default: the whole window, one block). The time loop runs inside Fortran; no state is kept there.
    """
    forc = np.asfortranarray(forc, dtype=np.float64)
    nf, nsteps, ncol = forc.shape
    if nf != L.NF or ncol != state.ncol or ncol != params.ncol:
        raise ValueError(f"forcing shape {forc.shape} does not match NF={L.NF}, ncol={state.ncol}/{params.ncol}")
    nper = nsteps if nper is None else int(nper)
    if nper < 1 or nsteps % nper:
        raise ValueError(f"nper={nper} must divide nsteps={nsteps}")
    hm = HYDRAULIC_MODELS[hydr_model] if isinstance(hydr_model, str) else int(hydr_model)
    for name, arr in state.arrays().items():
        if not (arr.flags.f_contiguous and arr.dtype == np.float64):
            raise ValueError(f"state array {name} must be Fortran-contiguous float64")
    diag, diag_soil, ierr = _core().advance(nper, nsteps // nper, float(dt), hm, params.dz_soil, forc,
                                            params.soilpar, params.vegpar, params.colpar, state.t_soisno,
                                            state.wliq_soisno, state.wice_soisno, state.dz_snow, state.cstate)
    if raise_on_error and np.any(ierr != 0):
        bad = np.flatnonzero(ierr)
        raise CoreError(bad, ierr[bad])
    return Diagnostics(diag, diag_soil)
