# Atelier — two commands: `make run` (set up and serve) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# torch comes as the CPU wheel (PyPI's Linux wheel pulls several GB of CUDA packages): from a
# folder pip is configured to find wheels in (`find-links`) when one holds it, else from
# PyTorch's CPU index. TORCH_INDEX=... picks another index (a CUDA one on a GPU machine).
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# uv (from PyPI, pinned in constraints.txt) installs; it reads constraints.txt, not pip's config.
UV_PIP := $(UV) pip install --python $(PY) --quiet -c constraints.txt
# When make started (the banner of `make run` counts from it), and seconds since $$t0 for the
# phase lines it prints.
STARTED := $(shell date +%s.%N)
SINCE = awk -v t0=$$t0 -v t1=$$(date +%s.%N) 'BEGIN { printf "%.1f s", t1 - t0 }'

.PHONY: install install-dev run test test-fast lint migrate bench clean chromium system-packages

# What serving needs (`make run`); the test tools come with `make test` (.dev below). The venv
# is made without pip (seconds faster); pip installs uv into it (the host's pip, else the venv's
# own from ensurepip), uv installs the rest, pip included. docs/first-run.md says why.
$(VENV)/.run: pyproject.toml constraints.txt
	@t0=$$(date +%s.%N); set -e; \
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV); \
	test -x $(UV) || $(PYTHON) -m pip --python $(PY) install -q --disable-pip-version-check \
	  -c constraints.txt uv 2>/dev/null || { $(PY) -m ensurepip -q && \
	  $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt uv; }; \
	echo "[setup] virtual environment + uv: $$($(SINCE))"; t0=$$(date +%s.%N); \
	links=""; for d in $$($(PYTHON) -m pip config get global.find-links 2>/dev/null) $$PIP_FIND_LINKS; do \
	  ls "$$d"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && links="--find-links $$d" && break; done; \
	if [ -n "$$links" ]; then $(UV_PIP) $$links $(TORCH) -e . pip; \
	else $(UV_PIP) --index-url $(TORCH_INDEX) $(TORCH) && $(UV_PIP) -e . pip; fi; \
	echo "[setup] $(TORCH) (CPU wheel$${links:+, $$links}) and the dependencies of -e .: $$($(SINCE))"
	@touch $@

# The test and lint tools on top (pip install -e ".[dev]"); torch stays as installed above.
$(VENV)/.dev: $(VENV)/.run
	@t0=$$(date +%s.%N); $(UV_PIP) -e ".[dev]" && echo "[setup] test tools (.[dev]): $$($(SINCE))"
	@# sd-prompt-reader pins an old Pillow it does not need to read PNG text: no deps (its
	@# reader imports only Pillow, piexif and the standard library; tests/images).
	$(UV_PIP) --no-deps sd-prompt-reader==1.3.5 piexif==1.1.3
	@touch $@

install: $(VENV)/.run

install-dev: $(VENV)/.dev

migrate: install
	@t0=$$(date +%s.%N); $(PY) manage.py migrate --noinput --verbosity 0 && \
	echo "[run] database migrated: $$($(SINCE))"

# One process migrates, creates the admin user and the demo model, serves, and says where once
# the first page has been answered (core/management/commands/bootstrap.py). uv installs without
# compiling bytecode: the first start writes it (even where PYTHONDONTWRITEBYTECODE is set), so
# the next start is fast.
run: install
	@RUN_STARTED_AT=$(STARTED) HOST=$(HOST) PORT=$(PORT) PYTHONDONTWRITEBYTECODE= \
	  $(PY) manage.py bootstrap --serve

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

test: install-dev system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick subset while developing: no browser, reliability or slow suites (markers given by
# tests/conftest.py). `make test` and CI still run everything.
test-fast: install-dev
	$(PY) -m pytest -m "not browser and not reliability and not slow" $(PYTEST_ARGS)

# Lint and import order (ruff, configured in pyproject.toml).
lint: install-dev
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/generation_overhead.py

clean:
	rm -rf $(VENV) var
