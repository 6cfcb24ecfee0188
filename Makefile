# make run: the all-in-one service on this machine.  make test: the whole suite.
# make lock: re-resolve requirements.lock (the image) and requirements-dev.lock (tests, make run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
LOCK_OPTIONS := --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"

.PHONY: run test bench lint lock services clean

# Exactly the locked versions (hashes checked, nothing resolved; the dev lock holds the
# `embedded` extra that make run needs), then the project itself without dependencies:
# pip check fails the install if the lock misses one that pyproject names.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# Keeps what the locks pin and adds or drops what pyproject changed; `make lock
# LOCK_ARGS=--upgrade` moves every pin to the newest version pyproject allows.
lock: $(UV)
	$(UV) pip compile pyproject.toml $(LOCK_OPTIONS) $(LOCK_ARGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev --extra embedded $(LOCK_OPTIONS) $(LOCK_ARGS) \
	    -o requirements-dev.lock

# Not through $(STAMP): after a pyproject change the old lock no longer installs cleanly.
$(UV):
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$$(grep -m1 '^uv==' requirements-dev.lock | cut -d' ' -f1)"

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
