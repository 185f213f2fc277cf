"""The exported graphs compute what the PyTorch modules compute (the parity gate),
with batch norm folded away, opset >= 17 and a dynamic batch axis."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from infogan.contract import (
    IMAGE,
    InfoganError,
    LatentTemplate,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)
from infogan.export import onnx_export, parity
from test_export_support import make_run

TEMPLATES = {
    "paper": LatentTemplate(),
    "small": LatentTemplate(categorical=(3,), continuous=((-2.0, 2.0),), noise_dim=5),
}


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def exported(request, module_tmp):
    from infogan.training.checkpoint import build_models, load_checkpoint

    template = TEMPLATES[request.param]
    run = make_run(module_tmp("run"), template)
    g, d = build_models(load_checkpoint(run / "checkpoint.pt"))
    return template, g, d, onnx_export.generator_onnx(g, template), onnx_export.encoder_onnx(d, template)


def test_generator_matches_pytorch_within_1e_4_at_batches_1_7_256(exported):
    template, g, d, gen, enc = exported
    report = parity.generator_parity(gen.SerializeToString(), g, template)
    assert report.worst <= parity.PARITY_ATOL, report
    assert parity.PARITY_BATCHES == (1, 7, 256)


def test_encoder_matches_pytorch_within_1e_4_at_batches_1_7_256(exported):
    template, g, d, gen, enc = exported
    report = parity.encoder_parity(enc.SerializeToString(), d, g, template)
    assert report.worst <= parity.PARITY_ATOL, report


def test_encoder_probabilities_sum_to_one(exported):
    template, g, d, gen, enc = exported
    sess = parity.session(enc.SerializeToString())
    probs = sess.run([encoder_outputs(template)[0].name], parity.encoder_feeds(g, template, 9))[0]
    assert probs.shape == (9, template.categories)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_graphs_pass_the_full_onnx_check_at_opset_17_or_newer(exported):
    *_, gen, enc = exported
    for model in (gen, enc):
        onnx_export.check(model)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_batch_norm_is_folded_and_no_conv_transpose_is_left(exported):
    *_, gen, enc = exported
    ops = {n.op_type for m in (gen, enc) for n in m.graph.node}
    assert "BatchNormalization" not in ops
    assert "ConvTranspose" not in ops


def test_every_input_and_output_has_a_symbolic_batch_axis_and_the_contract_shape(exported):
    template, g, d, gen, enc = exported
    for model, ins, outs in ((gen, generator_inputs(template), generator_outputs(template)),
                             (enc, encoder_inputs(template), encoder_outputs(template))):
        for values, specs in ((model.graph.input, ins), (model.graph.output, outs)):
            assert [v.name for v in values] == [s.name for s in specs]
            for v, s in zip(values, specs):
                dims = v.type.tensor_type.shape.dim
                assert dims[0].dim_param and not dims[0].HasField("dim_value")
                assert tuple(x.dim_value for x in dims[1:]) == s.shape
                assert v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_batch_of_one_keeps_its_batch_axis(exported):
    template, g, d, gen, enc = exported
    image = parity.session(gen.SerializeToString()).run([IMAGE], parity.generator_feeds(template, 1))[0]
    assert image.shape == (1, 1, 28, 28)
    assert 0.0 <= image.min() and image.max() <= 1.0
    outs = parity.session(enc.SerializeToString()).run(None, {IMAGE: image})
    assert [o.shape[0] for o in outs] == [1, 1, 1]


def test_parity_gate_refuses_a_graph_with_a_changed_weight(exported):
    template, g, d, gen, enc = exported
    broken = onnx.ModelProto()
    broken.CopyFrom(gen)
    w = broken.graph.initializer[0]
    arr = onnx.numpy_helper.to_array(w).copy()
    arr.flat[0] += 0.5  # one weight of the first layer: a small but real drift
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))
    report = parity.generator_parity(broken.SerializeToString(), g, template)
    assert report.worst > parity.PARITY_ATOL
    with pytest.raises(InfoganError, match="nothing was published"):
        parity.require(report, "infogan_generator")


def test_phase_rewrite_computes_what_the_plain_exported_graph_computes(exported):
    """The up-conv rewrite against the exporter's own ConvTranspose graph, on one batch."""
    template, g, d, gen, enc = exported
    feeds = parity.generator_feeds(template, 5)
    plain = onnx_export.plain_generator_onnx(g, template)
    assert [n.op_type for n in plain.graph.node].count("ConvTranspose") == 2
    ours = parity.session(gen.SerializeToString()).run([IMAGE], feeds)[0]
    theirs = parity.session(plain.SerializeToString()).run([IMAGE], feeds)[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(ours, g(*[torch.from_numpy(v) for v in feeds.values()]).numpy(), atol=1e-5)
