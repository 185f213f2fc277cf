"""The InfoGAN losses, on logits (never on a softmax: see PyTorch-GAN issue 84)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from infogan.contract import LatentTemplate


def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], averaged."""
    return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def g_adversarial_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


def info_loss(
    template: LatentTemplate,
    cat_logits: torch.Tensor,
    cont_mean: torch.Tensor,
    category: torch.Tensor,
    cont: torch.Tensor,
    lambda_cat: float,
    lambda_cont: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(lambda-weighted information loss, L_I bound of the categorical codes in nats).

    Categorical: cross-entropy of Q(c|x) against the sampled code; the bound is
    L_I = H(c) - CE, which approaches H(c) = ln K as Q recovers the code.
    Continuous: Gaussian NLL with std fixed at 1 = half the squared error (+ const).
    """
    ce = F.cross_entropy(cat_logits, category)
    mse = 0.5 * ((cont_mean - cont) ** 2).sum(dim=1).mean() if template.n_continuous else ce.new_zeros(())
    l_i = template.entropy() - ce.detach()
    return lambda_cat * ce + lambda_cont * mse, l_i


def paired_information(logits_a: torch.Tensor, logits_b: torch.Tensor, eps: float = 1e-8,
                       marginal_weight: float = 1.0) -> torch.Tensor:
    """I(c; c') in nats between Q's categories of images and of their transforms
    (Ji et al. 2019, "Invariant Information Clustering"): high when each image
    and its transform get the same confident category and all categories are
    used equally. At most ln K. marginal_weight > 1 weighs the marginals' entropy
    above the agreement, as IIC's own loss can (its lamb): a stronger push for
    categories of equal size; 1 is the mutual information itself."""
    p_a, p_b = torch.softmax(logits_a.float(), 1), torch.softmax(logits_b.float(), 1)
    joint = p_a.t() @ p_b / len(p_a)  # K x K
    joint = ((joint + joint.t()) / 2).clamp_min(eps)
    marginal_a, marginal_b = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    if marginal_weight == 1:  # the mutual information, in the same float operations as before the weight
        return (joint * (joint.log() - marginal_a.log() - marginal_b.log())).sum()
    return (joint * (joint.log() - marginal_weight * (marginal_a.log() + marginal_b.log()))).sum()


def rotation_equivariance(code: torch.Tensor, code_rotated: torch.Tensor, turn: torch.Tensor, half_range: float) -> torch.Tensor:
    """Q's reading of one continuous code on images and on their rotations must
    move by the rotation: turn in [-1, 1] (a fraction of the largest rotation)
    maps to turn * half_range code units. Gaussian NLL with std 1, as for the codes."""
    return 0.5 * ((code_rotated - code - turn * half_range) ** 2).mean()
