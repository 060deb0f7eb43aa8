"""The seam between settings and the data modules: settings + domain -> parameters, LAI and forcing of the run.

This is the only driver module that knows the interfaces of :mod:`colmda.domain`, :mod:`colmda.pft`,
:mod:`colmda.soilparams` and :mod:`colmda.forcing`; everything else sees a :class:`RunInputs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from . import layout as L
from .config import Settings
from .core import ColumnParameters
from .errors import UserError

log = logging.getLogger("colmda")


@dataclass
class RunInputs:
    """Everything the cycle loop needs about the run's columns, in global column order (column index last)."""

    column: np.ndarray  # (ncol,) global column index = flat row-major (lat, lon) index of the domain grid
    lat: np.ndarray  # (ncol,) latitude of each column (degrees_north)
    lon: np.ndarray  # (ncol,) longitude (degrees_east)
    grid_lat: np.ndarray  # (nlat,) cell centres of the domain grid (degrees_north)
    grid_lon: np.ndarray  # (nlon,) (degrees_east)
    params: ColumnParameters  # all run columns; LAI/SAI rows are refreshed every window
    lai_monthly: np.ndarray  # (12, ncol) monthly leaf area index climatology (m2 m-2)
    sai_monthly: np.ndarray  # (12, ncol) monthly stem area index (m2 m-2)
    forcing: object  # has .window(t0: datetime, nsteps: int, positions: int array) -> (NF, nsteps, n) F-order
    point_lat: np.ndarray | None = None  # (ncol,) coordinates written for the 'points' layout (sites)
    point_lon: np.ndarray | None = None
    names: tuple = ()
    t_clim: np.ndarray | None = None  # (ncol,) annual-mean air temperature (K), for the cold start
    area: np.ndarray | None = None  # (ncol,) land area of each column (m2), weights of the summary means
    pft: np.ndarray | None = None  # (ncol,) dominant PFT index (colmda.pft order), for vegetation-dependent rules
    clay: np.ndarray | None = None  # (ncol,) clay mass fraction (1), for the tau-omega dielectric model
    domain: object = None  # the colmda.domain.Domain (spatially correlated perturbations need its grid)
    input_files: list = field(default_factory=list)  # [(role, path)] for the manifest
    checks: dict = field(default_factory=dict)  # input consistency notes (clipped records, nearest land) for the
    # summary and manifest: {what: count or text}

    def __post_init__(self):
        self.column = np.asarray(self.column, dtype=np.int64)
        if np.any(np.diff(self.column) <= 0):
            raise ValueError("RunInputs.column must be strictly increasing (global column order)")

    @property
    def ncol(self) -> int:
        return len(self.column)


class WindowForcing:
    """Adapter: a forcing source with ``generate(start: datetime64, nsteps, columns)`` (the weather generator, or
    colmda.forcing.ReaderForcing for a site file) as ``window(t0: datetime, nsteps, positions)`` for run-column
    positions. ``columns`` maps run-column positions to the source's column indices (global column indices for the
    generator, 0 for the single column of a site file)."""

    def __init__(self, source, columns):
        self.source = source
        self.columns = np.asarray(columns, dtype=np.int64)

    def window(self, t0, nsteps, positions):
        forc = self.source.generate(np.datetime64(t0, "s"), int(nsteps), self.columns[np.asarray(positions)])
        return np.asfortranarray(forc, dtype=np.float64)


def zref_for(settings: Settings, vegpar: np.ndarray, source_height: float | None) -> np.ndarray:
    """Forcing height per column (m): &model zref, else the forcing source's, else max(30 m, htop + 10 m)."""
    if settings.model.zref > 0:
        return np.full(vegpar.shape[1], settings.model.zref)
    if source_height:
        return np.maximum(np.full(vegpar.shape[1], float(source_height)), vegpar[L.VP_HTOP] + 2.0)
    return np.maximum(30.0, vegpar[L.VP_HTOP] + 10.0)


def select_domain(settings: Settings):
    """The domain of the settings with the run's columns selected (DomainError -> UserError)."""
    from . import domain as dom

    s = settings
    try:
        d = dom.Domain.load(s.domain.file or None)
        if s.domain.box:
            d = d.select_box(*s.domain.box)
        elif s.domain.point_lat:
            d = d.select_points(np.asarray(s.domain.point_lat), np.asarray(s.domain.point_lon),
                                nearest_land=s.domain.nearest_land)
    except dom.DomainError as exc:
        msg = str(exc).replace("(use nearest_land=True)", "(ocean or ice in the domain); expected a land point, "
                               "or set &domain nearest_land = .true. to run the nearest land column")
        raise UserError(f"{s.source}: &domain point_lat/point_lon: {msg}") from None
    if d.ncol == 0:
        raise UserError(f"{s.source}: &domain selects no land column")
    if s.domain.point_lat and d.ncol != len(s.domain.point_lat):
        raise UserError(f"{s.source}: &domain point_lat/point_lon: {len(s.domain.point_lat)} points fall in "
                        f"{d.ncol} distinct land columns; give points in different grid cells")
    return d


def point_order(settings: Settings, domain) -> np.ndarray:
    """For a point run: the index of the namelist point that each selected column (in global order) came from."""
    s = settings
    cols = [domain.select_points(np.array([a]), np.array([b]), nearest_land=s.domain.nearest_land).columns[0]
            for a, b in zip(s.domain.point_lat, s.domain.point_lon)]
    return np.argsort(np.asarray(cols), kind="stable")


#: a site forcing file's coordinates may differ this much from the namelist point (great-circle distance)
SITE_TOLERANCE_KM = 10.0


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    la1, la2 = np.deg2rad(lat1), np.deg2rad(lat2)
    c = np.sin(la1) * np.sin(la2) + np.cos(la1) * np.cos(la2) * np.cos(np.deg2rad(np.asarray(lon2) - lon1))
    return 6371.0 * np.arccos(np.clip(c, -1.0, 1.0))


def check_site_coordinates(settings: Settings, reader) -> None:
    """The site file's latitude/longitude must be the namelist point's (within SITE_TOLERANCE_KM)."""
    s = settings
    lat, lon = float(reader.lat[0]), float(reader.lon[0])
    plat, plon = s.domain.point_lat[0], s.domain.point_lon[0]
    dist = float(great_circle_km(plat, plon, lat, lon))
    if not dist <= SITE_TOLERANCE_KM:
        raise UserError(f"{s.source}: &domain point_lat/point_lon = {plat:g}, {plon:g} is {dist:.0f} km from the site "
                        f"of &forcing file = '{s.forcing.file}' (latitude {lat:g}, longitude {lon:g}); expected the "
                        f"same place (within {SITE_TOLERANCE_KM:g} km): correct the point or the file")


def nearest_land_notes(settings: Settings, domain) -> dict:
    """For points moved to the nearest land column: {point label: 'ran land column ... at lat/lon, N km away'}."""
    s = settings
    notes = {}
    if not (s.domain.point_lat and s.domain.nearest_land):
        return notes
    for k, (a, b) in enumerate(zip(s.domain.point_lat, s.domain.point_lon)):
        g = int(domain.index_of(np.array([a]), np.array([b]))[0])
        if domain.fields["landmask"].ravel()[g] == 1:
            continue
        col = int(domain.select_points(np.array([a]), np.array([b]), nearest_land=True).columns[0])
        clat, clon = float(domain.column_lat(np.array([col]))[0]), float(domain.column_lon(np.array([col]))[0])
        name = s.domain.point_name[k] if s.domain.point_name else f"point {k + 1}"
        notes[f"nearest land: {name} (lat {a:g}, lon {b:g})"] = (
            f"not a land cell; ran land column {col} at lat {clat:g}, lon {clon:g} "
            f"({float(great_circle_km(a, b, clat, clon)):.0f} km away)")
    return notes


def open_reader(settings: Settings, lat=None, lon=None):
    """The forcing file reader of &forcing source, wrapped for the model step, after checking that the file covers
    the spin-up period and the experiment (ForcingError -> UserError). ``lat``/``lon``: the run columns (gridded
    sources such as ERA5 are interpolated to them; the reader's column k is run column k)."""
    from .forcing import ForcingError, Plumber2Reader, ReaderForcing
    from .forcing.era5 import Era5Reader

    s = settings
    where = f"{s.source}: &forcing file = '{s.forcing.file}'"
    try:
        if s.forcing.source == "era5":
            reader = Era5Reader(s.forcing.file, lat, lon, interpolation=s.forcing.era5_interpolation)
        else:
            reader = Plumber2Reader(s.forcing.file)
        lo, hi = reader.coverage()
    except ForcingError as exc:
        raise UserError(f"{where}: {exc}") from None
    tol = np.timedelta64(int(round(s.forcing.extrapolate_hours * 3600)), "s")
    periods = [("&experiment start/end", s.start, s.end)]
    if s.experiment.spinup_max_cycles:
        periods.append(("&experiment spinup_start/spinup_end", s.spinup_start, s.spinup_end))
    for what, a, b in periods:
        if np.datetime64(a, "s") < lo - tol or np.datetime64(b, "s") > hi + tol:
            raise UserError(f"{where}: the file covers {lo} .. {hi} UTC but {what} need {np.datetime64(a, 's')} "
                            f".. {np.datetime64(b, 's')} (&forcing extrapolate_hours = "
                            f"{s.forcing.extrapolate_hours:g} allows that much beyond either end)")
    columns = np.arange(reader.lat.size) if s.forcing.source == "era5" else np.zeros(1, dtype=np.int64)
    return WindowForcing(ReaderForcing(reader, int(s.dt), max_extrapolation_s=int(tol.astype(np.int64))),
                         columns), reader


def site_overrides(settings: Settings, domain, cp) -> None:
    """&domain point_pft / point_sand / point_clay replace the domain's values of the points (namelist order)."""
    s = settings.domain
    if not (s.point_pft or s.point_sand or s.point_clay):
        return
    order = point_order(settings, domain)  # column k came from namelist point order[k]
    if s.point_pft:
        cp.pft = np.asarray(s.point_pft, dtype=int)[order]
    if s.point_sand:
        cp.sand = np.asarray(s.point_sand, dtype=float)[order]
    if s.point_clay:
        cp.clay = np.asarray(s.point_clay, dtype=float)[order]
    if np.any(cp.sand + cp.clay > 1):
        raise UserError(f"{settings.source}: &domain point_sand + point_clay exceeds 1")


def file_lai_climatology(reader, fallback: np.ndarray) -> np.ndarray:
    """Monthly means (12, 1) of the reader's LAI over its whole record; months without data keep ``fallback``."""
    lo, hi = reader.coverage()
    chunk = reader.read(lo, hi)
    lai = chunk.data.get("lai")
    if lai is None:
        raise UserError(f"&forcing lai_from_file = .true.: {chunk.source} has no LAI variable")
    months = (np.asarray(chunk.times).astype("datetime64[M]").astype(int) % 12)
    out = np.array(fallback, dtype=float, copy=True)
    lai = np.asarray(lai, dtype=float).reshape(len(months), -1)[:, 0]
    for m in range(12):
        sel = (months == m) & np.isfinite(lai)
        if sel.any():
            out[m, :] = lai[sel].mean()
    return out


def build_inputs(settings: Settings) -> RunInputs:
    """Load the domain, select the columns, build their parameters and the forcing source."""
    from .core import default_soil_thickness, soil_interfaces
    from .pft import root_fractions, vegpar
    from .soilparams import soil_parameters

    s = settings
    d = select_domain(s)
    cp = d.column_params()
    site_overrides(s, d, cp)
    dz = default_soil_thickness()
    vp = np.asfortranarray(vegpar(cp.pft))
    rootfr = root_fractions(cp.pft, soil_interfaces(dz))
    soilpar = soil_parameters(cp.sand, cp.clay, organic=cp.organic, nl=L.NL_SOIL, rootfr=rootfr, dz=dz,
                              psi_e=s.model.psi_e)
    colpar = np.zeros((L.NCP, d.ncol), order="F")
    colpar[L.CP_ALBSAT_VIS] = cp.albsat_vis
    colpar[L.CP_ALBSAT_NIR] = cp.albsat_nir
    colpar[L.CP_ALBDRY_VIS] = cp.albdry_vis
    colpar[L.CP_ALBDRY_NIR] = cp.albdry_nir

    files = [("domain" if s.domain.file else "domain (embedded default)", str(d.path))]
    checks = nearest_land_notes(s, d)
    for what, note in checks.items():
        log.warning("%s: %s", what, note)
    names = tuple(s.domain.point_name)
    point_lat = point_lon = None
    height = None
    if s.forcing.source == "generator":
        from .forcing import WeatherGenerator

        forcing = WindowForcing(WeatherGenerator(d, s.forcing.seed, s.dt), cp.columns)
    else:
        flat, flon = cp.lat, cp.lon  # ERA5 at the cell centres, or at the sites of a point run
        if s.domain.point_lat:
            order = point_order(s, d)
            flat, flon = np.asarray(s.domain.point_lat)[order], np.asarray(s.domain.point_lon)[order]
        forcing, reader = open_reader(s, flat, flon)
        files.append(("forcing", s.forcing.file))
        height = reader.reference_height if np.isfinite(reader.reference_height) else None
        if s.forcing.source == "plumber2":
            check_site_coordinates(s, reader)
            point_lat, point_lon = np.asarray(reader.lat, float), np.asarray(reader.lon, float)
        checks.update({f"forcing: {k}": v for k, v in getattr(reader, "clipped", {}).items()})
        if not names and getattr(reader, "site_code", ""):
            names = (reader.site_code,)
    if s.domain.point_lat and s.forcing.source != "plumber2":  # namelist order -> global column order
        order = point_order(s, d)
        point_lat = np.asarray(s.domain.point_lat)[order]
        point_lon = np.asarray(s.domain.point_lon)[order]
        names = tuple(names[k] for k in order) if names else ()
    lai_monthly = np.asarray(cp.lai_clim)
    if s.forcing.lai_from_file and s.forcing.source == "plumber2":
        lai_monthly = file_lai_climatology(reader, lai_monthly)
    colpar[L.CP_ZREF] = zref_for(s, vp, height)
    params = ColumnParameters(soilpar, vp, colpar, dz)
    area = d.cell_area().ravel()[cp.columns] * cp.land_fraction
    return RunInputs(column=cp.columns, lat=cp.lat, lon=cp.lon, grid_lat=d.lat, grid_lon=d.lon, params=params,
                     lai_monthly=lai_monthly, sai_monthly=np.asarray(cp.sai_clim), forcing=forcing,
                     point_lat=point_lat, point_lon=point_lon, names=names,
                     t_clim=np.asarray(cp.tair_clim).mean(axis=0), area=area, input_files=files, domain=d,
                     checks=checks,
                     pft=np.asarray(cp.pft, dtype=np.int64), clay=np.asarray(cp.clay, dtype=np.float64))


def perturbation_settings(settings: Settings):
    """The forcing-perturbation parameters of &forcing as colmda.forcing.perturb.PerturbationSettings."""
    from .forcing.perturb import PerturbationSettings

    f = settings.forcing
    return PerturbationSettings(std_prec=f.perturb_std_prec, std_swdown=f.perturb_std_swdown,
                                std_lwdown=f.perturb_std_lwdown, std_tair=f.perturb_std_tair,
                                tau_hours=f.perturb_tau_hours, spatial_corr_km=f.perturb_spatial_km)


def perturb_window(forc, settings: Settings, columns, t0, dt, domain=None, n_members: int = 1):
    """The window's forcing for every member, perturbed with streams keyed by (&experiment seed, global column,
    member, time): (NF, nsteps, ncol * n_members) in the flat order of :mod:`colmda.ensemble` (members of a
    column adjacent). Member m of a column gets the same perturbation in any run with at least m + 1 members."""
    from .ensemble import from_member_major
    from .forcing.perturb import flatten_members, perturb_forcing

    ens = perturb_forcing(forc, settings.experiment.seed, columns, np.arange(n_members), np.datetime64(t0, "s"),
                          dt, perturbation_settings(settings), grid=domain)
    flat = flatten_members(ens)  # member-major
    return flat if n_members == 1 else np.asfortranarray(from_member_major(flat, n_members))
