"""PyTorch networks -> ONNX graphs, written node by node from eval-mode weights.

Why by hand instead of torch.onnx.export: serving speed. In eval mode batch norm
is an affine map, so it folds exactly into the preceding layer's weights. And
onnxruntime's CPU ConvTranspose runs a col2im loop per image; the paper's
up-convolutions (kernel 4, stride 2, padding 1) are rewritten as sub-pixel
convolutions that onnxruntime runs as blocked (NCHWc) Conv kernels:

  up-conv 1: each of its 4 output phases (row parity, column parity) is a 2x2
             Conv over the 7x7 map ([N, 64, 7, 7] each); the phases are never
             interleaved into the 14x14 map (a slow transpose of a large tensor);
  up-conv 2: each phase map feeds the 16 output phases of the 28x28 image
             through one more 2x2 Conv ([N, 16, 7, 7]), the four are summed and
             DepthToSpace(4) lays the 16 phases out as [N, 1, 28, 28].

Parity against the PyTorch modules (export.parity) guards every rewrite.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from infogan.contract import (
    CATEGORICAL_PROBS,
    CONTINUOUS_MEAN,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    REALNESS,
    LatentTemplate,
    TensorSpec,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)
from infogan.training.model import Discriminator, Generator

OPSET = 18
BATCH = "batch"  # the symbolic batch axis of every input and output


class UnsupportedLayout(RuntimeError):
    """The networks in training/model.py changed shape in a way this exporter does not know."""


# ---------------------------------------------------------------- folding


def _fold(layer: nn.Module, bn: nn.BatchNorm1d | nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of `layer` with the following eval-mode batch norm folded in.

    BN(y) = (y - mean) * s + beta with s = gamma / sqrt(var + eps), applied per output
    channel, which is axis 0 of Linear/Conv2d weights and axis 1 of ConvTranspose2d's.
    """
    w = layer.weight.detach().double()
    out_axis = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    n_out = w.shape[out_axis]
    b = layer.bias.detach().double() if layer.bias is not None else torch.zeros(n_out, dtype=torch.float64)
    if bn is not None:
        s = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        shape = [1] * w.dim()
        shape[out_axis] = n_out
        w = w * s.view(shape)
        b = (b - bn.running_mean.detach().double()) * s + bn.bias.detach().double()
    return w.float().numpy(), b.float().numpy()


def _steps(seq: nn.Sequential) -> list[tuple[nn.Module, np.ndarray, np.ndarray, float | None]]:
    """(layer, folded weight, folded bias, activation) for each weighted layer of seq.

    activation: None (linear), 0.0 (ReLU) or the leaky slope. Flatten is implied by
    a Linear following a Conv and is emitted by the graph writer.
    """
    out: list = []
    mods = list(seq)
    i = 0
    while i < len(mods):
        layer = mods[i]
        if isinstance(layer, nn.Flatten):
            i += 1
            continue
        if not isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            raise UnsupportedLayout(f"unexpected {type(layer).__name__} at position {i} of {seq}")
        i += 1
        bn = None
        if i < len(mods) and isinstance(mods[i], (nn.BatchNorm1d, nn.BatchNorm2d)):
            bn, i = mods[i], i + 1
        act = None
        if i < len(mods) and isinstance(mods[i], nn.ReLU):
            act, i = 0.0, i + 1
        elif i < len(mods) and isinstance(mods[i], nn.LeakyReLU):
            act, i = float(mods[i].negative_slope), i + 1
        w, b = _fold(layer, bn)
        out.append((layer, w, b, act))
    return out


# ---------------------------------------------------------------- graph writer


class _Graph:
    """Collects nodes and initializers; each add_* returns the new tensor's name."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def node(self, op: str, inputs: list[str], stem: str | None = None, out: str | None = None, **attrs) -> str:
        out = out or self.name(stem or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out

    def act(self, x: str, act: float | None, out: str | None = None) -> str:
        if act is None:
            return x
        if act == 0.0:
            return self.node("Relu", [x], out=out)
        return self.node("LeakyRelu", [x], out=out, alpha=act)

    def dense(self, x: str, w: np.ndarray, b: np.ndarray, act: float | None, out: str | None = None) -> str:
        y = self.node("Gemm", [x, self.const("w", w), self.const("b", b)], transB=1, out=None if act is not None else out)
        return self.act(y, act, out)

    def model(self, name: str, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> onnx.ModelProto:
        def info(s: TensorSpec):
            return helper.make_tensor_value_info(s.name, TensorProto.FLOAT, [BATCH, *s.shape])

        graph = helper.make_graph(self.nodes, name, [info(s) for s in inputs], [info(s) for s in outputs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="infogan")
        # IR version 8 loads in onnxruntime >= 1.14, i.e. in older Triton containers too
        model.ir_version = 8
        return model


def _check_up(layer: nn.Module) -> None:
    ok = (
        isinstance(layer, nn.ConvTranspose2d)
        and layer.kernel_size == (4, 4) and layer.stride == (2, 2) and layer.padding == (1, 1)
        and layer.output_padding == (0, 0) and layer.groups == 1 and layer.dilation == (1, 1)
    )
    if not ok:
        raise UnsupportedLayout(f"sub-pixel export needs ConvTranspose2d(kernel 4, stride 2, padding 1); got {layer}")


# For a kernel-4 stride-2 padding-1 up-convolution, output row 2m + r receives
# input row m through kernel row _TAPS[r][1] and input row m - 1 (r = 0) or
# m + 1 (r = 1) through kernel row _TAPS[r][0]: a 2x2 Conv, padded on the side
# of the neighbour.
_TAPS = {0: [3, 1], 1: [2, 0]}


def _phase_kernel(w: np.ndarray, rh: int, rw: int) -> np.ndarray:
    """ConvTranspose weight [ci, co, 4, 4] -> the 2x2 Conv weight [co, ci, 2, 2] of phase (rh, rw)."""
    return w[:, :, _TAPS[rh]][:, :, :, _TAPS[rw]].transpose(1, 0, 2, 3)


def _block_offset(s: int, r: int) -> tuple[int, int]:
    """Up-conv 2 on up-conv 1's phase r: output row 4q + s reads phase row q + d through kernel row k.

    (From 4q + s = 2(2(q + d) + r) - 1 + k.) d is in {0, 1} for r = 0 and in {-1, 0} for r = 1.
    """
    v = s + 1 - 2 * r
    return (0, v) if 0 <= v <= 3 else ((-1, 3) if v < 0 else (1, 0))


def _second_up_kernel(w: np.ndarray, rh: int, rw: int) -> np.ndarray:
    """ConvTranspose weight [ci, co, 4, 4] -> the 2x2 Conv [16*co, ci, 2, 2] taking phase (rh, rw)
    of the previous up-conv to all 16 output phases (DCR channel order: (4*sh + sw)*co + o)."""
    ci, co = w.shape[0], w.shape[1]
    k = np.zeros((16 * co, ci, 2, 2), np.float32)
    for sh in range(4):
        for sw in range(4):
            (dh, kh), (dw, kw) = _block_offset(sh, rh), _block_offset(sw, rw)
            # window rows cover offsets {0, 1} (r = 0, padded after) or {-1, 0} (r = 1, padded before)
            jh, jw = dh + rh, dw + rw
            o = (sh * 4 + sw) * co
            k[o:o + co, :, jh, jw] = w[:, :, kh, kw].T
    return k


# ---------------------------------------------------------------- the two models


def generator_onnx(g: Generator, template: LatentTemplate) -> onnx.ModelProto:
    """(noise, categorical, continuous) -> image in [0, 1], batch norm folded, sub-pixel up-convs."""
    ins, (image,) = generator_inputs(template), generator_outputs(template)
    fc, up = _steps(g.fc), _steps(g.deconv)
    if [type(s[0]) for s in up] != [nn.ConvTranspose2d, nn.ConvTranspose2d] or up[1][3] is not None:
        raise UnsupportedLayout(f"expected two up-convolutions, the last one linear; got {g.deconv}")
    for layer, *_ in up:
        _check_up(layer)
    first, second = up
    c_in = first[0].in_channels
    h = w = int(round((fc[-1][1].shape[0] / c_in) ** 0.5))  # 7: the FC output is c_in x h x w

    gr = _Graph()
    x = gr.node("Concat", [s.name for s in ins], axis=1)  # N x input_dim
    for _, wt, b, act in fc:
        x = gr.dense(x, wt, b, act)  # N x 1024, then N x 6272
    x = gr.node("Reshape", [x, gr.const("shape", np.array([-1, c_in, h, w], np.int64))])  # N x 128 x 7 x 7

    parts = []
    for rh in (0, 1):
        for rw in (0, 1):
            y = gr.node("Conv", [x, gr.const("w", _phase_kernel(first[1], rh, rw)), gr.const("b", first[2])],
                        kernel_shape=[2, 2], pads=[1 - rh, 1 - rw, rh, rw])  # N x 64 x 7 x 7: phase (rh, rw)
            y = gr.act(y, first[3])
            inputs = [y, gr.const("w", _second_up_kernel(second[1], rh, rw))]
            if not parts:  # the bias once, in the first of the summed parts
                inputs.append(gr.const("b", np.tile(second[2], 16)))
            parts.append(gr.node("Conv", inputs, kernel_shape=[2, 2], pads=[rh, rw, 1 - rh, 1 - rw]))  # N x 16*co x 7 x 7
    y = gr.node("Sum", parts)  # N x 16*co x 7 x 7: output phase (sh, sw) at channels (4*sh + sw)*co...
    logits = gr.node("DepthToSpace", [y], blocksize=4, mode="DCR")  # N x co x 28 x 28
    gr.node("Sigmoid", [logits], out=image.name)
    return gr.model(GENERATOR_MODEL, ins, [image])


def encoder_onnx(d: Discriminator, template: LatentTemplate) -> onnx.ModelProto:
    """image -> (per-code softmax probabilities, continuous means, realness), batch norm folded."""
    (image,) = encoder_inputs(template)
    outs = encoder_outputs(template)
    gr = _Graph()
    x, flat = image.name, False
    for layer, wt, b, act in _steps(d.trunk.net):
        if isinstance(layer, nn.Conv2d):
            x = gr.node("Conv", [x, gr.const("w", wt), gr.const("b", b)], kernel_shape=list(layer.kernel_size),
                        strides=list(layer.stride), pads=list(layer.padding) * 2, dilations=list(layer.dilation),
                        group=layer.groups)  # N x 64 x 14 x 14, then N x 128 x 7 x 7
            x = gr.act(x, act)
        else:
            if not flat:
                x, flat = gr.node("Flatten", [x], axis=1), True  # N x 6272
            x = gr.dense(x, wt, b, act)  # N x 1024
    features = x

    # D head: one logit per image -> realness = sigmoid
    dw, db = _fold(d.d_head, None)
    gr.node("Sigmoid", [gr.dense(features, dw, db, None)], out=REALNESS)  # N x 1

    # Q head: hidden layer, then the last layer's rows split into categorical logits and means
    q = _steps(d.q_head.net)
    for _, wt, b, act in q[:-1]:
        features = gr.dense(features, wt, b, act)  # N x 128
    _, wl, bl, _ = q[-1]
    k = template.categorical_dim
    gr.dense(features, wl[k:], bl[k:], None, out=CONTINUOUS_MEAN)  # N x n_continuous
    logits = gr.dense(features, wl[:k], bl[:k], None)  # N x sum(sizes)
    if len(template.categorical) == 1:
        gr.node("Softmax", [logits], out=CATEGORICAL_PROBS, axis=1)
    else:
        sizes = gr.const("sizes", np.array(template.categorical, np.int64))
        parts = [gr.name("code_logits") for _ in template.categorical]
        gr.nodes.append(helper.make_node("Split", [logits, sizes], parts, name=gr.name("Split"), axis=1))
        probs = [gr.node("Softmax", [p], axis=1) for p in parts]
        gr.node("Concat", probs, out=CATEGORICAL_PROBS, axis=1)
    return gr.model(ENCODER_MODEL, [image], outs)


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
