"""The trunk's width (`trunk_channels`): the paper's 64 unless asked, recorded in the checkpoint, rebuilt from
it as trained (the encoder's accuracy is the run's own), exported to an ONNX encoder that reads as torch does,
and refused in one line out of range, from a config, the command or a checkpoint."""

import json

import onnx
import pytest
import torch

from export.onnx_export import encoder_onnx
from export.parity import encoder_parity, require
from infogan.contract import InfoganError, LatentTemplate
from infogan.training.checkpoint import architecture, build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.head_refit_study import study
from infogan.training.model import Discriminator
from infogan.training.train import train
from option_checks import assert_train_refuses


def _convolutions(d: Discriminator) -> list[tuple[int, int]]:
    return [(m.in_channels, m.out_channels) for m in d.trunk.modules() if isinstance(m, torch.nn.Conv2d)]


def test_the_paper_width_unless_asked_and_the_same_features_out():
    t = LatentTemplate()
    assert _convolutions(Discriminator(t)) == [(1, 64), (64, 128)]
    wide = Discriminator(t, trunk_channels=96)
    assert _convolutions(wide) == [(1, 96), (96, 192)]
    assert wide.trunk(torch.rand(3, 1, 28, 28)).shape == (3, 1024)
    assert resolve("default").trunk_channels == 64


def test_a_run_records_its_width_and_is_rebuilt_and_exported_as_trained(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), judge=False, trunk_channels=32)
    run = train(cfg, progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["model"]["trunk_channels"] == 32 and json.loads((run / "config.json").read_text())["trunk_channels"] == 32
    g, d = build_models(ckpt)
    assert _convolutions(d) == [(1, 32), (32, 64)]
    # the rebuilt encoder is the one evaluation scored
    assert study(run)[0]["accuracy"] == json.loads((run / "evaluation.json").read_text())["accuracy"]
    model = encoder_onnx(d, g.template)
    onnx.checker.check_model(model)
    require(encoder_parity(model.SerializeToString(), d, g, g.template), "encoder")
    # a checkpoint from before the setting existed is the paper's width, and weights of another width say so
    del ckpt["model"]["trunk_channels"]
    assert architecture(ckpt)["trunk_channels"] == 64
    with pytest.raises(InfoganError) as e:
        build_models(ckpt)
    assert '"trunk_channels": 64' in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value", [8, 257, 96.0, True])
def test_a_width_out_of_range_reads_the_same_from_a_config_and_from_a_checkpoint(value):
    with pytest.raises(InfoganError) as from_config:
        resolve("smoke", trunk_channels=value)
    with pytest.raises(InfoganError) as from_checkpoint:
        architecture({"model": {"trunk_channels": value}})
    assert str(from_config.value) == (f"trunk_channels={value!r} is invalid: must be an integer from 16 to 256, the "
                                      "channels of the trunk's first convolution (its second has twice as many)")
    assert str(from_checkpoint.value) == "checkpoint " + str(from_config.value)


def test_a_checkpoint_asking_for_a_huge_trunk_is_one_line_before_any_module_is_built():
    with pytest.raises(InfoganError, match=r"^checkpoint trunk_channels=1000000000 is invalid"):
        build_models({"template": LatentTemplate().to_dict(), "model": {"trunk_channels": 10 ** 9}})


def test_the_command_refuses_a_bad_width_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--trunk-channels", "300",
                         "error: trunk_channels=300 is invalid: must be an integer from 16 to 256, the channels of "
                         "the trunk's first convolution (its second has twice as many)")
