"""Fidelity: how far generated digits lie from real ones, in the judge's features,
as a multiple of how far real training digits lie from the real test digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from infogan.contract import LatentTemplate
from infogan.training.data import load_split
from infogan.training.judge import (FIDELITY_SAMPLES, frechet_distance, generation_fidelity, load_or_train_judge,
                                    reference_of)


@pytest.fixture(scope="module")
def judge(data_dir):
    return load_or_train_judge(data_dir, "mnist")


def test_the_frechet_distance_is_fids_formula_and_zero_between_equal_sets():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 6)), rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    sa, sb = (a.mean(0), np.cov(a, rowvar=False)), (b.mean(0), np.cov(b, rowvar=False))
    fid = ((sa[0] - sb[0]) ** 2).sum() + np.trace(sa[1] + sb[1] - 2 * sqrtm(sa[1] @ sb[1]).real)
    assert frechet_distance(sa, sb) == pytest.approx(fid, rel=1e-9)
    assert abs(frechet_distance(sa, sa)) < 1e-9
    singular = (np.zeros(6), np.diag([1.0, 2, 0, 0, 3, 0]))  # units that never fire
    assert np.isfinite(frechet_distance(singular, sb))


class RealDigits(torch.nn.Module):
    """A stand-in generator whose 'generated' digits are real training digits the floor did not use:
    the one case whose fidelity is known (about the floor, 1x)."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.at = images, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, noise, cat, cont):
        out = self.images[self.at:self.at + len(noise)]
        self.at += len(noise)
        return out


def test_real_digits_score_about_the_floor_and_noise_far_above_it(judge, data_dir):
    reference = reference_of(judge)
    assert reference.floor > 0
    u8 = load_split(data_dir, "mnist", "train")[0][FIDELITY_SAMPLES:2 * FIDELITY_SAMPLES]
    real = generation_fidelity(RealDigits(torch.from_numpy(u8).float().div(255)), LatentTemplate(), judge, reference)
    assert 0.5 < real["ratio"] < 2.0 and real["n"] == FIDELITY_SAMPLES
    noise = generation_fidelity(RealDigits(torch.rand(FIDELITY_SAMPLES, 1, 28, 28)), LatentTemplate(), judge, reference)
    assert noise["ratio"] > 20 * real["ratio"]


def test_a_run_with_a_held_out_slice_measures_fidelity_against_that_slice_not_the_test_set(judge, data_dir):
    # choosing a recipe (--holdout) never looks at the test set, fidelity included
    from infogan.training.judge import feature_stats, holdout_reference, judge_features

    held = holdout_reference(judge, data_dir, "mnist", 5000)
    u8 = load_split(data_dir, "mnist", "train")[0][-5000:]
    mean, _ = feature_stats(judge_features(judge, torch.from_numpy(u8).float().div(255)))
    assert np.allclose(held.mean, mean) and not np.allclose(held.mean, reference_of(judge).mean)
    assert 0 < held.floor < 3 * reference_of(judge).floor
    assert np.allclose(load_or_train_judge(str(data_dir), "mnist", holdout=5000).fidelity_reference.mean, mean)
    assert getattr(load_or_train_judge(str(data_dir), "mnist"), "fidelity_reference", None) is None  # the test set's, when first asked
