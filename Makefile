# Every target sets up what it needs: a virtual environment with the package
# and its extras (idempotent, seconds when done) and the data.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the dataset (mnist or fashion-mnist); empty: infogan's own default (infogan/defaults.py DATASET)
DATASET ?=
DATASET_FLAG = $(if $(DATASET),--dataset $(DATASET))
# the recipe (default, paper, original, smoke) and the run's seed; empty: infogan's own
# defaults (infogan/defaults.py PRESET and SEED)
PRESET ?=
PRESET_FLAG = $(if $(PRESET),--preset $(PRESET))
SEED ?=
SEED_FLAG = $(if $(SEED),--seed $(SEED))
RUN ?=
# the datasets' folder; empty: infogan's own default (infogan/defaults.py DATA_DIR, or
# $INFOGAN_DATA_DIR when set), where the tests' conftest looks too
DATA_DIR ?=
DATA_FLAG = $(if $(DATA_DIR),--data-dir $(DATA_DIR))
# the model repository export writes and serve/explore read; empty: infogan's own default
# (infogan/defaults.py REPOSITORY, or $INFOGAN_MODEL_REPOSITORY when set)
REPO ?=
REPO_FLAG = $(if $(REPO),--repository $(REPO))
TRAIN_ARGS ?=
EXPORT_ARGS ?=
SERVE_ARGS ?=
EXPLORE_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=
# seeds for make sweep, each as seed or seed:threads (threads default to the cores shared among the runs at once)
SEEDS ?= 0 1 2 0:1
# runs that train at once; empty: infogan sweep's own default (one)
PARALLEL ?=
PARALLEL_FLAG = $(if $(PARALLEL),--parallel $(PARALLEL))

.PHONY: setup data train sweep export serve explore apt-deps test test-full bench gpu-check gpu-wheels clean help

help:
	@echo "make train export   train on $(or $(DATASET),infogan's default dataset) (DATASET=mnist|fashion-mnist, PRESET=default|paper|original|smoke, SEED=n) and publish ONNX models into the model repository (or REPO=dir)"
	@echo "make sweep          train SEEDS=\"$(SEEDS)\", $(if $(PARALLEL),PARALLEL=$(PARALLEL) at a time,one at a time (PARALLEL=n: n at once)) (a 2-thread run on 2 cores: 10-15 min with bf16, 33-45 in fp32 on AVX2 only; see RESULTS.md) and write RESULTS.md"
	@echo "make serve          start a local Triton Inference Server on the model repository or REPO=dir; it prints its addresses"
	@echo "make explore        open the latent explorer's page over the model repository or REPO=dir; it prints its address (EXPLORE_ARGS=\"--url host:port\" for Triton)"
	@echo "make test           set up and run the tests (make test-full: the long variants too)"
	@echo "make gpu-check      on a CUDA machine: train, export, GPU parity, generation and Triton in one table (WHEELS=dir)"
	@echo "make gpu-wheels     download the wheels gpu-check installs offline into WHEELS (default wheels/)"
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
	$(BIN)/infogan data $(DATASET_FLAG) $(DATA_FLAG)

# NPROC=2: DistributedDataParallel on 2 processes of this machine (torchrun); across
# machines run torchrun yourself with --nnodes/--node-rank/--rdzv-endpoint (README)
NPROC ?= 1
TRAINER = $(if $(filter-out 1,$(NPROC)),$(BIN)/torchrun --standalone --nproc-per-node $(NPROC) -m infogan.cli,$(BIN)/infogan)

train: data
	$(TRAINER) train $(DATASET_FLAG) $(PRESET_FLAG) $(SEED_FLAG) $(DATA_FLAG) $(TRAIN_ARGS)

sweep: data
	$(BIN)/infogan sweep $(SEEDS) $(PARALLEL_FLAG) $(PRESET_FLAG) $(DATASET_FLAG) $(DATA_FLAG)

export: $(STAMP)
	$(BIN)/infogan export $(if $(RUN),--run $(RUN)) $(REPO_FLAG) $(EXPORT_ARGS)

serve: $(STAMP)
	$(BIN)/infogan serve $(REPO_FLAG) $(SERVE_ARGS)

explore: $(STAMP)
	$(BIN)/infogan explore $(REPO_FLAG) $(EXPLORE_ARGS)

# Debian tools the tests and benchmarks use: the explorer's browser test drives chromium
# with chromium-driver; the Triton benchmark's load generator is nghttp2's h2load (C++)
APT_DEPS := chromium chromium-driver nghttp2-client

apt-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v h2load >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_DEPS) >/dev/null; \
	  else echo "note: $(APT_DEPS) missing and apt-get unavailable: the browser test is skipped, the benchmark loads Triton from Python"; fi; fi

test: $(STAMP) apt-deps
	$(BIN)/infogan data --dataset mnist $(DATA_FLAG)
	$(if $(DATA_DIR),INFOGAN_DATA_DIR=$(DATA_DIR)) $(BIN)/python -m pytest $(PYTEST_ARGS)

# every test, the long variants marked `full` included (a few minutes more than make test)
test-full:
	$(MAKE) test PYTEST_ARGS='$(PYTEST_ARGS) -m "full or not full"'

bench: $(STAMP) apt-deps
	$(BIN)/infogan data --dataset mnist $(DATA_FLAG)
	$(BIN)/infogan bench $(DATA_FLAG) $(BENCH_ARGS)

# On a CUDA machine, without network: the full default recipe, export, onnxruntime-gpu
# parity, generation beside PyTorch and Triton (KIND_GPU), one table written into
# BENCHMARKS.md; without a GPU it says so and exits 0. Its own venv sees the machine's
# packages (--system-site-packages, and a .pth naming the site-packages of PYTHON itself,
# for machines whose python3 is a venv: --system-site-packages alone reaches only the
# interpreter that venv was made from), so the machine's torch with CUDA is used, never the
# pinned CPU wheel; what the machine lacks comes from WHEELS, a folder `make gpu-wheels`
# filled on a machine with network (no index is ever asked). The data must be in DATA_DIR
# (or infogan's default data folder).
WHEELS ?=
GPU_VENV ?= .venv-gpu
GPU_CHECK_ARGS ?=
gpu-check:
	test -x $(GPU_VENV)/bin/python || { $(PYTHON) -m venv --system-site-packages $(GPU_VENV) && \
	  $(PYTHON) -c 'import site; print(*site.getsitepackages(), sep="\n")' \
	    > "$$($(GPU_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/machine-packages.pth"; }
	$(if $(WHEELS),$(GPU_VENV)/bin/python -m pip install --quiet --no-index --find-links $(WHEELS) --no-deps $(GPU_WHEELS_PACKAGES))
	$(GPU_VENV)/bin/python -m pip install --quiet --no-index --no-deps --no-build-isolation -e .
	$(GPU_VENV)/bin/infogan data --dataset mnist $(DATA_FLAG)
	$(GPU_VENV)/bin/infogan gpu-check $(DATA_FLAG) --out gpu_check.json --markdown BENCHMARKS.md $(GPU_CHECK_ARGS)

# The wheels gpu-check installs, for CPython 3.12 on x86-64 Linux (glibc >= 2.35, which
# nvidia-pytriton's bundled Triton needs), into WHEELS (default wheels/, git-ignored; about
# 370 MB, 255 of them onnxruntime-gpu). Only what a machine with torch, onnx, onnxruntime,
# numpy 2, typer, rich and pytest lacks: the runtime (onnxruntime-gpu, built for CUDA 13;
# tritonclient[grpc] and its grpcio, protobuf >= 6.30, python-rapidjson, urllib3,
# ml_dtypes <= 0.5.4), the bundled Triton (nvidia-pytriton: only its binary is used, so none
# of its Python dependencies), the exporter's onnxscript, and training's scipy and
# matplotlib, in versions that take numpy 1.26 or 2. numpy itself stays the machine's: on
# an H200 image numpy 1.26 broke the machine's scipy 1.18 (it needs numpy 2) and with it
# training (BENCHMARKS.md). An earlier CPU try saw the bundled Triton's Python backend
# answer empty tensors under numpy 2 on Python 3.12; the GPU check sends one real request
# and compares its images, so that would show as a failed Triton step (add numpy==1.26.4
# to GPU_WHEELS_PACKAGES on a machine whose other packages take it).
GPU_WHEELS_PYTHON ?= 3.12
GPU_WHEELS_PLATFORMS := $(foreach v,35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17,--platform manylinux_2_$(v)_x86_64) --platform manylinux2014_x86_64
GPU_WHEELS_PACKAGES ?= onnxruntime-gpu==1.31.1 \
	tritonclient==2.73.0 grpcio==1.85.3 protobuf==6.33.6 python-rapidjson==1.25 urllib3==2.8.0 ml_dtypes==0.5.4 \
	nvidia-pytriton==0.7.0 onnxscript==0.7.2 onnx-ir==1.1.0 \
	scipy==1.16.3 matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1 \
	pyparsing==3.3.3 python-dateutil==4.0.0 tzdata==2026.6 pillow==13.0.0 setuptools==84.2.1
gpu-wheels:
	$(PYTHON) -m pip download --only-binary=:all: --python-version $(GPU_WHEELS_PYTHON) $(GPU_WHEELS_PLATFORMS) \
	  --no-deps -d $(or $(WHEELS),wheels) $(GPU_WHEELS_PACKAGES)
	@du -sh $(or $(WHEELS),wheels)

clean:
	rm -rf runs .pytest_cache
