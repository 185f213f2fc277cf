"""A person's digit -> the encoder's input: a 28x28 image in MNIST's form.

MNIST digits are white on black, scaled so the longer side of the stroke's
bounding box is 20 pixels, and centred by their centre of mass in a 28x28
field (LeCun et al., the MNIST page). A drawing on a canvas or an uploaded
picture gets the same treatment here, so Q sees what it was trained on.
No torch, no gradio: numpy and PIL, as the client.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from infogan.client.images import read_idx_images
from infogan.contract import IMAGE_SHAPE, InfoganError
from infogan.files import MAX_IDX_BYTES, PIXEL_MAX, from_uint8, to_uint8

_, SIDE, _ = IMAGE_SHAPE  # 28
BOX = 20  # MNIST's digit box inside the 28x28 field
INK = 0.1  # a pixel with at least this much ink belongs to the stroke
# An upload may be MNIST's largest file uncompressed (47 MB), and no larger: the page
# holds every upload in memory, decompressed, while it reads it.
MAX_UPLOAD_BYTES = MAX_IDX_BYTES
# A 4096x4096 picture is 268 MB as the float RGBA that ink_of works on; a PNG that
# small on disk can declare far more (PIL only warns below 89 M pixels).
MAX_PICTURE_PIXELS = 4096 * 4096


def ink_of(picture: np.ndarray) -> np.ndarray:
    """[H, W] (gray), [H, W, 3] (RGB) or [H, W, 4] (RGBA) pixels -> ink in [0, 1], [H, W].

    Transparent pixels hold no ink (a canvas draws on a transparent layer).
    Dark strokes on a light background are inverted, MNIST being white on black."""
    a = np.asarray(picture)
    if a.dtype.kind not in "fiu" or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise InfoganError(f"image has shape {a.shape} and dtype {a.dtype}: give a gray, RGB or RGBA picture")
    scale = PIXEL_MAX if a.dtype.kind in "iu" or a.max(initial=0) > 1.0 else 1.0
    a = a.astype(np.float32) / scale
    alpha = None
    if a.ndim == 3:
        if a.shape[2] == 4:
            alpha = a[..., 3]
        gray = a[..., :3].mean(axis=2) if a.shape[2] >= 3 else a[..., 0]
    else:
        gray = a
    if alpha is not None and alpha.min() < 0.99:
        strokes = gray[alpha > 0.5]
        dark = strokes.size == 0 or strokes.mean() < 0.5
        return np.clip(alpha * (1.0 - gray) if dark else alpha * gray, 0, 1)
    # no transparency: the background is the most common shade, near the border
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return np.clip(1.0 - gray if np.median(border) > 0.5 else gray, 0, 1)


def mnist_form(ink: np.ndarray) -> np.ndarray:
    """Ink [H, W] in [0, 1] of any size -> [28, 28] float32: the stroke's bounding box
    scaled to 20 pixels on its longer side and centred by mass, as MNIST's digits are."""
    rows, cols = np.nonzero(ink >= INK)
    if len(rows) == 0:
        raise InfoganError("image is blank: draw or upload a digit (light strokes on dark, or dark on light)")
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    f = BOX / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = from_uint8(np.asarray(Image.fromarray(to_uint8(crop)).resize(size, Image.LANCZOS)))
    field = np.zeros((SIDE, SIDE), np.float32)
    mass = small.sum()
    cy = (small.sum(1) * np.arange(small.shape[0])).sum() / mass if mass else small.shape[0] / 2
    cx = (small.sum(0) * np.arange(small.shape[1])).sum() / mass if mass else small.shape[1] / 2
    top = int(np.clip(round(SIDE / 2 - cy), 0, SIDE - small.shape[0]))
    left = int(np.clip(round(SIDE / 2 - cx), 0, SIDE - small.shape[1]))
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(field, 0, 1)


def prepare(picture: np.ndarray) -> tuple[np.ndarray, str]:
    """A picture -> ([1, 28, 28] float32 in [0, 1], a note on what was done to it).

    A 28x28 picture is taken as it is (polarity aside): it may already be an
    MNIST digit. Any other size goes through mnist_form."""
    ink = ink_of(picture)
    h, w = ink.shape
    if (h, w) == (SIDE, SIDE):
        if not (ink >= INK).any():
            raise InfoganError("image is blank: draw or upload a digit (light strokes on dark, or dark on light)")
        return ink[None].astype(np.float32), "28x28: used as it is"
    return mnist_form(ink)[None], f"{w}x{h}: cropped to the stroke, scaled to 20 px and centred in 28x28, as MNIST"


def load_upload(path: str | Path, index: int = 0) -> tuple[np.ndarray, str]:
    """An uploaded file -> the encoder's [1, 28, 28] and a note. PNG (or another picture
    format PIL reads), or an IDX file of images (MNIST's format, gzipped or not) with `index`."""
    path = Path(path)
    if not path.is_file():
        raise InfoganError(f"file={path.name} was not received: upload it again")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise InfoganError(f"file={path.name} holds {path.stat().st_size} bytes: "
                           f"an upload may hold at most {MAX_UPLOAD_BYTES} bytes ({MAX_UPLOAD_BYTES >> 20} MiB)")
    if path.suffix.lower() in (".idx", ".gz", ".idx3-ubyte", ".ubyte") or path.name.endswith("-ubyte"):
        images = read_idx_images(path)
        if not 0 <= index < len(images):
            raise InfoganError(f"index={index} is out of range: {path.name} holds images 0..{len(images) - 1}")
        return images[index], f"{path.name}: image {index} of {len(images)}"
    try:
        with Image.open(path) as im:  # reads the header only: the size is known before the pixels are
            if im.width * im.height > MAX_PICTURE_PIXELS:
                raise InfoganError(f"file={path.name} is a {im.width}x{im.height} picture: "
                                   f"a picture may have at most {MAX_PICTURE_PIXELS} pixels (4096x4096)")
            picture = np.asarray(im.convert("RGBA") if "A" in im.getbands() else im.convert("L"))
    except (UnidentifiedImageError, OSError):
        raise InfoganError(f"file={path.name} is not a readable picture or IDX file: give a PNG or an IDX file") from None
    image, note = prepare(picture)
    return image, f"{path.name}, {note}"
