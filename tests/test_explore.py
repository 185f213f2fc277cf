"""The latent explorer: its plain functions, its HTTP API through Gradio's own
client against a live explore_page, and the page over a Triton that goes away and
comes back. The real-browser test is in test_explore_browser.py."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from infogan.client import Encoder
from infogan.client.images import write_idx_images
from infogan.contract import InfoganError
from infogan.explore.drawing import BOX, load_upload, mnist_form, prepare
from infogan.explore.views import MAX_BATCH, TRAVERSAL_RANGE, TRAVERSAL_ROWS, TRAVERSAL_STEPS, Explorer
from infogan.serve.server import TritonServer, free_port
from test_client_support import CATEGORY_PURITY, CATEGORY_TO_DIGIT

pytest.importorskip("gradio")


@pytest.fixture(scope="module")
def digits(data_dir):
    from infogan.client.images import read_idx_images

    return read_idx_images(data_dir / "mnist" / "t10k-images-idx3-ubyte")[:20]


def stroke_canvas(h=280, w=280, background=255, ink=0, alpha=False) -> np.ndarray:
    """A '7' drawn with a thick pen: a bar and a diagonal."""
    pen = np.zeros((h, w), bool)
    pen[h // 6:h // 6 + 14, w // 4:3 * w // 4] = True
    for y in range(h // 6, 5 * h // 6):
        x = int(3 * w // 4 - (y - h // 6) * 0.45)
        pen[y, x - 7:x + 7] = True
    c = np.where(pen, ink, background).astype(np.uint8)
    if alpha:  # a transparent layer: strokes opaque, the rest clear
        return np.dstack([c, c, c, np.where(pen, 255, 0).astype(np.uint8)])
    return c


# ---------------------------------------------------------------- drawing


def test_a_drawing_takes_mnist_form_white_on_black_20px_box_centred_by_mass():
    image, note = prepare(stroke_canvas())
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    assert image.max() > 0.9 and image[0, 0, 0] == 0.0  # inverted: ink is white, background black
    rows, cols = np.nonzero(image[0] > 0.1)
    assert max(rows.ptp(), cols.ptp()) + 1 in (BOX - 1, BOX, BOX + 1)
    ys, xs = np.mgrid[0:28, 0:28]
    cy, cx = (image[0] * ys).sum() / image[0].sum(), (image[0] * xs).sum() / image[0].sum()
    assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5
    assert "280x280" in note


def test_dark_on_light_light_on_dark_and_a_transparent_layer_give_the_same_digit():
    a = prepare(stroke_canvas())[0]
    b = prepare(stroke_canvas(background=0, ink=255))[0]
    c = prepare(stroke_canvas(background=0, ink=0, alpha=True))[0]
    assert np.abs(a - b).max() < 1e-6
    assert np.abs(a - c).max() < 0.05


def test_a_28x28_mnist_digit_is_used_as_it_is(digits):
    image, note = prepare((digits[0, 0] * 255).astype(np.uint8))
    assert np.abs(image - digits[0]).max() < 1e-6
    assert "as it is" in note


@pytest.mark.parametrize("picture", [np.zeros((280, 280, 4), np.uint8), np.full((40, 40), 255, np.uint8)])
def test_a_blank_picture_is_refused_in_one_line(picture):
    with pytest.raises(InfoganError, match=r"^image is blank") as e:
        prepare(picture)
    assert "\n" not in str(e.value)


def test_a_picture_of_another_kind_is_refused_naming_its_shape():
    with pytest.raises(InfoganError, match=r"image has shape \(28, 28, 2\)"):
        prepare(np.zeros((28, 28, 2), np.uint8))


def test_uploads_png_of_any_size_idx_with_an_index_and_errors(tmp_path, digits):
    big = tmp_path / "seven.png"
    Image.fromarray(stroke_canvas(140, 100)).save(big)
    image, note = load_upload(big)
    assert image.shape == (1, 28, 28) and "100x140" in note
    idx = tmp_path / "digits-idx3-ubyte.gz"
    with gzip.open(idx, "wb") as f:
        f.write(write_idx_images(digits, tmp_path / "plain-idx3-ubyte").read_bytes())
    image, note = load_upload(idx, 5)
    assert np.abs(image - digits[5]).max() < 1e-6 and "image 5 of 20" in note
    with pytest.raises(InfoganError, match=r"index=20 is out of range: .* holds images 0\.\.19"):
        load_upload(idx, 20)
    junk = tmp_path / "notes.png"
    junk.write_text("not a picture")
    with pytest.raises(InfoganError, match=r"file=notes.png is not a readable picture"):
        load_upload(junk)


def test_mnist_form_keeps_a_thin_stroke():
    line = np.zeros((100, 100), np.float32)
    line[10:90, 50] = 1.0  # one pixel wide: a "1"
    assert (mnist_form(line) > 0.1).sum() >= BOX


# ---------------------------------------------------------------- views


def test_categories_are_listed_by_digit_with_their_purity(explorer):
    choices = explorer.categories()
    assert [CATEGORY_TO_DIGIT[c] for _, c in choices] == list(range(10))
    seven = CATEGORY_TO_DIGIT.index(7)
    assert (f"7 (purity {100 * CATEGORY_PURITY[seven]:.0f}%)", seven) in choices


def test_a_code_slider_changes_the_grid_and_the_seed_fixes_it(explorer):
    a = explorer.grid(3, [0.0, 0.0], 7, 64)
    assert a.shape == (8 * 28 + 9 * 2, 8 * 28 + 9 * 2) and a.dtype == np.uint8  # 8x8 with 2-px gaps
    assert np.array_equal(a, explorer.grid(3, [0.0, 0.0], 7, 64))
    assert not np.array_equal(a, explorer.grid(3, [1.5, 0.0], 7, 64))
    assert not np.array_equal(a, explorer.grid(3, [0.0, 0.0], 8, 64))
    assert explorer.grid(3, [0.0, 0.0], 7, 10).shape[1] == 4 * 28 + 5 * 2  # ceil(sqrt(10)) columns


def test_the_traversal_sweeps_one_code_along_each_row(explorer):
    strip = explorer.traversal(2, [0.0, 0.0], 0, code=1)
    cell = 28 + 2
    assert strip.shape == (TRAVERSAL_ROWS * cell + 2, TRAVERSAL_STEPS * cell + 2)
    row = [strip[2:30, 2 + i * cell: 30 + i * cell] for i in range(TRAVERSAL_STEPS)]
    assert not np.array_equal(row[0], row[-1])
    # the sweep reaches the slider range's ends: its last column is the grid's image at that value
    end = explorer.gen.latent(TRAVERSAL_ROWS, category=2, seed=0)["noise"][:1]
    z = explorer.gen.latent(1, category=2, continuous=[0.0, TRAVERSAL_RANGE[1]], seed=0)
    img = explorer.gen.run(end, z["categorical"], z["continuous"])
    assert np.abs(row[-1].astype(int) - np.round(img[0, 0] * 255).astype(int)).max() <= 1


@pytest.mark.parametrize("args,message", [
    ((10, [0, 0], 0, 64), r"category=10 is out of range: allowed are 0\.\.9"),
    ((None, [0, 0], 0, 64), r"category=None is out of range"),
    ((1, [0], 0, 64), r"codes=\[0\] are invalid: give 2 finite numbers"),
    ((1, [0, float("nan")], 0, 64), r"codes=.* are invalid"),
    ((1, [0, 0], -1, 64), r"seed=-1 is invalid"),
    ((1, [0, 0], 0.5, 64), r"seed=0.5 is invalid"),
    ((1, [0, 0], 0, 0), rf"batch=0 is invalid: give a number of images in 1\.\.{MAX_BATCH}"),
    (("seven", [0, 0], 0, 64), r"category=seven is out of range: allowed are 0\.\.9"),
    ((1, ["left", 0], 0, 64), r"codes=\['left', 0\] are invalid: give 2 finite numbers"),
    ((1, [0, 0], 0, MAX_BATCH + 1), rf"batch={MAX_BATCH + 1} is invalid"),
])
def test_bad_generate_input_names_the_parameter(explorer, args, message):
    with pytest.raises(InfoganError, match=message):
        explorer.grid(*args)


def test_reading_a_digit_equals_the_encoder_api_and_rebuilds_it(explorer, explore_repo, digits):
    enc = Encoder.from_repository(explore_repo)
    expected = enc.encode(digits[:1])
    reading = explorer.read(digits[0], "note")
    top = max(reading.probabilities, key=reading.probabilities.get)
    assert reading.label == str(expected.labels[0]) and top.startswith(f"{expected.labels[0]} (category ")
    assert abs(sum(reading.probabilities.values()) - 1) < 1e-4 and len(reading.probabilities) == 10
    assert np.allclose(reading.continuous, expected.continuous[0], atol=1e-6)
    assert reading.realness == pytest.approx(float(expected.realness[0]), abs=1e-6)
    assert reading.side_by_side.shape == (28 + 4, 2 * 28 + 6)
    left = reading.side_by_side[2:30, 2:30]
    assert np.abs(left.astype(int) - np.round(digits[0, 0] * 255).astype(int)).max() <= 1


def test_the_model_panel_says_what_runs_where(explorer, explore_repo):
    text = explorer.describe()
    assert f"onnxruntime in this process, {explore_repo}" in text
    assert "`infogan_generator` version 1 (CPUExecutionProvider)" in text
    assert "10-way categorical code, 2 continuous codes U(-1, 1), U(-1, 1), 62 noise variables" in text
    assert "7: 62%" in text  # the mixed category's purity, by its digit


# ---------------------------------------------------------------- the page's HTTP API


def test_the_page_serves_generate_read_and_describe_over_its_api(explore_page, tmp_path, digits, explorer):
    from gradio_client import Client, handle_file

    client = Client(explore_page, verbose=False)
    grid, strip, status = client.predict(CATEGORY_TO_DIGIT.index(4), 3, 16, 0, 0.5, -0.5, api_name="/generate")
    assert status == ""
    assert np.array_equal(np.asarray(Image.open(grid).convert("L")), explorer.grid(CATEGORY_TO_DIGIT.index(4), [0.5, -0.5], 3, 16))
    assert Image.open(strip).size == (TRAVERSAL_STEPS * 30 + 2, TRAVERSAL_ROWS * 30 + 2)

    idx = write_idx_images(digits, tmp_path / "digits-idx3-ubyte")
    probs, text, pair, status = client.predict(handle_file(str(idx)), 2, api_name="/read_file")
    assert status == ""
    label = explorer.read(digits[2]).label
    assert probs["label"].startswith(f"{label} (category ") and f"**Q reads:** {label}" in text
    markdown, status = client.predict(api_name="/describe")
    assert "**Latent template:**" in markdown and status == ""


def test_bad_input_on_the_page_is_a_message_not_a_traceback(explore_page, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(explore_page, verbose=False)
    *_, status = client.predict(CATEGORY_TO_DIGIT.index(4), -3, 16, 0, 0.0, 0.0, api_name="/generate")
    assert status == "seed=-3 is invalid: give an integer in 0..4294967295"
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    *_, status = client.predict(handle_file(str(junk)), 0, api_name="/read_file")
    assert status.startswith("file=junk.png is not a readable picture") and "Traceback" not in status
    # a value outside a slider's range is refused by Gradio itself, with a message the page shows
    with pytest.raises(AppError, match=rf"Value 300 is greater than maximum value {MAX_BATCH}"):
        client.predict(0, 0, 300, 0, 0.0, 0.0, api_name="/generate")


# ---------------------------------------------------------------- over Triton


@pytest.mark.slow
def test_over_triton_a_server_that_goes_away_is_reported_and_the_page_recovers(explore_repo):
    from infogan.explore.app import UNAVAILABLE, problem

    server = TritonServer(explore_repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()).start()
    ex = Explorer.open(url=server.grpc_url, timeout=3.0)
    try:
        before = ex.grid(1, [0.0, 0.0], 0, 16)
        assert f"Triton at {server.grpc_url}" in ex.describe()
        server.stop()
        with pytest.raises(InfoganError) as e:
            ex.grid(1, [0.0, 0.0], 0, 16)
        assert problem(e.value).startswith(f"{UNAVAILABLE}: ") and "\n" not in problem(e.value)
        server = TritonServer(explore_repo, **server.ports).start(120)  # back on the same ports
        assert np.array_equal(ex.grid(1, [0.0, 0.0], 0, 16), before)  # the same objects answer again
    finally:
        ex.close()
        server.stop()


# ---------------------------------------------------------------- the command


def test_the_command_refuses_a_missing_repository_and_a_busy_port_in_one_line(explore_repo, tmp_path):
    import socket

    from typer.testing import CliRunner

    from infogan.cli import app

    result = CliRunner().invoke(app, ["explore", "--repository", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and isinstance(result.exception, InfoganError)
    assert "\n" not in str(result.exception) and "nothing" in str(result.exception)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["explore", "--repository", str(explore_repo), "--port", str(port)])
    assert isinstance(result.exception, InfoganError), result.output
    assert str(result.exception).startswith(f"port={port} cannot be used on 127.0.0.1")
    assert "\n" not in str(result.exception)


def test_the_command_warns_before_it_exposes_the_page(explore_repo):
    import socket

    from typer.testing import CliRunner

    from infogan.cli import app

    with socket.socket() as busy:  # a busy port ends the command right after the warning
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["explore", "--repository", str(explore_repo), "--host", "0.0.0.0", "--port", str(port)])
    said = result.output + (getattr(result, "stderr", "") or "")
    assert f"warning: host=0.0.0.0 exposes the explorer (port {port}) to the network" in said
    assert isinstance(result.exception, InfoganError)
