"""Domain decomposition, gather/scatter, the serial fallback and rank-count invariance of whole runs.

The MPI tests launch ``mpiexec -n N`` in a subprocess (skipped when no mpiexec is found). Runs use the synthetic
inputs of ``tests/mpi_helpers.py`` with the toy core (meaningful now) and with the real core (meaningful once its
physics is complete), and the real data modules through ``python -m colmda run namelists/test_small.nml`` when
those modules are installed.
"""

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpi_helpers as H  # noqa: E402

from colmda.parallel import SerialComm, decompose, keyed_rng  # noqa: E402

MPIEXEC = H.find_mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")


def test_decomposition_covers_every_column_once_and_is_balanced():
    """For many (columns, ranks) the blocks are contiguous, disjoint, cover 0..ncol-1 in order, and their sizes
    differ by at most one."""
    for ncol in (1, 2, 7, 54, 1000, 9876):
        for size in range(1, 9):
            if size > ncol:
                continue
            d = decompose(ncol, size)
            owned = np.concatenate([np.arange(ncol)[d.slice(r)] for r in range(size)])
            np.testing.assert_array_equal(owned, np.arange(ncol))
            assert max(d.counts) - min(d.counts) <= 1 and sum(d.counts) == ncol
            np.testing.assert_array_equal(d.owner(owned), np.repeat(np.arange(size), d.counts))


def test_weighted_decomposition_balances_load():
    """With per-column costs the contiguous blocks carry nearly equal total cost (within one column's cost)."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 3.0, 5000)
    for size in (2, 3, 4, 7):
        d = decompose(len(w), size, weights=w)
        loads = [w[d.slice(r)].sum() for r in range(size)]
        assert sum(d.counts) == len(w)
        assert max(loads) - min(loads) <= 2 * w.max()


def test_serial_comm_round_trip():
    """The serial communicator's gather/scatter/allgather are the identity on column-last arrays."""
    c = SerialComm()
    a = np.asfortranarray(np.arange(24.0).reshape(2, 3, 4))
    d = decompose(4, 1)
    np.testing.assert_array_equal(c.gather_columns(a, d), a)
    np.testing.assert_array_equal(c.scatter_columns(a, d), a)
    np.testing.assert_array_equal(c.allgather_columns(a), a)
    assert c.allreduce_max(3.0) == 3.0 and c.bcast("x") == "x"


def test_keyed_rng_depends_only_on_keys():
    """Random streams depend on (seed, keys) only, so any rank drawing for a column gets the same numbers."""
    a = keyed_rng(7, 1, 12345, 0, 3).standard_normal(5)
    b = keyed_rng(7, 1, 12345, 0, 3).standard_normal(5)
    c = keyed_rng(7, 1, 12346, 0, 3).standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_serial_fallback_without_mpi4py(tmp_path):
    """Launched as if by mpiexec (PMI_SIZE=2) but without mpi4py, the driver falls back to one process."""
    script = textwrap.dedent("""
        import sys
        sys.modules['mpi4py'] = None  # import mpi4py fails
        from colmda.parallel import get_comm, SerialComm
        c = get_comm()
        assert isinstance(c, SerialComm) and c.size == 1, c
        print('serial-ok')
    """)
    import subprocess

    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env=H.clean_env(PMI_SIZE=2, PMI_RANK=0), timeout=120)
    assert r.returncode == 0 and "serial-ok" in r.stdout, r.stderr
    # the second process of such a launch does nothing (rank 0 runs everything)
    script2 = textwrap.dedent("""
        import sys
        sys.modules['mpi4py'] = None
        from colmda.cli import main
        sys.exit(main(['run', 'does-not-matter.nml']))
    """)
    r = subprocess.run([sys.executable, "-c", script2], capture_output=True, text=True,
                       env=H.clean_env(PMI_SIZE=2, PMI_RANK=1), timeout=120)
    assert r.returncode == 0 and "mpi4py is not importable" in r.stderr, r.stderr


@pytest.mark.mpi
@needs_mpi
def test_gather_scatter_round_trip_mpi():
    """Under mpiexec -n 3: scatter of a global array gives each rank its block, gather on rank 0 and allgather on
    every rank give back the original array, for 1-D to 4-D column-last arrays and integer dtypes."""
    script = textwrap.dedent("""
        import numpy as np
        from colmda.parallel import get_comm, decompose, MPIComm
        c = get_comm()
        assert isinstance(c, MPIComm) and c.size == 3
        for shape in [(10,), (3, 10), (2, 3, 11), (2, 2, 3, 13)]:
            for dtype in (np.float64, np.int64):
                g = np.asfortranarray(np.arange(np.prod(shape)).reshape(shape).astype(dtype))
                d = decompose(shape[-1], c.size)
                loc = c.scatter_columns(g if c.is_root else None, d)
                np.testing.assert_array_equal(loc, g[..., d.slice(c.rank)])
                assert loc.flags.f_contiguous
                back = c.gather_columns(loc, d)
                if c.is_root:
                    np.testing.assert_array_equal(back, g)
                else:
                    assert back is None
                np.testing.assert_array_equal(c.allgather_columns(loc, d), g)
        assert c.allreduce_max(float(c.rank)) == 2.0
        print('ok', c.rank)
    """)
    import subprocess

    r = subprocess.run([MPIEXEC, "-n", "3", sys.executable, "-c", script], capture_output=True, text=True,
                       env=H.clean_env(), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("ok") == 3


def _files(d: Path):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*.nc"))}


def _rank_runs(tmp_path, namelist, ranks, *, synthetic=True, toy=False, extra=(), shuffle=False):
    outs = {}
    env = H.clean_env(**({H.TOY_CORE_ENV: 1} if toy else {}), **({H.SHUFFLE_ENV: 1} if shuffle else {}))
    for n in ranks:
        d = tmp_path / f"n{n}"
        r = H.run_cli(["run", str(namelist), "--set", f"output.directory={d}", "--log-level", "warning", *extra],
                      ranks=n if n > 1 else 0, synthetic=synthetic, env=env)
        assert r.returncode == 0, f"{n} ranks:\n{r.stdout}\n{r.stderr}"
        outs[n] = _files(d)
    return outs


def _assert_identical(outs):
    ref_n = min(outs)
    ref = outs[ref_n]
    assert any(k.startswith("history/") for k in ref)
    for n, files in outs.items():
        assert sorted(files) == sorted(ref), n
        for k in ref:
            assert files[k] == ref[k], f"{k} differs between {ref_n} and {n} ranks"


SMALL = H.REPO / "namelists" / "test_small.nml"
SYNTH_BOX = ("--set", "domain.box=-40,60,-60,80")


@pytest.mark.mpi
@needs_mpi
def test_rank_invariance_toy_core(tmp_path):
    """1, 2, 3 and 4 ranks give byte-identical history and restart files (synthetic inputs, toy core with
    state-dependent arithmetic)."""
    outs = _rank_runs(tmp_path, SMALL, (1, 2, 3, 4), toy=True, extra=SYNTH_BOX)
    _assert_identical(outs)


@pytest.mark.mpi
@needs_mpi
def test_moving_columns_between_ranks_changes_nothing(tmp_path):
    """Load balancing moves columns between ranks; with new random block sizes after every window (spin-up and
    experiment), 3 and 4 ranks still give the 1-rank files byte for byte."""
    outs = _rank_runs(tmp_path, SMALL, (1, 3, 4), toy=True, extra=SYNTH_BOX, shuffle=True)
    _assert_identical(outs)


def test_rebalance_moves_work_to_idle_ranks():
    """With per-rank core times showing rank 0 twice as slow per column, the new blocks give rank 0 fewer columns
    and equalise the estimated cost; balanced times leave the blocks alone."""
    from colmda.run import Share

    class FakeComm:
        size, rank, is_root = 2, 0, True

        def __init__(self, times):
            self.times = times

        def gather(self, x):
            return self.times

        def bcast(self, x):
            return x

    class FakeInputs:
        ncol = 100

        def __init__(self):
            from colmda.core import ColumnParameters
            from colmda import layout as L

            n = self.ncol
            self.params = ColumnParameters(np.zeros((L.NSP, L.NL_SOIL, n)), np.zeros((L.NVP, n)),
                                           np.zeros((L.NCP, n)), np.ones(L.NL_SOIL))
            self.lai_monthly = np.zeros((12, n))
            self.sai_monthly = np.zeros((12, n))

    moved = []
    sh = Share(FakeComm([2.0, 1.0]), FakeInputs(), decompose(100, 2))
    sh.move = lambda counts: moved.append(tuple(counts))
    assert sh.rebalance() and moved[-1][0] < 50 and sum(moved[-1]) == 100
    n0 = moved[-1][0]
    cost = np.concatenate([np.full(50, 2.0 / 50), np.full(50, 1.0 / 50)])  # per column, from the two blocks
    assert abs(cost[:n0].sum() - cost[n0:].sum()) <= 2 * cost.max()
    sh2 = Share(FakeComm([1.0, 1.02]), FakeInputs(), decompose(100, 2))
    sh2.move = lambda counts: moved.append(("moved",))
    assert not sh2.rebalance()


@pytest.mark.mpi
@needs_mpi
def test_rank_invariance_perturbed_forcing(tmp_path):
    """With &forcing perturb (keyed by global column, member and time) 1 and 3 ranks still give byte-identical
    files, and the perturbed run differs from the unperturbed one."""
    outs = _rank_runs(tmp_path, SMALL, (1, 3), toy=True, extra=SYNTH_BOX + ("--set", "forcing.perturb=.true."))
    _assert_identical(outs)
    plain = _rank_runs(tmp_path / "plain", SMALL, (1,), toy=True, extra=SYNTH_BOX)
    assert plain[1] != outs[1]


@pytest.mark.mpi
@needs_mpi
def test_rank_invariance_real_core(tmp_path):
    """1, 2, 3 and 4 ranks give byte-identical files with the Fortran core (synthetic inputs), and the files are
    right, not only equal: the column water budget of the history closes against the restarts."""
    outs = _rank_runs(tmp_path, SMALL, (1, 2, 3, 4), extra=SYNTH_BOX)
    _assert_identical(outs)
    H.assert_water_budget(tmp_path / "n1")


@pytest.mark.mpi
@needs_mpi
@pytest.mark.skipif(not H.real_modules_available(), reason="domain / forcing / soil modules not installed yet")
def test_rank_invariance_real_inputs(tmp_path):
    """`python -m colmda run namelists/test_small.nml` on 1, 2, 3 and 4 ranks: byte-identical files (embedded
    domain, weather generator, Fortran core), and the column water budget of the history closes against the
    restarts (an expectation independent of the decomposition)."""
    outs = _rank_runs(tmp_path, SMALL, (1, 2, 3, 4), synthetic=False)
    _assert_identical(outs)
    H.assert_water_budget(tmp_path / "n1")


@pytest.mark.mpi
@needs_mpi
def test_mpi_user_error_exit_status(tmp_path):
    """A namelist mistake under mpiexec -n 2 stops every rank with exit status 2 and one message, no traceback."""
    bad = tmp_path / "bad.nml"
    bad.write_text("&output\n frequncy = '3h'\n/\n")
    r = H.run_cli(["run", str(bad)], ranks=2)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("did you mean 'frequency'") == 1
    assert "Traceback" not in r.stderr
