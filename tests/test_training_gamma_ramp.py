"""gamma_from and gamma_to: the ink's gammas (real_gamma, fake_gamma) start only once the categories have
formed. Before gamma_from every power drawn is 1; each side's largest power then rises linearly from 1 to its
full gamma at gamma_to, from the same uniforms (a run draws what a run with the full gamma draws, mapped
closer to a power of 1); after gamma_to the draws are the full gamma's, untouched. On the garments' test-set seed 1
the full gamma from the first update lost a class early that it never got back (RESULTS.md)."""

import json
import math

import pytest
import torch
from option_checks import assert_train_refuses
from typer.testing import CliRunner

from infogan.cli import app
from infogan.contract import InfoganError
from infogan.training.augment import gamma_narrowed
from infogan.training.config import resolve
from infogan.training.train import BatchStream, gamma_reached, train

GAMMAS = dict(lambda_real=0.5, transform_fakes=True, real_gamma=4.0, fake_gamma=2.0)


def test_the_gammas_rise_linearly_between_the_two_updates_and_are_full_without_a_ramp():
    cfg = resolve("smoke", gamma_from=100, gamma_to=200, **GAMMAS)
    assert [gamma_reached(cfg, s) for s in (0, 99, 100, 150, 199, 200, 5000)] == [0.0, 0.0, 0.0, 0.5, 0.99, 1.0, 1.0]
    step = resolve("smoke", gamma_from=100, gamma_to=100, **GAMMAS)  # from == to: a step change
    assert [gamma_reached(step, s) for s in (99, 100)] == [0.0, 1.0]
    assert {gamma_reached(resolve("smoke", **GAMMAS), s) for s in range(300)} == {1.0}


def _powers(draws: torch.Tensor, copies: int, gamma: float) -> torch.Tensor:
    """The power each transform's last column draws (random_affine's mapping), [images, copies]."""
    u = draws.reshape(len(draws), copies, -1)[..., -1]
    return gamma ** (2 * u - 1)


def test_the_draws_hold_the_powers_reached_and_everything_else_is_the_full_gammas():
    images = torch.rand(64, 1, 28, 28)
    settings = dict(batch_size=16, real_copies=2, **GAMMAS)
    full = BatchStream(resolve("default", **settings), images)
    ramp = BatchStream(resolve("default", gamma_from=4, gamma_to=8, **settings), images)
    for step in range(12):  # one chunk of draws made ahead: a narrowed step must not change a later one
        (real, fake), (real_full, fake_full) = ramp.transforms(step, "cpu"), full.transforms(step, "cpu")
        width = real.shape[1] // 2
        others = [c for c in range(real.shape[1]) if (c + 1) % width]
        assert torch.equal(real[:, others], real_full[:, others]) and torch.equal(fake[:, :-1], fake_full[:, :-1])
        reached = gamma_reached(ramp.cfg, step)
        for side, full_draws, copies, gamma in ((real, real_full, 2, 4.0), (fake, fake_full, 1, 2.0)):
            largest = 1 + (gamma - 1) * reached  # the powers lie in [1 / largest, largest], the same uniforms mapped
            assert torch.allclose(_powers(side, copies, gamma), _powers(full_draws, copies, largest), rtol=1e-5)
        if step < 4:
            assert (_powers(real, 2, 4.0) == 1).all() and (_powers(fake, 1, 2.0) == 1).all()
        if step >= 8:
            assert torch.equal(real, real_full) and torch.equal(fake, fake_full)
    assert 0 < gamma_reached(ramp.cfg, 6) < 1  # the middle of the rise was checked, not only its ends


def test_narrowing_leaves_the_draws_given_as_they_were():
    draws = torch.rand(8, 10)
    kept = draws.clone()
    narrowed = gamma_narrowed(draws, 2, 4.0, 0.5)
    assert torch.equal(draws, kept) and not torch.equal(narrowed, draws)
    assert math.isclose(float(_powers(narrowed, 2, 4.0).max()), float(_powers(draws, 2, 2.5).max()), rel_tol=1e-5)


def test_a_run_trains_without_any_gamma_until_the_ramp_begins(tmp_path, data_dir, checkpoints):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2, **GAMMAS)  # smoke: 2 epochs of 4 updates
    train(resolve("smoke", run_name="rising", gamma_from=4, gamma_to=6, **base), progress=False)
    train(resolve("smoke", run_name="late", gamma_from=100, gamma_to=100, **base), progress=False)  # never begins
    train(resolve("smoke", run_name="full", **base), progress=False)
    by = {(name, step): weights for name, step, weights in checkpoints}
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(by["rising", 4], by["late", 4])  # the same draws, every power 1, up to update 4
    assert not same(by["rising", 8], by["late", 8])  # then the gammas act
    assert not same(by["full", 4], by["late", 4])  # and without the ramp they act from the first update


@pytest.mark.parametrize("overrides, message", [
    ({"gamma_from": 20, "gamma_to": 10}, "gamma_from=20, gamma_to=10 are invalid: the updates the gammas rise between "
                                         "must be whole numbers with 0 <= from <= to"),
    ({"gamma_from": -1, "gamma_to": 10}, "gamma_from=-1, gamma_to=10 are invalid"),
    ({"gamma_from": 1.5, "gamma_to": 10}, "gamma_from=1.5, gamma_to=10 are invalid"),
])
def test_bad_ramps_are_refused_in_one_line(overrides, message):
    with pytest.raises(InfoganError, match="^" + message.replace("(", r"\(")) as e:
        resolve("default", real_gamma=4.0, **overrides)
    assert "\n" not in str(e.value)


def test_a_ramp_without_a_gamma_is_refused_because_it_would_do_nothing():
    with pytest.raises(InfoganError, match=r"^gamma_from=10, gamma_to=20 need real_gamma or fake_gamma above 1"):
        resolve("default", gamma_from=10, gamma_to=20)


def test_the_command_passes_the_ramp_to_the_run_and_refuses_a_bad_one_in_one_line(tmp_path, data_dir):
    res = CliRunner().invoke(app, ["train", "--smoke", "--epochs", "1", "--data-dir", str(data_dir), "--runs-dir",
                                   str(tmp_path), "--no-progress", "--real-gamma", "4", "--gamma-from", "1",
                                   "--gamma-to", "3", "--run-name", "ramp"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "ramp" / "config.json").read_text())
    assert (cfg["real_gamma"], cfg["gamma_from"], cfg["gamma_to"]) == (4.0, 1, 3)
    refused = tmp_path / "refused"
    refused.mkdir()
    assert_train_refuses(refused, "--gamma-from", "5", "error: gamma_from=5, gamma_to=0 are invalid: the updates the "
                         "gammas rise between must be whole numbers with 0 <= from <= to")
