"""IIC's over-clustering head: an auxiliary categorical head that real-image pairs train, never exported
(a run with it: tests/test_training_auxiliary_heads.py)."""

import pytest
import torch

from infogan.contract import InfoganError, LatentTemplate
from infogan.training.config import resolve
from infogan.training.model import Discriminator, DiscriminatorPasses


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


def test_the_head_needs_the_real_image_term_and_says_so_in_one_line():
    with pytest.raises(InfoganError, match=r"overcluster=30 needs lambda_real > 0"):
        resolve("smoke", overcluster=30)
    with pytest.raises(InfoganError, match=r"overcluster=-1 is invalid: must be an integer from 0 to 1000"):
        resolve("default", overcluster=-1)
