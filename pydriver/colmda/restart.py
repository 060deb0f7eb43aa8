"""Restart files: everything needed to continue a run exactly where it stopped.

A restart holds, for every column of the run in global column order (written by rank 0 after a gather):

- the full :class:`~colmda.core.ColumnState` (float64, exact); for an ensemble (``&assimilation n_members`` > 1)
  every state variable has the dimensions ``(..., column, member)`` (one state per member, in the flat order of
  :mod:`colmda.ensemble`), and per-member driver arrays (state perturbations) are stored the same way
  (``ens__<name>``); a file without a ``member`` dimension holds one member,
- the run status: phase (spin-up or experiment), valid time, windows done, spin-up cycles / convergence,
- the driver's accumulators (output intervals longer than a window, run summary) and the history records of the
  file period in progress (so that a resumed run writes byte-identical history files),
- the settings fingerprint, seeds and code version (a resume with different settings is refused).

Files are ``restart/<experiment>_<sequence>_<label>.nc`` where ``sequence`` counts the windows done (spin-up
included), so the newest restart is the one with the largest sequence. Writes are atomic (temporary file, then
``os.replace``): a run killed at any moment leaves only complete restart files.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import layout as L
from .config import format_date, parse_date
from .core import ColumnState
from .errors import UserError
from .output import atomic_path

FORMAT_VERSION = 1
_NAME = re.compile(r"^(?P<exp>.+)_(?P<seq>\d{7})_(?P<label>[^.]+)\.nc$")


@dataclass
class RunStatus:
    """Where a run stands. ``time`` is the valid time of the state."""

    phase: str  # 'spinup' (next: another spin-up cycle) or 'experiment'
    seq: int  # forecast windows completed so far, spin-up included
    time: _dt.datetime
    window_index: int = 0  # next experiment window (0-based)
    spinup_cycles: int = 0  # spin-up cycles completed
    spinup_converged: bool = False
    spinup_last_change: float = float("nan")  # m3 m-3

    def to_attrs(self) -> dict:
        return {"phase": self.phase, "seq": self.seq, "time": format_date(self.time),
                "window_index": self.window_index, "spinup_cycles": self.spinup_cycles,
                "spinup_converged": int(self.spinup_converged), "spinup_last_change": self.spinup_last_change}

    @staticmethod
    def from_attrs(a: dict) -> "RunStatus":
        return RunStatus(str(a["phase"]), int(a["seq"]), parse_date(str(a["time"])), int(a["window_index"]),
                         int(a["spinup_cycles"]), bool(int(a["spinup_converged"])),
                         float(a["spinup_last_change"]))


@dataclass
class RestartData:
    status: RunStatus
    column: np.ndarray  # (ncol,) global column index
    state: ColumnState  # global, column order as ``column``
    arrays: dict = field(default_factory=dict)  # driver accumulators, column axis last where there is one
    pending: dict = field(default_factory=dict)  # history records of the open file period (see output.py)
    attrs: dict = field(default_factory=dict)  # fingerprint, seeds, code version, ...
    n_members: int = 1  # state holds len(column) * n_members flat columns (colmda.ensemble order)
    members: dict = field(default_factory=dict)  # per-member driver arrays (..., len(column) * n_members)


_STATE_DIMS = {"t_soisno": ("lev",), "wliq_soisno": ("lev",), "wice_soisno": ("lev",), "dz_snow": ("snow",),
               "cstate": ("cs",)}


def restart_path(directory, experiment: str, seq: int, label: str) -> Path:
    return Path(directory) / f"{experiment}_{seq:07d}_{label}.nc"


def list_restarts(directory, experiment: str | None = None) -> list[Path]:
    """Complete restart files in ``directory``, oldest first (temporaries are ignored)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and (experiment is None or m.group("exp") == experiment):
            found.append((int(m.group("seq")), p))
    return [p for _, p in sorted(found)]


def latest_restart(directory, experiment: str | None = None) -> Path | None:
    r = list_restarts(directory, experiment)
    return r[-1] if r else None


def _put(nc, name, arr, dims_before):
    arr = np.asarray(arr)
    dims = []
    for i, n in enumerate(arr.shape[:-1] if dims_before is not None else arr.shape):
        dn = dims_before[i] if dims_before and i < len(dims_before) else f"{name}_d{i}"
        if dn not in nc.dimensions:
            nc.createDimension(dn, n)
        dims.append(dn)
    if dims_before is not None:
        dims.append("column")
    v = nc.createVariable(name, arr.dtype if arr.dtype != np.bool_ else "i1", tuple(dims))
    v[...] = arr
    return v


def write_restart(path, data: RestartData) -> Path:
    """Write ``data`` to ``path`` atomically."""
    import netCDF4

    path = Path(path)
    with atomic_path(path) as tmp:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            nc.createDimension("column", len(data.column))
            c = nc.createVariable("column", "i8", ("column",))
            c.long_name = "global column index (flat row-major (lat, lon) index of the domain grid)"
            c[:] = data.column
            nmem = int(data.n_members)
            if data.state.ncol != len(data.column) * nmem:
                raise ValueError(f"restart state has {data.state.ncol} flat columns, not {len(data.column)} "
                                 f"columns x {nmem} members")
            if nmem > 1:
                nc.createDimension("member", nmem)
            for name, dims in _STATE_DIMS.items():
                v = _put_members(nc, name, getattr(data.state, name), dims, nmem)
                v.units = ColumnState.UNITS[name]
            for name, arr in data.members.items():
                _put_members(nc, "ens__" + name, arr, tuple(f"ens__{name}_d{i}" for i in range(np.ndim(arr) - 1)),
                             nmem)
            nc["cstate"].rows = ", ".join(f[0] for f in L.CS_FIELDS)
            for name, arr in data.arrays.items():
                per_column = np.ndim(arr) >= 1 and np.shape(arr)[-1] == len(data.column) and not name.startswith("g_")
                _put(nc, "acc__" + name, arr, () if per_column else None)
            for name, arr in data.pending.items():
                per_column = name not in ("time", "begin")
                _put(nc, "hist__" + name, arr, () if per_column else None)
            attrs = {"title": "colmda restart", "format_version": FORMAT_VERSION, **data.status.to_attrs()}
            for k, v in data.attrs.items():
                v = v.item() if isinstance(v, np.generic) else v  # attributes read back are numpy scalars
                attrs["run_" + k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
            nc.setncatts(attrs)
        finally:
            nc.close()
    return path


def read_restart(path, *, validate: bool = True) -> RestartData:
    """Read a restart file; a damaged or foreign file, or (``validate``) one whose state holds NaN or impossible
    values, raises UserError naming it (and the variable)."""
    import netCDF4

    path = Path(path)
    try:
        nc = netCDF4.Dataset(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise UserError(f"{path}: cannot open restart file ({exc})") from None
    try:
        nc.set_auto_mask(False)
        a = {k: nc.getncattr(k) for k in nc.ncattrs()}
        if a.get("title") != "colmda restart":
            raise UserError(f"{path}: not a colmda restart file (title attribute {a.get('title')!r})")
        if int(a.get("format_version", -1)) != FORMAT_VERSION:
            raise UserError(f"{path}: restart format {a.get('format_version')} but this code reads "
                            f"{FORMAT_VERSION}")
        column = np.asarray(nc["column"][:], dtype=np.int64)
        nmem = len(nc.dimensions["member"]) if "member" in nc.dimensions else 1
        state = ColumnState(**{n: np.asfortranarray(_flat_members(nc[n]).astype(np.float64))
                               for n in _STATE_DIMS})
        arrays, pending, members = {}, {}, {}
        for name, var in nc.variables.items():
            if name.startswith("ens__"):
                members[name[5:]] = _flat_members(var)
            elif name.startswith("acc__"):
                arrays[name[5:]] = np.asarray(var[...])
            elif name.startswith("hist__"):
                pending[name[6:]] = np.asarray(var[...])
        attrs = {}
        for k, v in a.items():
            if k.startswith("run_"):
                if isinstance(v, str) and v[:1] in "[{":
                    try:
                        v = json.loads(v)
                    except json.JSONDecodeError:
                        pass
                attrs[k[4:]] = v
        status = RunStatus.from_attrs(a)
    except KeyError as exc:
        raise UserError(f"{path}: incomplete restart file (missing {exc})") from None
    except (RuntimeError, OSError, ValueError, IndexError) as exc:  # netCDF4 HDF errors of a truncated file
        raise UserError(f"{path}: damaged restart file ({exc})") from None
    finally:
        nc.close()
    if validate:
        check_state(path, column, state, nmem)
    return RestartData(status, column, state, arrays, pending, attrs, nmem, members)


#: physically possible ranges of restart state variables (soil layers; snow layers may be unused)
SOIL_T_RANGE = (150.0, 400.0)  # K
WATER_MIN = -1.0  # kg m-2: the core's tiny negative round-off is allowed, a real deficit is not


def _put_members(nc, name, arr, dims, nmem: int):
    """A state-like array (..., ncol * nmem) as (..., column) or, for an ensemble, (..., column, member)."""
    arr = np.asarray(arr)
    if nmem == 1:
        return _put(nc, name, arr, dims)
    out_dims = []
    for i, n in enumerate(arr.shape[:-1]):
        if dims[i] not in nc.dimensions:
            nc.createDimension(dims[i], n)
        out_dims.append(dims[i])
    v = nc.createVariable(name, arr.dtype, (*out_dims, "column", "member"))
    v[...] = arr.reshape(arr.shape[:-1] + (arr.shape[-1] // nmem, nmem))  # flat = column * nmem + member
    return v


def _flat_members(var) -> np.ndarray:
    """A netCDF variable of dimensions (..., column, member) -> array (..., column * member) in the flat order of
    :mod:`colmda.ensemble`; a variable without a member dimension as it is."""
    a = np.asarray(var[...])
    if var.dimensions and var.dimensions[-1] == "member":
        a = a.reshape(a.shape[:-2] + (a.shape[-2] * a.shape[-1],))
    return a


def check_state(path, column: np.ndarray, state: ColumnState, n_members: int = 1) -> None:
    """Reject a restart whose state holds NaN / infinity or impossible values, naming file, variable and column
    (and member, for an ensemble)."""
    if len(column) and np.any(np.diff(column) <= 0):
        raise UserError(f"{path}: variable 'column' is not strictly increasing (a damaged restart file)")
    for name, arr in state.arrays().items():
        bad = ~np.isfinite(arr)
        if bad.any():
            k = np.argwhere(bad)[0]
            raise UserError(f"{path}: variable '{name}' holds {int(bad.sum())} non-finite value(s) (first: "
                            f"{arr[tuple(k)]} at row {k[0]} of {_where_flat(column, k[-1], n_members)}); expected "
                            f"a valid model state")
    checks = (("t_soisno", state.t_soisno[L.NSNOW_MAX:], SOIL_T_RANGE, "K (soil layers)"),
              ("wliq_soisno", state.wliq_soisno[L.NSNOW_MAX:], (WATER_MIN, np.inf), "kg m-2 (soil layers)"),
              ("wice_soisno", state.wice_soisno[L.NSNOW_MAX:], (WATER_MIN, np.inf), "kg m-2 (soil layers)"))
    for name, arr, (lo, hi), unit in checks:
        bad = (arr < lo) | (arr > hi)
        if bad.any():
            k = np.argwhere(bad)[0]
            raise UserError(f"{path}: variable '{name}' = {arr[tuple(k)]:.6g} at soil layer {k[0] + 1} of "
                            f"{_where_flat(column, k[-1], n_members)}: impossible; expected [{lo:g}, {hi:g}] {unit}")


def _where_flat(column, flat: int, n_members: int) -> str:
    c, m = divmod(int(flat), n_members)
    return f"global column {column[c]}" + (f" member {m}" if n_members > 1 else "")


def read_status(path) -> RunStatus | None:
    """The run status stored in a restart file (None when it cannot be read)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path, "r") as nc:
            return RunStatus.from_attrs({k: nc.getncattr(k) for k in nc.ncattrs()})
    except Exception:  # noqa: BLE001 - any damage means "unknown"
        return None
