"""The Python API for apps: one Generator and one Encoder, the same calls on
either backend (in-process onnxruntime, or a Triton server over gRPC).

    gen = Generator.from_repository("model_repository")   # or .from_triton("127.0.0.1:8001")
    images = gen.generate(16, label=7, continuous=[1.5, 0.0], seed=0)  # [16, 1, 28, 28] in [0, 1]
    enc = Encoder.from_repository("model_repository")
    result = enc.encode(images)                             # result.labels, result.confidence, ...

Every argument is checked here, before anything reaches a backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infogan import defaults
from infogan.client.info import DEFAULT_DEVICE, DEFAULT_REPOSITORY, DEFAULT_TIMEOUT_S, DEFAULT_URL, ModelInfo, warn_mixed_pair
from infogan.contract import (
    CATEGORICAL,
    CATEGORICAL_PROBS,
    CONTINUOUS,
    CONTINUOUS_MEAN,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    IMAGE,
    IMAGE_SHAPE,
    NOISE,
    REALNESS,
    InfoganError,
    LatentTemplate,
    sample_latent,
)
from infogan.files import from_uint8


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _open_repository(path, model, version, threads, device):
    from infogan.client.onnx_backend import OnnxBackend, newest_version

    return OnnxBackend(newest_version(path, model, version), threads, device)


def _open_onnx(path, threads, device):
    from infogan.client.onnx_backend import OnnxBackend

    return OnnxBackend(path, threads, device)


def _open_triton(url, model, version, timeout, retries, in_flight):
    from infogan.client.triton_backend import TritonBackend

    return TritonBackend(url, model, version, timeout, retries, in_flight)


def _check_contract(backend, inputs: list[str], outputs: list[str]) -> None:
    missing = [n for n in inputs if n not in backend.input_names] + [n for n in outputs if n not in backend.output_names]
    if missing:
        raise InfoganError(
            f"model={backend.info.source} lacks the contract's tensors {missing}: "
            f"it has inputs {backend.input_names} and outputs {backend.output_names}"
        )


class _Client:
    """What Generator and Encoder share: a backend, its contract, and closing."""

    INPUTS: list[str] = []
    OUTPUTS: list[str] = []
    MODEL = ""

    def __init__(self, backend):
        _check_contract(backend, self.INPUTS, self.OUTPUTS)
        self.backend = backend
        self.info: ModelInfo = backend.info
        self.template: LatentTemplate = backend.info.template

    @classmethod
    def from_repository(cls, path: str | Path = DEFAULT_REPOSITORY, model: str | None = None, version: int | None = None,
                        threads: int | None = None, device: str = DEFAULT_DEVICE):
        """onnxruntime in this process on <path>/<model>/<newest version>/model.onnx, on `device`
        (auto: the GPU where onnxruntime has the CUDA provider, else the CPU; cpu; cuda; cuda:N).
        Warns (info.MixedPair, one line) when its generator/encoder pair comes from another checkpoint."""
        client = cls(_open_repository(path, model or cls.MODEL, version, threads, device))
        warn_mixed_pair(path, client.backend.path)
        return client

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None, device: str = DEFAULT_DEVICE):
        return cls(_open_onnx(path, threads, device))

    @classmethod
    def from_triton(cls, url: str = DEFAULT_URL, model: str | None = None, version: int | None = None,
                    timeout: float = DEFAULT_TIMEOUT_S, retries: int = defaults.RETRIES, in_flight: int = defaults.IN_FLIGHT):
        """A Triton server over gRPC. `timeout` is the deadline in seconds of each request
        (at most the model's max_batch_size samples), retries of UNAVAILABLE included;
        `in_flight` requests are sent at once when a batch is split."""
        return cls(_open_triton(url, model or cls.MODEL, version, timeout, retries, in_flight))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _float_batch(name: str, x, width: int) -> np.ndarray:
    """[N, width] float32, C-contiguous, finite; no copy when it already is one."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise InfoganError(f"{name} has dtype {a.dtype}: give real numbers")
    if a.ndim != 2 or a.shape[1] != width:
        raise InfoganError(f"{name} has shape {tuple(a.shape)}: the model takes [N, {width}]")
    if a.shape[0] == 0:
        raise InfoganError(f"{name} holds a batch of 0: give at least 1 sample")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InfoganError(f"{name} must be finite: got NaN or infinity")
    return a


class Generator(_Client):
    MODEL = GENERATOR_MODEL
    INPUTS = [NOISE, CATEGORICAL, CONTINUOUS]
    OUTPUTS = [IMAGE]

    def latent(self, n: int, category: int | None = None, label: int | None = None,
               continuous=None, seed: int | None = None) -> dict[str, np.ndarray]:
        """The generator's inputs for n samples: a fixed category (or the one the
        metadata maps to `label`, the digit on MNIST), fixed continuous codes
        (n_continuous values for all, or [n, n_continuous]), the rest sampled."""
        t = self.template
        if not _is_int(n) or n < 1:
            raise InfoganError(f"n={n} is invalid: the batch must hold at least 1 sample")
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise InfoganError(f"seed={seed} is invalid: give a non-negative integer")
        if category is not None and label is not None:
            raise InfoganError(f"category={category} and label={label} are both given: give one of them")
        if label is not None:
            if not _is_int(label):
                raise InfoganError(f"label={label!r} is invalid: give an integer label (the digit on MNIST)")
            category = self.info.category_of_label(int(label))
        categories = None
        if category is not None:
            k = t.categories
            if not _is_int(category) or not 0 <= category < k:
                raise InfoganError(f"category={category} is out of range: allowed are 0..{k - 1}")
            categories = np.full(n, int(category))
        cont = None
        if continuous is not None:
            cont = self._continuous(continuous, n)
        return sample_latent(t, n, np.random.default_rng(seed), categories, cont)

    def _continuous(self, values, n: int) -> np.ndarray:
        m = self.template.n_continuous
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InfoganError(f"continuous={values!r} is invalid: give {m} numbers") from None
        if a.ndim == 1 and a.shape[0] == m:
            a = np.broadcast_to(a, (n, m))
        elif a.shape != (n, m):
            got = a.shape[0] if a.ndim == 1 else a.shape
            raise InfoganError(f"continuous has {got} values: the model takes {m} (or an [n, {m}] array)")
        if not np.isfinite(a).all():
            raise InfoganError(f"continuous={a[~np.isfinite(a)][0]} is invalid: values must be finite")
        return a

    def generate(self, n: int = 16, category: int | None = None, label: int | None = None,
                 continuous=None, seed: int | None = None) -> np.ndarray:
        """n images [n, 1, 28, 28] in [0, 1]."""
        z = self.latent(n, category, label, continuous, seed)
        return self.run(z[NOISE], z[CATEGORICAL], z[CONTINUOUS])

    def run(self, noise, categorical, continuous) -> np.ndarray:
        """The raw call: explicit [N, noise_dim], [N, K] one-hot, [N, n_continuous] arrays."""
        t = self.template
        feeds = {
            NOISE: _float_batch(NOISE, noise, t.noise_dim),
            CATEGORICAL: _float_batch(CATEGORICAL, categorical, t.categorical_dim),
            CONTINUOUS: _float_batch(CONTINUOUS, continuous, t.n_continuous),
        }
        sizes = {k: v.shape[0] for k, v in feeds.items()}
        if len(set(sizes.values())) != 1:
            raise InfoganError(f"batch sizes differ between inputs {sizes}: give the same N for all three")
        return self.backend.infer(feeds)[IMAGE]


@dataclass
class Encoding:
    """What the encoder says about N images.

    categories:    [N] the most probable category of each image
    confidence:    [N] that category's probability
    labels:        [N] the label evaluation matched to that category (the digit on MNIST), or None
    class_probs:   [N, K] every category's probability
    continuous:    [N, n_continuous] Q's means of the continuous codes
    realness:      [N] D's probability that the image is real
    """

    categories: np.ndarray
    confidence: np.ndarray
    labels: np.ndarray | None
    class_probs: np.ndarray
    continuous: np.ndarray
    realness: np.ndarray
    label_names: tuple[str, ...] | None = None

    def rows(self) -> list[dict]:
        """One JSON-ready dict per image."""
        out = []
        for i in range(len(self.categories)):
            row = {"category": int(self.categories[i]), "probability": float(self.confidence[i])}
            if self.labels is not None:
                label = int(self.labels[i])
                row["label"] = label
                if self.label_names is not None and label < len(self.label_names):
                    row["label_name"] = self.label_names[label]
            row["continuous"] = [float(v) for v in self.continuous[i]]
            row["realness"] = float(self.realness[i])
            out.append(row)
        return out


def check_images(images) -> np.ndarray:
    """[N, 1, 28, 28] float32 in [0, 1]; [N, 28, 28] is accepted, uint8 is scaled by 1/255."""
    a = np.asarray(images)
    if a.dtype == np.uint8:
        a = from_uint8(a)
    elif a.dtype.kind != "f":
        raise InfoganError(f"images have dtype {a.dtype}: give float pixels in [0, 1] or uint8 in 0..255")
    c, h, w = IMAGE_SHAPE
    if a.ndim == 3 and a.shape[1:] == (h, w):
        a = a[:, None]
    if a.ndim != 4 or a.shape[1:] != IMAGE_SHAPE:
        raise InfoganError(f"images have shape {tuple(a.shape)}: the encoder takes [N, {c}, {h}, {w}] (or [N, {h}, {w}])")
    if a.shape[0] == 0:
        raise InfoganError("images hold a batch of 0: give at least 1 image")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InfoganError("images must be finite: got NaN or infinity")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise InfoganError(f"images hold values in [{lo:g}, {hi:g}]: pixels must lie in [0, 1]")
    return a


class Encoder(_Client):
    MODEL = ENCODER_MODEL
    INPUTS = [IMAGE]
    OUTPUTS = [CATEGORICAL_PROBS, CONTINUOUS_MEAN, REALNESS]

    def run(self, images) -> dict[str, np.ndarray]:
        """The raw call: the contract's outputs by name."""
        return self.backend.infer({IMAGE: check_images(images)})

    def encode(self, images) -> Encoding:
        out = self.run(images)
        probs = out[CATEGORICAL_PROBS]
        categories = probs.argmax(axis=1)
        labels = self.info.labels_of(categories)
        return Encoding(
            categories=categories,
            confidence=probs[np.arange(len(probs)), categories],
            labels=np.asarray(labels) if labels is not None else None,
            class_probs=probs,
            continuous=out[CONTINUOUS_MEAN],
            realness=out[REALNESS].reshape(-1),
            label_names=self.info.label_names,
        )
