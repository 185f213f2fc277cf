"""The end-to-end check: train a tiny model, export it, serve it with the
real bundled Triton on free ports, query both models over gRPC, compare with
in-process onnxruntime, stop, and find no process left."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    IMAGE,
    META_TEMPLATE,
    LatentTemplate,
    encoder_outputs,
    generator_inputs,
    sample_latent,
)
from infogan.serve.server import TritonServer, free_port

grpcclient = pytest.importorskip("tritonclient.grpc")
from grpc_support import infer_inputs  # noqa: E402




def server_processes(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_trained_exported_models_answer_over_grpc_as_in_process_onnxruntime(smoke_run, tmp_path):
    from infogan.export.pipeline import export_run

    repository = tmp_path / "model_repository"
    version = export_run(smoke_run, repository).version
    onnx_file = {m: str(repository / m / str(version) / "model.onnx") for m in (GENERATOR_MODEL, ENCODER_MODEL)}
    template = LatentTemplate.from_json(ort.InferenceSession(onnx_file[GENERATOR_MODEL]).get_modelmeta().custom_metadata_map[META_TEMPLATE])
    latent = sample_latent(template, 7, np.random.default_rng(0))
    latent = {s.name: latent[s.name] for s in generator_inputs(template)}
    encoder_names = [s.name for s in encoder_outputs(template)]

    server = TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    with server, grpcclient.InferenceServerClient(server.grpc_url) as client:
        assert set(server.models) >= {GENERATOR_MODEL, ENCODER_MODEL}
        assert server_processes(server.shm_prefix)
        images = client.infer(GENERATOR_MODEL, infer_inputs(latent)).as_numpy(IMAGE)
        encoded = client.infer(ENCODER_MODEL, infer_inputs({IMAGE: images}))

    (want_images,) = ort.InferenceSession(onnx_file[GENERATOR_MODEL]).run([IMAGE], latent)
    np.testing.assert_allclose(images, want_images, atol=1e-5, rtol=0)
    want_encoded = ort.InferenceSession(onnx_file[ENCODER_MODEL]).run(encoder_names, {IMAGE: images})
    for name, want in zip(encoder_names, want_encoded):
        np.testing.assert_allclose(encoded.as_numpy(name), want, atol=1e-5, rtol=0)

    assert not server.is_running()
    assert server_processes(server.shm_prefix) == []
    assert [n for n in os.listdir("/dev/shm") if n.startswith(server.shm_prefix)] == []
