"""Images into the client, without torch: PNG and IDX files as one batch.

Arrays are [N, 1, H, W] float32 in [0, 1], as in the tensor contract. Grids,
PNG writing and IDX reading live in infogan.files, shared with training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from infogan.contract import IMAGE_SHAPE, InfoganError
from infogan.files import from_uint8, read_idx, to_uint8, write_idx


def load_png(path: str | Path) -> np.ndarray:
    """One image file -> [1, 28, 28] float32 in [0, 1] (colour is converted to grayscale)."""
    path = Path(path)
    _, h, w = IMAGE_SHAPE
    try:
        with Image.open(path) as im:
            size = im.size
            pixels = np.asarray(im.convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        raise InfoganError(f"image={path} does not exist") from None
    except (UnidentifiedImageError, OSError):
        raise InfoganError(f"image={path} is not a readable image: give {w}x{h} PNG files or an IDX file") from None
    if size != (w, h):
        raise InfoganError(f"image={path} is {size[0]}x{size[1]}: the encoder takes {w}x{h} images")
    return from_uint8(pixels)[None]


def read_idx_images(path: str | Path) -> np.ndarray:
    """An IDX image file (MNIST's format, optionally gzipped) -> [N, 1, 28, 28] float32 in [0, 1]."""
    _, h, w = IMAGE_SHAPE
    data = read_idx(path)
    if data.ndim != 3 or data.shape[1:] != (h, w):
        raise InfoganError(f"idx={path} holds arrays of shape {data.shape}: the encoder takes [N, {h}, {w}] images")
    return from_uint8(data[:, None])


def write_idx_images(images: np.ndarray, path: str | Path) -> Path:
    """[N, 1, H, W] in [0, 1] -> an IDX file of unsigned bytes (the inverse of read_idx_images)."""
    return write_idx(path, to_uint8(np.asarray(images)[:, 0]))


def load_images(paths: list[Path]) -> tuple[np.ndarray, list[str]]:
    """PNG files and/or IDX files -> one batch and a source name per image."""
    if not paths:
        raise InfoganError("images=[] is invalid: give PNG files or an IDX file")
    batches, names = [], []
    for p in paths:
        p = Path(p)
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
            batches.append(load_png(p)[None])
            names.append(str(p))
        else:
            imgs = read_idx_images(p)
            batches.append(imgs)
            names.extend(f"{p}[{i}]" for i in range(len(imgs)))
    return np.concatenate(batches), names
