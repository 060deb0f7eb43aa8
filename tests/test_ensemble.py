"""The (member, column) <-> flat-column convention and the control vector (colmda.ensemble)."""

import numpy as np
import pytest

from colmda import ensemble as ens
from colmda import layout as L
from colmda.core import initial_state
from colmda.forcing.perturb import flatten_members
from colmda.parallel import decompose
from colmda.testing import column_parameters


def test_flat_index_is_column_major_blocks_and_matches_column_state_repeat():
    """flat = column * nmem + member, its inverse recovers (member, column), and ColumnState.repeat (the core's
    way of running extra copies of a column) produces exactly this order: flat column f of the repeated state is
    column f // nmem of the original."""
    nmem, ncol = 4, 5
    col, mem = np.meshgrid(np.arange(ncol), np.arange(nmem), indexing="ij")
    flat = ens.flat_index(col, mem, nmem)
    np.testing.assert_array_equal(flat.ravel(), np.arange(ncol * nmem))
    m, c = ens.member_and_column(flat, nmem)
    np.testing.assert_array_equal(m, mem)
    np.testing.assert_array_equal(c, col)
    params = column_parameters(["temperate", "arid", "boreal", "tropical", "tundra"])
    state = initial_state(params, temperature=280.0, saturation=0.5)
    state.t_soisno[:] = np.arange(ncol)[None, :] + 300.0  # label every column
    rep = state.repeat(nmem)
    np.testing.assert_array_equal(rep.t_soisno[0], 300.0 + ens.member_and_column(np.arange(ncol * nmem), nmem)[1])
    with pytest.raises(ValueError, match="member index"):
        ens.flat_index(0, nmem, nmem)


def test_flatten_unflatten_round_trip_and_views():
    """unflatten(..., nmem) splits the flat axis into (column, member) in the convention's order, flatten is its
    inverse, both without copying for C-contiguous arrays; a flat axis that is not whole blocks is refused."""
    a = np.arange(3 * 12).reshape(3, 12).astype(float)  # (layers, ncol * nmem) with ncol = 4, nmem = 3
    u = ens.unflatten(a, 3)
    assert u.shape == (3, 4, 3) and np.shares_memory(u, a)
    for f in range(12):
        np.testing.assert_array_equal(u[:, f // 3, f % 3], a[:, f])
    np.testing.assert_array_equal(ens.flatten(u), a)
    b = np.arange(2 * 6 * 5).reshape(2, 6, 5)  # flat axis in the middle
    np.testing.assert_array_equal(ens.flatten(ens.unflatten(b, 2, axis=1), axis_column=1), b)
    with pytest.raises(ValueError, match="whole number"):
        ens.unflatten(a, 5)


def test_member_major_conversion_matches_forcing_flatten_members():
    """from_member_major turns the member-major layout of forcing.perturb.flatten_members (m * ncol + c) into
    column-major blocks (c * nmem + m), element by element, and to_member_major undoes it."""
    rng = np.random.default_rng(0)
    nf, ns, nmem, ncol = 3, 4, 5, 7
    forc = rng.standard_normal((nf, ns, nmem, ncol))
    mm = flatten_members(forc)
    cm = ens.from_member_major(mm, nmem)
    for c in range(ncol):
        for m in range(nmem):
            np.testing.assert_array_equal(cm[:, :, ens.flat_index(c, m, nmem)], forc[:, :, m, c])
    np.testing.assert_array_equal(ens.to_member_major(cm, nmem), mm)


def test_a_block_of_columns_is_a_contiguous_block_of_flat_columns():
    """For any decomposition of the columns into contiguous rank blocks, a rank's flat columns (all members of its
    columns) are one contiguous slice [start * nmem, end * nmem): the rank that owns a column owns its members,
    and moving a column moves its members with it."""
    nmem, ncol = 6, 23
    _, owner_col = ens.member_and_column(np.arange(ncol * nmem), nmem)
    for size in (1, 2, 3, 7):
        dec = decompose(ncol, size)
        owner = dec.owner(owner_col)
        for r in range(size):
            flat = np.flatnonzero(owner == r)
            s = dec.slice(r)
            np.testing.assert_array_equal(flat, np.arange(s.start * nmem, s.stop * nmem))


def test_global_keys_do_not_depend_on_the_split():
    """global_keys gives every flat column its (global column, member), identical whether the columns are taken
    at once or in rank blocks."""
    cols = np.array([10, 52, 53, 400, 9001])
    g, m = ens.global_keys(cols, 3)
    np.testing.assert_array_equal(g, np.repeat(cols, 3))
    np.testing.assert_array_equal(m, np.tile([0, 1, 2], 5))
    parts = [ens.global_keys(cols[:2], 3), ens.global_keys(cols[2:], 3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), g)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), m)


def test_mean_anomalies_spread():
    """Mean and anomalies over the member axis of (ncol, nmem, n): anomalies sum to zero, mean + anomalies = E,
    spread is the ddof=1 standard deviation."""
    E = np.random.default_rng(1).standard_normal((4, 9, 3))
    X = ens.anomalies(E)
    np.testing.assert_allclose(X.sum(axis=1), 0.0, atol=1e-14)
    np.testing.assert_allclose(ens.ensemble_mean(E)[:, None, :] + X, E, atol=1e-15)
    np.testing.assert_allclose(ens.ensemble_spread(E), np.sqrt((X ** 2).sum(axis=1) / 8))


def test_control_vector_from_a_core_state():
    """The control vector of each (column, member) is the volumetric soil moisture (liquid + ice) of the control
    layers of that flat column, then, when asked, its top soil temperature and its snow water equivalent;
    split_control returns the parts."""
    params = column_parameters(["temperate", "boreal"])
    nmem = 3
    state = initial_state(params, temperature=275.0, saturation=0.4).repeat(nmem)
    rng = np.random.default_rng(2)
    s = L.NSNOW_MAX
    state.wliq_soisno[s:] *= rng.uniform(0.5, 1.0, state.wliq_soisno[s:].shape)
    state.wice_soisno[s:s + 2] = rng.uniform(0.0, 5.0, (2, 6))
    state.t_soisno[s] = rng.uniform(270, 280, 6)
    state.cstate[L.CS_SCV] = rng.uniform(0, 50, 6)
    pr = params.repeat(nmem)
    spec = ens.ControlSpec(layers=5, soil_temperature=True, swe=True)
    x = ens.control_vector(state, pr.dz_soil, nmem, spec)
    assert x.shape == (2, nmem, 7) and spec.names[-2:] == ("t_soil_1", "swe")
    dz = pr.dz_soil
    for f in range(6):
        c, m = f // nmem, f % nmem
        theta = state.wliq_soisno[s:s + 5, f] / 1000.0 / dz[:5] + state.wice_soisno[s:s + 5, f] / 917.0 / dz[:5]
        np.testing.assert_allclose(x[c, m, :5], theta, rtol=1e-14)
        assert x[c, m, 5] == state.t_soisno[s, f] and x[c, m, 6] == state.cstate[L.CS_SCV, f]
    parts = ens.split_control(x, spec)
    np.testing.assert_array_equal(parts["theta"], x[..., :5])
    np.testing.assert_array_equal(parts["swe"], x[..., 6])
    plain = ens.control_vector(state, dz, nmem)
    assert plain.shape == (2, nmem, 7) and ens.ControlSpec().names[0] == "theta_1"
    np.testing.assert_array_equal(plain[..., :5], x[..., :5])
    with pytest.raises(ValueError, match="control layers"):
        ens.ControlSpec(layers=0)


def test_an_ensemble_of_the_real_core_through_the_letkf():
    """The pieces together on the real column core (no driver): 4 climates x 10 columns (global ids 0-39), 12
    members and a truth (an exchangeable 13th draw) start from one spun-up state with keyed N(0, 0.03^2)
    perturbations of the soil moisture of the top 7 layers and run for one day with their own perturbed forcing
    (forcing.perturb, member-major, converted to the column-major flat order), all in one core call. The truth's
    top-layer soil moisture plus N(0, 0.005^2) noise is observed in every column; the column-local LETKF
    (localization_km = 0) analyses the 7-layer control vector. Proves that the convention, the control vector and
    the analysis fit the core's state: the background spread of the observed layer matches its actual error
    (ratio 0.7-1.4: the truth is statistically one more member), the analysis mean is much closer to the truth
    than the background (RMS over 40 columns below 0.6 of it; the Kalman filter expects about 0.37, computed from
    the spread), the spread shrinks where observed, deeper layers move through the ensemble's covariances, and
    split_control returns the increments that the analysis added to the core's layers."""
    from colmda.assim import enkf
    from colmda.core import advance
    from colmda.forcing.perturb import keyed_normal, perturb_forcing
    from colmda.testing import climate_forcing

    climates = ["temperate", "tropical", "boreal", "arid"] * 10
    ncol, nmem, dt = len(climates), 12, 1800.0
    cols = np.arange(ncol)
    params = column_parameters(climates)
    state = initial_state(params, temperature=290.0, saturation=0.45)
    advance(state, params, climate_forcing(climates, 48 * 10, dt=dt, start_doy=150.0), dt)
    nall = nmem + 1  # members 0..11 and the truth as "member" 12
    big = state.repeat(nall)
    bigp = params.repeat(nall)
    dz = bigp.dz_soil
    s = L.NSNOW_MAX
    gcol, gmem = ens.global_keys(cols, nall)
    z = keyed_normal(11, 950, np.arange(7)[:, None], gmem[None, :], gcol[None, :])  # (7, nflat)
    theta_s = bigp.soilpar[L.SP_THETA_S, :7, :]
    liq = big.wliq_soisno[s:s + 7] / 1000.0 / dz[:7, None]
    ice = big.wice_soisno[s:s + 7] / 917.0 / dz[:7, None]
    new = np.clip(liq + 0.03 * z, 0.02, 0.95 * theta_s - ice)
    big.wliq_soisno[s:s + 7] = new * 1000.0 * dz[:7, None]
    forc = climate_forcing(climates, 48, dt=dt, start_doy=160.0, seed=3)
    fens = perturb_forcing(forc, 21, cols, np.arange(nall), np.datetime64("2005-06-10T00:00"), dt)
    flat = np.asfortranarray(ens.from_member_major(flatten_members(fens), nall))
    advance(big, bigp, flat, dt)
    x = ens.control_vector(big, dz, nall)  # (ncol, 13, 7)
    E, truth = x[:, :nmem, :], x[:, nmem, :]
    obs = truth[:, 0] + 0.005 * keyed_normal(11, 951, cols)
    local = enkf.local_observations(np.zeros(ncol), np.zeros(ncol), np.zeros(ncol), np.zeros(ncol), 0.0,
                                    column_id=cols, obs_column=cols)
    res = enkf.letkf(E, E[:, :, 0], obs, np.full(ncol, 0.005 ** 2), local)
    err_b = np.sqrt(np.mean((E[:, :, 0].mean(axis=1) - truth[:, 0]) ** 2))
    err_a = np.sqrt(np.mean((res.ensemble[:, :, 0].mean(axis=1) - truth[:, 0]) ** 2))
    spread_b = np.sqrt(np.mean(E[:, :, 0].var(axis=1, ddof=1)))
    assert 0.7 < spread_b / err_b < 1.4, (spread_b, err_b)  # the truth is a draw like the members
    expected = np.sqrt(np.mean(0.005 ** 2 / (E[:, :, 0].var(axis=1, ddof=1) + 0.005 ** 2)))  # ~0.37
    assert err_a < 0.6 * err_b and expected < 0.5, (err_a, err_b, expected)
    assert np.all(res.ensemble[:, :, 0].std(axis=1) < E[:, :, 0].std(axis=1))
    inc = ens.split_control(res.ensemble - E, ens.ControlSpec())["theta"]
    np.testing.assert_allclose(E[..., :7] + inc, res.ensemble[..., :7], atol=1e-15)
    assert np.abs(inc[..., 1:]).max() > 0  # deeper layers move through the ensemble's covariances
