"""Parallel execution: MPI when the run is launched by mpiexec with more than one rank, else one process.

Ranks own disjoint, contiguous, load-balanced blocks of land columns in global column order
(:func:`decompose`). Arrays keep the column index last (the core's layout), so "the columns of rank r" is
``a[..., start_r:stop_r]``. Global fields live on rank 0 (:meth:`Comm.gather_columns`,
:meth:`Comm.scatter_columns`) or on every rank (:meth:`Comm.allgather_columns`). All file I/O is done by rank 0.

The serial :class:`SerialComm` has the same interface, so nothing else in the driver needs to know whether MPI is
there; a run without mpi4py, or without mpiexec, works on one process.

Nothing here draws random numbers: the driver keys every random stream by global column, member and time
(:func:`keyed_rng`), never by rank, so any number of ranks gives bitwise-identical results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import UserError

# environment variables set by MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm's srun with PMI)
_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


@dataclass(frozen=True)
class Decomposition:
    """Contiguous blocks of ``ncol`` columns: rank r owns global columns ``starts[r] .. starts[r] + counts[r] - 1``
    (positions in the run's global column order)."""

    ncol: int
    counts: tuple

    @property
    def size(self) -> int:
        return len(self.counts)

    @property
    def starts(self) -> tuple:
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.counts)[:-1]]))

    def slice(self, rank: int) -> slice:
        s = self.starts[rank]
        return slice(s, s + self.counts[rank])

    def owner(self, position) -> np.ndarray:
        """Rank that owns each column position."""
        return np.searchsorted(np.cumsum(self.counts), np.asarray(position), side="right")


def decompose(ncol: int, size: int, weights=None) -> Decomposition:
    """Split ``ncol`` columns into ``size`` contiguous blocks.

    Without ``weights`` the counts differ by at most one (the first ``ncol % size`` ranks get one more). With
    per-column ``weights`` (cost estimates, > 0) the cut points are where the cumulative weight crosses
    ``k / size`` of the total, so that every block carries about the same load.
    """
    if size < 1:
        raise ValueError("size must be >= 1")
    if weights is None:
        base, extra = divmod(ncol, size)
        return Decomposition(ncol, tuple(base + (1 if r < extra else 0) for r in range(size)))
    w = np.asarray(weights, dtype=float)
    if w.shape != (ncol,) or np.any(w <= 0):
        raise ValueError("weights must be positive, one per column")
    cum = np.cumsum(w)
    targets = cum[-1] * np.arange(1, size) / size
    cuts = np.searchsorted(cum, targets, side="left") + 1
    cuts = np.clip(cuts, 0, ncol)
    bounds = np.concatenate([[0], np.maximum.accumulate(cuts), [ncol]])
    return Decomposition(ncol, tuple(int(x) for x in np.diff(bounds)))


def keyed_rng(seed: int, *keys: int) -> np.random.Generator:
    """A random generator determined only by ``seed`` and integer ``keys`` (stream id, global column, member,
    time index...): the same numbers whichever rank asks."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *[int(k) for k in keys]])))


def _moved(a: np.ndarray) -> np.ndarray:
    """Column axis first, C-contiguous: each rank's block is one contiguous piece of memory."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 0))


def _restored(b: np.ndarray) -> np.ndarray:
    return np.asfortranarray(np.moveaxis(b, 0, -1))


class SerialComm:
    """One process: every collective is the identity.

    ``duplicate`` is True for the extra processes of an ``mpiexec -n N`` launch without a working mpi4py: they
    must not run (rank 0 runs the whole experiment serially)."""

    rank = 0
    size = 1
    is_root = True
    is_mpi = False

    def __init__(self, duplicate: bool = False):
        self.duplicate = duplicate

    def barrier(self) -> None:
        pass

    def bcast(self, obj, root: int = 0):
        return obj

    def allgather(self, obj) -> list:
        return [obj]

    def gather(self, obj, root: int = 0):
        return [obj]

    def allreduce_max(self, x: float) -> float:
        return float(x)

    def any(self, flag: bool) -> bool:
        return bool(flag)

    def gather_columns(self, local: np.ndarray, decomp: Decomposition | None = None):
        return np.asfortranarray(local)

    def scatter_columns(self, glob, decomp: Decomposition):
        return np.asfortranarray(glob[..., decomp.slice(0)])

    def allgather_columns(self, local: np.ndarray, decomp: Decomposition | None = None) -> np.ndarray:
        return np.asfortranarray(local)

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)


class MPIComm:
    """mpi4py's COMM_WORLD behind the same interface as :class:`SerialComm`."""

    is_mpi = True

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.is_root = self.rank == 0

    def barrier(self) -> None:
        self.comm.Barrier()

    def bcast(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj) -> list:
        return self.comm.allgather(obj)

    def gather(self, obj, root: int = 0):
        return self.comm.gather(obj, root=root)

    def allreduce_max(self, x: float) -> float:
        from mpi4py import MPI

        return float(self.comm.allreduce(float(x), op=MPI.MAX))

    def any(self, flag: bool) -> bool:
        from mpi4py import MPI

        return bool(self.comm.allreduce(bool(flag), op=MPI.LOR))

    def _counts(self, local, decomp):
        if decomp is not None:
            return list(decomp.counts)
        return self.comm.allgather(np.asarray(local).shape[-1])

    def gather_columns(self, local: np.ndarray, decomp: Decomposition | None = None):
        """Global array (..., ncol) on rank 0 from every rank's block (..., ncol_r); None on other ranks."""
        from mpi4py import MPI

        local = np.asarray(local)
        counts = self._counts(local, decomp)
        sendbuf = _moved(local)
        inner = int(np.prod(local.shape[:-1], dtype=np.int64))
        recv = None
        if self.is_root:
            out = np.empty((sum(counts),) + local.shape[:-1], dtype=local.dtype)
            sizes = [c * inner for c in counts]
            displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
            recv = [out, sizes, displs, MPI._typedict[local.dtype.char]]
        self.comm.Gatherv(sendbuf, recv, root=0)
        return _restored(out) if self.is_root else None

    def scatter_columns(self, glob, decomp: Decomposition):
        """Rank r's block (..., counts[r]) of the global array held by rank 0."""
        from mpi4py import MPI

        meta = self.comm.bcast((glob.shape, glob.dtype.str) if self.is_root else None, root=0)
        shape, dtype = meta[0], np.dtype(meta[1])
        inner = int(np.prod(shape[:-1], dtype=np.int64))
        send = None
        if self.is_root:
            sizes = [c * inner for c in decomp.counts]
            displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
            send = [_moved(glob), sizes, displs, MPI._typedict[dtype.char]]
        out = np.empty((decomp.counts[self.rank],) + tuple(shape[:-1]), dtype=dtype)
        self.comm.Scatterv(send, out, root=0)
        return _restored(out)

    def allgather_columns(self, local: np.ndarray, decomp: Decomposition | None = None) -> np.ndarray:
        """The global array on every rank."""
        from mpi4py import MPI

        local = np.asarray(local)
        counts = self._counts(local, decomp)
        inner = int(np.prod(local.shape[:-1], dtype=np.int64))
        out = np.empty((sum(counts),) + local.shape[:-1], dtype=local.dtype)
        sizes = [c * inner for c in counts]
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        self.comm.Allgatherv(_moved(local), [out, sizes, displs, MPI._typedict[local.dtype.char]])
        return _restored(out)

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process with more than one rank (environment check only, so that
    serial runs never initialise MPI). ``COLMDA_MPI=0`` forces serial, ``COLMDA_MPI=1`` forces an attempt."""
    force = os.environ.get("COLMDA_MPI")
    if force is not None:
        return force.strip() not in ("0", "", "no", "false")
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        v = os.environ.get(var)
        if v is not None:
            try:
                return int(v) > 1
            except ValueError:
                return True
    return any(v in os.environ for v in _LAUNCHER_VARS)


_COMM = None


def get_comm():
    """The process-wide communicator: :class:`MPIComm` under mpiexec with > 1 rank and mpi4py importable,
    else :class:`SerialComm` (marked ``duplicate`` on launcher ranks > 0 when mpi4py is missing)."""
    global _COMM
    if _COMM is None:
        _COMM = SerialComm()
        if launched_by_mpi():
            try:
                from mpi4py import MPI
            except ImportError:
                MPI = None
            if MPI is not None and MPI.COMM_WORLD.Get_size() > 1:
                _COMM = MPIComm(MPI.COMM_WORLD)
            elif MPI is None:
                _COMM = SerialComm(duplicate=launcher_rank() > 0)
    return _COMM


def launcher_rank() -> int:
    """This process's rank according to the launcher's environment (0 if unknown)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        v = os.environ.get(var)
        if v is not None:
            try:
                return int(v)
            except ValueError:
                return 0
    return 0


def collective(comm, fn):
    """Run ``fn`` on every rank; if it raises UserError on any rank, raise it on all (message of the first failing
    rank), so that an MPI run stops cleanly instead of hanging. Other exceptions propagate on their rank after
    the others have been told."""
    err = None
    crash = None
    try:
        result = fn()
    except UserError as exc:
        err, result = str(exc), None
    except Exception as exc:  # noqa: BLE001 - re-raised below
        crash, result = exc, None
    flags = comm.allgather((err, crash is not None))
    if crash is not None:
        raise crash
    for e, crashed in flags:
        if e is not None:
            raise UserError(e)
    for r, (_, crashed) in enumerate(flags):
        if crashed:
            raise RuntimeError(f"rank {r} failed during set-up (see its error above)")
    return result
