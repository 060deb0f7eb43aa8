"""History output: CF attributes, grid and point layouts, file periods, atomic writes and docs/output.md."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from colmda import layout as L
from colmda import output as O

REPO = Path(__file__).resolve().parents[1]
DZ = np.array([0.0175, 0.0276, 0.0455, 0.075, 0.1236, 0.2038, 0.336, 0.5539, 0.9133, 1.137])
T0 = dt.datetime(2005, 6, 1)

# CF standard names used by the table, checked by hand against the CF standard name table (v84)
CF_NAMES = {
    "surface_net_downward_shortwave_flux", "surface_net_downward_longwave_flux", "surface_upward_latent_heat_flux",
    "surface_upward_sensible_heat_flux", "downward_heat_flux_at_ground_level_in_soil", "rainfall_flux",
    "snowfall_flux", "water_evapotranspiration_flux", "transpiration_flux", "water_evaporation_flux_from_soil",
    "water_evaporation_flux_from_canopy", "surface_runoff_flux", "subsurface_runoff_flux", "surface_snow_melt_flux",
    "mass_content_of_water_in_soil_layer", "volume_fraction_of_condensed_water_in_soil", "soil_temperature",
    "surface_snow_amount", "surface_snow_thickness", "surface_snow_area_fraction", "canopy_water_amount",
    "surface_temperature", "canopy_temperature", "surface_albedo",
    "gross_primary_productivity_of_biomass_expressed_as_carbon", "surface_downwelling_shortwave_flux_in_air",
}


def grid_and_columns():
    glat = -89.0 + 2.0 * np.arange(90)
    glon = 1.0 + 2.0 * np.arange(180)
    cols = np.array([60 * 180 + 5, 60 * 180 + 6, 61 * 180 + 5, 62 * 180 + 9])  # a small cluster
    return glat, glon, cols


def fake_diag(ncol, value=1.0):
    d = np.zeros((L.ND, ncol))
    ds = np.zeros((L.NDS, L.NL_SOIL, ncol))
    for i in range(L.ND):
        d[i] = value * (i + 1) + np.arange(ncol)
    ds[L.DS_SOILMOIST] = 100.0 * DZ[:, None] * (1 + 0.01 * np.arange(ncol))
    ds[L.DS_SOILICE] = 10.0 * DZ[:, None]
    ds[L.DS_SOILTEMP] = 280.0
    return d, ds


def make_writer(tmp_path, layout="grid", variables=("default",), period=(1, "d"), averaging="mean", names=()):
    glat, glon, cols = grid_and_columns()
    grid = O.OutputGrid.for_columns(layout, cols, glat, glon, names=names)
    return O.HistoryWriter(tmp_path, experiment="t", variables=O.resolve_variables(variables), grid=grid,
                           dz_soil=DZ, averaging=averaging, frequency="6h", period=period, origin=T0)


def test_table_sources_exist_and_units_present():
    """Every output variable maps to an existing core diagnostic, has units and a long_name, and uses only CF
    standard names from the checked list."""
    for v in O.VARIABLES.values():
        assert v.units and v.long_name
        if v.fn is None:
            assert hasattr(L, v.source), v.name
        if v.standard_name:
            assert v.standard_name in CF_NAMES, v.name
        assert set(v.groups) <= set(O.VARIABLE_GROUPS)
    for required in ("Qle", "Qh", "Qg", "Evap", "TVeg", "ESoil", "ECanop", "Qs", "Qsb", "Qsm", "Rainf", "Snowf",
                     "SWnet", "LWnet", "SoilMoist", "SoilMoistV", "SoilTemp", "SWE", "SnowDepth", "SnowFrac",
                     "AvgSurfT", "RadT", "Albedo", "CanopInt", "WaterTableD", "GPP"):
        assert required in O.VARIABLES
    assert O.resolve_variables(["all"]) == list(O.VARIABLES)
    assert O.resolve_variables(["Qh", "Qle"]) == ["Qle", "Qh"]


def test_volumetric_soil_moisture_from_mass():
    """SoilMoistV = (liquid / 1000 + ice / 917) / dz, layer by layer."""
    d, ds = fake_diag(3)
    x = O.Inputs(d, ds, DZ)
    v = O.compute("SoilMoistV", x)
    liq = ds[L.DS_SOILMOIST] - ds[L.DS_SOILICE]
    np.testing.assert_allclose(v, (liq / 1000 + ds[L.DS_SOILICE] / 917) / DZ[:, None])
    assert O.compute("SoilMoist", x).shape == (L.NL_SOIL, 3)
    np.testing.assert_array_equal(O.compute("Qle", x), d[L.D_QLE])
    # ALMA phase fractions of the same water
    np.testing.assert_allclose(O.compute("SMFrozFrac", x), ds[L.DS_SOILICE] / ds[L.DS_SOILMOIST])
    np.testing.assert_allclose(O.compute("SMLiqFrac", x) + O.compute("SMFrozFrac", x), 1.0)


def test_albedo_is_the_shortwave_weighted_mean_and_undefined_at_night():
    """Albedo of an interval = sum(albedo_i SWdown_i) / sum(SWdown_i) over its steps (computed here from per-step
    values independently of the writer's 1 - mean(SWnet) / mean(SWdown)); _FillValue (NaN) without sunlight."""
    rng = np.random.default_rng(3)
    nstep, ncol = 8, 3
    sw = np.abs(rng.normal(300.0, 200.0, (nstep, ncol)))
    sw[:, 2] = 0.0  # a column in the night
    alb = rng.uniform(0.1, 0.4, (nstep, ncol))
    d, ds = fake_diag(ncol)
    d[L.D_SWNET] = (sw * (1 - alb)).mean(axis=0)
    got = O.compute("Albedo", O.Inputs(d, ds, DZ, swdown=sw.mean(axis=0)))
    want = (alb * sw).sum(axis=0)[:2] / sw.sum(axis=0)[:2]
    np.testing.assert_allclose(got[:2], want, rtol=1e-12)
    assert np.isnan(got[2])
    assert abs(got[0] - alb[:, 0].mean()) > 1e-6  # not the plain mean


def test_grid_file_is_cf_compliant(tmp_path):
    """A grid-layout history file has CF-1.8 coordinates (time with bounds and calendar, lat/lon with bounds,
    depth positive down with bounds), units / long_name / cell_methods on every variable, land values in place
    and _FillValue elsewhere."""
    import netCDF4

    w = make_writer(tmp_path)
    d, ds = fake_diag(4)
    for k in range(4):
        t = T0 + dt.timedelta(hours=6 * (k + 1))
        w.add(t, t - dt.timedelta(hours=6), d, ds)
    files = w.flush(now=T0 + dt.timedelta(days=1))
    assert [f.name for f in files] == ["t_2005-06-01.nc", "t_2005-06-01_inst.nc"]
    inst = netCDF4.Dataset(files[1])
    try:  # ALMA states: instantaneous, stamped at the interval end, no bounds
        assert inst["time"][-1] - inst["time"][0] == 18 * 3600 and "time_bnds" not in inst.variables
        assert inst["time"][0] == (T0 - dt.datetime(1970, 1, 1)).total_seconds() + 6 * 3600
        assert inst["SWE"].cell_methods == "time: point" and "Qle" not in inst.variables
        assert inst.dimensions["time"].isunlimited()
    finally:
        inst.close()
    nc = netCDF4.Dataset(files[0])
    try:
        assert nc.Conventions == "CF-1.8" and nc.history and nc.institution and nc.source
        assert nc.dimensions["time"].isunlimited()
        t = nc["time"]
        assert t.units == "seconds since 1970-01-01 00:00:00" and t.calendar and t.bounds == "time_bnds"
        assert t.standard_name == "time" and len(t) == 4
        tb = nc["time_bnds"][:]
        np.testing.assert_array_equal(0.5 * (tb[:, 0] + tb[:, 1]), t[:])  # stamped at the interval centre
        np.testing.assert_array_equal(tb[:, 1] - tb[:, 0], 6 * 3600)
        assert nc["column"].dtype == np.int32
        assert nc["lat"].units == "degrees_north" and nc["lat"].standard_name == "latitude"
        assert nc["lon"].units == "degrees_east" and nc["lon"].bounds == "lon_bnds"
        dep = nc["depth"]
        assert dep.positive == "down" and dep.units == "m" and dep.bounds == "depth_bnds"
        np.testing.assert_allclose(nc["depth_bnds"][:, 1] - nc["depth_bnds"][:, 0], DZ)
        for name in O.resolve_variables(["default"]):
            if O.VARIABLES[name].cell == "end":
                assert name not in nc.variables
                continue
            v = nc[name]
            assert v.units == O.VARIABLES[name].units and v.long_name
            assert v.cell_methods.startswith("time: mean")
            if O.VARIABLES[name].standard_name:
                assert v.standard_name == O.VARIABLES[name].standard_name
            assert v.filters()["zlib"]
        assert nc["SoilMoistV"].dimensions == ("time", "depth", "lat", "lon")
        qle = nc["Qle"][0]
        col = nc["column"][:]
        land = ~np.ma.getmaskarray(col)
        assert land.sum() == 4
        assert not np.ma.getmaskarray(qle)[land].any() and np.ma.getmaskarray(qle)[~land].all()
        # land values are in the right cells
        _, _, cols = grid_and_columns()
        for k, c in enumerate(cols):
            iy, ix = np.argwhere(col == c)[0]
            assert qle[iy, ix] == pytest.approx(d[L.D_QLE][k])
    finally:
        nc.close()


def test_points_layout(tmp_path):
    """A points-layout file has one entry per column with lat/lon/column/point_name and 'coordinates'."""
    import netCDF4

    w = make_writer(tmp_path, layout="points", names=("a", "b", "c", "d"), averaging="instant")
    d, ds = fake_diag(4)
    w.add(T0 + dt.timedelta(hours=6), T0, d, ds)
    (f,) = w.flush(now=T0, final=True)
    nc = netCDF4.Dataset(f)
    try:
        assert nc["Qh"].dimensions == ("time", "point") and nc["Qh"].coordinates == "lat lon point_name"
        assert nc["Qh"].cell_methods == "time: point" and "time_bnds" not in nc.variables
        assert nc.featureType == "timeSeries" and nc["point_name"].cf_role == "timeseries_id"
        nc.set_auto_chartostring(False)
        assert nc["point_name"].dtype == np.dtype("S1")  # fixed-length characters, not vlen strings
        assert list(netCDF4.chartostring(nc["point_name"][:])) == ["a", "b", "c", "d"]
        np.testing.assert_allclose(nc["Qh"][0], d[L.D_QH], rtol=1e-6)
        assert nc["SoilTemp"].dimensions == ("time", "point", "depth")
        np.testing.assert_allclose(nc["SoilTemp"][0], ds[L.DS_SOILTEMP].T)
    finally:
        nc.close()


def test_file_periods_and_pending_round_trip(tmp_path):
    """Records go to the file of the period where their interval begins; only complete periods are written;
    the open period's records survive a round trip through plain arrays (what a restart stores)."""
    w = make_writer(tmp_path, period=(2, "d"))
    d, ds = fake_diag(4)
    for k in range(12):  # 3 days of 6-hourly records
        t = T0 + dt.timedelta(hours=6 * (k + 1))
        w.add(t, t - dt.timedelta(hours=6), d + k, ds)
    assert w.flush(now=T0 + dt.timedelta(days=1)) == []
    files = w.flush(now=T0 + dt.timedelta(days=3))
    assert [f.name for f in files] == ["t_2005-06-01.nc", "t_2005-06-01_inst.nc"] and len(w.pending) == 4
    arrays = w.pending_arrays()
    w2 = make_writer(tmp_path / "b", period=(2, "d"))
    w2.restore_pending(arrays)
    for a, b in zip(w.pending, w2.pending):
        assert a.time == b.time and a.begin == b.begin
        for n in a.fields:
            np.testing.assert_array_equal(a.fields[n], b.fields[n])
    assert O.file_period_start(dt.datetime(2005, 2, 14), (1, "mo"), T0) == dt.datetime(2005, 2, 1)
    assert O.file_period_end(dt.datetime(2005, 12, 1), (1, "mo")) == dt.datetime(2006, 1, 1)
    assert O.file_stamp(dt.datetime(2005, 2, 1), (1, "mo")) == "2005-02"


def test_identical_records_give_identical_bytes(tmp_path):
    """Two writers fed the same records write byte-identical files (no wall-clock time in the file)."""
    paths = []
    for sub in ("a", "b"):
        w = make_writer(tmp_path / sub)
        d, ds = fake_diag(4)
        w.add(T0 + dt.timedelta(hours=6), T0, d, ds)
        paths += w.flush(now=T0, final=True)
    assert len(paths) == 4
    assert [p.read_bytes() for p in paths[:2]] == [p.read_bytes() for p in paths[2:]]


def test_failed_write_leaves_no_file(tmp_path):
    """A failure in the middle of writing (here: a malformed field met after several variables were written) leaves
    neither the final file nor a temporary, and an existing file of the same name is untouched."""
    w = make_writer(tmp_path)
    d, ds = fake_diag(4)
    w.add(T0 + dt.timedelta(hours=6), T0, d, ds)
    recs = list(w.pending)
    recs[0].fields["SWE"] = np.zeros(3)  # wrong number of columns: fails when SWE is written
    assert w.variables.index("SWE") > 5
    final = tmp_path / "t_2005-06-01.nc"
    with pytest.raises(ValueError):
        O.write_history_file(final, recs, w)
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    final.write_bytes(b"old")
    with pytest.raises(ValueError):
        O.write_history_file(final, recs, w)
    assert final.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_background_writer_writes_the_same_bytes_and_waits(tmp_path, monkeypatch):
    """The writer process (what a run uses) writes byte-identical files to the in-process writer; a restart's
    pending_arrays() and the final flush return only when the handed-over files are on disk; every file is
    written in the order of submission."""
    monkeypatch.delenv(O.WRITER_ENV, raising=False)
    d, ds = fake_diag(4)
    outs = {}
    for mode in ("inline", "process"):
        w = make_writer(tmp_path / mode)
        if mode == "process":
            assert w.start_background()
            child = w._background.proc
            assert child.poll() is None and child.pid != __import__("os").getpid()
        for k in range(12):  # 3 days of 6-hourly records, daily files
            t = T0 + dt.timedelta(hours=6 * (k + 1))
            w.add(t, t - dt.timedelta(hours=6), d + k, ds)
            w.flush(now=t)
        w.pending_arrays()  # as a restart does: the finished days are on disk now
        assert sorted(p.name for p in (tmp_path / mode).glob("*.nc")) == [
            f"t_2005-06-0{i}{s}.nc" for i in (1, 2, 3) for s in ("", "_inst")]
        w.add(T0 + dt.timedelta(days=3, hours=6), T0 + dt.timedelta(days=3), d, ds)
        w.flush(now=T0 + dt.timedelta(days=4), final=True)
        if mode == "process":
            assert w._background is None and child.poll() == 0  # closed by the final flush
        outs[mode] = {p.name: p.read_bytes() for p in (tmp_path / mode).glob("*.nc")}
    assert len(outs["inline"]) == 8 and outs["inline"] == outs["process"]


def test_background_writer_reports_a_failed_file(tmp_path, monkeypatch):
    """A file the writer process cannot write is reported in the run (RuntimeError naming the file and the cause) at
    the next wait, and no temporary is left behind."""
    monkeypatch.delenv(O.WRITER_ENV, raising=False)
    w = make_writer(tmp_path)
    assert w.start_background()
    d, ds = fake_diag(4)
    w.add(T0 + dt.timedelta(hours=6), T0, d, ds)
    w.pending[0].fields["SWE"] = np.zeros(3)  # wrong number of columns: fails in the child
    w.flush(now=T0 + dt.timedelta(days=1))
    with pytest.raises(RuntimeError, match=r"t_2005-06-01_inst\.nc failed in the writer process: ValueError"):
        w.wait()  # SWE is a state: it is in the _inst file, which fails; the means file is written
    assert (tmp_path / "t_2005-06-01.nc").exists() and not (tmp_path / "t_2005-06-01_inst.nc").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    w._background.close()


def test_inline_writer_by_environment(tmp_path, monkeypatch):
    """COLMDA_HISTORY_WRITER=inline keeps the writing in the run's process (flush returns with the file written)."""
    monkeypatch.setenv(O.WRITER_ENV, "inline")
    w = make_writer(tmp_path)
    assert not w.start_background()
    d, ds = fake_diag(4)
    w.add(T0 + dt.timedelta(hours=6), T0, d, ds)
    assert all(p.exists() for p in w.flush(now=T0 + dt.timedelta(days=1)))


def test_grid_window_wraps_across_the_prime_meridian():
    """Columns on both sides of 0 deg E give one contiguous, increasing longitude window."""
    glat = np.array([-10.0, 0.0, 10.0])
    glon = np.arange(0.5, 360.0, 1.0)
    cols = np.array([1 * 360 + 358, 1 * 360 + 359, 1 * 360 + 0, 2 * 360 + 2])
    g = O.OutputGrid.for_columns("grid", np.sort(cols), glat, glon)
    assert np.all(np.diff(g.lon) > 0) and len(g.lon) == 5 and g.lon[0] == pytest.approx(-1.5)
    assert len(g.lat) == 2
    for c, iy, ix in zip(np.sort(cols), g.iy, g.ix):
        assert glat[c // 360] == g.lat[iy] and (glon[c % 360] - g.lon[ix]) % 360 == pytest.approx(0)


def test_grid_window_of_a_global_run_is_the_whole_grid():
    """When every longitude holds a column the window is the domain grid itself, in its own order."""
    glat = np.array([-10.0, 0.0, 10.0])
    glon = np.arange(0.5, 360.0, 1.0)
    cols = np.concatenate([np.arange(360), 2 * 360 + np.arange(0, 360, 7)])
    g = O.OutputGrid.for_columns("grid", cols, glat, glon)
    np.testing.assert_array_equal(g.lon, glon)
    np.testing.assert_array_equal(g.ix, cols % 360)


def test_docs_output_agrees_with_table():
    """docs/output.md holds exactly the variable table generated from output.VARIABLES."""
    from colmda.config import generated_section

    doc = (REPO / "docs" / "output.md").read_text()
    assert generated_section(doc, O.DOC_BEGIN, O.DOC_END) == O.variables_markdown()
