"""A real Triton Inference Server on a model repository, without Docker.

Interface (torch-free; needs the `serve` extra, nvidia-pytriton, for the binary):

    from infogan.serve.server import TritonServer, free_port, check_repository

    with TritonServer("model_repository", grpc_port=free_port(), http_port=free_port(),
                      metrics_port=free_port()) as server:      # start(): waits until ready
        server.grpc_url      # "127.0.0.1:<port>"  (tritonclient.grpc.InferenceServerClient(url=...))
        server.http_url      # "127.0.0.1:<port>"  (tritonclient.http)
        server.metrics_url   # "http://127.0.0.1:<port>/metrics"
        server.models        # ["infogan_encoder", "infogan_generator"]
    # leaving the block stops it: SIGTERM, wait, SIGKILL as last resort; no stub
    # process and no /dev/shm region is left behind.

    TritonServer(repository, grpc_port=8001, http_port=8000, metrics_port=8002,   # infogan.defaults
                 host="127.0.0.1", log_verbose=0, log_file=None)   # log_file: keep Triton's log there
    .start(timeout=120.0) -> self   waits until the server and every model are ready;
                                    raises InfoganError for bad input (empty repository,
                                    port taken) and RuntimeError with the server's log
                                    tail when it fails to come up; a start that dies by
                                    SIGABRT with no model refused (the Python backend's
                                    abort under load) is made again, defaults.SERVER_START_RETRIES
                                    times, and listed in .start_aborts
    .stop(timeout=30.0)             idempotent
    .is_running() -> bool
    .logs() -> str                  the server's output so far
    .shm_prefix, .workdir           what marks this server's stubs, /dev/shm regions, temp folder
    free_port() -> int              a port free on 127.0.0.1 right now (for tests)
    check_repository(path) -> list[str]   model names, or InfoganError ("run make export first",
                                          or a model this server will not run: see check_model)

Model control mode is `none`: the models found at start are served and clients
cannot load or unload any. Started from the main thread, Triton also gets SIGTERM
when its owner dies without stopping it (even by SIGKILL).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from infogan import defaults
from infogan.contract import CONFIG_FILE, GPU_MODEL_FILE, META_TEMPLATE, MODEL_FILE, PLATFORM, InfoganError, LatentTemplate, model_versions
from infogan.serve.batching import model_file
from infogan.serve.launch import SHM_DIR, backend_directory, server_command, server_environment, shm_leftovers


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(param: str, host: str, port: int) -> None:
    """Refuse a port something already listens on (Triton's gRPC server would
    share it through SO_REUSEPORT instead of failing)."""
    if not 0 < port < 65536:
        raise InfoganError(f"{param}={port} is invalid: a port is 1..65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT port is fine
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise InfoganError(f"{param}={port} is invalid: port is taken on {host} ({e.strerror}); choose a free port") from None
            raise InfoganError(f"host={host} is invalid: cannot listen there ({e.strerror}); use 127.0.0.1, 0.0.0.0 or an address of this machine") from None


def check_repository(repository: str | Path) -> list[str]:
    """The names of the models in a repository, each with config.pbtxt and a version folder."""
    repo = Path(repository)
    if not repo.is_dir():
        raise InfoganError(f"repository={repo} is invalid: no such folder; run make export first")
    folders = sorted(p for p in repo.iterdir() if p.is_dir())
    models = [p.name for p in folders if (p / CONFIG_FILE).is_file()]
    if not models:
        raise InfoganError(f"repository={repo} is invalid: it holds no models (no <model>/config.pbtxt); run make export first")
    # Triton loads every folder, hidden ones too, and without auto-complete a
    # folder without config fails the whole start
    strays = [p.name for p in folders if p.name not in models]
    if strays:
        raise InfoganError(f"repository={repo} is invalid: folder {strays[0]} is not a model (no config.pbtxt); move it out of the repository")
    for m in models:
        versions = [v for v in model_versions(repo / m) if any((repo / m / str(v)).iterdir())]
        if not versions:
            raise InfoganError(f"repository={repo} is invalid: model {m} has no version folder (<model>/<N>/model.onnx); run make export first")
        check_model(repo, m)
    return models


# ---------------------------------------------------------------- trust
# Triton runs what a model repository names: a `backend: "python"` model's model.py, a
# backend library or batching library found in a model's folders, a conda environment
# named in its parameters. So `infogan serve` serves only what `infogan export` writes,
# and refuses the rest before Triton starts (model_repository/README.md, "Trust").

BACKEND = "onnxruntime"  # served by the project's serve/onnxruntime_backend.py
# parameters with which Triton or its Python backend load code from a path
CODE_PARAMETERS = ("EXECUTION_ENV_PATH", "TRITON_BATCH_STRATEGY_PATH")
WARMUP_FOLDER = "warmup"  # where Triton reads model_warmup's input_data_file


def read_model_config(path: Path, where: str):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    try:
        return text_format.Parse(path.read_text(), mc.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise InfoganError(f"{where} has a {CONFIG_FILE} that is not a Triton model config "
                           f"({str(e).splitlines()[0]}); fix it or run make export") from None


def check_model(repo: Path, name: str) -> None:
    """Refuse a model unless it is served by the project's backend, from files inside its
    own version folders, with a latent template within the contract's bounds."""
    model_dir = repo / name
    where = f"repository={repo} is invalid: model {name}"
    cfg = read_model_config(model_dir / CONFIG_FILE, where)
    refuse = "; infogan serve runs only its own onnxruntime backend, so move the model out of the repository"
    if cfg.backend not in ("", BACKEND):
        raise InfoganError(f'{where} has backend="{cfg.backend}"{refuse}')
    if cfg.platform not in ("", PLATFORM) or not (cfg.platform or cfg.backend):
        raise InfoganError(f'{where} has platform="{cfg.platform}": use platform "{PLATFORM}"{refuse}')
    if cfg.runtime:
        raise InfoganError(f'{where} has runtime="{cfg.runtime}": the project\'s backend takes no runtime{refuse}')
    for key in CODE_PARAMETERS:
        if key in cfg.parameters:
            raise InfoganError(f"{where} has parameter {key}, which makes Triton load code from a path{refuse}")
    if cfg.model_operations.op_library_filename:
        raise InfoganError(f"{where} has model_operations.op_library_filename: custom op libraries are code{refuse}")
    if cfg.model_repository_agents.agents:
        raise InfoganError(f"{where} has model_repository_agents: repository agents are code{refuse}")
    if cfg.HasField("sequence_batching") or cfg.HasField("ensemble_scheduling"):
        raise InfoganError(f"{where} has sequence_batching or ensemble_scheduling: the project's backend serves "
                           "stateless models with dynamic_batching; run make export")
    if META_TEMPLATE in cfg.parameters:
        try:
            LatentTemplate.from_json(cfg.parameters[META_TEMPLATE].string_value)
        except InfoganError as e:
            raise InfoganError(f"{where} has parameter {META_TEMPLATE} that the contract refuses: {e}") from None
    _check_model_files(repo, model_dir, cfg, where)


def _check_model_files(repo: Path, model_dir: Path, cfg, where: str) -> None:
    """Every file Triton would read lies inside the model's folders, and those folders hold
    nothing else: Triton loads a backend library (libtriton_onnxruntime.so) or a batching
    library (batchstrategy.so) that it finds in a model's folder or version folders."""
    _check_inside(model_dir, repo, where, "its folder")
    named = {"default_model_filename": cfg.default_model_filename or MODEL_FILE}
    named.update({f"cc_model_filenames[{cc}]": f for cc, f in cfg.cc_model_filenames.items()})
    warmup_files = {f"model_warmup {w.name} input {key}: input_data_file": i.input_data_file
                    for w in cfg.model_warmup for key, i in w.inputs.items() if i.input_data_file}
    for entry in sorted(model_dir.iterdir()):
        if entry.name == CONFIG_FILE or entry.name.startswith("."):  # export's staging folders; Triton skips them
            continue
        if entry.name.isdigit() and entry.is_dir():
            _check_inside(entry, model_dir, where, f"version folder {entry.name}")
            for field, filename in named.items():
                _check_file(entry, filename, field, where)
            if (entry / GPU_MODEL_FILE).exists():  # export's GPU graph of the generator
                _check_file(entry, GPU_MODEL_FILE, "the GPU graph", where)
            strays = sorted(p.name for p in entry.iterdir() if p.name not in {*named.values(), GPU_MODEL_FILE})
            if strays:
                raise InfoganError(f"{where} holds {entry.name}/{strays[0]}, which is not its model file "
                                   f"({', '.join(sorted(set(named.values())))}): Triton may load it as code; "
                                   "move it out of the repository")
        elif entry.name == WARMUP_FOLDER and entry.is_dir() and warmup_files:
            _check_inside(entry, model_dir, where, f"folder {WARMUP_FOLDER}")
        else:
            raise InfoganError(f"{where} holds {entry.name}, which infogan export does not write "
                               f"(a model holds {CONFIG_FILE} and <N>/{MODEL_FILE}): move it out of the repository")
    for field, filename in warmup_files.items():
        _check_file(model_dir / WARMUP_FOLDER, filename, field, where)


def _check_inside(folder: Path, parent: Path, where: str, what: str) -> None:
    real = folder.resolve()
    if real.parent != parent.resolve():
        raise InfoganError(f"{where}: {what} resolves to {real}, outside {parent}: serve the files where they lie, no symlinks out")


def _check_file(folder: Path, filename: str, field: str, where: str) -> None:
    try:
        model_file(folder, filename)
    except ValueError as e:
        raise InfoganError(f"{where} has {field}={filename}, which is invalid: {e}") from None


class TritonServer:
    def __init__(self, repository: str | Path, grpc_port: int = defaults.GRPC_PORT, http_port: int = defaults.HTTP_PORT,
                 metrics_port: int = defaults.METRICS_PORT, host: str = defaults.HOST, log_verbose: int = 0,
                 log_file: str | Path | None = None, poll_secs: int = 0):
        self.repository = Path(repository).resolve()
        self.host = host
        self.ports = {"grpc_port": grpc_port, "http_port": http_port, "metrics_port": metrics_port}
        self.log_verbose = log_verbose
        if poll_secs < 0:
            raise InfoganError(f"poll_secs={poll_secs} is invalid: give 0 (serve the models found at start) or seconds > 0")
        self.poll_secs = poll_secs  # > 0: rescan the repository that often and serve new versions
        self.log_file = Path(log_file).resolve() if log_file else None
        self.models: list[str] = []
        self._proc: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._log_text = ""
        self.start_aborts: list[str] = []  # each start that aborted and was made again
        # a prefix of our own, so stop() can find this server's /dev/shm regions
        self.shm_prefix = f"infogan_triton_{os.getpid()}_{id(self):x}_"

    # ------------------------------------------------------------ endpoints
    @property
    def _client_host(self) -> str:
        # a server bound to every interface is reached through loopback
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.ports['grpc_port']}"

    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.ports['http_port']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.ports['metrics_port']}/metrics"

    @property
    def workdir(self) -> Path | None:
        """The temporary folder holding the backend copies and the log while running."""
        return Path(self._workdir.name) if self._workdir is not None else None

    @property
    def pid(self) -> int | None:
        """tritonserver's process id while running; its backend stubs share its process group."""
        return self._proc.pid if self.is_running() else None

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = defaults.SERVER_START_TIMEOUT_S) -> "TritonServer":
        if self._proc is not None:
            raise RuntimeError("server already started")
        self.models = check_repository(self.repository)
        if len(set(self.ports.values())) != 3:
            raise InfoganError(f"ports={sorted(self.ports.values())} is invalid: gRPC, HTTP and metrics need three different ports")
        for param, port in self.ports.items():
            check_port(param, self.host, port)
        if self.log_file and not self.log_file.parent.is_dir():
            raise InfoganError(f"log_file={self.log_file} is invalid: folder {self.log_file.parent} does not exist")

        while True:
            try:
                self._launch(timeout, append_log=bool(self.start_aborts))
                return self
            except _StartAborted as e:
                self.stop()
                self.start_aborts.append(str(e))
                if len(self.start_aborts) > defaults.SERVER_START_RETRIES:
                    raise RuntimeError(f"{e} (started {len(self.start_aborts)} times)") from None
            except BaseException:
                self.stop()
                raise

    def _launch(self, timeout: float, append_log: bool) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="infogan-triton-")
        work = Path(self._workdir.name)
        self._log_path = self.log_file or work / "tritonserver.log"
        argv = server_command(self.repository, backend_directory(work / "backends"), self.host, **self.ports,
                              shm_prefix=self.shm_prefix, log_verbose=self.log_verbose, poll_secs=self.poll_secs)
        earlier = self._log_text if append_log and not self.log_file else ""  # a log_file keeps its own
        with open(self._log_path, "ab" if append_log else "wb") as log:
            if append_log:  # what the aborted start wrote stays readable, in logs() and in the log file
                log.write(f"{earlier}infogan: tritonserver aborted while starting; starting it again\n".encode())
                log.flush()
            # a session of its own: Ctrl-C in a terminal reaches us, not Triton,
            # and the stub processes can be found (and killed) as one group
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=server_environment(), start_new_session=True,
                                          preexec_fn=_die_with_parent())
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        urls = [f"http://{self.http_url}/v2/health/ready"]
        urls += [f"http://{self.http_url}/v2/models/{m}/ready" for m in self.models]
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                failed = _load_failures(self.logs())
                if failed:  # a model in the repository is broken: the user's input
                    raise InfoganError(f"repository={self.repository} is invalid: Triton failed to load {failed[0]}")
                error = _StartAborted if self._proc.returncode == -signal.SIGABRT else RuntimeError
                raise error(f"tritonserver exited with code {self._proc.returncode} while starting:\n{self._log_tail()}")
            if all(_http_ok(u) for u in urls):
                return
            time.sleep(0.1)
        raise RuntimeError(f"tritonserver was not ready after {timeout:.0f} s:\n{self._log_tail()}")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = defaults.SERVER_STOP_TIMEOUT_S) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Triton unloads the models, the stubs exit
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            _kill_group(proc.pid)  # stubs that outlived their server, if any
        for leftover in shm_leftovers(self.shm_prefix):
            (Path(SHM_DIR) / leftover).unlink(missing_ok=True)
        if self._workdir is not None:
            self._log_text = self.logs()
            self._workdir.cleanup()
            self._workdir = None

    def logs(self) -> str:
        if self._workdir is not None and self._log_path.exists():
            return self._log_path.read_text(errors="replace")
        return self._log_text

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _StartAborted(RuntimeError):
    """tritonserver died by SIGABRT before it was ready, with no model refused: the
    Python backend's lock_exception under load, not the user's repository."""


def _load_failures(log: str) -> list[str]:
    """Each model Triton failed to load, as "<model> version <n>: <reason>"."""
    found = re.findall(r"failed to load '([^']+)' version (\d+): (.*?)(?:\\n|\"$)", log, flags=re.M)
    return [f"{m} version {v}: {why.strip()}" for m, v, why in found]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _die_with_parent():
    """A preexec hook: Triton gets SIGTERM if we die without stopping it (a test
    runner killed by a timeout). Linux ties this to the forking thread, so only
    the main thread, which lives as long as the process, arms it."""
    if threading.current_thread() is not threading.main_thread() or not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    PR_SET_PDEATHSIG, SIGTERM = 1, int(signal.SIGTERM)
    return lambda: prctl(PR_SET_PDEATHSIG, SIGTERM)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
