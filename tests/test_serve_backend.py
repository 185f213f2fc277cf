"""The onnxruntime backend inside the real Triton, on a model whose failure depends
on a request's values: Triton's own checks pass such a request into a batch, so
the backend itself must keep the batch's other requests alive."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from infogan.contract import InfoganError
from infogan.serve.server import TritonServer, free_port

grpcclient = pytest.importorskip("tritonclient.grpc")
onnx = pytest.importorskip("onnx")

TABLE = np.arange(10, dtype=np.float32) * 10  # lookup[i] = 10 * i for i in 0..9


def write_lookup_model(repository):
    """index: INT64 [N, 1] -> value: FP32 [N, 1] = TABLE[index]; an index outside 0..9 makes Gather fail."""
    from onnx import TensorProto, helper, numpy_helper
    from toy_repository import make_model

    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["gathered"], axis=0),  # N x 1
         helper.make_node("Identity", ["gathered"], ["value"])],
        "lookup",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(TABLE, "table")],
    )
    model = make_model(graph)
    (repository / "lookup" / "1").mkdir(parents=True)
    onnx.save(model, repository / "lookup" / "1" / "model.onnx")
    # a long queue delay so that concurrent requests surely share executions
    (repository / "lookup" / "config.pbtxt").write_text(
        'name: "lookup"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n'
        'input [ { name: "index" data_type: TYPE_INT64 dims: [ 1 ] } ]\n'
        'output [ { name: "value" data_type: TYPE_FP32 dims: [ 1 ] } ]\n'
        "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
        "dynamic_batching { max_queue_delay_microseconds: 200000 }\n"
    )


@pytest.fixture(scope="module")
def client(module_tmp):
    repository = module_tmp("repo")
    write_lookup_model(repository)
    with TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()) as server:
        with grpcclient.InferenceServerClient(server.grpc_url) as c:
            yield c


def request(indices: list[int]) -> list:
    i = grpcclient.InferInput("index", [len(indices), 1], "INT64")
    i.set_data_from_numpy(np.array(indices, np.int64).reshape(-1, 1))
    return [i]


def executions(client) -> tuple[int, int]:
    stats = client.get_inference_statistics("lookup", as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def executions_since(client, before: tuple[int, int], inferences: int) -> tuple[int, int]:
    """(inferences, executions) since `before`, once Triton has counted `inferences` of them: it
    records an execution's statistics after sending its responses, so a client that has every
    answer can still read the counts from before (up to 5 s; then the counts as they are)."""
    deadline = time.monotonic() + 5
    while True:
        delta = tuple(a - b for a, b in zip(executions(client), before))
        if delta[0] >= inferences or time.monotonic() > deadline:
            return delta
        time.sleep(0.01)


@pytest.mark.slow
def test_each_request_gets_its_own_rows_of_a_shared_batch(client):
    before = executions(client)
    asks = [[i % 10] * (1 + i % 3) for i in range(12)]  # batches of 1 to 3 rows
    done: queue.Queue = queue.Queue()
    for k, ask in enumerate(asks):
        client.async_infer("lookup", request(ask), callback=lambda result, error, k=k: done.put((k, result, error)))
    answers = {k: (r, e) for k, r, e in (done.get(timeout=60) for _ in asks)}
    inferences, runs = executions_since(client, before, sum(map(len, asks)))

    assert runs < len(asks), "the requests were not batched together"
    for k, ask in enumerate(asks):
        result, error = answers[k]
        assert error is None, error
        np.testing.assert_array_equal(result.as_numpy("value").ravel(), TABLE[ask])


@pytest.mark.slow
def test_a_request_that_fails_inside_onnxruntime_fails_alone(client):
    asks = [[1], [2, 3], [42], [4], [5, 6]]  # 42 is outside the table
    before = executions(client)
    done: queue.Queue = queue.Queue()
    for k, ask in enumerate(asks):
        client.async_infer("lookup", request(ask), callback=lambda result, error, k=k: done.put((k, result, error)))
    answers = {k: (r, e) for k, r, e in (done.get(timeout=60) for _ in asks)}
    inferences, runs = executions_since(client, before, sum(map(len, asks)))
    # all five in one execution: the bad request shared its batch, so the per-request fallback really ran
    assert runs == 1 and inferences == sum(map(len, asks)), (runs, inferences)

    result, error = answers[2]
    assert result is None and "lookup: inference failed" in str(error), error
    assert "INVALID_ARGUMENT" in str(error.status())
    for k in (0, 1, 3, 4):
        result, error = answers[k]
        assert error is None, error
        np.testing.assert_array_equal(result.as_numpy("value").ravel(), TABLE[asks[k]])


@pytest.mark.slow
@pytest.mark.parametrize("key,value,refusal", [
    ("session.intra_op.allow_spinning", "1", None),
    ("session.intra_op.allow_spinning", "maybe", r"use 0 \(no spinning\) or 1"),
    ("intra_op_thread_count", "two", r"use a number of threads \(0: the default\)"),
])
def test_a_session_parameter_is_honoured_or_refused_in_one_line(tmp_path, key, value, refusal):
    write_lookup_model(tmp_path)
    config = tmp_path / "lookup" / "config.pbtxt"
    config.write_text(config.read_text() + f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n')
    server = TritonServer(tmp_path, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    if refusal is None:
        with server, grpcclient.InferenceServerClient(server.grpc_url) as c:
            out = c.infer("lookup", request([3, 7])).as_numpy("value")
        np.testing.assert_array_equal(out[:, 0], [30.0, 70.0])
    else:
        with pytest.raises(InfoganError, match=rf"lookup version 1: .*parameter {key}={value} is invalid: {refusal}"):
            server.start(timeout=60)
        server.stop()
