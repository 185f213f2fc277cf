"""IIC's sub-heads (`--subheads H`): H - 1 auxiliary heads of Q's K categories on Q's hidden features,
each trained by the information between real images and their transforms, their mean weighted by
lambda_real; kept in the checkpoint, never exported (a run with them: tests/test_training_auxiliary_heads.py).
Without them a step computes what it did before."""

import contextlib

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.contract import InfoganError, LatentTemplate
from infogan.training.checkpoint import architecture, build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.model import Discriminator, DiscriminatorPasses, Generator
from infogan.training.train import BatchStream, make_optimizers, train, train_step


def test_the_sub_heads_answer_only_when_asked_after_the_over_clustering_head_and_leave_d_and_q_alone():
    t = LatentTemplate()
    torch.manual_seed(0)
    plain = Discriminator(t)
    torch.manual_seed(0)
    d = Discriminator(t, overcluster=30, subheads=4)
    x = torch.rand(6, 1, 28, 28)
    asked = d(x, auxiliary=True)
    assert d.q_head.auxiliary_names == ("overcluster", "subheads")
    assert len(d(x)) == 3 and len(asked) == 5
    assert asked[3].shape == (6, 30) and asked[4].shape == (6, 3, 10)  # three sub-heads of K = 10
    assert all(torch.equal(a, b) for a, b in zip(plain(x), asked[:3]))  # the same D and Q
    assert not torch.allclose(asked[4][:, 0], asked[4][:, 1])  # each sub-head its own weights
    out = DiscriminatorPasses(d)((x, x), (x,), auxiliary=(0, 2))
    assert [len(o) for o in out] == [5, 3, 5]


def _step_trunk(cfg, copy_q_head: bool) -> dict[str, torch.Tensor]:
    """D's trunk and Q's hidden layer after one step from models made under torch seed 0; with
    copy_q_head every sub-head starts as a copy of Q's categorical head."""
    torch.manual_seed(0)
    g, d = Generator(cfg.template), Discriminator(cfg.template, cfg.leaky_slope, cfg.overcluster, cfg.subheads)
    if copy_q_head:
        k = cfg.template.categorical_dim
        with torch.no_grad():
            last = d.q_head.net[3]
            d.q_head.subheads.weight.copy_(last.weight[:k].repeat(cfg.subheads - 1, 1))
            d.q_head.subheads.bias.copy_(last.bias[:k].repeat(cfg.subheads - 1))
    opt_d, opt_g = make_optimizers(cfg, g, d)
    stream = BatchStream(cfg, torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    train_step(cfg, g, d, opt_d, opt_g, stream.real(0), stream.latent(0, "cpu"), contextlib.nullcontext,
               stream.transform_rngs(0))
    return {k: v for k, v in d.state_dict().items() if k.startswith(("trunk.", "q_head.net.0", "q_head.net.1"))}


def test_the_sub_heads_term_is_the_mean_of_each_heads_information_weighted_by_lambda_real():
    # two sub-heads that start as copies of Q's categorical head each read what it reads, so their
    # mean is Q's own information and the trunk's step is the plain step's with lambda_real doubled
    with_heads = _step_trunk(resolve("default", batch_size=16, subheads=3), copy_q_head=True)
    doubled = _step_trunk(resolve("default", batch_size=16, lambda_real=1.0), copy_q_head=False)
    plain = _step_trunk(resolve("default", batch_size=16), copy_q_head=False)
    # Adam's first step moves each weight by about lr_d whatever its gradient's size, so a gradient that
    # rounding leaves near zero may move a weight by part of a step: a tenth of one is the tolerance
    tolerance = 0.1 * resolve("default").lr_d
    assert all(torch.allclose(with_heads[k], doubled[k], rtol=0, atol=tolerance) for k in with_heads)
    assert not all(torch.allclose(with_heads[k], plain[k], rtol=0, atol=tolerance) for k in with_heads)


def test_one_sub_head_is_the_step_before_the_option():
    cfg = resolve("default", batch_size=16)
    assert cfg.subheads == 1
    before = one_step(cfg)
    assert all(torch.equal(before[k], v) for k, v in one_step(resolve("default", batch_size=16, subheads=1)).items())
    with_heads = one_step(resolve("default", batch_size=16, subheads=2))
    assert not all(torch.equal(before[k], with_heads[k]) for k in before)


@pytest.mark.parametrize("value", [0, 17])
def test_sub_heads_outside_one_to_sixteen_are_refused_in_one_line(value):
    assert_resolve_refuses("subheads", value, "an integer from 1 to 16")


def test_sub_heads_need_the_real_image_term_and_say_so_in_one_line():
    with pytest.raises(InfoganError, match=r"subheads=3 needs lambda_real > 0"):
        resolve("smoke", subheads=3)


def test_the_command_refuses_bad_sub_heads_in_one_line_naming_them(tmp_path):
    assert_train_refuses(tmp_path, "--subheads", "0",
                         "error: subheads=0 is invalid: must be an integer from 1 to 16, Q's categorical head and its "
                         "auxiliary sub-heads (1: none)")


@pytest.mark.parametrize("model, line", [
    ({"subheads": 10 ** 9}, "checkpoint subheads=1000000000 is invalid: must be an integer from 1 to 16, Q's categorical "
                            "head and its auxiliary sub-heads (1: none)"),
    ({"overcluster": 10 ** 12}, "checkpoint overcluster=1000000000000 is invalid: must be an integer from 0 to 1000, the "
                                "categories of the auxiliary over-clustering head (0: none)"),
    ({"overcluster": "50"}, "checkpoint overcluster='50' is invalid: must be an integer from 0 to 1000, the "
                            "categories of the auxiliary over-clustering head (0: none)"),
    ({"leaky_slope": 2.0}, "checkpoint leaky_slope=2.0 is invalid: must be a number in [0, 1)"),
    ([1, 2], "checkpoint model=list is invalid: must be a dict of settings"),
])
def test_a_checkpoints_model_settings_are_checked_before_a_module_is_built(tmp_path, data_dir, model, line):
    # a checkpoint comes from outside: a head of a billion categories must be one line, not an exhausted memory
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path))
    ckpt = load_checkpoint(train(cfg, progress=False) / "checkpoint.pt")
    ckpt["model"] = model
    with pytest.raises(InfoganError) as e:
        build_models(ckpt)
    assert str(e.value) == line


@pytest.mark.parametrize("setting, value", [("subheads", 17), ("overcluster", -1), ("overcluster", 2.5),
                                            ("leaky_slope", 1.0)])
def test_a_setting_out_of_range_reads_the_same_from_a_config_and_from_a_checkpoint(setting, value):
    # one home for each limit: a run's config and a checkpoint from outside are refused by the same check
    with pytest.raises(InfoganError) as from_config:
        resolve("smoke", lambda_real=0.5, **{setting: value})
    with pytest.raises(InfoganError) as from_checkpoint:
        architecture({"model": {setting: value}})
    assert str(from_config.value).startswith(f"{setting}={value!r} is invalid: must be ")
    assert str(from_checkpoint.value) == "checkpoint " + str(from_config.value)
