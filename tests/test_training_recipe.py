"""The robustness parts of the recipe: transforms, paired information, held-out evaluation."""

import json
import math

import numpy as np
import torch

from infogan.training.augment import random_affine
from infogan.training.config import resolve
from infogan.training.images import as_float_images
from infogan.training.losses import paired_information
from infogan.training.train import train


def test_paired_information_is_ln_k_for_confident_balanced_agreement_and_zero_for_one_class():
    k = 10
    confident = torch.eye(k).repeat(20, 1) * 50  # every category equally often, certain
    assert math.isclose(paired_information(confident, confident).item(), math.log(k), rel_tol=1e-4)
    one_class = torch.zeros(200, k)
    one_class[:, 3] = 50
    assert abs(paired_information(one_class, one_class).item()) < 1e-4
    shuffled = confident[torch.randperm(len(confident), generator=torch.Generator().manual_seed(0))]
    assert paired_information(confident, shuffled).item() < 0.2 * math.log(k)  # disagreement carries little


def test_random_affine_keeps_shape_and_range_moves_the_digit_and_is_seeded(data_dir):
    from infogan.training.data import load_split

    x = as_float_images(load_split(data_dir, "mnist", "test")[0][:64])
    a = random_affine(x, torch.Generator().manual_seed(1))
    b = random_affine(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert (a - x).abs().mean() > 0.02  # the digits moved
    still = random_affine(x, torch.Generator().manual_seed(1), degrees=0, scale=(1, 1), shift_px=0)
    assert torch.allclose(still, x, atol=1e-5)


def test_holdout_evaluates_on_training_images_and_reports_label_free_agreement(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), holdout=300, lambda_real=0.5,
                  transform_fakes=True, epochs=1)
    run = train(cfg, progress=False)
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["n_images"] == 300
    assert 0 <= ev["transform_agreement_min"] <= ev["transform_agreement"] <= 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    i_real = [r["i_real"] for r in rows if r["kind"] == "train"]
    assert all(np.isfinite(i_real)) and max(i_real) > 0
