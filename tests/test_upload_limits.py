"""Uploads and IDX files are bounded: a gzip bomb is refused after MAX_IDX_BYTES
without being inflated, an oversize file or picture is refused before it is
read, each in one line, directly and through the explorer page's upload handler."""

from __future__ import annotations

import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from infogan.contract import InfoganError
from infogan.files import MAX_IDX_BYTES, read_idx

BOMB_BYTES = 4 * MAX_IDX_BYTES  # what the bomb inflates to: far past the limit
IMAGES_IN_BOMB = (BOMB_BYTES - 16) // 784


def idx_header(n: int) -> bytes:
    """An IDX header for n 28x28 unsigned-byte images."""
    return bytes([0, 0, 0x08, 3]) + np.array([n, 28, 28], dtype=">u4").tobytes()


@pytest.fixture(scope="module")
def bomb(module_tmp):
    """A well-formed gzipped IDX file of ~342k blank images: ~250 KB that inflate to 256 MiB.
    Its header keeps its promise, so only a size limit can refuse it."""
    path = module_tmp("bomb") / "bomb-idx3-ubyte.gz"
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    with open(path, "wb") as f:
        f.write(gz.compress(idx_header(IMAGES_IN_BOMB)))
        zeros, left = bytes(2**20), IMAGES_IN_BOMB * 784
        while left:
            f.write(gz.compress(zeros[:min(left, len(zeros))]))
            left -= min(left, len(zeros))
        f.write(gz.flush())
    assert path.stat().st_size < 2**20
    return path


def peak_bytes_of(fn) -> tuple[int, Exception | None]:
    """The peak of Python's traced allocations (every thread) while fn runs, and what it raised."""
    tracemalloc.start()
    try:
        fn()
        raised = None
    except Exception as e:  # noqa: BLE001 - returned for the caller to check
        raised = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


def no_more_than_the_limit(peak: int) -> bool:
    # the limit, plus one inflated chunk, plus a bytearray's growth slack
    return peak < MAX_IDX_BYTES * 1.25


def test_a_gzip_bomb_is_refused_in_one_line_without_being_inflated(bomb):
    peak, raised = peak_bytes_of(lambda: read_idx(bomb, 3))
    assert isinstance(raised, InfoganError), raised
    assert str(raised).startswith(f"idx={bomb} decompresses to more than {MAX_IDX_BYTES} bytes")
    assert "\n" not in str(raised)
    assert no_more_than_the_limit(peak), f"{peak} bytes allocated"


def test_an_idx_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path):
    n = MAX_IDX_BYTES // 784 + 1  # a header that keeps its promise, one image too many
    path = tmp_path / "huge-idx3-ubyte"
    with open(path, "wb") as f:
        f.write(idx_header(n))
        f.truncate(16 + n * 784)  # sparse: no disk spent on the zeros
    peak, raised = peak_bytes_of(lambda: read_idx(path, 3))
    assert isinstance(raised, InfoganError), raised
    assert str(raised).startswith(f"idx={path} holds {16 + n * 784} bytes: an IDX file may hold at most {MAX_IDX_BYTES}")
    assert peak < 2**20


def test_the_largest_real_mnist_file_is_within_the_limit(data_dir):
    assert read_idx(data_dir / "mnist" / "train-images-idx3-ubyte", 3).shape == (60000, 28, 28)


# ---------------------------------------------------------------- the explorer's uploads


def test_an_upload_larger_than_the_limit_is_refused_in_one_line(tmp_path):
    from infogan.explore.drawing import MAX_UPLOAD_BYTES, load_upload

    big = tmp_path / "big-idx3-ubyte"
    with open(big, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(InfoganError, match=rf"^file=big-idx3-ubyte holds {MAX_UPLOAD_BYTES + 1} bytes: "
                                           rf"an upload may hold at most {MAX_UPLOAD_BYTES} bytes \(64 MiB\)$"):
        load_upload(big)


def test_a_picture_with_too_many_pixels_is_refused_before_its_pixels_are_read(tmp_path):
    from infogan.explore.drawing import MAX_PICTURE_PIXELS, load_upload

    wide = tmp_path / "wide.png"
    Image.new("L", (8192, 4096)).save(wide)  # ~100 KB on disk; 537 MB as float RGBA
    assert 8192 * 4096 > MAX_PICTURE_PIXELS
    peak, raised = peak_bytes_of(lambda: load_upload(wide))
    assert isinstance(raised, InfoganError), raised
    assert str(raised) == f"file=wide.png is a 8192x4096 picture: a picture may have at most {MAX_PICTURE_PIXELS} pixels (4096x4096)"
    assert peak < 2**20  # the header only


def test_the_page_refuses_a_gzip_bomb_in_its_status_line_without_inflating_it(explore_page, bomb):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    client = Client(explore_page, verbose=False)
    result = []
    # the page runs in this process (explore_page), so its allocations are traced too
    peak, raised = peak_bytes_of(lambda: result.extend(client.predict(handle_file(str(bomb)), 0, api_name="/read_file")))
    assert raised is None, raised
    status = result[-1]
    assert status.startswith("idx=") and f"decompresses to more than {MAX_IDX_BYTES} bytes" in status, status
    assert "\n" not in status and "Traceback" not in status
    # the page's own work (gradio, its client) comes on top of the refused inflation; inflating
    # the bomb would take BOMB_BYTES at least, and four times that as the float images
    assert peak < BOMB_BYTES / 2, f"{peak} bytes allocated"


def test_the_page_refuses_an_oversize_upload_before_the_handler_sees_it(explore_page, tmp_path):
    pytest.importorskip("gradio")
    import httpx
    from gradio_client import Client, handle_file

    from infogan.explore.drawing import MAX_UPLOAD_BYTES

    big = tmp_path / "big-idx3-ubyte"
    with open(big, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    # Gradio's client reads the page's limit from its config and refuses to send the file
    with pytest.raises(Exception, match=rf"exceeds the maximum file size of {MAX_UPLOAD_BYTES} bytes"):
        Client(explore_page, verbose=False).predict(handle_file(str(big)), 0, api_name="/read_file")
    # and the server refuses it from any other sender, once the limit is passed
    with open(big, "rb") as f:
        reply = httpx.post(explore_page.rstrip("/") + "/gradio_api/upload", files={"files": ("big-idx3-ubyte", f)},
                           timeout=120)
    assert reply.status_code == 413 and f"maximum allowed size of {MAX_UPLOAD_BYTES} bytes" in reply.text
