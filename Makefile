# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck bench chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# A widely used third-party HubSpot reader (Singer's tap-hubspot), in its own environment because it pins old
# libraries: the sandbox test drives it against the HubSpot simulator (tests/sandbox/test_hubspot_third_party_reader.py).
TAP_VENV := .venv-tap
TAP_STAMP := $(TAP_VENV)/.installed

$(TAP_STAMP):
	$(PYTHON) -m venv $(TAP_VENV)
	$(TAP_VENV)/bin/pip install --quiet 'tap-hubspot==4.5.0'
	touch $(TAP_STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

test: $(STAMP) $(TAP_STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/mypy syncd
	SYNCD_TAP_HUBSPOT_PYTHON=$(CURDIR)/$(TAP_VENV)/bin/python $(BIN)/pytest -q -m "not open_finding"

# Local shortcut: skips the long chaos and soak runs that CI always runs.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/mypy syncd

bench: $(STAMP)
	$(BIN)/python -m bench

# The full-size crash and fault suites (2,000 people, 20 SIGKILLs per run; `syncd run` and `sync --once`, with
# and without faults): each run prints its summary. CI runs a bounded size as part of the slow tests.
chaos: $(STAMP)
	$(BIN)/pytest -q -m "slow or open_finding" tests/chaos
	$(BIN)/python -m tests.chaos --people 2000 --kills 20

clean:
	rm -rf $(VENV) $(TAP_VENV) .pytest_cache .mypy_cache .ruff_cache
