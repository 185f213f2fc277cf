"""The one definition of the latent template and the tensor contract.

Training, export, the Triton model configs and the clients all import this
module; no tensor name, latent layout or model name is typed anywhere else.
It needs numpy only (no torch), so apps that embed generation stay light.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np


class InfoganError(ValueError):
    """A user-facing error: its message is one line naming the parameter, the
    value and what is allowed. The CLI prints it without a traceback."""


# ---------------------------------------------------------------- latent template


@dataclass(frozen=True)
class LatentTemplate:
    """Which structured codes the generator takes beside its noise.

    categorical: the size of each categorical code (one one-hot block each).
    continuous:  the (low, high) range of each continuous code, sampled uniformly.
    noise_dim:   the number of incompressible noise variables z ~ U(-s, s).
    noise_scale: s; 1 in the paper. A smaller scale makes the codes weigh more
                 in G's input (ClusterGAN's idea), see the README's recipe notes.
    The paper's MNIST template is the default: Cat(10), two U(-1, 1), 62 noise.
    """

    categorical: tuple[int, ...] = (10,)
    continuous: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (-1.0, 1.0))
    noise_dim: int = 62
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        # normalise lists (from JSON or the CLI) to tuples so templates compare equal
        object.__setattr__(self, "categorical", tuple(int(k) for k in self.categorical))
        object.__setattr__(
            self, "continuous", tuple((float(lo), float(hi)) for lo, hi in self.continuous)
        )
        object.__setattr__(self, "noise_dim", int(self.noise_dim))
        object.__setattr__(self, "noise_scale", float(self.noise_scale))
        self.validate()

    def validate(self) -> None:
        if self.noise_dim < 1:
            raise InfoganError(f"noise_dim={self.noise_dim} is invalid: must be >= 1")
        if not (math.isfinite(self.noise_scale) and self.noise_scale > 0):
            raise InfoganError(f"noise_scale={self.noise_scale} is invalid: must be a finite number > 0")
        if not self.categorical and not self.continuous:
            raise InfoganError("latent template has no codes: give at least one categorical or continuous code")
        for i, k in enumerate(self.categorical):
            if k < 2:
                raise InfoganError(f"categorical[{i}]={k} is invalid: a categorical code needs size >= 2")
        for i, (lo, hi) in enumerate(self.continuous):
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise InfoganError(
                    f"continuous[{i}]=({lo}, {hi}) is invalid: need finite low < high"
                )

    @property
    def categorical_dim(self) -> int:
        return sum(self.categorical)

    @property
    def n_continuous(self) -> int:
        return len(self.continuous)

    @property
    def input_dim(self) -> int:
        return self.noise_dim + self.categorical_dim + self.n_continuous

    @property
    def categorical_slices(self) -> list[slice]:
        """Where each categorical code's block sits in the `categorical` tensor."""
        out, start = [], 0
        for k in self.categorical:
            out.append(slice(start, start + k))
            start += k
        return out

    def entropy(self) -> float:
        """H(c) of the categorical codes in nats: the ceiling of the L_I bound."""
        return float(sum(math.log(k) for k in self.categorical))

    def to_dict(self) -> dict:
        return {
            "categorical": list(self.categorical),
            "continuous": [list(r) for r in self.continuous],
            "noise_dim": self.noise_dim,
            "noise_scale": self.noise_scale,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "LatentTemplate":
        unknown = set(d) - {"categorical", "continuous", "noise_dim", "noise_scale"}
        if unknown:
            raise InfoganError(f"latent template has unknown keys {sorted(unknown)}: allowed are categorical, continuous, noise_dim, noise_scale")
        return cls(
            categorical=tuple(d.get("categorical", ())),
            continuous=tuple(tuple(r) for r in d.get("continuous", ())),
            noise_dim=d.get("noise_dim", 0),
            noise_scale=d.get("noise_scale", 1.0),
        )

    @classmethod
    def from_json(cls, text: str) -> "LatentTemplate":
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError) as e:
            raise InfoganError(f"latent template JSON is malformed: {e}") from None


# ---------------------------------------------------------------- latent sampling


def sample_latent(
    template: LatentTemplate,
    n: int,
    rng: np.random.Generator,
    categories: np.ndarray | None = None,
    continuous: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sample n latent vectors as the generator's three float32 inputs.

    categories: optional int array [n, n_categorical] (or [n] for one code) fixing
                the category of each code; sampled uniformly otherwise.
    continuous: optional float array [n, n_continuous] fixing the continuous codes;
                sampled uniformly from each code's range otherwise.
    Returns {NOISE: [n, noise_dim], CATEGORICAL: [n, sum sizes] one-hot,
    CONTINUOUS: [n, n_continuous]} plus "category_index": [n, n_categorical] ints.
    """
    if n < 1:
        raise InfoganError(f"n={n} is invalid: the batch must hold at least 1 sample")
    s = template.noise_scale
    noise = rng.uniform(-s, s, size=(n, template.noise_dim)).astype(np.float32)

    n_cat = len(template.categorical)
    if categories is None:
        idx = np.stack([rng.integers(0, k, size=n) for k in template.categorical], axis=1) if n_cat else np.zeros((n, 0), np.int64)
    else:
        idx = np.asarray(categories, dtype=np.int64).reshape(n, n_cat) if n_cat else np.zeros((n, 0), np.int64)
        for j, k in enumerate(template.categorical):
            bad = (idx[:, j] < 0) | (idx[:, j] >= k)
            if bad.any():
                raise InfoganError(f"category={int(idx[bad, j][0])} is out of range: code {j} allows 0..{k - 1}")
    onehot = np.zeros((n, template.categorical_dim), np.float32)
    for j, sl in enumerate(template.categorical_slices):
        onehot[np.arange(n), sl.start + idx[:, j]] = 1.0

    if continuous is None:
        lows = np.array([lo for lo, _ in template.continuous], np.float32)
        highs = np.array([hi for _, hi in template.continuous], np.float32)
        cont = rng.uniform(lows, highs, size=(n, template.n_continuous)).astype(np.float32)
    else:
        cont = np.asarray(continuous, dtype=np.float32).reshape(n, template.n_continuous)
        if not np.isfinite(cont).all():
            raise InfoganError("continuous values must be finite: got NaN or infinity")
    return {NOISE: noise, CATEGORICAL: onehot, CONTINUOUS: cont, "category_index": idx}


# ---------------------------------------------------------------- tensor contract

IMAGE_SHAPE = (1, 28, 28)  # C, H, W; pixel values in [0, 1]

GENERATOR_MODEL = "infogan_generator"
ENCODER_MODEL = "infogan_encoder"

# generator inputs / outputs
NOISE = "noise"
CATEGORICAL = "categorical"
CONTINUOUS = "continuous"
IMAGE = "image"
# encoder outputs (its input is IMAGE)
CATEGORICAL_PROBS = "categorical_probs"
CONTINUOUS_MEAN = "continuous_mean"
REALNESS = "realness"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # per sample: the batch axis is left out
    dtype: str = "FP32"  # Triton's spelling; numpy float32
    low: float | None = None  # value range, where one holds
    high: float | None = None


def generator_inputs(t: LatentTemplate) -> list[TensorSpec]:
    return [
        TensorSpec(NOISE, (t.noise_dim,)),
        TensorSpec(CATEGORICAL, (t.categorical_dim,), low=0.0, high=1.0),
        TensorSpec(CONTINUOUS, (t.n_continuous,)),
    ]


def generator_outputs(t: LatentTemplate) -> list[TensorSpec]:
    return [TensorSpec(IMAGE, IMAGE_SHAPE, low=0.0, high=1.0)]


def encoder_inputs(t: LatentTemplate) -> list[TensorSpec]:
    return [TensorSpec(IMAGE, IMAGE_SHAPE, low=0.0, high=1.0)]


def encoder_outputs(t: LatentTemplate) -> list[TensorSpec]:
    # Q models continuous codes as Gaussians with a fixed std of 1 (as the
    # original code does), so only the means are an output.
    return [
        TensorSpec(CATEGORICAL_PROBS, (t.categorical_dim,), low=0.0, high=1.0),
        TensorSpec(CONTINUOUS_MEAN, (t.n_continuous,)),
        TensorSpec(REALNESS, (1,), low=0.0, high=1.0),
    ]


# ---------------------------------------------------------------- ONNX metadata keys
# Each exported ONNX file carries its contract so an app holding only the file
# can use it correctly.

META_TEMPLATE = "infogan.latent_template"  # LatentTemplate.to_json()
META_CATEGORY_TO_DIGIT = "infogan.category_to_digit"  # JSON list: category -> label index
META_LABEL_NAMES = "infogan.label_names"  # JSON list of the dataset's label names
# JSON list: for each category, the share of its generated images that the
# evaluation judge reads as its mapped digit (how much to trust "a 7")
META_CATEGORY_PURITY = "infogan.category_purity"
# below this purity a category is a mix of digits, and the client says so
PURITY_WARNING = 0.9
META_METRICS = "infogan.metrics"  # JSON object of headline metrics
META_CHECKPOINT_SHA256 = "infogan.checkpoint_sha256"
META_VERSION = "infogan.version"
META_PRECISION = "infogan.precision"  # fp32 | fp16 | int8
