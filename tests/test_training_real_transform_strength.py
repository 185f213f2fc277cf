"""real_transform_strength: the real images' transform in the IIC term and the rotation prior is a
multiple of the small transform's ranges; 1 is the small transform itself, and the rotation prior
keeps its degrees per code unit at any strength."""

import math

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.training.augment import affine_draws, affine_ranges, random_affine
from infogan.training.config import resolve


def _centroid(images: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] -> [N, 2] (x, y) centres of mass in pixels."""
    n, _, h, w = images.shape
    mass = images.sum(dim=(1, 2, 3))
    ys, xs = torch.arange(h, dtype=images.dtype), torch.arange(w, dtype=images.dtype)
    return torch.stack([(images.sum(dim=(1, 2)) * xs).sum(1) / mass, (images.sum(dim=(1, 3)) * ys).sum(1) / mass], 1)


def test_strength_one_is_the_small_transform_that_every_preset_trained_with():
    assert affine_ranges(1.0) == {"degrees": 15.0, "scale": (0.85, 1.15), "shift_px": 2.0}
    assert resolve("default").real_transform_strength == 1.0
    x = torch.rand(8, 1, 28, 28)
    draws = affine_draws(torch.Generator().manual_seed(3), 8)
    assert torch.equal(random_affine(x, draws), random_affine(x, draws, **affine_ranges(1.0)))


def test_a_stronger_transform_moves_a_blob_proportionally_further_for_the_same_draws():
    # a small blob in the middle: with no rotation or scale, the shift alone moves its centre
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 12:16, 12:16] = 1.0
    draws = affine_draws(torch.Generator().manual_seed(0), 64)
    draws[:, 0], draws[:, 1] = 0.5, 0.5  # no rotation, scale 1
    moved = {s: (_centroid(random_affine(x, draws, **affine_ranges(s))) - _centroid(x)).abs().mean().item()
             for s in (1.0, 2.0)}
    assert moved[1.0] > 0.5  # the shift is up to 2 px: it moves
    assert moved[2.0] == pytest.approx(2 * moved[1.0], rel=0.1)
    # and the angle it reports is a fraction of its own largest rotation, in [-1, 1]
    _, turn = random_affine(x, affine_draws(torch.Generator().manual_seed(1), 64), return_angle=True,
                            **affine_ranges(2.0))
    assert turn.abs().max() <= 1 and turn.abs().max() > 0.9
    assert math.isclose(affine_ranges(2.0)["degrees"], 30.0)


@pytest.mark.parametrize("value", [0.0, -1.0, 4.5])
def test_a_strength_outside_zero_to_four_is_refused_in_one_line(value):
    assert_resolve_refuses("real_transform_strength", value, "in (0, 4]")


def test_the_command_refuses_a_bad_strength_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--real-transform-strength", "9",
                         "error: real_transform_strength=9.0 is invalid: must be in (0, 4], a multiple of the small "
                         "transform's ranges (1: +-15 degrees)")


def test_the_rotation_prior_keeps_its_degrees_per_code_unit_at_any_strength(monkeypatch):
    # the prior asks Q's code 0 to move by (rotation / 15 degrees) * half its range, so the
    # slant a code unit means does not change when the real images turn further
    from infogan.training import train as training

    turns = {}

    def recording(code, code_rotated, turn, half_range):
        turns[strength] = (turn.detach().clone(), half_range)
        return (code_rotated - code).pow(2).mean() * 0
    monkeypatch.setattr(training, "rotation_equivariance", recording)
    for strength in (1.0, 2.0):
        one_step(resolve("default", batch_size=32, real_transform_strength=strength))
    (one, half_one), (two, half_two) = turns[1.0], turns[2.0]
    assert half_one == half_two
    assert torch.allclose(two, 2 * one)  # the same draws turn twice as far: the target moves twice as far
    assert one.abs().max() <= 1 < two.abs().max()
