"""Tb assimilation twin: OL, retrieval SEKF (L), Tb SEKF (and Tb EnKF when an ensemble method is registered).

``python -m colmda.tb_twin NAMELIST`` (the namelist of a `colmda twin` matrix whose &observations simulate lists
'TB' and whose &matrix experiments hold 'CTL' and 'L'):

1. ``colmda twin`` of the namelist: truth (simulating L retrievals and SMAP-like TbH/TbV), reference field and
   in-situ network, CTL (the open loop, OL) and L (retrieval SEKF) -- :func:`colmda.matrix.run_twin`;
2. ``OL_monitor``: the open loop again with ``&assimilation method = 'monitor'`` on TbH and TbV: O - F of the OL
   before rescaling, and the Tb climatology (``<root>/tb_climatology.nc``) of the seasonal rescaling fitted from
   its (observed, model) pairs;
3. ``OL_monitor_rs``: the same with the climatology applied: O - F of the OL after rescaling;
4. ``TB``: Tb SEKF (H and V, rescaled, 4 K error from the files, B of the matrix); ``TB_raw``: the same without
   the rescaling (the raw Tb innovations, as the twin's retrieval experiments use raw retrievals);
5. ``TB_enkf`` when ``--enkf`` names a registered ensemble method (``--members``), and ``L_enkf``: the same
   ensemble method with the L retrievals (the retrieval EnKF beside the Tb EnKF);
   with ``--filter-roughness H`` the same Tb experiments again with suffix ``_h`` and the filter's operator
   roughness h = H (the truth keeps ``&observations tb_roughness``): an operator bias, what the seasonal
   rescaling is for;
6. the experiments are appended to ``matrix.json`` and the skill summary is rewritten (`colmda skill`,
   `colmda report` then show them with the others).

Every run starts from the CTL's spun-up state, like the matrix's experiments. Finished runs are kept (the
matrix's resume rules).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("colmda")

TB_SENSORS = ["TbH", "TbV"]


def _settings_for(s, root, name, changes, start_from):
    from .matrix import derived

    common = {"output": {"frequency": "1d", "averaging": "mean",
                         "variables": list(s.output.variables) if any(v in s.output.variables for v in (
                             "SoilMoistV", "default", "soil", "all")) else list(s.output.variables) + ["SoilMoistV"],
                         "directory": str(root / name)}}
    d = {**common, "experiment": {"name": name, **start_from}}
    for g, kv in changes.items():
        d[g] = {**d.get(g, {}), **kv}
    return derived(s, d)


def run_tb_twin(settings, *, enkf_method: str = "", n_members: int = 16, filter_roughness: float | None = None,
                progress=False, namelist_path=None, overwrite=False) -> dict:
    from .assim import base as methods
    from .matrix import _spinup_restart, run_step, run_twin, write_matrix_json
    from .parallel import get_comm

    comm = get_comm()
    s = settings
    if "TB" not in s.observations.simulate:
        from .errors import UserError

        raise UserError(f"{s.source}: &observations simulate must list 'TB' for the Tb twin")
    run_twin(s, comm=comm, progress=progress, namelist_path=namelist_path, figures=False, overwrite=overwrite)
    root = Path(s.output_directory).absolute()
    doc = json.loads((root / "matrix.json").read_text())
    init = _spinup_restart(root / "CTL", "CTL")
    start_from = {"initial_restart": str(init), "spinup_max_cycles": 0} if init else {}
    obs_dir = str(root / "truth" / "obs")
    step = dict(overwrite=overwrite, comm=comm, progress=progress, namelist_path=namelist_path)
    bg = doc.get("background_error") or list(s.assimilation.background_error)

    def tb_runs(suffix, roughness):
        """The Tb experiments with the filter's operator roughness ``roughness`` (None: the truth's)."""
        clim = str(root / f"tb_climatology{suffix}.nc")
        obs = {"directory": obs_dir, "sensors": TB_SENSORS, "error": [], "simulate": [], "tb_climatology": clim}
        if roughness is not None:
            obs["tb_roughness"] = float(roughness)
        monitor = {"method": "monitor", "diagnostics": True}
        sekf = {"method": "sekf", "diagnostics": True, "background_error": bg}
        out = [(f"OL_monitor{suffix}", "OL (O-F monitor)", {"assimilation": monitor, "observations": obs}, clim),
               (f"OL_monitor{suffix}_rs", "OL (O-F monitor, rescaled)", {"assimilation": monitor,
                                                                         "observations": obs}, None),
               (f"TB{suffix}", f"Tb SEKF{suffix}", {"assimilation": sekf, "observations": obs}, None),
               (f"TB_raw{suffix}", f"Tb SEKF{suffix} (no rescaling)",
                {"assimilation": sekf, "observations": {**obs, "tb_climatology": ""}}, None)]
        if enkf_method and enkf_method in methods.names():
            ens = {"method": enkf_method, "diagnostics": True, "n_members": n_members,
                   # model error of the 0-10 cm layers (as namelists/image_twin.nml), so that the spread is not
                   # forcing-only (docs/ensemble.md)
                   "state_perturbation_std": [0.02] * 4}
            out.append((f"TB_enkf{suffix}", f"Tb {enkf_method.upper()}{suffix}",
                        {"assimilation": ens, "observations": obs}, None))
            if not suffix:  # the retrieval EnKF: the same ensemble with the L retrievals
                out.append(("L_enkf", f"L {enkf_method.upper()}",
                            {"assimilation": ens, "observations": {"directory": obs_dir, "sensors": ["L"],
                                                                   "simulate": []}}, None))
        return out

    runs = tb_runs("", None)
    if filter_roughness is not None:  # an operator bias: the filters' h differs from the truth's
        runs += tb_runs("_h", filter_roughness)
    if enkf_method and enkf_method not in methods.names():
        log.warning("tb_twin: analysis method '%s' is not registered; the Tb EnKF experiment is skipped",
                    enkf_method)
    done = {e["name"] for e in doc["experiments"]}
    for name, label, changes, fits in runs:
        if fits and comm.is_root and (overwrite or not (root / name / "summary.json").is_file()):
            Path(fits).unlink(missing_ok=True)  # the open loop runs (again): it fits the climatology again
        es = _settings_for(s, root, name, changes, start_from)
        if comm.is_root:
            log.info("tb_twin: %s (%s) -> %s", name, label, root / name)
        run_step(es, **step)
        if name not in done and not name.startswith("OL_monitor"):
            doc["experiments"].append({"name": name, "label": label, "sensors": TB_SENSORS,
                                       "assimilation_end": None, "rundir": name})
    result = {}
    if comm.is_root:
        write_matrix_json(root, doc)
        from .evaluation.summary import headline_text, write_summary

        ev, written = write_summary(root, figures=False, min_days=5)
        print(headline_text(ev), end="")
        result = {"evaluation": ev, "files": written}
    return result


#: depth ranges (m) of the diagnosis: the evaluation's three layers and the root zone 0-1 m
DIAGNOSIS_LAYERS = ((0.0, 0.07), (0.07, 0.28), (0.28, 1.0), (0.0, 1.0))


def diagnose(rundir, names=("CTL", "L", "L_enkf", "OL_monitor", "TB", "TB_raw", "TB_enkf", "OL_monitor_h", "TB_h",
                            "TB_raw_h", "TB_enkf_h")) -> dict:
    """Why the experiments differ, from their files: per experiment (present among ``names``) the skill against
    the truth per layer (mean over columns of the temporal R, RMSE and ubRMSE of daily means; over all columns and
    over the columns where the open loop's monitor used Tb rows, 'tb_columns'), the O - F statistics of its
    summary.json, and from its analysis files the mean absolute applied increment per controlled layer and the
    median absolute Jacobian per layer (per observation, normalised by its largest entry)."""
    import netCDF4
    import numpy as np

    from .domain import Domain
    import dataclasses

    from .evaluation.skill import layer_matrix, load_matrix, load_run, model_equivalent, to_layers, truth_target

    m = load_matrix(rundir)
    dom = Domain.load(m.domain_file) if m.domain_file else Domain.load()
    truth = load_run(m.truth, "truth")
    w = layer_matrix(truth.dz_soil, DIAGNOSIS_LAYERS)
    tt = dataclasses.replace(truth_target(truth, dom), values=to_layers(truth.theta, w), weights=w,
                             layers=tuple(f"{a * 100:g}-{b * 100:g}cm" for a, b in DIAGNOSIS_LAYERS))
    out = {}
    root = Path(rundir)
    tb_cols = np.zeros(0, dtype=np.int64)  # columns with at least one used Tb row in the open-loop monitor
    for f in sorted((root / "OL_monitor" / "analysis").glob("OL_monitor_*.nc")):
        with netCDF4.Dataset(f) as nc:
            if len(nc.dimensions["obs"]):
                used = np.asarray(nc["reason"][:]) == 0
                tb_cols = np.union1d(tb_cols, np.asarray(nc["obs_column"][:])[used])
    for name in names:
        d = root / name
        if not (d / "summary.json").is_file():
            continue
        run = load_run(d, name)
        eq = model_equivalent(run, tt)  # (time, nq, col)
        err = eq - tt.values
        with np.errstate(invalid="ignore"):
            a = eq - np.nanmean(eq, axis=0)
            b = tt.values - np.nanmean(tt.values, axis=0)
            r = np.nansum(a * b, axis=0) / np.sqrt(np.nansum(a * a, axis=0) * np.nansum(b * b, axis=0))
        rmse = np.sqrt(np.nanmean(err ** 2, axis=0))
        ub = np.sqrt(np.nanmean((err - np.nanmean(err, axis=0)) ** 2, axis=0))
        entry = {}
        for group, sel in (("all", np.ones(tt.column.size, bool)), ("tb_columns", np.isin(tt.column, tb_cols))):
            if sel.any():
                entry[group] = {"columns": int(sel.sum()), "R": np.nanmean(r[:, sel], axis=1).tolist(),
                                "RMSE": np.nanmean(rmse[:, sel], axis=1).tolist(),
                                "ubRMSE": np.nanmean(ub[:, sel], axis=1).tolist(),
                                "bias": np.nanmean(err[:, :, sel], axis=(0, 2)).tolist()}
        summ = json.loads((d / "summary.json").read_text())
        entry["innovations"] = summ.get("innovations", {})
        inc, inc_tb, jac, jac_tb = [], [], [], []
        for f in sorted((d / "analysis").glob(f"{name}_*.nc")):
            with netCDF4.Dataset(f) as nc:
                if "increment" in nc.variables and len(nc.dimensions["column"]):
                    x = np.asarray(nc["increment"][:], dtype=float)
                    inc.append(x)
                    inc_tb.append(x[np.isin(np.asarray(nc["column"][:]), tb_cols)])
                if "jacobian" in nc.variables and len(nc.dimensions["obs"]):
                    used = np.asarray(nc["reason"][:]) == 0
                    h = np.abs(np.asarray(nc["jacobian"][:], dtype=float)[used])
                    if len(h):
                        rel = h / np.maximum(h.max(axis=1, keepdims=True), 1e-30)
                        jac.append(rel)
                        jac_tb.append(rel[np.isin(np.asarray(nc["obs_column"][:])[used], tb_cols)])
        for key, parts, how in (("mean_abs_increment", inc, np.mean), ("mean_abs_increment_tb_columns", inc_tb,
                                                                        np.mean),
                                ("median_rel_jacobian", jac, np.median), ("median_rel_jacobian_tb_columns", jac_tb,
                                                                          np.median)):
            x = np.concatenate(parts) if parts else np.zeros((0, 1))
            if len(x):
                entry[key] = how(np.abs(x), axis=0).tolist()
        out[name] = entry
    return {"layers": [f"{a * 100:g}-{b * 100:g}cm" for a, b in DIAGNOSIS_LAYERS], "experiments": out}


def main(argv=None) -> int:
    from . import config
    from .errors import UserError
    from .progress import setup_logging

    p = argparse.ArgumentParser(prog="python -m colmda.tb_twin", description=__doc__.split("\n\n")[0])
    p.add_argument("namelist")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE")
    p.add_argument("--enkf", default="", help="registered ensemble method for the Tb EnKF experiment")
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--filter-roughness", type=float, default=None, metavar="H",
                   help="also run the Tb experiments with the filter's operator roughness h = H (suffix _h): an "
                   "operator bias against the truth's &observations tb_roughness")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--diagnose", action="store_true", help="only print the diagnosis (JSON) of a finished Tb twin")
    a = p.parse_args(argv)
    setup_logging("info", 0, 1)
    try:
        s = config.load(a.namelist, overrides=a.overrides)
        if a.diagnose:
            print(json.dumps(diagnose(s.output_directory), indent=1))
            return 0
        run_tb_twin(s, enkf_method=a.enkf, n_members=a.members, filter_roughness=a.filter_roughness,
                    namelist_path=a.namelist, overwrite=a.overwrite)
    except UserError as exc:
        print(f"colmda: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
