"""The paper's MNIST networks (Chen et al. 2016, Table 1). Modules only.

Shapes are per batch of N. Images are [N, 1, 28, 28] with values in [0, 1].
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from infogan.contract import InfoganError, LatentTemplate

# the auxiliary heads' limits (QHead): IIC's own over-clustering heads have 50 to 140 categories and it
# trains 5 sub-heads; beyond these an auxiliary head is no longer a small addition to Q
MAX_OVERCLUSTER = 1000
MAX_SUBHEADS = 16
# D's architecture when a config or a checkpoint does not say otherwise: the paper's leaky ReLU slope
# (Table 1) and no auxiliary head (Q's own categorical head alone)
DEFAULT_LEAKY_SLOPE = 0.1
DEFAULT_OVERCLUSTER = 0
DEFAULT_SUBHEADS = 1
# the trunk's first convolution has this many channels (the paper's 64) and its second twice as many
DEFAULT_TRUNK_CHANNELS = 64
# the trunk's convolutions: the paper's two (28 -> 14 -> 7 pixels); each one more is a 3 x 3 convolution at 7 x 7
# that keeps the second's channels, before the linear layer
DEFAULT_TRUNK_CONVOLUTIONS = 2
# D's architecture settings that are integers: (lowest, highest, what the number counts)
ARCHITECTURE_LIMITS = {
    "trunk_channels": (16, 256, "the channels of the trunk's first convolution (its second has twice as many)"),
    "trunk_convolutions": (2, 6, "the trunk's convolutions (2: the paper's; each more a 3 x 3 one at 7 x 7 pixels)"),
    "overcluster": (0, MAX_OVERCLUSTER, "the categories of the auxiliary over-clustering head (0: none)"),
    "subheads": (1, MAX_SUBHEADS, "Q's categorical head and its auxiliary sub-heads (1: none)"),
}


def check_architecture(leaky_slope, overcluster, subheads, trunk_channels=DEFAULT_TRUNK_CHANNELS,
                       trunk_convolutions=DEFAULT_TRUNK_CONVOLUTIONS, source: str = "") -> None:
    """Refuse in one line (the setting, its value, what is allowed) a Discriminator setting out of range,
    before any module is built from it: a training config and a checkpoint (`source` "checkpoint ")
    both pass here, so a head of a billion categories is a clear error, not exhausted memory."""
    if isinstance(leaky_slope, bool) or not isinstance(leaky_slope, (int, float)) or not 0 <= leaky_slope < 1:
        raise InfoganError(f"{source}leaky_slope={leaky_slope!r} is invalid: must be a number in [0, 1)")
    for name, value in (("overcluster", overcluster), ("subheads", subheads), ("trunk_channels", trunk_channels),
                        ("trunk_convolutions", trunk_convolutions)):
        lo, hi, counts = ARCHITECTURE_LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InfoganError(f"{source}{name}={value!r} is invalid: must be an integer from {lo} to {hi}, {counts}")


class Generator(nn.Module):
    """(noise, categorical one-hot, continuous) -> image in [0, 1]."""

    def __init__(self, template: LatentTemplate):
        super().__init__()
        self.template = template
        self.fc = nn.Sequential(
            nn.Linear(template.input_dim, 1024, bias=False),  # N x 1024
            nn.BatchNorm1d(1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 128 * 7 * 7, bias=False),  # N x 6272
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False),  # N x 64 x 14 x 14
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),  # N x 1 x 28 x 28
        )

    def forward_logits(self, noise: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        x = torch.cat([noise, categorical, continuous], dim=1)  # N x input_dim
        x = self.fc(x).view(-1, 128, 7, 7)  # reshape keeps the batch axis dynamic
        return self.deconv(x)

    def forward(self, noise: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        # sigmoid: the Bernoulli mean of each pixel, as in the original code
        return torch.sigmoid(self.forward_logits(noise, categorical, continuous))


class Trunk(nn.Module):
    """The discriminator body that D and Q share: image -> N x 1024 features (C = trunk_channels: the
    first convolution's channels, 64 in the paper; trunk_convolutions: the paper's 2, or more at 7 x 7)."""

    def __init__(self, leaky_slope: float = DEFAULT_LEAKY_SLOPE, trunk_channels: int = DEFAULT_TRUNK_CHANNELS,
                 trunk_convolutions: int = DEFAULT_TRUNK_CONVOLUTIONS):
        super().__init__()
        c = trunk_channels
        layers = [
            nn.Conv2d(1, c, 4, stride=2, padding=1),  # N x C x 14 x 14
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False),  # N x 2C x 7 x 7
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(leaky_slope, inplace=True),
        ]
        for _ in range(trunk_convolutions - 2):
            layers += [nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False),  # N x 2C x 7 x 7
                       nn.BatchNorm2d(2 * c),
                       nn.LeakyReLU(leaky_slope, inplace=True)]
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),  # N x 2C * 49
            nn.Linear(2 * c * 7 * 7, 1024, bias=False),  # N x 1024
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(leaky_slope, inplace=True),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class QHead(nn.Module):
    """Features -> categorical logits and continuous means.

    The continuous codes' Gaussians have a fixed std of 1, as in the original
    code; the information loss is then half the squared error plus a constant.
    Auxiliary heads read the same hidden features, are trained on real images
    only and are never exported (IIC, Ji et al. 2019): with overcluster > 0 an
    over-clustering head of that many categories; with subheads > 1, subheads - 1
    more heads of Q's K categories, each its own clustering of the real images
    beside the categorical head's (the categorical head is the first sub-head).
    """

    def __init__(self, template: LatentTemplate, leaky_slope: float = DEFAULT_LEAKY_SLOPE,
                 overcluster: int = DEFAULT_OVERCLUSTER, subheads: int = DEFAULT_SUBHEADS):
        super().__init__()
        self.template = template
        k = template.categorical_dim
        self.net = nn.Sequential(
            nn.Linear(1024, 128, bias=False),  # N x 128
            nn.BatchNorm1d(128),
            nn.LeakyReLU(leaky_slope, inplace=True),
            nn.Linear(128, k + template.n_continuous),
        )
        self.overcluster = nn.Linear(128, overcluster) if overcluster else None  # N x overcluster
        self.subheads = nn.Linear(128, (subheads - 1) * k) if subheads > 1 else None  # N x (subheads - 1) K
        # the auxiliary outputs, in the order forward(auxiliary=True) gives them after Q's own
        self.auxiliary_names = tuple(n for n in ("overcluster", "subheads") if getattr(self, n) is not None)

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        """N x 128: the hidden features Q's outputs and the auxiliary heads read."""
        return self.net[:3](features)

    def categorical(self, hidden: torch.Tensor) -> torch.Tensor:
        """N x K: the categorical logits of hidden features."""
        return self.net[3](hidden)[:, :self.template.categorical_dim]

    def forward(self, features: torch.Tensor, auxiliary: bool = False) -> tuple[torch.Tensor, ...]:
        """(categorical logits N x K, continuous means N x n_continuous), and with auxiliary the
        auxiliary heads' logits after them: N x overcluster, N x (subheads - 1) x K."""
        hidden = self.hidden(features)
        out = self.net[3](hidden)
        k = self.template.categorical_dim
        if not auxiliary:
            return out[:, :k], out[:, k:]
        extra = tuple(getattr(self, n)(hidden) for n in self.auxiliary_names)
        if self.subheads is not None:
            extra = (*extra[:-1], extra[-1].view(len(hidden), -1, k))
        return (out[:, :k], out[:, k:], *extra)


class Discriminator(nn.Module):
    """The shared trunk with its two heads: D (one real/fake logit) and Q."""

    def __init__(self, template: LatentTemplate, leaky_slope: float = DEFAULT_LEAKY_SLOPE,
                 overcluster: int = DEFAULT_OVERCLUSTER, subheads: int = DEFAULT_SUBHEADS,
                 trunk_channels: int = DEFAULT_TRUNK_CHANNELS, trunk_convolutions: int = DEFAULT_TRUNK_CONVOLUTIONS):
        super().__init__()
        self.trunk = Trunk(leaky_slope, trunk_channels, trunk_convolutions)
        self.d_head = nn.Linear(1024, 1)  # N x 1
        self.q_head = QHead(template, leaky_slope, overcluster, subheads)

    def forward(self, image: torch.Tensor, auxiliary: bool = False) -> tuple[torch.Tensor, ...]:
        """(D logit, categorical logits, continuous means), and with auxiliary the auxiliary
        heads' logits after them (QHead.auxiliary_names says which)."""
        h = self.trunk(image)
        return (self.d_head(h), *self.q_head(h, auxiliary))


class DiscriminatorPasses(nn.Module):
    """D on several batches in one call, each batch on its own (its own batch-norm
    statistics), in the order given: the D step as one forward, which
    DistributedDataParallel needs (one forward, then one backward per step).

    Batches come in groups, each group under one `autocast()` region: within a
    region the weights are cast to the low precision once, so the gradients of
    the group's passes meet (and are summed) in that precision, while separate
    groups' gradients are summed in fp32. The grouping is part of the recipe's
    numerics, so the training step states it."""

    def __init__(self, discriminator: Discriminator, autocast=contextlib.nullcontext):
        super().__init__()
        self.discriminator, self.autocast = discriminator, autocast

    def forward(self, *groups: tuple[torch.Tensor, ...], auxiliary: tuple[int, ...] = ()
                ) -> list[tuple[torch.Tensor, ...]]:
        """Each batch's outputs, in order; the batches numbered in `auxiliary` (counted
        across groups) also give the auxiliary heads' logits."""
        out = []
        for group in groups:
            with self.autocast():
                out += [self.discriminator(b, len(out) + i in auxiliary) for i, b in enumerate(group)]
        return out


class Encoder(nn.Module):
    """The exported encoder: trunk + Q-head + D's probability, on images in [0, 1].

    Outputs follow the contract: the category's softmax probabilities, continuous
    means, and realness = sigmoid(D logit).
    """

    def __init__(self, discriminator: Discriminator):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d_logit, cat_logits, cont_mean = self.discriminator(image)
        return torch.softmax(cat_logits, dim=1), cont_mean, torch.sigmoid(d_logit)
