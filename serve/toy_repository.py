"""A toy model repository with the real tensor contract, for tests and benchmarks
of the serving path when no trained model exists (the real one comes from
`infogan export`).

Both models are single-layer stand-ins built with onnx.helper and random
weights: the generator maps (noise, categorical, continuous) to a 1x28x28 image
in [0, 1], the encoder maps an image to (categorical_probs, continuous_mean,
realness). Names, dtypes and shapes come from infogan.contract.

Needs the `onnx` package (train extra); imports no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    LatentTemplate,
    TensorSpec,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)


def config_pbtxt(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], max_batch_size: int = 1024) -> str:
    """The config's shape as export writes it: ONNX platform, batch axis, one
    instance (KIND_AUTO: CPU here, GPU where there is one), dynamic batching."""

    def tensors(kind: str, specs: list[TensorSpec]) -> str:
        body = ",\n".join(
            f'  {{ name: "{s.name}" data_type: TYPE_{s.dtype} dims: [ {", ".join(map(str, s.shape))} ] }}' for s in specs
        )
        return f"{kind} [\n{body}\n]\n"

    return (
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n'
        + tensors("input", inputs)
        + tensors("output", outputs)
        + "instance_group [ { count: 1 kind: KIND_AUTO } ]\n"
        + "dynamic_batching { max_queue_delay_microseconds: 500 }\n"
    )


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


def write_toy_repository(repository: str | Path, template: LatentTemplate | None = None, seed: int = 0,
                         max_batch_size: int = 1024) -> dict[str, Path]:
    """Write both toy models as version 1; return {model name: path of model.onnx}."""
    import onnx
    from onnx import helper

    t = template or LatentTemplate()
    rng = np.random.default_rng(seed)
    repository = Path(repository)
    written = {}
    for name, graph, ins, outs in (
        (GENERATOR_MODEL, _generator_graph(t, rng), generator_inputs(t), generator_outputs(t)),
        (ENCODER_MODEL, _encoder_graph(t, rng), encoder_inputs(t), encoder_outputs(t)),
    ):
        # IR 8 / opset 17: loadable by every onnxruntime this project allows
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(model)
        path = repository / name / "1" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, path)
        (repository / name / "config.pbtxt").write_text(config_pbtxt(name, ins, outs, max_batch_size))
        written[name] = path
    return written
