"""`colmda twin NAMELIST`: the seed 000 Table 1 experiment matrix as a twin (observing-system simulation) experiment.

Steps, all in one run directory (``&output directory``, default ``runs/<experiment name>``):

1. ``truth/``: a run with the truth's weather realisation (``&matrix truth_seed``), unperturbed forcing and no
   precipitation bias; it simulates the L, C and X retrievals from its own states (``truth/obs/*.nc``).
2. ``eval/``: the reanalysis-like reference field and the in-situ network, simulated from the truth's daily
   soil moisture.
3. ``CTL/``: the model run: another weather realisation (``&forcing seed``) with the namelist's forcing errors
   (``&forcing precip_scale``, ``perturb``), after the namelist's spin-up. Its spun-up state is the initial
   state of every assimilation experiment.
4. The assimilation experiments of ``&matrix experiments`` with the analysis method ``&matrix method`` (default
   the SEKF; same settings as CTL plus assimilation), each in its own directory; for a method with a static
   background error (``&assimilation background_error``: the SEKF) B is the CTL-vs-reference RMSE per layer when
   ``&matrix errors_from_reference``.
   With ``&matrix ensemble_methods`` (e.g. 'enkf', 'letkf'), the experiments of ``&matrix ensemble_experiments``
   run again with each ensemble method, as ``NAME_METHOD`` (``&matrix n_members`` members, perturbed forcing, the
   namelist's ``&enkf`` keys), from the same state and observations; their history is the ensemble mean.
5. ``summary/``: skill tables and figures (:mod:`colmda.evaluation.summary`), and ``matrix.json``.

The experiments run one after the other on all MPI ranks (each run distributes its columns).

Resuming: ``colmda twin`` in a directory that holds part of the same matrix (same settings) continues where it
stopped: finished experiments are kept, an interrupted one resumes from its newest restart, missing ones run.
Runs made with other settings are refused (naming the keys that differ) unless ``--overwrite``. ``matrix.json``
is rewritten after every experiment and lists the finished ones (``experiments``) and those still missing
(``pending``), so ``colmda skill`` works on a partial matrix.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path

import numpy as np

from .config import Settings, format_date, from_dict
from .assim import base as methods
from .errors import UserError
from .matrix_keys import EXPERIMENTS

log = logging.getLogger("colmda")

def derived(settings: Settings, changes: dict) -> Settings:
    """``settings`` with {group: {key: value}} changed (validated like a namelist)."""
    d = settings.to_dict()
    for g, kv in changes.items():
        d[g].update(kv)
    return from_dict(d, settings.source)


def forecast_start(s: Settings) -> _dt.datetime:
    if s.matrix.forecast_start is not None:
        t = s.matrix.forecast_start
        if not s.start < t < s.end or (t - s.start).total_seconds() % s.window_seconds:
            raise UserError(f"{s.source}: &matrix forecast_start = '{format_date(t)}': expected a window boundary "
                            f"strictly between &experiment start and end")
        return t
    n = s.n_windows
    return s.start + (n // 2) * _dt.timedelta(seconds=s.window_seconds)


def _spinup_restart(rundir: Path, name: str) -> Path | None:
    found = sorted((rundir / "restart").glob(f"{name}_*spinup-cycle*.nc"))
    return found[-1] if found else None


def background_errors(ctl_dir: Path, reference_file: Path, dz_soil: np.ndarray, layers: int) -> list[float]:
    """B standard deviation per controlled layer = RMSE of CTL against the reference over the experiment (mean
    over columns of the squared error), per evaluation layer, given to the model layers whose centre lies in it
    (layers below the deepest evaluation layer get its value)."""
    from .evaluation.history import load_soil_moisture
    from .obs import operators
    from .obs.insitu import read_reference

    ctl = load_soil_moisture(ctl_dir)
    ref = read_reference(reference_file)
    cols = np.searchsorted(ctl.column, ref.column)
    times = np.intersect1d(ctl.time, ref.time)
    ic = np.searchsorted(ctl.time, times)
    ir = np.searchsorted(ref.time, times)
    rmse = []
    for k, (top, bottom) in enumerate(operators.EVALUATION_LAYERS):
        w = operators.layer_weights(ctl.dz_soil, top, bottom)
        model = operators.apply_weights(w, ctl.theta[ic][:, :, cols], axis=1)
        err = model - ref.sm[ir, k, :]
        rmse.append(float(np.sqrt(np.nanmean(err ** 2))))
    centres = operators.nodes(dz_soil)[:layers]
    out = []
    for zc in centres:
        k = next((i for i, (t, b) in enumerate(operators.EVALUATION_LAYERS) if t <= zc < b),
                 len(operators.EVALUATION_LAYERS) - 1)
        out.append(round(rmse[k], 6))
    return out


def step_state(s: Settings) -> str:
    """What an earlier matrix left of the experiment of ``s`` (rank 0): 'none', 'completed' or 'partial'; a run
    with other settings is refused."""
    from . import rundir
    from .run import json_norm, settings_diff

    rd = Path(s.output_directory)
    earlier = rundir.inspect(rd, s.experiment.name)
    other = rundir.other_experiment(rd)
    if other is not None and other != s.experiment.name:
        raise UserError(f"{rd}: holds a run of experiment '{other}', not '{s.experiment.name}' of this matrix; "
                        f"use another &output directory or start again with --overwrite")
    if not earlier.exists:
        return "none"
    old = earlier.manifest.get("fingerprint")
    if old is not None and json_norm(old) != json_norm(s.fingerprint()):
        raise UserError(f"{rd}: holds {earlier.describe()} made with other settings ({settings_diff(old, s.fingerprint())}"
                        f"); start the matrix again with --overwrite, or use another &output directory")
    if earlier.status == "completed" and (rd / rundir.SUMMARY).exists():
        return "completed"
    return "partial" if earlier.restarts else "none-but-files"


def run_step(s: Settings, *, overwrite: bool, comm, progress, namelist_path) -> str:
    """Run one experiment of the matrix, or keep / resume what an earlier matrix left; returns what was done."""
    from .rundir import on_root
    from .run import run

    state = "none" if overwrite else on_root(comm, lambda: step_state(s))
    state = comm.bcast(state)
    hint = f"colmda twin {namelist_path or 'NAMELIST'}"
    if state == "completed":
        if comm.is_root:
            log.info("twin: %s finished earlier with the same settings: kept (%s)", s.experiment.name,
                     s.output_directory)
        return "kept"
    try:
        if state == "partial":
            if comm.is_root:
                log.info("twin: %s was interrupted: resuming from its newest restart", s.experiment.name)
            run(s, resume=True, comm=comm, progress=progress, namelist_path=namelist_path)
            return "resumed"
        # nothing yet, or files of the same settings without a restart (interrupted early): start (again)
        run(s, overwrite=overwrite or state == "none-but-files", comm=comm, progress=progress,
            namelist_path=namelist_path)
        return "ran"
    except KeyboardInterrupt as exc:
        exc.colmda_hint = (f"interrupted ({getattr(exc, 'signame', 'SIGINT')}) in experiment '{s.experiment.name}'"
                           f"; continue the matrix with: {hint}")
        raise


def write_matrix_json(root: Path, doc: dict) -> None:
    from .output import atomic_path

    with atomic_path(root / "matrix.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1))


def check_partial(rundir) -> None:
    """Before ``colmda skill``: say which experiments of a partial matrix are missing (error if the control is)."""
    import sys

    path = Path(rundir) / "matrix.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # reported by the evaluation with its own message
    pending = list(m.get("pending") or []) if isinstance(m, dict) else []
    if not pending:
        return
    done = [e.get("name") for e in m.get("experiments", []) if isinstance(e, dict)]
    control = m.get("control", "CTL")
    if control not in done:
        raise UserError(f"{path}: partial matrix: the control '{control}' has not finished (missing: "
                        f"{', '.join(pending)}); continue the matrix with colmda twin NAMELIST")
    print(f"colmda skill: partial matrix: {len(pending)} experiment(s) not finished and left out: "
          f"{', '.join(pending)} (finished: {', '.join(done)})", file=sys.stderr)


def truth_settings(s: Settings, common: dict, directory) -> Settings:
    """The truth run of the matrix: the truth's weather realisation, no forcing errors, its own initial state
    (&matrix truth_initial_restart, truth_init_saturation), simulating the L, C and X retrievals (and SMAP-like Tb
    when the namelist's &observations simulate lists 'TB')."""
    mx = s.matrix
    tsat = mx.truth_init_saturation or s.experiment.init_saturation
    start = {"initial_restart": mx.truth_initial_restart} if mx.truth_initial_restart else {}
    return derived(s, {**common, "experiment": {"name": "truth", "init_saturation": tsat, **start},
                       "forcing": {"seed": mx.truth_seed, "perturb": False, "precip_scale": 1.0},
                       "observations": {"simulate": ["L", "C", "X"] + (["TB"] if "TB" in s.observations.simulate
                                                                       else []), "sensors": [], "error": []},
                       "output": {**common.get("output", {}), "directory": str(directory)}})


def run_twin(settings: Settings, *, comm=None, progress=True, namelist_path=None, figures=True,
             overwrite: bool = False) -> dict:
    from .parallel import get_comm

    comm = comm or get_comm()
    s = settings
    root = Path(s.output_directory).absolute()  # derived paths (initial_restart) must not depend on the cwd
    mx = s.matrix
    if s.assimilation.method != "none":
        raise UserError(f"{s.source}: `colmda twin` sets &assimilation method itself; leave it 'none'")
    if mx.truth_seed == s.forcing.seed:
        raise UserError(f"{s.source}: &matrix truth_seed = {mx.truth_seed} equals &forcing seed: the model run "
                        f"needs a different weather realisation than the truth")
    names = ["CTL"] + [n for n in mx.experiments if n != "CTL"]
    fc = forecast_start(s)
    out_vars = tuple(s.output.variables)
    if not any(v in out_vars for v in ("SoilMoistV", "default", "soil", "all")):
        out_vars = out_vars + ("SoilMoistV",)
    common = {"output": {"frequency": "1d", "averaging": "mean", "variables": list(out_vars)}}

    # 1. truth
    truth = truth_settings(s, common, root / "truth")
    dom = s.domain.file or str(_default_domain())
    doc = {"name": s.experiment.name, "start": format_date(s.start), "end": format_date(s.end),
           "forecast_start": format_date(fc), "domain_file": dom, "truth": None, "reference": None, "insitu": None,
           "control": "CTL", "background_error": None, "experiments": [],
           "pending": ["truth"] + names + [f"{n}_{m}" for m in mx.ensemble_methods for n in mx.ensemble_experiments
                                           if n != "CTL"]}

    def progress_note(done_name: str, entry: dict | None = None) -> None:
        if comm.is_root:
            doc["pending"] = [n for n in doc["pending"] if n != done_name]
            if entry is not None:
                doc["experiments"].append(entry)
            write_matrix_json(root, doc)

    step = dict(overwrite=overwrite, comm=comm, progress=progress, namelist_path=namelist_path)
    if comm.is_root:
        log.info("twin: truth run (weather seed %d) -> %s", mx.truth_seed, root / "truth")
        root.mkdir(parents=True, exist_ok=True)
        write_matrix_json(root, doc)
    truth_done = run_step(truth, **step)
    obs_dir = root / "truth" / "obs"

    # 2. reference field and in-situ network from the truth (kept with a kept truth: written atomically)
    eval_dir = root / "eval"
    if comm.is_root:
        if truth_done != "kept" or not ((eval_dir / "reference.nc").is_file() and (eval_dir / "insitu.nc").is_file()):
            _simulate_evaluation_data(s, root / "truth", eval_dir)
        doc.update(truth="truth", reference="eval/reference.nc", insitu="eval/insitu.nc")
    progress_note("truth")

    # 3. CTL
    ctl = derived(s, {**common, "experiment": {"name": "CTL"}, "observations": {"simulate": []},
                      "output": {**common["output"], "directory": str(root / "CTL")}})
    if comm.is_root:
        log.info("twin: CTL (weather seed %d, precipitation x %g) -> %s", s.forcing.seed, s.forcing.precip_scale,
                 root / "CTL")
    run_step(ctl, **step)
    init = _spinup_restart(root / "CTL", "CTL")
    start_from = {"initial_restart": str(init), "spinup_max_cycles": 0} if init else {}

    # 4. B from CTL vs reference (for a method with a static background error: the SEKF)
    owns_b = any(k.group == "assimilation" and k.name == "background_error" for k in methods.get(mx.method).keys)
    bg = list(s.assimilation.background_error) if owns_b else None
    if owns_b and mx.errors_from_reference:
        bg = None
        if comm.is_root:
            from .core import default_soil_thickness

            bg = background_errors(root / "CTL", eval_dir / "reference.nc", default_soil_thickness(),
                                   s.assimilation.control_layers)
            log.info("twin: background error per controlled layer from CTL vs reference: %s", bg)
        bg = comm.bcast(bg)
    doc["background_error"] = bg
    progress_note("CTL", {"name": "CTL", "label": "CTL", "sensors": [], "assimilation_end": None, "rundir": "CTL"})

    # 5. assimilation experiments
    for name in names[1:]:
        label, sensors, two_phase, new_rule = EXPERIMENTS[name]
        a = {"method": mx.method, "end": format_date(fc) if two_phase else "",
             "vegetation_rule": list(mx.new_rule) if new_rule else list(s.assimilation.vegetation_rule)}
        if owns_b:
            a["background_error"] = bg
        es = derived(s, {**common, "experiment": {"name": name, **start_from}, "assimilation": a,
                         "observations": {"directory": str(obs_dir), "sensors": list(sensors), "error": [],
                                          "simulate": []},
                         "output": {**common["output"], "directory": str(root / name)}})
        if comm.is_root:
            log.info("twin: %s (%s) -> %s", name, label, root / name)
        run_step(es, **step)
        progress_note(name, {"name": name, "label": label, "sensors": list(sensors),
                             "assimilation_end": format_date(fc) if two_phase else None, "rundir": name})

    # 5b. the same experiments with the ensemble methods (EnKF family): NAME_METHOD, n_members members
    for method in mx.ensemble_methods:
        for name in [n for n in mx.ensemble_experiments if n != "CTL"]:
            label, sensors, two_phase, new_rule = EXPERIMENTS[name]
            ename = f"{name}_{method}"
            a = {"method": method, "n_members": mx.n_members, "end": format_date(fc) if two_phase else "",
                 "vegetation_rule": list(mx.new_rule) if new_rule else list(s.assimilation.vegetation_rule)}
            es = derived(s, {**common, "experiment": {"name": ename, **start_from}, "assimilation": a,
                             "forcing": {"perturb": True},
                             "observations": {"directory": str(obs_dir), "sensors": list(sensors), "error": [],
                                              "simulate": []},
                             "output": {**common["output"], "directory": str(root / ename)}})
            if comm.is_root:
                log.info("twin: %s (%s, %s, %d members) -> %s", ename, label, method, mx.n_members, root / ename)
            run_step(es, **step)
            progress_note(ename, {"name": ename, "label": f"{label} {method}", "sensors": list(sensors),
                                  "assimilation_end": format_date(fc) if two_phase else None, "rundir": ename})

    # 6. matrix.json and the skill summary
    result = {}
    if comm.is_root:
        from .evaluation.summary import write_summary

        from .evaluation.summary import headline_text

        # per-column temporal scores need enough days in each phase: 10 (the evaluation's default) or, for a short
        # matrix like the main job's, all but a couple of days of the shorter phase (at least 5)
        days = min((fc - s.start).days, (s.end - fc).days)
        ev, written = write_summary(root, figures=figures, min_days=max(5, min(10, days - 2)))
        print(headline_text(ev), end="")
        print(f"\nskill tables and figures: {root / 'summary'} ({len(written)} files)")
        result = {"evaluation": ev, "files": written}
    return result


def _default_domain():
    from .domain import default_domain_path

    return default_domain_path()


def _simulate_evaluation_data(s: Settings, truth_dir: Path, eval_dir: Path) -> None:
    """The reference field and the in-situ network from the truth's daily soil moisture (rank 0)."""
    from .domain import Domain
    from .evaluation.history import load_soil_moisture
    from .obs.insitu import simulate_insitu, simulate_reference, write_insitu, write_reference

    truth = load_soil_moisture(truth_dir)
    dom = Domain.load(s.domain.file or None)
    pft = dom.get("pft", truth.column)
    box = list(s.matrix.insitu_box) or None
    seed = s.experiment.seed
    ins = simulate_insitu(truth.theta, truth.time, truth.column, truth.lat, truth.lon, truth.dz_soil, pft,
                          box=box, n_stations=s.matrix.insitu_stations, seed=seed)
    write_insitu(eval_dir / "insitu.nc", ins)
    ref = simulate_reference(truth.theta, truth.time, truth.column, truth.lat, truth.lon, truth.dz_soil,
                             (dom.lat, dom.lon), seed=seed)
    write_reference(eval_dir / "reference.nc", ref)
