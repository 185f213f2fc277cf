"""How one served instance opens its onnxruntime session, from its Triton model config.

The backend (serve/onnxruntime_backend.py) calls this inside Triton's stub process; the GPU
check (infogan.bench.gpu_check) calls it in its own process to time the very session a
KIND_GPU instance runs, apart from Triton. No Triton, no torch: errors are InfoganError
lines, which the backend turns into TritonModelException.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnxruntime as ort

from infogan.contract import GPU_MODEL_FILE, MODEL_FILE, InfoganError
from infogan.serve.batching import model_file, session_settings
from infogan.sessions import check_on_cuda, cpu_count, has_cuda, providers, runtime_description, session_options


def instance_options(config: dict, kind: str) -> ort.SessionOptions:
    """The config's threads and session entries for an instance of `kind` ("CPU" or "GPU")."""
    try:
        settings = session_settings(config, kind, cpu_count())
    except ValueError as e:
        raise InfoganError(str(e)) from None
    options = session_options(settings.intra_op_threads)
    for key, value in settings.entries.items():
        options.add_session_config_entry(key, value)
    return options


def open_instance(config: dict, version_dir: Path, kind: str, device_id: int = 0, name: str = "model",
                  cuda_options: dict | None = None) -> tuple[ort.InferenceSession, Path]:
    """(The session, its file) of one instance of `kind` ("CPU" or "GPU") on GPU `device_id`, over the file the
    config names in version_dir (the generator's CUDA graph, contract.GPU_MODEL_FILE, for a GPU
    instance where export wrote one). A KIND_GPU instance never computes on the CPU unannounced:
    without onnxruntime's CUDA provider, or where it could not start, this refuses in one line
    naming the onnxruntime imported. cuda_options adds to infogan.sessions.CUDA_OPTIONS (the GPU
    check times cuDNN's algorithm search this way)."""
    filename = config.get("default_model_filename") or MODEL_FILE
    try:
        path = model_file(version_dir, filename)
    except ValueError as e:
        raise InfoganError(f"default_model_filename={filename} is invalid: {e}") from None
    if not path.is_file():
        raise InfoganError(f"{name}: {path} does not exist")
    on_gpu = kind == "GPU"
    if on_gpu and not has_cuda():
        raise InfoganError(
            f"{name}: a KIND_GPU instance needs onnxruntime's CUDA provider, and this backend's Python "
            f"({sys.prefix}) imported {runtime_description()}: install onnxruntime-gpu where the server's "
            "Python finds it first")
    if on_gpu and filename == MODEL_FILE and (path.parent / GPU_MODEL_FILE).is_file():
        path = model_file(path.parent, GPU_MODEL_FILE)
    session = ort.InferenceSession(str(path), instance_options(config, kind),
                                   providers=providers(on_gpu, device_id, cuda_options))
    if on_gpu:
        check_on_cuda(session, f"{name} (a KIND_GPU instance on GPU {device_id})")
    return session, path
