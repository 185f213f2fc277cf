"""real_copies: IIC's repeats. Each real image is transformed that many times, each copy with its own
draw, and the IIC term and the rotation prior read every (image, copy) pair; one copy is the recipe
as it trained before the option (checked bit for bit when it was added)."""

import pytest
import torch
from option_checks import one_step

from infogan.contract import InfoganError
from infogan.training import train as training
from infogan.training.augment import affine_draws, copies_ahead, copies_draws
from infogan.training.config import resolve


def test_draws_from_a_generator_and_drawn_ahead_agree_and_one_copy_is_a_plain_draw():
    from_generator = copies_draws(torch.Generator().manual_seed(5), 8, 3)
    ahead = copies_ahead(affine_draws(torch.Generator().manual_seed(5), 24), 3)
    assert ahead.shape == (8, 12)
    assert all(torch.equal(a, b) for a, b in zip(from_generator, copies_draws(ahead, 8, 3), strict=True))
    assert not torch.equal(from_generator[0], from_generator[1])  # each copy its own transform
    (one,) = copies_draws(torch.Generator().manual_seed(5), 8, 1)
    assert torch.equal(one, affine_draws(torch.Generator().manual_seed(5), 8))


def test_both_terms_read_every_copy_and_a_step_is_the_same_from_generators_or_draws_made_ahead(monkeypatch):
    cfg = resolve("default", batch_size=16, real_copies=3)
    seen = {}
    real_information, real_rotation = training.paired_information, training.rotation_equivariance

    def information(a, b, **weight):
        seen["information"] = (a.shape, b.shape, torch.equal(b[:16], b[16:32]))
        return real_information(a, b, **weight)

    def rotation(code, code_rotated, turn, half_range):
        seen["rotation"] = (code.shape, code_rotated.shape, turn.shape)
        return real_rotation(code, code_rotated, turn, half_range)
    monkeypatch.setattr(training, "paired_information", information)
    monkeypatch.setattr(training, "rotation_equivariance", rotation)
    ahead = one_step(cfg, "ahead")
    assert seen["information"] == ((48, 10), (48, 10), False)  # 16 images x 3 copies, each copy read differently
    assert seen["rotation"] == ((48,), (48,), (48,))
    from_generators = one_step(cfg, "generators")
    assert all(torch.equal(ahead[k], from_generators[k]) for k in ahead)
    # and the copies change training: one copy is another step
    one = one_step(resolve("default", batch_size=16), "ahead")
    assert not all(torch.equal(ahead[k], one[k]) for k in ahead)


@pytest.mark.parametrize("value", [0, 9, 1.5])
def test_a_number_of_copies_outside_one_to_eight_is_refused_in_one_line(value):
    with pytest.raises(InfoganError, match=rf"^real_copies={value} is invalid: must be an integer from 1 to 8"):
        resolve("smoke", real_copies=value)
