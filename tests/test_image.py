"""Image (curvelet-space EnKF-like) analysis, colmda.assim.image.

What each test proves:
- the effective gain C^T diag(K) C is symmetric positive semi-definite with eigenvalues in [0, max K]
  (computed as a full matrix on a small grid with a land mask);
- K = 1 (sigma_o = 0) gives the observed field on valid land cells; sigma_o -> infinity gives the background;
- in the linear-Gaussian limit (spatially white, uniform errors, large ensemble) the update is the point-wise
  Kalman filter x_b + sigma_b^2 / (sigma_b^2 + sigma_o^2) d, to the sampling error of the ensemble;
- ocean cells never change (both ocean treatments); per-scale weights are linear and exclusion works;
- observation gaps: far inside a gap the analysis stays the background;
- the keyed perturbations of a subset of columns equal those of the full set (rank independence);
- the layer distribution changes the model equivalent by exactly the analysed increment;
- bad input (no valid cell, wrong scale_weight length) gives one-line errors.
"""

import numpy as np
import pytest

from colmda.assim import image
from colmda.curvelet import CurveletFrame
from colmda.errors import UserError


def _fields(shape, seed=0, members=50):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    bg = 0.25 + 0.05 * np.sin(2 * np.pi * xx / nx) + 0.02 * rng.standard_normal(shape)
    ob = 0.30 + 0.08 * np.cos(2 * np.pi * (xx / nx + yy / ny)) + 0.02 * rng.standard_normal(shape)
    return bg, ob, rng.standard_normal((members,) + shape), rng.standard_normal((members,) + shape)


def _land(shape):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return ((xx - nx / 2) ** 2 / (0.4 * nx) ** 2 + (yy - ny / 2) ** 2 / (0.45 * ny) ** 2) < 1.0


def test_gain_operator_symmetric_psd_bounded():
    shape = (12, 16)
    frame = CurveletFrame(shape, nscales=3, wedges=(2, 4))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape, members=30)
    res = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1)
    kmax = max(k.max() for k in res.gain)
    assert 0 < kmax <= 1
    idx = np.flatnonzero(land.ravel())
    G = np.zeros((len(idx), len(idx)))
    for n, i in enumerate(idx):
        e = np.zeros(shape)
        e.flat[i] = 1.0
        G[:, n] = image.apply_gain(frame, res.gain, e).ravel()[idx]
    assert np.abs(G - G.T).max() < 1e-12
    ev = np.linalg.eigvalsh(0.5 * (G + G.T))
    assert ev.min() > -1e-12 and ev.max() <= kmax + 1e-12
    # the analysis increment is that operator applied to the innovation
    d = np.where(land, ob - bg, 0.0)
    assert np.allclose(G @ d.ravel()[idx], res.increment.ravel()[idx], atol=1e-12)


def test_k_one_gives_observed_and_infinite_r_gives_background():
    shape = (40, 64)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape)
    a1 = bg + image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.0).increment
    assert np.abs((a1 - ob)[land]).max() < 1e-6
    a0 = bg + image.analysis(bg, ob, land, frame, nb, no, 0.15, 1e6).increment
    assert np.abs((a0 - bg)[land]).max() < 1e-9
    for ocean in ("zero", "nearest"):
        inc = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, ocean=ocean).increment
        assert np.all(inc[~land] == 0.0)
        assert np.abs(inc[land]).max() > 0.01


def test_linear_gaussian_limit_is_pointwise_kalman_filter():
    shape = (32, 48)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8), periodic=(True, True))
    land = np.ones(shape, bool)
    bg, ob, nb, no = _fields(shape, members=800)
    sb, so = 0.15, 0.1
    inc = image.analysis(bg, ob, land, frame, nb, no, sb, so).increment
    k = sb ** 2 / (sb ** 2 + so ** 2)
    expected = k * (ob - bg)
    # sampling error of the gain with 800 members is a few per cent
    assert np.abs(inc - expected).max() < 0.05 * np.abs(ob - bg).max()
    ratio = np.sum(inc * (ob - bg)) / np.sum((ob - bg) ** 2)
    assert abs(ratio - k) < 0.02


def test_supplied_ensemble_equals_perturbed_members():
    """A supplied ensemble (e.g. a real one) gives B from its anomalies: members x_b + sigma_b z reproduce the
    perturbation path (the sample variance removes the member mean either way)."""
    shape = (24, 40)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape, members=20)
    a = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1).increment
    b = image.analysis(bg, ob, land, frame, None, no, 0.15, 0.1, ensemble_b=bg + 0.15 * nb).increment
    assert np.abs(a - b).max() < 1e-5


def test_scale_weights_linear_and_exclusion():
    shape = (40, 64)
    frame = CurveletFrame(shape, nscales=3, wedges=(4, 8))
    land = _land(shape)
    bg, ob, nb, no = _fields(shape)
    full = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1).increment
    coarse = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[1, 0, 0]).increment
    fine = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[0, 1, 1]).increment
    assert np.abs(coarse + fine - full).max() < 1e-12
    none = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, scale_weight=[0, 0, 0]).increment
    assert np.all(none == 0)
    # the coarse-only increment is smooth: its cell-to-cell differences are much smaller than the full one's
    assert np.abs(np.diff(coarse, axis=1)[land[:, 1:] & land[:, :-1]]).mean() < \
        0.5 * np.abs(np.diff(full, axis=1)[land[:, 1:] & land[:, :-1]]).mean()


def test_gaps_keep_background_far_from_valid_cells():
    shape = (48, 96)
    frame = CurveletFrame(shape, nscales=4, wedges=(4, 8, 8), periodic=(True, True))
    land = np.ones(shape, bool)
    bg, ob, nb, no = _fields(shape)
    gap = ob.copy()
    gap[:, 30:70] = np.nan  # a 40-cell wide missing swath
    inc = image.analysis(bg, gap, land, frame, nb, no, 0.15, 0.1).increment
    inc_full = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1).increment
    middle = np.abs(inc[:, 45:55]).mean()
    assert middle < 0.1 * np.abs(inc_full[:, 45:55]).mean()
    assert np.abs(inc[:, :20]).mean() > 0.5 * np.abs(inc_full[:, :20]).mean()


def test_keyed_noise_rank_independent():
    cols = np.array([5, 17, 200, 3001, 3002])
    full = image.perturbation_noise(1, image.STREAM_BACKGROUND, 123, cols, 6)
    part = image.perturbation_noise(1, image.STREAM_BACKGROUND, 123, cols[2:], 6)
    assert np.array_equal(full[:, 2:], part)
    other = image.perturbation_noise(1, image.STREAM_OBSERVATION, 123, cols, 6)
    assert not np.allclose(full, other)
    assert abs(image.perturbation_noise(1, 301, 5, np.arange(4000), 50).std() - 1) < 0.01


def test_layer_distribution():
    dz = np.array([0.0175, 0.0276, 0.0455, 0.0750, 0.1236, 0.2038, 0.3360, 0.5539, 0.9133, 1.5058])
    h, a = image.layer_distribution(dz, 0.0, 0.1)
    assert abs(h.sum() - 1) < 1e-12 and abs(np.sum(h * a) - 1) < 1e-12
    assert np.allclose(a[:3], a[0]) and 0 < a[3] < a[0] and np.all(a[4:] == 0)
    h2, a2 = image.layer_distribution(dz, 0.1, 0.4)
    assert h2[0] == 0 and abs(np.sum(h2 * a2) - 1) < 1e-12
    with pytest.raises(UserError, match="depth"):
        image.layer_distribution(dz, 5.0, 6.0)


def test_bad_input():
    shape = (20, 32)
    frame = CurveletFrame(shape, nscales=3, wedges=(2, 4))
    bg, ob, nb, no = _fields(shape, members=5)
    with pytest.raises(UserError, match="no valid land cell"):
        image.analysis(bg, np.full(shape, np.nan), np.ones(shape, bool), frame, nb, no)
    with pytest.raises(UserError, match="scale_weight"):
        image.analysis(bg, ob, np.ones(shape, bool), frame, nb, no, scale_weight=[1, 1])


def test_image_grid_of_columns():
    lat = np.linspace(-88, 88, 12)
    lon = np.arange(0, 360, 15.0)  # 24
    cols = np.array([2 * 24 + 23, 2 * 24 + 0, 3 * 24 + 1, 5 * 24 + 22])  # a box across the date line
    g = image.ImageGrid.of_columns(np.sort(cols), lat, lon, is_global=True)
    assert g.shape == (4, 4) and not g.periodic_lon
    assert list(g.lon) == [330.0, 345.0, 0.0, 15.0]
    full = np.arange(12 * 24)
    g2 = image.ImageGrid.of_columns(full, lat, lon, is_global=True)
    assert g2.shape == (12, 24) and g2.periodic_lon


# ---------------------------------------------------------------------------------------------------------------
# runs: &assimilation method = 'image' on a box of the default domain

import datetime as _dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import xarray as xr  # noqa: E402

from colmda import config  # noqa: E402
from colmda.parallel import SerialComm  # noqa: E402
from colmda.restart import read_restart  # noqa: E402
from colmda.run import run  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

RUN = """
&experiment
    name = '{name}'
    start = '2005-06-01'
    end = '2005-06-03'
    spinup_start = '2005-05-29'
    spinup_end = '2005-06-01'
    spinup_max_cycles = 1
    seed = 5
/
&domain
    box = 22.0, 48.0, 95.0, 130.0
/
&assimilation
    method = '{method}'
    window_hours = 6
/
&image
    file = '{obs}'
    nscales = 3
    wedges = 4, 8
/
&output
    directory = '{out}'
    restart_days = 1
    frequency = '6h'
    averaging = 'instant'
    variables = 'SoilMoist'
/
"""


def _observed_file(path):
    """A synthetic observed 0-10 cm field on the default domain grid, every 6 h, with a missing swath."""
    from colmda.domain import Domain

    d = Domain.load()
    lat, lon = np.asarray(d.lat), np.asarray(d.lon)
    times = [_dt.datetime(2005, 6, 1, 6) + _dt.timedelta(hours=6 * k) for k in range(8)]
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    sm = np.stack([0.32 + 0.08 * np.sin(3 * lo + 0.1 * k) * np.cos(2 * la) for k in range(len(times))])
    sm[:, :, (lon > 120) & (lon < 124)] = np.nan  # a gap
    ds = xr.Dataset({"sm": (("time", "lat", "lon"), sm.astype("f4"), {"units": "m3 m-3"})},
                    coords={"time": np.array(times, dtype="datetime64[ns]"), "lat": lat, "lon": lon})
    ds.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("image")
    obs = _observed_file(tmp / "obs.nc")
    out = {}
    for method in ("none", "image"):
        name = "CTL" if method == "none" else "IMAGE"
        s = config.loads(RUN.format(name=name, method=method, obs=obs, out=tmp / name), source=f"{name}.nml")
        run(s, comm=SerialComm(), progress=False)
        out[name] = tmp / name
    return tmp, obs, out


def test_image_run_moves_the_field_towards_the_observed_one(image_runs):
    """A 2-day IMAGE run analyses at 00, 06, 12 and 18 UTC (8 analyses; the file has no 00 UTC 1 June record):
    every analysis raises the spatial correlation with the observed field and lowers the ubRMSE; only the layers
    the 0-10 cm field covers change at an analysis; the analysed layers stay within [residual, porosity]."""
    tmp, obs, out = image_runs
    stats = [json.loads(p.read_text()) for p in sorted((out["IMAGE"] / "analysis").glob("image_*.json"))]
    assert len(stats) == 8
    for st in stats:
        assert st["scc_analysis"] > st["scc_background"]
        assert st["ubrmse_analysis"] < st["ubrmse_background"]
    ctl = read_restart(sorted((out["CTL"] / "restart").glob("CTL_*_2005-06-03T0000.nc"))[0]).state
    ima = read_restart(sorted((out["IMAGE"] / "restart").glob("IMAGE_*_2005-06-03T0000.nc"))[0]).state
    from colmda.core import default_soil_thickness
    from colmda import layout as L

    dz = default_soil_thickness()
    th_c = ctl.volumetric_soil_moisture(dz)
    th_i = ima.volumetric_soil_moisture(dz)
    assert np.abs(th_i - th_c)[:4].max() > 0.01  # analysed layers moved
    assert np.all(np.isfinite(th_i)) and th_i.min() >= 0.0
    # layers below the 0-10 cm field's layers change only through the model (smaller than the top's changes)
    assert np.abs(th_i - th_c)[6:].max() < np.abs(th_i - th_c)[:4].max()
    s = L.NSNOW_MAX
    assert np.all(ima.wliq_soisno[s:] >= 0.0)
    from colmda.setup import build_inputs

    sett = config.loads(RUN.format(name="IMAGE", method="image", obs=obs, out=tmp / "IMAGE"), source="IMAGE.nml")
    par = build_inputs(sett).params.soilpar
    assert np.all(th_i[:4] <= par[L.SP_THETA_S, :4] + 1e-9)


def test_image_bad_input(tmp_path):
    obs = _observed_file(tmp_path / "obs.nc")
    with pytest.raises(UserError, match="&image file"):
        config.loads(RUN.format(name="x", method="image", obs=tmp_path / "missing.nc", out=tmp_path / "x"))
    with pytest.raises(UserError, match="&image wedges"):
        config.loads(RUN.format(name="x", method="image", obs=obs, out=tmp_path / "x"),
                     overrides=["image.wedges=4,8,8"])
    with pytest.raises(UserError, match="&image hours: 6 UTC is not a window end"):
        config.loads(RUN.format(name="x", method="image", obs=obs, out=tmp_path / "x"),
                     overrides=["assimilation.window_hours=24"])
    # a field with no valid cell on the run's columns
    with xr.open_dataset(obs) as ds:
        (ds * np.nan).to_netcdf(tmp_path / "empty.nc")
    s = config.loads(RUN.format(name="z", method="image", obs=tmp_path / "empty.nc", out=tmp_path / "z"),
                     overrides=["experiment.spinup_max_cycles=0"])
    with pytest.raises(UserError, match="empty.nc: the observed field at 2005-06-01T06:00:00 has no valid cell"):
        run(s, comm=SerialComm(), progress=False)
    # a grid too small for the scales, and a field on another grid without a regridding choice
    s = config.loads(RUN.format(name="x", method="image", obs=obs, out=tmp_path / "x"),
                     overrides=["image.nscales=6", "image.wedges=4", "experiment.spinup_max_cycles=0"])
    with pytest.raises(UserError, match="too small for nscales = 6"):
        run(s, comm=SerialComm(), progress=False)
    with xr.open_dataset(obs) as ds:  # a field on a grid shifted by a fifth of a cell
        ds.assign_coords(lat=ds.lat + 0.3).to_netcdf(tmp_path / "other.nc")
    s = config.loads(RUN.format(name="y", method="image", obs=tmp_path / "other.nc", out=tmp_path / "y"),
                     overrides=["experiment.spinup_max_cycles=0"])
    with pytest.raises(UserError, match="regrid = 'bilinear'"):
        run(s, comm=SerialComm(), progress=False)


MPIEXEC = H.find_mpiexec()


@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_image_bitwise_identical_on_1_and_2_ranks_and_after_resume(image_runs, tmp_path):
    """The field is gathered, analysed on rank 0 and scattered back: 1 and 2 ranks give identical history files
    and final restarts; a run stopped after the first day and resumed gives the same as the continuous run."""
    tmp, obs, _ = image_runs
    nml = tmp_path / "image.nml"
    nml.write_text(RUN.format(name="IMAGE", method="image", obs=obs, out=tmp_path / "unused"))
    outs = {}
    for ranks in (1, 2):
        d = tmp_path / f"r{ranks}"
        r = H.run_cli(["run", str(nml), "--set", f"output.directory={d}", "--no-progress"], ranks=ranks,
                      synthetic=False)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[ranks] = d
    d3 = tmp_path / "resumed"
    r = H.run_cli(["run", str(nml), "--set", f"output.directory={d3}", "--set", "experiment.end=2005-06-02",
                   "--no-progress"], synthetic=False)
    assert r.returncode == 0, r.stderr[-2000:]
    r = H.run_cli(["run", str(nml), "--set", f"output.directory={d3}", "--resume", "--no-progress"], synthetic=False)
    assert r.returncode == 0, r.stderr[-2000:]
    outs[3] = d3
    names = sorted(p.name for p in (outs[1] / "history").glob("*.nc"))
    assert names
    for name in names:
        with xr.open_dataset(outs[1] / "history" / name, decode_times=False) as a:
            for k in (2, 3):
                with xr.open_dataset(outs[k] / "history" / name, decode_times=False) as b:
                    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    last = sorted(p.name for p in (outs[1] / "restart").glob("IMAGE_*_2005-06-03T0000.nc"))[0]
    states = [read_restart(outs[k] / "restart" / last).state for k in (1, 2, 3)]
    for st in states[1:]:
        for key in ("wliq_soisno", "wice_soisno", "t_soisno"):
            assert np.array_equal(getattr(states[0], key), getattr(st, key))
    stats = sorted(p.name for p in (outs[1] / "analysis").glob("image_*.json"))
    for name in stats:
        one, two = ((outs[k] / "analysis" / name).read_text() for k in (1, 2))
        assert json.loads(one) == json.loads(two)


@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_image_with_a_real_ensemble(image_runs, tmp_path):
    """With &assimilation n_members = 4 and perturbed forcing, B comes from the run's members: every analysis still
    raises the SCC with the observed field, the members stay distinct (the same increment is added to every member
    of a column), and 1 and 2 ranks give identical restarts and statistics."""
    from colmda import ensemble as E

    tmp, obs, _ = image_runs
    nml = tmp_path / "image.nml"
    nml.write_text(RUN.format(name="IMAGE", method="image", obs=obs, out=tmp_path / "unused"))
    extra = ["--set", "assimilation.n_members=4", "--set", "forcing.perturb=.true.", "--set",
             "experiment.end=2005-06-02", "--no-progress"]
    outs = {}
    for ranks in (1, 2):
        d = tmp_path / f"r{ranks}"
        r = H.run_cli(["run", str(nml), "--set", f"output.directory={d}", *extra], ranks=ranks, synthetic=False)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[ranks] = d
    stats = [json.loads(p.read_text()) for p in sorted((outs[1] / "analysis").glob("image_*.json"))]
    assert len(stats) == 4
    for st in stats:
        assert st["scc_analysis"] > st["scc_background"]
    for name in sorted(p.name for p in (outs[1] / "analysis").glob("image_*.json")):
        assert (outs[1] / "analysis" / name).read_text() == (outs[2] / "analysis" / name).read_text()
    last = sorted(p.name for p in (outs[1] / "restart").glob("IMAGE_*_2005-06-02T0000.nc"))[0]
    one, two = (read_restart(outs[k] / "restart" / last) for k in (1, 2))
    assert one.n_members == 4
    assert np.array_equal(one.state.wliq_soisno, two.state.wliq_soisno)
    spread = E.unflatten(one.state.wliq_soisno[5], 4).std(axis=-1)
    assert spread.mean() > 0.0  # the members stayed distinct


# ---------------------------------------------------------------------------------------------------------------
# GLDAS Noah native nc4 reader (fixture: two real 0.25 degree files of 1 January 2016)

GLDAS_DIR = Path("/work/shared/data/real/gldas")  # the uncropped files, when present
GLDAS_LOCAL = Path(__file__).resolve().parent / "data" / "gldas"


def _gldas_dir():
    for d in (GLDAS_LOCAL, GLDAS_DIR):
        if d.is_dir() and any(d.rglob("GLDAS_NOAH*.nc4")):
            return d
    pytest.skip("GLDAS fixture files not available")


def test_gldas_reader_units_and_missing():
    """kg m-2 of the 0-10 cm layer / (1000 kg m-3 x 0.1 m) = m3 m-3; fill values -> NaN; time from the name."""
    import netCDF4

    from colmda.obs.readers import gldas

    arch = gldas.Archive(_gldas_dir())
    t = _dt.datetime(2016, 1, 1, 6)
    f = arch.field(t, "SoilMoi10_40cm_inst")
    assert f.time == t
    with netCDF4.Dataset(arch.files[t]) as ds:
        raw = np.ma.filled(ds["SoilMoi10_40cm_inst"][0].astype(float), np.nan)
    v = f.values["SoilMoi10_40cm_inst"]
    assert np.allclose(v[np.isfinite(raw)], raw[np.isfinite(raw)] / 300.0)
    assert np.all(np.isnan(v[~np.isfinite(raw)]))
    assert 0.0 < np.nanmin(v) and np.nanmax(v) < 0.6
    assert np.isnan(v[np.argmin(np.abs(f.lat - 30.0)), np.argmin(np.abs(f.lon + 125.0))])  # Pacific
    with pytest.raises(UserError, match="SoilMoi40_100cm_inst"):
        arch.field(t, "SoilMoi40_100cm_inst")  # not in this variable subset


def test_bilinear_regrid_exact_for_linear_fields_and_nan_aware():
    from colmda.obs.readers.gldas import regrid_bilinear

    slat = np.arange(-59.875, 90, 0.25)
    slon = np.arange(-179.875, 180, 0.25)
    la, lo = np.meshgrid(slat, slon, indexing="ij")
    field = 0.2 + 0.001 * la + 0.3 * np.cos(np.deg2rad(lo))
    dlat = np.linspace(-50, 80, 27)
    dlon = np.linspace(0.7, 359.3, 40)
    out = regrid_bilinear(slat, slon, field, dlat, dlon)
    exact = 0.2 + 0.001 * dlat[:, None] + 0.3 * np.cos(np.deg2rad(dlon))[None, :]
    assert np.abs(out - exact).max() < 1e-5  # cos is not linear: within 0.25 degree curvature error
    lin = regrid_bilinear(slat, slon, 0.001 * la + 0.0 * lo, dlat, dlon)
    assert np.abs(lin - 0.001 * dlat[:, None]).max() < 1e-12
    holes = field.copy()
    holes[:, (slon > 10) & (slon < 20)] = np.nan
    r = regrid_bilinear(slat, slon, holes, dlat, dlon)
    assert np.all(np.isnan(r[:, (dlon > 10.3) & (dlon < 19.7)]))
    assert np.all(np.isfinite(r[:, (dlon > 21) & (dlon < 300)]))
    assert np.all(np.isnan(regrid_bilinear(slat, slon, field, np.array([-70.0]), dlon)))  # outside the grid


def test_gldas_directory_as_observed_field(tmp_path):
    """The GLDAS files analysed in a run: 3-hourly windows, analyses at 03 and 06 UTC on a US box, GLDAS regridded
    bilinearly to the domain grid; without regrid = 'bilinear' the run stops with a one-line error."""
    d = _gldas_dir()
    text = RUN.format(name="G", method="image", obs=d, out=tmp_path / "G")
    over = ["experiment.start=2016-01-01", "experiment.end=2016-01-01T06:00", "experiment.spinup_max_cycles=0",
            "assimilation.window_hours=3", "image.hours=3,6", "domain.box=28,48,-120,-75",
            "output.restart_days=0"]
    with pytest.raises(UserError, match="regrid = 'bilinear'"):
        # its own directory: the stopped run leaves it marked interrupted, which a fresh run refuses (issue 10)
        run(config.loads(text, overrides=over + [f"output.directory={tmp_path / 'G0'}"]), comm=SerialComm(),
            progress=False)
    run(config.loads(text, overrides=over + ["image.regrid=bilinear"]), comm=SerialComm(), progress=False)
    stats = [json.loads(p.read_text()) for p in sorted((tmp_path / "G" / "analysis").glob("image_*.json"))]
    assert [s["time"] for s in stats] == ["2016-01-01T03:00:00", "2016-01-01T06:00:00"]
    for s in stats:
        assert s["valid_cells"] > 100
        assert s["ubrmse_analysis"] < s["ubrmse_background"]
        assert s["scc_analysis"] > s["scc_background"]


def test_bilinear_regrid_regional_source_is_not_periodic():
    from colmda.obs.readers.gldas import regrid_bilinear

    slat = np.arange(20.125, 55, 0.25)
    slon = np.arange(-129.875, -60, 0.25)
    field = np.broadcast_to(0.001 * slon, (len(slat), len(slon)))
    r = regrid_bilinear(slat, slon, field, np.array([30.0, 40.0]), np.array([-100.0, -60.0, 200.0, 250.0]))
    assert np.allclose(r[:, 0], -0.1) and np.allclose(r[:, 3], 0.001 * (250.0 - 360.0))  # 250 E = 110 W
    assert np.all(np.isnan(r[:, 1:3]))  # east of the last source column; 200 E = 160 W, west of the first


def test_image_twin_end_to_end(tmp_path):
    """The seed 003 experiment chain on a tiny box (python -m colmda.image_twin): truth, GLDAS-like run with the
    other hydraulics, CTL, IMAGE, SEKF, LETKF and IMAGE_ENS (4 members) on the same observed field; during
    assimilation IMAGE and the LETKF are closer to the observed surface field than CTL (higher SCC, lower ubRMSE);
    the summary and the three figures are written."""
    from colmda import image_twin

    s = config.load(Path(__file__).resolve().parents[1] / "namelists" / "image_twin_test.nml",
                    overrides=[f"output.directory={tmp_path}", "experiment.end=2005-06-03",
                               "matrix.forecast_start=2005-06-02", "experiment.spinup_start=2005-05-31",
                               "domain.box=28,38,106,122", "matrix.n_members=4",
                               "assimilation.state_perturbation_std=0.02,0.02,0.02,0.02"])
    out = image_twin.run_image_twin(s, comm=SerialComm(), progress=False)
    sc = out["scores"]
    assert sc["IMAGE"]["sm"]["assimilation"]["scc"] > sc["CTL"]["sm"]["assimilation"]["scc"]
    assert sc["IMAGE"]["sm"]["assimilation"]["ubrmse"] < sc["CTL"]["sm"]["assimilation"]["ubrmse"]
    assert "SEKF" in sc and np.isfinite(sc["SEKF"]["sm"]["assimilation"]["scc"])
    assert sc["LETKF"]["sm"]["assimilation"]["scc"] > sc["CTL"]["sm"]["assimilation"]["scc"]
    assert sc["LETKF"]["sm"]["assimilation"]["ubrmse"] < sc["CTL"]["sm"]["assimilation"]["ubrmse"]
    assert np.isfinite(sc["IMAGE_ENS"]["sm"]["assimilation"]["scc"])
    for name in ("image_scc_ubrmse.png", "image_depth_time.png", "image_maps.png", "image_twin.md"):
        assert (tmp_path / "summary" / name).stat().st_size > 0
    with xr.open_dataset(tmp_path / "eval" / "observed.nc") as ds:  # GLDAS-like field differs from the truth's
        assert set(ds.data_vars) == {"sm", "sm_10_40", "sm_40_100"}
