"""The up-convolution graph pass on small hand-made graphs: what it rewrites computes
what the ConvTranspose computed, and what it does not handle stays as it was."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from infogan.contract import ONNX_OPSET
from infogan.export.upconv import rewrite_upconvs
from toy_repository import make_model

RNG = np.random.default_rng(0)


def _model(nodes, inits, in_shape, out_name="y"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *in_shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return make_model(graph, opset=ONNX_OPSET)  # the exporter's: the pass rewrites its graphs


def _upconv(x, w, y, bias=None, **attrs):
    attrs = {"strides": [2, 2], "pads": [1, 1, 1, 1], "kernel_shape": [4, 4], **attrs}
    return helper.make_node("ConvTranspose", [x, w] + ([bias] if bias else []), [y], **attrs)


def _run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _ops(model):
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("bias", [True, False])
def test_a_single_up_convolution_becomes_four_phase_convs(bias):
    inits = {"w": RNG.normal(size=(3, 5, 4, 4)), **({"b": RNG.normal(size=5)} if bias else {})}
    model = _model([_upconv("x", "w", "y", "b" if bias else None)], inits, (3, 6, 5))
    out = rewrite_upconvs(model)
    assert _ops(out) == ["Conv"] * 4 + ["Concat", "DepthToSpace"]
    x = RNG.normal(size=(2, 3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-5)


@pytest.mark.parametrize("act", [("Relu", {}), ("LeakyRelu", {"alpha": 0.2})])
def test_two_up_convolutions_through_an_activation_are_never_interleaved_in_between(act):
    op, attrs = act
    inits = {"w1": RNG.normal(size=(4, 6, 4, 4)), "b1": RNG.normal(size=6), "w2": RNG.normal(size=(6, 2, 4, 4)),
             "b2": RNG.normal(size=2)}
    nodes = [_upconv("x", "w1", "h", "b1"), helper.make_node(op, ["h"], ["a"], **attrs), _upconv("a", "w2", "y", "b2")]
    model = _model(nodes, inits, (4, 7, 7))
    out = rewrite_upconvs(model)
    assert "ConvTranspose" not in _ops(out) and _ops(out).count("DepthToSpace") == 1
    x = RNG.normal(size=(3, 4, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-4)
    assert _run(out, x).shape == (3, 2, 28, 28)
    assert {t.name for t in out.graph.initializer}.isdisjoint({"w1", "w2"})  # the old weights are gone


@pytest.mark.parametrize("attrs", [{"strides": [1, 1]}, {"pads": [0, 0, 0, 0]}, {"group": 3, "kernel_shape": [4, 4]},
                                   {"output_padding": [1, 1]}])
def test_up_convolutions_it_does_not_handle_are_left_as_they_are(attrs):
    w = RNG.normal(size=(3, 1 if attrs.get("group") else 5, 4, 4))
    model = _model([_upconv("x", "w", "y", **attrs)], {"w": w}, (3, 6, 6))
    out = rewrite_upconvs(model)
    assert _ops(out) == ["ConvTranspose"]
    x = RNG.normal(size=(1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(_run(out, x), _run(model, x))


def test_a_weight_computed_in_the_graph_is_left_alone():
    nodes = [helper.make_node("Identity", ["w0"], ["w"]), _upconv("x", "w", "y")]
    model = _model(nodes, {"w0": RNG.normal(size=(3, 5, 4, 4))}, (3, 6, 6))
    assert _ops(rewrite_upconvs(model)) == ["Identity", "ConvTranspose"]
