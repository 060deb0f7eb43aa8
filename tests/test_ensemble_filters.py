"""The EnKF family as analysis methods (colmda.assim.ensemble_filters): what each test proves is in its docstring.

The cycle tests here drive the methods through the protocol on the real column core with hand-made
``AnalysisContext``s (plan -> step-by-step forecast with the method's record function -> analyse -> the
consistency layer -> diagnostics), exactly the calls of ``colmda.run.Cycle.window``, so that the method is proved
on its own; the end-to-end runs through ``colmda run`` (ranks, restarts) are in tests/test_ensemble_runs.py.
"""

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from colmda import config
from colmda import ensemble as ens
from colmda import layout as L
from colmda.assim import base, enkf
from colmda.assim.base import AnalysisContext, Forecast
from colmda.assim.consistency import apply_increment, violations
from colmda.assim.ensemble_filters import local_stochastic_enkf
from colmda.core import advance, initial_state
from colmda.errors import UserError
from colmda.forcing.perturb import keyed_normal, perturb_forcing
from colmda.obs.format import ObsTable, write_obs
from colmda.parallel import SerialComm, decompose
from colmda.testing import climate_forcing, column_parameters

DT = 1800.0
NSTEP = 48  # one window = one day
START = dt.datetime(2005, 6, 10)
SIGMA_R = 0.02  # observation error of the simulated retrievals (m3 m-3)
SIGMA_0 = 0.03  # initial perturbation of the top 7 layers (m3 m-3)


def _settings(tmp, method, nmem, extra=()):
    text = f"""
&experiment
    name = 'ens'
    start = '2005-06-10'
    end = '2005-06-20'
    dt = {DT}
    seed = 7
/
&assimilation
    method = '{method}'
    n_members = {nmem}
    obs_operator = 'layer'
    obs_layer = 1
/
&observations
    directory = '{tmp / "obs"}'
    sensors = 'L'
    error = {SIGMA_R}
/
&output
    directory = '{tmp / "run"}'
/
"""
    return config.loads(text, source="ens.nml", overrides=list(extra))


class Twin:
    """A perfect twin on the real core without the driver: ``ncol`` synthetic columns on a 1-degree lattice,
    ``nmem`` members and a truth that are exchangeable draws: all start from one spun-up state plus keyed
    N(0, SIGMA_0^2) soil-moisture perturbations of the top 7 layers and run with their own realisation of the
    SMAP-L4-style forcing perturbations (``forcing.perturb``). The truth's top-layer soil moisture once a day
    plus N(0, SIGMA_R^2) noise is the 'L' retrieval of every column, at 06, 12 or 18 UTC depending on the
    column (so that the observations of a window are not in column order when sorted by time)."""

    def __init__(self, tmp, ncol=40, nmem=16, days=6, seed=3):
        climates = (["temperate", "tropical", "boreal", "arid"] * ncol)[:ncol]
        self.ncol, self.nmem, self.days = ncol, nmem, days
        self.column = np.arange(ncol, dtype=np.int64) * 3 + 5  # global ids, not 0..n-1
        self.lat = 30.0 + (np.arange(ncol) // 8).astype(float)
        self.lon = 100.0 + (np.arange(ncol) % 8).astype(float)
        params = column_parameters(climates)
        state = initial_state(params, temperature=290.0, saturation=0.45)
        advance(state, params, climate_forcing(climates, NSTEP * 10, dt=DT, start_doy=150.0), DT)
        nall = nmem + 1  # the truth is drawn as "member" nmem
        big = state.repeat(nall)
        bigp = params.repeat(nall)
        dz = bigp.dz_soil
        s = L.NSNOW_MAX
        gcol, gmem = ens.global_keys(self.column, nall)
        z = keyed_normal(seed, 950, np.arange(7)[:, None], gmem[None, :], gcol[None, :])
        liq = big.wliq_soisno[s:s + 7] / 1000.0 / dz[:7, None]
        ice = big.wice_soisno[s:s + 7] / 917.0 / dz[:7, None]
        theta_s = bigp.soilpar[L.SP_THETA_S, :7, :]
        big.wliq_soisno[s:s + 7] = np.clip(liq + SIGMA_0 * z, 0.05, 0.95 * theta_s - ice) * 1000.0 * dz[:7, None]
        forc = climate_forcing(climates, NSTEP * days, dt=DT, start_doy=161.0, seed=seed)
        fens = perturb_forcing(forc, seed + 20, self.column, np.arange(nall), np.datetime64(START, "s"), DT)
        # (NF, nsteps, nmem, ncol) -> column-major flat columns (colmda.ensemble)
        flat = np.ascontiguousarray(np.transpose(fens, (0, 1, 3, 2))).reshape(fens.shape[0], fens.shape[1], -1)
        self.forc = np.asfortranarray(flat)
        self.params_all = bigp
        self.state_all = big
        self.dz = dz
        members = (np.arange(ncol)[:, None] * nall + np.arange(nmem)[None, :]).ravel()
        truth = np.arange(ncol) * nall + nmem
        self.members, self.truth_cols = members, truth
        # the truth run first: its top layer observed once a day
        tstate = big.take(truth)
        tparams = bigp.take(truth)
        self.obs_step = obs_step = 11 + 12 * (np.arange(ncol) % 3)  # retrievals at 06, 12 or 18 UTC
        self.truth_theta = []  # (days,) top-7-layer soil moisture of the truth at every window end (ncol, 7)
        times, cols, values = [], [], []
        for d in range(days):
            for k in range(NSTEP):
                advance(tstate, tparams, self.forc[:, d * NSTEP + k:d * NSTEP + k + 1][:, :, truth], DT, nper=1)
                seen = obs_step == k
                if seen.any():
                    top = tstate.volumetric_soil_moisture(dz)[0][seen]
                    hours = (k + 1) * DT / 3600.0
                    times.append(np.full(seen.sum(), np.datetime64(START + dt.timedelta(days=d, hours=hours), "s")))
                    cols.append(self.column[seen])
                    values.append(top + SIGMA_R * keyed_normal(seed, 951, d, self.column[seen]))
            self.truth_theta.append(tstate.volumetric_soil_moisture(dz)[:7].T.copy())
        (tmp / "obs").mkdir(parents=True, exist_ok=True)
        n = ncol * days
        cols = np.concatenate(cols)
        at = np.searchsorted(self.column, cols)
        write_obs(tmp / "obs" / "L.nc", ObsTable(
            "L", "volumetric", 0.05, np.concatenate(times), cols, self.lat[at], self.lon[at], np.concatenate(values),
            np.full(n, SIGMA_R), np.full(n, np.nan),
            np.zeros(n, np.int32), source="test_ensemble_filters"))
        self.inputs = SimpleNamespace(column=self.column, lat=self.lat, lon=self.lon,
                                      grid_lat=np.unique(self.lat), grid_lon=np.unique(self.lon),
                                      params=params, pft=np.array([{"temperate": 7, "tropical": 4, "boreal": 2,
                                                                    "arid": 0}[c] for c in climates]), domain=None)

    def cycle(self, settings, columns=None, check_bounds=True, comm=None, method=None):
        """Run the method of ``settings`` over the twin's days through the protocol; ``columns`` restricts the
        run to a subset of the twin's columns (a 'rank'). Returns the per-window records of background and
        analysis ensembles, innovations and reports."""
        cls = base.get(settings.assimilation.method)
        base.check_members(cls, settings.assimilation.n_members, settings.source)
        N = self.nmem
        pos = np.arange(self.ncol) if columns is None else np.asarray(columns)
        flat_all = (pos[:, None] * (N + 1) + np.arange(N)[None, :]).ravel()
        state = self.state_all.take(flat_all)
        params = self.params_all.take(flat_all)
        comm = comm or SerialComm()
        method = method or cls(settings, self.inputs, comm)
        carry = {name: np.full(shape + (len(pos),), init) for name, (shape, init) in cls.carry.items()}
        out = []
        for w in range(min(self.days, (settings.end - settings.start).days)):
            t0 = START + dt.timedelta(days=w)
            t1 = t0 + dt.timedelta(days=1)
            ctx = AnalysisContext(settings, comm, decompose(self.ncol, getattr(comm, "size", 1)), w, t0, t1, state,
                                  params,
                                  self.column[pos], self.lat[pos], self.lon[pos], None, N, self.inputs, carry)
            request = method.plan(ctx)
            recs = []
            for k in range(NSTEP):
                advance(state, params, self.forc[:, w * NSTEP + k:w * NSTEP + k + 1][:, :, self.members_of(pos)], DT,
                        nper=1)
                if request.record is not None:
                    recs.append(request.record(state))
            records = {key: np.stack([r[key] for r in recs]) for key in recs[0]} if recs else None
            ctx.state = state
            before = state.copy()
            analysis = method.analyse(ctx, request, Forecast(None, None, records))
            report = apply_increment(state, params, analysis.columns, analysis.increment)
            if check_bounds:
                assert violations(before, state, params) == [], w
            diag = method.diagnostics(ctx, analysis, report)
            method.write_diagnostics(ctx, analysis, report)
            out.append({"background": ens.control_vector(before, self.dz, N), "analysis":
                        ens.control_vector(state, self.dz, N), "diag": diag, "analysis_obj": analysis,
                        "truth": self.truth_theta[w][pos], "inflation": carry["inflation"].copy()})
        return out, method

    def members_of(self, pos):
        return (np.asarray(pos)[:, None] * (self.nmem + 1) + np.arange(self.nmem)[None, :]).ravel()


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enstwin")
    return tmp, Twin(tmp)


def _scores(out):
    """Spread/skill of the top layer (RMS ensemble spread / RMSE of the mean against the truth, over columns
    and windows, at the analysis time before the analysis) and the normalised innovation variance
    mean(d^2 / (HPH' + R)) of the used retrievals."""
    sp2, er2, z2 = [], [], []
    for o in out:
        E = o["background"][:, :, 0]
        sp2.append(E.var(axis=1, ddof=1))
        er2.append((E.mean(axis=1) - o["truth"][:, 0]) ** 2)
        r = o["diag"]["rows"]
        u = r["reason"] == 0
        z2.append(r["innovation"][u] ** 2 / (r["hx_spread"][u] ** 2 + r["error"][u] ** 2))
    return np.sqrt(np.mean(np.concatenate(sp2)) / np.mean(np.concatenate(er2))), np.mean(np.concatenate(z2))


@pytest.mark.parametrize("method", ["letkf", "enkf"])
def test_perfect_twin_is_consistent_and_beats_the_free_ensemble(twin, method):
    """Perfect twin with known error statistics (truth = an exchangeable extra member, retrievals with the R the
    filter uses): over 6 daily analyses of 40 columns with 16 members, the spread/skill ratio of the top layer
    and the normalised innovation variance d^2 / (HPH' + R) are within 0.8-1.2, the analysis mean of the
    observed layer is closer to the truth than the background (and the analysis spread/skill ratio is within
    0.8-1.2 too: the analysis ensemble's spread is the filter's own estimate of its error), no member ever leaves
    [residual, porosity] or changes a frozen layer (checked after every analysis), and the diagnostics' O - B is the ensemble-mean
    innovation. The same twin with the filter told R is 4 times too small (error 0.005 instead of 0.02) fails
    the normalised innovation check: the test can fail."""
    tmp, tw = twin
    out, _ = tw.cycle(_settings(tmp, method, tw.nmem))
    ratio, niv = _scores(out)
    assert 0.8 < ratio < 1.2, (ratio, niv)
    assert 0.8 < niv < 1.2, (ratio, niv)
    eb = np.sqrt(np.mean([((o["background"][:, :, 0].mean(1) - o["truth"][:, 0]) ** 2).mean() for o in out]))
    ea = np.sqrt(np.mean([((o["analysis"][:, :, 0].mean(1) - o["truth"][:, 0]) ** 2).mean() for o in out]))
    # the analysis ensemble's spread is the filter's estimate of the analysis error: it must match it too
    sa = np.sqrt(np.mean([o["analysis"][:, :, 0].var(axis=1, ddof=1).mean() for o in out]))
    assert ea < 0.95 * eb and 0.8 < sa / ea < 1.2, (ea, eb, sa)
    r = out[0]["diag"]["rows"]
    u = r["reason"] == 0
    assert u.sum() == tw.ncol
    np.testing.assert_allclose(r["innovation"][u], r["value"][u] - r["hx"][u], rtol=0, atol=0)
    bad, _ = tw.cycle(_settings(tmp, method, tw.nmem, ["observations.error=0.005"]))
    assert _scores(bad)[1] > 2.0


def _column_local_analysis(tmp, tw, extra=()):
    """One column-local LETKF analysis of the twin's first day through the method, with the members' model
    equivalents recorded independently here: (analysis, window-end state, HE (ncol, N), y (ncol,))."""
    s = _settings(tmp, "letkf", tw.nmem, ["experiment.end=2005-06-11", *extra])
    cls = base.get("letkf")
    N = tw.nmem
    pos = np.arange(tw.ncol)
    state = tw.state_all.take(tw.members_of(pos))
    params = tw.params_all.take(tw.members_of(pos))
    method = cls(s, tw.inputs, SerialComm())
    t0, t1 = START, START + dt.timedelta(days=1)
    ctx = AnalysisContext(s, SerialComm(), decompose(tw.ncol, 1), 0, t0, t1, state, params, tw.column, tw.lat,
                          tw.lon, None, N, tw.inputs, {"inflation": np.zeros(tw.ncol)})
    request = method.plan(ctx)
    recs = []
    he = np.zeros((tw.ncol, N))
    for k in range(NSTEP):
        advance(state, params, tw.forc[:, k:k + 1][:, :, tw.members_of(pos)], DT, nper=1)
        recs.append(request.record(state))
        top = ens.unflatten(state.volumetric_soil_moisture(tw.dz)[0], N)  # (ncol, N)
        seen = tw.obs_step == k
        he[seen] = top[seen]
    records = {key: np.stack([r[key] for r in recs]) for key in recs[0]}
    ctx.state = state
    analysis = method.analyse(ctx, request, Forecast(None, None, records))
    obs = xr.open_dataset(tmp / "obs" / "L.nc")
    day1 = obs.time.values < np.datetime64("2005-06-11")
    y = np.zeros(tw.ncol)
    y[np.searchsorted(tw.column, obs.column.values[day1])] = obs.value.values[day1]
    return analysis, state, he, y


def test_column_local_letkf_is_the_etkf_of_each_column_with_its_own_retrievals(twin):
    """The method's column-local LETKF increments equal colmda.assim.enkf.etkf applied independently per column
    to the ensemble of the control layers at the window end with the model equivalents of the members' top
    layer at each column's observation time (recorded independently here), i.e. the method's bookkeeping (flat
    columns, step index, operator, ordering) is right."""
    tmp, tw = twin
    N = tw.nmem
    analysis, state, he, y = _column_local_analysis(tmp, tw)
    E = ens.control_vector(state, tw.dz, N)
    ref = enkf.etkf(E, he[:, :, None], y[:, None], np.full((tw.ncol, 1), SIGMA_R ** 2))
    np.testing.assert_array_equal(analysis.columns, np.arange(tw.ncol * N))
    inc = analysis.increment.T.reshape(tw.ncol, N, 7)
    np.testing.assert_allclose(inc, ref.ensemble - E, rtol=0, atol=1e-14)
    assert analysis.state_increments == {}


def test_temperature_and_swe_in_the_control_vector(twin):
    """&enkf control_soil_temperature / control_swe: the soil-moisture increments are those of the soil-moisture-only
    analysis (the ETKF's weights depend on observation space only), and the top soil temperature and SWE increments
    of every member equal the ETKF of the extended control vector computed independently here."""
    tmp, tw = twin
    N = tw.nmem
    plain, _, _, _ = _column_local_analysis(tmp, tw)
    ext, state, he, y = _column_local_analysis(tmp, tw, ["enkf.control_soil_temperature=.true.",
                                                         "enkf.control_swe=.true."])
    np.testing.assert_allclose(ext.increment, plain.increment, rtol=0, atol=1e-14)
    spec = ens.ControlSpec(layers=7, soil_temperature=True, swe=True)
    E = ens.control_vector(state, tw.dz, N, spec)
    ref = enkf.etkf(E, he[:, :, None], y[:, None], np.full((tw.ncol, 1), SIGMA_R ** 2))
    d = (ref.ensemble - E).reshape(tw.ncol * N, spec.size)
    np.testing.assert_allclose(ext.state_increments["t_soil_1"], d[:, 7], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ext.state_increments["swe"], d[:, 8], rtol=0, atol=1e-12)
    assert np.abs(ext.state_increments["t_soil_1"]).max() > 0  # temperature covaries with the observed layer


class ThreadComm:
    """Two or more 'ranks' as threads of this process: allgather and gather through a barrier (test aid for the
    collective calls of a method; real MPI runs are in tests/test_ensemble_runs.py)."""

    def __init__(self, rank, size, shared, barrier):
        self.rank, self.size, self.shared, self.barrier = rank, size, shared, barrier

    @property
    def is_root(self):
        return self.rank == 0

    def allgather(self, obj):
        self.shared[self.rank] = obj
        self.barrier.wait()
        out = [self.shared[r] for r in range(self.size)]
        self.barrier.wait()
        return out

    def gather(self, obj, root=0):
        out = self.allgather(obj)
        return out if self.rank == root else None


def _split_run(tw, s, parts):
    """Run the twin's cycle with the columns split into ``parts`` (consecutive blocks), one thread per block."""
    import threading

    n = len(parts)
    shared, barrier = {}, threading.Barrier(n)
    results, errors = [None] * n, []
    comms = [ThreadComm(r, n, shared, barrier) for r in range(n)]
    # built here, one after the other: netCDF (the observation files) must not be read by two threads at once
    methods = [base.get(s.assimilation.method)(s, tw.inputs, c) for c in comms]

    def work(r):
        try:
            out, _ = tw.cycle(s, columns=parts[r], comm=comms[r], method=methods[r])
            results[r] = np.stack([o["analysis"] for o in out], axis=1)
        except BaseException as exc:  # noqa: BLE001 (re-raised below)
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return np.concatenate(results)


def test_a_column_s_analysis_does_not_depend_on_how_the_columns_are_split(twin):
    """3-D LETKF (300 km) and stochastic EnKF (300 km) over two daily windows: the columns analysed by one 'rank'
    or split into 2 and 3 blocks (threads exchanging the observations' model equivalents through the method's
    allgather) give bitwise the same members; the stochastic EnKF's observation perturbations are keyed by
    observation and member, so every block draws the same ones. The localisation must matter (the 3-D result
    differs from the column-local one), otherwise the test would prove nothing about the gather."""
    tmp, tw = twin
    for method in ("letkf", "enkf"):
        s = _settings(tmp, method, tw.nmem, ["experiment.end=2005-06-12", "enkf.localization_km=300",
                                             "assimilation.diagnostics=.false."])
        whole = _split_run(tw, s, [np.arange(tw.ncol)])
        for cuts in ([17], [9, 30]):
            np.testing.assert_array_equal(whole, _split_run(tw, s, np.split(np.arange(tw.ncol), cuts)))
        s0 = _settings(tmp, method, tw.nmem, ["experiment.end=2005-06-12", "assimilation.diagnostics=.false."])
        assert np.abs(_split_run(tw, s0, [np.arange(tw.ncol)]) - whole).max() > 1e-3


def test_local_stochastic_enkf_is_the_stochastic_enkf_of_each_column():
    """local_stochastic_enkf equals colmda.assim.enkf.stochastic_enkf applied to each column with its own local
    observations, weights and the noise of those observations (so grouping by observation count changes
    nothing), and a column without observations is unchanged."""
    rng = np.random.default_rng(4)
    ncol, N, n, nobs = 9, 6, 3, 12
    E = rng.normal(size=(ncol, N, n))
    HE = rng.normal(size=(nobs, N))
    y = rng.normal(size=nobs)
    r = rng.uniform(0.5, 1.5, nobs)
    noise = rng.normal(size=(nobs, N))
    lat = rng.uniform(0, 3, ncol)
    lon = rng.uniform(0, 3, ncol)
    local = enkf.local_observations(lat, lon, rng.uniform(0, 3, nobs), rng.uniform(0, 3, nobs), 60.0)
    res = local_stochastic_enkf(E, HE, y, r, noise, local, inflation=1.1)
    for c in range(ncol):
        k = int(local.n_obs[c])
        if k == 0:
            np.testing.assert_array_equal(res.ensemble[c], E[c])
            continue
        idx, w = local.index[c, :k], local.weight[c, :k]
        one = enkf.stochastic_enkf(E[c:c + 1], HE[idx].T[None], y[idx][None], r[idx][None], noise[idx].T[None],
                                   w[None], inflation=1.1)
        np.testing.assert_allclose(res.ensemble[c], one.ensemble[0], rtol=0, atol=1e-13)
    assert (local.n_obs == 0).any() and (local.n_obs > 1).any()


def test_adaptive_inflation_is_carried_and_rtps_restores_spread(twin):
    """'adaptive': the per-column inflation lives in the driver's carry array, starts at inflation_factor and
    stays within [1, inflation_max]; in this perfect twin (no inflation needed) it stays near 1. 'rtps' with
    relaxation 1 restores the background spread of every analysed column exactly while moving the mean."""
    tmp, tw = twin
    out, _ = tw.cycle(_settings(tmp, "letkf", tw.nmem, ["experiment.end=2005-06-13", "enkf.inflation=adaptive",
                                                        "enkf.inflation_factor=1.2"]))
    rho = out[-1]["inflation"]
    assert np.all(rho >= 1.0) and np.all(rho <= 5.0) and np.all(rho > 0)
    assert abs(np.median(rho) - 1.0) < 0.2
    assert np.any(out[0]["inflation"] != 1.2)
    out, _ = tw.cycle(_settings(tmp, "letkf", tw.nmem, ["experiment.end=2005-06-11", "enkf.inflation=rtps",
                                                        "enkf.relaxation=1.0"]), check_bounds=False)
    a = out[0]["analysis_obj"]
    inc = a.increment.T.reshape(tw.ncol, tw.nmem, 7)
    E = out[0]["background"]
    Ea = E + inc  # the filter's analysis before the consistency layer
    np.testing.assert_allclose(Ea.std(axis=1), E.std(axis=1), rtol=1e-10)
    assert np.abs(inc.mean(axis=1)).max() > 1e-3


def test_bad_input_is_a_one_line_error_naming_the_key(twin):
    """Member count < 2, etkf with a localisation radius, a radius whose support reaches no neighbouring column,
    an unknown &enkf key, an unknown inflation kind and an adaptive start above its bound: one-line UserErrors
    naming the key and what is expected."""
    tmp, tw = twin
    with pytest.raises(UserError, match=r"n_members = 1: method 'letkf' needs an ensemble; expected n_members >= 2"):
        _settings(tmp, "letkf", 1)
    with pytest.raises(UserError, match=r"&enkf localization_km = 100: method 'etkf' uses every observation"):
        _settings(tmp, "etkf", 4, ["enkf.localization_km=100"])
    with pytest.raises(UserError, match=r"&enkf localization_km = 20: the Gaspari-Cohn support .* expected 0 "
                                        r"\(column-local filter\) or more than \d+ km"):
        base.get("letkf")(_settings(tmp, "letkf", 4, ["enkf.localization_km=20"]), tw.inputs, SerialComm())
    with pytest.raises(UserError, match=r"localisation_km"):
        _settings(tmp, "letkf", 4, ["enkf.localisation_km=100"])
    with pytest.raises(UserError, match=r"&enkf inflation"):
        _settings(tmp, "letkf", 4, ["enkf.inflation=anderson"])
    with pytest.raises(UserError, match=r"&enkf inflation_factor = 6: the first value of the adaptive"):
        base.get("letkf")(_settings(tmp, "letkf", 4, ["enkf.inflation=adaptive", "enkf.inflation_factor=6"]),
                          tw.inputs, SerialComm())
    with pytest.raises(UserError) as exc:
        _settings(tmp, "etkf", 4, ["enkf.localization_km=100"])
    assert "\n" not in str(exc.value)


def test_etkf_uses_every_retrieval_unlocalised(twin):
    """'etkf': every column is analysed with every retrieval of the domain at weight 1, i.e. the LETKF with an
    (effectively) infinite radius (1e9 km: Gaspari-Cohn weights 1 - O(1e-12)) to 1e-9, and it differs from the
    column-local filter."""
    tmp, tw = twin
    end = ["experiment.end=2005-06-11", "assimilation.diagnostics=.false."]
    e, _ = tw.cycle(_settings(tmp, "etkf", tw.nmem, end))
    wide, _ = tw.cycle(_settings(tmp, "letkf", tw.nmem, end + ["enkf.localization_km=1e9"]))
    local, _ = tw.cycle(_settings(tmp, "letkf", tw.nmem, end))
    np.testing.assert_allclose(e[0]["analysis"], wide[0]["analysis"], rtol=0, atol=1e-9)
    assert np.abs(e[0]["analysis"] - local[0]["analysis"]).max() > 1e-3
    n_local = e[0]["diag"]["columns"]["n_local_obs"]
    assert np.all(n_local == (e[0]["diag"]["rows"]["reason"] == 0).sum())


def test_diagnostics_of_a_rank_without_analysed_columns_keep_every_variable(twin):
    """A rank whose columns have no retrieval in the window still hands the writer every per-column variable
    (empty), and the writer's gather leaves out parts without rows, so the gathered file has the same variables
    for any rank count (before, a rank without analysed columns removed the other ranks' per-column variables
    from the SEKF's files)."""
    from colmda.assim.diagnostics import _cat

    tmp, tw = twin
    s = _settings(tmp, "letkf", tw.nmem, ["experiment.end=2005-06-11", "assimilation.diagnostics=.false."])
    out, m = tw.cycle(s)
    full = out[0]["diag"]["columns"]
    empty = m.diagnostics(SimpleNamespace(column=tw.column, n_members=tw.nmem),
                          base.Analysis(np.zeros(0, np.int64), np.zeros((7, 0)), {
                              "obs": out[0]["analysis_obj"].diagnostics["obs"].take(np.zeros(0, np.int64)),
                              "row_hx": np.zeros(0), "row_sd": np.zeros(0)}), None)["columns"]
    assert set(empty) == set(full)
    merged = _cat([full, empty])
    assert set(merged) == set(full) and len(merged["column"]) == len(full["column"])
    # and a part without rows that lacks variables (the SEKF's columns of a rank without retrievals) drops nothing
    merged = _cat([{"column": np.zeros(0)}, full])
    assert set(merged) == set(full)
    assert set(_cat([{"column": np.zeros(0)}, {"column": np.zeros(0)}])) == {"column"}
