"""real_gamma and fake_gamma: the real images' transform in the IIC term and the rotation prior can also make the ink
darker or lighter, raising each image's intensities to a power drawn log-uniformly in [1/g, g] (the
three upper-garment categories of the garment runs split pullovers, coats and shirts by ink brightness,
RESULTS.md). Without it every transform draws and computes what it did before the option; with it, each
image takes one more uniform (the last, after the shear's and the warp's), black stays black, full ink
stays full, and the shape is untouched. fake_gamma does the same to the generated images Q reads
categories from (transform_fakes), whose gradient reaches G through it and must stay finite at black."""

import contextlib
import math
import re

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.contract import InfoganError
from infogan.training.augment import COLUMNS, WARP_KNOTS, affine_draws, draw_columns, random_affine
from infogan.training.config import PRESETS, resolve
from infogan.training.model import Discriminator, Generator
from infogan.training.train import BatchStream, make_optimizers, train_step

WARP_COLUMNS = 2 * WARP_KNOTS ** 2


def _still(columns: int, n: int = 1) -> torch.Tensor:
    """Draws of no rotation, scale 1 and no shift (uniforms 0.5), and a power of 1 (the middle of its range)."""
    return torch.full((n, columns), 0.5)


def test_every_preset_draws_no_gamma_and_the_columns_come_last():
    for preset in PRESETS:
        for dataset in ("mnist", "fashion-mnist"):
            cfg = resolve(preset, dataset=dataset, batch_size=8)
            assert cfg.real_gamma == 1.0 and cfg.fake_gamma == 1.0
            real, fake = BatchStream(cfg, torch.rand(8, 1, 28, 28)).transforms(0, "cpu")
            assert real.shape[1] == COLUMNS and fake.shape[1] == COLUMNS
    assert (draw_columns(gamma=1.0), draw_columns(gamma=2.0), draw_columns(10.0, 2.0, 2.0)) == (4, 5, 6 + WARP_COLUMNS)
    images, draws = torch.rand(6, 1, 28, 28), torch.rand(6, 6 + WARP_COLUMNS)
    # the geometric part reads the same columns with or without the gamma's, and a power of 1 changes nothing
    middle = torch.full((6, 1), 0.5)
    assert torch.equal(random_affine(images, draws[:, :4]), random_affine(images, torch.cat([draws[:, :4], middle], 1), gamma=2.0))
    assert torch.equal(random_affine(images, draws[:, :5 + WARP_COLUMNS], shear_degrees=10.0, warp_px=2.0),
                       random_affine(images, torch.cat([draws[:, :5 + WARP_COLUMNS], middle], 1),
                                     shear_degrees=10.0, warp_px=2.0, gamma=3.0))


@pytest.mark.parametrize(("u", "power"), [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (0.75, math.sqrt(2))])
def test_the_last_draw_sets_the_power_log_uniformly_and_black_and_full_ink_stay(u, power):
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 4:24, 8:20] = 0.6
    image[0, 0, 10:18, 12:16] = 1.0
    draws = torch.cat([_still(4), torch.full((1, 1), u)], 1)
    moved = random_affine(image, draws, gamma=2.0)
    assert moved[0, 0, 6, 10].item() == pytest.approx(0.6 ** power, abs=1e-5)
    assert moved[0, 0, 14, 14].item() == pytest.approx(1.0, abs=1e-5)
    assert moved[0, 0, :4].abs().max().item() == 0.0 and moved[0, 0, :, :8].abs().max().item() == 0.0


def test_a_random_gamma_spreads_a_garments_brightness_over_the_range_asked():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 4:24, 6:22] = 0.8
    moved = random_affine(image.expand(400, 1, 28, 28), affine_draws(torch.Generator().manual_seed(2), 400, 5), gamma=2.0)
    ink = moved[:, 0, 14, 14]
    assert ink.min() >= 0.8 ** 2 - 1e-5 and ink.max() <= 0.8 ** 0.5 + 1e-5
    assert ink.min() < 0.66 and ink.max() > 0.88  # the draws reach near both ends: 0.64 and 0.89
    assert (ink < 0.8).float().mean().item() == pytest.approx(0.5, abs=0.1)  # as often darker as lighter


def test_a_gamma_needs_its_draw_and_a_generator_draws_it():
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="a gamma needs 6 draws per image, got 5"):
        random_affine(images, torch.rand(2, 5), shear_degrees=10.0, gamma=2.0)
    drawn = random_affine(images, torch.Generator().manual_seed(4), gamma=2.0)
    assert torch.equal(drawn, random_affine(images, affine_draws(torch.Generator().manual_seed(4), 2, 5), gamma=2.0))


def test_a_step_with_a_gamma_is_the_same_from_generators_or_ahead_and_differs_without_it():
    cfg = resolve("default", dataset="fashion-mnist", batch_size=16, real_gamma=2.0)
    ahead = one_step(cfg, "ahead")
    assert all(torch.equal(ahead[k], v) for k, v in one_step(cfg, "generators").items())
    assert BatchStream(cfg, torch.rand(64, 1, 28, 28)).transforms(0, "cpu")[0].shape == (16, 5)
    plain = one_step(resolve("default", dataset="fashion-mnist", batch_size=16), "ahead")
    assert not all(torch.equal(ahead[k], plain[k]) for k in ahead)


def _step_with_power(gamma: float, last: float, side: str = "real") -> dict:
    """One step of fresh models (torch seed 0) on fixed random images, with the plain recipe's own
    transform draws and, under a gamma on `side` (real or fake), `last` as every image's power draw
    there -> both models' weights."""
    cfg = resolve("default", dataset="fashion-mnist", batch_size=16, **{f"{side}_gamma": gamma})
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    stream = BatchStream(cfg, images)
    draws = dict(zip(("real", "fake"), BatchStream(resolve("default", dataset="fashion-mnist", batch_size=16), images).transforms(0, "cpu")))
    if gamma > 1:
        draws[side] = torch.cat([draws[side], torch.full((len(draws[side]), 1), last)], 1)
    assert stream.transforms(0, "cpu")[side == "fake"].shape == draws[side].shape  # the stream draws that many
    real_draws, fake_draws = draws["real"], draws["fake"]
    torch.manual_seed(0)
    g, d = Generator(cfg.template), Discriminator(cfg.template, cfg.leaky_slope, cfg.overcluster, cfg.subheads)
    opt_d, opt_g = make_optimizers(cfg, g, d)
    train_step(cfg, g, d, opt_d, opt_g, stream.real(0), stream.latent(0, "cpu"), contextlib.nullcontext,
               (real_draws, fake_draws))
    return {**{"g." + k: v for k, v in g.state_dict().items()}, **{"d." + k: v for k, v in d.state_dict().items()}}


@pytest.mark.parametrize("side", ["real", "fake"])
def test_the_step_applies_the_power_it_draws_to_that_sides_images(side):
    plain = _step_with_power(1.0, 0.5, side)
    # a power of 1 on every image is the plain step exactly; a darker ink (power 2) is another step
    assert all(torch.equal(plain[k], v) for k, v in _step_with_power(2.0, 0.5, side).items())
    darker = _step_with_power(2.0, 1.0, side)
    assert not all(torch.equal(plain[k], darker[k]) for k in plain)
    changed = {k.split(".")[0] for k in plain if not torch.equal(plain[k], darker[k])}
    assert changed == {"g", "d"}  # the fakes' gamma reaches G through Q's reading; the real side's, G through D


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_generated_images_gradient_through_a_gamma_stays_finite_at_black(dtype):
    fake = torch.rand(8, 1, 28, 28)
    fake[:, :, :6] = 0.0  # exact black, where x ** 0.5 has an infinite slope
    fake = fake.to(dtype).requires_grad_(True)
    draws = torch.cat([_still(4, 8), torch.zeros(8, 1)], 1)  # power 1/2 on every image
    moved = random_affine(fake, draws, gamma=2.0)
    moved.float().sum().backward()
    assert torch.isfinite(fake.grad.float()).all()
    # away from the ink's edge (which the bilinear resampling blurs by a fraction of a pixel), black stays black
    # and takes no gradient
    assert fake.grad[:, :, :4].abs().max().item() == 0.0 and moved[:, :, :4].abs().max().item() == 0.0
    assert fake.grad[:, :, 10:].float().abs().min().item() > 0  # inked pixels do pass their gradient


@pytest.mark.parametrize("name", ["real_gamma", "fake_gamma"])
@pytest.mark.parametrize("value", [0.5, 4.5])
def test_a_gamma_outside_one_to_four_is_refused_in_one_line(name, value):
    with pytest.raises(InfoganError, match=re.escape(f"{name}={value} is invalid: must be in [1, 4]")):
        resolve("default", **{name: value})


def test_a_fake_gamma_without_the_fakes_transform_is_refused_in_one_line():
    with pytest.raises(InfoganError, match=re.escape("fake_gamma=2.0 needs transform_fakes")):
        resolve("smoke", fake_gamma=2.0)


def test_the_command_refuses_a_bad_gamma_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--real-gamma", "5",
                         "error: real_gamma=5.0 is invalid: must be in [1, 4], the largest power the real images' "
                         "intensities may be raised to, or its inverse the smallest (1: none)")


def test_the_command_refuses_a_fake_gamma_without_the_fakes_transform_in_one_line(tmp_path):
    assert_train_refuses(tmp_path, "--fake-gamma", "2",
                         "error: fake_gamma=2.0 needs transform_fakes: the gamma is part of the generated images' "
                         "transform, which is off")
