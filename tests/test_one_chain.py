"""The whole chain as a user types it, each step its own `infogan` process:
train (smoke) -> export -> serve -> generate and encode over gRPC -> stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL, model_versions
from infogan.files import read_idx, write_idx
from infogan.serve.server import free_port

INFOGAN = str(Path(sys.executable).with_name("infogan"))


def infogan(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([INFOGAN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, f"infogan {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_export_serve_generate_encode_as_separate_commands(tmp_path, data_dir):
    runs, repo = tmp_path / "runs", tmp_path / "model_repository"
    trained = infogan("train", "--smoke", "--data-dir", str(data_dir), "--runs-dir", str(runs), "--no-progress")
    assert "Q test accuracy" in trained.stdout
    infogan("export", "--run", str(runs / "latest"), "--repository", str(repo), "--data-dir", str(data_dir))
    assert model_versions(repo / GENERATOR_MODEL) == [1] and model_versions(repo / ENCODER_MODEL) == [1]

    grpc_port = free_port()
    server = subprocess.Popen([INFOGAN, "serve", "--repository", str(repo), "--grpc-port", str(grpc_port),
                               "--http-port", str(free_port()), "--metrics-port", str(free_port())],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stdout:
            if "Ctrl-C" in line:  # printed once every model is ready
                break
        url = f"127.0.0.1:{grpc_port}"
        infogan("generate", "-n", "6", "--category", "2", "--continuous=-1,0.5", "--seed", "4", "--url", url,
                "-o", str(tmp_path / "six.npy"), "-o", str(tmp_path / "six.png"))
        images = np.load(tmp_path / "six.npy")
        assert images.shape == (6, 1, 28, 28) and 0.0 <= images.min() and images.max() <= 1.0
        assert (tmp_path / "six.png").read_bytes()[:4] == b"\x89PNG"

        # the served generator equals the published file run in process
        local = infogan("generate", "-n", "6", "--category", "2", "--continuous=-1,0.5", "--seed", "4",
                        "--backend", "onnx", "--repository", str(repo), "-o", str(tmp_path / "local.npy"))
        assert "wrote" in local.stdout
        np.testing.assert_allclose(np.load(tmp_path / "local.npy"), images, atol=1e-5)

        write_idx(tmp_path / "six-idx3-ubyte", (images[:, 0] * 255 + 0.5).astype(np.uint8))
        encoded = infogan("encode", str(tmp_path / "six-idx3-ubyte"), "--url", url, "--json")
        rows = json.loads(encoded.stdout)
        assert len(rows) == len(read_idx(tmp_path / "six-idx3-ubyte")) == 6
        assert all(0 <= r["category"] < 10 and 0.0 < r["probability"] <= 1.0 for r in rows)
        status = infogan("status", "--url", url)
        assert GENERATOR_MODEL in status.stdout and "READY" in status.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
