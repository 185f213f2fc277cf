"""fp16 (GPU serving) and int8 (CPU serving) variants and what they cost in quality.

Quality is measured against the fp32 models on the same inputs:
  q_accuracy        Q's accuracy on the labelled test set through evaluation's
                    category -> label mapping (where the test set is on disk);
  argmax_agreement  how often the variant encoder picks fp32's category for the
                    same generated image;
  category_kept     how often a generated image's encoder category
                    equals the category it was generated from, each pipeline in
                    its own precision.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import onnx

from infogan.contract import CATEGORICAL, CATEGORICAL_PROBS, IMAGE, LatentTemplate
from infogan.export.parity import generator_feeds, session

QUALITY_SAMPLES = 2000
EVAL_BATCH = 500


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in float16, inputs and outputs kept float32 (the contract's dtypes)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = convert_float_to_float16(model, keep_io_types=True)
    _sort_nodes(out.graph)  # the converter appends its input casts last; onnx's checker wants topological order
    return out


def _sort_nodes(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            raise ValueError("graph has a cycle or an undefined input")
        for n in runnable:
            ordered.append(n)
            ready.update(n.output)
        done = {id(n) for n in runnable}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    """Drops the quantizer's own warnings (it logs through the root logger); keeps everyone else's."""
    return not (record.levelno <= logging.WARNING and "onnxruntime" in record.pathname and "quantization" in record.pathname)


def to_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """Dynamic quantization of the fully connected layers: int8 weights, activations quantized per call.

    The convolutions stay fp32: onnxruntime's CPU ConvInteger ran the generator about
    5x slower than fp32 here, while the int8 MatMuls run about 1.8x faster.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(_without_initializer_shapes(model), src)
        root = logging.getLogger()
        root.addFilter(_quiet_quantizer)  # its advice to pre-process applies to static quantization
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        finally:
            root.removeFilter(_quiet_quantizer)
        return onnx.load(dst)


def _without_initializer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of model without the value_info entries that restate an initializer's shape.

    torch's exporter writes them; onnxruntime 1.30's quantizer (not 1.32's) turns each Gemm
    into a MatMul by transposing its weight in place under the same name, so the stale entry
    ([1024, 74] against a [74, 1024] weight) fails its own shape inference. The
    initializer carries its shape anyway: nothing is lost.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {t.name for t in out.graph.initializer}
    keep = [v for v in out.graph.value_info if v.name not in weights]
    del out.graph.value_info[:]
    out.graph.value_info.extend(keep)
    return out


def make_variant(model: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    out = {"fp16": to_fp16, "int8": to_int8}[precision](model)
    # the converters drop or keep metadata inconsistently; the caller writes it afresh
    del out.metadata_props[:]
    return out


def _run(sess, feeds: dict[str, np.ndarray], out: str) -> np.ndarray:
    n = len(next(iter(feeds.values())))
    parts = [sess.run([out], {k: v[i:i + EVAL_BATCH] for k, v in feeds.items()})[0] for i in range(0, n, EVAL_BATCH)]
    return np.concatenate(parts)


def _first_code_argmax(probs: np.ndarray, template: LatentTemplate) -> np.ndarray:
    return probs.argmax(axis=1)


def quality(
    template: LatentTemplate,
    fp32: tuple[bytes, bytes],
    variant: tuple[bytes, bytes],
    category_to_label: list[int],
    test_set: tuple[np.ndarray, np.ndarray] | None,
) -> dict:
    """Quality of (generator, encoder) `variant` next to `fp32`; see the module docstring."""
    g32, e32 = session(fp32[0]), session(fp32[1])
    gv, ev = session(variant[0]), session(variant[1])
    feeds = generator_feeds(template, QUALITY_SAMPLES, seed=123)
    wanted = _first_code_argmax(feeds[CATEGORICAL], template)
    img32, imgv = _run(g32, feeds, IMAGE), _run(gv, feeds, IMAGE)
    cat32 = _first_code_argmax(_run(e32, {IMAGE: img32}, CATEGORICAL_PROBS), template)
    cat_v_same = _first_code_argmax(_run(ev, {IMAGE: img32}, CATEGORICAL_PROBS), template)
    cat_v = _first_code_argmax(_run(ev, {IMAGE: imgv}, CATEGORICAL_PROBS), template)
    out = {
        "image_max_abs_diff": float(np.abs(img32 - imgv).max()),
        "argmax_agreement": float((cat_v_same == cat32).mean()),
        "category_kept_fp32": float((cat32 == wanted).mean()),
        "category_kept": float((cat_v == wanted).mean()),
        "samples": QUALITY_SAMPLES,
    }
    if test_set is not None:
        images, labels = test_set
        mapping = np.asarray(category_to_label)
        acc32 = (mapping[_first_code_argmax(_run(e32, {IMAGE: images}, CATEGORICAL_PROBS), template)] == labels).mean()
        accv = (mapping[_first_code_argmax(_run(ev, {IMAGE: images}, CATEGORICAL_PROBS), template)] == labels).mean()
        out.update(q_accuracy_fp32=float(acc32), q_accuracy=float(accv), test_images=int(len(labels)))
    return out


def describe(precision: str, q: dict) -> str:
    """One line for the export's report."""
    parts = [f"{precision}: category kept {q['category_kept']:.3f} (fp32 {q['category_kept_fp32']:.3f})",
             f"encoder agrees with fp32 on {q['argmax_agreement']:.3f}",
             f"max image diff {q['image_max_abs_diff']:.2g}"]
    if "q_accuracy" in q:
        parts.insert(0, f"{precision}: Q accuracy {q['q_accuracy']:.4f} (fp32 {q['q_accuracy_fp32']:.4f})")
        parts[1] = parts[1].split(": ", 1)[1]
    return ", ".join(parts)
