"""The shared model-equivalent layer (colmda.assim.equivalents): records, values, model QC, Jacobians."""

from types import SimpleNamespace

import numpy as np
import pytest

from colmda import layout as L
from colmda.assim import equivalents as E
from colmda.constants import DENH2O, DENICE, TFRZ
from colmda.core import default_soil_thickness, soil_nodes
from colmda.errors import UserError
from colmda.obs import operators
from colmda.obs import tau_omega as T

DZ = default_soil_thickness()
NL = DZ.size


def fake_batch(rng, nb, frozen=(), snowy=()):
    """An object with the ColumnState arrays the record function reads (snow layers empty)."""
    s = L.NSNOW_MAX
    theta = rng.uniform(0.05, 0.4, (NL, nb))
    ice = np.zeros((NL, nb))
    for c in frozen:
        ice[:2, c] = 0.05
    wliq = np.zeros((s + NL, nb))
    wice = np.zeros((s + NL, nb))
    wliq[s:] = (theta - ice) * DENH2O * DZ[:, None]
    wice[s:] = ice * DENICE * DZ[:, None]
    t = np.zeros((s + NL, nb))
    t[s:] = rng.uniform(285.0, 305.0, (NL, nb))
    for c in frozen:
        t[s, c] = TFRZ - 2.0
    cstate = np.zeros((L.CS_SCV + 1, nb))
    for c in snowy:
        cstate[L.CS_SCV, c] = 20.0
    return SimpleNamespace(wliq_soisno=wliq, wice_soisno=wice, t_soisno=t, cstate=cstate)


def tb_and_retrieval(min_layers=0):
    ops = [E.SensorOperator("L", "retrieval", E.retrieval_weights(DZ, 0.05)),
           E.SensorOperator("TbH", "tb", operators.sensing_weights(DZ, 0.05), "h"),
           E.SensorOperator("TbV", "tb", operators.sensing_weights(DZ, 0.05), "v")]
    return E.ModelEquivalents(ops, DZ, min_layers=min_layers)


def records_of(eq, batches):
    rec = eq.record_function()
    snaps = [rec(b) for b in batches]
    return {k: np.stack([s[k] for s in snaps]) for k in snaps[0]}


def test_records_cover_every_batch_column_and_what_the_operators_need():
    """The record of a batch holds total water of nsnap layers, top temperature and SWE of EVERY column (the
    background, perturbed copies, members alike), and for Tb sensors the ice of the sensed layers and the soil
    temperature down to the layer below the 50 cm node."""
    rng = np.random.default_rng(1)
    eq = tb_and_retrieval(min_layers=7)
    b = fake_batch(rng, 9)
    r = eq.record_function()(b)
    s = L.NSNOW_MAX
    assert eq.nsnap == 7
    np.testing.assert_allclose(r["theta"], (b.wliq_soisno[s:s + 7] / DENH2O + b.wice_soisno[s:s + 7] / DENICE)
                               / DZ[:7, None], rtol=1e-15)
    assert r["t_top"].shape == r["swe"].shape == (9,)
    z = soil_nodes(DZ)
    assert z[eq.ntemp - 1] >= 0.5 > z[eq.ntemp - 2]  # T_eff interpolates at 50 cm
    assert r["t_soil"].shape == (eq.ntemp, 9) and r["theta_ice"].shape == (eq.nsense, 9)
    only_retrievals = E.ModelEquivalents([E.SensorOperator("L", "retrieval", E.retrieval_weights(DZ, 0.05))], DZ)
    assert set(only_retrievals.record_function()(b)) == {"theta", "t_top", "swe"}
    # a subset of the batch (e.g. the members of the observed columns): the same values at the chosen columns
    cols = np.array([7, 2, 3])
    sub = eq.record_function(cols)(b)
    for k, v in r.items():
        np.testing.assert_array_equal(sub[k], v[..., cols])


def test_tb_equivalents_equal_the_truth_simulator_bit_for_bit():
    """The operator path (records -> values) is the truth simulator's computation: on the same recorded states,
    TbSimulator without noise and ModelEquivalents.values give identical Tb (H and V), so a filter whose state
    equals the truth has zero innovations."""
    from colmda.obs.sensors import default_specs
    from colmda.obs.simulate import TbSimulator

    rng = np.random.default_rng(2)
    ncol, nsteps, dt = 40, 48, 1800.0
    eq = tb_and_retrieval()
    batches = [fake_batch(rng, ncol) for _ in range(nsteps)]
    s = L.NSNOW_MAX
    for b in batches:  # a little ice (below the QC threshold) in layer 2 of a third of the columns, frozen layer 3
        b.wice_soisno[s + 1, ::3] = 0.0008 * DENICE * DZ[1]  # in some steps of the others: the sensor sees liquid only
        b.wice_soisno[s + 2, 1::3] = np.where(rng.uniform(size=b.wice_soisno[s + 2, 1::3].size) < 0.5, 0.02, 0.0) \
            * DENICE * DZ[2]
    recs = records_of(eq, batches)
    lat, lon = rng.uniform(30, 40, ncol), rng.uniform(100, 120, ncol)
    pft, clay, lai = rng.choice([0, 7, 13, 15], ncol), rng.uniform(0.05, 0.5, ncol), rng.uniform(0, 4, ncol)
    site = E.SiteParameters(lai=lai, pft=pft, clay=clay)
    snaps = dict(theta=np.stack([np.vstack([recs["theta"][k], np.zeros((NL - eq.nsnap, ncol))])
                                 for k in range(nsteps)]),
                 theta_ice=np.concatenate([recs["theta_ice"], np.zeros((nsteps, NL - eq.nsense, ncol))], 1),
                 t_soil=np.concatenate([recs["t_soil"], np.full((nsteps, NL - eq.ntemp, ncol), 290.0)], 1),
                 swe=recs["swe"], lai=lai, porosity=np.full((NL, ncol), 0.45))
    t0 = np.datetime64("2005-06-01T00:00", "s")
    for k_sensor, pol in ((1, "h"), (2, "v")):
        sim = TbSimulator(default_specs()["L"], np.arange(ncol), lat, lon, DZ, t0, t0 + np.timedelta64(2, "D"), 1,
                          polarisation=pol, pft=pft, clay=clay, nedt=0.0, repr_std=0.0)
        tab = sim.sample(np.arange(ncol), t0, dt, nsteps, snaps)
        assert len(tab) > 5
        k = operators.step_index(tab.time, t0, dt, nsteps)
        hx = eq.values(recs, k, tab.column, np.full(len(tab), k_sensor), site)
        frozen = np.isnan(tab.value)  # the truth flags ice in the sensed layers; so does the model QC
        assert frozen.any() and not frozen.all()
        np.testing.assert_array_equal(frozen, eq.model_qc(recs, k, tab.column, np.full(len(tab), k_sensor)))
        np.testing.assert_array_equal(hx[~frozen], tab.value[~frozen])
    # retrieval rows: the weighted total water
    k = rng.integers(0, nsteps, 30)
    p = rng.integers(0, ncol, 30)
    w = E.retrieval_weights(DZ, 0.05)[: eq.nsnap]
    np.testing.assert_allclose(eq.values(recs, k, p, np.zeros(30, int)), recs["theta"][k, :, p] @ w, rtol=1e-14)
    with pytest.raises(UserError, match="site parameters"):
        eq.values(recs, k, p, np.ones(30, int))


def test_operator_jacobian_matches_finite_differences_of_the_records():
    """values(jacobian=True): d(equivalent)/d(theta_l) at the recorded state equals centred differences of the
    values when the recorded theta of layer l is moved (Tb: dTb/dtheta_s times the sensing weight)."""
    rng = np.random.default_rng(3)
    ncol = 12
    eq = tb_and_retrieval()
    recs = records_of(eq, [fake_batch(rng, ncol)])
    site = E.SiteParameters(lai=rng.uniform(0, 3, ncol), pft=rng.choice([0, 13, 15], ncol),
                            clay=rng.uniform(0.05, 0.4, ncol))
    pos = np.repeat(np.arange(ncol), 3)
    sens = np.tile([0, 1, 2], ncol)
    step = np.zeros(pos.size, int)
    hx, d = eq.values(recs, step, pos, sens, site, jacobian=True)
    h = 1e-6
    for layer in range(eq.nsense):
        up, dn = ({k: v.copy() for k, v in recs.items()} for _ in range(2))
        up["theta"][:, layer] += h
        dn["theta"][:, layer] -= h
        fd = (eq.values(up, step, pos, sens, site) - eq.values(dn, step, pos, sens, site)) / (2 * h)
        np.testing.assert_allclose(d[:, layer], fd, rtol=1e-5, atol=1e-6)
    assert np.all(d[sens > 0, 0] < 0)  # Tb decreases with surface soil moisture


def test_model_qc_frozen_snow_and_ice_in_sensed_layers():
    """Model QC: frozen top layer or snow rejects every row; ice in a sensed layer (with a thawed top layer)
    rejects Tb rows only (the operator models no frozen soil)."""
    rng = np.random.default_rng(4)
    eq = tb_and_retrieval()
    b = fake_batch(rng, 6, frozen=(0,), snowy=(1,))
    s = L.NSNOW_MAX
    b.wice_soisno[s + 1, 2] = 0.01 * DENICE * DZ[1]  # ice in layer 2 of column 2, top layer above freezing
    recs = records_of(eq, [b])
    pos = np.repeat(np.arange(6), 2)
    sens = np.tile([0, 1], 6)
    bad = eq.model_qc(recs, np.zeros(12, int), pos, sens)
    expect = np.zeros(12, bool)
    expect[[0, 1, 2, 3]] = True  # columns 0 (frozen) and 1 (snow): both sensors
    expect[5] = True  # column 2: the Tb row only
    np.testing.assert_array_equal(bad, expect)


def test_site_parameters_of_flat_member_columns():
    """site_parameters maps flat columns (local * N + member) and perturbed copies to their column's PFT and clay
    and to the flat column's own LAI."""
    N = 3
    inputs = SimpleNamespace(column=np.array([4, 9, 17]), pft=np.array([1, 13, 15]), clay=np.array([.1, .2, .3]))
    colpar = np.zeros((L.NCP, 2 * N))
    colpar[L.CP_LAI] = np.arange(2 * N, dtype=float)
    ctx = SimpleNamespace(params=SimpleNamespace(colpar=colpar), inputs=inputs, column=np.array([9, 17]),
                          n_members=N)
    site = E.site_parameters(ctx)
    np.testing.assert_array_equal(site.pft, [13, 13, 13, 15, 15, 15])
    np.testing.assert_array_equal(site.clay, [.2, .2, .2, .3, .3, .3])
    np.testing.assert_array_equal(site.lai, np.arange(6.0))
    site = E.site_parameters(ctx, np.array([0, 1, 2, 3, 4, 5, 4, 4]))
    np.testing.assert_array_equal(site.pft[-2:], [15, 15])
    ctx.inputs = SimpleNamespace(column=inputs.column, pft=inputs.pft, clay=None)
    with pytest.raises(UserError, match="clay"):
        E.site_parameters(ctx)


def test_operator_roughness_comes_from_the_namelist_and_defaults_to_the_operator_default():
    """&observations tb_roughness reaches the filters' operator (and its default is the operator's own default h,
    so runs without the key are unchanged); a different value changes the model Tb (an operator bias in a twin)."""
    from colmda import config

    s = config.loads("&observations\n tb_roughness = 0.4\n/\n")
    assert E.operator_params(config.defaults()).h == T.TauOmegaParams().h == 0.13
    assert E.operator_params(s).h == 0.4
    rng = np.random.default_rng(8)
    recs = records_of(tb_and_retrieval(), [fake_batch(rng, 5)])
    site = E.SiteParameters(lai=np.full(5, 1.0), pft=np.full(5, 13), clay=np.full(5, 0.2))
    ops = tb_and_retrieval().sensors
    smooth = E.ModelEquivalents(ops, DZ).values(recs, np.zeros(5, int), np.arange(5), np.ones(5, int), site)
    rough = E.ModelEquivalents(ops, DZ, tau_omega_params=E.operator_params(s)).values(
        recs, np.zeros(5, int), np.arange(5), np.ones(5, int), site)
    assert np.all(rough > smooth + 1.0)  # a rougher surface reflects less: warmer Tb


def test_member_values_are_the_values_of_each_flat_member_column():
    """member_values(first = column * N) gives, for every row, the equivalents of the N adjacent flat member columns
    (retrieval and Tb rows mixed), equal to values() asked member by member."""
    rng = np.random.default_rng(9)
    N, ncol = 4, 5
    eq = tb_and_retrieval()
    recs = records_of(eq, [fake_batch(rng, N * ncol) for _ in range(3)])
    site = E.SiteParameters(lai=rng.uniform(0, 3, N * ncol), pft=np.repeat(rng.choice([0, 13, 15], ncol), N),
                            clay=np.repeat(rng.uniform(0.1, 0.4, ncol), N))
    col = np.array([0, 3, 3, 4, 1])
    step = np.array([0, 2, 1, 2, 0])
    sens = np.array([1, 2, 0, 1, 2])
    he = eq.member_values(recs, step, col * N, sens, N, site)
    assert he.shape == (5, N)
    for m in range(N):
        np.testing.assert_array_equal(he[:, m], eq.values(recs, step, col * N + m, sens, site))
    assert np.all(he.std(axis=1) > 0)  # the members differ
