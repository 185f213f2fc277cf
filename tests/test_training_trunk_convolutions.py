"""The trunk's depth (`trunk_convolutions`): the paper's two convolutions unless asked, each one more a 3 x 3
convolution at 7 x 7 pixels; recorded in the checkpoint, rebuilt from it as trained, exported to an ONNX
encoder that reads as torch does, and refused in one line out of range, from a config, the command or a
checkpoint."""

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


def _convolutions(d: Discriminator) -> list[tuple[int, int, int, int]]:
    """(in channels, out channels, kernel, stride) of each of the trunk's convolutions, in order."""
    return [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
            for m in d.trunk.modules() if isinstance(m, torch.nn.Conv2d)]


def test_the_papers_two_unless_asked_and_each_more_keeps_the_shape_at_7_by_7():
    t = LatentTemplate()
    assert _convolutions(Discriminator(t)) == [(1, 64, 4, 2), (64, 128, 4, 2)]
    assert resolve("default").trunk_convolutions == 2 and resolve("paper").trunk_convolutions == 2
    deep = Discriminator(t, trunk_convolutions=4, trunk_channels=32)
    assert _convolutions(deep) == [(1, 32, 4, 2), (32, 64, 4, 2), (64, 64, 3, 1), (64, 64, 3, 1)]
    x = torch.rand(3, 1, 28, 28)
    assert deep.trunk.net[:-4](x).shape == (3, 64, 7, 7)  # before the flatten and the linear layer
    assert deep.trunk(x).shape == (3, 1024)


def test_a_run_records_its_depth_and_is_rebuilt_and_exported_as_trained(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), judge=False, trunk_convolutions=3,
                  trunk_channels=32)
    run = train(cfg, progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["model"] == cfg.architecture() and ckpt["model"]["trunk_convolutions"] == 3
    assert json.loads((run / "config.json").read_text())["trunk_convolutions"] == 3
    g, d = build_models(ckpt)
    assert len(_convolutions(d)) == 3
    # the rebuilt encoder is the one evaluation scored
    assert study(run)[0]["accuracy"] == json.loads((run / "evaluation.json").read_text())["accuracy"]
    model = encoder_onnx(d, g.template)
    onnx.checker.check_model(model)
    require(encoder_parity(model.SerializeToString(), d, g, g.template), "encoder")
    # a checkpoint from before the setting existed has the paper's two, and weights of three say so in one line
    del ckpt["model"]["trunk_convolutions"]
    assert architecture(ckpt)["trunk_convolutions"] == 2
    with pytest.raises(InfoganError) as e:
        build_models(ckpt)
    assert '"trunk_convolutions": 2' in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value", [1, 7, 3.0, True, "3"])
def test_a_depth_out_of_range_reads_the_same_from_a_config_and_from_a_checkpoint(value):
    with pytest.raises(InfoganError) as from_config:
        resolve("smoke", trunk_convolutions=value)
    with pytest.raises(InfoganError) as from_checkpoint:
        architecture({"model": {"trunk_convolutions": value}})
    assert str(from_config.value) == (f"trunk_convolutions={value!r} is invalid: must be an integer from 2 to 6, the "
                                      "trunk's convolutions (2: the paper's; each more a 3 x 3 one at 7 x 7 pixels)")
    assert str(from_checkpoint.value) == "checkpoint " + str(from_config.value)


def test_a_checkpoint_asking_for_a_huge_depth_is_one_line_before_any_module_is_built():
    with pytest.raises(InfoganError, match=r"^checkpoint trunk_convolutions=1000000000 is invalid"):
        build_models({"template": LatentTemplate().to_dict(), "model": {"trunk_convolutions": 10 ** 9}})


def test_the_command_refuses_a_bad_depth_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--trunk-convolutions", "9",
                         "error: trunk_convolutions=9 is invalid: must be an integer from 2 to 6, the trunk's "
                         "convolutions (2: the paper's; each more a 3 x 3 one at 7 x 7 pixels)")
