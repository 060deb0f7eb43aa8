# The two commands of the README: `make run` (main job) and `make test` (test suite).
VENV ?= .venv
BIN := $(VENV)/bin
NAMELIST ?= namelists/default.nml
NP ?= 2
# the main job is the twin-experiment matrix (colmda twin); COMMAND=run runs a namelist as a single experiment
COMMAND ?= twin

.PHONY: setup run test test-all bench clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# the main job on up to NP ranks (the mpich wheel puts mpiexec into the virtual environment), never more ranks
# than the run has columns (`colmda ranks`: a site run has one); one rank without mpiexec. FLAGS: e.g. --overwrite
run: setup
	@n=$$($(BIN)/colmda ranks $(NAMELIST) --max $(NP)) || exit 2; \
	if [ -x $(BIN)/mpiexec ] && [ "$$n" -gt 1 ]; then \
	  $(BIN)/mpiexec -n $$n $(BIN)/colmda $(COMMAND) $(NAMELIST) $(FLAGS); \
	else \
	  $(BIN)/colmda $(COMMAND) $(NAMELIST) $(FLAGS); \
	fi

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_sekf.py
	$(BIN)/python benchmarks/bench_image.py
	$(BIN)/python benchmarks/bench_letkf.py
	$(BIN)/python benchmarks/bench_tau_omega.py
	$(BIN)/python benchmarks/bench_evaluation.py

clean:
	rm -rf build builddir $(VENV)/.colmda-installed
