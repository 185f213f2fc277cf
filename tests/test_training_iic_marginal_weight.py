"""iic_marginal_weight: the IIC term can weigh its marginals' entropy above the pairs' agreement
(IIC's lamb). 1 is the mutual information itself, computed exactly as before the option, so every
preset trains the same numbers; a bad value is refused in one line before a run folder is made."""

import pytest
import torch
from option_checks import assert_resolve_refuses, assert_train_refuses, one_step

from infogan.training.config import PRESETS, resolve
from infogan.training.losses import paired_information


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.log()).sum()


def _parts(logits_a, logits_b):
    """The symmetrised joint of two batches' categories and its two marginals, computed here."""
    p_a, p_b = torch.softmax(logits_a, 1), torch.softmax(logits_b, 1)
    joint = p_a.t() @ p_b / len(p_a)
    joint = (joint + joint.t()) / 2
    return joint, joint.sum(1), joint.sum(0)


def test_every_preset_trains_with_weight_one_the_mutual_information_itself():
    for preset in PRESETS:
        assert resolve(preset).iic_marginal_weight == 1.0
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 10, generator=gen) * 3, torch.randn(256, 10, generator=gen) * 3
    joint, m_a, m_b = _parts(a, b)
    mutual = _entropy(m_a) + _entropy(m_b) - _entropy(joint)
    assert paired_information(a, b).item() == pytest.approx(mutual.item(), abs=1e-5)
    assert torch.equal(paired_information(a, b), paired_information(a, b, marginal_weight=1.0))


@pytest.mark.parametrize("weight", [1.5, 2.0, 4.0])
def test_a_weight_adds_that_much_more_of_the_marginals_entropy(weight):
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(256, 10, generator=gen) * 3, torch.randn(256, 10, generator=gen) * 3
    _, m_a, m_b = _parts(a, b)
    extra = (weight - 1) * (_entropy(m_a) + _entropy(m_b))
    assert paired_information(a, b, marginal_weight=weight).item() == pytest.approx(
        (paired_information(a, b) + extra).item(), rel=1e-5)


def test_a_higher_weight_pulls_harder_on_an_overfull_category():
    # confident, consistent pairs with half the batch in category 0: the gradient that raises the
    # term moves the crowded category's logit down further with weight 2 than with weight 1
    category = torch.cat([torch.zeros(128, dtype=torch.long), torch.arange(128) % 9 + 1])
    logits = torch.nn.functional.one_hot(category, 10).float() * 4

    def push(weight):
        x = logits.clone().requires_grad_(True)
        paired_information(x, x, marginal_weight=weight).backward()
        return x.grad[category == 0, 0].mean().item()
    assert push(2.0) < min(push(1.0), 0)


@pytest.mark.parametrize("value", [0.5, 0.0, -1.0, 4.5])
def test_a_weight_outside_one_to_four_is_refused_in_one_line(value):
    assert_resolve_refuses("iic_marginal_weight", value, "in [1, 4]")


def test_the_command_refuses_a_bad_weight_in_one_line_naming_it(tmp_path):
    assert_train_refuses(tmp_path, "--iic-marginal-weight", "0.5",
                         "error: iic_marginal_weight=0.5 is invalid: must be in [1, 4], the weight of the marginals' "
                         "entropy in the IIC term (1: the mutual information itself)")


def test_the_training_step_hands_the_weight_to_the_iic_term(monkeypatch):
    from infogan.training import train as training

    seen = []

    def recording(logits_a, logits_b, eps=1e-8, marginal_weight=1.0):
        seen.append(marginal_weight)
        return paired_information(logits_a, logits_b, eps, marginal_weight)
    monkeypatch.setattr(training, "paired_information", recording)
    for weight in (1.0, 2.5):
        one_step(resolve("default", batch_size=32, iic_marginal_weight=weight))
    assert seen == [1.0, 2.5]
