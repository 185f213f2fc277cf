"""Q's auxiliary heads (IIC's over-clustering head, `--overcluster`, and its sub-heads, `--subheads`):
a run trains each, keeps it in the checkpoint, and exports Q without it."""

import pytest
import torch

from export.onnx_export import encoder_onnx
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.model import Encoder
from infogan.training.train import set_up, train


@pytest.mark.parametrize("setting, value, head, outputs", [
    ("overcluster", 30, "overcluster", 30),  # one head of 30 categories
    ("subheads", 3, "subheads", 2 * 10),  # Q's own head and two auxiliary ones of its 10 categories
])
def test_a_run_trains_the_head_keeps_it_in_the_checkpoint_and_exports_without_it(tmp_path, data_dir, setting, value,
                                                                                  head, outputs):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), lambda_real=0.5, **{setting: value})
    (tmp_path / "init").mkdir()
    start = {k: v.clone() for k, v in set_up(cfg, tmp_path / "init", False, resumed=False).d.state_dict().items()}
    ckpt = load_checkpoint(train(cfg, progress=False) / "checkpoint.pt")
    assert ckpt["model"][setting] == value
    weight = f"q_head.{head}.weight"
    assert not torch.equal(ckpt["discriminator"][weight], start[weight])  # trained
    _, d = build_models(ckpt)
    assert getattr(d.q_head, head).out_features == outputs
    probs, _, _ = Encoder(d)(torch.rand(3, 1, 28, 28))  # the exported encoder: Q's own 10 categories only
    assert probs.shape == (3, 10)
    graph = encoder_onnx(d, cfg.template).graph
    assert not [i.name for i in graph.initializer if head in i.name]
    assert [o.name for o in graph.output] == ["categorical_probs", "continuous_mean", "realness"]
