"""GLDAS Noah 3-hourly native nc4 files (GLDAS_NOAH025_3H / GLDAS_NOAH10_3H, v2.0/2.1; NASA GES DISC).

Each file holds one time (``time`` in minutes since the file's begin time; the file name carries the date and
time as ``A<YYYYMMDD>.<HHMM>``) on a regular lat-lon grid (0.25 degree: 600 x 1440 from 59.875 S, 179.875 W)
with ``_FillValue`` -9999 over ocean, ice and Antarctica. Soil moisture variables ``SoilMoi<a>_<b>cm_inst`` are
water amounts in kg m-2 of the layer a-b cm; the reader converts them to volumetric water content (m3 m-3) by
dividing by (1000 kg m-3 x layer thickness). :func:`regrid_bilinear` interpolates a field to another lat-lon
grid (as seed 003 does from 0.25 degree to the model grid), ignoring missing cells. Bilinear sampling of a
0.25 degree field at 1.4 degree cell centres keeps the source's small-scale noise (it is not an area mean); the
seed does the same.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UserError

#: soil moisture variables of GLDAS Noah and their depth ranges (m)
LAYERS = {"SoilMoi0_10cm_inst": (0.0, 0.1), "SoilMoi10_40cm_inst": (0.1, 0.4),
          "SoilMoi40_100cm_inst": (0.4, 1.0), "SoilMoi100_200cm_inst": (1.0, 2.0)}
WATER_DENSITY = 1000.0  # kg m-3
FILE_RE = re.compile(r"GLDAS_NOAH\w*?_3H\.A(\d{8})\.(\d{4})\.\d+\.nc4$")


@dataclass
class GldasField:
    lat: np.ndarray  # (ny,) degrees_north, ascending
    lon: np.ndarray  # (nx,) degrees_east
    time: _dt.datetime
    values: dict  # variable -> (ny, nx) volumetric soil moisture (m3 m-3), NaN where missing


def file_time(path) -> _dt.datetime | None:
    m = FILE_RE.search(Path(path).name)
    if not m:
        return None
    return _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M")


def read(path, variables=("SoilMoi0_10cm_inst",)) -> GldasField:
    """Volumetric soil moisture of the given layers from one native GLDAS Noah nc4 file."""
    import netCDF4

    path = Path(path)
    try:
        ds = netCDF4.Dataset(path)
    except (OSError, FileNotFoundError) as exc:
        raise UserError(f"{path}: cannot open as a GLDAS nc4 file ({exc})") from None
    with ds:
        for name in ("lat", "lon", *variables):
            if name not in ds.variables:
                raise UserError(f"{path}: variable '{name}' not found (GLDAS Noah native nc4 expected; soil "
                                f"moisture variables: {', '.join(LAYERS)})")
        lat = np.asarray(ds["lat"][:], dtype=float)
        lon = np.asarray(ds["lon"][:], dtype=float)
        t = file_time(path)
        if t is None:
            tv = ds["time"]
            t = netCDF4.num2date(tv[0], tv.units.strip(), only_use_cftime_datetimes=False,
                                 only_use_python_datetimes=True)
        out = {}
        for name in variables:
            v = ds[name]
            units = getattr(v, "units", "")
            if units.replace(" ", "") not in ("kgm-2", "kg/m2", "kgm**-2"):
                raise UserError(f"{path}: variable '{name}' has units '{units}', expected kg m-2")
            if name not in LAYERS:
                raise UserError(f"{path}: '{name}' is not a GLDAS soil moisture layer ({', '.join(LAYERS)})")
            top, bottom = LAYERS[name]
            a = np.ma.filled(np.ma.masked_invalid(v[0]).astype(float), np.nan)
            a[a < 0] = np.nan
            out[name] = a / (WATER_DENSITY * (bottom - top))
    if lat[0] > lat[-1]:
        lat = lat[::-1]
        out = {k: v[::-1] for k, v in out.items()}
    return GldasField(lat, lon, t, out)


class Archive:
    """A directory tree of GLDAS 3-hourly files, indexed by the time in their names."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.files = {}
        for p in sorted(self.directory.rglob("GLDAS_NOAH*.nc4")):
            t = file_time(p)
            if t is not None:
                self.files[t] = p
        if not self.files:
            raise UserError(f"{self.directory}: no GLDAS Noah 3-hourly file (GLDAS_NOAH*_3H.A<date>.<time>.*.nc4)")

    def field(self, time: _dt.datetime, variable: str):
        p = self.files.get(time)
        if p is None:
            return None
        return read(p, (variable,))


def regrid_bilinear(src_lat, src_lon, values, dst_lat, dst_lon, min_weight: float = 0.5) -> np.ndarray:
    """Bilinear interpolation of ``values`` (..., ny, nx) on an ascending regular lat-lon grid to the cell centres
    (dst_lat, dst_lon) (1-D, outer product). Longitude is periodic when the source grid spans 360 degrees (else
    targets outside it get NaN); missing source cells (NaN) are left out and
    the weights of the others renormalised; a target cell gets NaN where the valid weight is below
    ``min_weight`` or its latitude is outside the source grid."""
    src_lat = np.asarray(src_lat, float)
    src_lon = np.asarray(src_lon, float)
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    v0 = np.where(ok, v, 0.0)
    dlat = np.asarray(dst_lat, float)
    # latitude: index and weight; outside -> NaN
    i = np.searchsorted(src_lat, dlat) - 1
    inside = (dlat >= src_lat[0]) & (dlat <= src_lat[-1])
    i = np.clip(i, 0, len(src_lat) - 2) if len(src_lat) > 1 else np.zeros_like(i)
    wy = (dlat - src_lat[i]) / (src_lat[i + 1] - src_lat[i]) if len(src_lat) > 1 else np.zeros(len(dlat))
    wy = np.clip(wy, 0.0, 1.0)
    # longitude: periodic
    lon0 = src_lon[0]
    step = (src_lon[-1] - src_lon[0]) / (len(src_lon) - 1)
    nlon = len(src_lon)
    periodic = abs(nlon * step - 360.0) < 1e-3 * step  # a global grid wraps around, a regional one does not
    x = ((np.asarray(dst_lon, float) - lon0) % 360.0) / step
    inside_x = np.ones(len(x), bool) if periodic else (x <= nlon - 1)
    x = np.where(inside_x, x, 0.0)
    j = np.floor(x).astype(int) % nlon
    wx = x - np.floor(x)
    j1 = (j + 1) % nlon if periodic else np.minimum(j + 1, nlon - 1)
    num = np.zeros(v.shape[:-2] + (len(dlat), len(wx)))
    den = np.zeros_like(num)
    for ii, ay in ((i, 1 - wy), (i + 1, wy)):
        for jj, ax in ((j, 1 - wx), (j1, wx)):
            w = ay[:, None] * ax[None, :]
            num += w * v0[..., ii[:, None], jj[None, :]]
            den += w * ok[..., ii[:, None], jj[None, :]]
    out = np.where(den >= min_weight, num / np.where(den > 0, den, 1.0), np.nan)
    out[..., ~inside, :] = np.nan
    out[..., ~inside_x] = np.nan
    return out
