# Two commands: `make run` and `make test`. Both set up what is missing, then do their job.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
REQ_STAMP := $(VENV)/.req-$(shell cat requirements.txt 2>/dev/null | sha256sum | cut -c1-16)
SYS_STAMP := $(VENV)/.sys-deps
NPM_STAMP := frontend/node_modules/.lock-$(shell sha256sum frontend/package-lock.json 2>/dev/null | cut -c1-16)
DEBIAN_PACKAGES := chromium bubblewrap
RUN_MODEL ?= qwen2.5-coder-1.5b
TEST_MODEL ?= qwen2.5-coder-0.5b
export CMAKE_BUILD_PARALLEL_LEVEL := $(shell nproc)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test setup sysdeps venv frontend-deps models lint unit integration e2e bench clean

run: setup
	$(PY) -m backend.llm.model_files assemble --model $(RUN_MODEL)
	APP_EMBEDDED_MODEL=$(RUN_MODEL) $(PY) run_all.py

test: setup
	$(PY) -m backend.llm.model_files assemble --model $(TEST_MODEL)
	$(VENV)/bin/ruff check backend tests benchmarks run_backend.py run_frontend.py run_all.py
	$(VENV)/bin/mypy
	$(PY) -m pytest tests

setup: sysdeps venv frontend-deps

sysdeps: $(SYS_STAMP)
$(SYS_STAMP):
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

venv: $(REQ_STAMP)
$(REQ_STAMP): requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	@rm -f $(VENV)/.req-* && touch $@

# Browser libraries for the UI (marked, DOMPurify, highlight.js, eventsource-parser), served from frontend/node_modules.
frontend-deps: $(NPM_STAMP)
$(NPM_STAMP): frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: setup
	$(VENV)/bin/ruff check backend tests benchmarks run_backend.py run_frontend.py run_all.py
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit

clean:
	rm -rf $(VENV)
