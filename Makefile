# The two commands a new user needs: `make run` and `make test`.
# Both create .venv with the machine's Python 3.11+ and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: start the daemon on the shipped config (config/) with the embedded SQLite default
run: $(STAMP)
	$(BIN)/router serve

## test: the whole suite, then ruff (lint + format) and mypy strict
test: $(STAMP)
	$(BIN)/pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router tests

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
