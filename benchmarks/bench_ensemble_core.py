"""Core time of an N-member ensemble forecast batched in one core call vs the same members one call each.

The issue's target: an N-member ensemble forecast costs <= 1.1 x N x the control run's core time. Both modes do
exactly the same work (``--columns`` synthetic columns of five climates, N members with their own keyed forcing
perturbations and initial soil-moisture perturbations, ``--days`` days): ``batched`` advances the N x columns
flat columns (colmda.ensemble order) in one core call per day; ``separate`` advances each member's columns in
its own call (N calls per day of ``--columns`` columns, what N control runs would cost). Time them as whole
processes with farm-bench, one against the other:

    farm-bench -n 5 --vs "python benchmarks/bench_ensemble_core.py separate" -- \
        python benchmarks/bench_ensemble_core.py batched

The script also prints its own core seconds (``--quiet`` off).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from colmda import ensemble as ens
from colmda import layout as L
from colmda.core import advance, initial_state
from colmda.forcing.perturb import keyed_normal, perturb_forcing
from colmda.testing import CLIMATES, climate_forcing, column_parameters

DT = 1800.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("batched", "separate"))
    ap.add_argument("--columns", type=int, default=200)
    ap.add_argument("--members", type=int, default=24)
    ap.add_argument("--days", type=int, default=3)
    a = ap.parse_args()
    names = list(CLIMATES)
    climates = [names[i % len(names)] for i in range(a.columns)]
    N, ncol, nday = a.members, a.columns, a.days
    params = column_parameters(climates)
    state = initial_state(params, temperature=285.0, saturation=0.5)
    big = state.repeat(N)
    bigp = params.repeat(N)
    s, dz = L.NSNOW_MAX, bigp.dz_soil
    gcol, gmem = ens.global_keys(np.arange(ncol), N)
    liq = big.wliq_soisno[s:s + 7] / 1000.0 / dz[:7, None]
    ice = big.wice_soisno[s:s + 7] / 917.0 / dz[:7, None]
    z = keyed_normal(1, 950, np.arange(7)[:, None], gmem[None, :], gcol[None, :])
    big.wliq_soisno[s:s + 7] = np.clip(liq + 0.03 * z, 0.05, 0.95 * bigp.soilpar[L.SP_THETA_S, :7, :] - ice) \
        * 1000.0 * dz[:7, None]
    forc = climate_forcing(climates, 48 * nday, dt=DT, start_doy=160.0)
    fens = perturb_forcing(forc, 3, np.arange(ncol), np.arange(N), np.datetime64("2005-06-10T00:00"), DT)
    flat = np.asfortranarray(np.transpose(fens, (0, 1, 3, 2)).reshape(fens.shape[0], fens.shape[1], -1))
    core = 0.0
    if a.mode == "batched":
        for d in range(nday):
            f = np.asfortranarray(flat[:, 48 * d:48 * (d + 1)])
            t = time.perf_counter()
            advance(big, bigp, f, DT)
            core += time.perf_counter() - t
    else:
        idx = [np.arange(ncol) * N + m for m in range(N)]
        states = [big.take(i) for i in idx]
        pars = [bigp.take(i) for i in idx]
        forcs = [np.asfortranarray(flat[:, :, i]) for i in idx]
        for d in range(nday):
            for m in range(N):
                f = np.asfortranarray(forcs[m][:, 48 * d:48 * (d + 1)])
                t = time.perf_counter()
                advance(states[m], pars[m], f, DT)
                core += time.perf_counter() - t
    print(f"{a.mode}: {N} members x {ncol} columns x {nday} days: core {core:.3f} s")


if __name__ == "__main__":
    main()
