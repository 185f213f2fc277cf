"""noise_start: G trains first with a narrower noise that widens linearly to the template's scale between
two updates. Until the widening begins a run is exactly a run of the narrow template; G is published,
judged and exported with the template's own scale."""

import json

import pytest
import torch
from typer.testing import CliRunner

from infogan.cli import app
from infogan.contract import InfoganError, LatentTemplate
from infogan.training.checkpoint import load_checkpoint
from infogan.training.config import resolve
from infogan.training.train import noise_scale_factor, train

WIDE, NARROW = LatentTemplate(noise_scale=0.5), LatentTemplate(noise_scale=0.25)


def test_the_noise_is_narrow_then_widens_linearly_and_stays_at_the_templates_scale():
    cfg = resolve("smoke", template=WIDE, noise_start=0.25, noise_widen_from=10, noise_widen_to=20)
    factors = [noise_scale_factor(cfg, s) for s in range(30)]
    assert factors[:11] == [0.5] * 11
    assert factors[15] == pytest.approx(0.75) and factors[19] == pytest.approx(0.95)
    assert factors[20:] == [1.0] * 10
    assert all(a < b for a, b in zip(factors[10:20], factors[11:21]))
    # a step change where from == to; off by default
    step = resolve("smoke", template=WIDE, noise_start=0.25, noise_widen_from=10, noise_widen_to=10)
    assert [noise_scale_factor(step, s) for s in (9, 10)] == [0.5, 1.0]
    assert {noise_scale_factor(resolve("smoke"), s) for s in range(3000)} == {1.0}


@pytest.mark.parametrize("overrides, message", [
    ({"noise_start": -0.1}, r"noise_start=-0.1 is invalid: must be in \[0, 0.5\]"),
    ({"noise_start": 0.6}, r"noise_start=0.6 is invalid: must be in \[0, 0.5\]"),
    ({"noise_start": 0.25, "noise_widen_from": 20, "noise_widen_to": 10},
     r"noise_widen_from=20, noise_widen_to=10 are invalid: .* 0 <= from <= to"),
    ({"noise_start": 0.25, "noise_widen_from": -1}, r"noise_widen_from=-1, noise_widen_to=1500 are invalid"),
    # a widening without a narrower start would silently do nothing
    ({"noise_widen_from": 500}, r"noise_widen_from=500, noise_widen_to=1500 need noise_start > 0"),
])
def test_bad_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(InfoganError, match=message) as e:
        resolve("smoke", template=WIDE, **overrides)
    assert "\n" not in str(e.value)


def test_a_widening_run_trains_like_the_narrow_template_until_the_widening_begins(tmp_path, data_dir, checkpoints):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2)  # smoke: 2 epochs of 4 updates
    train(resolve("smoke", run_name="narrow", template=NARROW, **base), progress=False)
    # narrow up to update 4 of 8, then U(-0.5, 0.5) from update 6
    widening = train(resolve("smoke", run_name="widening", template=WIDE, noise_start=0.25, noise_widen_from=4,
                             noise_widen_to=6, **base), progress=False)
    # never widened within the run: the narrow template's run, update for update
    train(resolve("smoke", run_name="late", template=WIDE, noise_start=0.25, noise_widen_from=100,
                  noise_widen_to=100, **base), progress=False)
    by = {(name, step): weights for name, step, weights in checkpoints}
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(by["narrow", 4], by["widening", 4])
    assert not same(by["narrow", 8], by["widening", 8])
    assert same(by["narrow", 8], by["late", 8])
    # the published template is the wide one: export and the judge draw U(-0.5, 0.5)
    assert load_checkpoint(widening / "checkpoint.pt")["template"]["noise_scale"] == 0.5


def test_cli_settings_reach_the_runs_config_and_a_bad_one_is_refused(tmp_path, data_dir):
    runner = CliRunner()
    base = ["train", "--smoke", "--epochs", "1", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path),
            "--no-progress", "--noise-scale", "0.5"]
    res = runner.invoke(app, base + ["--noise-start", "0.25", "--noise-widen-from", "2", "--noise-widen-to", "3",
                                     "--run-name", "widen"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "widen" / "config.json").read_text())
    assert (cfg["noise_start"], cfg["noise_widen_from"], cfg["noise_widen_to"]) == (0.25, 2, 3)
    assert cfg["template"]["noise_scale"] == 0.5
    res = runner.invoke(app, base + ["--noise-start", "0.75", "--run-name", "bad"])
    assert res.exit_code != 0 and "noise_start=0.75 is invalid: must be in [0, 0.5]" in str(res.exception)
    assert not (tmp_path / "bad").exists()
