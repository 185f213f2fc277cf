"""The Triton benchmark's load generator: one asyncio gRPC client in a process of its own.

`concurrency` tasks each send requests of `batch` generator inputs back to back
over tritonclient's asyncio gRPC client, for `seconds`, and the process prints
a JSON line once the server has answered a first call, then one JSON line:
every call's start and end on the machine's monotonic clock
(comparable across processes), and any error. Python threads in the process
that reads the server's statistics cost a measurable share of 2 cores; one
event loop in its own process keeps the client out of what it measures.

    python -m infogan.bench.load --url 127.0.0.1:8001 --batch 1 --concurrency 16 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

from infogan.contract import CATEGORICAL, CONTINUOUS, GENERATOR_MODEL, IMAGE, NOISE, LatentTemplate, sample_latent


def _inputs(grpcaio, template: LatentTemplate, batch: int, seed: int) -> list:
    z = sample_latent(template, batch, np.random.default_rng(seed))
    out = []
    for name in (NOISE, CATEGORICAL, CONTINUOUS):
        tensor = grpcaio.InferInput(name, list(z[name].shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(z[name], np.float32))
        out.append(tensor)
    return out


async def _load(url: str, model: str, batch: int, concurrency: int, seconds: float) -> dict:
    import tritonclient.grpc.aio as grpcaio

    client = grpcaio.InferenceServerClient(url)
    template = LatentTemplate()
    outputs = [grpcaio.InferRequestedOutput(IMAGE)]
    calls: list[tuple[float, float]] = []
    requests = [_inputs(grpcaio, template, batch, i) for i in range(concurrency)]
    await client.infer(model, requests[0], outputs=outputs, client_timeout=30.0)  # connected, model answering
    print(json.dumps({"ready": True}), flush=True)
    end = time.monotonic() + seconds

    async def task(i: int) -> None:
        inputs = requests[i]
        while time.monotonic() < end:
            t0 = time.monotonic()
            await client.infer(model, inputs, outputs=outputs, client_timeout=30.0)
            calls.append((t0, time.monotonic()))

    try:
        await asyncio.gather(*(task(i) for i in range(concurrency)))
        return {"calls": calls, "error": None}
    except Exception as e:  # reported to the parent, which raises it
        return {"calls": calls, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--model", default=GENERATOR_MODEL)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=6.0)
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(_load(a.url, a.model, a.batch, a.concurrency, a.seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
