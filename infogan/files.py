"""Files that training, export, serving and the client all read or write (no torch):
atomic writes, IDX arrays, image grids and PNGs.

Images are [N, 1, H, W] float32 in [0, 1], as in the tensor contract.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from infogan.contract import InfoganError

IDX_UBYTE = 0x08  # the IDX type code for unsigned bytes (MNIST's pixels and labels)
# The most bytes an IDX file may hold, once decompressed. MNIST's (and Fashion-MNIST's)
# largest file, the training images, is 47,040,016 bytes; an upload to the explorer goes
# through read_idx too, so a small gzip that inflates past this is refused, not inflated.
MAX_IDX_BYTES = 64 * 2**20
IDX_SIZE_RULE = (f"an IDX file may hold at most {MAX_IDX_BYTES} bytes ({MAX_IDX_BYTES >> 20} MiB; "
                 "MNIST's largest holds 47040016)")
GUNZIP_CHUNK = 2**20


# ---------------------------------------------------------------- atomic writes


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary dot-file beside `path` to write; on success it is fsynced and
    renamed over `path`, so readers and crashes see the old file or the new one,
    never half of one. On an error the temporary file is removed and `path` kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to path atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


# ---------------------------------------------------------------- IDX arrays


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format, optionally gzipped) -> a uint8 array.

    Layout: 2 zero bytes, a type byte, a dimension count, one big-endian uint32
    per dimension, then the data. ndim: the dimension count required, if any.
    """
    path = Path(path)
    if not path.is_file():
        raise InfoganError(f"idx={path} does not exist")
    if path.stat().st_size > MAX_IDX_BYTES:
        raise InfoganError(f"idx={path} holds {path.stat().st_size} bytes: {IDX_SIZE_RULE}")
    raw: bytes | bytearray = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gunzip_bounded(raw, path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InfoganError(f"idx={path} is not an IDX file (bad magic number)")
    if raw[2] != IDX_UBYTE or (ndim is not None and raw[3] != ndim):
        want = f" with {ndim} dims" if ndim is not None else ""
        raise InfoganError(f"idx={path} has IDX type 0x{raw[2]:02x} with {raw[3]} dims: expected unsigned bytes{want}")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise InfoganError(f"idx={path} is truncated inside its header")
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    size = int(np.prod(dims))
    if len(raw) != header + size:
        raise InfoganError(f"idx={path} holds {len(raw) - header} data bytes, its header promises {size}: "
                           "the file is truncated or corrupted")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()  # writable


def gunzip_bounded(raw: bytes, path: Path) -> bytearray:
    """Gzipped bytes -> their content, inflated a chunk at a time so that a gzip bomb
    (a few kilobytes that inflate to gigabytes) is refused after MAX_IDX_BYTES, not held."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            while chunk := f.read(GUNZIP_CHUNK):
                out += chunk
                if len(out) > MAX_IDX_BYTES:
                    raise InfoganError(f"idx={path} decompresses to more than {MAX_IDX_BYTES} bytes: {IDX_SIZE_RULE}")
    except (OSError, EOFError, zlib.error):
        raise InfoganError(f"idx={path} is not an IDX file: it starts like gzip but does not decompress") from None
    return out


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """A uint8 array -> an IDX file (the inverse of read_idx), written atomically."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, IDX_UBYTE, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    return write_atomic(path, header + a.tobytes())


# ---------------------------------------------------------------- grids and PNGs


# the brightest pixel of a stored image (uint8); the models read pixels / PIXEL_MAX, in [0, 1]
PIXEL_MAX = 255.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 pixels (clipped, rounded)."""
    return (np.clip(np.asarray(images, np.float32), 0.0, 1.0) * PIXEL_MAX + 0.5).astype(np.uint8)


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], same shape (the inverse of to_uint8): the torch-free runtime's
    twin of training/images.py as_float_images, so a client, an export and the explorer read an image
    as the models were trained to."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise InfoganError(f"pixels have dtype {pixels.dtype}: expected uint8 in 0-255")
    return pixels.astype(np.float32) / PIXEL_MAX


def make_grid(images: np.ndarray, ncols: int, pad: int = 2, pad_value: float = 0.0) -> np.ndarray:
    """[N, 1, H, W] -> one [rows*(H+pad)+pad, ncols*(W+pad)+pad] float image, row-major."""
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
        grid[y:y + h, x:x + w] = images[i, 0]
    return grid


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """A [H, W] image (float in [0, 1], or uint8) as a grayscale PNG, nearest-neighbour
    upscaled, written atomically."""
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else to_uint8(image)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return Path(path)
