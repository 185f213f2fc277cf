"""What the explorer's panels show, as plain functions over the client API.

Pictures are uint8 at one pixel per image pixel; the page enlarges them
(CSS, nearest neighbour), which keeps each update to a few kB of PNG.

An Explorer holds one Generator and one Encoder (in-process onnxruntime, or
a Triton server) and turns the page's inputs into pictures and numbers. The
web page (explore.app) only wires these to widgets, so the tests and the
benchmark call exactly what the page calls. No torch, no gradio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infogan import defaults
from infogan.client import Encoder, Generator
from infogan.contract import (CATEGORICAL, CONTINUOUS, NOISE, TRAVERSAL_RANGE, TRAVERSAL_STEPS, InfoganError, sample_latent,
                              traversal_latent)
from infogan.files import make_grid, to_uint8

TRAVERSAL_ROWS = 4
GRID_BATCH = 64  # the page's images at first: an 8 x 8 grid
SLIDER_STEP = 0.05  # a continuous code's slider moves by this much
MAX_BATCH = 100


@dataclass
class Reading:
    """What the encoder reads from one image, ready for the page."""

    probabilities: dict[str, float]  # "digit 7 (category 3)" -> probability, every category
    label: str  # the most probable one's name ("7"), or its category when unmapped
    continuous: list[float]
    realness: float
    side_by_side: np.ndarray  # uint8 [H, W]: the input, then G's image from the read codes
    note: str


class Explorer:
    def __init__(self, gen: Generator, enc: Encoder, where: str):
        self.gen, self.enc, self.where = gen, enc, where
        self.template = gen.template
        if enc.template != gen.template:
            raise InfoganError(f"generator and encoder disagree on the latent template ({gen.info.source} vs "
                               f"{enc.info.source}): export both from one run")

    @classmethod
    def open(cls, repository: str | Path | None = None, url: str | None = None, timeout: float = defaults.TIMEOUT_S,
             threads: int | None = None) -> "Explorer":
        """On a running Triton at `url`, or else onnxruntime in this process on `repository`."""
        if url:
            gen = Generator.from_triton(url, timeout=timeout)
            try:
                enc = Encoder.from_triton(url, timeout=timeout)
            except BaseException:
                gen.close()
                raise
            return cls(gen, enc, f"Triton at {url} (gRPC)")
        repository = Path(repository or defaults.REPOSITORY)
        return cls(Generator.from_repository(repository, threads=threads),
                   Encoder.from_repository(repository, threads=threads), f"onnxruntime in this process, {repository}")

    def close(self) -> None:
        self.gen.close()
        self.enc.close()

    # ------------------------------------------------------------ generate panel

    def categories(self) -> list[tuple[str, int]]:
        """(what the page shows, category) for the category picker, in label order:
        "7 (purity 98%)" when the model maps categories to labels, else "category 3"."""
        info = self.gen.info
        k = self.template.categories
        if info.category_to_label is None:
            return [(f"category {c}", c) for c in range(k)]
        purity = info.category_purity
        order = sorted(range(k), key=lambda c: (info.category_to_label[c], c))
        out = []
        for c in order:
            text = info.label_name(info.category_to_label[c])
            text += f" (purity {100 * purity[c]:.0f}%)" if purity is not None else f" (category {c})"
            out.append((text, c))
        return out

    def _check(self, category, codes, seed, n) -> tuple[int, list[float], int, int]:
        k, m = self.template.categories, self.template.n_continuous
        given = codes
        try:
            codes = [float(v) for v in codes]
        except (TypeError, ValueError):
            codes = None
        if codes is None or len(codes) != m or not all(math.isfinite(v) for v in codes):
            raise InfoganError(f"codes={list(given)} are invalid: give {m} finite numbers")
        return (_whole("category", category, 0, k - 1, "is out of range: allowed are"), codes,
                _whole("seed", seed, 0, 2**32 - 1, "is invalid: give an integer in"),
                _whole("batch", n, 1, MAX_BATCH, "is invalid: give a number of images in"))

    def grid(self, category, codes, seed, n: int = GRID_BATCH) -> np.ndarray:
        """n images of one category at the given codes, noise from `seed`: uint8 [H, W]."""
        category, codes, seed, n = self._check(category, codes, seed, n)
        images = self.gen.generate(n, category=category, continuous=codes, seed=seed)
        return to_uint8(make_grid(images, math.ceil(math.sqrt(n))))

    def traversal(self, category, codes, seed, code: int = 0) -> np.ndarray:
        """The paper's Fig. 2 for one category: TRAVERSAL_ROWS noise vectors (the first
        of the grid's), columns sweeping code `code` over TRAVERSAL_RANGE, the other codes
        at their slider values. uint8 [H, W]."""
        category, codes, seed, _ = self._check(category, codes, seed, 1)
        # a widget may send 7.0; the contract refuses a code this model lacks, in its own words
        code = whole if (whole := _integer(code)) is not None else code
        # each row: one of the grid's first noise vectors (same seed, same draws), fixed along the sweep
        z = traversal_latent(self.template, code, np.linspace(*TRAVERSAL_RANGE, TRAVERSAL_STEPS, dtype=np.float32),
                             np.random.default_rng(seed), categories=[category] * TRAVERSAL_ROWS, continuous=codes)
        images = self.gen.run(z[NOISE], z[CATEGORICAL], z[CONTINUOUS])
        return to_uint8(make_grid(images, TRAVERSAL_STEPS))

    # ------------------------------------------------------------ encode panel

    def read(self, image: np.ndarray, note: str = "") -> Reading:
        """Q's reading of one [1, 28, 28] image, and G's image from what Q read
        (the most probable category, the code means, noise at its mean 0)."""
        e = self.enc.encode(np.asarray(image, np.float32)[None])
        info = self.enc.info
        k = self.template.categories
        names = [f"{info.label_name(d)} (category {c})" for c, d in enumerate(info.category_to_label)] \
            if info.category_to_label is not None else [f"category {c}" for c in range(k)]
        category = int(e.categories[0])
        label = info.label_name(int(e.labels[0])) if e.labels is not None else f"category {category}"
        z = sample_latent(self.template, 1, np.random.default_rng(0), np.array([category]), e.continuous[:1])
        rebuilt = self.gen.run(np.zeros_like(z[NOISE]), z[CATEGORICAL], z[CONTINUOUS])
        pair = np.concatenate([np.asarray(image, np.float32)[None], rebuilt], axis=0)
        return Reading(
            probabilities={names[c]: float(p) for c, p in enumerate(e.class_probs[0])},
            label=label,
            continuous=[float(v) for v in e.continuous[0]],
            realness=float(e.realness[0]),
            side_by_side=to_uint8(make_grid(pair, 2)),
            note=note,
        )

    # ------------------------------------------------------------ model panel

    def describe(self) -> str:
        """Markdown: which models, where they run, the latent template, training metrics."""
        t, info = self.template, self.gen.info
        lines = [f"**Runs on:** {self.where}"]
        for name, client in (("Generator", self.gen), ("Encoder", self.enc)):
            b = client.backend
            if getattr(b, "name", "") == "onnx":
                providers = ", ".join(b.session.get_providers())
                lines.append(f"**{name}:** `{b.path.parent.parent.name}` version {b.path.parent.name} ({providers})")
            else:
                lines.append(f"**{name}:** `{b.model}` version {b.version or 'newest served'} at {b.rpc.url}")
        lines.append(f"**Latent template:** {t.categories}-way categorical code, {t.n_continuous} continuous codes "
                     f"{', '.join(f'U({lo:g}, {hi:g})' for lo, hi in t.continuous)}, "
                     f"{t.noise_dim} noise variables U({-t.noise_scale:g}, {t.noise_scale:g})")
        purity = info.label_purity()
        if purity:
            lines.append("**Purity by label** (share of a category's images the evaluation judge reads as its label): "
                         + ", ".join(f"{info.label_name(d)}: {100 * p:.0f}%" for d, p in purity.items()))
        if info.metrics:
            shown = ", ".join(f"{k}: {_short(v)}" for k, v in sorted(info.metrics.items()) if not isinstance(v, (list, dict)))
            lines.append(f"**Training metrics:** {shown}")
        return "\n\n".join(lines)


def _integer(value) -> int | None:
    """A widget's whole number (7, 7.0, "7") as an int; None for anything else."""
    try:
        return int(value) if value is not None and float(value).is_integer() else None
    except (TypeError, ValueError, OverflowError):
        return None


def _whole(name: str, value, lo: int, hi: int, what: str) -> int:
    """An integer lo..hi from a widget's value, or one line naming the parameter."""
    n = _integer(value)
    if n is None or not lo <= n <= hi:
        raise InfoganError(f"{name}={value} {what} {lo}..{hi}")
    return n


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
