"""The configs export writes load unchanged in our local (CPU-only, bundled) Triton:
every precision's pair of models, with the contract readable over gRPC."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infogan.contract import (
    CATEGORICAL_PROBS,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    IMAGE,
    META_CATEGORY_TO_LABEL,
    META_TEMPLATE,
    LatentTemplate,
)
from infogan.export import parity
from infogan.export.pipeline import export_run
from infogan.export.repository import model_name
from test_export_support import CATEGORY_TO_DIGIT, make_run

grpcclient = pytest.importorskip("tritonclient.grpc")
from grpc_support import infer_inputs  # noqa: E402




@pytest.mark.slow
def test_every_exported_precision_loads_in_the_local_triton_and_answers_grpc_even_with_tensorrt_asked(tmp_path):
    from infogan.serve.server import TritonServer, free_port

    repo = tmp_path / "model_repository"
    # --tensorrt too: the GPU accelerator option must not stop the CPU server from loading the configs
    export_run(make_run(tmp_path / "run"), repo, precisions=("fp32", "fp16", "int8"), tensorrt=True,
               data_dir=tmp_path / "no_data")
    latent = parity.generator_feeds(LatentTemplate(), 3)
    server = TritonServer(repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    with server, grpcclient.InferenceServerClient(server.grpc_url) as client:
        for precision in ("fp32", "fp16", "int8"):
            gen, enc = model_name(GENERATOR_MODEL, precision), model_name(ENCODER_MODEL, precision)
            assert client.is_model_ready(gen) and client.is_model_ready(enc)
            params = client.get_model_config(gen).config.parameters
            assert LatentTemplate.from_json(params[META_TEMPLATE].string_value) == LatentTemplate()
            assert json.loads(params[META_CATEGORY_TO_LABEL].string_value) == CATEGORY_TO_DIGIT
            images = client.infer(gen, infer_inputs(latent)).as_numpy(IMAGE)
            assert images.shape == (3, 1, 28, 28) and 0.0 <= images.min() and images.max() <= 1.0
            probs = client.infer(enc, infer_inputs({IMAGE: images})).as_numpy(CATEGORICAL_PROBS)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_polling_server_keeps_answering_while_a_new_export_is_published_then_serves_it(tmp_path):
    """`infogan serve --poll-secs 1`: an export published while clients keep generating is
    picked up without a restart; no request fails during the switch from version 1 to 2."""
    import threading
    import time

    from infogan.client import Generator
    from infogan.serve.server import TritonServer, free_port

    repo = tmp_path / "model_repository"
    export_run(make_run(tmp_path / "first", seed=0), repo)
    server = TritonServer(repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(), poll_secs=1)
    failures, answers, stop = [], [0], threading.Event()

    def keep_generating():
        gen = Generator.from_triton(server.grpc_url, timeout=10)
        while not stop.is_set():
            try:
                gen.generate(8, seed=0)
                answers[0] += 1
            except Exception as e:  # noqa: BLE001  (every failure counts)
                failures.append(repr(e))
        gen.close()

    with server, grpcclient.InferenceServerClient(server.grpc_url) as client:
        worker = threading.Thread(target=keep_generating)
        worker.start()
        try:
            time.sleep(1.0)
            assert export_run(make_run(tmp_path / "second", seed=1), repo).version == 2
            deadline = time.monotonic() + 60
            while not (client.is_model_ready(GENERATOR_MODEL, "2") and client.is_model_ready(ENCODER_MODEL, "2")):
                assert time.monotonic() < deadline, "the new version was never served"
                time.sleep(0.2)
            while client.is_model_ready(GENERATOR_MODEL, "1") and time.monotonic() < deadline:
                time.sleep(0.2)  # version policy: only the newest is served
            assert not client.is_model_ready(GENERATOR_MODEL, "1")
            time.sleep(1.0)
        finally:
            stop.set()
            worker.join(30)
    assert failures == [] and answers[0] > 10, (failures[:3], answers)
