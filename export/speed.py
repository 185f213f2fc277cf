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
import onnx
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


def seconds_per_run(model_bytes: bytes, feeds: dict[str, np.ndarray], repeats: int = 20) -> float:
    sess = session(model_bytes)
    for _ in range(3):
        sess.run(None, feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_gflops(m: int = 12544, k: int = 1024, n: int = 1024) -> float:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(np.random.default_rng(0).random((k, n), np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_export.OPSET)])
    a = np.random.default_rng(1).random((m, k), np.float32)
    return 2.0 * m * k * n / seconds_per_run(model.SerializeToString(), {"a": a}) / 1e9


def compare(g: Generator, template: LatentTemplate, batch: int = 256) -> dict[str, float]:
    feeds = generator_feeds(template, batch)
    ours = onnx_export.generator_onnx(g, template).SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plain.onnx"
        plain_generator_onnx(g, template, path)
        plain = path.read_bytes()
    flops = generator_flops(g, batch)
    out = {"matmul_gflops": matmul_gflops()}
    for name, model in (("plain", plain), ("ours", ours)):
        s = seconds_per_run(model, feeds)
        out[f"{name}_ms"] = s * 1e3
        out[f"{name}_gflops"] = flops / s / 1e9
    out["matmul_gflops_after"] = matmul_gflops()  # the machine is shared: bracket the runs
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
    rate = (r["matmul_gflops"] + r["matmul_gflops_after"]) / 2
    print(f"onnxruntime matmul rate: {rate:.0f} GFLOP/s")
    for name in ("plain", "ours"):
        print(f"{name:>5} generator, batch {args.batch}: {r[name + '_ms']:.1f} ms, "
              f"{r[name + '_gflops']:.0f} useful GFLOP/s = {r[name + '_gflops'] / rate:.0%} of the matmul rate")


if __name__ == "__main__":
    main()
