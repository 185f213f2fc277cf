"""The onnxruntime backend's pure pieces: config specs, request validation, concat/split."""

import numpy as np
import pytest

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE
from infogan.serve.batching import (
    ModelSpec,
    RequestError,
    ServedTensor,
    concat_requests,
    model_spec_from_config,
    session_settings,
    split_outputs,
    validate_request,
)

# the shape Triton hands a Python backend: int64 fields as strings
CONFIG = {
    "name": "infogan_generator",
    "max_batch_size": "8",
    "input": [
        {"name": NOISE, "data_type": "TYPE_FP32", "dims": ["62"]},
        {"name": CATEGORICAL, "data_type": "TYPE_FP32", "dims": ["10"]},
        {"name": CONTINUOUS, "data_type": "TYPE_FP32", "dims": ["2"]},
    ],
    "output": [{"name": "image", "data_type": "TYPE_FP32", "dims": ["1", "28", "28"]}],
}
SPEC = model_spec_from_config(CONFIG)


def request(n=2, dtype=np.float32, **override):
    arrays = {NOISE: np.zeros((n, 62), dtype), CATEGORICAL: np.zeros((n, 10), dtype), CONTINUOUS: np.zeros((n, 2), dtype)}
    arrays.update(override)
    return arrays


def test_spec_reads_names_dtypes_dims_and_batch_limit_from_triton_json():
    assert SPEC.max_batch_size == 8
    assert [s.name for s in SPEC.inputs] == [NOISE, CATEGORICAL, CONTINUOUS]
    assert SPEC.inputs[0].dims == (62,) and SPEC.inputs[0].dtype == np.float32
    assert SPEC.outputs[0].dims == (1, 28, 28)


def test_spec_refuses_a_model_without_batch_axis():
    with pytest.raises(ValueError, match="max_batch_size=0"):
        model_spec_from_config({**CONFIG, "max_batch_size": 0})


def test_valid_request_returns_its_batch_size():
    assert validate_request(request(3), SPEC) == 3


@pytest.mark.parametrize(
    "arrays, message",
    [
        (request(**{CONTINUOUS: None}), "input continuous is missing"),
        (request(dtype=np.float64), "input noise has dtype float64"),
        (request(**{NOISE: np.zeros((2, 61), np.float32)}), r"input noise has shape \[2, 61\]"),
        (request(**{NOISE: np.zeros((2, 62, 1), np.float32)}), r"input noise has shape \[2, 62, 1\]"),
        (request(**{CATEGORICAL: np.zeros((3, 10), np.float32)}), "has batch 3: the other inputs have batch 2"),
        (request(0), "empty batch"),
        (request(9), "at most 8"),
        ({**request(), "extra": np.zeros((2, 1), np.float32)}, r"inputs \['extra'\] are unknown"),
    ],
)
def test_malformed_request_is_refused_with_the_reason(arrays, message):
    with pytest.raises(RequestError, match=message):
        validate_request(arrays, SPEC)


def test_any_size_dim_accepts_every_size():
    spec = ModelSpec((ServedTensor("x", np.dtype(np.float32), (-1, 3)),), (), 4)
    assert validate_request({"x": np.zeros((2, 7, 3), np.float32)}, spec) == 2


def test_concat_then_split_gives_each_request_its_own_rows_back():
    rng = np.random.default_rng(0)
    reqs = [request(n) for n in (1, 3, 2)]
    for r in reqs:
        r[NOISE] = rng.standard_normal(r[NOISE].shape).astype(np.float32)
    batch, sizes = concat_requests(reqs, [NOISE, CATEGORICAL, CONTINUOUS])
    assert sizes == [1, 3, 2] and batch[NOISE].shape == (6, 62)
    # an elementwise "model": the outputs must line up with their requests
    parts = split_outputs({"y": batch[NOISE] * 2}, sizes)
    for r, p in zip(reqs, parts):
        np.testing.assert_array_equal(p["y"], r[NOISE] * 2)


def test_a_lone_request_is_neither_copied_nor_split():
    r = request(4)
    batch, sizes = concat_requests([r], [NOISE, CATEGORICAL, CONTINUOUS])
    assert sizes == [4] and all(batch[n] is r[n] for n in (NOISE, CATEGORICAL, CONTINUOUS))
    y = np.zeros((4, 1), np.float32)
    (only,) = split_outputs({"y": y}, sizes)
    assert only["y"] is y
    with pytest.raises(ValueError, match="output y has batch 4: the requests sent 3"):
        split_outputs({"y": y}, [3])  # the batch is still checked


def test_split_refuses_outputs_whose_batch_differs_from_the_requests():
    with pytest.raises(ValueError, match="output y has batch 5"):
        split_outputs({"y": np.zeros((5, 1))}, [2, 2])


def with_parameters(**params) -> dict:
    return {**CONFIG, "parameters": {k: {"string_value": v} for k, v in params.items()}}


def test_session_settings_default_to_no_spinning_and_the_cores_shared_among_instances():
    assert session_settings(CONFIG, "CPU", cpus=8).entries == {"session.intra_op.allow_spinning": "0"}
    assert session_settings(CONFIG, "CPU", cpus=8).intra_op_threads == 8  # no instance_group: one instance
    two = {**CONFIG, "instance_group": [{"count": 2, "kind": "KIND_AUTO"}, {"count": 1, "kind": "KIND_GPU"}]}
    assert session_settings(two, "CPU", cpus=8).intra_op_threads == 4
    assert session_settings(two, "GPU", cpus=8).intra_op_threads == 2
    assert session_settings(two, "CPU", cpus=1).intra_op_threads == 1


def test_session_settings_follow_the_config_parameters():
    chosen = session_settings(with_parameters(**{"session.intra_op.allow_spinning": "1", "intra_op_thread_count": "3"}),
                              "CPU", cpus=8)
    assert chosen.entries == {"session.intra_op.allow_spinning": "1"} and chosen.intra_op_threads == 3
    assert session_settings(with_parameters(intra_op_thread_count="0"), "CPU", cpus=6).intra_op_threads == 6


@pytest.mark.parametrize("key,value,allowed", [
    ("session.intra_op.allow_spinning", "yes", r"use 0 \(no spinning\) or 1"),
    ("intra_op_thread_count", "-2", r"use a number of threads \(0: the default\)"),
    ("intra_op_thread_count", "two", r"use a number of threads"),
    ("intra_op_thread_count", "²", r"use a number of threads"),  # isdigit() but not int()
])
def test_a_bad_session_parameter_is_named_with_what_is_allowed(key, value, allowed):
    with pytest.raises(ValueError, match=rf"^parameter {key}={value} is invalid: {allowed}"):
        session_settings(with_parameters(**{key: value}), "CPU", cpus=2)
