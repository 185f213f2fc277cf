"""Images in and out of the client, without torch: grids, PNG and IDX files.

Arrays are [N, 1, H, W] float32 in [0, 1], as in the tensor contract.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from infogan.contract import IMAGE_SHAPE, InfoganError

IDX_UBYTE = 0x08  # the IDX type code for unsigned bytes (MNIST's pixels)


def make_grid(images: np.ndarray, ncols: int, pad: int = 2, pad_value: float = 0.0) -> np.ndarray:
    """[N, 1, H, W] -> one [rows*(H+pad)+pad, ncols*(W+pad)+pad] image, row-major."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise InfoganError(f"images have shape {images.shape}: a grid takes [N, 1, H, W]")
    n, _, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = images[i, 0]
    return grid


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """A [H, W] float image in [0, 1] as an 8-bit grayscale PNG (nearest-neighbour upscaled)."""
    path = Path(path)
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def load_png(path: str | Path) -> np.ndarray:
    """One image file -> [1, 28, 28] float32 in [0, 1] (colour is converted to grayscale)."""
    path = Path(path)
    _, h, w = IMAGE_SHAPE
    try:
        with Image.open(path) as im:
            size = im.size
            pixels = np.asarray(im.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise InfoganError(f"image={path} does not exist") from None
    except (UnidentifiedImageError, OSError):
        raise InfoganError(f"image={path} is not a readable image: give {w}x{h} PNG files or an IDX file") from None
    if size != (w, h):
        raise InfoganError(f"image={path} is {size[0]}x{size[1]}: the encoder takes {w}x{h} images")
    return (pixels / 255.0)[None]


def read_idx_images(path: str | Path) -> np.ndarray:
    """An IDX image file (MNIST's format, optionally gzipped) -> [N, 1, 28, 28] float32 in [0, 1].

    Layout: 2 zero bytes, a type byte, a dimension count, one big-endian uint32
    per dimension, then the data.
    """
    path = Path(path)
    if not path.is_file():
        raise InfoganError(f"idx={path} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise InfoganError(f"idx={path} is a damaged gzip file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE:
        raise InfoganError(f"idx={path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    _, h, w = IMAGE_SHAPE
    if ndim != 3 or dims[1:] != (h, w):
        raise InfoganError(f"idx={path} holds arrays of shape {dims}: the encoder takes [N, {h}, {w}] images")
    if len(raw) != header + int(np.prod(dims)):
        raise InfoganError(f"idx={path} is truncated: its header promises {dims} bytes of images")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims[0], 1, h, w)
    return data.astype(np.float32) / 255.0


def write_idx_images(images: np.ndarray, path: str | Path) -> Path:
    """[N, 1, H, W] in [0, 1] -> an IDX file of unsigned bytes (the inverse of read_idx_images)."""
    a = (np.clip(np.asarray(images), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    n, _, h, w = a.shape
    header = bytes([0, 0, IDX_UBYTE, 3]) + np.array([n, h, w], dtype=">u4").tobytes()
    path = Path(path)
    path.write_bytes(header + a.tobytes())
    return path


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
