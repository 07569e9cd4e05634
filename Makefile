# Two commands do all the set-up: `make demo` and `make test`. Each creates .venv when it is missing or
# older than pyproject.toml, installs the project, then runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# two workers: most tests wait on servers (emulator, Prefect, PostgreSQL, gateway), so 2 cores run 2 at once;
# files stay whole on one worker so module-scoped servers start once
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=25

.PHONY: demo test lint fmt clean services

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "modelshift needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the dependency tree in seconds; plain pip is the fallback where uv cannot be installed
	@($(BIN)/python -m pip install -q uv && $(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]') \
	  || $(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/modelshift demo

services:
	@# PostgreSQL for the store tests: installed from Debian packages when missing (tests start their own server)
	@bash scripts/postgres.sh >/dev/null
	@# Chromium for the dashboard's browser test: Debian's package, installed when /usr/bin/chromium is missing
	@bash scripts/chromium.sh >/dev/null || echo "chromium could not be installed: the dashboard browser test will skip" >&2

test: $(STAMP) services
	$(BIN)/ruff check modelshift flows tasks tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check modelshift flows tasks tests benchmarks
	$(BIN)/ruff format --check modelshift flows tasks tests benchmarks
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format modelshift flows tasks tests benchmarks
	$(BIN)/ruff check --fix modelshift flows tasks tests benchmarks

clean:
	rm -rf $(VENV) .modelshift .pytest_cache .mypy_cache .ruff_cache
