"""The Tb twin driver end to end (python -m colmda.tb_twin, namelists/twin_tb_test.nml: 25 columns, 6 days)."""

import json
from pathlib import Path

import netCDF4
import numpy as np

from colmda import config
from colmda.tb_twin import diagnose, run_tb_twin

REPO = Path(__file__).resolve().parents[1]


def _rows(run_dir, name):
    out = []
    for f in sorted((run_dir / "analysis").glob(f"{name}_*.nc")):
        with netCDF4.Dataset(f) as nc:
            if len(nc.dimensions["obs"]):
                out.append({k: np.asarray(nc[v][:]) for k, v in (("column", "obs_column"), ("sensor", "sensor"),
                                                                  ("time", "time"), ("reason", "reason"),
                                                                  ("hx", "hx"), ("value", "value"),
                                                                  ("value_raw", "value_raw"))})
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def test_tb_twin_fits_the_climatology_in_the_open_loop_and_the_rescaled_innovations_have_zero_mean(tmp_path):
    """The monitor run is the open loop (its history equals CTL's bit for bit); it writes the climatology, and the
    next monitor run with it has, on every (column, polarisation), innovations y' - H(x) of zero mean (the 7-pentad
    window covers the whole 6-day run, so each mean is over exactly the rows rescaled); its H(x) are the first
    monitor's (the same open loop); the Tb experiments are appended to matrix.json and diagnosed."""
    s = config.load(REPO / "namelists" / "twin_tb_test.nml", overrides=[f"output.directory={tmp_path}"])
    run_tb_twin(s, namelist_path="twin_tb_test.nml")
    root = tmp_path
    with netCDF4.Dataset(root / "tb_climatology.nc") as nc:
        assert nc.sensors == "TbH,TbV" and int(nc.window_pentads) == 7
    for v in ("SoilMoistV",):
        h1 = sorted((root / "CTL" / "history").glob("CTL_*[0-9].nc"))
        h2 = sorted((root / "OL_monitor" / "history").glob("OL_monitor_*[0-9].nc"))
        assert len(h1) == len(h2) > 0
        for a, b in zip(h1, h2):
            with netCDF4.Dataset(a) as x, netCDF4.Dataset(b) as y:
                np.testing.assert_array_equal(x[v][:], y[v][:])
    first, rs = _rows(root / "OL_monitor", "OL_monitor"), _rows(root / "OL_monitor_rs", "OL_monitor_rs")
    u = rs["reason"] == 0
    assert u.sum() > 100
    np.testing.assert_array_equal(rs["hx"][u], first["hx"][u])  # same rows in the same order, same open loop
    d = rs["value"][u] - rs["hx"][u]
    raw = rs["value_raw"][u] - rs["hx"][u]
    keys = rs["column"][u] * 2 + rs["sensor"][u]
    for key in np.unique(keys):
        m = keys == key
        assert abs(d[m].mean()) < 1e-9
    assert np.abs([raw[keys == key].mean() for key in np.unique(keys)]).max() > 1.0
    m = json.loads((root / "matrix.json").read_text())
    assert {"CTL", "L", "TB", "TB_raw"} <= {e["name"] for e in m["experiments"]}
    dg = diagnose(root)["experiments"]
    assert dg["TB"]["innovations"]["TbH"]["units"] == "K" and "median_rel_jacobian" in dg["TB"]
