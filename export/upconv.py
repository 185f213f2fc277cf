"""An ONNX graph pass: stride-2 up-convolutions as phase convolutions.

onnxruntime's CPU ConvTranspose runs a col2im loop per image. An up-convolution
with kernel 4, stride 2 and padding 1 is the same as four 2x2 convolutions, one
per output phase (row parity, column parity), laid out by DepthToSpace; those
run as blocked Conv kernels. Two such up-convolutions in a row (through an
element-wise activation) go further: the first one's four phases are never
interleaved into the large intermediate map; each phase feeds the second
up-convolution's 16 output phases directly, the four parts are summed and
DepthToSpace(4) lays the 16 phases out.

    rewrite_upconvs(model) -> model with every such ConvTranspose rewritten

Only ConvTranspose nodes with constant weights, kernel 4, stride 2, padding 1,
group 1, no dilation and no output padding are touched; anything else is left
as it is. Parity against PyTorch (export.parity) guards the result.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

ACTIVATIONS = ("Relu", "LeakyRelu")  # element-wise: they commute with the phase layout

# For a kernel-4 stride-2 padding-1 up-convolution, output row 2m + r receives
# input row m through kernel row _TAPS[r][1] and input row m - 1 (r = 0) or
# m + 1 (r = 1) through kernel row _TAPS[r][0]: a 2x2 Conv, padded on the side
# of the neighbour.
_TAPS = {0: [3, 1], 1: [2, 0]}
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # DCR order of DepthToSpace(2)


def phase_kernel(w: np.ndarray, rh: int, rw: int) -> np.ndarray:
    """ConvTranspose weight [ci, co, 4, 4] -> the 2x2 Conv weight [co, ci, 2, 2] of phase (rh, rw)."""
    return np.ascontiguousarray(w[:, :, _TAPS[rh]][:, :, :, _TAPS[rw]].transpose(1, 0, 2, 3))


def _block_offset(s: int, r: int) -> tuple[int, int]:
    """The second up-conv on the first's phase r: output row 4q + s reads phase row q + d
    through kernel row k. (From 4q + s = 2(2(q + d) + r) - 1 + k.) d is in {0, 1} for
    r = 0 and in {-1, 0} for r = 1."""
    v = s + 1 - 2 * r
    return (0, v) if 0 <= v <= 3 else ((-1, 3) if v < 0 else (1, 0))


def second_up_kernel(w: np.ndarray, rh: int, rw: int) -> np.ndarray:
    """ConvTranspose weight [ci, co, 4, 4] -> the 2x2 Conv [16*co, ci, 2, 2] taking phase (rh, rw)
    of the previous up-conv to all 16 output phases (DCR channel order: (4*sh + sw)*co + o)."""
    ci, co = w.shape[0], w.shape[1]
    k = np.zeros((16 * co, ci, 2, 2), np.float32)
    for sh in range(4):
        for sw in range(4):
            (dh, kh), (dw, kw) = _block_offset(sh, rh), _block_offset(sw, rw)
            # window rows cover offsets {0, 1} (r = 0, padded after) or {-1, 0} (r = 1, padded before)
            o = (sh * 4 + sw) * co
            k[o:o + co, :, dh + rh, dw + rw] = w[:, :, kh, kw].T
    return k


class _Rewriter:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.inits = {t.name: t for t in model.graph.initializer}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.new_inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"upconv_{stem}_{self._n}"

    def const(self, value: np.ndarray) -> str:
        n = self.name("w")
        self.new_inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), n))
        return n

    def weights(self, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
        """(weight [ci, co, 4, 4], bias [co]) of an up-conv this pass handles, else None."""
        if node.op_type != "ConvTranspose" or node.input[1] not in self.inits:
            return None
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        if (list(a.get("strides", [1, 1])) != [2, 2] or list(a.get("pads", [0] * 4)) != [1, 1, 1, 1]
                or a.get("group", 1) != 1 or list(a.get("dilations", [1, 1])) != [1, 1]
                or any(a.get("output_padding", [0, 0])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or "output_shape" in a):
            return None
        w = numpy_helper.to_array(self.inits[node.input[1]]).astype(np.float32)
        if w.ndim != 4 or w.shape[2:] != (4, 4):
            return None
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.inits:
                return None
            b = numpy_helper.to_array(self.inits[node.input[2]]).astype(np.float32)
        else:
            b = np.zeros(w.shape[1], np.float32)
        return w, b

    def only_consumer(self, tensor: str) -> onnx.NodeProto | None:
        users = self.consumers.get(tensor, [])
        outputs = {o.name for o in self.model.graph.output}
        return users[0] if len(users) == 1 and tensor not in outputs else None

    def phase(self, x: str, w: np.ndarray, b: np.ndarray, rh: int, rw: int) -> onnx.NodeProto:
        return helper.make_node("Conv", [x, self.const(phase_kernel(w, rh, rw)), self.const(b)], [self.name("phase")],
                                name=self.name("Conv"), kernel_shape=[2, 2], pads=[1 - rh, 1 - rw, rh, rw])

    def single(self, node: onnx.NodeProto, w: np.ndarray, b: np.ndarray) -> list[onnx.NodeProto]:
        """One up-conv: four phase Convs, Concat, DepthToSpace(2)."""
        phases = [self.phase(node.input[0], w, b, rh, rw) for rh, rw in _PHASES]
        cat = helper.make_node("Concat", [p.output[0] for p in phases], [self.name("phases")], name=self.name("Concat"), axis=1)
        d2s = helper.make_node("DepthToSpace", cat.output, [node.output[0]], name=self.name("DepthToSpace"),
                               blocksize=2, mode="DCR")
        return [*phases, cat, d2s]

    def pair(self, first: onnx.NodeProto, act: onnx.NodeProto, second: onnx.NodeProto,
             w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> list[onnx.NodeProto]:
        """Up-conv, activation, up-conv: 16 output phases from the first one's four, never interleaved."""
        nodes, parts = [], []
        for i, (rh, rw) in enumerate(_PHASES):
            conv = self.phase(first.input[0], w1, b1, rh, rw)  # N x co1 x H x W: phase (rh, rw)
            a = helper.make_node(act.op_type, conv.output, [self.name("act")], name=self.name(act.op_type))
            a.attribute.extend(act.attribute)
            inputs = [a.output[0], self.const(second_up_kernel(w2, rh, rw))]
            if i == 0:  # the bias once, in the first of the summed parts
                inputs.append(self.const(np.tile(b2, 16)))
            part = helper.make_node("Conv", inputs, [self.name("part")], name=self.name("Conv"),
                                    kernel_shape=[2, 2], pads=[rh, rw, 1 - rh, 1 - rw])  # N x 16*co2 x H x W
            nodes += [conv, a, part]
            parts.append(part.output[0])
        total = helper.make_node("Sum", parts, [self.name("sum")], name=self.name("Sum"))
        d2s = helper.make_node("DepthToSpace", total.output, [second.output[0]], name=self.name("DepthToSpace"),
                               blocksize=4, mode="DCR")  # N x co2 x 4H x 4W
        return [*nodes, total, d2s]

    def run(self) -> onnx.ModelProto:
        graph, out, skip = self.model.graph, [], set()
        for node in graph.node:
            if id(node) in skip:
                continue
            first = self.weights(node)
            if first is None:
                out.append(node)
                continue
            act = self.only_consumer(node.output[0])
            second_node = self.only_consumer(act.output[0]) if act is not None and act.op_type in ACTIVATIONS else None
            second = self.weights(second_node) if second_node is not None else None
            if second is not None:
                out += self.pair(node, act, second_node, *first, *second)
                skip.update((id(act), id(second_node)))
            else:
                out += self.single(node, *first)
        result = onnx.ModelProto()
        result.CopyFrom(self.model)
        del result.graph.node[:]
        result.graph.node.extend(out)
        used = {name for n in out for name in n.input}
        keep = [t for t in result.graph.initializer if t.name in used]
        del result.graph.initializer[:]
        result.graph.initializer.extend(keep + self.new_inits)
        return result


def rewrite_upconvs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of model with every kernel-4 stride-2 padding-1 ConvTranspose as phase convolutions."""
    return _Rewriter(model).run()
