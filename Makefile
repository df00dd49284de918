# Two commands do all set-up on a fresh machine:
#   make hil   - create .venv if needed, install, fly the nominal simulated flight and print its report
#   make test  - the same set-up, then run the test suite
# The virtualenv's interpreter: the distribution's own Python 3.11 where the machine has it with its venv module --
# on Raspberry Pi OS Bookworm that is the interpreter that flies, and elsewhere the same optimised Debian build --
# else the python3 on PATH.  `make PYTHON=python3.12 ...` chooses another.
ifndef PYTHON
PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11 || echo python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: hil test install benchmarks clean docs mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,report]'
	$(BIN)/python -m pip install --quiet --no-deps MAVProxy
	touch $(STAMP)

install: $(STAMP)

hil: $(STAMP)
	$(BIN)/flightsw hil --out hil-out/nominal

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# Mutation testing of the safety modules against their unit tests (long: see docs/testing.md); not part of `test`.
# `make mutation MODULES="termination cutdown"` runs some of them.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,report,mutation]'
	$(BIN)/python scripts/mutation.py $(MODULES)

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/executive_jitter.py
	$(BIN)/python benchmarks/frame_cost.py
	$(BIN)/python benchmarks/hil_speed.py
	$(BIN)/python benchmarks/physics_step.py
	$(BIN)/python benchmarks/log_cost.py
	$(BIN)/python benchmarks/command_latency.py
	$(BIN)/python benchmarks/link_flood.py
	$(BIN)/python benchmarks/kill_test.py --kills 100

docs: $(STAMP)
	$(BIN)/flightsw docs

clean:
	rm -rf $(VENV) hil-out *.egg-info
