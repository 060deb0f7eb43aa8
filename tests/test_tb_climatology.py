"""Seasonal rescaling of Tb innovations (colmda.obs.tb_climatology) and Tb observations in the observation set."""

import sys
from pathlib import Path

import numpy as np
import pytest

from colmda.errors import UserError
from colmda.obs import tb_climatology as C

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda import config  # noqa: E402


def test_pentad_of_the_year():
    t = np.array(["2005-01-01", "2005-01-05", "2005-01-06", "2005-12-31", "2004-12-30", "2004-12-31",
                  "2004-03-01T23:00"], dtype="datetime64[s]")
    # 2004-12-30 is day 365 of a leap year (0-based 364 -> pentad 72), the 366th day stays in pentad 72
    np.testing.assert_array_equal(C.pentad(t), [0, 0, 1, 72, 72, 72, 60 // 5])


def synthetic_series(rng, years=2, ncol=3):
    """Daily pairs of two sensors on ``ncol`` columns: model Tb with a seasonal cycle and noise; observed Tb with
    a seasonally varying, column- and sensor-dependent bias plus noise."""
    days = np.arange(np.datetime64("2003-01-01"), np.datetime64(f"{2003 + years}-01-01"))
    t = np.repeat(days.astype("datetime64[s]") + np.timedelta64(6, "h"), 2 * ncol)
    n = t.size
    sensor = np.tile(np.repeat([0, 1], ncol), days.size)
    column = np.tile(np.tile(np.arange(ncol) * 7 + 3, 2), days.size)
    doy = (t.astype("datetime64[D]") - t.astype("datetime64[Y]").astype("datetime64[D]")).astype(float)
    model = 250.0 + 20.0 * np.sin(2 * np.pi * doy / 365.0) + rng.normal(0, 3.0, n)
    bias = (5.0 + column + 3.0 * sensor) * np.cos(2 * np.pi * doy / 365.0 + column)
    obs = model + bias + rng.normal(0, 4.0, n)
    return sensor, column, t, obs, model


def test_rescaling_removes_the_seasonal_mean_of_the_innovations_exactly():
    """Fitted on the series itself with a one-pentad window, the rescaled innovations y' - H(x) have zero mean in
    every (sensor, pentad, column) to round-off; with a 7-pentad window the innovation mean over each window is
    zero at its central pentad's offset (checked by recomputing the window mean by hand), and a bias that does not
    vary within the window is removed exactly from every row."""
    rng = np.random.default_rng(5)
    sensor, column, t, obs, model = synthetic_series(rng)
    names = ("TbH", "TbV")
    clim = C.fit(names, sensor, column, t, obs, model, window_pentads=1, min_count=1)
    y = np.empty_like(obs)
    for k, name in enumerate(names):
        m = sensor == k
        y[m] = clim.rescale(name, column[m], t[m], obs[m])
    d = y - model
    p = C.pentad(t)
    raw = obs - model
    for k in range(2):
        for c in np.unique(column):
            for q in range(C.NPENTAD):
                m = (sensor == k) & (column == c) & (p == q)
                assert abs(d[m].mean()) < 1e-10
    assert np.abs([raw[(p == q)].mean() for q in range(0, 73, 10)]).max() > 3.0  # there was a seasonal bias
    # 7-pentad window: offset = mean over the window of (model - obs), by hand for one (sensor, column, pentad)
    clim7 = C.fit(names, sensor, column, t, obs, model, window_pentads=7, min_count=1)
    k, c, q = 1, int(column[0]), 2
    near = (sensor == k) & (column == c) & (np.abs((p - q + 36) % 73 - 36) <= 3)
    off = clim7.offset("TbV", np.array([c]), np.array([np.datetime64("2004-01-12")]))  # pentad 2
    assert off[0] == pytest.approx((model[near] - obs[near]).mean(), rel=1e-12)
    # a bias constant over the year is removed from every row exactly (innovations = model noise difference)
    obs_c = model + 7.5 + 2.0 * sensor
    clim_c = C.fit(names, sensor, column, t, obs_c, model, window_pentads=7, min_count=1)
    for k, name in enumerate(names):
        m = sensor == k
        np.testing.assert_allclose(clim_c.rescale(name, column[m], t[m], obs_c[m]) - model[m], 0.0, atol=1e-9)


def test_too_few_pairs_give_no_rescaling_and_files_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    sensor, column, t, obs, model = synthetic_series(rng, years=1, ncol=2)
    keep = ~((column == 3) & (t < np.datetime64("2003-03-01")))  # column 3 unobserved in Jan-Feb
    clim = C.fit(("TbH", "TbV"), sensor[keep], column[keep], t[keep], obs[keep], model[keep], window_pentads=3,
                 min_count=10)
    off = clim.offset("TbH", np.array([3, 3, 10, 99]), np.array(["2003-01-20", "2003-06-20", "2003-01-20",
                                                                 "2003-06-20"], dtype="datetime64[s]"))
    assert np.isnan(off[0]) and np.isfinite(off[1]) and np.isfinite(off[2]) and np.isnan(off[3])  # 99: unknown
    path = C.write_climatology(tmp_path / "clim.nc", clim)
    back = C.read_climatology(path)
    assert back.sensors == ("TbH", "TbV") and back.window_pentads == 3 and back.min_count == 10
    np.testing.assert_array_equal(back.column, clim.column)
    np.testing.assert_array_equal(back.obs_mean, clim.obs_mean)
    np.testing.assert_array_equal(back.count, clim.count)


def test_bad_climatology_input_gives_one_line_errors_naming_file_and_key(tmp_path):
    with pytest.raises(UserError, match=r"^&observations tb_climatology = '.*nothere.nc': file not found") as e:
        C.read_climatology(tmp_path / "nothere.nc")
    assert "\n" not in str(e.value)
    rng = np.random.default_rng(7)
    sensor, column, t, obs, model = synthetic_series(rng, years=1, ncol=1)
    m = sensor == 0
    path = C.write_climatology(tmp_path / "h_only.nc", C.fit(("TbH",), sensor[m], column[m], t[m], obs[m],
                                                             model[m], min_count=1))
    clim = C.read_climatology(path)
    with pytest.raises(UserError, match=r"h_only.nc: sensor 'TbV' not in the file \(it holds TbH\)") as e:
        clim.offset("TbV", column[:1], t[:1], path=str(path))
    assert "\n" not in str(e.value)
    import netCDF4

    with netCDF4.Dataset(tmp_path / "junk.nc", "w") as nc:
        nc.createDimension("x", 1)
        nc.createVariable("column", "i4", ("x",))
    with pytest.raises(UserError, match=r"junk.nc: variable 'obs_mean' missing"):
        C.read_climatology(tmp_path / "junk.nc")
    with pytest.raises(UserError, match="window_pentads = 4"):
        C.fit(("TbH",), sensor[m], column[m], t[m], obs[m], model[m], window_pentads=4)


BASE = """
&experiment
  name = 'tbo'
  start = '2005-06-01'
  end = '2005-06-05'
/
&domain
  box = -40, 60, -60, 80
/
"""


def _tb_file(directory, name, column, lat, lon, values, times, quality=None):
    from colmda.obs.format import ObsTable, write_obs

    n = len(values)
    q = np.zeros(n, np.int32) if quality is None else np.asarray(quality, np.int32)
    t = ObsTable(name, "tb_" + name[-1].lower(), 0.05, np.asarray(times, dtype="datetime64[s]"),
                 np.full(n, column, np.int64), np.full(n, lat), np.full(n, lon), np.asarray(values, float),
                 np.full(n, 4.0), np.full(n, np.nan), q, source="test")
    write_obs(Path(directory) / f"{name}.nc", t)


def test_tb_observations_in_the_observation_set(tmp_path):
    """Tb files are read in K with their own QC (tb_reject_flags: frozen, snow, dense vegetation by default), no
    porosity bounds, and with &observations tb_climatology the values are rescaled (raw kept) and rows without a
    climatology are rejected with their own reason; a missing climatology file is a one-line error naming it."""
    from colmda.assim.observations import NO_CLIMATOLOGY, QUALITY_FLAG, USED, ObservationSet

    s = config.loads(BASE, source="o.nml", overrides=[f"observations.directory={tmp_path}",
                                                      "observations.sensors=TbH,TbV", "assimilation.method=sekf",
                                                      "output.directory=/tmp/unused"])
    inp = H.synthetic_inputs(s)
    c, la, lo = int(inp.column[2]), float(inp.lat[2]), float(inp.lon[2])
    times = ["2005-06-02T06:00", "2005-06-03T06:00", "2005-06-04T06:00"]
    _tb_file(tmp_path, "TbH", c, la, lo, [250.0, 260.0, 270.0], times, quality=[0, 4, 0])
    _tb_file(tmp_path, "TbV", c, la, lo, [270.0, 280.0, 290.0], times, quality=[0, 0, 1])
    kw = dict(lat=inp.lat, lon=inp.lon, cell_deg=(11.25, 11.25), run_porosity=np.full(inp.ncol, 0.45))
    o = ObservationSet(s, inp.column, np.zeros(inp.ncol, int), **kw)
    assert o.is_tb == [True, True] and o.quantities == ["tb_h", "tb_v"]
    got = {(int(k), float(v)): int(r) for k, v, r in zip(o.rows["sensor"], o.rows["value"], o.rows["reason"])}
    assert got == {(0, 250.0): USED, (0, 260.0): QUALITY_FLAG, (0, 270.0): USED, (1, 270.0): USED,
                   (1, 280.0): USED, (1, 290.0): QUALITY_FLAG}
    # climatology: TbH offset -10 K at this column, TbV unknown column -> no climatology
    n = 20
    tt = np.full(n, np.datetime64("2005-06-02T06:00", "s"))
    clim = C.fit(("TbH", "TbV"), np.r_[np.zeros(n, int), np.ones(n, int)], np.r_[np.full(n, c), np.full(n, c + 1)],
                 np.r_[tt, tt], np.full(2 * n, 260.0), np.full(2 * n, 250.0), min_count=5)
    C.write_climatology(tmp_path / "clim.nc", clim)
    s2 = config.loads(BASE, source="o.nml", overrides=[f"observations.directory={tmp_path}",
                                                       "observations.sensors=TbH,TbV", "assimilation.method=sekf",
                                                       "output.directory=/tmp/unused",
                                                       f"observations.tb_climatology={tmp_path / 'clim.nc'}"])
    o = ObservationSet(s2, inp.column, np.zeros(inp.ncol, int), **kw)
    h = o.rows["sensor"] == 0
    np.testing.assert_allclose(o.rows["value"][h], o.rows["raw"][h] - 10.0)
    assert set(o.rows["reason"][~h]) == {NO_CLIMATOLOGY, QUALITY_FLAG}
    s3 = config.loads(BASE, source="o.nml", overrides=[f"observations.directory={tmp_path}",
                                                       "observations.sensors=TbH", "assimilation.method=sekf",
                                                       "output.directory=/tmp/unused",
                                                       f"observations.tb_climatology={tmp_path / 'gone.nc'}"])
    with pytest.raises(UserError, match=r"tb_climatology = '.*gone.nc': file not found"):
        ObservationSet(s3, inp.column, np.zeros(inp.ncol, int), **kw)
