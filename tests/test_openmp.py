"""The OpenMP build (meson option ``openmp``) gives bitwise the same results as the default serial build."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from colmda import core
from colmda.testing import climate_forcing, column_parameters

RUNNER = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    spec = importlib.util.spec_from_file_location("_core", sys.argv[1])
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    from colmda import core
    core._core = lambda: ext          # route colmda.core.advance through the OpenMP build
    from colmda.testing import climate_forcing, column_parameters
    names = ["tropical", "arid", "temperate", "boreal", "tundra"] * 8
    params = column_parameters(names)
    state = core.initial_state(params, temperature=285.0)
    d = core.advance(state, params, climate_forcing(names, 240, start_doy=330), 1800.0, nper=24)
    np.savez(sys.argv[2], diag=d.diag, **state.arrays())
""")


def _build_openmp(repo, build_dir):
    meson = shutil.which("meson", path=os.path.dirname(sys.executable)) or shutil.which("meson")
    if meson is None:
        pytest.skip("meson not available")
    env = dict(os.environ)
    subprocess.run([meson, "setup", str(build_dir), str(repo), "-Dopenmp=enabled", "--buildtype=release"],
                   check=True, capture_output=True, env=env)
    subprocess.run([meson, "compile", "-C", str(build_dir)], check=True, capture_output=True, env=env)
    sos = list(build_dir.glob("_core*.so"))
    assert len(sos) == 1, sos
    # the extension really is threaded: it links the GNU OpenMP runtime
    dynamic = subprocess.run(["readelf", "-d", str(sos[0])], capture_output=True, text=True).stdout
    assert "libgomp" in dynamic
    return sos[0]


def test_openmp_build_matches_serial(repo_root, tmp_path):
    """Columns are independent and each is computed by one thread from its own inputs, so 2 threads over 40
    columns must reproduce the serial build exactly (state and diagnostics, bitwise)."""
    so = _build_openmp(repo_root, tmp_path / "build")
    script = tmp_path / "run_omp.py"
    script.write_text(RUNNER)
    out = tmp_path / "omp.npz"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    subprocess.run([sys.executable, str(script), str(so), str(out)], check=True, env=env)
    omp = np.load(out)
    names = ["tropical", "arid", "temperate", "boreal", "tundra"] * 8
    params = column_parameters(names)
    state = core.initial_state(params, temperature=285.0)
    d = core.advance(state, params, climate_forcing(names, 240, start_doy=330), 1800.0, nper=24)
    assert np.array_equal(d.diag, omp["diag"])
    for k, v in state.arrays().items():
        assert np.array_equal(v, omp[k]), k
