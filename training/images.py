"""Dataset images as the tensors the models read.

Datasets are kept as uint8 arrays [N, 1, 28, 28] in 0-255 (one small array in memory); every
model, the judge included, reads float32 in [0, 1]. This is the one place training converts; the
torch-free runtime's twin is infogan/files.py from_uint8.
"""

from __future__ import annotations

import numpy as np
import torch

from infogan.files import PIXEL_MAX

# images a model reads in one no-grad pass when it is scored (Q's predictions, the judge's features):
# memory, not results, depends on it
EVAL_BATCH = 1000


def as_float_images(u8: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images as float32 in [0, 1] on `device` (the CPU when None), same shape. The
    tensor never shares memory with the array, which may be read-only."""
    if u8.dtype != np.uint8:
        raise TypeError(f"images have dtype {u8.dtype}: expected uint8 in 0-255")
    u8 = np.ascontiguousarray(u8)
    if not u8.flags.writeable:  # torch.from_numpy warns on read-only arrays
        u8 = u8.copy()
    return torch.from_numpy(u8).to(device=device, dtype=torch.float32).div_(PIXEL_MAX)
