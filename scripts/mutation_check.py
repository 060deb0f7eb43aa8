#!/usr/bin/env python3
"""Mutation check: does the fast test suite catch the bugs that matter?

Plants each mutation of :data:`MUTATIONS` (one at a time) in a temporary copy of the repository, runs the fast
suite there (``pytest -x -m "not slow"`` with a per-test timeout, the mutation's own test files first so that a
killed mutant stops early) and reports, per mutation, KILLED (a test failed, errored or timed out) or SURVIVED
(the whole suite passed), and the score. A mutation whose search text is no longer in its file is reported as
STALE (the code changed: update the table) and counts as not killed.

The copy has its own virtual environment that reuses this checkout's installed packages (a .pth file pointing
at ``.venv``'s site-packages) and its own editable build of the Fortran core, so a Fortran mutation is compiled
there (incrementally: one module and what depends on it) and this checkout is never touched.

Usage (from the repository root; about 1-3 minutes per survivor, seconds to a minute per killed mutant, plus one
build of the core of about 1-2 minutes):

    .venv/bin/python scripts/mutation_check.py                 # all mutations
    .venv/bin/python scripts/mutation_check.py --list          # the table
    .venv/bin/python scripts/mutation_check.py --only sekf-sign-of-increment,layer-off-by-one
    .venv/bin/python scripts/mutation_check.py --keep          # keep the temporary copy for inspection

Exit status 0 when every selected mutation is killed, 1 otherwise. Later issues append rows to MUTATIONS for
their code (ensemble, image analysis, Tb operator): each row is one realistic slip, in the file where it would
happen, with the tests expected to catch it listed first in ``tests`` (any test may kill it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str  # short identifier
    kind: str  # sign, off-by-one, swapped weights, variance-vs-std, transposed Jacobian, wrong layer, ...
    path: str  # file, relative to the repository root
    find: str  # exact text to replace (must occur exactly once)
    replace: str  # the planted bug
    effect: str  # what the bug would do to results
    tests: tuple[str, ...] = ()  # test files expected to kill it (run first)


MUTATIONS: list[Mutation] = [
    # ---- the eight survivors of issue 16
    Mutation("sekf-sign-of-increment", "sign", "pydriver/colmda/assim/consistency.py",
             "updated = state.wliq_soisno[s:s + nl, columns] + inc",
             "updated = state.wliq_soisno[s:s + nl, columns] - inc",
             "every analysis pushes soil moisture away from the observations (the increments of every method "
             "reach the state through the consistency layer)",
             ("tests/test_analysis_state.py", "tests/test_sekf_run.py", "tests/test_consistency.py")),
    Mutation("layer-operator-off-by-one", "wrong layer", "pydriver/colmda/assim/equivalents.py",
             "w[obs_layer - 1] = 1.0", "w[obs_layer] = 1.0",
             "obs_layer = 2 compares retrievals with layer 3", ("tests/test_analysis_state.py",)),
    Mutation("rule-multiplier-not-applied", "missing multiplier", "pydriver/colmda/assim/observations.py",
             "error=err * o.error_scale * np.where(mult > 0, mult, 1.0)", "error=err * o.error_scale",
             "numeric vegetation-rule multipliers do nothing", ("tests/test_analysis_state.py",)),
    Mutation("gross-error-variance", "variance-vs-std", "pydriver/colmda/assim/sekf.py",
             "np.abs(innovation) <= k * np.sqrt(hbh + obs_var)", "np.abs(innovation) <= k * (hbh + obs_var)",
             "gross-error check at k variances instead of k standard deviations",
             ("tests/test_analysis_state.py",)),
    Mutation("propagator-transposed", "transposed Jacobian", "pydriver/colmda/assim/hooks.py",
             "Mt = np.transpose((end_p - end_b[None]) / step.T[:, :, None], (1, 2, 0))",
             "Mt = np.transpose((end_p - end_b[None]) / step.T[:, :, None], (1, 0, 2))",
             "increments carried to the window end mix layers wrongly", ("tests/test_analysis_state.py",)),
    Mutation("snow-fiold-skips-top-layer", "off-by-one", "fortran/colm_column.f90",
             "    do j = snl + 1, 0\n      fiold(j)", "    do j = snl + 2, 0\n      fiold(j)",
             "melt compaction of the top snow layer lost", ("tests/test_physics_branches.py",)),
    Mutation("infiltration-ice-skips-top-layer", "off-by-one", "fortran/colm_soilwater.f90",
             "    do j = 1, min(3, nl_soil)\n      qinmax", "    do j = 2, min(3, nl_soil)\n      qinmax",
             "frozen top soil does not limit infiltration", ("tests/test_physics_branches.py",)),
    Mutation("twostream-vis-lai-sai-swapped", "swapped weights", "fortran/colm_radiation.f90",
             "rho = wl * vegpar(VP_RHO_VIS) + ws * rho_stem(1)\n          tau = wl * vegpar(VP_TAU_VIS) + ws * "
             "tau_stem(1)",
             "rho = ws * vegpar(VP_RHO_VIS) + wl * rho_stem(1)\n          tau = ws * vegpar(VP_TAU_VIS) + wl * "
             "tau_stem(1)",
             "visible canopy optics weight leaves by SAI and stems by LAI", ("tests/test_physics_branches.py",)),
    # ---- more of each kind, in the analysis chain
    Mutation("innovation-sign", "sign", "pydriver/colmda/assim/hooks.py",
             "innov = obs.value[keep] - yb", "innov = yb - obs.value[keep]",
             "innovations B - O: the filter moves away from the observations",
             ("tests/test_analysis_state.py", "tests/test_sekf_run.py")),
    Mutation("perturbation-sign-ignored", "sign", "pydriver/colmda/assim/hooks.py",
             "Hrow = (ypert - yb[:, None]) / step[j]", "Hrow = (ypert - yb[:, None]) / abs(step[j])",
             "Jacobian with the wrong sign where the perturbation goes downward (near saturation)",
             ("tests/test_sekf_run.py", "tests/test_analysis_state.py")),
    Mutation("kalman-gain-missing-B", "missing multiplier", "pydriver/colmda/assim/sekf.py",
             "A[:, np.arange(n), np.arange(n)] += 1.0 / bvar", "A[:, np.arange(n), np.arange(n)] += 1.0",
             "background error ignored in the analysis", ("tests/test_sekf.py",)),
    Mutation("background-error-std-not-squared", "variance-vs-std", "pydriver/colmda/assim/hooks.py",
             "self.bvar = np.broadcast_to(bge, (self.n,)) ** 2", "self.bvar = np.broadcast_to(bge, (self.n,))",
             "B built from standard deviations instead of variances",
             ("tests/test_analysis_state.py", "tests/test_sekf_run.py")),
    Mutation("obs-error-std-not-squared", "variance-vs-std", "pydriver/colmda/assim/hooks.py",
             "rvar = obs.error[keep] ** 2", "rvar = obs.error[keep]",
             "R built from standard deviations instead of variances",
             ("tests/test_analysis_state.py", "tests/test_sekf_run.py")),
    Mutation("observation-step-off-by-one", "off-by-one", "pydriver/colmda/obs/operators.py",
             "k = -(-sec // int(round(dt))) - 1", "k = -(-sec // int(round(dt)))",
             "retrievals compared with the state one step late (and the last step of a window rejected)",
             ("tests/test_analysis_state.py", "tests/test_obs.py")),
    Mutation("propagator-transposed-in-sekf", "transposed Jacobian", "pydriver/colmda/assim/sekf.py",
             "np.einsum(\"cki,ci->ck\", Mt, dx0)", "np.einsum(\"cik,ci->ck\", Mt, dx0)",
             "the analysis function applies the transposed tangent-linear propagator",
             ("tests/test_sekf.py", "tests/test_analysis_state.py")),
    Mutation("sensing-weights-swapped", "swapped weights", "pydriver/colmda/obs/operators.py",
             "w = np.exp(-z[:-1] / sensing_depth) - np.exp(-z[1:] / sensing_depth)",
             "w = (np.exp(-z[:-1] / sensing_depth) - np.exp(-z[1:] / sensing_depth))[::-1]",
             "sensing-depth weights applied bottom-up", ("tests/test_obs.py", "tests/test_sekf_run.py")),
    Mutation("frozen-layers-updated", "sign", "pydriver/colmda/assim/consistency.py",
             "return np.where(frozen, 0.0, inc)", "return np.where(frozen, inc, 0.0)",
             "frozen layers analysed, unfrozen ones left alone", ("tests/test_sekf.py", "tests/test_consistency.py")),
    # ---- physics
    Mutation("richards-top-flux-reversed", "sign", "fortran/colm_soilwater.f90",
             "      g = (hb - h(1)) * rdist(0) + 1.0_r8", "      g = (h(1) - hb) * rdist(0) + 1.0_r8",
             "infiltration gradient reversed at the surface (once made the suite hang for 15 minutes)",
             ("tests/test_soilwater.py",)),
    Mutation("ice-impedance-exponent-sign", "sign", "fortran/colm_hydraulics.f90",
             "imped = exp(-e_ice * ln10 *", "imped = exp(e_ice * ln10 *",
             "ice makes frozen soil MORE permeable", ("tests/test_soilwater.py", "tests/test_physics_branches.py")),
    Mutation("melt-compaction-sign", "sign", "fortran/colm_snow.f90",
             "r3 = -max(0.0_r8, (fiold(j) - fi) / fiold(j)) / dt", "r3 = max(0.0_r8, (fiold(j) - fi) / fiold(j)) / dt",
             "melting snow expands", ("tests/test_physics_branches.py", "tests/test_snow.py")),
    Mutation("nir-stem-weight-swapped", "swapped weights", "fortran/colm_radiation.f90",
             "rho = wl * vegpar(VP_RHO_NIR) + ws * rho_stem(2)", "rho = ws * vegpar(VP_RHO_NIR) + wl * rho_stem(2)",
             "near-infrared canopy reflectance weights swapped", ("tests/test_physics_branches.py",)),
    # ---- ensemble analyses (colmda.assim.enkf, issue 9)
    Mutation("inflation-variance-vs-std", "variance-vs-std", "pydriver/colmda/assim/enkf.py",
             "mean + np.sqrt(_per_batch(inflation, E.shape[0]))[:, None, None] * (E - mean)",
             "mean + _per_batch(inflation, E.shape[0])[:, None, None] * (E - mean)",
             "multiplicative inflation multiplies the anomalies by rho instead of sqrt(rho)", ("tests/test_enkf.py",)),
    Mutation("etkf-transform-without-sqrt", "variance-vs-std", "pydriver/colmda/assim/enkf.py",
             "W = (V * np.sqrt((N - 1) / lam)[:, None, :])", "W = (V * ((N - 1) / lam)[:, None, :])",
             "ETKF transform matrix [(N-1) P~a] instead of its square root: wrong analysis spread",
             ("tests/test_enkf.py",)),
    Mutation("rtpp-weights-swapped", "swapped weights", "pydriver/colmda/assim/enkf.py",
             "mean + (1.0 - alpha) * (Ea - mean) + alpha * (Eb - Eb.mean(axis=1, keepdims=True))",
             "mean + alpha * (Ea - mean) + (1.0 - alpha) * (Eb - Eb.mean(axis=1, keepdims=True))",
             "relaxation to prior perturbations with the weights of prior and analysis swapped",
             ("tests/test_enkf.py",)),
    Mutation("gaspari-cohn-inner-sign", "sign", "pydriver/colmda/assim/enkf.py",
             "- 5.0 / 3.0) * z * z + 1.0", "+ 5.0 / 3.0) * z * z + 1.0",
             "localisation weights grow above 1 inside the half-width", ("tests/test_enkf.py",)),
    # ---- the EnKF family as analysis methods (colmda.assim.ensemble_filters, issue 9)
    Mutation("ensemble-equivalents-member-major", "off-by-one", "pydriver/colmda/assim/ensemble_filters.py",
             "fl = j[:, None] * N + np.arange(N)[None, :]", "fl = j[:, None] + np.arange(N)[None, :] * len(sub)",
             "model equivalents read in the member-major order: members of other columns compared with a "
             "column's retrievals", ("tests/test_ensemble_filters.py",)),
    Mutation("ensemble-obs-error-std-not-squared", "variance-vs-std", "pydriver/colmda/assim/ensemble_filters.py",
             '"r": obs.error[rows] ** 2,', '"r": obs.error[rows],',
             "the EnKF family uses the error standard deviation as its variance (R far too large)",
             ("tests/test_ensemble_filters.py",)),
    Mutation("ensemble-gather-unsorted", "ordering", "pydriver/colmda/assim/ensemble_filters.py",
             'order = np.lexsort((allobs["id"], allobs["sensor"], allobs["time"], allobs["column"]))',
             'order = np.arange(len(allobs["id"]))',
             "gathered observations kept in rank order: the 3-D analysis depends on the number of ranks",
             ("tests/test_ensemble_filters.py",)),
    Mutation("adaptive-inflation-not-carried", "lost state", "pydriver/colmda/assim/ensemble_filters.py",
             'self.carried(ctx)[analysed] = res.inflation', 'pass',
             "the adaptive inflation restarts from inflation_factor every window (and is lost in restarts)",
             ("tests/test_ensemble_filters.py",)),
    Mutation("ensemble-increment-member-major", "transposed", "pydriver/colmda/assim/ensemble_filters.py",
             "parts = split_control((Ea - E).reshape(len(flat), spec.size), spec)",
             "parts = split_control(np.swapaxes(Ea - E, 0, 1).reshape(len(flat), spec.size), spec)",
             "increments of member m of column c applied to another member/column", ("tests/test_ensemble_filters.py",)),
    # ---- Tb assimilation (issue 13): the model-equivalent layer and the seasonal rescaling
    Mutation("tb-operator-total-instead-of-liquid", "wrong quantity", "pydriver/colmda/assim/equivalents.py",
             "liquid = np.clip(theta - ice, 0.0, None)", "liquid = np.clip(theta, 0.0, None)",
             "the filter's Tb sees ice as liquid water (the truth's does not): biased Tb in partly frozen soil",
             ("tests/test_equivalents.py",)),
    Mutation("tb-rescaling-sign", "sign", "pydriver/colmda/obs/tb_climatology.py",
             "(self.model_mean[s, p, pk] - self.obs_mean[s, p, pk])[ok]",
             "(self.obs_mean[s, p, pk] - self.model_mean[s, p, pk])[ok]",
             "rescaling doubles the seasonal bias of the Tb innovations instead of removing it",
             ("tests/test_tb_climatology.py",)),
    Mutation("tb-climatology-window-off-by-one", "off-by-one", "pydriver/colmda/obs/tb_climatology.py",
             "for k in range(-half, half + 1)", "for k in range(-half, half)",
             "the pentad window is asymmetric (one pentad short on one side)", ("tests/test_tb_climatology.py",)),
]


def _copy_repo(dest: Path) -> None:
    """Tracked and untracked (not ignored) files of the working tree, as they are now."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in files:
        src = REPO / f
        if f and src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)


def _make_env(dest: Path, log) -> dict:
    """A virtual environment in dest/.venv that sees this checkout's packages, with colmda from dest installed
    editable (its own build directory)."""
    src_venv = REPO / ".venv"
    src_site = Path(subprocess.run([str(src_venv / "bin" / "python"), "-c",
                                    "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "venv", str(dest / ".venv")], check=True)
    py = dest / ".venv" / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_parent_venv.pth").write_text(str(src_site) + "\n")
    # the MPI library and launcher of the mpich wheel live in the venv's lib/ and bin/ (mpi4py looks for the
    # library under sys.prefix): link them into the copy's venv, or mpi4py falls back to a system MPI
    wanted = {"lib": lambda n: not n.startswith("python"), "bin": lambda n: n.startswith(("mpi", "hydra"))}
    for sub, keep in wanted.items():
        for item in (src_venv / sub).iterdir():
            link = dest / ".venv" / sub / item.name
            if keep(item.name) and not link.exists():
                link.symlink_to(item)
    env = dict(os.environ)
    env["PATH"] = f"{dest / '.venv' / 'bin'}{os.pathsep}{src_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env.setdefault("OMP_NUM_THREADS", "1")
    t = time.time()
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "-e",
                        str(dest)], cwd=dest, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"mutation_check: building the copy failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    r = subprocess.run([str(py), "-c", "import colmda._core, colmda; print(colmda.__file__)"], cwd=dest, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0 or str(dest) not in r.stdout:
        raise SystemExit(f"mutation_check: the copy does not import its own colmda:\n{r.stdout}\n{r.stderr}")
    log(f"built the copy in {time.time() - t:.0f} s ({dest})")
    return env


def _run_suite(dest: Path, env: dict, first: tuple[str, ...], timeout: int, wall: int) -> tuple[str, str, float]:
    """(outcome, detail, seconds) of the fast suite in the copy, the given test files first."""
    rest = sorted(str(p.relative_to(dest)) for p in (dest / "tests").glob("test_*.py"))
    order = [*first, *(f for f in rest if f not in first)]  # (pytest reorders "file + directory" arguments)
    cmd = [str(dest / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-m", "not slow",
           "-p", "no:cacheprovider", f"--timeout={timeout}", *order]
    t = time.time()
    try:
        r = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=wall)
    except subprocess.TimeoutExpired:
        return "KILLED", f"suite exceeded {wall} s", time.time() - t
    sec = time.time() - t
    out = r.stdout + r.stderr
    if r.returncode == 0:
        return "SURVIVED", "all tests passed", sec
    failed = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    if failed:
        return "KILLED", failed[0][:160], sec
    if "Timeout" in out:
        return "KILLED", "per-test timeout", sec
    return "KILLED", f"pytest exit {r.returncode}: " + (out.strip().splitlines() or ["(no output)"])[-1][:140], sec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the mutation table and exit")
    ap.add_argument("--only", default="", help="comma-separated mutation names")
    ap.add_argument("--timeout", type=int, default=90, help="per-test timeout (s)")
    ap.add_argument("--wall", type=int, default=1800, help="limit for one suite run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated suite")
    a = ap.parse_args(argv)
    muts = MUTATIONS
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = sorted(set(names) - {m.name for m in MUTATIONS})
        if unknown:
            print(f"mutation_check: unknown mutation(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
        muts = [m for m in MUTATIONS if m.name in names]
    if a.list:
        for m in muts:
            print(f"{m.name:36s} {m.kind:20s} {m.path}: {m.effect}")
        return 0

    def log(msg):
        print(msg, flush=True)

    dest = Path(tempfile.mkdtemp(prefix="colmda-mutants-"))
    results = []
    try:
        _copy_repo(dest)
        env = _make_env(dest, log)
        if not a.no_baseline:
            outcome, detail, sec = _run_suite(dest, env, (), a.timeout, a.wall)
            if outcome != "SURVIVED":
                log(f"the unmutated suite fails in the copy ({detail}); fix that first")
                return 2
            log(f"unmutated suite passes in the copy ({sec:.0f} s)")
        for m in muts:
            target = dest / m.path
            original = target.read_text()
            if original.count(m.find) != 1:
                results.append((m, "STALE", f"search text found {original.count(m.find)} times", 0.0))
                log(f"{m.name:36s} STALE")
                continue
            target.write_text(original.replace(m.find, m.replace))
            try:
                outcome, detail, sec = _run_suite(dest, env, m.tests, a.timeout, a.wall)
            finally:
                target.write_text(original)
            results.append((m, outcome, detail, sec))
            log(f"{m.name:36s} {outcome:8s} {sec:6.0f} s  {detail}")
    finally:
        if a.keep:
            log(f"copy kept in {dest}")
        else:
            shutil.rmtree(dest, ignore_errors=True)
    killed = sum(r[1] == "KILLED" for r in results)
    print(f"\nmutation score: {killed}/{len(results)} killed")
    for m, outcome, detail, _ in results:
        if outcome != "KILLED":
            print(f"  {outcome}: {m.name} ({m.kind}, {m.path}): {m.effect}")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
