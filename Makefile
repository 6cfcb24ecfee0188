# make run: the all-in-one service on this machine.  make test: the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

services:
	bash tests/services.sh

test: $(STAMP) services lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check algotcha actors engine monitoring tests
	$(VENV)/bin/ruff format --check algotcha actors engine monitoring tests
	$(VENV)/bin/mypy

bench: $(STAMP) services
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m pip install -q -e '.[dev,bench]' || echo "vectorbt did not install: compared with backtesting.py only"
	$(PY) tests/benchmarks/run.py --json var/bench.json

run: $(STAMP)
	$(VENV)/bin/algotcha up

clean:
	rm -rf $(VENV) var .pytest_cache
