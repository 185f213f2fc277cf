"""The client on the in-process onnxruntime backend: the Python API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from infogan.cli import app
from infogan.client import Encoder, Generator
from infogan.client.images import read_idx_images, write_idx_images
from infogan.contract import (
    CATEGORICAL,
    CATEGORICAL_PROBS,
    CONTINUOUS,
    CONTINUOUS_MEAN,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    IMAGE,
    NOISE,
    REALNESS,
    LatentTemplate,
)
from test_client_support import CATEGORY_PURITY, CATEGORY_TO_DIGIT, make_repository


@pytest.fixture(scope="module")
def repo(module_tmp):
    return make_repository(module_tmp("repo"), versions=2)


@pytest.fixture(scope="module")
def gen(repo):
    return Generator.from_repository(repo)


@pytest.fixture(scope="module")
def enc(repo):
    return Encoder.from_repository(repo)


def raw_session(repo, model):
    return ort.InferenceSession(str(repo / model / "2" / "model.onnx"))


def test_from_repository_opens_the_newest_version(gen, enc):
    assert gen.backend.path.parent.name == "2"
    assert enc.backend.path.parent.name == "2"


def test_from_repository_opens_a_named_version(repo):
    assert Generator.from_repository(repo, version=1).backend.path.parent.name == "1"


def test_contract_is_read_from_the_onnx_metadata(gen):
    assert gen.template == LatentTemplate()
    assert gen.info.category_to_label == tuple(CATEGORY_TO_DIGIT)
    assert gen.info.label_names == tuple(str(d) for d in range(10))


def test_purity_per_label_is_read_from_the_metadata(gen):
    purity = gen.info.label_purity()
    assert purity == {d: p for d, p in zip(CATEGORY_TO_DIGIT, CATEGORY_PURITY)}
    assert purity[7] == 0.62 and list(purity) == sorted(purity)


def test_cli_generate_warns_in_one_line_when_the_label_is_a_mix(tmp_path, repo):
    args = ["generate", "--backend", "onnx", "--repository", str(repo), "-n", "4", "-o", str(tmp_path / "g.png")]
    mixed = CliRunner().invoke(app, [*args, "--label", "7"])
    assert mixed.exit_code == 0, mixed.output
    warnings = [line for line in mixed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "62%" in warnings[0] and "label 7" in warnings[0]
    clean = CliRunner().invoke(app, [*args, "--digit", "3", "--force"])  # --digit: the same option, MNIST's word
    assert clean.exit_code == 0 and "warning" not in clean.stderr


def test_cli_never_overwrites_an_output_without_force(tmp_path, repo):
    target = tmp_path / "keep.png"
    target.write_bytes(b"the user's file")
    for command in (["generate", "-n", "2"], ["traverse", "--steps", "2"]):
        res = CliRunner().invoke(app, [*command, "--backend", "onnx", "--repository", str(repo), "-o", str(target)])
        assert res.exit_code != 0 and "already exists" in str(res.exception) and "--force" in str(res.exception)
        assert target.read_bytes() == b"the user's file"
    res = CliRunner().invoke(app, ["generate", "-n", "2", "--backend", "onnx", "--repository", str(repo),
                                   "-o", str(target), "--force"])
    assert res.exit_code == 0, res.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_returns_images_in_unit_range(gen):
    images = gen.generate(5, seed=0)
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_generate_with_a_seed_is_reproducible_and_seeds_differ(gen):
    assert np.array_equal(gen.generate(4, seed=7), gen.generate(4, seed=7))
    assert not np.allclose(gen.generate(4, seed=7), gen.generate(4, seed=8))


def test_generate_equals_a_raw_session_on_the_same_latent(repo, gen):
    z = gen.latent(6, category=2, continuous=[0.5, -1.0], seed=3)
    (expected,) = raw_session(repo, GENERATOR_MODEL).run(None, {k: z[k] for k in (NOISE, CATEGORICAL, CONTINUOUS)})
    np.testing.assert_array_equal(gen.generate(6, category=2, continuous=[0.5, -1.0], seed=3), expected)


def test_category_fixes_the_first_code_and_continuous_values_apply_to_all(gen):
    z = gen.latent(4, category=6, continuous=[1.5, -2.0], seed=0)
    assert (z[CATEGORICAL].argmax(axis=1) == 6).all()
    np.testing.assert_array_equal(z[CONTINUOUS], np.tile([1.5, -2.0], (4, 1)).astype(np.float32))


def test_label_selects_the_category_the_metadata_maps_to_it(gen):
    z = gen.latent(3, label=7, seed=0)
    assert (z[CATEGORICAL].argmax(axis=1) == CATEGORY_TO_DIGIT.index(7)).all()


def test_same_seed_keeps_the_noise_when_only_the_category_changes(gen):
    a, b = gen.latent(3, category=0, seed=5), gen.latent(3, category=9, seed=5)
    np.testing.assert_array_equal(a[NOISE], b[NOISE])


def test_encode_equals_a_raw_session_and_maps_categories_to_labels(repo, gen, enc):
    images = gen.generate(7, seed=1)
    probs, mean, real = raw_session(repo, ENCODER_MODEL).run([CATEGORICAL_PROBS, CONTINUOUS_MEAN, REALNESS], {IMAGE: images})
    r = enc.encode(images)
    np.testing.assert_array_equal(r.categories, probs.argmax(axis=1))
    np.testing.assert_array_equal(r.confidence, probs.max(axis=1))
    np.testing.assert_array_equal(r.class_probs, probs)
    np.testing.assert_array_equal(r.labels, [CATEGORY_TO_DIGIT[c] for c in probs.argmax(axis=1)])
    np.testing.assert_array_equal(r.continuous, mean)
    np.testing.assert_array_equal(r.realness, real[:, 0])


def test_encode_accepts_uint8_and_images_without_a_channel_axis(enc):
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    as_float = enc.encode(pixels.astype(np.float32)[:, None] / 255.0)
    as_uint8 = enc.encode(pixels)
    np.testing.assert_allclose(as_uint8.class_probs, as_float.class_probs, atol=1e-6)


def test_idx_files_round_trip(tmp_path, gen):
    images = gen.generate(4, seed=2)
    back = read_idx_images(write_idx_images(images, tmp_path / "x-idx3-ubyte"))
    assert back.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(back, images, atol=0.5 / 255 + 1e-6)


# ---------------------------------------------------------------- the CLI on --backend onnx

runner = CliRunner()


def cli(repo, *args):
    result = runner.invoke(app, [*args, "--backend", "onnx", "--repository", str(repo)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_generate_writes_a_png_grid_and_the_npy_array(tmp_path, repo, gen):
    png, npy = tmp_path / "g.png", tmp_path / "g.npy"
    cli(repo, "generate", "-n", "10", "--label", "4", "--continuous", "-1.5,0.25", "--seed", "3",
        "--columns", "5", "--scale", "1", "-o", str(png), "-o", str(npy))
    array = np.load(npy)
    np.testing.assert_array_equal(array, gen.generate(10, label=4, continuous=[-1.5, 0.25], seed=3))
    # 2 rows x 5 columns of 28 px with 2 px of padding around each
    assert Image.open(png).size == (5 * 30 + 2, 2 * 30 + 2)


def test_cli_traverse_writes_one_row_per_category_and_one_column_per_step(tmp_path, repo):
    png = tmp_path / "t.png"
    out = cli(repo, "traverse", "--code", "1", "--steps", "7", "--scale", "1", "-o", str(png))
    assert Image.open(png).size == (7 * 30 + 2, 10 * 30 + 2)
    assert "10 rows x 7 columns" in out


def test_traverse_sweeps_only_the_chosen_code_in_label_order(gen):
    from infogan.client.commands import traverse_images

    images, rows = traverse_images(gen, code=0, steps=5, seed=0)
    assert [CATEGORY_TO_DIGIT[c] for c in rows] == list(range(10))
    assert images.shape == (50, 1, 28, 28)
    # columns differ (the code moves), and the first row is category rows[0] at c2 = -2
    z = gen.latent(1, category=rows[0], continuous=[-2.0, 0.0], seed=0)
    np.testing.assert_allclose(images[0], gen.run(z[NOISE], z[CATEGORICAL], z[CONTINUOUS])[0], atol=1e-6)
    assert not np.allclose(images[0], images[4])


def test_cli_encode_reads_pngs_and_idx_and_prints_json(tmp_path, repo, gen, enc):
    images = gen.generate(3, seed=4)
    pngs = []
    for i, im in enumerate(images):
        pngs.append(tmp_path / f"{i}.png")
        Image.fromarray((im[0] * 255 + 0.5).astype(np.uint8)).save(pngs[-1])
    idx = write_idx_images(images, tmp_path / "imgs-idx3-ubyte")
    rows = json.loads(cli(repo, "encode", *map(str, pngs), str(idx), "--json"))
    assert [r["image"] for r in rows[3:]] == [f"{idx}[{i}]" for i in range(3)]
    expected = enc.encode(read_idx_images(idx)).rows()
    for got, want in zip(rows[3:], expected):
        assert got["category"] == want["category"] and got["label"] == want["label"]
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
    assert [r["label"] for r in rows[:3]] == [r["label"] for r in rows[3:]]


def test_cli_encode_prints_a_table_with_a_line_per_image(tmp_path, repo, gen):
    idx = write_idx_images(gen.generate(4, seed=0), tmp_path / "imgs-idx3-ubyte")
    lines = cli(repo, "encode", str(idx), "--limit", "2").strip().splitlines()
    assert lines[0].split() == ["image", "category", "label", "probability", "c2", "c3", "realness"]
    assert len(lines) == 3
