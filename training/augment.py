"""Small random affine transforms of digit images (rotation, scale, shift, and optionally shear,
a smooth local warp and a change of the ink's brightness).

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
# a draw's uniforms per image: rotation, scale, shift x, shift y; a shear adds one more
COLUMNS = 4
MAX_SHEAR_DEGREES = 30.0
# the smooth local warp (an "elastic" distortion in the sense of Simard, Steinkraus and Platt 2003):
# each image's displacement field is drawn at WARP_KNOTS x WARP_KNOTS knots spread evenly over the
# image (from corner to corner), each knot moving by up to +-warp_px in x and in y, and interpolated
# bicubically in between (clamped, so no pixel moves further); it bends strokes locally, which no
# affine map does, without moving the digit as a whole
WARP_KNOTS = 4
MAX_WARP_PX = 4.0
# the ink's brightness: each image's intensities raised to a power gamma drawn log-uniformly in
# [1 / g, g] (one more uniform per image, after the warp's), so black stays black and full ink full;
# g = 2 brings inks of 0.8 and 0.4 to the same mid-grey only at the ends of its range, g = 4 takes
# 0.78 anywhere in 0.38-0.94 (the garments' top categories sat at 0.80 / 0.65 / 0.40; RESULTS.md)
MAX_GAMMA = 4.0
# intensities at or below this count as black under a gamma: the steepest slope left is then
# 0.25 * INK_FLOOR ** -0.75, about 7,900, at a power of 1/4
INK_FLOOR = 1e-6


def draw_columns(shear_degrees: float = 0.0, warp_px: float = 0.0, gamma: float = 1.0) -> int:
    """The uniforms random_affine reads per image: 4, one more with a shear, then 2 * WARP_KNOTS**2
    more with a warp, then one more with a gamma above 1 (so a transform without any of them draws
    exactly what it drew before they existed)."""
    return COLUMNS + (shear_degrees > 0) + (2 * WARP_KNOTS ** 2 if warp_px > 0 else 0) + (gamma > 1)


def warp_offsets(u: torch.Tensor, warp_px: float, height: int, width: int) -> torch.Tensor:
    """[N, 2 * WARP_KNOTS**2] uniforms -> [N, height, width, 2] offsets of a sampling grid in
    affine_grid's normalised coordinates (x then y): a smooth field moving each pixel by at most
    +-warp_px pixels along each axis."""
    knots = (2 * u - 1).view(len(u), 2, WARP_KNOTS, WARP_KNOTS)
    field = F.interpolate(knots, size=(height, width), mode="bicubic", align_corners=True).clamp(-1, 1)
    per_px = torch.tensor([2 * warp_px / width, 2 * warp_px / height], dtype=u.dtype, device=u.device)
    return field.permute(0, 2, 3, 1) * per_px


def affine_ranges(strength: float = 1.0) -> dict:
    """random_affine's ranges with each one `strength` times the small transform's:
    1.0 is the small transform itself (+-15 degrees, scale 0.85-1.15, +-2 px)."""
    return {"degrees": DEGREES * strength, "scale": (1 - SCALE_SPREAD * strength, 1 + SCALE_SPREAD * strength),
            "shift_px": SHIFT_PX * strength}


def affine_draws(generator: torch.Generator, total: int, columns: int = COLUMNS) -> torch.Tensor:
    """The [total, columns] uniform draws random_affine makes for a batch of total images (on the
    CPU); columns is draw_columns(shear_degrees)."""
    return torch.rand(total, columns, generator=generator, device="cpu")


def copies_draws(generator: torch.Generator | torch.Tensor, total: int, copies: int,
                 columns: int = COLUMNS) -> list[torch.Tensor]:
    """The draws of `copies` transforms of each of a batch's total images: a [total, columns] tensor
    per copy. generator is a torch.Generator (drawing total * copies rows, copy by copy) or those
    draws made ahead as a [total, columns * copies] tensor (image by image, as copies_ahead lays them
    out); one copy's draws are affine_draws' own."""
    draws = (generator if isinstance(generator, torch.Tensor)
             else copies_ahead(affine_draws(generator, total * copies, columns), copies))
    width = draws.shape[1] // copies
    return [draws[:, width * i:width * (i + 1)] for i in range(copies)]


def gamma_narrowed(draws: torch.Tensor, copies: int, gamma: float, reached: float) -> torch.Tensor:
    """Draws of a transform with a gamma (each copy's last column, copies_ahead's layout) whose largest
    power has come `reached` (0 to 1) of the way from 1 to gamma: the powers drawn lie in [1 / r, r] with
    r = 1 + (gamma - 1) * reached, the same uniforms mapped closer to a power of 1. A new tensor; the
    draws given are left as they are."""
    share = math.log(1 + (gamma - 1) * reached) / math.log(gamma)  # gamma ** share == r
    narrowed = draws.reshape(len(draws), copies, -1).clone()
    narrowed[..., -1] = 0.5 + (narrowed[..., -1] - 0.5) * share
    return narrowed.reshape(draws.shape)


def copies_ahead(draws: torch.Tensor, copies: int) -> torch.Tensor:
    """[copies * total, columns] draws, copy by copy -> [total, columns * copies], a row per image."""
    total, columns = len(draws) // copies, draws.shape[1]
    return draws.view(copies, total, columns).transpose(0, 1).reshape(total, columns * copies)


def random_affine(images: torch.Tensor, generator: torch.Generator | torch.Tensor, degrees: float = DEGREES,
                  scale: tuple[float, float] = (1 - SCALE_SPREAD, 1 + SCALE_SPREAD), shift_px: float = SHIFT_PX,
                  return_angle: bool = False, of: tuple[int, int] | None = None, shear_degrees: float = 0.0,
                  warp_px: float = 0.0, gamma: float = 1.0) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """[N, 1, H, W] images in [0, 1] -> the same, each under its own random
    rotation (+-degrees), isotropic scale and shift (+-shift_px pixels), and with
    shear_degrees > 0 a horizontal shear that tilts vertical strokes by up to
    +-shear_degrees, the way a rotation of that angle tilts them (a fifth uniform
    per image), and with warp_px > 0 a smooth local warp moving each pixel by up to +-warp_px
    pixels along each axis after the affine map (2 * WARP_KNOTS**2 more uniforms, after the
    shear's; warp_offsets), and with gamma > 1 each image's intensities raised to a power drawn
    log-uniformly in [1 / gamma, gamma] (one more uniform, the last): brighter or darker ink, the
    same shape; with return_angle, also each image's tilt of vertical strokes as a fraction of
    degrees: the rotation's, in [-1, 1], plus the shear's.
    of=(start, total): the images are rows start.. of a batch of total (one
    process's share); the draws are the whole batch's, so any split of a batch
    over processes transforms each image as one process would. generator may also be the
    whole batch's draws made ahead (affine_draws), already on the images' device."""
    n, _, h, w = images.shape
    start, total = of or (0, n)
    draws = (generator if isinstance(generator, torch.Tensor)
             else affine_draws(generator, total, draw_columns(shear_degrees, warp_px, gamma)))
    u = draws[start:start + n].to(images.device)
    angle = (2 * u[:, 0] - 1) * math.radians(degrees)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    tx, ty = (2 * u[:, 2] - 1) * (2 * shift_px / w), (2 * u[:, 3] - 1) * (2 * shift_px / h)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # grid maps output to input: the inverse scale
    if shear_degrees > 0:
        if u.shape[1] < COLUMNS + 1:
            raise ValueError(f"a shear needs {COLUMNS + 1} draws per image, got {u.shape[1]}")
        tilt = (2 * u[:, 4] - 1) * math.radians(shear_degrees)
        # the grid's map is rotation @ [[1, -tan(tilt)], [0, 1]]: a vertical stroke leans as under a rotation by tilt
        k = torch.tan(tilt)
        theta = torch.stack([torch.stack([cos, -cos * k - sin, tx], 1), torch.stack([sin, cos - sin * k, ty], 1)], 1)
        turn = (angle + tilt) / math.radians(degrees)
    else:
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # N x 2 x 3
        turn = 2 * u[:, 0] - 1
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    if warp_px > 0:
        first = COLUMNS + (shear_degrees > 0)
        if u.shape[1] < first + 2 * WARP_KNOTS ** 2:
            raise ValueError(f"a warp needs {first + 2 * WARP_KNOTS ** 2} draws per image, got {u.shape[1]}")
        grid = grid + warp_offsets(u[:, first:first + 2 * WARP_KNOTS ** 2], warp_px, h, w).to(grid.dtype)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if gamma > 1:
        last = draw_columns(shear_degrees, warp_px, gamma) - 1
        if u.shape[1] <= last:
            raise ValueError(f"a gamma needs {last + 1} draws per image, got {u.shape[1]}")
        power = (gamma ** (2 * u[:, last] - 1)).to(moved.dtype).view(n, 1, 1, 1)  # log-uniform in [1 / gamma, gamma]
        # black stays exactly black, and a generated image's gradient stays finite: x ** p below 1 has an
        # infinite slope at 0, so pixels at or below INK_FLOOR take the black branch, whose slope is 0
        inked = moved > INK_FLOOR
        moved = torch.where(inked, moved.clamp(INK_FLOOR, 1).pow(power), torch.zeros_like(moved))
    return (moved, turn) if return_angle else moved
