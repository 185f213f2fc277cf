"""Every default that more than one piece uses, defined once (no torch, no typer: the
embedded client imports it too). Where things lie, which ports and deadlines, and the
environment variables that override them; infogan.options turns these into the CLI's
shared options.

Paths are relative to the working directory, as `make` and the README use them.
"""

from __future__ import annotations

# where things lie
REPOSITORY = "model_repository"  # the Triton model repository: export writes it, serve and the client read it
DATA_DIR = "data"  # the datasets' IDX files (and the judge's cached weights)
DATASET = "mnist"  # what trains when no dataset is named (training/data.py DATASETS lists them all)
PRESET = "default"  # the recipe that trains when no preset is named (training/config.py PRESETS lists them all)
SEED = 0  # the training run's seed when none is given
RUNS_DIR = "runs"  # one folder per training run
LATEST = "latest"  # the link in RUNS_DIR to the newest run
LATEST_RUN = f"{RUNS_DIR}/{LATEST}"
# a run folder's files: training writes them; evaluation, export, the studies and the benchmarks read them
CHECKPOINT_FILE = "checkpoint.pt"
RUN_CONFIG_FILE = "config.json"
EVALUATION_FILE = "evaluation.json"
SAMPLES_DIR = "samples"  # the sample grids drawn as training goes
# `infogan misread`: the most frequent confusions drawn, and images in each row
MISREAD_PAIRS = 5
MISREAD_PER_ROW = 20

# Triton on this machine, as `infogan serve` starts it
HOST = "127.0.0.1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # hosts that keep a server on this machine
GRPC_PORT = 8001
HTTP_PORT = 8000
METRICS_PORT = 8002
URL = f"{HOST}:{GRPC_PORT}"  # where the client finds it
SERVER_START_TIMEOUT_S = 120.0  # Triton loading every model
SERVER_STOP_TIMEOUT_S = 30.0
# starts again after the Python backend's known abort under CPU load (SIGABRT on
# boost::interprocess::lock_exception while its stubs start; triton-inference-server/server#8882, #5949)
SERVER_START_RETRIES = 1

# the latent explorer's page (`infogan explore`), on HOST
EXPLORE_PORT = 7860

# deadlines of the client's requests, retries included
TIMEOUT_S = 10.0
STATUS_TIMEOUT_S = 5.0  # `infogan status`: a health check should answer at once

# UNAVAILABLE is retried RETRIES times inside the deadline, waiting RETRY_BACKOFF_S doubling
# (5 retries: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s). The waits must outlast gRPC's reconnect
# backoff, capped at RECONNECT_BACKOFF_MAX_MS (+-20% jitter): a channel whose server went away
# fails every call at once until its next reconnect attempt, so shorter waits can miss a server
# that is back. Seen under load with 3 retries (0.7 s): a restarted server stayed unreachable.
RETRIES = 5
RETRY_BACKOFF_S = 0.1
RECONNECT_BACKOFF_MAX_MS = 1000
# requests the Triton client sends at once when it splits a large batch
IN_FLIGHT = 4
# the soak benchmark's load: concurrent clients, and seconds of load
SOAK_CLIENTS = 16
SOAK_SECONDS = 60.0

# where the client's in-process onnxruntime runs: the GPU where onnxruntime has CUDA, else the CPU
DEVICE = "auto"

# environment variables that replace the defaults above on the command line
ENV_REPOSITORY = "INFOGAN_MODEL_REPOSITORY"
ENV_DATA_DIR = "INFOGAN_DATA_DIR"
ENV_RUNS_DIR = "INFOGAN_RUNS_DIR"
ENV_URL = "INFOGAN_TRITON_URL"
ENV_TIMEOUT = "INFOGAN_TIMEOUT"
ENV_BACKEND = "INFOGAN_BACKEND"
ENV_DEVICE = "INFOGAN_DEVICE"
