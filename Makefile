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

demo: $(STAMP)
	$(BIN)/syncd demo

test: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/mypy syncd
	$(BIN)/pytest -q -m "not open_finding"

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
	$(BIN)/pytest -q -m open_finding
	$(BIN)/python -m tests.chaos --people 2000 --kills 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
