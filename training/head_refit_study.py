"""Is Q's head or its features the limit? Label-free ways of reading a finished run's encoder
differently, scored beside Q's own reading of the run's evaluation images.

For each run, D-and-Q as export publishes them (runs.published_models) and these readings:
  - Q: Q's categorical head, as evaluation scores it;
  - Q over 9 views: Q's probabilities averaged over the image and 8 fixed small transforms of it
    (shifted 1 px each way along each axis, turned +-10 degrees, scaled 0.9 and 1.1);
  - nearest category mean: the mean of Q's hidden features (the 128 the categorical head reads) over
    the run's training images in each of Q's categories, and each image in the category of the
    nearest mean;
  - linear discriminant: the same means with one covariance shared by every category (a linear head
    on the same features, fitted to Q's categories of the training images).
and, as a ceiling only, the linear discriminant fitted to the training images' labels instead of Q's
categories, on Q's hidden features and on the trunk's 1024 that they are computed from: how well a
linear head could read the labels from those features (the linear probe of representation learning);
it is never published and selects nothing.
No other reading sees a label: the refits are fitted to Q's own categories of the training images, so a
category keeps its index, and with it the code of G's that it stands for. Labels only score, with the
one-to-one assignment evaluation uses. Label-free readings that gain little beside a ceiling close to Q
say the features bound Q's accuracy; a ceiling far above Q says the categories training formed do.

    python -m infogan.training.head_refit_study runs/ho5/default-s0 runs/ho5/default-s1
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from infogan.training.augment import COLUMNS, DEGREES, SCALE_SPREAD, SHIFT_PX, random_affine
from infogan.training.data import dataset_spec, labelled_split
from infogan.training.evaluate import cluster_accuracy
from infogan.training.images import EVAL_BATCH, as_float_images
from infogan.training.model import Discriminator
from infogan.training.runs import published_models, study_command

# (degrees, scale, shift x px, shift y px) of each view; the first is the image itself
VIEWS = ((0, 1, 0, 0), (0, 1, 1, 0), (0, 1, -1, 0), (0, 1, 0, 1), (0, 1, 0, -1),
         (10, 1, 0, 0), (-10, 1, 0, 0), (0, 0.9, 0, 0), (0, 1.1, 0, 0))
CEILING = "linear discriminant fitted to the labels (a ceiling)"
TRUNK_CEILING = "the same on the trunk's 1024 features (a ceiling)"
COVARIANCE_RIDGE = 1e-3  # added to the shared covariance's diagonal (features are of order 1)


def view_draws(n: int, degrees: float, scale: float, dx: float, dy: float) -> torch.Tensor:
    """The [n, COLUMNS] uniforms that make random_affine apply one fixed transform to every image."""
    u = [(degrees / DEGREES + 1) / 2, (scale - 1 + SCALE_SPREAD) / (2 * SCALE_SPREAD),
         (dx / SHIFT_PX + 1) / 2, (dy / SHIFT_PX + 1) / 2]
    if not all(0 <= v <= 1 for v in u):
        raise ValueError(f"view {(degrees, scale, dx, dy)} is outside the small transform's ranges")
    return torch.tensor(u, dtype=torch.float32).expand(n, COLUMNS)


@torch.no_grad()
def encoder_features(d: Discriminator, images: torch.Tensor, batch_size: int = EVAL_BATCH
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The trunk's features (N x 1024) and Q's hidden features (N x 128), both float64, and Q's
    categorical logits (N x K), in eval mode."""
    d.eval()
    trunk, hidden, logits = [], [], []
    for i in range(0, len(images), batch_size):
        t = d.trunk(images[i:i + batch_size])
        h = d.q_head.hidden(t)
        trunk.append(t.double())
        hidden.append(h.double())
        logits.append(d.q_head.categorical(h).float())
    return torch.cat(trunk), torch.cat(hidden), torch.cat(logits)


@torch.no_grad()
def over_views(d: Discriminator, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The category of Q's probabilities averaged over VIEWS, in eval mode."""
    d.eval()
    total = 0
    for view in VIEWS:
        moved = random_affine(images, view_draws(len(images), *view))
        total = total + torch.cat([torch.softmax(d(moved[i:i + batch_size])[1].float(), 1)
                                   for i in range(0, len(moved), batch_size)])
    return total.argmax(1).numpy()


def category_means(features: torch.Tensor, categories: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K x F means of each category's features, K shares of the images): a category with no image
    has share 0 and a zero mean, and no reading below ever chooses it."""
    index = torch.from_numpy(categories)
    counts = torch.bincount(index, minlength=k).to(features.dtype)
    sums = torch.zeros(k, features.shape[1], dtype=features.dtype).index_add_(0, index, features)
    return sums / counts.clamp(min=1)[:, None], counts / len(categories)


def nearest_mean(means: torch.Tensor, share: torch.Tensor, features: torch.Tensor) -> np.ndarray:
    distance = torch.cdist(features, means)
    distance[:, share == 0] = math.inf
    return distance.argmin(1).numpy()


def linear_discriminant(means: torch.Tensor, share: torch.Tensor, features: torch.Tensor, categories: np.ndarray
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(F x K weights, K biases) of the Gaussian classifier with the categories' means, one covariance
    shared by all and the categories' shares as priors (log 0: an empty category is never chosen)."""
    centred = features - means[torch.from_numpy(categories)]
    covariance = centred.T @ centred / len(features) + COVARIANCE_RIDGE * torch.eye(features.shape[1], dtype=features.dtype)
    weights = torch.linalg.solve(covariance, means.T)
    return weights, -0.5 * (means * weights.T).sum(1) + torch.log(share)


def labelled_ceiling(train_features: torch.Tensor, train_labels: np.ndarray, evaluated: torch.Tensor, k: int
                     ) -> np.ndarray:
    """The label the linear discriminant fitted to the training images' labels reads for each image."""
    means, share = category_means(train_features, train_labels, k)
    weights, bias = linear_discriminant(means, share, train_features, train_labels)
    return (evaluated @ weights + bias).argmax(1).numpy()


def study(run: Path) -> list[dict]:
    """One row per reading of the run's published encoder (Q's own first)."""
    cfg, _, d, images, labels = published_models(run)
    train_u8, train_labels, _, _ = labelled_split(cfg.data_dir, cfg.dataset, cfg.holdout, cfg.train_subset,
                                                  cfg.eval_subset)
    k = d.q_head.template.categorical_dim
    train_trunk, train_hidden, train_logits = encoder_features(d, as_float_images(train_u8))
    train_categories = train_logits.argmax(1).numpy()
    trunk, hidden, logits = encoder_features(d, images)
    means, share = category_means(train_hidden, train_categories, k)
    weights, bias = linear_discriminant(means, share, train_hidden, train_categories)
    n_labels = len(dataset_spec(cfg.dataset).label_names)
    q = logits.argmax(1).numpy()
    readings = {"Q": q, "Q over 9 views": over_views(d, images), "nearest category mean": nearest_mean(means, share, hidden),
                "linear discriminant": (hidden @ weights + bias).argmax(1).numpy(),
                CEILING: labelled_ceiling(train_hidden, train_labels, hidden, max(k, n_labels)),
                TRUNK_CEILING: labelled_ceiling(train_trunk, train_labels, trunk, max(k, n_labels))}
    rows = []
    for name, pred in readings.items():
        scored = cluster_accuracy(pred, labels, max(k, n_labels), n_labels)
        # a ceiling's numbers are labels, not categories: comparing them with Q's would mean nothing
        agrees = None if name in (CEILING, TRUNK_CEILING) else float(np.mean(pred == q))
        rows.append({"run": run.name, "reading": name, "accuracy": scored["accuracy"], "labels": n_labels,
                     "classes": scored["labels_with_own_category"], "agrees_with_q": agrees})
    return rows


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f}%"


def table(rows: list[dict]) -> str:
    lines = ["| run | reading | accuracy | gain on Q (points) | classes with own category | same category as Q |",
             "|---|---|--:|--:|--:|--:|"]
    q = {r["run"]: r["accuracy"] for r in rows if r["reading"] == "Q"}
    lines += [f"| {r['run']} | {r['reading']} | {100 * r['accuracy']:.2f}% | {100 * (r['accuracy'] - q[r['run']]):+.2f} | "
              f"{r['classes']}/{r['labels']} | {_percent(r['agrees_with_q'])} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    study_command(__doc__.splitlines()[0], study, table, "finished run folders", argv)


if __name__ == "__main__":
    main()
