"""How fast onnxruntime runs our generator graph next to the plain torch.onnx.export graph.

    python -m infogan.export.speed [--run runs/latest] [--batch 256]

Prints milliseconds per batch and useful GFLOP/s (the network's multiply-adds x 2,
not counting the zeros a rewrite may add), next to the rate of one large MatMul
on the same session settings: the machine's matmul rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from infogan.contract import CATEGORICAL, CONTINUOUS, IMAGE, NOISE, LatentTemplate
from infogan.export import onnx_export
from infogan.export.parity import generator_feeds, session
from infogan.training.model import Generator


def plain_generator_onnx(g: Generator, template: LatentTemplate, path: Path) -> None:
    """The baseline: torch.onnx.export's own graph (its optimizer folds batch norm; ConvTranspose stays)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    feeds = generator_feeds(template, 2)
    args = tuple(torch.from_numpy(feeds[k]) for k in (NOISE, CATEGORICAL, CONTINUOUS))
    torch.onnx.export(g.eval(), args, str(path), input_names=[NOISE, CATEGORICAL, CONTINUOUS], output_names=[IMAGE],
                      opset_version=onnx_export.OPSET, dynamo=True, external_data=False, verbose=False,
                      dynamic_shapes={NOISE: {0: batch}, CATEGORICAL: {0: batch}, CONTINUOUS: {0: batch}})


def generator_flops(g: Generator, batch: int) -> float:
    """2 x multiply-adds of the generator's layers at this batch size."""
    macs = 0
    for m in g.modules():
        if isinstance(m, torch.nn.Linear):
            macs += m.in_features * m.out_features
    h = 7
    for m in g.modules():
        if isinstance(m, torch.nn.ConvTranspose2d):
            macs += h * h * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            h *= 2
    return 2.0 * macs * batch


def _timer(model_bytes: bytes, feeds: dict[str, np.ndarray]):
    """A function that times one run of a warmed-up session."""
    sess = session(model_bytes)
    for _ in range(3):
        sess.run(None, feeds)

    def once() -> float:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        return time.perf_counter() - t0

    return once


def _matmul_case(m: int = 12544, k: int = 1024, n: int = 1024):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(np.random.default_rng(0).random((k, n), np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_export.OPSET)])
    a = np.random.default_rng(1).random((m, k), np.float32)
    return _timer(model.SerializeToString(), {"a": a}), 2.0 * m * k * n


def compare(g: Generator, template: LatentTemplate, batch: int = 256, rounds: int = 8, per_round: int = 3) -> dict[str, float]:
    """GFLOP/s of the matmul reference, the plain graph and ours, measured in interleaved
    rounds (the machine is shared: a neighbour's burst then lands on every case alike)."""
    feeds = generator_feeds(template, batch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plain.onnx"
        plain_generator_onnx(g, template, path)
        plain = path.read_bytes()
    flops = generator_flops(g, batch)
    cases = {"matmul": _matmul_case(),
             "plain": (_timer(plain, feeds), flops),
             "ours": (_timer(onnx_export.generator_onnx(g, template).SerializeToString(), feeds), flops)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, (once, _) in cases.items():
            times[name].extend(once() for _ in range(per_round))
    out = {}
    for name, (_, work) in cases.items():
        s = float(np.median(times[name]))
        out[f"{name}_ms"], out[f"{name}_gflops"] = s * 1e3, work / s / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="run directory (default: random weights)")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    if args.run:
        from infogan.training.checkpoint import build_models, checkpoint_template, load_checkpoint

        ckpt = load_checkpoint(args.run / "checkpoint.pt")
        template, (g, _) = checkpoint_template(ckpt), build_models(ckpt)
    else:
        template = LatentTemplate()
        g = Generator(template).eval()
    r = compare(g, template, args.batch)
    rate = r["matmul_gflops"]
    print(f"onnxruntime matmul rate: {rate:.0f} GFLOP/s")
    for name in ("plain", "ours"):
        print(f"{name:>5} generator, batch {args.batch}: {r[name + '_ms']:.1f} ms, "
              f"{r[name + '_gflops']:.0f} useful GFLOP/s = {r[name + '_gflops'] / rate:.0%} of the matmul rate")


if __name__ == "__main__":
    main()
