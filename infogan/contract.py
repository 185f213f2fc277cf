"""The one definition of the latent template and the tensor contract.

Training, export, the Triton model configs and the clients all import this
module; no tensor name, latent layout or model name is typed anywhere else.
It needs numpy only (no torch), so apps that embed generation stay light.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class InfoganError(ValueError):
    """A user-facing error: its message is one line naming the parameter, the
    value and what is allowed. The CLI prints it without a traceback."""


# ---------------------------------------------------------------- latent template

# A template arrives from files a server or client did not write (a checkpoint, a
# model's metadata, a served config), and its sizes become array widths: bounds far
# beyond any real model keep an absurd one from becoming an absurd allocation.
MAX_NOISE_DIM = 4096
MAX_CATEGORIES = 1000
MAX_CONTINUOUS_CODES = 64
MAX_LATENT_MAGNITUDE = 1e6  # continuous ranges and noise_scale; far inside float32
# the paper's noise U(-1, 1); also what a template saved before noise_scale existed was trained with
PAPER_NOISE_SCALE = 1.0


@dataclass(frozen=True)
class LatentTemplate:
    """Which structured codes the generator takes beside its noise.

    categorical: (K,), the size of the one categorical code (kept a one-element
                 list in JSON, as every exported model and checkpoint carries it).
    continuous:  the (low, high) range of each continuous code, sampled uniformly.
    noise_dim:   the number of incompressible noise variables z ~ U(-s, s).
    noise_scale: s; 1 in the paper. A smaller scale makes the codes weigh more
                 in G's input (ClusterGAN's idea), see the README's recipe notes.
    The paper's MNIST template is the default: Cat(10), two U(-1, 1), 62 noise.
    """

    categorical: tuple[int, ...] = (10,)
    continuous: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (-1.0, 1.0))
    noise_dim: int = 62
    noise_scale: float = PAPER_NOISE_SCALE

    def __post_init__(self) -> None:
        # normalise lists (from JSON or the CLI) to tuples so templates compare equal
        try:
            object.__setattr__(self, "categorical", tuple(int(k) for k in self.categorical))
            object.__setattr__(
                self, "continuous", tuple((float(lo), float(hi)) for lo, hi in self.continuous)
            )
            object.__setattr__(self, "noise_dim", int(self.noise_dim))
            object.__setattr__(self, "noise_scale", float(self.noise_scale))
        except (TypeError, ValueError, OverflowError) as e:
            # a template read from a file: wrong types must be one line too, not a traceback
            raise InfoganError(f"latent template is malformed: {e}; expected {LatentTemplate().to_json()}") from None
        self.validate()

    def validate(self) -> None:
        if not 1 <= self.noise_dim <= MAX_NOISE_DIM:
            raise InfoganError(f"noise_dim={self.noise_dim} is invalid: must be >= 1 and <= {MAX_NOISE_DIM}")
        if not (math.isfinite(self.noise_scale) and 0 < self.noise_scale <= MAX_LATENT_MAGNITUDE):
            raise InfoganError(f"noise_scale={self.noise_scale} is invalid: must be a finite number > 0 "
                               f"and <= {MAX_LATENT_MAGNITUDE:g}")
        if len(self.categorical) != 1:
            raise InfoganError(f"categorical={list(self.categorical[:3])}{'...' if len(self.categorical) > 3 else ''} "
                               "is invalid: the template takes exactly one categorical code, as the paper's "
                               "MNIST set-up has (e.g. [10])")
        if self.categories < 2:
            raise InfoganError(f"categorical={list(self.categorical)} is invalid: the categorical code needs size >= 2")
        if self.categories > MAX_CATEGORIES:
            raise InfoganError(f"categorical={list(self.categorical)} is invalid: the categorical code may have "
                               f"at most {MAX_CATEGORIES} categories")
        if self.n_continuous > MAX_CONTINUOUS_CODES:
            raise InfoganError(f"continuous is invalid: it has {self.n_continuous} codes, "
                               f"at most {MAX_CONTINUOUS_CODES} are allowed")
        for i, (lo, hi) in enumerate(self.continuous):
            if not (-MAX_LATENT_MAGNITUDE <= lo < hi <= MAX_LATENT_MAGNITUDE):  # NaN fails every comparison
                raise InfoganError(
                    f"continuous[{i}]=({lo}, {hi}) is invalid: need finite low < high, "
                    f"each within -{MAX_LATENT_MAGNITUDE:g}..{MAX_LATENT_MAGNITUDE:g}"
                )

    @property
    def categories(self) -> int:
        """K, the size of the one categorical code."""
        return self.categorical[0]

    @property
    def categorical_dim(self) -> int:
        """Width of the one-hot `categorical` input (= K)."""
        return self.categories

    @property
    def n_continuous(self) -> int:
        return len(self.continuous)

    @property
    def input_dim(self) -> int:
        return self.noise_dim + self.categorical_dim + self.n_continuous

    def entropy(self) -> float:
        """H(c) of the categorical code in nats, ln K: the ceiling of the L_I bound."""
        return math.log(self.categories)

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
        if not isinstance(d, dict):
            raise InfoganError("latent template must be an object with keys categorical, continuous, noise_dim, "
                               f"noise_scale, not {type(d).__name__}")
        unknown = set(d) - {"categorical", "continuous", "noise_dim", "noise_scale"}
        if unknown:
            raise InfoganError(f"latent template has unknown keys {sorted(unknown)}: allowed are categorical, continuous, noise_dim, noise_scale")
        return cls(
            categorical=tuple(d.get("categorical", ())),
            continuous=tuple(tuple(r) for r in d.get("continuous", ())),
            noise_dim=d.get("noise_dim", 0),
            noise_scale=d.get("noise_scale", PAPER_NOISE_SCALE),
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

    categories: optional int array [n] fixing each sample's category; uniform otherwise.
    continuous: optional float array [n, n_continuous] fixing the continuous codes;
                sampled uniformly from each code's range otherwise.
    Returns {NOISE: [n, noise_dim], CATEGORICAL: [n, K] one-hot, CONTINUOUS: [n, n_continuous]};
    the category of each sample is CATEGORICAL's argmax.
    """
    if n < 1:
        raise InfoganError(f"n={n} is invalid: the batch must hold at least 1 sample")
    noise = _noise(template, n, rng)

    if categories is None:
        idx = rng.integers(0, template.categories, size=n)
    else:
        idx = np.asarray(categories, dtype=np.int64).reshape(n)
    onehot = _one_hot(template, idx)

    if continuous is None:
        lows = np.array([lo for lo, _ in template.continuous], np.float32)
        highs = np.array([hi for _, hi in template.continuous], np.float32)
        cont = rng.uniform(lows, highs, size=(n, template.n_continuous)).astype(np.float32)
    else:
        cont = np.asarray(continuous, dtype=np.float32).reshape(n, template.n_continuous)
        if not np.isfinite(cont).all():
            raise InfoganError("continuous values must be finite: got NaN or infinity")
    return {NOISE: noise, CATEGORICAL: onehot, CONTINUOUS: cont}


# the paper's Fig. 2 sweep of a continuous code: twice the training range, in this many columns
# (the client's `traverse` and the explorer's sliders and traversal rows)
TRAVERSAL_RANGE = (-2.0, 2.0)
TRAVERSAL_STEPS = 9


def traversal_latent(
    template: LatentTemplate,
    code: int | None,
    values,
    rng: np.random.Generator,
    categories=None,
    continuous=None,
    shared_noise: bool = False,
) -> dict[str, np.ndarray]:
    """The latent of the paper's Fig. 2 traversal: a row per entry of `categories`, a
    column per entry of `values`; along a row only continuous code `code` moves.

    code:         the continuous code swept: column j holds values[j]. None sweeps nothing
                  (for a template without continuous codes: the columns repeat).
    values:       1-D, the swept code's value in each column.
    rng:          draws the noise, U(-s, s): one vector per row, the same ones (and in the
                  same order) as sample_latent with this rng draws for its first rows.
    categories:   the category of each row; one row per category, 0..K-1, by default.
    continuous:   the values of the other continuous codes ([n_continuous], the same in
                  every row); 0 by default.
    shared_noise: one noise vector (the first) for every row, so rows differ only by category.
    Returns the generator's three float32 inputs for rows * len(values) samples,
    row-major (sample r * len(values) + j is row r, column j), keyed as sample_latent's.
    """
    m = template.n_continuous
    if code is not None and not (isinstance(code, (int, np.integer)) and 0 <= code < m):
        raise InfoganError(f"code={code} is out of range: this model has continuous codes 0..{m - 1}" if m else
                           f"code={code} is invalid: the template has no continuous codes, give code=None")
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise InfoganError(f"values={values.tolist()} are invalid: give a 1-D list of finite numbers, one per column")
    idx = np.arange(template.categories) if categories is None else np.asarray(categories, dtype=np.int64).reshape(-1)
    rows, cols = len(idx), len(values)
    if rows == 0:
        raise InfoganError("categories=[] is invalid: the traversal needs at least 1 row")
    fixed = np.zeros(m, np.float32)
    if continuous is not None:
        fixed = np.asarray(continuous, dtype=np.float32)
        if fixed.shape != (m,) or not np.isfinite(fixed).all():
            raise InfoganError(f"continuous={fixed.tolist()} is invalid: give {m} finite numbers")

    noise = _noise(template, 1 if shared_noise else rows, rng)
    cont = np.tile(fixed, (rows * cols, 1))
    if code is not None:
        cont[:, code] = np.tile(values, rows)
    return {
        NOISE: np.repeat(noise, cols * (rows if shared_noise else 1), axis=0),
        CATEGORICAL: np.repeat(_one_hot(template, idx), cols, axis=0),
        CONTINUOUS: cont,
    }


def _noise(template: LatentTemplate, n: int, rng: np.random.Generator) -> np.ndarray:
    s = template.noise_scale
    return rng.uniform(-s, s, size=(n, template.noise_dim)).astype(np.float32)


def _one_hot(template: LatentTemplate, idx: np.ndarray) -> np.ndarray:
    k = template.categories
    bad = (idx < 0) | (idx >= k)
    if bad.any():
        raise InfoganError(f"category={int(idx[bad][0])} is out of range: allowed are 0..{k - 1}")
    onehot = np.zeros((len(idx), k), np.float32)
    onehot[np.arange(len(idx)), idx] = 1.0
    return onehot


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


# ---------------------------------------------------------------- model repository layout
# Triton's: <repository>/<model>/config.pbtxt and <repository>/<model>/<version>/model.onnx,
# versions numbered 1, 2, ...; export writes it, the server and the client read it.

MODEL_FILE = "model.onnx"
# beside the generator's model.onnx: the same network as the exporter's plain graph. The
# published model.onnx rewrites up-convolutions as phase convolutions, which onnxruntime's
# CPU kernels run faster and its CUDA kernels slower (half the images/s at batch 256 on
# an H200); sessions on a GPU load this file where it exists.
GPU_MODEL_FILE = "model.gpu.onnx"
CONFIG_FILE = "config.pbtxt"
# the Triton platform each exported model's config names; the server maps it to the project's
# onnxruntime backend and refuses a model that names another
PLATFORM = "onnxruntime_onnx"
# the ONNX files' IR version and operator set: IR 8 loads in onnxruntime >= 1.14, i.e. in older
# Triton containers too (the installed onnx would write its newest, which those refuse)
ONNX_IR_VERSION = 8
ONNX_OPSET = 18


def model_versions(model_dir: str | Path) -> list[int]:
    """The numbered version folders of one model, oldest first ([] when there are none)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


# ---------------------------------------------------------------- ONNX metadata keys
# Each exported ONNX file carries its contract so an app holding only the file
# can use it correctly.

META_TEMPLATE = "infogan.latent_template"  # LatentTemplate.to_json()
META_CATEGORY_TO_LABEL = "infogan.category_to_label"  # JSON list: category -> label index
META_LABEL_NAMES = "infogan.label_names"  # JSON list of the dataset's label names
# JSON list: for each category, the share of its generated images that the
# evaluation judge reads as its mapped label (how much to trust "a 7")
META_CATEGORY_PURITY = "infogan.category_purity"
# below this purity a category is a mix of labels, and the client says so
PURITY_WARNING = 0.9
META_METRICS = "infogan.metrics"  # JSON object of headline metrics
META_CHECKPOINT_SHA256 = "infogan.checkpoint_sha256"
META_VERSION = "infogan.version"
META_PRECISION = "infogan.precision"  # fp32 | fp16 | int8
