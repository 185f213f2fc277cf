"""A dataset's own overrides of a preset: the default recipe trains Fashion-MNIST twice as long as
digits with the IIC term's marginals weighed twice (RESULTS.md), while an explicit setting still wins
and other presets are untouched."""

import pytest
from typer.testing import CliRunner

from infogan.cli import app
from infogan.training.config import (DATASET_PRESETS, FASHION_IIC_MARGINAL_WEIGHT, PRESETS, RECIPE_NOISE_SCALE, WIDE_NOISE_SCALE,
                                     preset_values, resolve)


def test_the_default_preset_trains_garments_5000_updates_and_digits_2500():
    assert resolve("default").total_steps == 2500
    fashion = resolve("default", dataset="fashion-mnist")
    assert fashion.total_steps == 5000
    # the schedule differs, and the noise: the widening noise was measured on digits only, so garments
    # train with the recipe's narrow noise throughout; the rest of the recipe is the digits' one
    digits = resolve("default")
    assert (digits.template.noise_scale, digits.noise_start) == (WIDE_NOISE_SCALE, RECIPE_NOISE_SCALE)
    assert (fashion.template.noise_scale, fashion.noise_start) == (RECIPE_NOISE_SCALE, 0.0)
    # and the IIC term's marginals weigh twice on garments (held-out garment seeds, RESULTS.md), once on digits
    assert FASHION_IIC_MARGINAL_WEIGHT == 2.0
    assert (digits.iic_marginal_weight, fashion.iic_marginal_weight) == (1.0, FASHION_IIC_MARGINAL_WEIGHT)
    narrow = {"template": fashion.to_dict()["template"], "noise_start": 0.0, "iic_marginal_weight": FASHION_IIC_MARGINAL_WEIGHT}
    assert {**digits.to_dict(), "dataset": "fashion-mnist", "epochs": 50, **narrow} == fashion.to_dict()


def test_an_explicit_setting_beats_the_datasets_override_and_other_presets_are_untouched():
    assert resolve("default", dataset="fashion-mnist", epochs=25).total_steps == 2500
    assert resolve("default", dataset="fashion-mnist", iic_marginal_weight=1.0).iic_marginal_weight == 1.0
    for preset in PRESETS:
        if preset not in DATASET_PRESETS["fashion-mnist"]:
            assert preset_values(preset, "fashion-mnist") == PRESETS[preset]
            assert resolve(preset, dataset="fashion-mnist").epochs == resolve(preset).epochs


class _Captured(Exception):
    pass


def train_config(monkeypatch, tmp_path, argv):
    """The configuration `infogan train argv` would train with, captured before any training."""
    from infogan.training import train as training

    def capture(cfg, **_):
        raise _Captured(cfg)
    monkeypatch.setattr(training, "train", capture)
    res = CliRunner().invoke(app, ["train", "--runs-dir", str(tmp_path), *argv])
    assert isinstance(res.exception, _Captured), res.output
    return res.exception.args[0]


@pytest.mark.parametrize("argv,epochs", [(["--dataset", "fashion-mnist"], 50), ([], 25),
                                         (["--dataset", "fashion-mnist", "--epochs", "30"], 30)])
def test_the_train_command_resolves_the_datasets_preset(monkeypatch, tmp_path, argv, epochs):
    assert train_config(monkeypatch, tmp_path, argv).epochs == epochs


@pytest.mark.parametrize("argv,noise_scale,noise_start", [
    (["--noise-dim", "64"], WIDE_NOISE_SCALE, RECIPE_NOISE_SCALE),
    (["--dataset", "fashion-mnist", "--noise-dim", "64"], RECIPE_NOISE_SCALE, 0.0)])
def test_a_template_part_given_keeps_the_rest_of_the_datasets_own_template(monkeypatch, tmp_path, argv, noise_scale,
                                                                           noise_start):
    cfg = train_config(monkeypatch, tmp_path, argv)
    assert (cfg.template.noise_dim, cfg.template.noise_scale, cfg.noise_start) == (64, noise_scale, noise_start)
