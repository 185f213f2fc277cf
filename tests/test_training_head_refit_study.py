"""The head-refit study reads a run's published encoder in several label-free ways beside Q's own
reading: Q's row is exactly what the run's evaluation scored, a view with no transform is the image
itself, the refits never choose an empty category, and only the ceilings see labels."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from infogan.training import head_refit_study as h
from infogan.training.augment import random_affine
from infogan.training.config import resolve
from infogan.training.data import evaluation_split, labelled_split
from infogan.training.train import train


def test_q_reads_as_the_runs_evaluation_and_every_reading_is_scored(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), judge=False)
    run = train(cfg, progress=False)
    rows = h.study(run)
    assert [r["reading"] for r in rows] == ["Q", "Q over 9 views", "nearest category mean", "linear discriminant",
                                            h.CEILING, h.TRUNK_CEILING]
    assert rows[0]["accuracy"] == json.loads((run / "evaluation.json").read_text())["accuracy"]
    assert rows[0]["agrees_with_q"] == 1.0
    assert [r["agrees_with_q"] is None for r in rows] == [False] * 4 + [True] * 2
    assert all(0 < r["accuracy"] <= 1 and r["labels"] == 10 for r in rows)
    done = subprocess.run([sys.executable, "-m", "infogan.training.head_refit_study", str(run)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.count(f"| {run.name} |") == len(rows)
    assert f"| {run.name} | Q | {100 * rows[0]['accuracy']:.2f}% | +0.00 |" in done.stdout


def test_the_first_view_is_the_image_itself_and_a_shift_moves_it_one_pixel():
    images = torch.rand(3, 1, 28, 28)
    assert h.VIEWS[0] == (0, 1, 0, 0)
    assert torch.allclose(random_affine(images, h.view_draws(3, *h.VIEWS[0])), images, atol=1e-5)
    moved = random_affine(images, h.view_draws(3, 0, 1, 1, 0))  # the grid reads each pixel one to the right
    assert torch.allclose(moved[..., :-1], images[..., 1:], atol=1e-5)
    with pytest.raises(ValueError, match="outside the small transform's ranges"):
        h.view_draws(3, 30, 1, 0, 0)


def test_the_refits_follow_the_categories_they_are_fitted_to_and_never_choose_an_empty_one():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])
    categories = np.repeat([0, 2, 3], 200)  # category 1 is empty
    points = torch.from_numpy(centres[np.repeat([0, 1, 2], 200)] + rng.normal(0, 0.5, (600, 3)))
    means, share = h.category_means(points, categories, 4)
    assert share.tolist() == [1 / 3, 0, 1 / 3, 1 / 3]
    assert torch.allclose(means[[0, 2, 3]], torch.stack([points[i * 200:(i + 1) * 200].mean(0) for i in range(3)]))
    assert (h.nearest_mean(means, share, points) == categories).all()
    weights, bias = h.linear_discriminant(means, share, points, categories)
    assert bias[1] == -np.inf
    assert ((points @ weights + bias).argmax(1).numpy() == categories).all()
    # a point at the empty category's (zero) mean still goes to a category with images
    assert h.nearest_mean(means, share, torch.zeros(1, 3, dtype=torch.float64))[0] != 1


def test_the_labelled_split_is_the_evaluation_split_with_the_training_labels(data_dir):
    train_u8, eval_u8, eval_labels = evaluation_split(data_dir, "mnist", holdout=1000, train_subset=500, eval_subset=300)
    l_train_u8, train_labels, l_eval_u8, l_eval_labels = labelled_split(data_dir, "mnist", 1000, 500, 300)
    assert np.array_equal(train_u8, l_train_u8) and np.array_equal(eval_u8, l_eval_u8)
    assert np.array_equal(eval_labels, l_eval_labels) and len(train_labels) == 500
    # the training labels are those of the first training images, the held-out ones those of the last
    assert train_labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "infogan.training.head_refit_study", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"error: run={tmp_path} is not a run directory (no config.json)"]
