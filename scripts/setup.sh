#!/usr/bin/env bash
# Installs everything colmda needs on a fresh Debian machine: gfortran (Debian package) when missing,
# a virtual environment with the Python dependencies from PyPI, and colmda itself (editable, so a change to
# a .f90 file is rebuilt on the next import).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if ! command -v gfortran >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing gfortran from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gfortran >/dev/null
  else
    echo "setup: gfortran is missing. Install it (Debian/Ubuntu: sudo apt-get install gfortran) and rerun." >&2
    exit 1
  fi
fi

# headless Chromium for the report test (tests/test_report.py opens the HTML report in a real browser and takes a
# screenshot); only as root with apt-get, otherwise that test skips and says why
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (headless browser for the report test) from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || echo "setup: chromium not installed"
fi

# NCO and CDO: the standard netCDF tools the output tests run (tests/test_cf.py; skipped with a reason when missing).
# libudunits2 is what cfchecker's unit library loads.
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  if ! command -v ncrcat >/dev/null 2>&1 || ! command -v cdo >/dev/null 2>&1; then
    echo "setup: installing nco and cdo from Debian's packages (for the output tests)"
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nco cdo libudunits2-0 >/dev/null || \
      echo "setup: could not install nco/cdo; the tests that need them will be skipped" >&2
  fi
elif ! command -v ncrcat >/dev/null 2>&1 || ! command -v cdo >/dev/null 2>&1; then
  echo "setup: nco/cdo not found (Debian: sudo apt-get install nco cdo); their tests will be skipped" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
export PATH="$PWD/$VENV/bin:$PATH"
stamp="$VENV/.colmda-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ meson.build -nt "$stamp" ]; then
  echo "setup: installing Python packages into $VENV"
  python -m pip install -q --upgrade pip
  python -m pip install -q "meson-python>=0.15,<1" "meson>=1.1" ninja "numpy>=2.0,<3"
  python -m pip install -q --no-build-isolation -e ".[mpi,test]"
  touch "$stamp"
fi
