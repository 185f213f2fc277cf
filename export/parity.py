"""onnxruntime against PyTorch on fixed inputs: export refuses to publish on a mismatch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch

from infogan.contract import (
    CATEGORICAL,
    CONTINUOUS,
    IMAGE,
    NOISE,
    InfoganError,
    LatentTemplate,
    encoder_outputs,
    generator_outputs,
    sample_latent,
)
from infogan.sessions import open_session
from infogan.training.model import Discriminator, Encoder, Generator

PARITY_BATCHES = (1, 7, 256)
PARITY_ATOL = 1e-4


@dataclass(frozen=True)
class ParityReport:
    model: str
    worst: float  # the largest absolute difference over every output and batch
    tensor: str  # where it was found
    batch: int

    def ok(self, atol: float = PARITY_ATOL) -> bool:
        return self.worst <= atol


def session(model_bytes: bytes, threads: int = 0) -> ort.InferenceSession:
    return open_session(model_bytes, threads or None, gpu=False)


def generator_feeds(template: LatentTemplate, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    feeds = sample_latent(template, n, np.random.default_rng(seed))
    return {k: feeds[k] for k in (NOISE, CATEGORICAL, CONTINUOUS)}


def encoder_feeds(g: Generator, template: LatentTemplate, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Half generated digits (realistic activations), half uniform noise images (the edges)."""
    rng = np.random.default_rng(seed + 1)
    with torch.no_grad():
        fake = g(*[torch.from_numpy(v) for v in generator_feeds(template, n, seed).values()]).numpy()
    noise = rng.uniform(0.0, 1.0, size=fake.shape).astype(np.float32)
    return {IMAGE: np.where(np.arange(n)[:, None, None, None] % 2 == 0, fake, noise).astype(np.float32)}


def _compare(name: str, sess: ort.InferenceSession, torch_fn, feeds_fn, out_names: list[str]) -> ParityReport:
    worst = (-1.0, "", 0)
    for n in PARITY_BATCHES:
        feeds = feeds_fn(n)
        got = sess.run(out_names, feeds)
        with torch.no_grad():
            want = torch_fn(*[torch.from_numpy(v) for v in feeds.values()])
        want = want if isinstance(want, tuple) else (want,)
        for tensor, a, b in zip(out_names, got, want):
            b = b.numpy()
            if a.shape != b.shape:
                return ParityReport(name, float("inf"), f"{tensor} shape {a.shape} != {b.shape}", n)
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
            if not np.isfinite(a).all():
                diff = float("inf")
            if diff > worst[0]:
                worst = (diff, tensor, n)
    return ParityReport(name, *worst)


def generator_parity(model_bytes: bytes, g: Generator, template: LatentTemplate) -> ParityReport:
    names = [s.name for s in generator_outputs(template)]
    return _compare("generator", session(model_bytes), g.eval(), lambda n: generator_feeds(template, n), names)


def encoder_parity(model_bytes: bytes, d: Discriminator, g: Generator, template: LatentTemplate) -> ParityReport:
    names = [s.name for s in encoder_outputs(template)]
    enc = Encoder(d.eval()).eval()
    return _compare("encoder", session(model_bytes), enc, lambda n: encoder_feeds(g, template, n), names)


def require(report: ParityReport, model_name: str, atol: float = PARITY_ATOL) -> None:
    if not report.ok(atol):
        raise InfoganError(
            f"{model_name}={report.worst:.3g} max |onnxruntime - PyTorch| on {report.tensor} at batch {report.batch} "
            f"is invalid: at most {atol:g} is allowed; nothing was published"
        )
