"""Simulated retrievals from a running truth experiment (``&observations simulate``).

After every model step the run records the truth state of its columns (:meth:`TruthObserver.snapshot`); at the
end of each window every sensor's :class:`colmda.obs.simulate.RetrievalSimulator` turns the overpasses inside
the window into retrievals. Rank 0 gathers them and writes them in parts, one part per restart written
(``obs/parts/<sensor>_<seq>.nc``), so that a resumed truth run loses nothing and repeats nothing; at the end the
parts are merged into ``obs/<sensor>.nc`` in the colmda observation format.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import layout as L
from ..constants import DENH2O, DENICE


#: &observations key -> SensorSpec field (each key a list over L, C, X)
SPEC_KEYS = {"sim_error_bare": "error_std_bare", "sim_error_slope": "error_slope_lai", "sim_repr_error": "repr_std",
             "sim_sensing_depth": "sensing_depth", "sim_swath_km": "swath_km",
             "sim_excursion": "excursion_amplitude"}


def sensor_specs(settings) -> dict:
    """The simulated sensors' specifications: the documented defaults of :mod:`colmda.obs.sensors` with the
    &observations sim_* lists (order L, C, X) applied."""
    from ..errors import UserError
    from .sensors import default_specs, spec_with

    specs = default_specs()
    o = settings.observations
    for k, name in enumerate(("L", "C", "X")):
        changes = {field: float(getattr(o, key)[k]) for key, field in SPEC_KEYS.items() if getattr(o, key)}
        if changes:
            try:
                specs[name] = spec_with(name, **changes)
            except UserError as exc:
                raise UserError(f"{settings.source}: &observations sim_* for sensor {name}: {exc}") from None
    return specs


class TruthObserver:
    def __init__(self, settings, inputs, comm, directory: Path, share):
        from .simulate import RetrievalSimulator

        self.s = settings
        self.comm = comm
        self.dir = Path(directory)
        self.parts = self.dir / "parts"
        self.share = share
        self.inputs = inputs
        self.dz = inputs.params.dz_soil
        specs = sensor_specs(settings)
        end = settings.end
        self.sims = {name: RetrievalSimulator(specs[name], inputs.column, inputs.lat, inputs.lon, self.dz,
                                              settings.start, end, settings.experiment.seed)
                     for name in settings.observations.simulate if name != "TB"}
        if "TB" in settings.observations.simulate:  # SMAP-like H and V Tb on the L sensor's overpasses
            from .simulate import TbSimulator
            from .tau_omega import TauOmegaParams

            for pol in ("h", "v"):
                sim = TbSimulator(specs["L"], inputs.column, inputs.lat, inputs.lon, self.dz, settings.start, end,
                                  settings.experiment.seed, polarisation=pol, pft=inputs.pft,
                                  clay=getattr(inputs, "clay", None),
                                  params=TauOmegaParams(h=settings.observations.tb_roughness))
                self.sims[sim.name] = sim
        self.pending = {name: [] for name in self.sims}
        if comm.is_root:
            self.parts.mkdir(parents=True, exist_ok=True)

    # ---- per step: the truth state the retrievals need (this rank's columns)
    def snapshot(self, batch) -> dict:
        s = L.NSNOW_MAX
        dz = self.dz[:, None]
        return {"theta": (batch.wliq_soisno[s:] / DENH2O + batch.wice_soisno[s:] / DENICE) / dz,
                "theta_ice": batch.wice_soisno[s:] / DENICE / dz, "t_soil": batch.t_soisno[s:].copy(),
                "swe": batch.cstate[L.CS_SCV].copy()}

    # ---- per window (collective)
    def window(self, positions, t0, snaps) -> None:
        par = self.share.params
        truth = {"theta": snaps["theta"], "theta_ice": snaps["theta_ice"], "t_soil": snaps["t_soil"],
                 "swe": snaps["swe"], "lai": par.colpar[L.CP_LAI].copy(), "porosity": par.soilpar[L.SP_THETA_S]}
        nsteps = snaps["theta"].shape[0]
        for name, sim in self.sims.items():
            table = sim.sample(np.asarray(positions), t0, self.s.dt, nsteps, truth)
            got = self.comm.gather(table)
            if self.comm.is_root:
                self.pending[name].extend(got)

    # ---- files (rank 0)
    def _part(self, name: str, seq: int) -> Path:
        return self.parts / f"{name}_{seq:08d}.nc"

    def flush(self, seq: int) -> None:
        """Write what was simulated since the last flush as the part of restart ``seq`` (rank 0)."""
        from .format import ObsTable, write_obs

        if not self.comm.is_root:
            return
        for name, tables in self.pending.items():
            if tables:
                write_obs(self._part(name, seq), ObsTable.concatenate(tables).sorted())
            self.pending[name] = []

    def _existing(self):
        for p in sorted(self.parts.glob("*_*.nc")):
            m = re.match(r"^(.+)_(\d{8})\.nc$", p.name)
            if m and m.group(1) in self.sims:
                yield p, m.group(1), int(m.group(2))

    def clear(self) -> None:
        """Fresh start: remove parts and merged files of an earlier run (rank 0)."""
        for p, _, _ in list(self._existing()):
            p.unlink()
        for name in self.sims:
            (self.dir / f"{name}.nc").unlink(missing_ok=True)

    def discard_after(self, seq: int) -> None:
        """Resume from the restart of sequence ``seq``: parts written after it are simulated again (rank 0)."""
        if self.comm.is_root:
            for p, _, k in list(self._existing()):
                if k > seq:
                    p.unlink()

    def finish(self) -> dict:
        """Merge the parts into obs/<sensor>.nc (rank 0); returns {sensor: {"file", "retrievals"}}."""
        from .format import ObsTable, read_obs, write_obs

        out = {}
        for name, sim in self.sims.items():
            parts = sorted((k, p) for p, n, k in self._existing() if n == name)
            tables = [read_obs(p) for _, p in parts]
            quantity = "tb_" + sim.pol if hasattr(sim, "pol") else sim.spec.quantity
            table = (ObsTable.concatenate(tables).sorted() if tables else
                     ObsTable.empty(getattr(sim, "name", sim.spec.name), quantity, sim.spec.sensing_depth))
            path = self.dir / f"{name}.nc"
            write_obs(path, table)
            for _, p in parts:
                p.unlink()
            out[name] = {"file": str(path), "retrievals": int(len(table))}
            if table.quantity.startswith("tb_"):
                out[name]["quantity"] = table.quantity
        return out
