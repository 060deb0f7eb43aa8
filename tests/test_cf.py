"""Output read by the tools land-surface users run: CF checkers, NCO, CDO, xarray; ALMA water budget closure.

Every file kind colmda writes as netCDF (history means and instantaneous states, grid and point layouts,
instantaneous-averaging history, observation files, in-situ station files, reference fields, analysis
diagnostics) is checked with compliance-checker (CF-1.8) and cfchecker: no errors, no warnings. Restart files
are internal (read back only by colmda) and are not checked here. Skill outputs are CSV/Markdown, not netCDF.

The run fixture is the tiny real-core experiment of ``namelists/test_small.nml`` (80 columns, 4 days) with every
output variable, 6-hourly means and float64 output.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colmda import config
from colmda import output as O

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


def small_settings(directory, *overrides):
    text = (REPO / "namelists" / "test_small.nml").read_text()
    return config.loads(text, source="test_small.nml",
                        overrides=[f"output.directory={directory}", "output.variables=all",
                                   "output.precision=float64", *overrides])


@pytest.fixture(scope="module")
def run6h(tmp_path_factory):
    """Run directory of the 6-hourly mean experiment (history files of 2 days each, 4 days)."""
    from colmda import run as R

    d = tmp_path_factory.mktemp("cf") / "run"
    R.run(small_settings(d, "output.frequency=6h"), progress=False)
    return d


def history(rundir, inst=False):
    files = sorted((rundir / "history").glob("*.nc"))
    return [p for p in files if p.name.endswith("_inst.nc") == inst]


# ---------------------------------------------------------------------------------------------------------------
# files of every kind


def _obs_file(d: Path) -> Path:
    from colmda.obs.format import ObsTable, write_obs

    n = 5
    t = np.datetime64("2005-06-01T06:00:00", "s") + np.arange(n) * np.timedelta64(3600, "s")
    table = ObsTable("SMAP", "volumetric", 0.05, t, np.arange(n) * 7, np.linspace(40, 41, n), np.linspace(5, 6, n),
                     np.linspace(0.1, 0.3, n), np.full(n, 0.04), np.full(n, np.nan), np.zeros(n, np.int32),
                     source="test")
    return write_obs(d / "obs_smap.nc", table)


def _insitu_file(d: Path) -> Path:
    from colmda.obs.insitu import InsituTable, write_insitu

    t = np.datetime64("2005-06-01", "s") + np.arange(4) * np.timedelta64(86400, "s")
    tab = InsituTable(time=t, sm=np.linspace(0.1, 0.3, 12).reshape(4, 3), column=np.array([3, 9, 27]),
                      station_lat=np.array([40.1, 41.2, 42.3]), station_lon=np.array([5.1, 6.2, 7.3]),
                      station_name=np.array(["SIM0000", "SIM0001", "LONG-NAME-2"], dtype=object),
                      pft=np.array([1, 2, 3], np.int32))
    return write_insitu(d / "insitu.nc", tab)


def _reference_file(d: Path) -> Path:
    from colmda.obs.insitu import ReferenceField, write_reference

    t = np.datetime64("2005-06-01", "s") + np.arange(4) * np.timedelta64(86400, "s")
    ref = ReferenceField(time=t, sm=np.linspace(0.1, 0.3, 4 * 3 * 2).reshape(4, 3, 2),
                         layer_top=np.array([0.0, 0.07, 0.28]), layer_bottom=np.array([0.07, 0.28, 1.0]),
                         column=np.array([3, 9]), lat=np.array([40.0, 41.0]), lon=np.array([5.0, 6.0]))
    return write_reference(d / "reference.nc", ref)


def _analysis_file(d: Path) -> Path:
    from colmda.assim.diagnostics import AnalysisWriter

    class Root:
        is_root = True

    w = AnalysisWriter(Root(), d / "analysis", "x", ("SMAP", "ASCAT"), 3)
    n, m = 4, 2
    rows = {"time": np.datetime64("2005-06-01T06:00:00", "s") + np.arange(n) * np.timedelta64(3600, "s"),
            "column": np.array([3, 3, 9, 9]), "sensor": np.array([0, 1, 0, 1], np.int32),
            "value": np.full(n, 0.2), "error": np.full(n, 0.04), "reason": np.array([0, 0, 3, 0], np.int32),
            "hx": np.full(n, 0.21), "innovation": np.full(n, -0.01), "jacobian": np.ones((n, 3)) / 3,
            "gain": np.ones((n, 3)) * 0.1, "linearity": np.zeros(n)}
    cols = {"column": np.array([3, 9]), "background": np.full((m, 3), 0.2), "increment": np.zeros((m, 3)),
            "increment_unbounded": np.zeros((m, 3)), "analysis_std": np.full((m, 3), 0.02),
            "water_added": np.zeros(m)}
    return w._write_file(dt.datetime(2005, 6, 2), rows, cols)


def _tb_analysis_file(d: Path) -> Path:
    """Analysis diagnostics of a Tb run (units K, value_raw, the 'no Tb climatology' reason)."""
    from colmda.assim.diagnostics import AnalysisWriter

    class Root:
        is_root = True

    w = AnalysisWriter(Root(), d / "tb_analysis", "tb", ("TbH", "TbV"), 3, units=("K", "K"))
    n, m = 4, 2
    rows = {"time": np.datetime64("2005-06-01T06:00:00", "s") + np.arange(n) * np.timedelta64(3600, "s"),
            "column": np.array([3, 3, 9, 9]), "sensor": np.array([0, 1, 0, 1], np.int32),
            "value": np.full(n, 250.0), "value_raw": np.full(n, 252.0), "error": np.full(n, 4.0),
            "reason": np.array([0, 0, 8, 0], np.int32), "hx": np.full(n, 251.0), "innovation": np.full(n, -1.0),
            "jacobian": np.full((n, 3), -30.0), "gain": np.full((n, 3), 1e-3)}
    cols = {"column": np.array([3, 9]), "background": np.full((m, 3), 0.2), "increment": np.zeros((m, 3)),
            "increment_unbounded": np.zeros((m, 3)), "analysis_std": np.full((m, 3), 0.02),
            "water_added": np.zeros(m)}
    return w._write_file(dt.datetime(2005, 6, 2), rows, cols)


def _tb_climatology_file(d: Path) -> Path:
    from colmda.obs import tb_climatology as C

    rng = np.random.default_rng(0)
    n = 400
    t = np.datetime64("2005-01-01T06:00", "s") + rng.integers(0, 365, n) * np.timedelta64(86400, "s")
    clim = C.fit(("TbH", "TbV"), rng.integers(0, 2, n), rng.choice([3, 9], n), t, rng.normal(250, 5, n),
                 rng.normal(248, 5, n), min_count=3)
    return C.write_climatology(d / "tb_climatology.nc", clim)


def _product_file(d: Path) -> Path:
    """A real-product observation file (reader output: the obs format plus pixel counts and statistics)."""
    from colmda.obs.format import read_obs
    from colmda.obs.readers._common import ProductObservations, write_product_obs

    t = read_obs(_obs_file(d))
    n = len(t)
    res = ProductObservations(t, np.full(n, 4, np.int32), np.full(n, 0.01), {"read": 40, "flagged": 20}, "smap_l2",
                              ["SMAP_L2_SM_P_E_2017.h5"])
    return write_product_obs(d / "obs_product.nc", res)


def _bias_file(d: Path) -> Path:
    from colmda.obs.bias import BiasParameters, write_bias

    ns, nc_, nb = 2, 3, 11
    rng = np.random.default_rng(0)
    b = BiasParameters("cdf", ("L", "C"), np.array([3, 9, 27]), np.full((ns, nc_), 40),
                       np.sort(rng.uniform(0, 0.4, (ns, nc_, nb)), axis=-1),
                       np.sort(rng.uniform(0, 0.4, (ns, nc_, nb)), axis=-1), rng.uniform(0.05, 0.3, (ns, nc_, 12, 4)),
                       np.ones((ns, nc_, 12)), "2015-01-01T00:00:00", "2016-01-01T00:00:00", 30)
    return write_bias(d / "bias.nc", b)


def _points_files(d: Path) -> list[Path]:
    """A points-layout history (mean: main + instantaneous file) from the writer, with site names."""
    from colmda import layout as L

    glat = -89.0 + 2.0 * np.arange(90)
    glon = 1.0 + 2.0 * np.arange(180)
    grid = O.OutputGrid.for_columns("points", [60 * 180 + 5, 61 * 180 + 9], glat, glon, names=("DK-Fou", "x"))
    dz = np.full(L.NL_SOIL, 0.1)
    w = O.HistoryWriter(d / "points", experiment="p", variables=O.resolve_variables(["all"]), grid=grid,
                        dz_soil=dz, averaging="mean", frequency="6h", period=(1, "d"),
                        origin=dt.datetime(2005, 6, 1))
    rng = np.random.default_rng(0)
    for k in range(4):
        dd = rng.uniform(1, 2, (L.ND, 2))
        ds = rng.uniform(10, 20, (L.NDS, L.NL_SOIL, 2))
        ds[L.DS_SOILICE] = 1.0
        t1 = dt.datetime(2005, 6, 1) + dt.timedelta(hours=6 * (k + 1))
        w.add(t1, t1 - dt.timedelta(hours=6), O.Inputs(dd, ds, dz, end_d=dd, end_ds=ds, swdown=np.full(2, 100.0),
                                                        dels=np.zeros((len(O.STORES), 2))))
    return w.flush(dt.datetime(2005, 6, 2), final=True)


@pytest.fixture(scope="module")
def every_file(run6h, tmp_path_factory):
    """(kind, path) of one file of every kind colmda writes."""
    from colmda import run as R

    d = tmp_path_factory.mktemp("kinds")
    inst_run = d / "instant"
    R.run(small_settings(inst_run, "output.frequency=3h", "output.averaging=instant", "output.file_period=1mo"),
          progress=False)
    points = _points_files(d)
    return [("history mean (grid)", history(run6h)[0]), ("history states (grid)", history(run6h, inst=True)[0]),
            ("history instant (grid)", sorted((inst_run / "history").glob("*.nc"))[0]),
            ("history mean (points)", points[0]), ("history states (points)", points[1]),
            ("observations", _obs_file(d)), ("in-situ stations", _insitu_file(d)),
            ("reference field", _reference_file(d)), ("analysis diagnostics", _analysis_file(d)),
            ("bias parameters", _bias_file(d)), ("product observations", _product_file(d)),
            ("Tb analysis diagnostics", _tb_analysis_file(d)), ("Tb climatology", _tb_climatology_file(d))]


KINDS = ["history mean (grid)", "history states (grid)", "history instant (grid)", "history mean (points)",
         "history states (points)", "observations", "in-situ stations", "reference field", "analysis diagnostics",
         "bias parameters", "product observations", "Tb analysis diagnostics", "Tb climatology"]


@pytest.mark.parametrize("kind", KINDS)
def test_compliance_checker_cf18(every_file, kind):
    """IOOS compliance-checker, CF-1.8 suite, strict criteria: "All tests passed!" (no corrective action and no
    warning of any priority; the JSON report would leave the unscored warnings out, so the text report is read)."""
    pytest.importorskip("compliance_checker")
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    path = dict(every_file)[kind]
    CheckSuite.load_all_available_checkers()
    out = path.parent / f"{path.stem}.cc.txt"
    ok, errors = ComplianceChecker.run_checker(str(path), ["cf:1.8"], 0, "strict", output_filename=str(out),
                                               output_format="text")
    report = out.read_text()
    assert ok and not errors and "All tests passed!" in report, report[-3000:]


def _cf_tables(d: Path) -> list[str]:
    """cfchecks options: the standard name table shipped with compliance-checker (cfchecks would download it)
    and empty area-type / region tables (colmda files use neither area_type nor region names)."""
    import compliance_checker

    names = Path(compliance_checker.__file__).parent / "data" / "cf-standard-name-table.xml"
    area = d / "area-type-table.xml"
    region = d / "region-table.xml"
    area.write_text('<?xml version="1.0"?>\n<area_type_table><version_number>0</version_number>'
                    "<date>none</date></area_type_table>\n")
    region.write_text('<?xml version="1.0"?>\n<standardized_region_list><version_number>0</version_number>'
                      "<date>none</date></standardized_region_list>\n")
    return ["-s", str(names), "-a", str(area), "-r", str(region)]


@pytest.mark.parametrize("kind", KINDS)
def test_cfchecker(every_file, kind, tmp_path):
    """cfchecker (NCAS CF checker), CF-1.8: 0 errors and 0 warnings."""
    pytest.importorskip("cfchecker")
    pytest.importorskip("compliance_checker")
    try:
        import cfunits  # noqa: F401  (loads the UDUNITS-2 C library, Debian package libudunits2-0)
    except Exception as exc:  # OSError / FileNotFoundError when the C library is missing
        pytest.skip(f"cfchecker's unit library cannot load UDUNITS-2 ({exc}); scripts/setup.sh installs it as root")
    path = dict(every_file)[kind]
    exe = BIN / "cfchecks"
    if not exe.exists():
        pytest.skip("cfchecks is not installed next to the Python interpreter")
    r = subprocess.run([str(exe), "-v", "1.8", *_cf_tables(tmp_path), str(path)], capture_output=True, text=True,
                       timeout=300)
    out = r.stdout
    assert "ERRORS detected: 0" in out and "WARNINGS given: 0" in out, out[-3000:]


# ---------------------------------------------------------------------------------------------------------------
# time stamps that daily aggregation gets right


def test_xarray_resample_daily_counts(run6h):
    """xarray resample('1D') of 4 days of 6-hourly means gives exactly the 4 days with 4 records each, and the
    daily means equal the means of each day's records (selected by their time_bnds)."""
    import xarray as xr

    ds = xr.concat([xr.open_dataset(p) for p in history(run6h)], "time", data_vars="minimal", coords="minimal",
                   compat="override")
    with ds:
        counts = ds["Qle"].isel(lat=0, lon=0).resample(time="1D").count()
        days = counts["time"].values.astype("datetime64[D]")
        np.testing.assert_array_equal(days, np.arange("2005-06-01", "2005-06-05", dtype="datetime64[D]"))
        land = np.isfinite(ds["Qle"].isel(time=0).values)
        iy, ix = np.argwhere(land)[0]
        q = ds["Qle"].isel(lat=iy, lon=ix)
        np.testing.assert_array_equal(q.resample(time="1D").count().values, [4, 4, 4, 4])
        begin = ds["time_bnds"].values[:, 0].astype("datetime64[D]")
        for k, day in enumerate(days):
            assert float(q.resample(time="1D").mean()[k]) == pytest.approx(float(q.values[begin == day].mean()))


def _tool(name):
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (Debian package '{'nco' if name.startswith('nc') else name}'; "
                    "scripts/setup.sh installs it when run as root)")
    return exe


def test_cdo_daymean_gives_the_right_days(run6h, tmp_path):
    """cdo daymean over the 6-hourly files merged with cdo mergetime: 4 days (not 5), each the mean of the 4
    records whose intervals lie in that day, and colmda's history reader reads CDO's rewritten file (its own
    time units) as the same days."""
    import netCDF4

    from colmda.timeaxis import decode

    cdo = _tool("cdo")
    merged, daily = tmp_path / "merged.nc", tmp_path / "daily.nc"
    subprocess.run([cdo, "-s", "mergetime", *map(str, history(run6h)), str(merged)], check=True, timeout=300)
    subprocess.run([cdo, "-s", "daymean", str(merged), str(daily)], check=True, timeout=300)
    with netCDF4.Dataset(daily) as nc, netCDF4.Dataset(merged) as m:
        t = nc["time"]
        days = decode(t[:], t.units, getattr(t, "calendar", "standard")).astype("datetime64[D]")
        np.testing.assert_array_equal(days, np.arange("2005-06-01", "2005-06-05", dtype="datetime64[D]"))
        qd = np.asarray(nc["Qle"][:], dtype=float)
        q6 = np.asarray(m["Qle"][:], dtype=float)
        land = q6[0] < 1e19
        np.testing.assert_allclose(qd[:, land], q6.reshape(4, 4, *q6.shape[1:]).mean(axis=1)[:, land], rtol=1e-6)
    # the evaluation's reader accepts CDO's time units
    from colmda.evaluation.history import load_soil_moisture

    rd = tmp_path / "cdo_run"
    (rd / "history").mkdir(parents=True)
    subprocess.run([cdo, "-s", "daymean", "-selname,SoilMoistV,dz,column,depth_bnds", str(merged),
                    str(rd / "history" / "small_2005-06-01.nc")], check=True, timeout=300)
    ours = load_soil_moisture(run6h)
    theirs = load_soil_moisture(rd)
    np.testing.assert_array_equal(theirs.time, ours.time)
    np.testing.assert_allclose(theirs.theta, ours.theta, rtol=1e-6)


def test_ncrcat_concatenates_history_files(run6h, tmp_path):
    """NCO ncrcat joins the history files along the unlimited time dimension: all 16 records in order, with their
    bounds, and the joined file is still read by colmda's reader."""
    import netCDF4

    ncrcat = _tool("ncrcat")
    out = tmp_path / "all.nc"
    subprocess.run([ncrcat, "-O", *map(str, history(run6h)), str(out)], check=True, timeout=300)
    with netCDF4.Dataset(out) as nc:
        assert nc.dimensions["time"].isunlimited() and len(nc.dimensions["time"]) == 16
        t = nc["time"][:]
        assert np.all(np.diff(t) == 6 * 3600)
        np.testing.assert_array_equal(nc["time_bnds"][:, 1] - nc["time_bnds"][:, 0], 6 * 3600)
    rd = tmp_path / "joined"
    (rd / "history").mkdir(parents=True)
    shutil.copy(out, rd / "history" / "small_2005-06-01.nc")
    from colmda.evaluation.history import load_soil_moisture

    np.testing.assert_array_equal(load_soil_moisture(rd).theta, load_soil_moisture(run6h).theta)


def test_history_reader_accepts_other_time_units(run6h, tmp_path):
    """A history file whose time units another tool rewrote ('hours since 2005-06-01 00:00:00') reads as the same
    days (times decoded by cftime, not a fixed 'seconds since 1970' units string)."""
    import netCDF4

    from colmda.evaluation.history import load_soil_moisture

    rd = tmp_path / "rewritten"
    (rd / "history").mkdir(parents=True)
    base = 1117584000.0  # 2005-06-01 in seconds since 1970
    for p in history(run6h):
        q = rd / "history" / p.name
        shutil.copy(p, q)
        with netCDF4.Dataset(q, "a") as nc:
            for name in ("time", "time_bnds"):
                nc[name][:] = (nc[name][:] - base) / 3600.0
            nc["time"].units = "hours since 2005-06-01 00:00:00"
    a, b = load_soil_moisture(run6h), load_soil_moisture(rd)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.theta, b.theta)


# ---------------------------------------------------------------------------------------------------------------
# ALMA


@pytest.mark.parametrize("frequency", ["6h", "1d", "2d"])
def test_storage_changes_close_the_water_budget(frequency, run6h, tmp_path):
    """DelSoilMoist + DelSWE + DelSurfStor + DelIntercept + DelGroundwStor = (Rainf + Snowf - Evap - Qs - Qsb) *
    interval length, for every column and interval (to 1e-9 kg m-2 of budgets of up to ~20 kg m-2), for output
    intervals shorter than, equal to and longer than the forecast window; and the end-of-interval states in the
    *_inst files differ by exactly the Del terms between consecutive intervals (no analysis in a control run)."""
    import xarray as xr

    from colmda import run as R

    if frequency == "6h":
        d = run6h
    else:
        d = tmp_path / "run"
        R.run(small_settings(d, f"output.frequency={frequency}"), progress=False)
    ds = xr.concat([xr.open_dataset(p) for p in history(d)], "time", data_vars="minimal", coords="minimal",
                   compat="override")
    st = xr.concat([xr.open_dataset(p) for p in history(d, inst=True)], "time", data_vars="minimal",
                   coords="minimal", compat="override")
    length = (ds.time_bnds[:, 1] - ds.time_bnds[:, 0]).astype("timedelta64[s]").astype(float)
    net = (ds.Rainf + ds.Snowf - ds.Evap - ds.Qs - ds.Qsb) * length
    dels = ds.DelSoilMoist + ds.DelSWE + ds.DelSurfStor + ds.DelIntercept + ds.DelGroundwStor
    land = np.isfinite(net.values)
    assert land.sum() > 0 and float(np.abs(net.values[land]).max()) > 1.0  # a budget that means something
    np.testing.assert_allclose(dels.values[land], net.values[land], rtol=0, atol=1e-9)
    soil = st.SoilMoist.sum("depth", skipna=False)
    np.testing.assert_allclose(soil.diff("time").values[land[1:]], ds.DelSoilMoist.values[1:][land[1:]], atol=1e-9)
    np.testing.assert_allclose(st.SWE.diff("time").values[land[1:]], ds.DelSWE.values[1:][land[1:]], atol=1e-9)
    # state stamps are interval ends, mean stamps interval centres
    np.testing.assert_array_equal(st.time.values, ds.time_bnds.values[:, 1])
    np.testing.assert_array_equal(ds.time.values, ds.time_bnds.values[:, 0] + (ds.time_bnds.values[:, 1]
                                                                               - ds.time_bnds.values[:, 0]) / 2)


def test_alma_state_units_and_fractions(run6h):
    """SoilMoistV in m3 m-3, SMLiqFrac + SMFrozFrac = 1 where the layer holds water, Albedo filled at night and
    within (0, 1) in daylight, states marked 'time: point' and means 'time: mean'."""
    import xarray as xr

    with xr.open_dataset(history(run6h)[0]) as ds, xr.open_dataset(history(run6h, inst=True)[0]) as st:
        assert ds.SoilMoistV.attrs["units"] == "m3 m-3"
        frac = (st.SMLiqFrac + st.SMFrozFrac).values
        ok = np.isfinite(frac)
        assert ok.sum() > 0 and np.allclose(frac[ok], 1.0)
        assert st.SoilMoist.attrs["cell_methods"] == "time: point"
        assert ds.Qle.attrs["cell_methods"] == "time: mean" and ds.DelSWE.attrs["cell_methods"] == "time: sum"
        alb = ds.Albedo.values
        sw = ds.SWdown.values
        land = np.isfinite(sw)
        assert np.all(np.isnan(alb[land & (sw <= O.ALBEDO_MIN_SWDOWN)]))
        day = land & (sw > 50.0)
        assert day.sum() > 0 and np.all((alb[day] > 0.02) & (alb[day] < 0.9))


def test_end_states_same_from_blockwise_and_stepwise_forecasts(run6h, tmp_path):
    """The end-of-interval states (and everything else in the history) are byte-identical whether the forecast runs
    one core call per output interval (control run) or step by step (here: a run that simulates L and C
    retrievals, which takes the step-by-step path): the state is recorded at the same instants either way."""
    from colmda import run as R

    d = tmp_path / "sim"
    R.run(small_settings(d, "output.frequency=6h", "observations.simulate=L,C"), progress=False)
    a = {p.name: p.read_bytes() for p in (run6h / "history").glob("*.nc")}
    b = {p.name: p.read_bytes() for p in (d / "history").glob("*.nc")}
    assert sorted(a) == sorted(b) and any(k.endswith("_inst.nc") for k in a)
    assert all(a[k] == b[k] for k in a)


# ---------------------------------------------------------------------------------------------------------------
# time decoding through cftime


def test_timeaxis_decodes_any_cf_units():
    """colmda.timeaxis gives the same UTC instants for the same times written in different CF units (including a
    zone offset in the units, read by cftime), reports the offset, and refuses calendars without leap days and
    non-time units with a UserError naming the variable."""
    from colmda.errors import UserError
    from colmda.timeaxis import decode, units_offset_hours

    want = np.array(["2005-06-01T06:00:00", "2005-06-02T18:30:00"], dtype="datetime64[s]")
    sec = (want - EPOCH).astype(np.int64).astype(float)
    cases = [(sec, "seconds since 1970-01-01 00:00:00", None),
             ((sec - sec[0]) / 3600.0 + 6.0, "hours since 2005-06-01", None),
             ((sec - sec[0]) / 86400.0 + 0.25, "days since 2005-06-01T00:00:00Z", 0.0),
             ((sec - sec[0]) / 60.0 + 7 * 60, "minutes since 2005-06-01 00:00:00 +01:00", 1.0),
             ((sec - sec[0]) / 3600.0 + 0.5, "hours since 2005-06-01 00:00:00 -05:30", -5.5)]
    for values, units, offset in cases:
        np.testing.assert_array_equal(decode(values, units, "proleptic_gregorian"), want, err_msg=units)
        assert units_offset_hours(units) == offset, units
    with pytest.raises(UserError, match="f.nc: variable 'time': calendar 'noleap'"):
        decode([0.0], "days since 2000-01-01", "noleap", where="f.nc: variable 'time'")
    with pytest.raises(UserError, match="cannot be decoded"):
        decode([0.0], "kg m-2", where="f.nc")


PLUMBER = Path("/work/shared/data/real/fluxnet/plumber2/DK-Fou_2005-2005_FLUXNET2015_Met.nc")


@pytest.mark.skipif(not PLUMBER.exists(), reason="PLUMBER2 sample not present")
def test_forcing_reader_time_units_through_cftime(tmp_path):
    """The PLUMBER2 reader gives the same UTC times when the file's time units are rewritten ('days since 2000-01-01'
    instead of 'seconds since 2005-01-01 00:00:00'), and takes the UTC offset from a zone written in the units."""
    import netCDF4

    from colmda.forcing.readers import Plumber2Reader

    ref = Plumber2Reader(PLUMBER)
    a = tmp_path / "days.nc"
    shutil.copy(PLUMBER, a)
    with netCDF4.Dataset(a, "a") as nc:
        t = nc["time"]
        t[:] = t[:] / 86400.0 + (np.datetime64("2005-01-01") - np.datetime64("2000-01-01")).astype(int)
        t.units = "days since 2000-01-01"
    np.testing.assert_array_equal(Plumber2Reader(a).times(), ref.times())
    b = tmp_path / "zone.nc"
    shutil.copy(PLUMBER, b)
    with netCDF4.Dataset(b, "a") as nc:
        nc["time"].units = "seconds since 2005-01-01 00:00:00 +01:00"
    rb = Plumber2Reader(b)
    assert rb.utc_offset_hours == 1.0 and rb.utc_offset_source == "time units"
    np.testing.assert_array_equal(rb.times(), ref.times())
