"""The GPU path of the in-process client and the served backend, as far as a CPU runs it.

CI has no GPU and its onnxruntime has no CUDA provider, so what runs on CUDA is
tested here through the parts that do not need one: the graph each device loads,
the IO-binding path (which onnxruntime runs with its CPU provider too), and the
one-line refusals. The CUDA figures come from `make gpu-check` on a GPU machine.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from infogan.client import Encoder, Generator
from infogan.client.onnx_backend import OnnxBackend, graph_for
from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL, GPU_MODEL_FILE, MODEL_FILE, InfoganError
from infogan.sessions import parse_device, resolve_device
from test_client_support import make_repository


@pytest.fixture(scope="module")
def repo(module_tmp):
    return make_repository(module_tmp("gpu-path"), precisions=("fp32", "fp16", "int8"))


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_export_publishes_the_generators_plain_graph_for_gpus_beside_the_cpus(repo):
    # the phase-convolution rewrite wins on the CPU and costs an H200 half its images/s at batch 256
    for name in (GENERATOR_MODEL, f"{GENERATOR_MODEL}_fp16"):
        version = repo / name / "1"
        assert "ConvTranspose" in _ops(version / GPU_MODEL_FILE)
        assert "ConvTranspose" not in _ops(version / MODEL_FILE)
        cpu_meta = ort.InferenceSession(str(version / MODEL_FILE)).get_modelmeta().custom_metadata_map
        gpu_meta = ort.InferenceSession(str(version / GPU_MODEL_FILE)).get_modelmeta().custom_metadata_map
        assert gpu_meta == cpu_meta  # the same contract, checkpoint hash and metrics
    # the encoder has no up-convolution, and int8's quantized ops are CPU kernels
    for name in (ENCODER_MODEL, f"{ENCODER_MODEL}_fp16", f"{GENERATOR_MODEL}_int8"):
        assert not (repo / name / "1" / GPU_MODEL_FILE).exists()


def test_the_gpu_graph_computes_what_the_cpu_graph_does(repo):
    version = repo / GENERATOR_MODEL / "1"
    cpu, gpu = (ort.InferenceSession(str(version / f)) for f in (MODEL_FILE, GPU_MODEL_FILE))
    with Generator.from_repository(repo, device="cpu") as g:
        feeds = g.latent(64, seed=0)
    a, b = cpu.run(None, feeds)[0], gpu.run(None, feeds)[0]
    assert np.abs(a - b).max() < 1e-5


def test_a_session_on_cuda_loads_the_gpu_graph_and_on_the_cpu_model_onnx(repo):
    path = repo / GENERATOR_MODEL / "1" / MODEL_FILE
    assert graph_for(path, "cuda") == path.with_name(GPU_MODEL_FILE)
    assert graph_for(path, "cpu") == path
    encoder = repo / ENCODER_MODEL / "1" / MODEL_FILE
    assert graph_for(encoder, "cuda") == encoder  # no GPU graph: model.onnx everywhere


def test_io_binding_returns_what_session_run_returns(repo):
    # the path a GPU session takes, run with the CPU provider: outputs written into our own arrays
    for model in (GENERATOR_MODEL, ENCODER_MODEL, f"{GENERATOR_MODEL}_fp16"):
        path = repo / model / "1" / MODEL_FILE
        bound, plain = OnnxBackend(path, device="cpu", io_binding=True), OnnxBackend(path, device="cpu")
        assert bound.io_binding and not plain.io_binding  # the CPU default stays session.run
        if model.startswith(GENERATOR_MODEL):
            with Generator.from_repository(repo, device="cpu") as g:
                feeds = g.latent(37, seed=1)
        else:
            feeds = {"image": np.random.default_rng(0).random((37, 1, 28, 28), dtype=np.float32)}
        got, want = bound.infer(feeds), plain.infer(feeds)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype
            np.testing.assert_array_equal(got[name], want[name])


def test_the_client_api_takes_a_device(repo):
    with Generator.from_repository(repo, device="cpu") as g, Encoder.from_repository(repo, device="cpu") as e:
        assert g.backend.device == "cpu" and e.backend.device == "cpu"
        images = g.generate(4, seed=0)
        assert e.encode(images).labels.shape == (4,)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "cpu:0", "", "cuda:1:2"])
def test_a_bad_device_is_refused_in_one_line(device):
    with pytest.raises(InfoganError) as e:
        parse_device(device)
    assert "\n" not in str(e.value) and f"device={device!r}" in str(e.value) and "cuda:N" in str(e.value)


def test_asking_for_cuda_without_onnxruntime_gpu_names_the_gpu_extra(repo):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(InfoganError) as e:
        Generator.from_repository(repo, device="cuda:0")
    assert "\n" not in str(e.value) and "infogan[gpu]" in str(e.value)
    assert resolve_device("auto") == ("cpu", 0)  # auto falls back to the CPU without CUDA


def test_infogan_serve_accepts_the_gpu_graph_beside_the_model_file(repo):
    from infogan.serve.server import check_repository

    check_repository(repo)  # raises on any file export does not write


def test_infogan_generate_takes_device_on_the_command_line(tmp_path, repo):
    from typer.testing import CliRunner

    from infogan.cli import app

    out = tmp_path / "g.npy"
    ok = CliRunner().invoke(app, ["generate", "--backend", "onnx", "--repository", str(repo), "--device", "cpu",
                                  "-n", "3", "--seed", "0", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert np.load(out).shape == (3, 1, 28, 28)
    bad = CliRunner().invoke(app, ["generate", "--backend", "onnx", "--repository", str(repo), "--device", "tpu"])
    assert isinstance(bad.exception, InfoganError) and "device='tpu' is invalid" in str(bad.exception)
