"""Soak: many concurrent clients mixing generate and encode against a local Triton for a
bounded time, every answer checked against in-process onnxruntime on the same inputs.

    infogan soak [--repository model_repository] [--clients 16] [--duration 60]

Reports requests/s, p50 and p99 latency, failed and wrong answers, and the resident
memory of the server's process group after warm-up and at the end.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from infogan import defaults
from infogan.client import Encoder, Generator
from infogan.contract import CATEGORICAL, CATEGORICAL_PROBS, CONTINUOUS, NOISE
from infogan.serve.server import TritonServer, free_port

WARM_UP_SHARE = 0.2  # of the duration: memory is compared from here on


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process in a process group (tritonserver and its stubs), MiB."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[2]) != pgid:  # field 5: the process group
                    continue
            with open(f"/proc/{entry}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError, IndexError):
            continue  # exited while we looked, or a kernel thread
    return total / 1024


def _client_loop(url: str, repository: Path, seed: int, stop: threading.Event, out: dict) -> None:
    rng = np.random.default_rng(seed)
    latencies, failures, wrong = [], [], 0
    try:
        remote_g, remote_e = Generator.from_triton(url), Encoder.from_triton(url)
        local_g, local_e = Generator.from_repository(repository, threads=1), Encoder.from_repository(repository, threads=1)
    except Exception as e:  # a client that cannot even start is a failure too
        out.update(latencies=latencies, failures=[f"{type(e).__name__}: {e}"], wrong=0)
        return
    try:
        while not stop.is_set():
            n = int(rng.integers(1, 9))
            z = local_g.latent(n, seed=int(rng.integers(1 << 31)))
            inputs = (z[NOISE], z[CATEGORICAL], z[CONTINUOUS])
            encode = rng.random() < 0.5
            images = local_g.run(*inputs) if encode else None
            try:
                t0 = time.perf_counter()  # the served call only; the in-process check is not timed
                got = remote_e.run(images)[CATEGORICAL_PROBS] if encode else remote_g.run(*inputs)
                latencies.append(time.perf_counter() - t0)
            except Exception as e:  # any failure is counted and reported, the soak goes on
                failures.append(f"{type(e).__name__}: {e}")
                continue
            want = local_e.run(images)[CATEGORICAL_PROBS] if encode else local_g.run(*inputs)
            wrong += int(not np.allclose(got, want, atol=1e-5, rtol=0))
    finally:
        for c in (remote_g, remote_e, local_g, local_e):
            c.close()
    out.update(latencies=latencies, failures=failures, wrong=wrong)


def soak(repository: str | Path, clients: int = defaults.SOAK_CLIENTS, duration_s: float = defaults.SOAK_SECONDS,
         log=lambda _: None) -> dict:
    """Start a server on the repository, run the clients for duration_s, stop it; the figures."""
    repository = Path(repository)
    with TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()) as server:
        log(f"server up at {server.grpc_url}; {clients} clients for {duration_s:g} s")
        stop = threading.Event()
        results = [{} for _ in range(clients)]
        threads = [threading.Thread(target=_client_loop, args=(server.grpc_url, repository, i, stop, results[i]))
                   for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(duration_s * WARM_UP_SHARE)
        rss_warm = group_rss_mib(server.pid)
        time.sleep(duration_s * (1 - WARM_UP_SHARE))
        rss_end = group_rss_mib(server.pid)
        stop.set()
        for t in threads:
            t.join(60)
        elapsed = time.perf_counter() - t0
    latencies = np.array([x for r in results for x in r.get("latencies", [])]) * 1e3
    failures = [f for r in results for f in r.get("failures", [])]
    return {
        "clients": clients, "duration_s": duration_s, "requests": int(latencies.size) + len(failures),
        "requests_per_s": latencies.size / elapsed, "p50_ms": float(np.percentile(latencies, 50)) if latencies.size else None,
        "p99_ms": float(np.percentile(latencies, 99)) if latencies.size else None,
        "failed": len(failures), "first_failures": failures[:3], "wrong": sum(r.get("wrong", 0) for r in results),
        "clients_finished": sum(not t.is_alive() for t in threads),
        "rss_mib_after_warm_up": rss_warm, "rss_mib_end": rss_end, "rss_growth": rss_end / rss_warm - 1 if rss_warm else None,
    }
