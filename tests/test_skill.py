"""Evaluation of twin experiments: metrics, layer aggregation, history reading, the matrix driver, the summary files
and figures, and the errors for bad input (colmda.evaluation.history / skill / summary / figures)."""

import dataclasses
import datetime as dt
import json
import shutil

import numpy as np
import pytest
from scipy import stats

from colmda import layout as L
from colmda import output as O
from colmda.domain import Domain, default_domain_path
from colmda.errors import UserError
from colmda.evaluation import figures as F
from colmda.evaluation import metrics
from colmda.evaluation import skill as S
from colmda.evaluation import summary as SM
from colmda.evaluation.history import load_soil_moisture
from colmda.obs.operators import EVALUATION_LAYERS, nodes, point_weights
from colmda.pft import PFT_NAMES

DZ = np.array([0.0175, 0.0276, 0.0455, 0.075, 0.1236, 0.2038, 0.336, 0.5539, 0.9133, 1.137])
T0 = dt.datetime(2005, 6, 1)
NT, NFC = 40, 20  # days in the experiment; the forecast phase starts on day NFC (2005-06-21)
SD_CTL, SD_DA, SD_LC, SD_NEW = 0.05, 0.015, 0.02, 0.012


def sd_schedule(name):
    """Noise standard deviation of each fabricated experiment on each day (m3 m-3)."""
    k = np.arange(NT)
    if name == "CTL":
        return np.full(NT, SD_CTL)
    if name == "L_fc":  # assimilation, then the error relaxes linearly back to the control's
        return np.where(k < NFC, SD_DA, SD_DA + (SD_CTL - SD_DA) * (k - NFC + 1) / (NT - NFC))
    return np.full(NT, {"LC": SD_LC, "NEW": SD_NEW}[name])


def write_history(directory, name, theta, columns, layout, dom, variables=("SoilMoistV",), period=(10, "d"),
                  hours=24):
    """History files through the real writer: daily means of theta (NT, nl, ncol) (m3 m-3), ice free."""
    grid = O.OutputGrid.for_columns(layout, columns, dom.lat, dom.lon)
    w = O.HistoryWriter(directory / "history", experiment=name, variables=list(variables), grid=grid,
                        dz_soil=DZ, averaging="mean", frequency=f"{hours}h", period=period, origin=T0)
    ncol = len(columns)
    d = np.zeros((L.ND, ncol))
    ds = np.zeros((L.NDS, L.NL_SOIL, ncol))
    per_day = 24 // hours
    for k in range(NT * per_day):
        ds[L.DS_SOILMOIST] = theta[k // per_day] * DZ[:, None] * 1000.0
        t = T0 + dt.timedelta(hours=hours * (k + 1))
        w.add(t, t - dt.timedelta(hours=hours), d, ds)
    w.flush(T0 + dt.timedelta(days=NT), final=True)


@pytest.fixture(scope="module")
def dom():
    return Domain.load()


def pick_columns(dom, n=100, seed=1):
    c = dom.land_columns()
    lon, lat = dom.column_lon(c), dom.column_lat(c)
    ok = (lon >= 10) & (lon <= 40) & (lat > -40) & (lat < 70)
    return np.sort(np.random.default_rng(seed).choice(c[ok], n, replace=False))


def fabricate(root, dom, experiments=("CTL", "L_fc", "LC", "NEW")):
    """A matrix run directory: truth, reference field, stations and experiments = truth + noise (sd_schedule)."""
    rng = np.random.default_rng(7)
    cols = pick_columns(dom)
    ncol = len(cols)
    zn = nodes(DZ)
    base = rng.uniform(0.12, 0.38, ncol)
    amp = rng.uniform(0.03, 0.08, ncol)
    per = rng.uniform(15, 40, ncol)
    phi = rng.uniform(0, 2 * np.pi, ncol)
    k = np.arange(NT)[:, None, None]
    truth = base + amp * np.exp(-zn[None, :, None] / 1.0) * np.sin(2 * np.pi * k / per + phi)  # (NT, nl, ncol)
    write_history(root / "truth", "truth", truth, cols, "grid", dom)
    for name in experiments:
        noise = sd_schedule(name)[:, None, None] * rng.standard_normal((NT, 1, ncol))  # same in every layer
        layout = "grid" if name == "CTL" else "points"
        write_history(root / name, name, truth + noise, cols, layout, dom)
    import xarray as xr

    days = np.datetime64("2005-06-01") + np.arange(NT).astype("timedelta64[D]")
    W = S.layer_matrix(DZ, EVALUATION_LAYERS)
    tl = S.to_layers(truth, W)
    ref = tl + 0.01 * rng.standard_normal(tl.shape) + 0.004 * rng.standard_normal((NT, 1, 1))
    (root / "eval").mkdir()
    xr.Dataset({"sm": (("time", "layer", "column"), ref),
                "layer_top": ("layer", [a for a, _ in EVALUATION_LAYERS]),
                "layer_bottom": ("layer", [b for _, b in EVALUATION_LAYERS]),
                "column": ("column", cols), "lat": ("column", dom.column_lat(cols)),
                "lon": ("column", dom.column_lon(cols))},
               coords={"time": days}).to_netcdf(root / "eval" / "reference.nc")
    scol = np.concatenate([rng.choice(cols, 30), [0, 1]])  # the last two stations are outside the runs
    inside = np.isin(scol, cols)
    pos = np.searchsorted(cols, scol[inside])
    site = np.full((NT, len(scol)), np.nan)
    site[:, inside] = np.tensordot(point_weights(DZ, 0.10), truth[:, :, pos], axes=(0, 1))
    site += 0.005 * rng.standard_normal(site.shape)
    site[rng.random(site.shape) < 0.1] = np.nan
    xr.Dataset({"sm": (("time", "station"), site), "column": ("station", scol),
                "station_lat": ("station", dom.column_lat(scol) + 0.1),
                "station_lon": ("station", dom.column_lon(scol)),
                "station_name": ("station", np.array([f"S{i:02d}" for i in range(len(scol))], dtype=object)),
                "pft": ("station", dom.get("pft", scol)), "depth": 0.10},
               coords={"time": days}).to_netcdf(root / "eval" / "insitu.nc")
    sensors = {"CTL": [], "L_fc": ["L"], "LC": ["L", "C"], "NEW": ["L", "C", "X"]}
    labels = {"CTL": "CTL", "L_fc": "L (then forecast)", "LC": "L+C", "NEW": "NEW"}
    matrix = {"name": "twin-test", "start": "2005-06-01", "end": "2005-07-11", "forecast_start": "2005-06-21",
              "domain_file": str(default_domain_path()), "truth": "truth", "reference": "eval/reference.nc",
              "insitu": "eval/insitu.nc", "control": "CTL",
              "experiments": [{"name": n, "label": labels[n], "sensors": sensors[n],
                               "assimilation_end": "2005-06-21" if n == "L_fc" else None, "rundir": n}
                              for n in experiments]}
    (root / "matrix.json").write_text(json.dumps(matrix, indent=1))
    return {"truth": truth, "truth_layers": tl, "columns": cols, "station_columns": scol}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, dom):
    root = tmp_path_factory.mktemp("matrix")
    info = fabricate(root, dom)
    info["root"] = root
    info["ev"] = S.evaluate(root)
    return info


def rows_of(ev, **kw):
    return [r for r in ev.rows if all(r[k] == v for k, v in kw.items())]


def one(ev, **kw):
    r = rows_of(ev, **kw)
    assert len(r) == 1, (kw, len(r))
    return r[0]


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def test_metrics_hand_values():
    """bias, RMSE, ubRMSE and Pearson R equal hand-computed values (ref = [1,2,3,4], x = [2,2,4,6]: bias(ref, x) =
    mean(ref) - mean(x) = -1 (pytesmo's sign), bias(x, ref) = 1,
    RMSE sqrt(1.5), ubRMSE sqrt(0.5), R 7/sqrt(55)) and scipy's pearsonr; temporal_scores reduces over time for
    every column at once, spatial_scores over columns for every day, and both blank out too few samples."""
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    x = np.array([2.0, 2.0, 4.0, 6.0])
    assert metrics.bias(ref, x) == pytest.approx(-1.0)
    assert metrics.bias(x, ref) == pytest.approx(1.0)
    assert metrics.rmse(ref, x) == pytest.approx(np.sqrt(1.5))
    assert metrics.ubrmse(ref, x) == pytest.approx(np.sqrt(0.5))
    assert metrics.pearson_r(ref, x) == pytest.approx(7 / np.sqrt(55))
    assert metrics.pearson_r(ref, x) == pytest.approx(stats.pearsonr(ref, x)[0])
    # columns: the pair above, the same with a NaN pair added (ignored), and a column with too few pairs
    R = np.stack([ref, np.append(ref, 9.0)[:4], ref], axis=1)
    X = np.stack([x, x, x], axis=1)
    R = np.vstack([R, [[np.nan, np.nan, np.nan]]])
    X = np.vstack([X, [[1.0, 7.0, 1.0]]])
    R[:2, 2] = np.nan
    s = S.temporal_scores(R, X, min_days=3)
    np.testing.assert_allclose(s["R"][:2], 7 / np.sqrt(55))
    np.testing.assert_allclose(s["ubRMSE"][:2], np.sqrt(0.5))
    np.testing.assert_array_equal(s["n"], [4, 4, 2])
    assert np.isnan(s["R"][2]) and np.isnan(s["RMSE"][2])
    sp = S.spatial_scores(np.stack([ref, ref]), np.stack([x, -x]), min_columns=4)
    np.testing.assert_allclose(sp["spatial_R"], [7 / np.sqrt(55), -7 / np.sqrt(55)])
    np.testing.assert_allclose(sp["spatial_RMSE"][0], np.sqrt(1.5))
    assert np.all(np.isnan(S.spatial_scores(np.stack([ref]), np.stack([x]), min_columns=5)["spatial_R"]))
    # a constant series has no correlation: NaN, not a warning-laden inf
    assert np.isnan(S.temporal_scores(np.ones((12, 1)), np.arange(12.0)[:, None])["R"][0])


def test_layer_aggregation_matches_fine_grid_integration():
    """to_layers with layer_matrix gives the thickness-weighted mean over 0-7, 7-28 and 28-100 cm, checked against
    a piecewise-constant profile integrated on a 0.01 mm grid; the in-situ weights at 10 cm interpolate linearly
    between layer centres (checked with np.interp)."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.05, 0.45, (3, len(DZ), 4))
    got = S.to_layers(theta, S.layer_matrix(DZ, EVALUATION_LAYERS))
    zi = np.concatenate([[0.0], np.cumsum(DZ)])
    z = (np.arange(100000) + 0.5) * 1e-5  # 0 .. 1 m
    layer_of = np.searchsorted(zi, z, side="right") - 1
    for q, (top, bottom) in enumerate(EVALUATION_LAYERS):
        sel = (z >= top) & (z < bottom)
        expected = theta[:, layer_of[sel], :].mean(axis=1)
        np.testing.assert_allclose(got[:, q, :], expected, rtol=0, atol=2e-5)
    w = point_weights(DZ, 0.10)
    prof = theta[0, :, 0]
    assert w @ prof == pytest.approx(np.interp(0.10, nodes(DZ), prof))


def test_groups_phases_and_group_means():
    """Latitude bands split at 30S and 30N (30S and 30N belong to the band north of them); phases are half-open
    [start, forecast_start) and [forecast_start, end); group_mean averages only where experiment and control both
    have a score and blanks groups below the minimum count."""
    np.testing.assert_array_equal(S.lat_band_names([-60, -30.01, -30, 0, 29.99, 30, 80]),
                                  ["90S-30S", "90S-30S", "30S-30N", "30S-30N", "30S-30N", "30N-90N", "30N-90N"])
    g = S.group_masks([0, 13, 13, 4], [-50.0, 10.0, 40.0, 0.0], pft_order=[13, 0, 4])
    assert [(k, n) for k, n, _ in g] == [("all", "all"), ("pft", PFT_NAMES[13]), ("pft", PFT_NAMES[0]),
                                         ("pft", PFT_NAMES[4]), ("lat_band", "90S-30S"), ("lat_band", "30S-30N"),
                                         ("lat_band", "30N-90N")]
    days = np.datetime64("2005-06-01") + np.arange(10).astype("timedelta64[D]")
    (p1, m1), (p2, m2) = S.phase_masks(days, "2005-06-02", "2005-06-05", "2005-06-09")
    assert (p1, p2) == ("assimilation", "forecast")
    np.testing.assert_array_equal(np.flatnonzero(m1), [1, 2, 3])
    np.testing.assert_array_equal(np.flatnonzero(m2), [4, 5, 6, 7])
    assert S.phase_masks(days, "2005-06-01", None, "2005-06-11")[0][0] == "all"
    v = np.array([[0.5, 0.7, np.nan, 0.9]])
    c = np.array([[0.4, 0.4, 0.4, np.nan]])
    mean, cmean, n = S.group_mean(v, c, np.array([True, True, True, True]), min_columns=2)
    assert (mean[0], cmean[0], n[0]) == (pytest.approx(0.6), pytest.approx(0.4), 2)
    assert np.isnan(S.group_mean(v, c, np.ones(4, bool), min_columns=3)[0][0])


def test_history_reader_layouts_files_and_subdaily(tmp_path, dom):
    """load_soil_moisture returns the written values for the grid and points layouts, concatenated over several
    files in time order, with columns sorted and days labelled by the day each mean covers; 6-hourly history is
    averaged to days."""
    cols = pick_columns(dom, 12)
    rng = np.random.default_rng(3)
    theta = rng.uniform(0.1, 0.4, (NT, len(DZ), len(cols)))
    for layout in ("grid", "points"):
        write_history(tmp_path / layout, "x", theta, cols, layout, dom, period=(7, "d"))
        s = load_soil_moisture(tmp_path / layout)
        assert len(s.files) == 6
        assert s.time[0] == np.datetime64("2005-06-01") and len(s.time) == NT
        np.testing.assert_array_equal(s.column, cols)
        np.testing.assert_allclose(s.theta, theta, rtol=1e-6)
        np.testing.assert_allclose(s.dz_soil, DZ)
        np.testing.assert_allclose(s.lat, dom.column_lat(cols))
    # 6-hourly: each day's four values are equal to theta of that day
    write_history(tmp_path / "sub", "x", theta, cols, "points", dom, hours=6)
    s = load_soil_moisture(tmp_path / "sub")
    assert len(s.time) == NT
    np.testing.assert_allclose(s.theta, theta, rtol=1e-6)


def test_history_reader_errors(tmp_path, dom):
    """A missing run directory, a missing history file in the middle (days not contiguous), several experiments
    in one directory and a history without SoilMoistV are UserErrors that name the directory / file / variable."""
    with pytest.raises(UserError, match="nowhere"):
        load_soil_moisture(tmp_path / "nowhere")
    cols = pick_columns(dom, 6)
    theta = np.full((NT, len(DZ), len(cols)), 0.2)
    write_history(tmp_path / "a", "x", theta, cols, "points", dom)
    (tmp_path / "a" / "history" / "x_2005-06-11.nc").unlink()
    with pytest.raises(UserError, match="not contiguous.*2005-06-10"):
        load_soil_moisture(tmp_path / "a")
    write_history(tmp_path / "a", "y", theta, cols, "points", dom)
    with pytest.raises(UserError, match="several experiments"):
        load_soil_moisture(tmp_path / "a")
    write_history(tmp_path / "b", "x", theta, cols, "points", dom, variables=("Qle",))
    with pytest.raises(UserError, match=r"x_2005-06-01\.nc: variable 'SoilMoistV' is missing"):
        load_soil_moisture(tmp_path / "b")


# ---------------------------------------------------------------------------------------------------------------
# the fabricated matrix


def expected_r_rmse(truth_layer, sd):
    """R and RMSE expected for truth + independent noise of standard deviation sd(t), averaged over columns."""
    s2 = truth_layer.var(axis=0)
    r = np.sqrt(s2 / (s2 + np.mean(sd ** 2)))
    return r.mean(), np.sqrt(np.mean(sd ** 2))


def test_gains_against_truth_have_the_constructed_signs_and_sizes(matrix):
    """Against the truth (all columns, every layer): CTL = truth + 0.05 noise, L_fc = truth + 0.015 noise during
    the assimilation phase relaxing linearly to 0.05 in the forecast phase. Mean R and RMSE match the values
    implied by the noise (R = s / sqrt(s^2 + sd^2), RMSE = rms sd), the gains have the constructed signs, and the
    forecast gain is smaller than the assimilation gain but still an improvement."""
    ev = matrix["ev"]
    tl = matrix["truth_layers"]
    for q, layer in enumerate(("0-7cm", "7-28cm", "28-100cm")):
        for phase, sl in (("assimilation", slice(0, NFC)), ("forecast", slice(NFC, NT))):
            for name in ("CTL", "L_fc", "LC"):
                r_exp, rmse_exp = expected_r_rmse(tl[sl, q], sd_schedule(name)[sl])
                r = one(ev, experiment=name, reference="truth", phase=phase, layer=layer, group_kind="all",
                        metric="R")
                m = one(ev, experiment=name, reference="truth", phase=phase, layer=layer, group_kind="all",
                        metric="RMSE")
                assert r["n"] == 100 and m["n"] == 100
                assert r["value"] == pytest.approx(r_exp, abs=0.05), (name, phase, layer)
                assert m["value"] == pytest.approx(rmse_exp, rel=0.08), (name, phase, layer)
        da = {p: {met: one(ev, experiment="L_fc", reference="truth", phase=p, layer=layer, group_kind="all",
                           metric=met)["gain"] for met in ("R", "RMSE", "ubRMSE", "spatial_R", "spatial_RMSE")}
              for p in ("assimilation", "forecast")}
        assert da["assimilation"]["R"] > 0.2 and da["assimilation"]["spatial_R"] > 0.05
        assert da["assimilation"]["RMSE"] == pytest.approx(SD_DA - SD_CTL, abs=0.005)
        assert da["assimilation"]["ubRMSE"] < -0.025 and da["assimilation"]["spatial_RMSE"] < -0.025
        assert 0 < da["forecast"]["R"] < da["assimilation"]["R"]
        assert da["assimilation"]["RMSE"] < da["forecast"]["RMSE"] < 0
        ctl = one(ev, experiment="CTL", reference="truth", phase="assimilation", layer=layer, group_kind="all",
                  metric="R")
        assert ctl["gain"] == 0 and ctl["value"] == ctl["control_value"]


def test_gains_against_reference_and_stations(matrix):
    """Against the reference field (truth + 0.01 error) and the 10 cm stations, every DA experiment improves on
    the control in the assimilation phase (dR > 0, dubRMSE < 0); L_fc's station gain shrinks in the forecast
    phase; the per-station gains exist for the stations inside the runs and are NaN for the two outside, which
    the notes report."""
    ev = matrix["ev"]
    for ref, layers in (("reference", ("0-7cm", "7-28cm", "28-100cm")), ("insitu", ("10cm",))):
        for name in ("L_fc", "LC", "NEW"):
            for layer in layers:
                r = one(ev, experiment=name, reference=ref, phase="assimilation", layer=layer, group_kind="all",
                        metric="R")
                u = one(ev, experiment=name, reference=ref, phase="assimilation", layer=layer, group_kind="all",
                        metric="ubRMSE")
                assert r["gain"] > 0.1 and u["gain"] < -0.02, (ref, name, layer)
    fc = one(ev, experiment="L_fc", reference="insitu", phase="forecast", group_kind="all", metric="R")["gain"]
    ac = one(ev, experiment="L_fc", reference="insitu", phase="assimilation", group_kind="all", metric="R")["gain"]
    assert 0 < fc < ac
    g = ev.station_gain[("NEW", "assimilation")]
    assert g.shape == (32,) and np.all(np.isnan(g[-2:])) and np.mean(g[:30] > 0) > 0.9
    assert one(ev, experiment="NEW", reference="insitu", phase="assimilation", group_kind="all",
               metric="R")["n"] == 30
    assert any("insitu: 2 of 32 points are outside" in n for n in ev.notes)


def test_groups_and_minimum_sizes(matrix, dom):
    """Vegetation classes and latitude bands are reported exactly when they have at least MIN_COLUMNS columns;
    their n is the number of columns of the class; the classes come in vegetation-density order."""
    ev = matrix["ev"]
    cols = matrix["columns"]
    counts = np.bincount(dom.get("pft", cols), minlength=len(PFT_NAMES))
    got = {r["group"]: r["n"] for r in rows_of(ev, experiment="CTL", reference="truth", phase="assimilation",
                                                 layer="0-7cm", group_kind="pft", metric="R")}
    want = {PFT_NAMES[k]: int(c) for k, c in enumerate(counts) if c >= S.MIN_COLUMNS}
    assert got == want and any(0 < c < S.MIN_COLUMNS for c in counts)
    bands = S.lat_band_names(dom.column_lat(cols))
    got = {r["group"]: r["n"] for r in rows_of(ev, experiment="LC", reference="truth", phase="forecast",
                                                 layer="7-28cm", group_kind="lat_band", metric="ubRMSE")}
    assert got == {b: int((bands == b).sum()) for b in set(bands) if (bands == b).sum() >= S.MIN_COLUMNS}
    assert ev.pft_order[0] == "bare soil" and len(ev.pft_order) == len(PFT_NAMES)


def test_summary_files_stdout_and_figures(matrix, capsys):
    """`python -m colmda.evaluation.summary RUNDIR` writes skill.csv (every evaluation row, long format, header as
    documented), skill.md (headline and group tables), timeseries.csv and the five figures as PNG, leaves no
    temporary file, and prints a headline table no wider than 100 characters with every experiment."""
    root = matrix["root"]
    assert SM.main([str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "vs truth - assimilation phase (2005-06-01 to 2005-06-20)" in out
    for label in ("CTL", "L (then forecast)", "L+C", "NEW"):
        assert label in out
    summ = root / "summary"
    import csv

    with open(summ / "skill.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == S.CSV_FIELDS and len(rows) == len(matrix["ev"].rows)
    r = next(r for r in rows if r["experiment"] == "L_fc" and r["reference"] == "truth" and r["metric"] == "RMSE"
             and r["phase"] == "assimilation" and r["layer"] == "0-7cm" and r["group"] == "all")
    assert float(r["gain"]) == pytest.approx(float(r["value"]) - float(r["control_value"]), abs=1e-6)
    assert {r["reference"] for r in rows} == {"truth", "reference", "insitu"}
    md = (summ / "skill.md").read_text()
    assert "## Against the truth" in md and "### By vegetation class" in md and "### By latitude band" in md
    assert "| L (then forecast) |" in md and "| 30N-90N | 0-7cm |" in md
    ts = (summ / "timeseries.csv").read_text().splitlines()
    assert ts[0] == "reference,experiment,layer,date,spatial_R,spatial_RMSE"
    assert len(ts) == 1 + 4 * NT * (3 + 3 + 1)
    for name in ("fig2_timeseries_reference", "fig2_timeseries_truth", "fig5_vegetation_gain",
                 "fig8_station_gain_pdf", "fig11_combination_gain_pdf"):
        assert (summ / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in summ.iterdir() if p.name.startswith(".")]


def test_figures_skip_cleanly_without_their_experiments(matrix, tmp_path):
    """With only the control and L+C, the single-sensor figures (2, 5) and the NEW comparison (11) are skipped
    with a message, fig8 is still drawn; with no station data fig8 is skipped too."""
    ev = matrix["ev"]
    m = dataclasses.replace(ev.matrix, experiments=[e for e in ev.matrix.experiments if e.name in ("CTL", "LC")])
    msgs = []
    written = F.make_figures(dataclasses.replace(ev, matrix=m), tmp_path, log=msgs.append)
    assert [p.name for p in written] == ["fig8_station_gain_pdf.png"]
    assert any("fig2_timeseries_reference.png: no single-sensor" in s for s in msgs)
    assert any("fig11_combination_gain_pdf.png: needs at least two" in s for s in msgs)
    written = F.make_figures(dataclasses.replace(ev, matrix=m, station_gain={}), tmp_path / "b")
    assert written == []


def test_bad_inputs_are_user_errors(matrix, tmp_path, capsys):
    """A missing experiment run directory, an experiment without SoilMoistV, a matrix.json without a required key
    and a missing reference file each raise UserError naming the thing; the command line prints the message
    without a traceback and exits with status 2."""
    root = tmp_path / "m"
    shutil.copytree(matrix["root"], root, ignore=shutil.ignore_patterns("summary"))
    shutil.rmtree(root / "LC")
    with pytest.raises(UserError, match=r"run directory .*LC of experiment 'LC' does not exist"):
        S.evaluate(root)
    assert SM.main([str(root), "--no-figures", "-q"]) == 2
    err = capsys.readouterr().err
    assert "colmda summary: error:" in err and "LC" in err and "Traceback" not in err
    cols = matrix["columns"]
    write_history(root / "LC", "LC", np.zeros((NT, len(DZ), len(cols))), cols, "points", Domain.load(),
                  variables=("Qle",))
    with pytest.raises(UserError, match=r"LC_2005-06-01\.nc: variable 'SoilMoistV' is missing"):
        S.evaluate(root)
    shutil.rmtree(root / "LC")
    m = json.loads((root / "matrix.json").read_text())
    m["experiments"] = [e for e in m["experiments"] if e["name"] != "LC"]
    m["reference"] = "eval/missing.nc"
    (root / "matrix.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=r"missing\.nc: reference field file not found"):
        S.evaluate(root)
    del m["control"]
    (root / "matrix.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=r"matrix\.json: key 'control' is missing"):
        S.evaluate(root)
