# Accord: `make demo` runs the app with demo data; `make test` runs every test.
# Both create or update the virtualenv in .venv first.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

# The first Python 3.12+ found: an explicit PYTHON=..., then the usual names,
# then pyenv's installs (on these machines plain `python3` is 3.11).
ifndef PYTHON
PYTHON := $(shell for c in python3.14 python3.13 python3.12 python3 \
	$$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9]; do \
	  "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 \
	    && { command -v "$$c" || echo "$$c"; } && break; \
	done)
endif

.PHONY: demo test bench lint format lock help

help:
	@echo "make demo   run Accord with demo data at http://127.0.0.1:8000"
	@echo "make test   run the whole test suite (lint, migrations check, tests)"
	@echo "make bench  benchmark at scale (BENCH_ARGS=\"--scale 0.1\"), report in bench-report/"
	@echo "make lock   re-resolve requirements.lock from pyproject.toml"

$(BIN)/.installed: pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Accord needs Python 3.12 or newer; none was found. Set PYTHON=/path/to/python3.12." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps --requirement requirements.lock
	@touch $@

demo: $(BIN)/.installed
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py demo

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=$${DEBUG:-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

# Needs the machine's PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_BROKER_URL).
bench: $(BIN)/.installed
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# requirements.lock pins every package; it is installed with --no-deps so the
# one override in pyproject.toml ([tool.uv]) holds. Needs network access to PyPI.
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.12 --quiet -o requirements.lock
