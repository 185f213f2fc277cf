"""The Q-head as an unsupervised classifier: labels are used here only, never in training."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from infogan import defaults
from infogan.files import write_atomic
from infogan.training.augment import random_affine
from infogan.training.average import CALIBRATION_BATCH
from infogan.training.images import EVAL_BATCH
from infogan.training.judge import generation_quality
from infogan.training.model import Discriminator, Generator


@torch.no_grad()
def calibrate_batchnorm(d: Discriminator, real: torch.Tensor, batch_size: int = CALIBRATION_BATCH) -> Discriminator:
    """A copy of D whose batch-norm statistics are those of real images alone.

    During training D's running statistics average real and generated batches;
    the encoder is used on real images, so it gets statistics measured on them
    (a cumulative average over `real`, in train mode, weights untouched).
    """
    d = copy.deepcopy(d)
    bns = [m for m in d.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    d.train()
    for i in range(0, len(real), batch_size):
        d(real[i:i + batch_size])
    for m in bns:
        m.momentum = 0.1
    return d.eval()


@torch.no_grad()
def predict_categories(d: Discriminator, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Q's most probable category for each image, in eval mode."""
    was_training = d.training
    d.eval()
    k = d.q_head.template.categories
    out = []
    for i in range(0, len(images), batch_size):
        _, cat_logits, _ = d(images[i:i + batch_size])
        out.append(cat_logits[:, :k].argmax(1))
    d.train(was_training)
    return torch.cat(out).cpu().numpy()


def transform_agreement(d: Discriminator, images: torch.Tensor, pred: np.ndarray, seed: int = 0) -> dict:
    """Label-free: how often Q gives an image's small affine transform the same
    category, overall and for the least stable category. A digit split over two
    categories by its style flips between them under such transforms."""
    k = d.q_head.template.categories
    moved = random_affine(images, torch.Generator().manual_seed(seed))
    same = predict_categories(d, moved) == pred
    per_category = [float(same[pred == c].mean()) if (pred == c).any() else 0.0 for c in range(k)]
    return {"transform_agreement": float(same.mean()), "transform_agreement_min": min(per_category)}


def cluster_accuracy(pred: np.ndarray, labels: np.ndarray, n_categories: int, n_labels: int) -> dict:
    """Assign categories to labels one-to-one (Hungarian method, maximum matches).

    confusion[label, category] counts images; category_to_label[c] is the label
    category c stands for (-1 where there are more categories than labels).
    """
    confusion = np.zeros((n_labels, n_categories), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    rows, cols = linear_sum_assignment(-confusion)
    category_to_label = [-1] * n_categories
    for r, c in zip(rows, cols):
        category_to_label[c] = int(r)
    correct = int(confusion[rows, cols].sum())
    # a digit "has a category of its own" when its assigned category's images are mostly that digit
    owned = sum(1 for r, c in zip(rows, cols) if confusion[:, c].sum() and confusion[r, c] / confusion[:, c].sum() > 0.5)
    return {
        "accuracy": correct / len(labels),
        "category_to_label": category_to_label,
        "confusion": confusion.tolist(),
        "labels_with_own_category": owned,
        "category_share_max": float(confusion.sum(0).max() / len(labels)),
    }


def evaluate(d: Discriminator, images: torch.Tensor, labels: np.ndarray, label_names: list[str],
             calibration_images: torch.Tensor | None = None) -> tuple[dict, Discriminator]:
    """Accuracy, mapping and confusion of Q on labelled images; returns the D used.

    With calibration_images, D's batch norm is recalibrated on those real
    images first (the encoder that export publishes); labels never touch it.
    """
    if calibration_images is not None:
        d = calibrate_batchnorm(d, calibration_images)
    pred = predict_categories(d, images)
    result = cluster_accuracy(pred, labels, d.q_head.template.categories, len(label_names))
    result.update(transform_agreement(d, images, pred))
    result["label_names"] = list(label_names)
    result["n_images"] = int(len(labels))
    return result, d


def evaluate_models(g: Generator, d: Discriminator, images: torch.Tensor, labels: np.ndarray, label_names: list[str],
                    dataset: str, step: int, images_seen: int, calibration_images: torch.Tensor | None = None,
                    judge: torch.nn.Module | None = None) -> tuple[dict, Discriminator]:
    """The one evaluation of a run's models, during training and after it: Q as a classifier
    (evaluate), where the run stands, and with a judge, the generator half. Returns the D used."""
    ev, d_used = evaluate(d, images, labels, label_names, calibration_images)
    ev.update({"dataset": dataset, "step": step, "images_seen": images_seen})
    if judge is not None:
        ev["generation"] = generation_quality(g, g.template, ev["category_to_label"], judge)
    return ev, d_used


def save_evaluation(run: Path, ev: dict) -> Path:
    """evaluation.json of a run, written atomically (export reads it)."""
    return write_atomic(run / defaults.EVALUATION_FILE, json.dumps(ev, indent=2))
