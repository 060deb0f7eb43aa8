"""Helpers for the driver tests: synthetic run inputs and launching runs in subprocesses (with mpiexec).

Synthetic inputs stand in for the domain / PFT / soil / forcing modules so that the driver can be tested on its own:
a small regular grid with a land mask, plausible constant parameters and an analytic forcing that is a pure
function of (global column, absolute time), as the real weather generator's is.

As a script, ``python tests/mpi_helpers.py run NAMELIST [cli args]`` is ``colmda run`` with these synthetic inputs
(``mpiexec -n N python tests/mpi_helpers.py run ...`` for MPI runs).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()

NLAT, NLON = 16, 32  # synthetic global grid (11.25 deg)


def synthetic_grid():
    lat = 90.0 - (np.arange(NLAT) + 0.5) * 180.0 / NLAT
    lon = (np.arange(NLON) + 0.5) * 360.0 / NLON
    jy, jx = np.meshgrid(np.arange(NLAT), np.arange(NLON), indexing="ij")
    land = ((np.sin(jx * 0.7) + np.cos(jy * 1.1)) > 0.0) & (np.abs(lat[jy]) < 80)
    return lat, lon, np.flatnonzero(land.ravel())


class SyntheticForcing:
    """Analytic forcing, a pure function of (global column, absolute time): rank- and subset-independent."""

    def __init__(self, column, lat, lon, dt, seed=1):
        self.column, self.lat, self.lon, self.dt, self.seed = np.asarray(column), lat, lon, dt, seed

    def window(self, t0, nsteps, positions):
        from colmda import layout as L

        pos = np.asarray(positions)
        col = self.column[pos].astype(float)
        tsec = (t0 - _dt.datetime(2000, 1, 1)).total_seconds() + (np.arange(nsteps) + 0.5) * self.dt
        hour = (tsec / 3600.0) % 24.0
        doy = (tsec / 86400.0) % 365.0
        lat = np.deg2rad(self.lat[pos])
        decl = np.deg2rad(23.45) * np.sin(2 * np.pi * (284 + doy) / 365.0)
        ha = np.deg2rad(15.0 * (hour[:, None] + self.lon[pos][None, :] / 15.0 - 12.0))
        cz = np.sin(lat)[None] * np.sin(decl)[:, None] + np.cos(lat)[None] * np.cos(decl)[:, None] * np.cos(ha)
        tair = 288.0 - 20.0 * np.abs(np.sin(lat))[None] + 5.0 * cz
        wetphase = np.sin(tsec[:, None] / 86400.0 * 2.1 + col[None] * 0.37 + self.seed)
        prec = np.where(wetphase > 0.6, 2e-4 * (wetphase - 0.6), 0.0)
        f = np.zeros((L.NF, nsteps, len(pos)), order="F")
        f[L.F_TAIR] = tair
        f[L.F_QAIR] = 0.006
        f[L.F_PSURF] = 100000.0
        f[L.F_PREC] = prec
        f[L.F_WIND] = 3.0 + np.cos(col)[None]
        f[L.F_SWDOWN] = 900.0 * np.maximum(cz, 0.0)
        f[L.F_LWDOWN] = 5.67e-8 * tair ** 4 * 0.8
        f[L.F_COSZEN] = cz
        return f


def synthetic_inputs(settings):
    """RunInputs for the synthetic grid restricted to the settings' box / points."""
    from colmda import layout as L
    from colmda.core import ColumnParameters, default_soil_thickness
    from colmda.errors import UserError
    from colmda.setup import RunInputs

    glat, glon, land = synthetic_grid()
    jy, jx = np.divmod(land, NLON)
    lat, lon = glat[jy], glon[jx]
    sel = np.ones(len(land), bool)
    d = settings.domain
    if d.box:
        s, n, w, e = d.box
        lon180 = np.where(lon > 180, lon - 360, lon)
        inlon = (lon180 >= w) & (lon180 <= e) if w <= e else (lon180 >= w) | (lon180 <= e)
        sel = (lat >= s) & (lat <= n) & inlon
    elif d.point_lat:
        idx = [int(np.argmin((lat - a) ** 2 + (lon - (b % 360)) ** 2)) for a, b in zip(d.point_lat, d.point_lon)]
        sel = np.zeros(len(land), bool)
        sel[idx] = True
    if not sel.any():
        raise UserError(f"{settings.source}: &domain selects no land column")
    column, lat, lon = land[sel], lat[sel], lon[sel]
    n = len(column)
    dz = default_soil_thickness()
    sp = np.zeros((L.NSP, L.NL_SOIL, n), order="F")
    sp[L.SP_THETA_S] = 0.45
    sp[L.SP_THETA_R] = 0.05
    sp[L.SP_KSAT] = 0.005
    sp[L.SP_PSI_S] = -200.0
    sp[L.SP_BSW] = 6.0
    sp[L.SP_ALPHA_VG] = 0.002
    sp[L.SP_N_VG] = 1.5
    sp[L.SP_L_VG] = 0.5
    sp[L.SP_CSOL] = 2.0e6
    sp[L.SP_TKDRY] = 0.25
    sp[L.SP_TKSATU] = 1.5
    sp[L.SP_TKSATF] = 2.2
    sp[L.SP_ROOTFR] = (np.exp(-np.arange(L.NL_SOIL) / 3.0) / np.exp(-np.arange(L.NL_SOIL) / 3.0).sum())[:, None]
    vp = np.zeros((L.NVP, n), order="F")
    vals = {"VP_ISVEG": 1, "VP_HTOP": 0.5, "VP_Z0M": 0.06, "VP_DISPLA": 0.34, "VP_DLEAF": 0.04, "VP_CHIL": -0.3,
            "VP_RHO_VIS": 0.11, "VP_RHO_NIR": 0.35, "VP_TAU_VIS": 0.05, "VP_TAU_NIR": 0.34, "VP_C3": 1,
            "VP_VCMAX25": 5e-5, "VP_EFFCON": 0.08, "VP_G1": 9.0, "VP_G0": 0.01, "VP_EXTKN": 0.5,
            "VP_SMPSO": -66000.0, "VP_SMPSC": -255000.0}
    for k, v in vals.items():
        vp[getattr(L, k)] = v
    cp = np.zeros((L.NCP, n), order="F")
    cp[L.CP_ZREF] = 30.0
    cp[L.CP_ALBSAT_VIS], cp[L.CP_ALBSAT_NIR], cp[L.CP_ALBDRY_VIS], cp[L.CP_ALBDRY_NIR] = 0.09, 0.18, 0.18, 0.36
    months = np.arange(12)[:, None]
    lai = 1.0 + 2.0 * (0.5 + 0.5 * np.cos(2 * np.pi * (months - 6) / 12.0)) * np.ones((1, n))
    names = tuple(d.point_name)
    return RunInputs(column=column, lat=lat, lon=lon, grid_lat=glat, grid_lon=glon,
                     params=ColumnParameters(sp, vp, cp, dz), lai_monthly=lai, sai_monthly=0.1 * lai + 0.2,
                     forcing=SyntheticForcing(column, lat, lon, settings.dt, settings.forcing.seed),
                     point_lat=np.asarray(d.point_lat) if d.point_lat else None,
                     point_lon=np.asarray(d.point_lon) if d.point_lon else None, names=names,
                     t_clim=288.0 - 20.0 * np.abs(np.sin(np.deg2rad(lat))))


def toy_advance(state, params, forc, dt, *, hydr_model="vangenuchten", nper=None, raise_on_error=True):
    """A stand-in for the Fortran core with non-trivial, state-dependent, column-by-column arithmetic (a bucket
    cascade with drainage and a relaxing soil temperature), so that invariance tests mean something even while the
    core's physics is incomplete. Same signature and in-place contract as :func:`colmda.core.advance`."""
    from colmda import layout as L
    from colmda.core import Diagnostics

    nf, nsteps, ncol = forc.shape
    nper = nsteps if nper is None else nper
    nout = nsteps // nper
    dz = params.dz_soil
    cap = params.soilpar[L.SP_THETA_S] * dz[:, None] * 1000.0  # (nl, ncol) kg m-2
    d = np.zeros((L.ND, nout, ncol), order="F")
    ds = np.zeros((L.NDS, L.NL_SOIL, nout, ncol), order="F")
    w = state.wliq_soisno[L.NSNOW_MAX:]
    t = state.t_soisno[L.NSNOW_MAX:]
    for k in range(nsteps):
        p = forc[L.F_PREC, k]
        tair = forc[L.F_TAIR, k]
        sw = np.maximum(forc[L.F_SWDOWN, k], 0.0)
        e = 2e-5 * (sw / 900.0) * (w[0] / cap[0]) * (1.0 + 0.1 * params.colpar[L.CP_LAI])
        w[0] += (p - e) * dt
        flux = 1e-6 * w * (w / cap) ** 3 * dt  # drainage out of each layer (kg m-2 per step)
        w -= flux
        w[1:] += flux[:-1]
        excess = np.maximum(w - cap, 0.0)
        w -= excess
        t[0] += (tair - t[0]) * 0.05
        t[1:] += (t[:-1] - t[1:]) * 0.01
        o = k // nper
        d[L.D_RAINF, o] += p
        d[L.D_EVAP, o] += e
        d[L.D_QLE, o] += 2.5e6 * e
        d[L.D_QH, o] += 10.0 * (t[0] - tair)
        d[L.D_SWNET, o] += 0.8 * sw
        d[L.D_QSB, o] += flux[-1] / dt
        d[L.D_QS, o] += excess.sum(axis=0) / dt
        d[L.D_AVGSURFT, o] += t[0]
        d[L.D_TWS, o] += w.sum(axis=0)
        ds[L.DS_SOILMOIST, :, o] += w
        ds[L.DS_SOILTEMP, :, o] += t
    state.cstate[L.CS_TGRND] = t[0]
    d /= nper
    ds /= nper
    return Diagnostics(d, ds)


def assert_water_budget(rundir) -> None:
    """An expectation independent of restarts, resumes and decompositions: over the experiment, each column's
    change of stored water (ColumnState.total_water) between the restart after spin-up and the final restart
    equals the history's Rainf + Snowf - Evap - Qs - Qsb integrated over its averaging intervals (time_bnds).
    History is float32: within 1e-5 of the gross fluxes + 1e-4 kg m-2. Needs mean-averaged history with those
    variables and a spin-up."""
    import xarray as xr

    from colmda.restart import list_restarts, read_restart

    rundir = Path(rundir)
    rs = list_restarts(rundir / "restart")
    a = read_restart([p for p in rs if "spinup-cycle" in p.name][-1])
    b = read_restart(rs[-1])
    np.testing.assert_array_equal(a.column, b.column)
    change = b.state.total_water() - a.state.total_water()
    net = np.zeros(len(a.column))
    gross = np.zeros(len(a.column))
    signs = {"Rainf": 1.0, "Snowf": 1.0, "Evap": -1.0, "Qs": -1.0, "Qsb": -1.0}
    for f in sorted(rundir.glob("history/*.nc")):
        if f.name.endswith("_inst.nc"):
            continue  # end-of-interval state files (no fluxes)
        with xr.open_dataset(f, decode_times=False) as h:
            assert h.attrs.get("averaging", "mean") == "mean", f
            jj, ii = np.array([np.argwhere(h.column.values == c)[0] for c in a.column]).T
            length = np.diff(h.time_bnds.values, axis=1)[:, 0]  # s
            for v, sign in signs.items():
                amount = (h[v].values[:, jj, ii].astype(float) * length[:, None]).sum(axis=0)
                net += sign * amount
                gross += np.abs(amount)
    assert gross.min() > 1.0, "no water moved: the budget check would be empty"
    np.testing.assert_array_less(np.abs(change - net), 1e-5 * gross + 1e-4)


# ---------------------------------------------------------------------------------------------------------------
# launching


def find_mpiexec() -> str | None:
    """mpiexec next to the Python interpreter (the mpich wheel) or on PATH."""
    cand = Path(sys.executable).parent / "mpiexec"
    if cand.exists():
        return str(cand)
    return shutil.which("mpiexec")


def real_modules_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("colmda.domain", "colmda.pft",
                                                                 "colmda.soilparams", "colmda.forcing"))


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "HYDRA_"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command(args, *, ranks: int = 0, synthetic: bool = True) -> list[str]:
    """The command line of ``colmda ARGS`` (synthetic inputs through this script, else ``python -m colmda``),
    under ``mpiexec -n ranks`` when ranks > 0."""
    base = [sys.executable, str(HERE)] if synthetic else [sys.executable, "-m", "colmda"]
    cmd = base + list(args)
    if ranks:
        mpiexec = find_mpiexec()
        cmd = [mpiexec, "-n", str(ranks)] + cmd
    return cmd


def run_cli(args, *, ranks: int = 0, synthetic: bool = True, timeout: float = 600, env=None, cwd=None):
    return subprocess.run(command(args, ranks=ranks, synthetic=synthetic), capture_output=True, text=True,
                          timeout=timeout, env=env or clean_env(), cwd=cwd or REPO)


TOY_CORE_ENV = "COLMDA_TEST_TOY_CORE"
SHUFFLE_ENV = "COLMDA_TEST_SHUFFLE_BLOCKS"


def shuffled_rebalance(self):
    """Stand-in for Share.rebalance: after every window, move to new random block sizes (>= 1 column each), so a
    test can prove that moving columns between ranks never changes a result."""
    c = self.comm
    if c.size == 1:
        return False
    counts = None
    if c.is_root:
        rng = np.random.default_rng(self.rebalances)
        cuts = np.sort(rng.choice(np.arange(1, self.decomp.ncol), size=c.size - 1, replace=False))
        counts = np.diff(np.concatenate([[0], cuts, [self.decomp.ncol]])).tolist()
    self.move(c.bcast(counts))
    return True


def _main(argv):
    import colmda.run
    import colmda.setup

    colmda.setup.build_inputs = synthetic_inputs
    if os.environ.get(TOY_CORE_ENV) == "1":
        colmda.run.advance = toy_advance
    if os.environ.get(SHUFFLE_ENV) == "1":
        colmda.run.Share.rebalance = shuffled_rebalance
    from colmda.cli import main

    return main(argv)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
