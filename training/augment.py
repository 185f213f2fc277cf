"""Small random affine transforms of digit images (rotation, scale, shift).

They change a digit's style, never its identity, so a classifier that should
read identity can be asked to give an image and its transform the same class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# The small transform's ranges: rotation within +-DEGREES, isotropic scale within 1 +- SCALE_SPREAD,
# shift within +-SHIFT_PX pixels (every transform in training and evaluation starts from these).
DEGREES, SCALE_SPREAD, SHIFT_PX = 15.0, 0.15, 2.0
MAX_STRENGTH = 4.0  # scale stays positive (1 - 0.15 * 4 = 0.4)


def affine_ranges(strength: float = 1.0) -> dict:
    """random_affine's ranges with each one `strength` times the small transform's:
    1.0 is the small transform itself (+-15 degrees, scale 0.85-1.15, +-2 px)."""
    return {"degrees": DEGREES * strength, "scale": (1 - SCALE_SPREAD * strength, 1 + SCALE_SPREAD * strength),
            "shift_px": SHIFT_PX * strength}


def affine_draws(generator: torch.Generator, total: int) -> torch.Tensor:
    """The [total, 4] uniform draws random_affine makes for a batch of total images (on the CPU)."""
    return torch.rand(total, 4, generator=generator, device="cpu")


def copies_draws(generator: torch.Generator | torch.Tensor, total: int, copies: int) -> list[torch.Tensor]:
    """The draws of `copies` transforms of each of a batch's total images: a [total, 4] tensor
    per copy. generator is a torch.Generator (drawing total * copies rows, copy by copy) or those
    draws made ahead as a [total, 4 * copies] tensor (image by image, as copies_ahead lays them out);
    one copy's draws are affine_draws' own."""
    draws = generator if isinstance(generator, torch.Tensor) else copies_ahead(affine_draws(generator, total * copies), copies)
    return [draws[:, 4 * i:4 * i + 4] for i in range(copies)]


def copies_ahead(draws: torch.Tensor, copies: int) -> torch.Tensor:
    """[copies * total, 4] draws, copy by copy -> [total, 4 * copies], a row per image."""
    total = len(draws) // copies
    return draws.view(copies, total, 4).transpose(0, 1).reshape(total, 4 * copies)


def random_affine(images: torch.Tensor, generator: torch.Generator | torch.Tensor, degrees: float = DEGREES,
                  scale: tuple[float, float] = (1 - SCALE_SPREAD, 1 + SCALE_SPREAD), shift_px: float = SHIFT_PX,
                  return_angle: bool = False, of: tuple[int, int] | None = None
                  ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """[N, 1, H, W] images in [0, 1] -> the same, each under its own random
    rotation (+-degrees), isotropic scale and shift (+-shift_px pixels); with
    return_angle, also each image's rotation as a fraction of degrees, in [-1, 1].
    of=(start, total): the images are rows start.. of a batch of total (one
    process's share); the draws are the whole batch's, so any split of a batch
    over processes transforms each image as one process would. generator may also be the
    whole batch's draws made ahead (affine_draws), already on the images' device."""
    n, _, h, w = images.shape
    start, total = of or (0, n)
    draws = generator if isinstance(generator, torch.Tensor) else affine_draws(generator, total)
    u = draws[start:start + n].to(images.device)
    angle = (2 * u[:, 0] - 1) * math.radians(degrees)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    tx, ty = (2 * u[:, 2] - 1) * (2 * shift_px / w), (2 * u[:, 3] - 1) * (2 * shift_px / h)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # grid maps output to input: the inverse scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # N x 2 x 3
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (moved, 2 * u[:, 0] - 1) if return_angle else moved
