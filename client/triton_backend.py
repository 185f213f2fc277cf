"""Inference on a Triton Inference Server over gRPC.

Every request to the server runs under a deadline (the `timeout`: a request
holds at most max_batch_size samples, so the deadline does not have to grow
with the batch), UNAVAILABLE is retried with exponential backoff a bounded
number of times inside that deadline, batches larger than max_batch_size are
split and the pieces stay in flight together on a small thread pool. Whatever goes wrong
ends as one InfoganError line, never a hang and never a gRPC traceback.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from infogan.client.info import DEFAULT_TIMEOUT_S, DEFAULT_URL, ModelInfo, checkpoint_of, mixed_pair
from infogan import defaults
from infogan.contract import META_CHECKPOINT_SHA256, InfoganError, model_versions

SERVE_HINT = "start one with `make serve` (or `infogan serve`)"
BACKEND_HINT = ", or use --backend onnx"  # where the caller can run the model in-process instead

T = TypeVar("T")


# tritonclient's own channel options, plus a short reconnect backoff: gRPC waits up to
# 120 s between attempts to reach a server that went away, so a restarted server
# would otherwise stay "unavailable" to this client for minutes (defaults.RETRIES' waits
# outlast the cap, so a retried call reaches a server that is back)
_keepalive = grpcclient.KeepAliveOptions()
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
    ("grpc.max_receive_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
    ("grpc.keepalive_time_ms", _keepalive.keepalive_time_ms),
    ("grpc.keepalive_timeout_ms", _keepalive.keepalive_timeout_ms),
    ("grpc.keepalive_permit_without_calls", _keepalive.keepalive_permit_without_calls),
    ("grpc.http2.max_pings_without_data", _keepalive.http2_max_pings_without_data),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", defaults.RECONNECT_BACKOFF_MAX_MS),
]


class Rpc:
    """One gRPC client with the deadline/retry policy every call goes through."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = defaults.RETRIES,
                 backoff_s: float = defaults.RETRY_BACKOFF_S,
                 hint: str = SERVE_HINT + BACKEND_HINT):
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise InfoganError(f"timeout={timeout} is invalid: give a positive number of seconds")
        if retries < 0:
            raise InfoganError(f"retries={retries} is invalid: must be >= 0")
        if not url or "/" in url:
            raise InfoganError(f"url={url!r} is invalid: give host:port of Triton's gRPC endpoint, e.g. {DEFAULT_URL}")
        self.url, self.timeout, self.retries, self.backoff_s, self.hint = url, float(timeout), retries, backoff_s, hint
        self.client = grpcclient.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

    def deadline(self) -> float:
        return time.monotonic() + self.timeout

    def call(self, fn: Callable[[float], T], deadline: float | None = None, what: str = "request") -> T:
        """fn(seconds_left) -> result; retried on UNAVAILABLE while attempts and time remain."""
        deadline = self.deadline() if deadline is None else deadline
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout_error(what)
            try:
                return fn(left)
            except InferenceServerException as e:
                status = str(e.status() or "")
                if "UNAVAILABLE" in status and attempt < self.retries:
                    delay = self.backoff_s * 2**attempt
                    if time.monotonic() + delay < deadline:
                        attempt += 1
                        time.sleep(delay)
                        continue
                raise self._error(e, status, attempt + 1, what) from None

    def _timeout_error(self, what: str) -> InfoganError:
        return InfoganError(
            f"timeout={self.timeout:g} was exceeded: the server at {self.url} did not finish the {what} in time "
            "(check it with `infogan status`, or raise --timeout)"
        )

    def _error(self, e: InferenceServerException, status: str, tries: int, what: str) -> InfoganError:
        if "UNAVAILABLE" in status:
            return InfoganError(
                f"url={self.url} is unreachable ({what}: UNAVAILABLE after {tries} tries): "
                f"no Triton server answers there; {self.hint}"
            )
        if "DEADLINE_EXCEEDED" in status:
            return self._timeout_error(what)
        message = (e.message() or str(e)).strip().splitlines()
        return InfoganError(f"url={self.url} refused the {what} ({status or 'error'}): {message[0] if message else ''}")

    def close(self) -> None:
        self.client.close()


class TritonBackend:
    name = "triton"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        model: str = "",
        version: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = defaults.RETRIES,
        in_flight: int = defaults.IN_FLIGHT,
    ):
        if in_flight < 1:
            raise InfoganError(f"in_flight={in_flight} is invalid: must be >= 1")
        self.rpc = Rpc(url, timeout, retries)
        self.model, self.version = model, "" if version is None else str(version)
        try:
            self._connect()
        except BaseException:
            self.rpc.close()
            raise
        self.pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="infogan-triton")

    def _connect(self) -> None:
        rpc, model = self.rpc, self.model
        deadline = rpc.deadline()
        rpc.call(lambda t: rpc.client.is_server_live(client_timeout=t), deadline, "liveness check")
        ready = rpc.call(lambda t: rpc.client.is_model_ready(model, self.version, client_timeout=t), deadline, "model check")
        if not ready:
            index = rpc.call(lambda t: rpc.client.get_model_repository_index(as_json=True, client_timeout=t), deadline, "model list")
            served = sorted({f"{m['name']}" + (f"/{m['version']}" if m.get("version") else "") for m in index.get("models", []) if m.get("state") == "READY"})
            shown = f"{model}/{self.version}" if self.version else model
            raise InfoganError(f"model={shown} is not ready at {rpc.url}: the server has {served or 'no ready models'}")
        config = rpc.call(
            lambda t: rpc.client.get_model_config(model, self.version, as_json=True, client_timeout=t), deadline, "config request"
        )["config"]
        props = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        self.info = ModelInfo.from_properties(props, f"{rpc.url}/{model}")
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.input_names = [i["name"] for i in config.get("input", [])]
        # "TYPE_FP32" -> "FP32": the wire type the model declares for each input
        self._datatypes = {i["name"]: i.get("data_type", "TYPE_FP32").removeprefix("TYPE_") for i in config.get("input", [])}
        self.output_names = [o["name"] for o in config.get("output", [])]
        self._outputs = [grpcclient.InferRequestedOutput(n) for n in self.output_names]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(feeds.values())))
        step = self.max_batch_size if self.max_batch_size > 0 else n
        spans = [(a, min(a + step, n)) for a in range(0, n, step)]
        if len(spans) == 1:
            return self._infer_span(feeds, 0, n)
        futures = [self.pool.submit(self._infer_span, feeds, a, b) for a, b in spans]
        try:
            # the first failure ends the call at once, not after the requests before it
            wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
            if failed:
                raise failed[0].exception()
            parts = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()  # the ones already sent end by their own deadline
            raise
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _infer_span(self, feeds: dict[str, np.ndarray], a: int, b: int) -> dict[str, np.ndarray]:
        """One request of samples a..b; its deadline starts when it is sent."""
        inputs = []
        for name, array in feeds.items():
            datatype = self._datatypes.get(name, "FP32")
            part = array[a:b] if datatype == "FP32" else array[a:b].astype(triton_to_np_dtype(datatype))
            inp = grpcclient.InferInput(name, list(part.shape), datatype)
            inp.set_data_from_numpy(part)
            inputs.append(inp)
        result = self.rpc.call(
            lambda t: self.rpc.client.infer(self.model, inputs, self.version, outputs=self._outputs, client_timeout=t),
            self.rpc.deadline(),
            f"inference on {self.model}",
        )
        return {name: result.as_numpy(name) for name in self.output_names}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.rpc.close()


def _own_checkpoint(repository: Path, model: str, version: int, from_config: str | None) -> str | None:
    """The served version's checkpoint hash from its own model.onnx, where `repository` is the one
    the server serves: the config's hash (this version's, or the previous one's while the config
    lags) names one of its files. Otherwise, another repository, the config's hash stands."""
    own = {v: checkpoint_of(repository, model, v) for v in model_versions(repository / model)}
    if from_config is not None and from_config not in own.values():
        return from_config
    return own.get(version) or from_config


def _pair_warning(models: list[dict]) -> str | None:
    ready = {m["name"]: (m["version"], m["checkpoint_sha256"]) for m in models if m["state"] == "READY"}
    line = mixed_pair(ready)
    return f"warning: {line}" if line else None


def _label_purity(config: dict, source: str) -> dict[str, float] | None:
    """label name -> category purity from a config's parameters; None where it carries none."""
    props = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
    try:
        info = ModelInfo.from_properties(props, source)
    except InfoganError:
        return None  # a model without the contract's metadata: status still reports it
    purity = info.label_purity()
    return None if purity is None else {info.label_name(d): p for d, p in purity.items()}


def server_status(url: str = DEFAULT_URL, timeout: float = DEFAULT_TIMEOUT_S, repository: str | Path | None = None) -> dict:
    """Liveness, readiness, the repository's models and versions, and the
    batching statistics of each loaded version (batch size -> executions).

    pair_mismatch: one warning line when a ready generator and encoder of one precision
    come from different checkpoints. Each served version's hash is read from its own
    model.onnx in `repository` (the folder the server serves); config.pbtxt's copy is used
    only where that folder is not the served one or lacks the file (a remote server), and
    it can lag one version behind while an export publishes, or after one was killed
    (model_repository/README.md)."""
    rpc = Rpc(url, timeout, hint=SERVE_HINT)
    try:
        deadline = rpc.deadline()
        c = rpc.client
        live = rpc.call(lambda t: c.is_server_live(client_timeout=t), deadline, "liveness check")
        ready = rpc.call(lambda t: c.is_server_ready(client_timeout=t), deadline, "readiness check")
        meta = rpc.call(lambda t: c.get_server_metadata(as_json=True, client_timeout=t), deadline, "metadata request")
        index = rpc.call(lambda t: c.get_model_repository_index(as_json=True, client_timeout=t), deadline, "model list")
        stats = rpc.call(lambda t: c.get_inference_statistics(as_json=True, client_timeout=t), deadline, "statistics request")
        models = []
        for m in index.get("models", []):
            name, version, state = m.get("name", ""), m.get("version", ""), m.get("state", "")
            purity, checkpoint = None, None
            if state == "READY":
                config = rpc.call(lambda t: c.get_model_config(name, version, as_json=True, client_timeout=t),
                                  deadline, "config request")["config"]
                purity = _label_purity(config, f"{url}/{name}")
                checkpoint = config.get("parameters", {}).get(META_CHECKPOINT_SHA256, {}).get("string_value") or None
                if repository is not None and version.isdigit():
                    checkpoint = _own_checkpoint(Path(repository), name, int(version), checkpoint)
            models.append({"name": name, "version": version, "state": state, "reason": m.get("reason", ""),
                           "label_purity": purity, "checkpoint_sha256": checkpoint})
    finally:
        rpc.close()
    statistics = []
    for s in stats.get("model_stats", []):
        # int64 fields arrive as strings (protobuf JSON); durations in ns
        batches = []
        for b in s.get("batch_stats", []):
            compute = b.get("compute_infer", {})
            count = int(compute.get("count", 0))
            batches.append({
                "batch_size": int(b.get("batch_size", 0)),
                "executions": count,
                "compute_ms_mean": int(compute.get("ns", 0)) / count / 1e6 if count else 0.0,
            })
        inferences, executions = int(s.get("inference_count", 0)), int(s.get("execution_count", 0))
        statistics.append({
            "name": s.get("name", ""),
            "version": s.get("version", ""),
            "inference_count": inferences,
            "execution_count": executions,
            "mean_batch": inferences / executions if executions else 0.0,
            "batches": sorted(batches, key=lambda b: b["batch_size"]),
        })
    return {
        "url": url,
        "pair_mismatch": _pair_warning(models),
        "live": bool(live),
        "ready": bool(ready),
        "server": {"name": meta.get("name", ""), "version": meta.get("version", "")},
        "models": models,
        "statistics": statistics,
    }
