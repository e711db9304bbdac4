# Atelier — two commands: `make run` (set up and serve) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint migrate bench clean chromium system-packages

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py bootstrap
	HOST=$(HOST) PORT=$(PORT) $(PY) manage.py serve

# Browser tests drive Debian's chromium (never a downloaded browser); narration tests need
# espeak-ng. Both are Debian packages, installed when missing.
SYSTEM_PACKAGES = chromium espeak-ng
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
	  echo "missing:$$missing: installing Debian's packages for the tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	  || { echo "could not install$$missing: run 'apt-get install -y$$missing' as root"; exit 1; }; }

chromium: system-packages

test: install system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick subset while developing: no browser, reliability or slow suites (markers given by
# tests/conftest.py). `make test` and CI still run everything.
test-fast: install
	$(PY) -m pytest -m "not browser and not reliability and not slow" $(PYTEST_ARGS)

# Lint and import order (ruff, configured in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/generation_overhead.py

clean:
	rm -rf $(VENV) var
