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


def _pretend_onnxruntime_gpu(monkeypatch):
    """A test double for onnxruntime-gpu whose CUDA provider cannot start: has_cuda() says yes,
    and this machine's real CPU-only onnxruntime, asked for CUDA, falls back to the CPU as
    onnxruntime-gpu does when a CUDA library is missing."""
    import infogan.sessions as sessions

    monkeypatch.setattr(sessions, "has_cuda", lambda: True)
    return sessions


def test_a_session_that_asked_for_cuda_and_got_the_cpu_is_refused_in_one_line(monkeypatch, repo):
    sessions = _pretend_onnxruntime_gpu(monkeypatch)
    path = repo / GENERATOR_MODEL / "1" / MODEL_FILE
    with pytest.raises(InfoganError) as e:
        sessions.open_session(path, gpu=True)
    message = str(e.value)
    assert "\n" not in message and "asked for the CUDA provider but runs on CPUExecutionProvider" in message
    assert f"onnxruntime {ort.__version__} at " in message and "preload_dlls" in message
    with pytest.raises(InfoganError) as e:  # the client says the same, not "not a loadable ONNX model"
        Generator.from_repository(repo, device="cuda")
    assert "asked for the CUDA provider" in str(e.value)
    assert sessions.open_session(path, gpu=False).get_providers() == ["CPUExecutionProvider"]


def test_the_cuda_options_turn_tf32_off(monkeypatch):
    sessions = _pretend_onnxruntime_gpu(monkeypatch)
    monkeypatch.setattr(sessions, "_load_cuda_libraries", lambda: None)
    assert sessions.providers(True, 1) == [(sessions.CUDA, {"device_id": 1, "use_tf32": "0"}), sessions.CPU]
    assert sessions.providers(False, 1) == [sessions.CPU]
    # the GPU check's second arm: an option added to CUDA_OPTIONS, which it cannot override unasked
    assert sessions.providers(True, 0, {"cudnn_conv_algo_search": "HEURISTIC"}) == [
        (sessions.CUDA, {"device_id": 0, "use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}), sessions.CPU]


def test_a_kind_gpu_instance_never_serves_from_the_cpu(monkeypatch, repo):
    """The served backend's own check, run outside Triton: `triton_python_backend_utils` exists only
    inside Triton's stub process, so a test double stands in for it (its exception type alone); the
    backend, the exported model and onnxruntime are the real ones. On an H200 such instances served
    from the CPU at 1.4% of the in-process rate with nothing said (BENCHMARKS.md)."""
    import importlib
    import json
    import sys
    import types

    from google.protobuf import json_format

    import infogan.sessions as sessions
    from infogan.contract import CONFIG_FILE
    from infogan.export.repository import read_config

    if sessions.has_cuda():
        pytest.skip("this onnxruntime has the CUDA provider")
    stub = types.ModuleType("triton_python_backend_utils")
    stub.TritonModelException = type("TritonModelException", (Exception,), {})
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stub)
    monkeypatch.delitem(sys.modules, "infogan.serve.onnxruntime_backend", raising=False)
    backend = importlib.import_module("infogan.serve.onnxruntime_backend")
    instance = importlib.import_module("infogan.serve.instance")
    config = json_format.MessageToDict(read_config(repo / GENERATOR_MODEL / CONFIG_FILE), preserving_proto_field_name=True)
    args = {"model_config": json.dumps(config), "model_name": GENERATOR_MODEL, "model_version": "1",
            "model_repository": str(repo / GENERATOR_MODEL), "model_instance_kind": "GPU", "model_instance_device_id": "0"}

    with pytest.raises(stub.TritonModelException) as e:  # no CUDA provider in the stub's onnxruntime
        backend.TritonPythonModel().initialize(args)
    assert "KIND_GPU instance needs onnxruntime's CUDA provider" in str(e.value)
    assert f"imported onnxruntime {ort.__version__} at " in str(e.value) and "\n" not in str(e.value)

    monkeypatch.setattr(instance, "has_cuda", lambda: True)  # a CUDA provider that cannot start
    _pretend_onnxruntime_gpu(monkeypatch)
    with pytest.raises(stub.TritonModelException) as e:
        backend.TritonPythonModel().initialize(args)
    assert f"{GENERATOR_MODEL} (a KIND_GPU instance on GPU 0) asked for the CUDA provider but runs on CPUExecutionProvider" \
        in str(e.value)

    model = backend.TritonPythonModel()
    model.initialize({**args, "model_instance_kind": "CPU"})
    assert model.session.get_providers() == ["CPUExecutionProvider"] and model.path.name == MODEL_FILE
