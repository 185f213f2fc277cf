"""The up-convolution rewrite (export.upconv) against the exporter's plain graph.

    infogan bench --only upconv

Milliseconds per batch of the generator's raw onnxruntime session and useful
GFLOP/s (the network's multiply-adds x 2, not counting the zeros a rewrite may
add), next to the rate of one large MatMul on the same session settings: the
machine's matmul rate.
"""

from __future__ import annotations

import time

import numpy as np

from infogan.bench.generation import ort_matmul
from infogan.contract import LatentTemplate
from infogan.export import onnx_export
from infogan.export.parity import generator_feeds, session
from infogan.export.upconv import rewrite_upconvs
from infogan.training.model import Generator


def generator_flops(g: Generator, batch: int) -> float:
    """2 x multiply-adds of the generator's layers at this batch size."""
    import torch

    macs = 0
    for m in g.modules():
        if isinstance(m, torch.nn.Linear):
            macs += m.in_features * m.out_features
    h = 7
    for m in g.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            macs += h * h * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            h *= 2
    return 2.0 * macs * batch


def _timer(sess, feeds: dict[str, np.ndarray]):
    """A function that times one run of a warmed-up session."""
    for _ in range(3):
        sess.run(None, feeds)

    def once() -> float:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        return time.perf_counter() - t0

    return once


def compare(g: Generator, template: LatentTemplate, batch: int = 256, rounds: int = 8, per_round: int = 3,
            extra: dict[str, bytes] | None = None) -> dict[str, float]:
    """GFLOP/s of the matmul reference, the plain graph and the rewritten one (and of any
    extra generator graphs given), measured in interleaved rounds: the machine is shared,
    so a neighbour's burst lands on every case alike."""
    feeds = generator_feeds(template, batch)
    plain = onnx_export.plain_generator_onnx(g, template)
    flops = generator_flops(g, batch)
    graphs = {"plain": plain.SerializeToString(), "phase": rewrite_upconvs(plain).SerializeToString(), **(extra or {})}
    mm_session, mm_feeds, mm_flops = ort_matmul(12544, 1024, 1024)
    cases = {"matmul": (_timer(mm_session, mm_feeds), mm_flops),
             **{name: (_timer(session(b), feeds), flops) for name, b in graphs.items()}}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, (once, _) in cases.items():
            times[name].extend(once() for _ in range(per_round))
    out = {"batch": batch}
    for name, (_, work) in cases.items():
        s = float(np.median(times[name]))
        out[f"{name}_ms"], out[f"{name}_gflops"] = s * 1e3, work / s / 1e9
    return out


def run(quick: bool = False, batch: int = 256) -> dict:
    """The bench section: random weights of the default template (speed does not depend on them)."""
    template = LatentTemplate()
    g = Generator(template).eval()
    return compare(g, template, batch, rounds=3 if quick else 8)

