# Quick start: `make run` (the service with its demo patient), `make test` (the whole suite).
# Both create .venv and install into it on first use, and again whenever pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cds-service demo

serve: $(STAMP)
	$(BIN)/cds-service serve

test: lint $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check cds_service tests
	$(BIN)/ruff format --check cds_service tests
	$(BIN)/mypy cds_service

# The benchmark of bench/README.md: installs wrk (Debian) where missing; takes about five minutes.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y --no-install-recommends wrk)
	$(BIN)/python -m pytest tests/test_pipeline_benchmark.py --benchmark-enable -q
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache build dist
