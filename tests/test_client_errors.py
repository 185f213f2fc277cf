"""Bad input gets one clear InfoganError line, raised before anything reaches a
backend: each test names the input it refuses. (That nothing reaches a Triton
server is pinned in test_client_triton.py through the server's own counters.)"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from infogan import defaults
from infogan.client import Encoder, Generator
from infogan.client.images import load_images
from infogan.client.triton_backend import server_status
from infogan.contract import InfoganError
from test_client_support import make_repository


class CountingBackend:
    """Wraps a real onnxruntime backend and counts the calls that reach it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.info, self.input_names, self.output_names = inner.info, inner.input_names, inner.output_names

    def infer(self, feeds):
        self.calls += 1
        return self.inner.infer(feeds)

    def close(self):
        pass


@pytest.fixture(scope="module")
def repo(module_tmp):
    return make_repository(module_tmp("repo"))


@pytest.fixture
def gen(repo):
    return Generator(CountingBackend(Generator.from_repository(repo).backend))


@pytest.fixture
def enc(repo):
    return Encoder(CountingBackend(Encoder.from_repository(repo).backend))


def refused(call, *words):
    with pytest.raises(InfoganError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message
    return message


def test_category_out_of_range_is_refused(gen):
    refused(lambda: gen.generate(2, category=10), "category=10", "0..9")
    refused(lambda: gen.generate(2, category=-1), "category=-1")
    assert gen.backend.calls == 0


def test_label_outside_the_mapping_is_refused(gen):
    refused(lambda: gen.generate(2, label=12), "label=12", "covers labels")
    assert gen.backend.calls == 0


def test_category_and_label_together_are_refused(gen):
    refused(lambda: gen.generate(2, category=1, label=1), "give one of them")


def test_wrong_number_of_continuous_values_is_refused(gen):
    refused(lambda: gen.generate(2, continuous=[0.1, 0.2, 0.3]), "3 values", "takes 2")
    refused(lambda: gen.generate(2, continuous=[0.1]), "1 values", "takes 2")
    assert gen.backend.calls == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_continuous_values_are_refused(gen, value):
    refused(lambda: gen.generate(2, continuous=[0.0, value]), "finite")
    assert gen.backend.calls == 0


def test_non_finite_raw_latent_is_refused(gen):
    z = gen.latent(2, seed=0)
    z["noise"][1, 3] = np.nan
    refused(lambda: gen.run(z["noise"], z["categorical"], z["continuous"]), "noise", "finite")
    assert gen.backend.calls == 0


def test_batch_of_zero_is_refused(gen, enc):
    refused(lambda: gen.generate(0), "n=0")
    refused(lambda: gen.run(np.zeros((0, 62)), np.zeros((0, 10)), np.zeros((0, 2))), "batch of 0")
    refused(lambda: enc.encode(np.zeros((0, 1, 28, 28), np.float32)), "batch of 0")
    assert gen.backend.calls == 0 and enc.backend.calls == 0


def test_raw_latent_of_the_wrong_width_is_refused(gen):
    refused(lambda: gen.run(np.zeros((2, 61)), np.zeros((2, 10)), np.zeros((2, 2))), "noise", "[N, 62]")


def test_images_of_the_wrong_size_are_refused(enc):
    refused(lambda: enc.encode(np.zeros((2, 1, 32, 32), np.float32)), "(2, 1, 32, 32)", "[N, 1, 28, 28]")
    assert enc.backend.calls == 0


def test_images_of_the_wrong_type_are_refused(enc):
    refused(lambda: enc.encode(np.zeros((2, 1, 28, 28), np.int64)), "dtype int64")
    refused(lambda: enc.encode(np.full((2, 1, 28, 28), "x")), "dtype")
    assert enc.backend.calls == 0


def test_images_outside_the_unit_range_or_not_finite_are_refused(enc):
    refused(lambda: enc.encode(np.full((1, 1, 28, 28), 255.0, np.float32)), "[0, 1]")
    bad = np.zeros((1, 1, 28, 28), np.float32)
    bad[0, 0, 5, 5] = np.nan
    refused(lambda: enc.encode(bad), "finite")
    assert enc.backend.calls == 0


def test_png_of_the_wrong_size_is_refused(tmp_path):
    Image.new("L", (32, 30)).save(tmp_path / "big.png")
    refused(lambda: load_images([tmp_path / "big.png"]), "big.png", "32x30", "28x28")


def test_file_that_is_no_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    refused(lambda: load_images([tmp_path / "notes.png"]), "not a readable image")
    (tmp_path / "data-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    refused(lambda: load_images([tmp_path / "data-idx3-ubyte"]), "IDX type 0x", "expected unsigned bytes")


def test_missing_repository_names_the_export_command(tmp_path):
    refused(lambda: Generator.from_repository(tmp_path / "nowhere"), "make export")


def test_unreachable_server_names_the_command_that_starts_one():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{s.getsockname()[1]}"
    # retried with backoff (3 retries: 4 tries), then refused with the command that starts a server
    refused(lambda: Generator.from_triton(url, timeout=3.0, retries=3), f"url={url}", "unreachable", "after 4 tries", "make serve")
    refused(lambda: server_status(url, timeout=3.0), "make serve")


def test_default_retries_outlast_the_reconnect_backoff_of_a_channel():
    """A channel whose server went away fails every call at once until gRPC's next reconnect
    attempt (at most RECONNECT_BACKOFF_MAX_MS, +-20% jitter); the client's default retries must
    wait longer than that, or a restarted server stays unreachable to it (seen under load)."""
    waits = sum(defaults.RETRY_BACKOFF_S * 2**k for k in range(defaults.RETRIES))
    assert waits > 1.2 * defaults.RECONNECT_BACKOFF_MAX_MS / 1000
    # and the default is what a client gets, on a real socket with nothing listening
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{s.getsockname()[1]}"
    refused(lambda: Generator.from_triton(url, timeout=30.0), f"after {defaults.RETRIES + 1} tries")


def test_non_positive_timeout_is_refused():
    refused(lambda: Generator.from_triton("127.0.0.1:1", timeout=0), "timeout=0")


def test_cli_prints_one_error_line_and_exits_2(repo):
    out = subprocess.run(
        [sys.executable, "-m", "infogan.cli", "generate", "--category", "12", "--backend", "onnx", "--repository", str(repo)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: category=12 is out of range: allowed are 0..9"]


def test_cli_refuses_unparsable_continuous_values(repo):
    from infogan.client.commands import parse_continuous

    refused(lambda: parse_continuous("1.0,abc"), "continuous='1.0,abc'", "comma-separated")


def test_unknown_model_in_the_repository_is_refused(repo):
    refused(lambda: Generator.from_repository(repo, model="infogan_generator_fp8"), "no model 'infogan_generator_fp8'", "make export")


def test_missing_version_lists_the_versions_there_are(repo):
    refused(lambda: Generator.from_repository(repo, version=4), "version=4", "have [1]")


def test_model_without_a_template_names_the_export_command():
    from infogan.client.info import ModelInfo

    refused(lambda: ModelInfo.from_properties({}, "old.onnx"), "model=old.onnx", "infogan.latent_template", "make export")


def test_label_on_a_model_without_a_mapping_asks_for_a_category():
    from infogan.client.info import ModelInfo
    from infogan.contract import META_TEMPLATE, LatentTemplate

    info = ModelInfo.from_properties({META_TEMPLATE: LatentTemplate().to_json()}, "bare.onnx")
    refused(lambda: info.category_of_label(3), "label=3", "lacks", "pass a category")


def test_a_generator_and_encoder_from_different_checkpoints_are_named_in_one_line():
    from infogan.client.info import mixed_pair

    same = {"infogan_generator": (2, "aa"), "infogan_encoder": (2, "aa"),
            "infogan_generator_int8": (2, "aa"), "infogan_encoder_int8": (2, "aa")}
    assert mixed_pair(same) is None
    assert mixed_pair({"infogan_generator": (2, "bb"), "infogan_encoder": (1, None)}) is None  # unknown: not named
    message = mixed_pair({**same, "infogan_generator_int8": (3, "bb")})
    assert "infogan_generator_int8 version 3 and infogan_encoder_int8 version 2 come from different checkpoints" in message
    assert "infogan export" in message and "\n" not in message


def test_a_file_that_is_not_protobuf_is_refused_by_the_metadata_reader_in_one_line(tmp_path):
    from infogan.client.info import onnx_metadata

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x0f\x00")  # wire type 7: no protobuf has one
    refused(lambda: onnx_metadata(bad), f"model={bad}", "not an ONNX file", "make export")
