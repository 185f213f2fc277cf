"""Every ONNX graph the project or its tests build loads in each onnxruntime the project
allows (pyproject: onnxruntime>=1.17), whichever onnx built it, and the int8 variant
survives the quantizer of older onnxruntimes.

onnx.helper.make_model stamps the installed onnx's newest IR version (14 for onnx 1.23),
and onnxruntime 1.30 refuses anything past 13: a hand-built graph must pin its IR version.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from infogan.contract import ONNX_IR_VERSION, ONNX_OPSET, LatentTemplate
from infogan.export import onnx_export, quantize
from infogan.training.model import Discriminator, Generator
from toy_repository import IR_VERSION, OPSET, make_model, write_toy_repository

# onnxruntime 1.17 implements ONNX 1.15: IR version 9, opset 20
ORT_1_17_MAX_IR = 9
ORT_1_17_MAX_OPSET = 20
ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["bench", "client", "explore", "export", "infogan", "serve", "training", "tests"]


def assert_loads_in_every_allowed_onnxruntime(model: onnx.ModelProto) -> None:
    assert model.ir_version <= ORT_1_17_MAX_IR, f"IR version {model.ir_version}: onnxruntime 1.17 reads <= 9"
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert opsets and max(opsets) <= ORT_1_17_MAX_OPSET
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported():
    t = LatentTemplate()
    torch.manual_seed(0)
    return {"generator": onnx_export.generator_onnx(Generator(t), t),
            "encoder": onnx_export.encoder_onnx(Discriminator(t), t)}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_exported_graphs_and_their_variants_load_in_onnxruntime_1_17_and_newer(exported, precision):
    for model in exported.values():
        variant = model if precision == "fp32" else quantize.make_variant(model, precision)
        assert_loads_in_every_allowed_onnxruntime(variant)


def test_hand_built_test_graphs_carry_the_exporters_ir_version(exported):
    assert {m.ir_version for m in exported.values()} == {IR_VERSION}


def test_the_toy_repository_loads_in_onnxruntime_1_17_and_newer(tmp_path):
    for path in write_toy_repository(tmp_path).values():
        assert_loads_in_every_allowed_onnxruntime(onnx.load(path))


def test_the_benchmarks_matmul_graph_loads_in_onnxruntime_1_17_and_newer(monkeypatch):
    from infogan.bench import generation

    built, real = [], generation.open_session
    monkeypatch.setattr(generation, "open_session", lambda raw, **kw: built.append(raw) or real(raw, **kw))
    generation.ort_matmul(4, 3, 2)
    (raw,) = built
    assert_loads_in_every_allowed_onnxruntime(onnx.load_from_string(raw))


def _gemm_with_restated_weight_shape() -> onnx.ModelProto:
    """x [N, 6] -> Gemm(transB) with a [4, 6] weight -> y [N, 4], the weight's shape also
    in value_info, as torch's exporter writes its Linear layers."""
    w = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, "w")],
        value_info=[helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 6])],
    )
    return make_model(graph, opset=ONNX_OPSET)


def test_int8_quantizes_a_gemm_whose_weight_shape_the_graph_restates():
    # onnxruntime 1.30's quantizer transposed such a weight under its old name and then
    # failed its own shape inference on the stale [4, 6] ("differ in dimension 0: (6) vs (4)")
    model = _gemm_with_restated_weight_shape()
    int8 = quantize.to_int8(model)
    assert any(t.data_type == TensorProto.INT8 for t in int8.graph.initializer)
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run(int8), run(model), atol=0.1)
    assert [v.name for v in model.graph.value_info] == ["w"]  # the caller's model is left as it was


def test_make_model_pins_the_ir_version_and_opset_whatever_onnx_is_installed():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = make_model(graph)
    assert model.ir_version == IR_VERSION and [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert_loads_in_every_allowed_onnxruntime(model)


def _unpinned_make_model_calls(path: Path) -> list[str]:
    """Calls of onnx's make_model (or make_model_gen_version) without an ir_version of at
    most 9, the tests' IR_VERSION or the contract's ONNX_IR_VERSION; toy_repository.make_model pins both itself."""
    tree = ast.parse(path.read_text(), str(path))
    from_onnx = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 and n.module in ("onnx.helper", "onnx") for a in n.names}
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        base = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
        onnx_call = base in from_onnx or base.endswith("helper") or name in from_onnx
        if not (name.startswith("make_model") and onnx_call):
            continue
        ir = next((k.value for k in node.keywords if k.arg == "ir_version"), None)
        pinned = (isinstance(ir, ast.Name) and ir.id in ("IR_VERSION", "ONNX_IR_VERSION")) or (
            isinstance(ir, ast.Constant) and isinstance(ir.value, int) and ir.value <= ORT_1_17_MAX_IR)
        if not pinned:
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return bad


def test_every_graph_built_by_hand_pins_an_ir_version_onnxruntime_1_17_loads():
    files = [p for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))]
    assert any(p.name == "toy_repository.py" for p in files)
    assert ONNX_IR_VERSION <= ORT_1_17_MAX_IR  # the name the check accepts holds a version every runtime loads
    assert [c for p in files for c in _unpinned_make_model_calls(p)] == []
