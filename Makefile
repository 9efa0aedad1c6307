# Quick start: `make run` (the service with its demo page), `make test` (the whole suite).
# Both create .venv and install into it on first use, and again whenever pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test
# docker-compose 1.29 (which validates the compose file without a Docker engine) pins PyYAML < 6, so
# it lives in a virtual environment of its own; PyYAML 5.4 builds only with Cython < 3.
COMPOSE := .venv-compose/bin/docker-compose

.PHONY: run serve test lint system bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The service alone.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

# The service and everything the tests use.
$(TESTING): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TESTING) $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/cds-service demo

serve: $(RUNTIME)
	$(BIN)/cds-service serve

$(COMPOSE):
	$(PYTHON) -m venv .venv-compose
	.venv-compose/bin/python -m pip install --quiet "cython<3" wheel
	.venv-compose/bin/python -m pip install --quiet --no-build-isolation "pyyaml==5.4.1"
	.venv-compose/bin/python -m pip install --quiet "docker-compose==1.29.2"

# The Debian packages the suite uses (PostgreSQL, Redis, Chromium), when missing and installable.
system:
	@scripts/system-packages

test: lint $(COMPOSE) system
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(TESTING)
	$(BIN)/ruff check cds_service tests bench
	$(BIN)/ruff format --check cds_service tests bench
	$(BIN)/mypy cds_service

# The benchmark of bench/README.md: installs wrk (Debian) where missing; takes about five minutes.
bench: $(TESTING)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y --no-install-recommends wrk)
	$(BIN)/python -m pytest tests/test_pipeline_benchmark.py --benchmark-enable -q
	$(BIN)/python bench/run.py

# The soak of docs/reliability.md: three minutes of mixed and faulty traffic.
soak: $(TESTING)
	$(BIN)/python -m tests.soak --seconds $(or $(SOAK_SECONDS),180)

clean:
	rm -rf $(VENV) .venv-compose .pytest_cache build dist
