"""Which real images the published encoder misreads, beside what the published generator draws
for their class: a picture of where Q's categories and G's repertoire part.

Q learns its categories from G's images (and from real images' agreement with their own
transforms), so a real style that G never draws in a class's category has no category of its
own, and Q reads it as the nearest one. Each of the most frequent confusions gets two rows: the
real images of the true class that Q reads as another, then G's draws for the true class's
category (latents as the template says, a fixed seed). Labels are used here only, as in evaluation.

The images are those the run was evaluated on: its held-out slice when it trained with --holdout,
else the test set (the first eval_subset of them where its config says so).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from infogan import defaults
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, sample_latent
from infogan.files import make_grid, save_png, to_uint8, write_atomic
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.data import UNRECORDED_DATASET, dataset_spec, evaluation_split, evaluation_words
from infogan.training.evaluate import cluster_accuracy, predict_categories
from infogan.training.images import as_float_images
from infogan.training.runs import resolve_run

MISREAD_FILE = "misread.png"
MAX_SET_BYTES = 4 << 20  # a shared set of every one of 70,000 images is under 1 MB
MAX_PAIRS = 20  # confusions in one picture
MAX_PER_ROW = 40  # images in one row
UNASSIGNED = "a category of no label"  # with more categories than labels, what the spare ones read as


def confusions(labels: np.ndarray, read_as: np.ndarray, top: int) -> list[tuple[int, int, int]]:
    """The `top` most frequent (true label, label read, images) with read != true, most first
    (ties: the smaller true label, then the smaller label read; -1: a category no label was given)."""
    wrong = labels != read_as
    pairs, counts = np.unique(np.stack([labels[wrong], read_as[wrong]], 1), axis=0, return_counts=True)
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], *pairs[i]))
    return [(int(pairs[i][0]), int(pairs[i][1]), int(counts[i])) for i in order[:top]]


def named(shown: list[tuple[int, int, int]], names: list[str]) -> list[dict]:
    """confusions' triples as {true, read_as, images} with the labels' names."""
    return [{"true": names[t], "read_as": names[r] if r >= 0 else UNASSIGNED, "images": n} for t, r, n in shown]


def misread(run: str | Path = defaults.LATEST_RUN, data_dir: str | Path = defaults.DATA_DIR,
            out: str | Path | None = None, pairs: int = defaults.MISREAD_PAIRS, per_row: int = defaults.MISREAD_PER_ROW,
            seed: int = 0) -> dict:
    """Write the picture (default: the run's misread.png) and return what it shows: the evaluation
    set, Q's accuracy on it, and the confusions drawn, each as {true, read_as, images}."""
    check_sizes(pairs, per_row)
    run = resolve_run(run)
    ckpt = load_checkpoint(run / defaults.CHECKPOINT_FILE)
    split = evaluated_on(ckpt)
    dataset, holdout = split[0], split[1]
    g, d = build_models(ckpt)
    images, labels = evaluation_images(data_dir, split)
    shown = draw(g, d, images, labels, list(dataset_spec(dataset).label_names),
                 Path(out) if out is not None else run / MISREAD_FILE, pairs, per_row, seed)
    return {"run": str(run), "images": evaluation_words(holdout)[1], "n_images": len(labels), **shown}


def evaluated_on(ckpt: dict) -> tuple[str, int, int]:
    """The images a checkpoint's run was evaluated on, as its config names them: (dataset, holdout,
    eval_subset)."""
    config = ckpt.get("config", {})
    return config.get("dataset", UNRECORDED_DATASET), int(config.get("holdout", 0)), int(config.get("eval_subset", 0))


def evaluation_images(data_dir: str | Path, split: tuple[str, int, int]) -> tuple[torch.Tensor, np.ndarray]:
    """evaluated_on's images as [N, 1, 28, 28] floats in [0, 1], and their labels."""
    _, images_u8, labels = evaluation_split(data_dir, split[0], split[1], eval_subset=split[2])
    return as_float_images(images_u8), labels


def check_sizes(pairs: int, per_row: int) -> None:
    if not 1 <= pairs <= MAX_PAIRS:
        raise InfoganError(f"pairs={pairs} is invalid: must be from 1 to {MAX_PAIRS}")
    if not 1 <= per_row <= MAX_PER_ROW:
        raise InfoganError(f"per_row={per_row} is invalid: must be from 1 to {MAX_PER_ROW}")


@torch.no_grad()
def draw(g: torch.nn.Module, d: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, names: list[str],
         out: Path, pairs: int = defaults.MISREAD_PAIRS, per_row: int = defaults.MISREAD_PER_ROW,
         seed: int = 0) -> dict:
    """The picture for a generator and an encoder as they are ([N, 1, 28, 28] images in [0, 1] on D's
    device, G on any): Q's accuracy, the picture written (None when nothing is misread) and the
    confusions drawn. Training draws it at its end with the models it publishes; misread() with a
    checkpoint's."""
    check_sizes(pairs, per_row)
    k = g.template.categories
    predicted = predict_categories(d, images)
    scored = cluster_accuracy(predicted, labels, k, len(names))
    category_to_label = scored["category_to_label"]
    read_as = np.array(category_to_label)[predicted]
    shown = confusions(labels, read_as, pairs)
    on_cpu = images.cpu()

    rows = []
    for true, read, _ in shown:
        rows.append(_row(on_cpu[torch.from_numpy((labels == true) & (read_as == read))][:per_row].numpy(), per_row))
        category = category_to_label.index(true) if true in category_to_label else None
        rows.append(_row(_draws(g, category, per_row, seed), per_row))
        rows.append(np.full((4, rows[-1].shape[1]), 0.5, np.float32))  # a gutter between confusions
    if rows:
        save_png(to_uint8(np.concatenate(rows[:-1], 0)), out, scale=2)
    return {"accuracy": scored["accuracy"], "picture": str(out) if rows else None, "confusions": named(shown, names)}


def _row(images: np.ndarray, per_row: int) -> np.ndarray:
    """Up to per_row [1, 28, 28] images in one row, padded with black to per_row."""
    full = np.zeros((per_row, 1, 28, 28), np.float32)
    full[:len(images)] = images
    return make_grid(full, per_row, pad=2, pad_value=0.5)


def _draws(g: torch.nn.Module, category: int | None, n: int, seed: int) -> np.ndarray:
    """n of G's images for `category` (none where no category stands for the class)."""
    if category is None:
        return np.zeros((0, 1, 28, 28), np.float32)
    z = sample_latent(g.template, n, np.random.default_rng(seed), categories=np.full(n, category))
    device, was_training = next(g.parameters()).device, g.training
    g.eval()
    drawn = g(*(torch.from_numpy(z[name]).to(device) for name in (NOISE, CATEGORICAL, CONTINUOUS)))
    g.train(was_training)
    return drawn.float().cpu().numpy()


SHARED_FILE = "misread_shared.png"


def shared(runs: list[str | Path], data_dir: str | Path = defaults.DATA_DIR, out: str | Path | None = None,
           per_row: int = defaults.MISREAD_PER_ROW, top: int = 5, against: str | Path | None = None) -> dict:
    """Which evaluation images every run's published encoder misreads: the errors no recipe among
    the runs fixes, as against each run's own. The runs must have been evaluated on the same images
    (dataset, held-out slice, eval_subset). Writes a picture of the images every run misreads, by
    true class (default: misread_shared.png in the first run), and the set itself beside it (the
    picture's name with .json: which images, their labels, the runs), so later runs can be judged
    against it when these runs are gone. Returns each run's accuracy and misread count (with
    against, a set written so: also how many of its images each run reads right), the images every
    run misreads, their classes and their most frequent readings."""
    if len(runs) < 2:
        raise InfoganError(f"runs={len(runs)} is invalid: must be at least 2 run folders")
    check_sizes(1, per_row)
    known = read_shared_set(against) if against is not None else None
    folders = [resolve_run(run) for run in runs]
    split, images, labels, names, readings, scores = None, None, None, [], [], []
    for run in folders:
        ckpt = load_checkpoint(run / defaults.CHECKPOINT_FILE)
        key = evaluated_on(ckpt)
        if split is None:
            split = key
            images, labels = evaluation_images(data_dir, key)
            names = list(dataset_spec(key[0]).label_names)
            if known is not None:
                check_shared_set(known, against, split, labels)
        elif key != split:
            raise InfoganError(f"run={run} is invalid: evaluated on other images than {folders[0]} "
                               f"(dataset, holdout, eval_subset: {key} against {split})")
        g, d = build_models(ckpt)
        with torch.no_grad():
            predicted = predict_categories(d, images)
        scored = cluster_accuracy(predicted, labels, g.template.categories, len(names))
        readings.append(np.array(scored["category_to_label"])[predicted])
        scores.append(scored["accuracy"])
    read_as = np.stack(readings)  # [runs, images]
    wrong = read_as != labels
    every = np.flatnonzero(wrong.all(0))
    every = every[np.argsort(labels[every], kind="stable")]
    # each such image's most frequent reading over the runs (-1: a category of no label)
    common = np.array([np.bincount(read_as[:, i] + 1, minlength=len(names) + 1).argmax() - 1 for i in every], np.int64)
    picture = Path(out) if out is not None else folders[0] / SHARED_FILE
    if len(every):
        grid = images[torch.from_numpy(every)].numpy()
        save_png(to_uint8(make_grid(grid, per_row, pad=2, pad_value=0.5)), picture, scale=2)
    listed = write_atomic(picture.with_suffix(".json"), json.dumps(
        {"images": dict(zip(("dataset", "holdout", "eval_subset"), split)), "indices": every.tolist(),
         "labels": labels[every].tolist(), "runs": [str(run) for run in folders]}, indent=1) + "\n")
    read_right = None if known is None else ~wrong[:, known["indices"]]  # [runs, the set's images]
    return {"runs": [{"run": str(run), "accuracy": acc, "misread": int(w.sum()),
                      **({} if read_right is None else {"known_read_right": int(read_right[i].sum())})}
                     for i, (run, acc, w) in enumerate(zip(folders, scores, wrong))],
            "known": None if known is None else len(known["indices"]), "set": str(listed),
            "images": evaluation_words(split[1])[1], "n_images": len(labels), "every": len(every),
            "every_by_class": {names[c]: int(n) for c, n in enumerate(np.bincount(labels[every], minlength=len(names))) if n},
            "confusions": named(confusions(labels[every], common, top), names),
            "picture": str(picture) if len(every) else None}


def read_shared_set(path: str | Path) -> dict:
    """A set misread-shared wrote, checked as untrusted input: {images: {dataset, holdout,
    eval_subset}, indices: [distinct ints >= 0], labels: [an int per index]}; anything else is refused
    in one line naming the file."""
    path = Path(path)

    def refuse(why: str) -> InfoganError:
        return InfoganError(f"against={path} is invalid: must be a set misread-shared wrote ({why})")
    try:
        if path.stat().st_size > MAX_SET_BYTES:
            raise refuse(f"{path.stat().st_size:,} bytes, more than {MAX_SET_BYTES:,}")
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise refuse(type(e).__name__ + (f": {e.strerror}" if isinstance(e, OSError) else "")) from None
    images = found.get("images") if isinstance(found, dict) else None
    if not (isinstance(images, dict) and isinstance(images.get("dataset"), str)
            and all(type(images.get(k)) is int for k in ("holdout", "eval_subset"))):
        raise refuse("no images: {dataset, holdout, eval_subset}")
    indices, labels = found.get("indices"), found.get("labels")
    if not (isinstance(indices, list) and isinstance(labels, list) and len(indices) == len(labels)
            and all(type(v) is int and v >= 0 for v in indices + labels) and len(set(indices)) == len(indices)):
        raise refuse("indices and labels must be lists of as many ints >= 0, the indices distinct")
    return {"split": (images["dataset"], images["holdout"], images["eval_subset"]),
            "indices": np.array(indices, np.int64), "labels": np.array(labels, np.int64)}


def check_shared_set(known: dict, path: str | Path, split: tuple[str, int, int], labels: np.ndarray) -> None:
    """A read set must list the images the runs were evaluated on, by index and label."""
    if known["split"] != split:
        raise InfoganError(f"against={path} is invalid: it lists images of (dataset, holdout, eval_subset) "
                           f"{known['split']}, the runs were evaluated on {split}")
    idx = known["indices"]
    if len(idx) and (idx.max() >= len(labels) or not np.array_equal(labels[idx], known["labels"])):
        raise InfoganError(f"against={path} is invalid: its indices and labels are not those of the "
                           f"{len(labels):,} images the runs were evaluated on")
