"""EnKF-like image assimilation in curvelet space (seed 003, section 3.3): pure functions, and the driver hook.

One analysis of a soil-moisture field (the mean volumetric water content of a depth range, e.g. 0-10 cm) on the
image grid (ny, nx), land cells ``land``:

1. innovation d = y - x_b on land cells where the observed field y is valid, 0 elsewhere (ocean, gaps, padding);
2. N perturbation fields of the background, eps_b,i = sigma_b * z_i (z standard normal, keyed by global column,
   member and analysis time so that any rank count gives the same numbers), and of the observed field,
   eps_o,i = sigma_o * z'_i (sigma = ``gap_sigma`` in observation gaps); zero on ocean;
3. curvelet transform C (colmda.curvelet, a Parseval tight frame) of every member; per coefficient the sample
   variances over members give the diagonal B and R; the member means cancel (variances of C(x_b + eps) are
   those of C(eps) because C is linear);
4. gain K = w_j B / (B + R) per coefficient (w_j: the per-scale weight, 0 excludes scale j), and
   c_a = c_b + K (c_o - c_b), i.e. the increment x_a - x_b = C^T diag(K) C d (C^-1 = C^T for a Parseval frame);
5. the increment is re-masked (ocean and padding cells never change) and spread to the model layers the field
   represents (:func:`layer_distribution`); the driver applies it through the consistency layer shared by all
   methods (:mod:`colmda.assim.consistency`: porosity, residual water, frozen layers unchanged).

Because C^T C = I and 0 <= K <= max K, the effective gain C^T diag(K) C is symmetric positive semi-definite with
eigenvalues in [0, max K] (tests/test_image.py): the analysis never overshoots the observed field and never
amplifies an innovation. With K = 1 the analysis is the observed field, with sigma_o -> infinity the background.

Ocean handling (``ocean``): 'zero' (default) transforms innovations and perturbations with the ocean set to 0;
'nearest' first extends the land values of both into the ocean from the nearest land cell (an inpainting step;
the gain operator is then no longer symmetric). Either way the ocean is re-masked after the inverse transform.
Because the perturbations are masked like the innovations, B and R of a coefficient whose frame element is
partly over the ocean shrink together and its gain is unchanged: on the default domain a uniform innovation gets
0.683 of itself at coastal cells and 0.682 inland with 'zero', 0.690 / 0.681 with 'nearest'
(benchmarks/bench_image.py; docs/image.md).

Observation gaps (missing cells of the observed field, e.g. outside a satellite swath): the innovation there is
0 and the observation perturbations there have the standard deviation ``gap_sigma`` (default 1 m3 m-3, "no
information"), so the coefficients whose frame elements cover gaps get a large R and little weight; far from
valid cells the analysis stays the background.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import ensemble as ens
from .. import layout as L
from ..constants import DENH2O, DENICE
from ..errors import UserError
from ..keys import Key, where
from .base import Analysis, AnalysisMethod, Variable, register

if TYPE_CHECKING:  # the frame (scipy.fft) is imported when an analysis needs it, not with the configuration
    from ..curvelet import CurveletFrame

log = logging.getLogger("colmda")

STREAM_BACKGROUND = 301  # keyed random stream of the background perturbations
STREAM_OBSERVATION = 302  # ... of the observation perturbations


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def layer_distribution(dz: np.ndarray, top: float, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """Observation weights h and increment distribution a over soil layers (thicknesses dz, m) for a field that is
    the mean volumetric water content of [top, bottom] (m).

    h_l = overlap_l / (bottom - top) (the model equivalent is sum h_l theta_l); a_l = f_l / sum_m h_m f_m with
    f_l = overlap_l / dz_l the fraction of layer l inside the range, so that a layer wholly inside gets the same
    increment, a partly covered layer a proportionally smaller one, and sum h_l a_l = 1: the model equivalent
    changes by exactly the analysed increment."""
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    overlap = np.clip(np.minimum(zi[1:], bottom) - np.maximum(zi[:-1], top), 0.0, None)
    if overlap.sum() <= 0:
        raise UserError(f"&image depth = [{top}, {bottom}] m: does not overlap the soil layers (0 to {zi[-1]:.2f} m)")
    h = overlap / (bottom - top)
    f = overlap / dz
    return h, f / np.sum(h * f)


def perturbation_noise(seed: int, stream: int, time_key: int, columns: np.ndarray, members: int) -> np.ndarray:
    """Standard normal numbers (members, ncol), a pure function of (seed, stream, analysis time, member, global
    column): the same on any rank count and after a restart."""
    from ..forcing.perturb import keyed_normal

    m = np.arange(members, dtype=np.int64)[:, None]
    return keyed_normal(int(seed), int(stream), int(time_key), m, np.asarray(columns, dtype=np.int64)[None, :])


def nearest_fill_index(land: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the nearest land cell of every cell (for the 'nearest' ocean treatment)."""
    from scipy import ndimage  # imported here: the module is imported with the configuration (its keys)

    _, idx = ndimage.distance_transform_edt(~land, return_indices=True)
    return idx[0], idx[1]


@dataclass
class ImageAnalysis:
    """Result of :func:`analysis` on the image grid."""

    increment: np.ndarray  # (ny, nx) analysis - background (m3 m-3), 0 off land
    gain: list  # per stored wedge: K (parts, My, Mx)
    bvar: list  # per stored wedge: B diagonal
    rvar: list  # per stored wedge: R diagonal


def analysis(background: np.ndarray, observed: np.ndarray, land: np.ndarray, frame: CurveletFrame,
             noise_b: np.ndarray | None, noise_o: np.ndarray | None, sigma_b: float = 0.15, sigma_o=0.1,
             gap_sigma: float = 1.0, scale_weight=None, ocean: str = "zero", ensemble_b: np.ndarray | None = None,
             ensemble_o: np.ndarray | None = None) -> ImageAnalysis:
    """The curvelet-space Kalman update of one field.

    background, observed: (ny, nx) m3 m-3 (observed NaN in gaps; values off land ignored); land: (ny, nx) bool;
    noise_b, noise_o: (N, ny, nx) standard normal numbers (off-land values ignored), scaled by sigma_b and sigma_o
    (scalar or (ny, nx)); or ensemble_b / ensemble_o: (N, ny, nx) member fields (a real ensemble) whose anomalies
    give B / R instead. scale_weight: one factor in [0, 1] per scale (None: all 1). ocean: 'zero' | 'nearest'.
    """
    land = np.asarray(land, dtype=bool)
    valid = land & np.isfinite(observed)
    if not valid.any():
        raise UserError("image analysis: the observed field has no valid land cell")
    nsc = frame.nscales
    w_scale = np.ones(nsc) if scale_weight is None or len(scale_weight) == 0 else np.asarray(scale_weight, float)
    if len(w_scale) != nsc or np.any(w_scale < 0) or np.any(w_scale > 1):
        raise UserError(f"&image scale_weight = {list(w_scale)}: expected {nsc} values in [0, 1] (one per scale)")
    if ocean == "nearest":
        fy, fx = nearest_fill_index(land)

        def extend(a):
            return a[..., fy, fx]
    elif ocean == "zero":
        def extend(a):
            return np.where(land, a, 0.0)
    else:
        raise UserError(f"&image ocean = '{ocean}': expected 'zero' or 'nearest'")
    innov = extend(np.where(valid, observed - background, 0.0))
    # error perturbations (members, ny, nx): float32 is ample for variances (round-off 1e-7 vs sampling 1/sqrt(N))
    if ensemble_b is not None:
        pert_b = ensemble_b - ensemble_b.mean(axis=0)
    else:
        pert_b = np.asarray(sigma_b) * noise_b
    if ensemble_o is not None:
        pert_o = ensemble_o - ensemble_o.mean(axis=0)
        pert_o = np.where(valid, pert_o, gap_sigma * (noise_o if noise_o is not None else 0.0))
    else:
        pert_o = np.where(valid, np.asarray(sigma_o) * noise_o, gap_sigma * noise_o)
    pert_b = extend(pert_b).astype(np.float32)
    pert_o = extend(pert_o).astype(np.float32)
    Xb = frame._spectrum(pert_b, np.float32)
    Xo = frame._spectrum(pert_o, np.float32)
    Xd = frame._spectrum(innov)
    Z = np.zeros(frame.padded, dtype=complex)
    gains, bvars, rvars = [], [], []
    for w in frame.wedges:
        B = frame.wedge_forward(Xb, w).var(axis=0, ddof=1).astype(np.float64)
        R = frame.wedge_forward(Xo, w).var(axis=0, ddof=1).astype(np.float64)
        tot = B + R
        K = w_scale[w.scale] * np.divide(B, tot, out=np.zeros_like(B), where=tot > 0)
        frame.wedge_adjoint(K * frame.wedge_forward(Xd, w), w, Z)
        gains.append(K)
        bvars.append(B)
        rvars.append(R)
    from scipy import fft as sfft

    inc = sfft.ifft2(Z, norm="ortho", workers=1).real[: frame.shape[0], : frame.shape[1]]
    return ImageAnalysis(np.where(land, inc, 0.0), gains, bvars, rvars)


def apply_gain(frame: CurveletFrame, gains: list, field: np.ndarray) -> np.ndarray:
    """C^T diag(K) C applied to a field (the effective gain operator; used by the tests)."""
    c = frame.forward(field)
    from ..curvelet import Coefficients

    return frame.inverse(Coefficients(frame, [k * d for k, d in zip(gains, c.data)]))


def spatial_stats(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """Spatial correlation (SCC), unbiased RMSE and bias of field a against b over the mask."""
    x, y = a[mask], b[mask]
    if len(x) < 2:
        return float("nan"), float("nan"), float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(dx ** 2) * np.sum(dy ** 2))
    scc = float(np.sum(dx * dy) / den) if den > 0 else float("nan")
    return scc, float(np.sqrt(np.mean((dx - dy) ** 2))), float(np.mean(x - y))


# ---------------------------------------------------------------------------------------------------------------
# image grid of a run's columns


@dataclass
class ImageGrid:
    """The smallest lat-lon box of the domain grid holding a run's columns (global column = row-major index)."""

    rows: np.ndarray  # (ncol,) row of each run column in the image
    cols: np.ndarray
    shape: tuple
    periodic_lon: bool
    lat: np.ndarray  # (ny,) cell centres
    lon: np.ndarray  # (nx,)

    @classmethod
    def of_columns(cls, columns, grid_lat, grid_lon, is_global: bool):
        nlon = len(grid_lon)
        r, c = np.divmod(np.asarray(columns, dtype=np.int64), nlon)
        r0, r1 = int(r.min()), int(r.max())
        u = np.unique(c)
        if is_global and len(u) > 0 and (len(u) == nlon or _largest_gap(u, nlon) <= 2):
            c0, nx, periodic = 0, nlon, True  # a global grid: keep every longitude, periodic
        else:
            gaps = np.diff(np.concatenate([u, [u[0] + nlon]]))
            g = int(np.argmax(gaps))
            c0 = int(u[(g + 1) % len(u)])
            nx, periodic = nlon - int(gaps[g]) + 1, False
        cc = (c - c0) % nlon
        lons = np.asarray(grid_lon)[(c0 + np.arange(nx)) % nlon]
        return cls(r - r0, cc, (r1 - r0 + 1, nx), periodic, np.asarray(grid_lat)[r0:r1 + 1], lons)

    def image(self, values: np.ndarray, fill=np.nan) -> np.ndarray:
        out = np.full(values.shape[:-1] + self.shape, fill, dtype=float)
        out[..., self.rows, self.cols] = values
        return out

    def land(self) -> np.ndarray:
        return self.image(np.ones(len(self.rows)), 0.0) > 0


def _largest_gap(u, n):
    return int(np.diff(np.concatenate([u, [u[0] + n]])).max()) - 1


# ---------------------------------------------------------------------------------------------------------------
# the observed field


class ObservedField:
    """The observed field at the run's columns: a netCDF file of (time, lat, lon) fields in m3 m-3 (variable
    &image variable, default 'sm'; lat/lon 1-D coordinates), or a directory of GLDAS Noah 3-hourly nc4 files
    (variable default 'SoilMoi0_10cm_inst'). A field on another grid than the domain needs &image regrid =
    'bilinear'; values at analysis times without a record are None (no analysis then)."""

    def __init__(self, g, inputs, source: str):
        self.path = Path(g.file)
        self.regrid = g.regrid
        self.source = source
        self.grid_lat = np.asarray(inputs.grid_lat, float)
        self.grid_lon = np.asarray(inputs.grid_lon, float)
        nlon = len(self.grid_lon)
        self.rows, self.cols = np.divmod(np.asarray(inputs.column, dtype=np.int64), nlon)
        if self.path.is_dir():
            from ..obs.readers import gldas

            self.variable = g.variable or "SoilMoi0_10cm_inst"
            self.archive = gldas.Archive(self.path)
            self.times = None
        else:
            import xarray as xr

            self.variable = g.variable or "sm"
            self.archive = None
            try:
                ds = xr.open_dataset(self.path)
            except (OSError, ValueError) as exc:
                raise UserError(f"{source}: &image file = '{self.path}': cannot read as netCDF ({exc})") from None
            with ds:
                if self.variable not in ds:
                    raise UserError(f"{self.path}: variable '{self.variable}' not found (&image variable); "
                                    f"variables: {', '.join(map(str, ds.data_vars))}")
                v = ds[self.variable]
                if v.dims[-2:] != ("lat", "lon") or "time" not in v.dims:
                    raise UserError(f"{self.path}: variable '{self.variable}' has dimensions {v.dims}, expected "
                                    f"(time, lat, lon)")
                self.times = [_dt.datetime.fromisoformat(str(np.datetime_as_string(t, unit="s")))
                              for t in ds["time"].values]
                self.file_lat = np.asarray(ds["lat"].values, float)
                self.file_lon = np.asarray(ds["lon"].values, float)
                self._check_grid(self.file_lat, self.file_lon, str(self.path))
                if v.dims[0] != "time":
                    raise UserError(f"{self.path}: variable '{self.variable}' must have time as its first "
                                    f"dimension, got {v.dims}")
        self._time_index = {t: k for k, t in enumerate(self.times or [])}
        self._nc = None
        self._pos = None

    def _positions(self, lat, lon):
        """Row and column in the file grid of every run column when the file grid holds the run columns' cell
        centres (the domain grid or a box of it), else None."""
        iy = np.argmin(np.abs(np.asarray(lat)[:, None] - self.grid_lat[self.rows][None, :]), axis=0)
        dl = (np.asarray(lon)[:, None] % 360.0) - (self.grid_lon[self.cols][None, :] % 360.0)
        dl = (dl + 180.0) % 360.0 - 180.0
        ix = np.argmin(np.abs(dl), axis=0)
        ok = np.all(np.abs(lat[iy] - self.grid_lat[self.rows]) < 1e-4) and np.all(np.abs(dl[ix, np.arange(
            len(ix))]) < 1e-4)
        return (iy, ix) if ok else None

    def _same_grid(self, lat, lon) -> bool:
        return self._positions(lat, lon) is not None

    def _check_grid(self, lat, lon, name):
        if self.regrid == "none" and not self._same_grid(lat, lon):
            raise UserError(f"{name}: field grid {len(lat)} x {len(lon)} (lat x lon) does not hold the domain grid's "
                            f"cell centres of the run ({len(self.grid_lat)} x {len(self.grid_lon)} domain); set "
                            f"&image regrid = 'bilinear'")

    def _to_columns(self, lat, lon, values, name):
        self._check_grid(lat, lon, name)
        pos = self._positions(lat, lon)
        if pos is not None:  # the domain grid or a box of it: no interpolation
            return values[pos[0], pos[1]]
        if lat[0] > lat[-1]:
            lat, values = lat[::-1], values[::-1]
        from ..obs.readers.gldas import regrid_bilinear

        rr = np.unique(self.rows)
        cc = np.unique(self.cols)
        sub = regrid_bilinear(lat, lon, values, self.grid_lat[rr], self.grid_lon[cc])
        return sub[np.searchsorted(rr, self.rows), np.searchsorted(cc, self.cols)]

    def at(self, t: _dt.datetime):
        """Field values (ncol,) at the run's columns at time t (NaN where missing), or None."""
        if self.archive is not None:
            f = self.archive.field(t, self.variable)
            if f is None:
                return None
            return self._to_columns(f.lat, f.lon, f.values[self.variable], str(self.archive.files[t]))
        k = self._time_index.get(t)
        if k is None:
            return None
        if self._nc is None:  # kept open for the run (rank 0 only reads)
            import netCDF4

            self._nc = netCDF4.Dataset(self.path)
            self._nc.set_auto_mask(False)
        v = self._nc[self.variable]
        vals = np.asarray(v[k], dtype=float)
        fill = getattr(v, "_FillValue", None)
        if fill is not None:
            vals[vals == fill] = np.nan
        if self._pos is None:
            self._check_grid(self.file_lat, self.file_lon, str(self.path))
            self._pos = self._positions(self.file_lat, self.file_lon) or False
        if self._pos:
            return vals[self._pos[0], self._pos[1]]
        return self._to_columns(self.file_lat, self.file_lon, vals, str(self.path))


# ---------------------------------------------------------------------------------------------------------------
# driver: &assimilation method = 'image' (the method protocol of colmda.assim.base)

IM = "image"
#: the &image keys (owned by this method; colmda.config aggregates them)
KEYS = (
    Key(IM, "file", "path", "", "-", "observed field: a netCDF file (time, lat, lon) in m3 m-3, or a directory of "
        "GLDAS Noah native nc4 files; required for method = 'image'"),
    Key(IM, "variable", "str", "", "-", "variable of the field; '' = 'SoilMoi0_10cm_inst' (GLDAS) or 'sm'"),
    Key(IM, "regrid", "str", "none", "-", "field on another grid than the domain: 'bilinear' (NaN-aware), 'none' = "
        "must be on the domain grid", choices=("none", "bilinear")),
    Key(IM, "depth", "float_list", [0.0, 0.1], "m", "top and bottom of the soil the field is the mean of; the "
        "increment goes to the layers by depth overlap", lengths=(2,), check=lambda v: None if 0 <= v[0] < v[1]
        else "0 <= top < bottom"),
    Key(IM, "hours", "float_list", [0.0, 6.0, 12.0, 18.0], "UTC", "analysis hours (window ends at these hours)",
        check=lambda v: None if v and all(0 <= h < 24 for h in v) else "hours in [0, 24)"),
    Key(IM, "nscales", "int", 4, "-", "curvelet scales (coarsest = isotropic low-pass)", lo=1, hi=10),
    Key(IM, "wedges", "float_list", [4, 8, 8], "-", "orientations over [0, pi) of every scale after the coarsest "
        "(nscales - 1 values, or one for all)", check=lambda v: None if v and all(x >= 1 and x == int(x) for x in v)
        else "positive integers"),
    Key(IM, "scale_weight", "float_list", [], "-", "gain factor of each scale (0 excludes it); empty = all 1",
        check=lambda v: None if all(0 <= x <= 1 for x in v) else "values in [0, 1]"),
    Key(IM, "members", "int", 50, "-", "perturbed members of the observed field and, with one state per column "
        "(&assimilation n_members = 1), of the background; with an ensemble run the background members are the "
        "run's members (and sigma_b is not used)", lo=2,
        hi=1000),
    Key(IM, "sigma_b", "float", 0.15, "m3 m-3", "background perturbation std (seed 003: 0.15)", lo=0.0, lo_open=True),
    Key(IM, "sigma_o", "float", 0.1, "m3 m-3", "observed-field perturbation std (seed 003: 0.1)", lo=0.0),
    Key(IM, "gap_sigma", "float", 1.0, "m3 m-3", "perturbation std in gaps of the observed field", lo=0.0),
    Key(IM, "ocean", "str", "zero", "-", "ocean cells in the transform: 'zero' or 'nearest' (filled from the nearest "
        "land cell); always unchanged by the analysis", choices=("zero", "nearest")),
)

#: diagnostics: <run>/analysis/image_<YYYYmmddTHHMM>.json per analysis (and image_fields_*.nc at 00 UTC)
SCHEMA = {
    "valid_cells": Variable((), "1", "land cells with a valid observed value"),
    "scc_background": Variable((), "1", "spatial correlation of background and observed field"),
    "scc_analysis": Variable((), "1", "spatial correlation of analysis and observed field"),
    "ubrmse_background": Variable((), "m3 m-3", "unbiased RMS difference background - observed field"),
    "ubrmse_analysis": Variable((), "m3 m-3", "unbiased RMS difference analysis - observed field"),
    "bias_background": Variable((), "m3 m-3", "mean background - observed field"),
    "bias_analysis": Variable((), "m3 m-3", "mean analysis - observed field"),
    "increment_mean_abs": Variable((), "m3 m-3", "mean |increment| of the field before the consistency layer"),
    "water_added_mean_kg_m2": Variable((), "kg m-2", "mean water added per column (after the consistency layer)"),
    "fields/background": Variable(("lat", "lon"), "m3 m-3", "model equivalent of the field (00 UTC analyses)"),
    "fields/observed": Variable(("lat", "lon"), "m3 m-3", "observed field"),
    "fields/increment": Variable(("lat", "lon"), "m3 m-3", "analysis - background before bounds"),
}


@register
class ImageMethod(AnalysisMethod):
    """The curvelet image analysis at the &image hours; the state of the analysis across windows of one run."""

    name = "image"
    summary = "curvelet-space EnKF-like analysis of a gridded field (&image, docs/image.md)"
    group = IM
    group_doc = "the curvelet image analysis (&assimilation method = 'image')"
    keys = KEYS
    schema = SCHEMA
    #: one state per column (B from perturbed copies of the background), or a real ensemble (&assimilation
    #: n_members > 1: B from the members' fields, the mean analysed, the same increment added to every member)
    members = "any"

    @classmethod
    def validate(cls, settings) -> None:
        src, im, e = settings.source, settings.image, settings.experiment
        if not im.file or not Path(im.file).exists():
            raise UserError(f"{where(src, IM, 'file')} = '{im.file}': expected an existing observed-field file or "
                            f"GLDAS directory for &assimilation method = 'image'")
        if len(im.wedges) not in (1, im.nscales - 1):
            raise UserError(f"{where(src, IM, 'wedges')}: {len(im.wedges)} value(s) for nscales = {im.nscales} "
                            f"(expected {im.nscales - 1} or 1)")
        win = settings.window_seconds
        sod = e.start.hour * 3600 + e.start.minute * 60
        late = [h for h in im.hours if (h * 3600.0 - sod) % win]
        if late:
            raise UserError(f"{where(src, IM, 'hours')}: {late[0]:g} UTC is not a window end with &assimilation "
                            f"window_hours = {settings.assimilation.window_hours:g} (use window_hours = 6 for "
                            f"00/06/12/18 UTC)")
        if im.scale_weight and len(im.scale_weight) != im.nscales:
            raise UserError(f"{where(src, IM, 'scale_weight')}: {len(im.scale_weight)} value(s) for nscales = "
                            f"{im.nscales}")

    def __init__(self, settings, inputs, comm=None):
        super().__init__(settings, inputs, comm)
        s = settings
        g = s.image
        self.s = s
        self.g = g
        self.grid = ImageGrid.of_columns(inputs.column, inputs.grid_lat, inputs.grid_lon,
                                         bool(getattr(inputs.domain, "is_global", True)))
        self.land = self.grid.land()
        from ..curvelet import CurveletFrame

        self.frame = CurveletFrame(self.grid.shape, g.nscales, [int(w) for w in g.wedges],
                                   periodic=(False, self.grid.periodic_lon), name=f"{s.source}: &image nscales")
        if g.scale_weight and len(g.scale_weight) != g.nscales:
            raise UserError(f"{s.source}: &image scale_weight has {len(g.scale_weight)} value(s) for nscales = "
                            f"{g.nscales}")
        dz = inputs.params.dz_soil
        self.h, self.a = layer_distribution(dz, g.depth[0], g.depth[1])
        self.nl = int(np.flatnonzero(self.h > 0).max()) + 1
        self.columns = np.asarray(inputs.column)
        self.end = s.assimilation.end or s.end
        self.observed = ObservedField(g, inputs, s.source)

    def is_analysis_time(self, t: _dt.datetime) -> bool:
        return t <= self.end and t.minute == 0 and t.second == 0 and float(t.hour) in {float(h) for h in self.g.hours}

    def analyse(self, ctx, request, forecast) -> Analysis | None:
        if not self.is_analysis_time(ctx.time):
            return None
        comm = ctx.comm
        s = L.NSNOW_MAX
        nl = self.nl
        st = ctx.state
        dz = ctx.params.dz_soil[:nl, None]
        theta = (st.wliq_soisno[s:s + nl] / DENH2O + st.wice_soisno[s:s + nl] / DENICE) / dz  # (nl, nflat)
        hx_flat = self.h[:nl] @ theta
        nmem = ctx.n_members
        members = None
        if nmem > 1:  # a real ensemble: its mean is analysed, its members' fields give B
            hx_local = ens.member_mean(hx_flat, nmem)
            members = comm.gather_columns(np.ascontiguousarray(ens.unflatten(hx_flat, nmem).T), ctx.decomposition)
        else:
            hx_local = hx_flat
        hx = comm.gather_columns(hx_local, ctx.decomposition)
        delta = None
        stats = None
        if comm.is_root:
            delta, stats = self._root(ctx, hx, members)
        delta = comm.scatter_columns(delta, ctx.decomposition)
        # (nl, nflat) m3 m-3, the same for every member of a column; bounded by the consistency layer
        inc_layers = self.a[:nl, None] * ens.repeat_columns(delta, nmem)[None, :]
        return Analysis(np.arange(st.ncol), inc_layers, stats)

    def write_diagnostics(self, ctx, analysis: Analysis, report) -> None:
        comm = ctx.comm
        water = comm.gather_columns(ens.member_mean(report.water_added, ctx.n_members),
                                    ctx.decomposition)  # kg m-2 per column (member mean)
        stats = analysis.diagnostics
        if comm.is_root and stats is not None:
            fields = stats.pop("_fields")
            stats["water_added_mean_kg_m2"] = float(np.mean(water))  # after bounds and frozen layers
            if self.s.assimilation.diagnostics:
                from ..manifest import write_json

                d = self.s.output_directory / "analysis"
                d.mkdir(parents=True, exist_ok=True)
                stamp = ctx.time.strftime("%Y%m%dT%H%M")
                write_json(d / f"image_{stamp}.json", stats)
                if ctx.time.hour == 0:
                    self._write_fields(d / f"image_fields_{stamp}.nc", fields)
            log.debug("image analysis %s: %s", ctx.time, stats)

    def _root(self, ctx, hx, members=None):
        g = self.g
        t = ctx.time
        obs_cols = self.observed.at(t)  # (ncol,) NaN where missing, or None when no field at t
        if obs_cols is None:
            log.warning("image analysis %s: no observed field at this time in %s; no analysis", t, self.g.file)
            return np.zeros(len(self.columns)), None
        if not np.isfinite(obs_cols).any():
            raise UserError(f"{self.g.file}: the observed field at {t.isoformat()} has no valid cell on the run's "
                            f"columns (&image file / variable / regrid)")
        bg = self.grid.image(hx)
        ob = self.grid.image(obs_cols)
        key = int(round((t - _dt.datetime(1970, 1, 1)).total_seconds() / 60.0))  # minutes since 1970
        seed = self.s.experiment.seed
        no = self.grid.image(perturbation_noise(seed, STREAM_OBSERVATION, key, self.columns, g.members), 0.0)
        if members is None:
            nb = self.grid.image(perturbation_noise(seed, STREAM_BACKGROUND, key, self.columns, g.members), 0.0)
            ensemble_b = None
        else:
            nb, ensemble_b = None, self.grid.image(members, 0.0)
        res = analysis(bg, ob, self.land, self.frame, nb, no, g.sigma_b, g.sigma_o, g.gap_sigma,
                       list(g.scale_weight) or None, g.ocean, ensemble_b=ensemble_b)
        delta = res.increment[self.grid.rows, self.grid.cols]
        valid = self.land & np.isfinite(ob)
        scc_b, ub_b, bias_b = spatial_stats(bg, ob, valid)
        scc_a, ub_a, bias_a = spatial_stats(bg + res.increment, ob, valid)
        stats = {"time": t.isoformat(), "valid_cells": int(valid.sum()), "scc_background": scc_b,
                 "scc_analysis": scc_a, "ubrmse_background": ub_b, "ubrmse_analysis": ub_a,
                 "bias_background": bias_b, "bias_analysis": bias_a,
                 "increment_mean_abs": float(np.mean(np.abs(delta)))}
        stats["_fields"] = (bg, ob, np.where(self.land, res.increment, np.nan))
        return delta, stats

    def _write_fields(self, path, fields):
        """Background, observed field and increment of one analysis on the image grid (netCDF, written
        atomically), for maps like seed 003 Figs. 4-6."""
        import xarray as xr

        from ..output import atomic_path

        bg, ob, inc = fields
        attrs = {"units": "m3 m-3", "depth_range_m": list(self.g.depth)}
        ds = xr.Dataset({"background": (("lat", "lon"), bg.astype("f4"), {**attrs, "long_name": "background "
                                                                            "(model equivalent of the field)"}),
                         "observed": (("lat", "lon"), ob.astype("f4"), {**attrs, "long_name": "observed field"}),
                         "increment": (("lat", "lon"), inc.astype("f4"), {**attrs, "long_name": "analysis - "
                                                                          "background before bounds"})},
                        coords={"lat": ("lat", self.grid.lat, {"units": "degrees_north"}),
                                "lon": ("lon", self.grid.lon, {"units": "degrees_east"})})
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp)
