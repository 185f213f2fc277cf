"""real_warp: the real images' transform in the IIC term and the rotation prior can also bend strokes
by a smooth local warp (a displacement field drawn at WARP_KNOTS x WARP_KNOTS knots, interpolated
bicubically). Without it every transform draws and computes what it did before the option; with it,
each image takes 2 * WARP_KNOTS**2 more uniforms (after the shear's), no pixel moves further than
asked, and a straight stroke comes out bent, which no affine map does."""

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.training.augment import (COLUMNS, WARP_KNOTS, affine_draws, copies_ahead, copies_draws, draw_columns,
                                      random_affine)
from infogan.training.config import PRESETS, resolve
from infogan.training.train import BatchStream

WARP_COLUMNS = 2 * WARP_KNOTS ** 2


def _still(columns: int, n: int = 1) -> torch.Tensor:
    """Draws of no rotation, scale 1 and no shift (uniforms 0.5), no shear or warp either."""
    return torch.full((n, columns), 0.5)


def _centroid(image: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    w = image[0, 0]
    return torch.stack([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def _bar() -> torch.Tensor:
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 3:25, 13:15] = 1.0
    return image


def test_every_preset_draws_no_warp_and_a_zero_warp_ignores_its_columns():
    for preset in PRESETS:
        cfg = resolve(preset, batch_size=8)
        assert cfg.real_warp == 0.0
        real, _ = BatchStream(cfg, torch.rand(8, 1, 28, 28)).transforms(0, "cpu")
        assert real.shape[1] == COLUMNS
    assert (draw_columns(0.0, 0.0), draw_columns(0.0, 2.0), draw_columns(10.0, 2.0)) == (4, 4 + WARP_COLUMNS,
                                                                                          5 + WARP_COLUMNS)
    images, draws = torch.rand(6, 1, 28, 28), torch.rand(6, 5 + WARP_COLUMNS)
    assert torch.equal(random_affine(images, draws[:, :4]), random_affine(images, draws))
    assert torch.equal(random_affine(images, draws[:, :5], shear_degrees=10.0),
                       random_affine(images, draws, shear_degrees=10.0))
    # knots at the middle of their range move nothing: the warp adds exactly zero
    assert torch.equal(random_affine(images, _still(4, 6)), random_affine(images, _still(4 + WARP_COLUMNS, 6), warp_px=3.0))


def test_every_knot_at_its_end_moves_the_whole_digit_by_the_warp_in_pixels():
    bar = _bar()
    for x_end, y_end, expected in ((1.0, 0.5, (-3.0, 0.0)), (0.0, 0.5, (3.0, 0.0)), (0.5, 1.0, (0.0, -3.0))):
        draws = torch.cat([_still(4), torch.full((1, WARP_COLUMNS // 2), x_end), torch.full((1, WARP_COLUMNS // 2), y_end)], 1)
        moved = random_affine(bar, draws, warp_px=3.0)
        assert (_centroid(moved) - _centroid(bar)).tolist() == pytest.approx(expected, abs=0.05)


def test_a_random_warp_bends_a_straight_stroke_and_moves_no_pixel_further_than_asked():
    bar = _bar()
    draws = affine_draws(torch.Generator().manual_seed(5), 32, 4 + WARP_COLUMNS)
    draws[:, :4] = 0.5  # the warp alone
    moved = random_affine(bar.expand(32, 1, 28, 28), draws, warp_px=3.0)
    rows = moved[:, 0, 6:22]  # rows the bar fills whatever the warp
    xs = (rows * torch.arange(28.0)).sum(-1) / rows.sum(-1)  # [32, 16] the stroke's x in each row
    # a straight line through each image's row centres leaves residuals: the stroke is bent
    t = torch.arange(16.0) - 7.5
    slope = ((xs - xs.mean(1, keepdim=True)) * t).sum(1, keepdim=True) / (t * t).sum()
    bend = (xs - xs.mean(1, keepdim=True) - slope * t).abs().amax(1)
    assert bend.median() > 0.3
    # the bar's pixels stay within 3 px (plus the bilinear sampling's one pixel) of where they were
    assert moved[:, 0, :, :10].max() < 1e-3 and moved[:, 0, :, 18:].max() < 1e-3


def test_a_warp_needs_its_draws_and_a_generator_draws_them():
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=f"a warp needs {5 + WARP_COLUMNS} draws per image, got 5"):
        random_affine(images, torch.rand(2, 5), shear_degrees=10.0, warp_px=2.0)
    drawn = random_affine(images, torch.Generator().manual_seed(4), warp_px=2.0)
    assert torch.equal(drawn, random_affine(images, affine_draws(torch.Generator().manual_seed(4), 2, 4 + WARP_COLUMNS),
                                            warp_px=2.0))
    from_generator = copies_draws(torch.Generator().manual_seed(3), 8, 2, columns=4 + WARP_COLUMNS)
    ahead = copies_ahead(affine_draws(torch.Generator().manual_seed(3), 16, 4 + WARP_COLUMNS), 2)
    assert all(torch.equal(a, b) for a, b in zip(from_generator, copies_draws(ahead, 8, 2), strict=True))


def test_a_step_with_a_warp_is_the_same_from_generators_or_ahead_and_differs_without_it():
    cfg = resolve("default", batch_size=16, real_warp=2.0)
    ahead = one_step(cfg, "ahead")
    assert all(torch.equal(ahead[k], v) for k, v in one_step(cfg, "generators").items())
    assert BatchStream(cfg, torch.rand(64, 1, 28, 28)).transforms(0, "cpu")[0].shape == (16, 4 + WARP_COLUMNS)
    plain = one_step(resolve("default", batch_size=16), "ahead")
    assert not all(torch.equal(ahead[k], plain[k]) for k in ahead)


@pytest.mark.parametrize("value", [-1.0, 4.5])
def test_a_warp_outside_zero_to_four_pixels_is_refused_in_one_line(value):
    assert_resolve_refuses("real_warp", value, "in [0, 4]")


def test_the_command_refuses_a_bad_warp_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--real-warp", "6",
                         "error: real_warp=6.0 is invalid: must be in [0, 4], the pixels a smooth warp of the real "
                         "images may move each pixel by along each axis (0: none)")
