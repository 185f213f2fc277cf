"""PyTorch networks -> ONNX with torch.onnx.export, from eval-mode weights.

Batch norm is folded into the preceding layer first (in eval mode it is an
affine map), so the graphs hold no BatchNormalization whatever the exporter's
optimizer does. The generator's up-convolutions are then rewritten as phase
convolutions (export.upconv), which onnxruntime's CPU kernels run faster
(`infogan bench --only upconv` shows by how much). Parity against the
PyTorch modules (export.parity) guards every graph before it is published.
"""

from __future__ import annotations

import copy
import logging
import warnings

import onnx
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from infogan.contract import (
    ONNX_IR_VERSION,
    ONNX_OPSET,
    CATEGORICAL,
    CONTINUOUS,
    IMAGE,
    NOISE,
    LatentTemplate,
    encoder_outputs,
    generator_outputs,
)
from infogan.export.upconv import rewrite_upconvs
from infogan.training.model import Discriminator, Encoder, Generator

BATCH = "batch"  # the symbolic batch axis of every input and output
MAX_BATCH = 1 << 16  # the largest batch the exported graphs promise to take


def fold_batch_norm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of module with every batch norm that follows a Linear,
    Conv2d or ConvTranspose2d inside an nn.Sequential folded into that layer."""
    module = copy.deepcopy(module).eval()
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        layers = list(seq)
        for i in range(len(layers) - 1):
            layer, bn = layers[i], layers[i + 1]
            if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            if isinstance(layer, nn.Linear):
                layers[i] = fuse_linear_bn_eval(layer, bn)
            elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                layers[i] = fuse_conv_bn_eval(layer, bn, transpose=isinstance(layer, nn.ConvTranspose2d))
            else:
                continue
            layers[i + 1] = nn.Identity()
        for i, layer in enumerate(layers):
            seq[i] = layer
    return module


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    batch = torch.export.Dim(BATCH, min=1, max=MAX_BATCH)
    # the exporter's chatter: deprecations as warnings, and one log line per torchvision
    # operator it cannot register (torchvision is not a dependency) on every export
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        registration.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(module, args, input_names=inputs, output_names=outputs, opset_version=ONNX_OPSET,
                                        dynamo=True, external_data=False, verbose=False,
                                        dynamic_shapes={name: {0: batch} for name in inputs})
        finally:
            registration.setLevel(level)
    model = program.model_proto
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    model.ir_version = ONNX_IR_VERSION
    model.producer_name = "infogan"
    return model


def plain_generator_onnx(g: Generator, template: LatentTemplate) -> onnx.ModelProto:
    """(noise, categorical, continuous) -> image in [0, 1]: the exporter's graph, batch norm folded."""
    args = (torch.zeros(2, template.noise_dim), torch.zeros(2, template.categorical_dim),
            torch.zeros(2, template.n_continuous))
    return _export(fold_batch_norm(g), args, [NOISE, CATEGORICAL, CONTINUOUS], [o.name for o in generator_outputs(template)])


def generator_onnx(g: Generator, template: LatentTemplate) -> onnx.ModelProto:
    """The generator graph as published in model.onnx: up-convolutions as phase convolutions."""
    return rewrite_upconvs(plain_generator_onnx(g, template))


def encoder_onnx(d: Discriminator, template: LatentTemplate) -> onnx.ModelProto:
    """image -> (softmax probabilities, continuous means, realness), batch norm folded."""
    return _export(Encoder(fold_batch_norm(d)), (torch.zeros(2, 1, 28, 28),), [IMAGE],
                   [o.name for o in encoder_outputs(template)])


def attach_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    """Write metadata_props (replacing any earlier values of the same keys)."""
    keep = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=str(value))
    return model


def check(model: onnx.ModelProto) -> None:
    """onnx's full check (shape inference included); raises onnx.checker.ValidationError."""
    onnx.checker.check_model(model, full_check=True)
