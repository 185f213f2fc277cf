"""lr_decay: every learning rate falls linearly over the run's last share of updates; a run is a
constant-rate run until then, and a run cut short resumes on the same schedule."""

import pytest
import torch

from infogan.contract import InfoganError
from infogan.training import train as training
from infogan.training.checkpoint import load_checkpoint
from infogan.training.config import resolve
from infogan.training.train import learning_rate_scale, train


def test_the_schedule_is_flat_then_falls_linearly_and_the_last_update_still_moves():
    cfg = resolve("smoke", epochs=25, steps_per_epoch=4, lr_decay=0.2)  # 100 updates, the last 20 decay
    scales = [learning_rate_scale(cfg, s) for s in range(100)]
    assert scales[:81] == [1.0] * 81
    assert scales[81] == pytest.approx(19 / 20) and scales[90] == pytest.approx(10 / 20)
    assert scales[99] == pytest.approx(1 / 20)
    assert all(a > b for a, b in zip(scales[80:], scales[81:]))
    assert {learning_rate_scale(resolve("smoke", epochs=25, steps_per_epoch=4), s) for s in range(100)} == {1.0}


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_lr_decay_outside_zero_to_one_is_refused_in_one_line(value):
    with pytest.raises(InfoganError, match=rf"lr_decay={value} is invalid: must be in \[0, 1\]"):
        resolve("smoke", lr_decay=value)


def test_a_decaying_run_trains_like_a_constant_one_until_the_decay_begins_and_ends_at_the_scheduled_rates(
        tmp_path, data_dir, checkpoints):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2)  # smoke: 2 epochs of 4 updates
    train(resolve("smoke", run_name="constant", **base), progress=False)
    decayed = train(resolve("smoke", run_name="decayed", lr_decay=0.5, **base), progress=False)
    by = {(name, step): weights for name, step, weights in checkpoints}
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(by["constant", 4], by["decayed", 4])  # the decay begins at update 4 of 8
    assert not same(by["constant", 8], by["decayed", 8])
    ckpt = load_checkpoint(decayed / "checkpoint.pt")
    cfg = resolve("smoke", **base)
    # the last update (step 7) ran at 1/4 of each rate: D's trunk and head, Q (in D's Adam), G
    assert [g["lr"] for g in ckpt["opt_d"]["param_groups"]] == pytest.approx([cfg.lr_d / 4, cfg.lr_q / 4])
    assert [g["lr"] for g in ckpt["opt_g"]["param_groups"]] == pytest.approx([cfg.lr_g / 4])


class _Cut(Exception):
    pass


def test_a_decaying_run_cut_short_resumes_on_the_same_schedule(tmp_path, data_dir, checkpoints, monkeypatch):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=3, lr_decay=0.5)  # decay from update 6 of 12
    straight = train(resolve("smoke", run_name="straight", **base), progress=False)
    recording = training.Run.checkpoint

    def cut_after_the_decay_began(run, calibrated=None):
        recording(run, calibrated)
        if run.step == 8:
            raise _Cut

    monkeypatch.setattr(training.Run, "checkpoint", cut_after_the_decay_began)
    with pytest.raises(_Cut):
        train(resolve("smoke", run_name="cut", **base), progress=False)
    monkeypatch.setattr(training.Run, "checkpoint", recording)
    resumed = train(None, resume=tmp_path / "cut", progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a["step"] == b["step"] == 12
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
