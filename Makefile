# Quick start: `make run` (the service with its demo patient), `make test` (the whole suite).
# Both create .venv and install into it on first use, and again whenever pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint clean

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

clean:
	rm -rf $(VENV) .pytest_cache build dist
