"""A toy model repository with the real tensor contract, for the serving tests
that need no trained model (the real one comes from `infogan export`).

Both models are single-layer stand-ins built with onnx.helper and random
weights: the generator maps (noise, categorical, continuous) to a 1x28x28 image
in [0, 1], the encoder maps an image to (categorical_probs, continuous_mean,
realness). Names, dtypes and shapes come from infogan.contract, and each
config.pbtxt is written by export's own config writer, so the server sees what
production serves (batching, warm-up, version policy, parameters).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infogan.contract import (
    CONFIG_FILE,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    META_TEMPLATE,
    MODEL_FILE,
    ONNX_IR_VERSION,
    LatentTemplate,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)
from infogan.export.repository import config_text, model_config

# Every graph the tests build by hand is stamped with the exporter's IR version (the contract's) and an
# opset of its era: onnx.helper.make_model would stamp its own newest IR version (14 for
# onnx 1.23), which onnxruntime 1.30 refuses. IR 8 loads in every onnxruntime this
# project allows (>= 1.17 reads IR <= 9); tests/test_export_compat.py holds all of them to it.
IR_VERSION = ONNX_IR_VERSION
OPSET = 17


def make_model(graph, opset: int = OPSET):
    """onnx.helper.make_model with the IR version and opset pinned (see IR_VERSION)."""
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)


def _generator_graph(t: LatentTemplate, rng: np.random.Generator):
    from onnx import TensorProto, helper, numpy_helper

    ins = generator_inputs(t)
    (image,) = generator_outputs(t)
    pixels = int(np.prod(image.shape))
    w = (rng.standard_normal((t.input_dim, pixels)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(pixels) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Concat", [s.name for s in ins], ["z"], axis=1),  # N x input_dim
        helper.make_node("MatMul", ["z", "w"], ["h"]),  # N x 784
        helper.make_node("Add", ["h", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], [image.name]),  # N x 1 x 28 x 28
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array((-1, *image.shape), np.int64), "shape")]
    return helper.make_graph(
        nodes, GENERATOR_MODEL,
        [helper.make_tensor_value_info(s.name, TensorProto.FLOAT, ["N", *s.shape]) for s in ins],
        [helper.make_tensor_value_info(image.name, TensorProto.FLOAT, ["N", *image.shape])],
        inits,
    )


def _encoder_graph(t: LatentTemplate, rng: np.random.Generator):
    from onnx import TensorProto, helper, numpy_helper

    (image,) = encoder_inputs(t)
    probs, mean, realness = encoder_outputs(t)
    pixels = int(np.prod(image.shape))
    w = {s.name: (rng.standard_normal((pixels, s.shape[0])) * 0.05).astype(np.float32) for s in (probs, mean, realness)}
    nodes = [
        helper.make_node("Reshape", [image.name, "flat_shape"], ["x"]),  # N x 784
        helper.make_node("MatMul", ["x", f"w_{probs.name}"], ["probs_logits"]),
        helper.make_node("Softmax", ["probs_logits"], [probs.name], axis=1),
        helper.make_node("MatMul", ["x", f"w_{mean.name}"], ["mean_pre"]),
        helper.make_node("Tanh", ["mean_pre"], [mean.name]),
        helper.make_node("MatMul", ["x", f"w_{realness.name}"], ["real_logits"]),
        helper.make_node("Sigmoid", ["real_logits"], [realness.name]),
    ]
    inits = [numpy_helper.from_array(a, f"w_{n}") for n, a in w.items()]
    inits.append(numpy_helper.from_array(np.array([-1, pixels], np.int64), "flat_shape"))
    return helper.make_graph(
        nodes, ENCODER_MODEL,
        [helper.make_tensor_value_info(image.name, TensorProto.FLOAT, ["N", *image.shape])],
        [helper.make_tensor_value_info(s.name, TensorProto.FLOAT, ["N", *s.shape]) for s in (probs, mean, realness)],
        inits,
    )


def write_toy_repository(repository: str | Path, template: LatentTemplate | None = None, seed: int = 0) -> dict[str, Path]:
    """Write both toy models as version 1; return {model name: path of model.onnx}."""
    import onnx

    t = template or LatentTemplate()
    rng = np.random.default_rng(seed)
    repository = Path(repository)
    written = {}
    for name, graph, ins, outs in (
        (GENERATOR_MODEL, _generator_graph(t, rng), generator_inputs(t), generator_outputs(t)),
        (ENCODER_MODEL, _encoder_graph(t, rng), encoder_inputs(t), encoder_outputs(t)),
    ):
        model = make_model(graph)
        model.metadata_props.add(key=META_TEMPLATE, value=t.to_json())  # as export writes it, for in-process clients
        onnx.checker.check_model(model)
        path = repository / name / "1" / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, path)
        config = model_config(name, ins, outs, parameters={META_TEMPLATE: t.to_json()})
        (repository / name / CONFIG_FILE).write_text(config_text(config))
        written[name] = path
    return written
