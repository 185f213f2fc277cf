"""What a run's categories hold, with the ink's brightness beside the classes.

For each of Q's categories of the run's evaluation images (its held-out slice or the test set, as
its config says): the images in it, its largest class and that class's count, the mean ink of those
real images and of G's images of the category (latents as the template says, a fixed seed), ink being
an image's mean intensity over its pixels above INK_LEVEL. With --picture, one row of real images per
(category, class) for the categories and classes asked. The models are the run's published ones (at a
checkpoint before the end, the live D-and-Q with batch norm measured on real training images, as
evaluation scores it). Labels are read here only, as in evaluation.

On garments it showed the three categories that pullovers, coats and shirts share to be plain bright
tops, printed tops and dark tops with bright outlines: appearance, not class (RESULTS.md).

    python -m infogan.training.category_ink_study runs/fm2/fashion-marg2-test-s0-t1 --picture tops.png --classes 2,4,6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, sample_latent
from infogan.files import make_grid, save_png, to_uint8
from infogan.training.data import dataset_spec
from infogan.training.evaluate import predict_categories
from infogan.training.runs import published_models

INK_LEVEL = 0.1  # pixels above this are the garment's or digit's ink, the rest background
GENERATED_PER_CATEGORY = 500
PER_ROW = 16


def ink(images: np.ndarray) -> np.ndarray:
    """[N, 1, H, W] images in [0, 1] -> each one's mean intensity over its pixels above INK_LEVEL (0 for none)."""
    flat = images.reshape(len(images), -1)
    inked = flat > INK_LEVEL
    return np.where(inked, flat, 0).sum(1) / np.maximum(inked.sum(1), 1)


def study(run: Path, seed: int = 0) -> dict:
    """{"run", "labels": the class names, "categories": a row per category, "images", "predicted", "truth"}."""
    cfg, g, d, images, labels = published_models(run)
    predicted = predict_categories(d, images)
    real_ink = ink(images.numpy())
    names = list(dataset_spec(cfg.dataset).label_names)
    rows = []
    for c in range(g.template.categories):
        z = sample_latent(g.template, GENERATED_PER_CATEGORY, np.random.default_rng(seed),
                          categories=np.full(GENERATED_PER_CATEGORY, c))
        with torch.no_grad():
            drawn = g(*(torch.from_numpy(z[k]) for k in (NOISE, CATEGORICAL, CONTINUOUS))).float().numpy()
        mine = predicted == c
        counts = np.bincount(labels[mine], minlength=len(names))
        g_ink = ink(drawn)
        rows.append({"category": c, "images": int(mine.sum()), "largest_class": names[int(counts.argmax())],
                     "largest_count": int(counts.max()), "counts": counts.tolist(),
                     "real_ink": float(real_ink[mine].mean()) if mine.any() else None,
                     "generated_ink": float(g_ink.mean()), "generated_ink_sd": float(g_ink.std())})
    return {"run": run.name, "labels": names, "categories": rows, "images": images, "predicted": predicted,
            "truth": labels}


def table(result: dict, classes: list[int]) -> str:
    names = result["labels"]
    head = " | ".join(names[k] for k in classes)
    lines = [f"| category | images | largest class | {head} | real ink | G's ink (sd) |",
             "|--:|--:|---|" + "--:|" * len(classes) + "--:|--:|"]
    for r in result["categories"]:
        shown = " | ".join(str(r["counts"][k]) for k in classes)
        real = "-" if r["real_ink"] is None else f"{r['real_ink']:.3f}"
        lines.append(f"| {r['category']} | {r['images']} | {r['largest_class']} ({r['largest_count']}) | {shown} | "
                     f"{real} | {r['generated_ink']:.3f} ({r['generated_ink_sd']:.3f}) |")
    return "\n".join(lines)


def picture(result: dict, categories: list[int], classes: list[int], out: Path) -> None:
    """A row of up to PER_ROW real images for each (category, class), categories in the order given."""
    images, predicted, truth = result["images"].numpy(), result["predicted"], result["truth"]
    rows = []
    for c in categories:
        for k in classes:
            chosen = images[(predicted == c) & (truth == k)][:PER_ROW]
            full = np.zeros((PER_ROW, 1, 28, 28), np.float32)
            full[:len(chosen)] = chosen
            rows.append(make_grid(full, PER_ROW, pad=2, pad_value=0.5))
        rows.append(np.full((4, rows[-1].shape[1]), 0.5, np.float32))  # a gutter between categories
    save_png(to_uint8(np.concatenate(rows[:-1], 0)), out, scale=2)


def categories_led_by(result: dict, classes: list[int]) -> list[int]:
    """The categories whose largest class is among `classes`; refused when there are none (a picture without rows)."""
    led = [r["category"] for r in result["categories"] if result["labels"].index(r["largest_class"]) in classes]
    if not led:
        raise InfoganError(f"classes={','.join(map(str, classes))!r} is no category's largest class, so the picture "
                           "would have no rows: name the categories with --categories")
    return led


def _indices(text: str, name: str, upper: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise InfoganError(f"{name}={text!r} is invalid: must be comma-separated whole numbers") from None
    bad = [v for v in values if not 0 <= v < upper]
    if bad:
        raise InfoganError(f"{name}={text!r} is invalid: each must be from 0 to {upper - 1}")
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder")
    parser.add_argument("--classes", default=None, help="classes shown, by label index (e.g. 2,4,6; default: all)")
    parser.add_argument("--picture", type=Path, default=None, help="write rows of real images per (category, class) here")
    parser.add_argument("--categories", default=None,
                        help="categories in the picture (default: those whose largest class is among --classes)")
    args = parser.parse_args(argv)
    try:
        result = study(args.run)
        n_labels, k = len(result["labels"]), len(result["categories"])
        classes = _indices(args.classes, "classes", n_labels) if args.classes else list(range(n_labels))
        print(table(result, classes))
        if args.picture:
            categories = (_indices(args.categories, "categories", k) if args.categories else
                          categories_led_by(result, classes))
            picture(result, categories, classes, args.picture)
            print(f"picture: {args.picture}")
    except InfoganError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
