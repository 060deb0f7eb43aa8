# The two commands of the README: `make run` (main job) and `make test` (test suite).
VENV ?= .venv
BIN := $(VENV)/bin
NAMELIST ?= namelists/default.nml

.PHONY: setup run test test-all bench clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

run: setup
	$(BIN)/colmda run $(NAMELIST)

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf build builddir $(VENV)/.colmda-installed
