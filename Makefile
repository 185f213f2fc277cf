# Every target sets up what it needs: a virtual environment with the package
# and its extras (idempotent, seconds when done) and the data.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= mnist
PRESET ?= default
SEED ?= 0
RUN ?=
DATA_DIR ?= data
REPO ?= model_repository
TRAIN_ARGS ?=
EXPORT_ARGS ?=
SERVE_ARGS ?=
EXPLORE_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=
# seeds for make sweep, each as seed or seed:threads (threads default to 2)
SEEDS ?= 0 1 2 0:1

.PHONY: setup data train sweep export serve explore apt-deps test test-full bench gpu-check clean help

help:
	@echo "make train export   train on $(DATASET) (PRESET=default|paper|original|smoke) and publish ONNX models into $(REPO)/"
	@echo "make sweep          train SEEDS=\"$(SEEDS)\" one after another (10-15 min a 2-thread run on a 2-core EPYC or AMX Xeon, see RESULTS.md) and write RESULTS.md"
	@echo "make serve          start a local Triton Inference Server on $(REPO)/ (127.0.0.1:8001 gRPC)"
	@echo "make explore        open the latent explorer on http://127.0.0.1:7860/ over $(REPO)/ (EXPLORE_ARGS=--url 127.0.0.1:8001 for Triton)"
	@echo "make test           set up and run the tests (make test-full: the long variants too)"
	@echo "make gpu-check      on a CUDA machine: train, export, GPU parity, generation and Triton in one table"
	@echo "make bench          run the benchmark suite (BENCH_ARGS=--quick for a one-minute look)"

# torch==2.13.0 is pinned: on these machines it is the CPU wheel on local disk;
# any other spec pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,serve,explore,dev]'
	touch $(STAMP)

setup: $(STAMP)

data: $(STAMP)
	@if [ "$(DATASET)" = fashion-mnist ] && [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null || true; fi
	$(BIN)/infogan data --dataset $(DATASET) --data-dir $(DATA_DIR)

# NPROC=2: DistributedDataParallel on 2 processes of this machine (torchrun); across
# machines run torchrun yourself with --nnodes/--node-rank/--rdzv-endpoint (README)
NPROC ?= 1
TRAINER = $(if $(filter-out 1,$(NPROC)),$(BIN)/torchrun --standalone --nproc-per-node $(NPROC) -m infogan.cli,$(BIN)/infogan)

train: data
	$(TRAINER) train --dataset $(DATASET) --preset $(PRESET) --seed $(SEED) --data-dir $(DATA_DIR) $(TRAIN_ARGS)

sweep: data
	$(BIN)/infogan sweep $(SEEDS) --preset $(PRESET) --dataset $(DATASET) --data-dir $(DATA_DIR)

export: $(STAMP)
	$(BIN)/infogan export $(if $(RUN),--run $(RUN)) --repository $(REPO) $(EXPORT_ARGS)

serve: $(STAMP)
	$(BIN)/infogan serve --repository $(REPO) $(SERVE_ARGS)

explore: $(STAMP)
	$(BIN)/infogan explore --repository $(REPO) $(EXPLORE_ARGS)

# Debian tools the tests and benchmarks use: the explorer's browser test drives chromium
# with chromium-driver; the Triton benchmark's load generator is nghttp2's h2load (C++)
APT_DEPS := chromium chromium-driver nghttp2-client

apt-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v h2load >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_DEPS) >/dev/null; \
	  else echo "note: $(APT_DEPS) missing and apt-get unavailable: the browser test is skipped, the benchmark loads Triton from Python"; fi; fi

test: $(STAMP) apt-deps
	$(BIN)/infogan data --dataset mnist --data-dir $(DATA_DIR)
	INFOGAN_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest $(PYTEST_ARGS)

# every test, the long variants marked `full` included (a few minutes more than make test)
test-full:
	$(MAKE) test PYTEST_ARGS='$(PYTEST_ARGS) -m "full or not full"'

bench: $(STAMP) apt-deps
	$(BIN)/infogan data --dataset mnist --data-dir $(DATA_DIR)
	$(BIN)/infogan bench $(BENCH_ARGS)

# on a CUDA machine: train, export, onnxruntime-gpu parity, generation and Triton (KIND_GPU);
# without one it says so and exits 0. Needs torch with CUDA and onnxruntime-gpu (the gpu extra).
gpu-check: $(STAMP)
	$(BIN)/infogan data --dataset mnist --data-dir $(DATA_DIR)
	$(BIN)/python -m infogan.bench.gpu_check --data-dir $(DATA_DIR) --out gpu_check.json

clean:
	rm -rf runs .pytest_cache
