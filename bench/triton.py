"""Triton over gRPC on loopback: the local server (infogan.serve) against in-process onnxruntime.

Each setting keeps `concurrency` requests of `batch` images in flight back to
back, from a load generator in a process of its own (infogan.bench.load: nghttp2's
h2load, a C++ HTTP/2 client, where installed, else a Python asyncio client), so
the client costs the server it measures as little as it can. The Python client
is then measured at batch 1 as well, beside the C++ one, to show what a client
costs on this machine. After a warm-up, the server's statistics are read
at both ends of a fixed window: the calls that finish inside it give the
throughput and latencies, the deltas of inference_count / execution_count give
the batch size Triton actually executed. The reference is the raw in-process
onnxruntime session at the same total batch (batch x concurrency), measured in
this process just before and just after each window while the server idles.
"""

from __future__ import annotations

import time

import numpy as np
import tritonclient.grpc as grpcclient

from infogan.bench.generation import latent_feeds, raw_session
from infogan.bench.load import LoadRun, default_client, infer_request
from infogan.bench.timing import Timing, interleaved, percentile, ratio
from infogan.client import Generator
from infogan.contract import GENERATOR_MODEL, LatentTemplate
from infogan.serve.server import TritonServer, free_port

SETTINGS = ((1, 1), (1, 4), (1, 16), (64, 1), (64, 4))  # (batch per request, concurrency)
CLIENT_CHECK = ((1, 1), (1, 16))  # where the Python client is measured beside h2load


SERVER_PARTS = ("queue", "compute_input", "compute_infer", "compute_output")  # Triton's per-request times


def _counts(client: grpcclient.InferenceServerClient, model: str) -> dict[str, int]:
    """Cumulative counts so far: inferences, executions, failed and successful requests, and the
    nanoseconds of each part of a request's time in the server (SERVER_PARTS)."""
    stats = client.get_inference_statistics(model_name=model, as_json=True)["model_stats"]

    def total(get) -> int:  # int64 fields arrive as strings (protobuf JSON), absent when zero
        return sum(int(get(s) or 0) for s in stats)

    out = {"inferences": total(lambda s: s.get("inference_count")), "executions": total(lambda s: s.get("execution_count")),
           "failed": total(lambda s: s.get("inference_stats", {}).get("fail", {}).get("count")),
           "success": total(lambda s: s.get("inference_stats", {}).get("success", {}).get("count"))}
    for part in SERVER_PARTS:
        out[part] = total(lambda s, part=part: s.get("inference_stats", {}).get(part, {}).get("ns"))
    return out


def server_ms(before: dict[str, int], after: dict[str, int]) -> dict[str, float | None]:
    """Mean milliseconds per successful request in each part of the server's time, between two _counts:
    where a request's time goes (waiting in the queue, or the backend's execute)."""
    done = after["success"] - before["success"]
    return {part: (after[part] - before[part]) / done / 1e6 if done else None for part in SERVER_PARTS}


def measure_setting(url: str, stats_client, template: LatentTemplate, batch: int, concurrency: int, warmup_s: float,
                    window_s: float, client: str | None = None) -> dict:
    """One (batch, concurrency) point of a running server at `url`, loaded by a load generator in a
    process of its own (infogan.bench.load); `stats_client` reads Triton's statistics around the window.
    Used by the benchmark suite and by the GPU check."""
    client = client or default_client()
    body = infer_request(GENERATOR_MODEL, template, batch)
    load = LoadRun(client, url, body, concurrency, warmup_s + window_s + 0.5)
    time.sleep(warmup_s)
    c0 = _counts(stats_client, GENERATOR_MODEL)
    w0 = time.monotonic()
    time.sleep(window_s)
    c1 = _counts(stats_client, GENERATOR_MODEL)
    w1 = time.monotonic()
    inf0, exe0, fail0 = c0["inferences"], c0["executions"], c0["failed"]
    inf1, exe1, fail1 = c1["inferences"], c1["executions"], c1["failed"]
    calls = load.calls()
    # h2load sees HTTP 200 either way (gRPC reports errors in trailers), so the server's
    # count is the check; inside the window only: h2load resets the streams still in
    # flight when its time is up, and Triton counts those as failed
    if fail1 - fail0:
        raise RuntimeError(f"Triton failed {fail1 - fail0} of the load client's requests")
    finished = [b for a, b in calls if w0 <= b <= w1]
    inside_ms = [(b - a) * 1e3 for a, b in calls if a >= w0 and b <= w1]
    executions = exe1 - exe0
    return {
        "client": client,
        "batch": batch,
        "concurrency": concurrency,
        "total_batch": batch * concurrency,
        "calls": len(finished),
        "images_per_s": batch * len(finished) / (w1 - w0),
        "mean_ms": float(np.mean(inside_ms)) if inside_ms else None,
        "p50_ms": percentile(inside_ms, 50),
        "p99_ms": percentile(inside_ms, 99),
        "server_inferences": inf1 - inf0,
        "server_executions": executions,
        "mean_executed_batch": (inf1 - inf0) / executions if executions else None,
        "server_ms": server_ms(c0, c1),
    }


def _in_process(raw, feeds: dict[str, np.ndarray], total: int, seconds: float, timing: Timing | None) -> Timing:
    f = {k: v[:total] for k, v in feeds.items()}
    return interleaved({"raw": lambda: raw.run(None, f)}, total, seconds, rounds=1, warmup=1 if timing is None else 0,
                       into={"raw": timing} if timing else None)["raw"]


def run(prep, quick: bool = False, log=lambda _: None, window_s: float | None = None,
        settings: tuple[tuple[int, int], ...] = SETTINGS) -> dict:
    window_s = window_s or (1.5 if quick else 6.0)
    warmup_s = min(window_s / 3, 1.0)
    template = Generator.from_onnx(prep.generator).template
    feeds = latent_feeds(template, max(b * c for b, c in settings))
    raw = raw_session(prep.generator)

    log("starting Triton")
    t0 = time.perf_counter()
    server = TritonServer(prep.repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    with server:
        start_s = time.perf_counter() - t0
        stats_client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            meta = stats_client.get_server_metadata(as_json=True)
            results, reference = [], {}
            for batch, concurrency in settings:
                log(f"Triton: batch {batch} x concurrency {concurrency}")
                # the in-process reference brackets the window (the server idles meanwhile),
                # so a neighbour's burst on a shared machine hits both alike
                total = batch * concurrency
                ref = _in_process(raw, feeds, total, window_s / 4, reference.get(total))
                r = measure_setting(server.grpc_url, stats_client, template, batch, concurrency, warmup_s, window_s)
                reference[total] = _in_process(raw, feeds, total, window_s / 4, ref)
                results.append(r)
            # the Python client beside the C++ one, where both ran the same setting
            clients = {}
            checked = [r for r in results if r["client"] == "h2load" and (r["batch"], r["concurrency"]) in CLIENT_CHECK]
            for c in checked:
                log(f"Triton: batch {c['batch']} x concurrency {c['concurrency']}, Python asyncio client")
                a = measure_setting(server.grpc_url, stats_client, template, c["batch"], c["concurrency"], warmup_s, window_s,
                             client="asyncio")
                clients[f"b{c['batch']}_c{c['concurrency']}"] = {
                    "h2load_images_per_s": c["images_per_s"], "asyncio_images_per_s": a["images_per_s"],
                    "asyncio_over_h2load": ratio(a["images_per_s"], c["images_per_s"])}
        finally:
            stats_client.close()

    for r in results:
        r["in_process_images_per_s"] = reference[r["total_batch"]].images_per_s
        r["fraction_of_in_process"] = ratio(r["images_per_s"], r["in_process_images_per_s"])
    return {
        "server": {"name": meta.get("name"), "version": meta.get("version")},
        "start_s": start_s,
        "model": GENERATOR_MODEL,
        "window_s": window_s,
        "client": results[0]["client"],
        "settings": {f"b{r['batch']}_c{r['concurrency']}": r for r in results},
        "client_check": clients,
        "in_process": {str(k): t.summary() for k, t in sorted(reference.items())},
    }
