"""real_shear: the real images' transform in the IIC term and the rotation prior can also shear,
tilting vertical strokes the way a rotation does (handwriting slant). Without it every transform
draws and computes what it did before the option (checked bit for bit when it was added); with it,
each image takes a fifth uniform and the rotation prior's target is the strokes' whole tilt."""

import math

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.training import train as training
from infogan.training.augment import COLUMNS, affine_draws, copies_ahead, copies_draws, draw_columns, random_affine
from infogan.training.config import PRESETS, resolve
from infogan.training.train import BatchStream


def _bar() -> torch.Tensor:
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 4:24, 13:15] = 1.0
    return image


def _lean_degrees(image: torch.Tensor) -> float:
    """How far a stroke leans from vertical (dx/dy of its second moments), in degrees."""
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    w = image[0, 0]
    mass = w.sum()
    cx, cy = (w * xs).sum() / mass, (w * ys).sum() / mass
    return math.degrees(math.atan(((w * (xs - cx) * (ys - cy)).sum() / (w * (ys - cy) ** 2).sum()).item()))


def _draw(rotation: float = 0.0, tilt: float = 0.0, degrees: float = 15.0, shear: float = 20.0) -> torch.Tensor:
    """One image's five uniforms for a rotation and a shear tilt in degrees, no scale or shift."""
    return torch.tensor([[(rotation / degrees + 1) / 2, 0.5, 0.5, 0.5, (tilt / shear + 1) / 2]])


def test_every_preset_draws_four_uniforms_and_no_shear_ignores_a_fifth():
    for preset in PRESETS:
        cfg = resolve(preset, batch_size=8)
        assert cfg.real_shear == 0.0
        real, fake = BatchStream(cfg, torch.rand(8, 1, 28, 28)).transforms(0, "cpu")
        assert real.shape[1] == fake.shape[1] == COLUMNS == 4
    images, draws = torch.rand(6, 1, 28, 28), torch.rand(6, 5)
    plain, turn = random_affine(images, draws[:, :4], return_angle=True)
    same, same_turn = random_affine(images, draws, return_angle=True)
    assert torch.equal(plain, same) and torch.equal(turn, same_turn)


def test_a_shear_leans_a_stroke_as_a_rotation_of_that_angle_does_and_the_turn_adds_both():
    bar = _bar()
    rotated = random_affine(bar, _draw(rotation=10.0))
    sheared, turn = random_affine(bar, _draw(tilt=10.0), shear_degrees=20.0, return_angle=True)
    assert _lean_degrees(rotated) == pytest.approx(10.0, abs=0.5)
    assert _lean_degrees(sheared) == pytest.approx(10.0, abs=0.5)
    assert turn.item() == pytest.approx(10.0 / 15.0, abs=1e-5)  # a fraction of the rotation's degrees
    both, turn = random_affine(bar, _draw(rotation=-8.0, tilt=-12.0), shear_degrees=20.0, return_angle=True)
    assert _lean_degrees(both) == pytest.approx(-20.0, abs=1.5)
    assert turn.item() == pytest.approx(-20.0 / 15.0, abs=1e-5)
    # a shear moves no pixel of a horizontal stroke's row off that row
    row = torch.zeros(1, 1, 28, 28)
    row[0, 0, 13:15, 4:24] = 1.0
    moved = random_affine(row, _draw(tilt=15.0), shear_degrees=20.0)
    assert moved[0, 0, 13:15].sum() / moved.sum() > 0.9


def test_a_shear_needs_its_fifth_draw_and_a_generator_draws_it():
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="a shear needs 5 draws per image, got 4"):
        random_affine(images, torch.rand(2, 4), shear_degrees=10.0)
    drawn = random_affine(images, torch.Generator().manual_seed(4), shear_degrees=10.0)
    assert torch.equal(drawn, random_affine(images, affine_draws(torch.Generator().manual_seed(4), 2, 5), shear_degrees=10.0))


def test_copies_of_five_uniforms_agree_from_a_generator_and_ahead():
    assert (draw_columns(0.0), draw_columns(12.0)) == (4, 5)
    from_generator = copies_draws(torch.Generator().manual_seed(3), 8, 2, columns=5)
    ahead = copies_ahead(affine_draws(torch.Generator().manual_seed(3), 16, 5), 2)
    assert ahead.shape == (8, 10)
    assert all(torch.equal(a, b) for a, b in zip(from_generator, copies_draws(ahead, 8, 2), strict=True))


def test_a_step_with_shear_is_the_same_from_generators_or_ahead_and_the_prior_follows_the_whole_tilt(monkeypatch):
    cfg = resolve("default", batch_size=16, real_shear=20.0)
    turns = []
    real_rotation = training.rotation_equivariance

    def rotation(code, code_rotated, turn, half_range):
        turns.append(turn)
        return real_rotation(code, code_rotated, turn, half_range)
    monkeypatch.setattr(training, "rotation_equivariance", rotation)
    ahead = one_step(cfg, "ahead")
    from_generators = one_step(cfg, "generators")
    assert all(torch.equal(ahead[k], from_generators[k]) for k in ahead)
    draws = BatchStream(cfg, torch.rand(64, 1, 28, 28)).transforms(0, "cpu")[0]
    assert draws.shape == (16, 5)
    whole = ((2 * draws[:, 0] - 1) * math.radians(15.0) + (2 * draws[:, 4] - 1) * math.radians(20.0)) / math.radians(15.0)
    assert torch.allclose(turns[0], whole, atol=1e-5)
    assert turns[0].abs().max() > 1  # beyond the rotation's own range: the shear counts
    plain = one_step(resolve("default", batch_size=16), "ahead")
    assert not all(torch.equal(ahead[k], plain[k]) for k in ahead)


@pytest.mark.parametrize("value", [-1.0, 31.0])
def test_a_shear_outside_zero_to_thirty_degrees_is_refused_in_one_line(value):
    assert_resolve_refuses("real_shear", value, "in [0, 30]")


def test_the_command_refuses_a_bad_shear_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--real-shear", "45",
                         "error: real_shear=45.0 is invalid: must be in [0, 30], the degrees a shear of the real "
                         "images may tilt vertical strokes by (0: none)")
