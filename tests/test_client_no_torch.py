"""The runtime side imports no torch: an app that embeds the client, and the
client's CLI commands, pull in numpy, onnxruntime and tritonclient only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_client_support import make_repository


def heavy_modules_after(code: str) -> list[str]:
    """Run code in a fresh interpreter; list the torch modules it ended up importing."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_client_and_its_backends_imports_no_torch():
    assert heavy_modules_after(
        "import infogan.client, infogan.client.commands, infogan.client.images, "
        "infogan.client.onnx_backend, infogan.client.triton_backend"
    ) == []


@pytest.fixture(scope="module")
def repo(module_tmp):
    return make_repository(module_tmp("repo"))


def test_generating_and_encoding_through_the_api_imports_no_torch(repo):
    assert heavy_modules_after(
        "from infogan.client import Generator, Encoder\n"
        f"g = Generator.from_repository({str(repo)!r})\n"
        f"Encoder.from_repository({str(repo)!r}).encode(g.generate(2, label=3, seed=0))"
    ) == []


def test_the_client_commands_run_through_the_cli_without_torch(repo, tmp_path):
    args = ["generate", "-n", "2", "--backend", "onnx", "--repository", str(repo), "-o", str(tmp_path / "x.npy")]
    assert heavy_modules_after(
        "import sys\nfrom infogan.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code"
    ) == []
    assert (tmp_path / "x.npy").is_file()


def test_the_explorer_page_builds_and_answers_without_torch(repo):
    pytest.importorskip("gradio")
    assert heavy_modules_after(
        "from infogan.explore.views import Explorer\nfrom infogan.explore.app import build\n"
        f"ex = Explorer.open({str(repo)!r})\nbuild(ex)\nex.grid(0, [0.5, 0], 0, 16)\n"
        "from infogan.explore.drawing import prepare\nimport numpy as np\n"
        "c = np.zeros((64, 64), np.uint8); c[10:50, 30:34] = 255\nex.read(*prepare(c))"
    ) == []
