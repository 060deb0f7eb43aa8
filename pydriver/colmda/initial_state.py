"""Ship a spun-up initial state: the last spin-up restart of a finished run, stamped with what it belongs to.

``python -m colmda.initial_state RUNDIR OUT.nc`` copies the restart written at the end of the last spin-up cycle
of the run in RUNDIR (which must have converged) to OUT.nc and adds global attributes: the sha256 of the domain
file it was made on (``spunup_domain_sha256``), the cycles, last change and tolerance of the spin-up, the code
version and the run's resolved namelist. A namelist uses it with ``&experiment initial_restart``; the main job's
state is ``data/initial/default_spunup.nc`` (made from ``namelists/spinup_default.nml``, see its README.md).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from .errors import USER_ERROR_EXIT, UserError
from .manifest import sha256


def domain_sha256(domain_file: str | None = None) -> str:
    """sha256 of a domain file ('' or None: the embedded default domain)."""
    from .domain import default_domain_path

    return sha256(domain_file or default_domain_path())


def ship(rundir, out) -> Path:
    import netCDF4

    from .output import atomic_path
    from .restart import list_restarts

    rd, out = Path(rundir), Path(out)
    try:
        summary = json.loads((rd / "summary.json").read_text())
        manifest = json.loads((rd / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{rd}: not a finished run ({exc})") from None
    sp = summary.get("spinup") or {}
    if not sp.get("converged"):
        raise UserError(f"{rd}: the spin-up did not converge (last change {sp.get('last_change')} m3 m-3, tolerance "
                        f"{sp.get('tolerance')}); run more cycles (&experiment spinup_max_cycles)")
    name = manifest["experiment"]
    last = [p for p in list_restarts(rd / "restart", name) if f"spinup-cycle{sp['cycles']:03d}" in p.name]
    if not last:
        raise UserError(f"{rd / 'restart'}: no restart of spin-up cycle {sp['cycles']} of experiment '{name}'")
    with atomic_path(out) as tmp:
        shutil.copyfile(last[0], tmp)
        with netCDF4.Dataset(tmp, "a") as nc:
            nc.setncatts({"spunup_domain_sha256": domain_sha256(manifest["settings"]["domain"]["file"]),
                          "spunup_cycles": int(sp["cycles"]), "spunup_last_change": float(sp["last_change"]),
                          "spunup_tolerance": float(sp["tolerance"]), "spunup_period": f"{sp['start']} .. {sp['end']}",
                          "spunup_code_version": manifest.get("code_version", ""),
                          "spunup_namelist": manifest.get("namelist_resolved", "")})
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m colmda.initial_state RUNDIR OUT.nc", file=sys.stderr)
        return USER_ERROR_EXIT
    try:
        print(ship(*argv))
    except UserError as exc:
        print(f"colmda.initial_state: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
