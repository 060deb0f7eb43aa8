"""The soil-water solver alone, for verification against analytic and published solutions.

:func:`run` advances the Richards solver of the core (``richards_solve`` in fortran/colm_soilwater.f90, the
routine the column's ``soil_water`` uses) on any layer grid with chosen hydraulic functions and boundary
conditions, through ``colmda._core.soilwater_kernel``. Nothing of the discretisation is re-implemented here:
every profile and flux this module returns was computed by the Fortran solver. Python only

- builds the per-layer parameter vectors (:class:`Soil`) and checks them (one-line errors naming the parameter),
- maps the boundary conditions (:class:`Top`, :class:`Bottom`) onto the solver's boundary types, step by step,
- reconstructs the time-mean interface fluxes of every step from the top flux and the layer water changes. The
  solver updates the water contents from its interface fluxes (exactly conservative), so
  q_j = q_{j-1} - dz_j (theta_j^{n+1} - theta_j^n) / dt - S_j holds to round-off.

Hydraulic functions (``Soil.model``): 'vangenuchten_airentry' (CoLM202X air-entry form, ``psi_e``),
'vangenuchten_classic', 'campbell', and 'gardner', the exponential model K = Ks exp(alpha h),
theta = theta_r + (theta_s - theta_r) exp(alpha h) of Srivastava and Yeh (1991), built into the Fortran
hydraulics (hydr_model 4) so that the analytic Gardner solutions test the same solver.

User hydraulic functions (:class:`UserSoil`, Python callables theta(h) and K(h)) cannot be called from the
Fortran solver; for them :func:`run` uses a Python transcription of the same discretisation (:func:`_run_python`:
cell-centred finite volumes, the same node distances and boundary fluxes, backward Euler, Newton on h with the
mixed-form storage term, conservative update from the interface fluxes). ``run(..., path='python')`` runs a
built-in model through it as well, so that the two paths can be compared (tests/test_verification.py checks that
they agree to the convergence tolerance); results from that path verify the discretisation, not the Fortran code.

Units: mm, s, mm s-1 (fluxes positive downward), depths positive downward from the surface. See
docs/verification.md for worked examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import layout as L
from .soilparams import PSI_E_DEFAULT, check_hydraulic_parameters

MODELS = {"campbell": 1, "vangenuchten_airentry": 2, "vangenuchten": 2, "vangenuchten_classic": 3, "gardner": 4}
KMEANS = {"arithmetic": 1, "geometric": 2, "upstream": 3}
TOP_KINDS = ("flux", "head", "ponding", "atmospheric")
BOTTOM_KINDS = ("free", "head", "noflux", "flux")
_TOP_FLUX, _TOP_HEAD, _TOP_RAIN, _TOP_ATMOS = 1, 2, 3, 4           # colm_soilwater TOP_*
_BOT = {"flux": 1, "head": 2, "free": 3, "noflux": 4}               # colm_soilwater BOT_*


@dataclass(frozen=True)
class Soil:
    """Hydraulic parameters of one layer (or of all layers). theta (m3 m-3), ksat (mm s-1), alpha (mm-1),
    heads (mm). ``n`` and ``l`` are used by the vG forms, ``psi_e`` by the air-entry form, ``psi_s`` and ``b``
    by Campbell, ``alpha`` also by Gardner."""
    model: str
    theta_s: float
    theta_r: float = 0.0
    ksat: float = 1.0e-3
    alpha: float = 0.01
    n: float = 1.5
    l: float = 0.5
    psi_e: float = PSI_E_DEFAULT
    psi_s: float = -100.0
    b: float = 5.0

    def vector(self) -> np.ndarray:
        """The SP_* parameter vector of the core (thermal rows zero; not used by the solver)."""
        if self.model not in MODELS:
            raise ValueError(f"Soil.model = {self.model!r}; expected one of {', '.join(MODELS)}")
        sp = np.zeros(L.NSP)
        sp[L.SP_THETA_S], sp[L.SP_THETA_R], sp[L.SP_KSAT] = self.theta_s, self.theta_r, self.ksat
        sp[L.SP_ALPHA_VG], sp[L.SP_N_VG], sp[L.SP_L_VG] = self.alpha, self.n, self.l
        sp[L.SP_PSI_S], sp[L.SP_BSW], sp[L.SP_PSI_E] = self.psi_s, self.b, self.psi_e
        check_hydraulic_parameters(sp, self.model, where=f"Soil({self.model!r})")
        return sp


@dataclass(frozen=True)
class UserSoil:
    """User hydraulic functions of one layer: ``theta(h)`` (m3 m-3) and ``k(h)`` (mm s-1), numpy-vectorised over
    heads h (mm); optional derivatives ``dtheta(h)`` (mm-1) and ``dk(h)`` (s-1), else central differences.
    Run by the Python path of :func:`run`."""
    theta: Callable
    k: Callable
    dtheta: Callable | None = None
    dk: Callable | None = None
    model: str = "user"

    def state(self, h):
        """theta, capacity, K and dK/dh at heads h."""
        h = np.asarray(h, dtype=float)
        th, k = np.asarray(self.theta(h), dtype=float), np.asarray(self.k(h), dtype=float)
        step = 1e-6 * (np.abs(h) + 1.0)
        c = self.dtheta(h) if self.dtheta else (self.theta(h + step) - self.theta(h - step)) / (2 * step)
        dk = self.dk(h) if self.dk else (self.k(h + step) - self.k(h - step)) / (2 * step)
        return th, np.asarray(c, dtype=float), k, np.asarray(dk, dtype=float)


def builtin_functions(soil: Soil) -> UserSoil:
    """A built-in model as a :class:`UserSoil` (closed forms of :func:`state_at_head`), for the Python path."""
    return UserSoil(theta=lambda h: state_at_head(soil, h)[0], k=lambda h: state_at_head(soil, h)[1],
                    model=soil.model)


@dataclass(frozen=True)
class Top:
    """Surface boundary. kind:

    - 'flux': prescribed downward flux ``value`` (mm s-1; negative = evaporation), whatever the surface head;
    - 'head': prescribed surface pressure head ``value`` (mm);
    - 'ponding': downward flux ``value`` while the soil takes it, else the flux at surface head ``h_pond``
      (>= 0 mm) (the ponding switch; excess is not stored);
    - 'atmospheric': ``value`` < 0 is an evaporation demand -E_pot, applied while the surface head stays above
      ``h_crit`` (< 0 mm), else the head h_crit; ``value`` >= 0 is rain with the ponding switch at ``h_pond``.

    ``value`` is a scalar or one value per step."""
    kind: str
    value: float | np.ndarray = 0.0
    h_pond: float = 0.0
    h_crit: float = -1.0e5


@dataclass(frozen=True)
class Bottom:
    """Bottom boundary. kind: 'free' (unit gradient), 'noflux', 'flux' (downward ``value`` mm s-1) or 'head'
    (pressure head ``value`` mm at ``depth`` mm below the surface, default the column bottom; the bottom
    interface conductivity is the mean of the bottom node's and the one at that head)."""
    kind: str
    value: float | np.ndarray = 0.0
    depth: float | None = None


@dataclass
class Result:
    """Solver output. ``theta``/``h`` (nsteps + 1, nl) include the initial state; ``q`` (nsteps, nl + 1) are the
    time-mean downward fluxes of each step at the interfaces (index 0 the surface, nl the bottom); ``time``
    (nsteps + 1) s; ``z`` node and ``zi`` interface depths (mm). ``info['q_bottom_solver']`` is the bottom flux
    as the solver computed it (equal to ``q[:, -1]`` to round-off: a check of the reconstruction)."""
    time: np.ndarray
    z: np.ndarray
    zi: np.ndarray
    theta: np.ndarray
    h: np.ndarray
    q: np.ndarray
    nsub: int = 0
    niter: int = 0
    ierr: int = 0
    info: dict = field(default_factory=dict)


def _per_step(name: str, value, nsteps: int) -> np.ndarray:
    v = np.atleast_1d(np.asarray(value, dtype=float))
    if v.size == 1:
        return np.full(nsteps, float(v[0]))
    if v.shape != (nsteps,):
        raise ValueError(f"{name} has {v.size} values; expected 1 or nsteps = {nsteps}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains non-finite values")
    return v


def check_boundaries(top: Top, bottom: Bottom, column_depth: float) -> None:
    """One-line ValueError for boundary conditions that are invalid or do not fit together."""
    if top.kind not in TOP_KINDS:
        raise ValueError(f"Top.kind = {top.kind!r}; expected one of {', '.join(TOP_KINDS)}")
    if bottom.kind not in BOTTOM_KINDS:
        raise ValueError(f"Bottom.kind = {bottom.kind!r}; expected one of {', '.join(BOTTOM_KINDS)}")
    if top.kind in ("ponding", "atmospheric") and not top.h_pond >= 0:
        raise ValueError(f"Top.h_pond = {top.h_pond} mm; the ponding head must be >= 0")
    if top.kind == "atmospheric" and not top.h_crit < 0:
        raise ValueError(f"Top.h_crit = {top.h_crit} mm; the critical surface head must be < 0")
    if top.kind == "ponding" and np.any(np.asarray(top.value) < 0):
        raise ValueError("Top.value < 0 with kind 'ponding': an evaporation demand needs kind 'atmospheric' "
                         "(or 'flux')")
    if bottom.kind == "head" and bottom.depth is not None and bottom.depth < column_depth * (1 - 1e-12):
        raise ValueError(f"Bottom.depth = {bottom.depth} mm lies inside the column (depth {column_depth} mm); "
                         "expected >= the column depth")
    if bottom.kind != "head" and bottom.depth is not None:
        raise ValueError(f"Bottom.depth is given with kind {bottom.kind!r}; only 'head' uses a depth")
    if top.kind == "head" and bottom.kind == "head" and bottom.depth is None and column_depth <= 0:
        raise ValueError("a head top and a head bottom need a column of positive depth")


def run(soil: Soil | UserSoil | list, dz, dt: float, nsteps: int, top: Top, bottom: Bottom, *, theta0=None,
        h0=None, sink=None, kmean: str = "arithmetic", raise_on_error: bool = True, path: str = "fortran") -> Result:
    """Advance the core's Richards solver ``nsteps`` steps of ``dt`` s on layers of thickness ``dz`` (mm, top
    first) from ``theta0`` (m3 m-3) or ``h0`` (mm) (scalar or per layer). ``soil`` is one :class:`Soil` or one
    per layer (all of the same model). ``sink`` (mm s-1 per layer, > 0 removes) is constant. :class:`UserSoil`
    layers, or ``path='python'``, use the Python transcription of the discretisation (module docstring)."""
    dz = np.atleast_1d(np.asarray(dz, dtype=float))
    nl = dz.size
    if nl < 1 or not np.all(dz > 0):
        raise ValueError("dz must hold at least one positive layer thickness (mm)")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt = {dt} s; expected > 0")
    if int(nsteps) < 1:
        raise ValueError(f"nsteps = {nsteps}; expected >= 1")
    soils = [soil] * nl if isinstance(soil, (Soil, UserSoil)) else list(soil)
    if len(soils) != nl:
        raise ValueError(f"{len(soils)} soils for {nl} layers")
    if path not in ("fortran", "python"):
        raise ValueError(f"path = {path!r}; expected 'fortran' or 'python'")
    if path == "python" or any(isinstance(s, UserSoil) for s in soils):
        return _run_python(soils, dz, dt, int(nsteps), top, bottom, theta0, h0, sink, kmean, raise_on_error)
    models = {s.model for s in soils}
    if len(models) != 1:
        raise ValueError(f"all layers must use one hydraulic model; got {sorted(models)}")
    model = models.pop()
    sp = np.asfortranarray(np.stack([s.vector() for s in soils], axis=1))
    if kmean not in KMEANS:
        raise ValueError(f"kmean = {kmean!r}; expected one of {', '.join(KMEANS)}")
    depth = float(dz.sum())
    check_boundaries(top, bottom, depth)
    if (theta0 is None) == (h0 is None):
        raise ValueError("give exactly one of theta0 and h0")
    tv = _per_step("Top.value", top.value, nsteps)
    bv = _per_step("Bottom.value", bottom.value, nsteps)
    sink = np.zeros(nl) if sink is None else np.broadcast_to(np.asarray(sink, dtype=float), (nl,)).copy()

    from . import _core
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    z = 0.5 * (zi[:-1] + zi[1:])
    hm = MODELS[model]
    ice = np.zeros(nl)
    theta = np.zeros(nl)
    h = np.zeros(nl)
    if h0 is not None:
        h[:] = np.broadcast_to(np.asarray(h0, dtype=float), (nl,))
        # the water content in equilibrium with h0 (the solver starts from the head, h_init = 1)
        for j in range(nl):
            theta[j] = state_at_head(soils[j], h[j])[0][0]
        h_init = 1
    else:
        theta[:] = np.broadcast_to(np.asarray(theta0, dtype=float), (nl,))
        h_init = 0
    theta_hist = np.empty((nsteps + 1, nl))
    h_hist = np.empty((nsteps + 1, nl))
    q = np.empty((nsteps, nl + 1))
    q_bot_solver = np.empty(nsteps)
    theta_hist[0] = theta
    bot_type = _BOT[bottom.kind]
    bot_depth = (depth if bottom.depth is None else bottom.depth) / 1000.0
    nsub = niter = ierr = 0
    for n in range(nsteps):
        ttype, pond = _top_type(top, tv[n])
        th_before = theta.copy()
        out = _core.soilwater_kernel(hm, KMEANS[kmean], dt, dz / 1000.0, sp, ice, sink, ttype, tv[n:n + 1], pond,
                                     bot_type, bv[n:n + 1], bot_depth, h_init, theta, h)
        q_top, q_bot, _, _, ns, ni, ie = out
        h_init = 1
        nsub, niter, ierr = nsub + int(ns), niter + int(ni), max(ierr, int(ie))
        # interface fluxes from the conservative update: q_j = q_{j-1} - dz_j dtheta_j / dt - S_j
        dw = (theta - th_before) * dz / dt
        q[n, 0] = q_top[0]
        q[n, 1:] = q_top[0] - np.cumsum(dw + sink)
        q_bot_solver[n] = q_bot[0]
        theta_hist[n + 1] = theta
        h_hist[n + 1] = h
    if h0 is None:
        h_hist[0] = [head_at_theta(s, th) for s, th in zip(soils, theta_hist[0])]
    else:
        h_hist[0] = np.broadcast_to(np.asarray(h0, dtype=float), (nl,))
    if ierr and raise_on_error:
        raise RuntimeError("the Richards solver accepted unconverged sub-steps (ierr = 1); reduce dt or use "
                           "raise_on_error=False")
    return Result(time=dt * np.arange(nsteps + 1), z=z, zi=zi, theta=theta_hist, h=h_hist, q=q, nsub=nsub,
                  niter=niter, ierr=ierr, info={"model": model, "kmean": kmean, "q_bottom_solver": q_bot_solver})


def _top_type(top: Top, value: float) -> tuple[int, float]:
    """Solver top type and switching head for one step."""
    if top.kind == "flux":
        return _TOP_FLUX, 0.0
    if top.kind == "head":
        return _TOP_HEAD, 0.0
    if top.kind == "ponding" or value >= 0:
        return _TOP_RAIN, top.h_pond
    return _TOP_ATMOS, top.h_crit


def state_at_head(soil: Soil, h) -> tuple[np.ndarray, np.ndarray]:
    """(theta, K) at heads h (mm) from the closed forms of the hydraulic models (numpy; the same formulas as
    colm_hydraulics, used for initial states and analytic references, not by the solver)."""
    h = np.atleast_1d(np.asarray(h, dtype=float))
    sp = soil.vector()
    theta = np.empty(h.size)
    k = np.empty(h.size)
    for i, hi in enumerate(h.ravel()):
        theta[i], k[i] = _state_psi(soil.model, sp, hi)
    return theta.reshape(h.shape), k.reshape(h.shape)


def _state_psi(model: str, sp: np.ndarray, h: float) -> tuple[float, float]:
    ths, thr, ks = sp[L.SP_THETA_S], sp[L.SP_THETA_R], sp[L.SP_KSAT]
    if model == "gardner":
        s = np.exp(sp[L.SP_ALPHA_VG] * min(h, 0.0))
        return thr + (ths - thr) * s, ks * s
    if model == "campbell":
        s = 1.0 if h >= sp[L.SP_PSI_S] else (h / sp[L.SP_PSI_S]) ** (-1.0 / sp[L.SP_BSW])
        return ths * s, ks * s ** (2 * sp[L.SP_BSW] + 3)
    psie = 0.0 if model == "vangenuchten_classic" else sp[L.SP_PSI_E]
    a, n, lv = sp[L.SP_ALPHA_VG], sp[L.SP_N_VG], sp[L.SP_L_VG]
    m = 1 - 1 / n
    if h >= psie:
        return ths, ks
    sc = (1 + (-a * psie) ** n) ** (-m)
    fc = 1 - (1 - sc ** (1 / m)) ** m if psie < 0 else 1.0
    sstar = (1 + (-a * h) ** n) ** (-m)
    se = sstar / sc
    f = 1 - (1 - sstar ** (1 / m)) ** m
    return thr + (ths - thr) * se, ks * se ** lv * (f / fc) ** 2


def head_at_theta(soil: Soil, theta: float) -> float:
    """Pressure head (mm) of the core's retention curve at water content theta."""
    from . import _core
    sp = soil.vector()
    out = _core.soil_hydraulics_kernel(MODELS[soil.model], sp, np.array([theta]), np.zeros(1))
    return float(out[0][0])


# ------------------------------------------------------------------------------------------------------------
# Python transcription of richards_solve (user hydraulic functions)
_TOL_THETA = 1.0e-10       # convergence: max |residual| dt / dz (m3 m-3), as colm_soilwater tol_theta
_MAXIT = 25
_MAX_HALVING = 10


def _interface_mean(kmean, ka, kb, dka, dkb, downward):
    if kmean == "geometric":
        kh = np.sqrt(np.maximum(ka, 1e-30) * np.maximum(kb, 1e-30))
        return kh, 0.5 * kh / np.maximum(ka, 1e-30) * dka, 0.5 * kh / np.maximum(kb, 1e-30) * dkb
    if kmean == "upstream":
        return (np.where(downward, ka, kb), np.where(downward, dka, 0.0), np.where(downward, 0.0, dkb))
    return 0.5 * (ka + kb), 0.5 * dka, 0.5 * dkb


def _run_python(soils, dz, dt, nsteps, top, bottom, theta0, h0, sink, kmean, raise_on_error) -> Result:
    """Backward Euler, Newton on h (mixed form), the boundary fluxes of colm_soilwater, conservative update."""
    from scipy.linalg import solve_banded

    fun = [s if isinstance(s, UserSoil) else builtin_functions(s) for s in soils]
    for s in soils:
        if isinstance(s, Soil):
            s.vector()                                   # parameter checks
    if kmean not in KMEANS:
        raise ValueError(f"kmean = {kmean!r}; expected one of {', '.join(KMEANS)}")
    nl = dz.size
    depth = float(dz.sum())
    check_boundaries(top, bottom, depth)
    if h0 is None:
        raise ValueError("the Python path starts from heads: give h0")
    tv = _per_step("Top.value", top.value, nsteps)
    bv = _per_step("Bottom.value", bottom.value, nsteps)
    sink = np.zeros(nl) if sink is None else np.broadcast_to(np.asarray(sink, dtype=float), (nl,)).copy()
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    z = 0.5 * (zi[:-1] + zi[1:])
    bot_z = max(depth if bottom.depth is None else bottom.depth, depth)
    dist = np.concatenate([[z[0]], np.diff(z), [bot_z - z[-1]]])         # node distances across interfaces

    def states(h):
        out = np.empty((4, nl))
        for j, f in enumerate(fun):
            out[:, j] = [np.asarray(v).item() for v in f.state(h[j])]
        return out

    def residual(h, th0, dts, ttype, tval, pond, bval):
        th, cap, k, dk = states(h)
        q = np.zeros(nl + 1)
        dqa = np.zeros(nl + 1)                           # dq_j / dh of the node above interface j
        dqb = np.zeros(nl + 1)                           # dq_j / dh of the node below
        g = (h[:-1] - h[1:]) / dist[1:-1] + 1.0
        kh, dka, dkb = _interface_mean(kmean, k[:-1], k[1:], dk[:-1], dk[1:], g > 0)
        q[1:-1] = kh * g
        dqa[1:-1] = dka * g + kh / dist[1:-1]
        dqb[1:-1] = dkb * g - kh / dist[1:-1]
        if ttype == _TOP_FLUX:
            q[0] = tval
        else:
            hb = tval if ttype == _TOP_HEAD else pond
            kb = np.asarray(fun[0].state(np.array(hb))[2]).item()
            g0 = (hb - h[0]) / dist[0] + 1.0
            kh0, _, dkb0 = _interface_mean(kmean, kb, k[0], 0.0, dk[0], g0 > 0)
            qcap, dqcap = kh0 * g0, dkb0 * g0 - kh0 / dist[0]
            if (ttype == _TOP_RAIN and tval <= qcap) or (ttype == _TOP_ATMOS and tval >= qcap):
                q[0] = tval
            else:
                q[0], dqb[0] = qcap, dqcap
        if bottom.kind == "head":
            kb = np.asarray(fun[-1].state(np.array(bval))[2]).item()
            gb = (h[-1] - bval) / dist[-1] + 1.0
            khb, dkab, _ = _interface_mean(kmean, k[-1], kb, dk[-1], 0.0, gb > 0)
            q[-1], dqa[-1] = khb * gb, dkab * gb + khb / dist[-1]
        elif bottom.kind == "free":
            q[-1], dqa[-1] = k[-1], dk[-1]
        elif bottom.kind == "flux":
            q[-1] = bval
        res = dz * (th - th0) / dts - q[:-1] + q[1:] + sink
        ab = np.zeros((3, nl))
        ab[1] = dz * cap / dts + dqa[1:] - dqb[:-1]
        ab[0, 1:] = dqb[1:-1]                            # d res_j / d h_{j+1}
        ab[2, :-1] = -dqa[1:-1]                          # d res_{j+1} / d h_j
        ab[1] += 1e-12 * (np.abs(ab[1]) + np.abs(np.concatenate([ab[0, 1:], [0.0]]))
                          + np.abs(np.concatenate([[0.0], ab[2, :-1]]))) + 1e-300
        return res, q, ab, np.max(np.abs(res) * dts / dz)

    h = np.broadcast_to(np.asarray(h0, dtype=float), (nl,)).copy()
    theta = states(h)[0]
    theta_hist = np.empty((nsteps + 1, nl))
    h_hist = np.empty((nsteps + 1, nl))
    q_mean = np.empty((nsteps, nl + 1))
    theta_hist[0], h_hist[0] = theta, h
    nsub = niter = ierr = 0
    for n in range(nsteps):
        ttype, pond = _top_type(top, tv[n])
        t_done, dts, nhalf, qsum = 0.0, dt, 0, np.zeros(nl + 1)
        while dt - t_done > 1e-9 * dt:
            dts = min(dts, dt - t_done)
            hn = h.copy()
            res, q, ab, rn = residual(hn, theta, dts, ttype, tv[n], pond, bv[n])
            converged = rn <= _TOL_THETA
            for _ in range(_MAXIT):
                if converged:
                    break
                niter += 1
                step = solve_banded((1, 1), ab, -res)
                lam = 1.0
                for _ls in range(8):
                    trial = hn + lam * step
                    r_t = residual(trial, theta, dts, ttype, tv[n], pond, bv[n])
                    if r_t[3] < rn:
                        break
                    lam *= 0.5
                hn = trial
                res, q, ab, rn = r_t
                converged = rn <= _TOL_THETA
            if not converged and nhalf < _MAX_HALVING:
                dts *= 0.5
                nhalf += 1
                continue
            ierr = max(ierr, int(not converged))
            theta = theta + dts * (q[:-1] - q[1:] - sink) / dz
            qsum += q * dts
            h = hn
            t_done += dts
            nsub += 1
        q_mean[n] = qsum / dt
        theta_hist[n + 1], h_hist[n + 1] = theta, h
    if ierr and raise_on_error:
        raise RuntimeError("the Python Richards path did not converge in some sub-step; reduce dt")
    return Result(time=dt * np.arange(nsteps + 1), z=z, zi=zi, theta=theta_hist, h=h_hist, q=q_mean, nsub=nsub,
                  niter=niter, ierr=ierr, info={"model": "user", "kmean": kmean, "path": "python",
                                                "q_bottom_solver": q_mean[:, -1]})
