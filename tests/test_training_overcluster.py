"""IIC's over-clustering head: an auxiliary categorical head that real-image pairs train, never exported."""

import pytest
import torch

from export.onnx_export import encoder_onnx
from infogan.contract import InfoganError, LatentTemplate
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.model import Discriminator, DiscriminatorPasses, Encoder
from infogan.training.train import set_up, train


def test_the_head_answers_only_when_asked_and_leaves_the_other_outputs_alone():
    t = LatentTemplate()
    torch.manual_seed(0)
    plain = Discriminator(t)
    torch.manual_seed(0)
    d = Discriminator(t, overcluster=30)
    x = torch.rand(6, 1, 28, 28)
    asked = d(x, auxiliary=True)
    assert len(d(x)) == 3 and len(asked) == 4 and asked[3].shape == (6, 30)
    assert all(torch.equal(a, b) for a, b in zip(plain(x), asked[:3]))  # the same D and Q
    # passes number their batches across groups
    out = DiscriminatorPasses(d)((x, x), (x,), auxiliary=(0, 2))
    assert [len(o) for o in out] == [4, 3, 4]


def test_a_run_trains_the_head_keeps_it_in_the_checkpoint_and_exports_without_it(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), lambda_real=0.5, overcluster=30)
    (tmp_path / "init").mkdir()
    start = {k: v.clone() for k, v in set_up(cfg, tmp_path / "init", False, resumed=False).d.state_dict().items()}
    ckpt = load_checkpoint(train(cfg, progress=False) / "checkpoint.pt")
    assert ckpt["model"]["overcluster"] == 30
    weight = "q_head.overcluster.weight"
    assert not torch.equal(ckpt["discriminator"][weight], start[weight])  # trained
    _, d = build_models(ckpt)
    assert d.q_head.overcluster.out_features == 30
    probs, _, _ = Encoder(d)(torch.rand(3, 1, 28, 28))  # the exported encoder: Q's 10 categories only
    assert probs.shape == (3, 10)
    graph = encoder_onnx(d, cfg.template).graph
    assert not [i.name for i in graph.initializer if "overcluster" in i.name]
    assert [o.name for o in graph.output] == ["categorical_probs", "continuous_mean", "realness"]


def test_the_head_needs_the_real_image_term_and_says_so_in_one_line():
    with pytest.raises(InfoganError, match=r"overcluster=30 needs lambda_real > 0"):
        resolve("smoke", overcluster=30)
    with pytest.raises(InfoganError, match=r"overcluster=-1 is invalid: must be an integer from 0 to 1000"):
        resolve("default", overcluster=-1)
