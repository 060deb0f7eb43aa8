"""Speed of one image analysis (seed 003) on the default 256 x 128 grid: 50 background and 50 observation
members transformed (100 forward transforms), per-coefficient variances, gain, and the inverse transform.

Run: .venv/bin/python benchmarks/bench_image.py [IMAGE_TWIN_DIR]   (one core: scipy.fft runs with workers=1; set
OMP_NUM_THREADS=1 so that numpy's BLAS, unused here, cannot take a second core)
"""

import time

import numpy as np

from colmda.assim import image
from colmda.curvelet import CurveletFrame


def main(repeats: int = 5):
    shape = (128, 256)  # (lat, lon) of the default domain
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    land = (np.sin(xx / 20.0) + np.cos(yy / 15.0)) > -0.3  # about 2/3 land
    bg = 0.25 + 0.1 * np.sin(xx / 30.0)
    ob = 0.28 + 0.1 * np.cos(yy / 25.0)
    t0 = time.perf_counter()
    frame = CurveletFrame(shape)
    t_frame = time.perf_counter() - t0
    cols = np.flatnonzero(land.ravel())
    times, cpu = [], []
    for r in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        nb = np.zeros((50,) + shape)
        no = np.zeros((50,) + shape)
        nb[:, land] = image.perturbation_noise(1, image.STREAM_BACKGROUND, r, cols, 50)
        no[:, land] = image.perturbation_noise(1, image.STREAM_OBSERVATION, r, cols, 50)
        t1 = time.perf_counter()
        image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1)
        t2 = time.perf_counter()
        times.append((t1 - t0, t2 - t1))
        cpu.append(time.process_time() - c0)
    x = rng.standard_normal((100,) + shape)
    fwd, inv = [], []
    for _ in range(3):
        c0 = time.process_time()
        c = frame.forward(x)
        c1 = time.process_time()
        frame.inverse(c)
        fwd.append(c1 - c0)
        inv.append(time.process_time() - c1)
    noise, ana = np.median(np.array(times), axis=0)
    print(f"grid {shape[1]} x {shape[0]} (lon x lat), {frame.nscales} scales, wedges {frame.wedges_per_scale}, "
          f"redundancy {frame.redundancy:.2f}, padded {frame.padded}")
    print(f"frame set-up (once per run):                 {t_frame:.3f} s")
    print(f"keyed noise for 2 x 50 members:               {noise:.3f} s")
    print(f"one analysis, 50 + 50 members (median of {repeats}): {ana:.3f} s wall; noise + analysis "
          f"{np.median(cpu):.3f} s CPU (the CPU time is the number to quote on a shared machine)")
    print(f"float64 transforms of 100 fields (best of 3, CPU): forward {min(fwd):.3f} s, inverse {min(inv):.3f} s")


def ocean_effect():
    """Effect of the ocean treatment on the default domain: a uniform innovation of 0.05 m3 m-3 over land,
    increment / innovation at coastal cells (next to the ocean) and inland cells (>= 5 cells from it)."""
    from scipy import ndimage

    from colmda.domain import Domain

    d = Domain.load()
    land = np.asarray(d.fields["landmask"]).astype(bool)
    dist = ndimage.distance_transform_edt(land)
    frame = CurveletFrame(land.shape)
    cols = np.flatnonzero(land.ravel())
    nb = np.zeros((50,) + land.shape)
    no = np.zeros((50,) + land.shape)
    nb[:, land] = image.perturbation_noise(1, image.STREAM_BACKGROUND, 0, cols, 50)
    no[:, land] = image.perturbation_noise(1, image.STREAM_OBSERVATION, 0, cols, 50)
    bg = np.full(land.shape, 0.25)
    ob = bg + 0.05
    k = 0.15 ** 2 / (0.15 ** 2 + 0.1 ** 2)
    print(f"ocean treatment, uniform innovation 0.05 over land (point-wise gain would be {k:.3f}):")
    for ocean in ("zero", "nearest"):
        inc = image.analysis(bg, ob, land, frame, nb, no, 0.15, 0.1, ocean=ocean).increment / 0.05
        print(f"  ocean = '{ocean}': increment / innovation coastal {inc[land & (dist <= 1)].mean():.3f}, "
              f"inland {inc[land & (dist >= 5)].mean():.3f} (std {inc[land & (dist >= 5)].std():.3f})")


def experiment_cost(twin_dir, days: int = 10):
    """CPU and wall time of CTL and IMAGE over ``days`` days, from the spun-up CTL state of a finished image twin
    (``python -m colmda.image_twin namelists/image_twin.nml``) and with its observed field, one after the other in
    this process (CPU time is the fair measure on a shared machine)."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    from colmda import config
    from colmda.matrix import _spinup_restart, derived
    from colmda.parallel import SerialComm
    from colmda.run import run

    twin_dir = Path(twin_dir)
    s = config.load(Path(__file__).resolve().parents[1] / "namelists" / "image_twin.nml")
    end = dt.datetime(2005, 6, 2) + dt.timedelta(days=days)
    init = str(_spinup_restart(twin_dir / "CTL", "CTL"))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, a in (("CTL", {"method": "none", "window_hours": 6.0}),
                        ("IMAGE", {"method": "image", "window_hours": 6.0})):
            es = derived(s, {"experiment": {"name": name, "end": end.isoformat(), "initial_restart": init,
                                            "spinup_max_cycles": 0},
                             "assimilation": a, "image": {"file": str(twin_dir / "eval" / "observed.nc")},
                             "output": {"directory": f"{tmp}/{name}", "frequency": "6h", "averaging": "instant",
                                        "variables": ["SoilMoistV"]}})
            c0, t0 = time.process_time(), time.perf_counter()
            run(es, comm=SerialComm(), progress=False)
            out[name] = (time.process_time() - c0, time.perf_counter() - t0)
    print(f"{days}-day runs on the image twin's region ({twin_dir}): CTL {out['CTL'][0]:.1f} s CPU "
          f"({out['CTL'][1]:.1f} s wall), IMAGE {out['IMAGE'][0]:.1f} s CPU ({out['IMAGE'][1]:.1f} s wall): "
          f"IMAGE / CTL = {out['IMAGE'][0] / out['CTL'][0]:.2f} (CPU), {out['IMAGE'][1] / out['CTL'][1]:.2f} (wall)")


if __name__ == "__main__":
    import sys

    main()
    ocean_effect()
    if len(sys.argv) > 1:  # the directory of a finished image twin: cost of IMAGE relative to CTL
        experiment_cost(sys.argv[1])
