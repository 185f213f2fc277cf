"""A dataset's own overrides of a preset: the default recipe trains Fashion-MNIST twice as long as
digits (RESULTS.md), while an explicit setting still wins and other presets are untouched."""

import pytest
from typer.testing import CliRunner

from infogan.cli import app
from infogan.training.config import DATASET_PRESETS, PRESETS, preset_values, resolve


def test_the_default_preset_trains_garments_5000_updates_and_digits_2500():
    assert resolve("default").total_steps == 2500
    fashion = resolve("default", dataset="fashion-mnist")
    assert fashion.total_steps == 5000
    # only the schedule differs: the recipe itself is the digits' one
    assert {**resolve("default").to_dict(), "dataset": "fashion-mnist", "epochs": 50} == fashion.to_dict()


def test_an_explicit_setting_beats_the_datasets_override_and_other_presets_are_untouched():
    assert resolve("default", dataset="fashion-mnist", epochs=25).total_steps == 2500
    for preset in PRESETS:
        if preset not in DATASET_PRESETS["fashion-mnist"]:
            assert preset_values(preset, "fashion-mnist") == PRESETS[preset]
            assert resolve(preset, dataset="fashion-mnist").epochs == resolve(preset).epochs


class _Captured(Exception):
    pass


@pytest.mark.parametrize("argv,epochs", [(["--dataset", "fashion-mnist"], 50), ([], 25),
                                         (["--dataset", "fashion-mnist", "--epochs", "30"], 30)])
def test_the_train_command_resolves_the_datasets_preset(monkeypatch, tmp_path, argv, epochs):
    # the configuration the command would train with, captured before any training
    from infogan.training import train as training

    def capture(cfg, **_):
        raise _Captured(cfg)
    monkeypatch.setattr(training, "train", capture)
    res = CliRunner().invoke(app, ["train", "--runs-dir", str(tmp_path), *argv])
    assert isinstance(res.exception, _Captured), res.output
    assert res.exception.args[0].epochs == epochs
