"""The Triton benchmark's load generators, each in a process of its own.

Both send the same serialized gRPC ModelInfer request (`infer_request`, built once
by the caller from the served model's template and handed over as a file),
`concurrency` calls in flight back to back over one HTTP/2 connection, for
`seconds`, and both return every call's (start, end) on this process's monotonic clock.

- `h2load` (nghttp2's HTTP/2 load generator, C++; Debian's `nghttp2-client`, which
  `make bench` installs): the default where it is on PATH. gRPC is HTTP/2 with a
  5-byte frame header, so h2load sends Triton's real ModelInfer call; its
  `--log-file` gives each call's start and duration. It costs the server the least
  CPU on a small machine: in one full run on a 2-core AMD EPYC (BENCHMARKS.md) the
  Python client below got 0.62x its images/s at batch 1 x 1 and 0.83x at 1 x 16.
- `asyncio`: one grpc.aio event loop sending the pre-serialized bytes (no per-call
  protobuf work in Python), run as `python -m infogan.bench.load`; the fallback
  without h2load, and the comparison that shows how much a Python client costs.

    python -m infogan.bench.load --url 127.0.0.1:8001 --body request.bin --concurrency 16 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from infogan.contract import CATEGORICAL, CONTINUOUS, IMAGE, NOISE, LatentTemplate, sample_latent

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
CLIENTS = ("h2load", "asyncio")


def infer_request(model: str, template: LatentTemplate, batch: int, seed: int = 0) -> bytes:
    """One serialized ModelInferRequest for a generator of `template`: `batch` latent vectors, raw FP32 inputs."""
    from tritonclient.grpc import service_pb2

    z = sample_latent(template, batch, np.random.default_rng(seed))
    request = service_pb2.ModelInferRequest(model_name=model)
    for name in (NOISE, CATEGORICAL, CONTINUOUS):
        a = np.ascontiguousarray(z[name], np.float32)
        request.inputs.add(name=name, datatype="FP32", shape=list(a.shape))
        request.raw_input_contents.append(a.tobytes())
    request.outputs.add(name=IMAGE)
    return request.SerializeToString()


def default_client() -> str:
    return "h2load" if shutil.which("h2load") else "asyncio"


class LoadRun:
    """A load generator started in its own process; `calls()` waits for it and returns its calls."""

    def __init__(self, client: str, url: str, body: bytes, concurrency: int, seconds: float):
        if client not in CLIENTS:
            raise ValueError(f"client={client} is invalid: use one of {list(CLIENTS)}")
        if client == "h2load" and not shutil.which("h2load"):
            raise RuntimeError("client=h2load is not installed: apt-get install nghttp2-client (make bench does)")
        self.client = client
        self._tmp = Path(tempfile.mkdtemp(prefix="infogan-load-"))
        if client == "h2load":
            (self._tmp / "body").write_bytes(b"\0" + struct.pack(">I", len(body)) + body)  # gRPC's frame header
            command = ["h2load", "-c1", "-t1", f"-m{concurrency}", f"-D{math.ceil(seconds)}",
                       "-d", str(self._tmp / "body"), "-H", "content-type: application/grpc", "-H", "te: trailers",
                       f"--log-file={self._tmp / 'log'}", f"http://{url}{INFER_METHOD}"]
        else:
            (self._tmp / "body").write_bytes(body)
            command = [sys.executable, "-m", "infogan.bench.load", "--url", url, "--body", str(self._tmp / "body"),
                       "--concurrency", str(concurrency), "--seconds", str(seconds)]
        # h2load logs wall-clock microseconds; this maps them onto the monotonic clock
        self._wall_minus_mono = time.time() - time.monotonic()
        self._child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if client == "asyncio" and not self._child.stdout.readline().strip():  # after its first answered call
            self._child.wait()
            raise RuntimeError(f"the load client stopped before its first call: {self._child.stderr.read().strip()[-500:]}")

    def calls(self, timeout: float = 120.0) -> list[tuple[float, float]]:
        try:
            out, err = self._child.communicate(timeout=timeout)
        finally:
            if self._child.poll() is None:
                self._child.kill()
                self._child.wait()
        try:
            if self.client == "h2load":
                return self._h2load_calls(out, err)
            result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"calls": [], "error": err.strip()[-500:]}
            if result["error"]:
                raise RuntimeError(f"the load client failed: {result['error']}")
            return [tuple(c) for c in result["calls"]]
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _h2load_calls(self, out: str, err: str) -> list[tuple[float, float]]:
        log = self._tmp / "log"
        if self._child.returncode != 0 or not log.is_file():
            raise RuntimeError(f"h2load failed (rc {self._child.returncode}): {(err or out).strip()[-500:]}")
        calls = []
        for line in log.read_text().splitlines():
            start_us, status, duration_us = line.split("\t")[:3]
            if status != "200":
                raise RuntimeError(f"h2load got HTTP status {status} from Triton")
            t0 = int(start_us) / 1e6 - self._wall_minus_mono
            calls.append((t0, t0 + int(duration_us) / 1e6))
        return calls


async def _load(url: str, body: bytes, concurrency: int, seconds: float) -> dict:
    import grpc

    channel = grpc.aio.insecure_channel(url, options=[("grpc.max_receive_message_length", 1 << 30)])
    call = channel.unary_unary(INFER_METHOD)  # bytes in, bytes out: no protobuf work per call
    calls: list[tuple[float, float]] = []
    end = float("inf")

    async def task() -> None:
        while time.monotonic() < end:
            t0 = time.monotonic()
            await call(body, timeout=30.0)
            calls.append((t0, time.monotonic()))

    try:
        await call(body, timeout=30.0)  # connected, model answering
        # the parent times its window from this line, so the load lasts `seconds` from here: a slow
        # first answer on a busy machine cannot end the load before the parent's window does
        end = time.monotonic() + seconds
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.gather(*(task() for _ in range(concurrency)))
        return {"calls": calls, "error": None}
    except Exception as e:  # reported to the parent, which raises it
        return {"calls": calls, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    finally:
        await channel.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body", required=True, help="a serialized ModelInferRequest (infer_request)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=6.0)
    a = p.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    print(json.dumps(asyncio.run(_load(a.url, Path(a.body).read_bytes(), a.concurrency, a.seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
