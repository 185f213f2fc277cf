"""A model repository for the client tests: the paper's networks with random
weights, exported to ONNX with the contract in their metadata_props and in
config.pbtxt's parameters, laid out as Triton reads it:

    <repo>/<model>/config.pbtxt
    <repo>/<model>/<version>/model.onnx

The other client test modules import make_repository from here. The tests in
this file pin down that the repository carries what the client reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    META_CATEGORY_TO_DIGIT,
    META_LABEL_NAMES,
    META_TEMPLATE,
    LatentTemplate,
    TensorSpec,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)

# evaluation found category c drawing digit CATEGORY_TO_DIGIT[c]: a permutation,
# so a test can tell a category from its digit
CATEGORY_TO_DIGIT = [3, 0, 7, 1, 9, 2, 8, 5, 4, 6]
LABEL_NAMES = [str(d) for d in range(10)]


def contract_properties(template: LatentTemplate) -> dict[str, str]:
    return {
        META_TEMPLATE: template.to_json(),
        META_CATEGORY_TO_DIGIT: json.dumps(CATEGORY_TO_DIGIT),
        META_LABEL_NAMES: json.dumps(LABEL_NAMES),
    }


def config_text(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec], max_batch_size: int, props: dict[str, str]) -> str:
    def tensors(kind: str, specs: list[TensorSpec]) -> str:
        body = ",\n".join(f'  {{ name: "{s.name}" data_type: TYPE_{s.dtype} dims: [ {", ".join(map(str, s.shape))} ] }}' for s in specs)
        return f"{kind} [\n{body}\n]\n"

    # json.dumps of an ASCII string is a valid protobuf text-format string literal
    params = "".join(f"parameters {{ key: {json.dumps(k)} value: {{ string_value: {json.dumps(v)} }} }}\n" for k, v in props.items())
    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n'
            + tensors("input", inputs) + tensors("output", outputs)
            + "dynamic_batching { max_queue_delay_microseconds: 2000 }\n" + params)


def make_repository(root: str | Path, max_batch_size: int = 8, seed: int = 0, versions: tuple[int, ...] = (1,)) -> Path:
    """Export the generator and encoder with random weights into root (as each version)."""
    import onnx
    import torch

    from infogan.training.model import Discriminator, Encoder, Generator

    root = Path(root)
    template = LatentTemplate()
    props = contract_properties(template)
    torch.manual_seed(seed)
    g = Generator(template).eval()
    e = Encoder(Discriminator(template)).eval()
    gen_args = tuple(torch.rand(2, s.shape[0]) for s in generator_inputs(template))
    enc_args = (torch.rand(2, *encoder_inputs(template)[0].shape),)
    for name, module, args, ins, outs in (
        (GENERATOR_MODEL, g, gen_args, generator_inputs(template), generator_outputs(template)),
        (ENCODER_MODEL, e, enc_args, encoder_inputs(template), encoder_outputs(template)),
    ):
        for version in versions:
            path = root / name / str(version) / "model.onnx"
            path.parent.mkdir(parents=True, exist_ok=True)
            names = [s.name for s in ins + outs]
            torch.onnx.export(module, args, str(path), input_names=[s.name for s in ins], output_names=[s.name for s in outs],
                              dynamic_axes={n: {0: "N"} for n in names}, opset_version=17, dynamo=False)
            model = onnx.load(str(path))
            onnx.helper.set_model_props(model, props)
            onnx.save(model, str(path))
        (root / name / "config.pbtxt").write_text(config_text(name, ins, outs, max_batch_size, props))
    return root


def test_exported_models_carry_the_contract_in_metadata_and_config(tmp_path):
    import onnxruntime as ort

    repo = make_repository(tmp_path)
    for model in (GENERATOR_MODEL, ENCODER_MODEL):
        meta = ort.InferenceSession(str(repo / model / "1" / "model.onnx")).get_modelmeta().custom_metadata_map
        assert LatentTemplate.from_json(meta[META_TEMPLATE]) == LatentTemplate()
        assert json.loads(meta[META_CATEGORY_TO_DIGIT]) == CATEGORY_TO_DIGIT
        config = (repo / model / "config.pbtxt").read_text()
        assert META_TEMPLATE in config and "max_batch_size: 8" in config


def test_exported_generator_takes_any_batch_size(tmp_path):
    import onnxruntime as ort

    repo = make_repository(tmp_path)
    sess = ort.InferenceSession(str(repo / GENERATOR_MODEL / "1" / "model.onnx"))
    t = LatentTemplate()
    feeds = {s.name: np.zeros((5, s.shape[0]), np.float32) for s in generator_inputs(t)}
    (image,) = sess.run(None, feeds)
    assert image.shape == (5, 1, 28, 28)
