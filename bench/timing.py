"""Timing helpers shared by the sections: timed blocks, interleaved rounds, percentiles.

Every measurement is a block of back-to-back calls under a time budget. Cases
that are compared with each other run interleaved in rounds (each round in a
new shuffled order), so a burst from another process hits every case
alike; the ratios are the figures that count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SETTLE_S = 0.03  # pause before each timed block: the previous case's spinning threads go to sleep

@dataclass
class Timing:
    """Calls of one case at one batch size, accumulated over rounds."""

    batch: int
    seconds: list[float] = field(default_factory=list)  # per call
    wall_s: float = 0.0  # the blocks' wall time, loop overhead included

    @property
    def calls(self) -> int:
        return len(self.seconds)

    @property
    def images_per_s(self) -> float:
        return self.batch * self.calls / self.wall_s if self.wall_s else 0.0

    def summary(self) -> dict:
        ms = np.asarray(self.seconds) * 1e3
        return {
            "batch": self.batch,
            "calls": self.calls,
            "images_per_s": self.images_per_s,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
        }


def percentile(values, q: float) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(np.percentile(values, q)) if values.size else None


def timed_block(fn: Callable[[], object], timing: Timing, budget_s: float, min_calls: int = 3) -> None:
    """Call fn back to back for budget_s seconds (at least min_calls times), adding to timing."""
    start = time.perf_counter()
    end = start + budget_s
    n = 0
    while n < min_calls or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        timing.seconds.append(time.perf_counter() - t0)
        n += 1
    timing.wall_s += time.perf_counter() - start


def interleaved(cases: dict[str, Callable[[], object]], batch: int, budget_s: float, rounds: int = 3,
                warmup: int = 2, min_calls: int = 2, into: dict[str, Timing] | None = None) -> dict[str, Timing]:
    """Each case warmed up, then timed in `rounds` blocks of budget_s / rounds, interleaved;
    added to the timings `into` where given.

    A neighbour's threads keep spinning a while after its last call (OpenMP in
    PyTorch, onnxruntime's pool), taking cores from whichever case comes next. So
    every block starts after a short pause, and each round runs the cases in a new
    (seeded) order, so no case always follows the same neighbour."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    out = into if into is not None else {name: Timing(batch) for name in cases}
    order = np.random.default_rng(len(cases) * 1000 + batch)
    names = list(cases)
    for _ in range(rounds):
        for i in order.permutation(len(names)):
            time.sleep(SETTLE_S)
            timed_block(cases[names[i]], out[names[i]], budget_s / rounds, min_calls)
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def torch_matmul_gflops(seconds: float, n: int = 1024, device: str = "cpu", dtype=None) -> float:
    """The rate of one n x n matmul in torch, repeated for `seconds`: the engine's ceiling."""
    import torch

    dtype = dtype or torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9
