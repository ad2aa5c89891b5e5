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
# llama-cpp-python builds from source for this CPU (-march=native, as pip's default build does), but without
# ggml's AMX kernels: on CPUs that report AMX they crash inside these VMs (SIGSEGV in ggml_backend_amx_mul_mat).
# Explicit -mno-amx-* flags win over -march=native in GCC. Native AVX-512 evaluates prompts ~1.5x faster than AVX2.
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' requirements.txt)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
LLAMA_KEY := $(LLAMA_VERSION)-$(shell echo "$(LLAMA_CMAKE_ARGS) $$(uname -m) $$(grep -m1 '^model name' /proc/cpuinfo)" | sha256sum | cut -c1-12)
LLAMA_WHEELS := $(HOME)/.cache/analysis-server/llama-cpp-python-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)
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
$(REQ_STAMP): requirements.txt $(LLAMA_STAMP)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	@rm -f $(VENV)/.req-* && touch $@

# The wheel is built once per version, flags and CPU model into ~/.cache (pip's own wheel cache ignores CMAKE_ARGS).
$(LLAMA_STAMP):
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) (native build without AMX, about 8 min on 2 cores, once per CPU model)"; \
	  rm -rf $(LLAMA_WHEELS).tmp; CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS).tmp \
	    llama_cpp_python==$(LLAMA_VERSION) && mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); }
	$(PIP) install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	@rm -f $(VENV)/.llama-* && touch $@

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
