"""Generation and encoding in one process: the public API, the raw session, PyTorch eager.

Per model and batch size, four cases run interleaved on the same inputs:
  api      Generator.generate(n) (latent sampling included) / Encoder.encode(images)
  api_run  Generator.run(noise, categorical, continuous) / Encoder.run(images)
  raw      the onnxruntime.InferenceSession the API holds (the client's session
           options and providers), called directly with prepared arrays
  torch    the checkpoint's networks (build_models), eager, inference_mode
The raw session's useful GFLOP/s (FLOPs counted by torch.utils.flop_counter on
the PyTorch network) is set against the machine's fp32 matmul rate, measured
in this run: the larger of onnxruntime's and PyTorch's.
"""

from __future__ import annotations


import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.utils.flop_counter import FlopCounterMode

from infogan.bench.timing import Timing, interleaved, ratio, timed_block, torch_matmul_gflops
from infogan.client import Encoder, Generator
from infogan.contract import (CATEGORICAL, CONTINUOUS, ENCODER_MODEL, GENERATOR_MODEL, IMAGE, META_METRICS, NOISE,
                              ONNX_IR_VERSION, ONNX_OPSET)
from infogan.export.repository import model_name
from infogan.sessions import open_session, session_options
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.model import Encoder as TorchEncoder

BATCHES = (1, 64, 256, 1024)
QUICK_BATCHES = (1, 64, 256)
VARIANT_BATCH = 256


def raw_session(path) -> ort.InferenceSession:
    return open_session(path)


def latent_feeds(template, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    from infogan.contract import sample_latent

    z = sample_latent(template, n, np.random.default_rng(seed))
    return {k: z[k] for k in (NOISE, CATEGORICAL, CONTINUOUS)}


def flops_per_image(module: torch.nn.Module, *inputs: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        module(*inputs)
    return fc.get_total_flops() / len(inputs[0])


def ort_matmul(m: int = 4096, k: int = 1024, n: int = 1024) -> tuple[ort.InferenceSession, dict[str, np.ndarray], float]:
    """(session, feeds, FLOPs) of one large fp32 MatMul on the CPU with the project's session options."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(rng.random((k, n), np.float32), "b")],
    )
    # the exporter's IR version and opset: make_model's default is the installed onnx's newest, which older
    # onnxruntimes refuse
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], ir_version=ONNX_IR_VERSION)
    return open_session(model.SerializeToString(), gpu=False), {"a": rng.random((m, k), np.float32)}, 2.0 * m * k * n


def ort_matmul_gflops(seconds: float, m: int = 4096, k: int = 1024, n: int = 1024) -> float:
    """One large MatMul in onnxruntime with the client's session options: the engine's own ceiling."""
    sess, a, _ = ort_matmul(m, k, n)
    t = Timing(m)
    sess.run(None, a)
    timed_block(lambda: sess.run(None, a), t, seconds, min_calls=3)
    return 2.0 * m * k * n / float(np.median(t.seconds)) / 1e9


def _generator_cases(api: Generator, raw: ort.InferenceSession, g_torch, feeds, batch):
    tz = [torch.from_numpy(feeds[k]) for k in (NOISE, CATEGORICAL, CONTINUOUS)]

    def torch_call():
        with torch.inference_mode():
            return g_torch(*tz).cpu()

    return {
        "api": lambda: api.generate(batch),
        "api_run": lambda: api.run(feeds[NOISE], feeds[CATEGORICAL], feeds[CONTINUOUS]),
        "raw": lambda: raw.run(None, feeds),
        "torch": torch_call,
    }


def _encoder_cases(api: Encoder, raw: ort.InferenceSession, e_torch, images):
    timg = torch.from_numpy(images)

    def torch_call():
        with torch.inference_mode():
            return e_torch(timg)

    return {
        "api": lambda: api.encode(images),
        "api_run": lambda: api.run(images),
        "raw": lambda: raw.run(None, {IMAGE: images}),
        "torch": torch_call,
    }


def _figures(cases: dict[str, Timing], flops: float, limit_gflops: float) -> dict:
    out = {name: t.summary() for name, t in cases.items()}
    raw_gflops = out["raw"]["images_per_s"] * flops / 1e9
    out["api_over_raw"] = ratio(out["api"]["images_per_s"], out["raw"]["images_per_s"])
    out["api_run_over_raw"] = ratio(out["api_run"]["images_per_s"], out["raw"]["images_per_s"])
    out["api_over_torch"] = ratio(out["api"]["images_per_s"], out["torch"]["images_per_s"])
    out["raw_gflops"] = raw_gflops
    out["raw_fraction_of_matmul"] = raw_gflops / limit_gflops
    return out


def variant_quality(path) -> dict:
    """The quality figures export measured for a variant, read back from its ONNX metadata."""
    import json

    meta = raw_session(path).get_modelmeta().custom_metadata_map
    return json.loads(meta.get(META_METRICS, "{}")).get("quality", {})


def run(prep, quick: bool = False, log=lambda _: None, budget_s: float | None = None,
        batches: tuple[int, ...] | None = None) -> dict:
    budget = budget_s or (0.45 if quick else 2.4)  # seconds per case and batch size, over the rounds
    rounds = 4 if quick else 6  # short interleaved blocks: a neighbour's burst lands on every case
    batches = batches or (QUICK_BATCHES if quick else BATCHES)
    ckpt = load_checkpoint(prep.checkpoint)
    g, d = build_models(ckpt)
    enc = TorchEncoder(d).eval()
    api_g, api_e = Generator.from_onnx(prep.generator), Encoder.from_onnx(prep.encoder)
    # the very session the API wraps: same graph, options and weights in memory, so
    # api / raw is the wrapper's cost alone (two sessions differ by several % here)
    raw_g, raw_e = api_g.backend.session, api_e.backend.session
    template = api_g.template

    feeds_all = latent_feeds(template, max(batches))
    images_all = raw_g.run(None, feeds_all)[0]
    one = latent_feeds(template, 8)
    flops = {
        "generator": flops_per_image(g, *[torch.from_numpy(one[k]) for k in (NOISE, CATEGORICAL, CONTINUOUS)]),
        "encoder": flops_per_image(enc, torch.from_numpy(images_all[:8])),
    }

    log("matmul rates")
    matmul_s = min(budget, 0.5) if quick else 1.5
    ort_before, torch_mm = ort_matmul_gflops(matmul_s), torch_matmul_gflops(matmul_s)
    out = {"batches": list(batches), "flops_per_image": flops, "providers": raw_g.get_providers(),
           "threads": {"onnxruntime_intra_op": session_options().intra_op_num_threads, "torch": torch.get_num_threads()},
           "generator": {}, "encoder": {}}
    timings: dict[str, dict[int, dict[str, Timing]]] = {"generator": {}, "encoder": {}}
    for batch in batches:
        log(f"generator and encoder at batch {batch}")
        feeds = {k: v[:batch] for k, v in feeds_all.items()}
        gen_cases = _generator_cases(api_g, raw_g, g, feeds, batch)
        enc_cases = _encoder_cases(api_e, raw_e, enc, images_all[:batch])
        timings["generator"][batch] = interleaved(gen_cases, batch, budget, rounds, min_calls=1)
        timings["encoder"][batch] = interleaved(enc_cases, batch, budget, rounds, min_calls=1)
    ort_after = ort_matmul_gflops(matmul_s)  # the machine is shared: bracket the runs
    ort_mm = (ort_before + ort_after) / 2
    limit = max(ort_mm, torch_mm)
    if out["providers"][0] == "CUDAExecutionProvider" and torch.cuda.is_available():  # onnxruntime-gpu: the GPU's rate
        limit = torch_matmul_gflops(matmul_s, 4096, "cuda")
    out["matmul_gflops"] = {"onnxruntime": ort_mm, "onnxruntime_before": ort_before, "onnxruntime_after": ort_after,
                            "torch": torch_mm, "limit": limit}
    for model in ("generator", "encoder"):
        for batch, cases in timings[model].items():
            out[model][str(batch)] = _figures(cases, flops[model], limit)

    out["variants"] = variants(prep, template, feeds_all, images_all, budget, rounds, log)
    out["gpu"] = gpu(g, enc, feeds_all, images_all, batches, budget, rounds, log) if torch.cuda.is_available() else None
    return out


def variants(prep, template, feeds_all, images_all, budget, rounds, log) -> dict:
    """Each exported precision beside fp32: raw-session throughput at one batch, and its quality."""
    if len(prep.precisions) < 2:
        return {}
    log(f"variants {', '.join(prep.precisions)} at batch {VARIANT_BATCH}")
    b = min(VARIANT_BATCH, len(images_all))
    gen_feeds = {k: v[:b] for k, v in feeds_all.items()}
    out: dict = {}
    for base, feeds in ((GENERATOR_MODEL, gen_feeds), (ENCODER_MODEL, {IMAGE: images_all[:b]})):
        sessions = {p: raw_session(prep.model_path(base, p)) for p in prep.precisions}
        cases = {p: (lambda s=s: s.run(None, feeds)) for p, s in sessions.items()}
        timed = interleaved(cases, b, budget, rounds, min_calls=1)
        fp32 = timed["fp32"].images_per_s
        for p, t in timed.items():
            row = out.setdefault(p, {"model_names": [], "quality": {}})
            row["model_names"].append(model_name(base, p))
            kind = "generator" if base == GENERATOR_MODEL else "encoder"
            row[kind] = dict(t.summary(), over_fp32=t.images_per_s / fp32)
    for p in prep.precisions:
        if p != "fp32":
            out[p]["quality"] = variant_quality(prep.model_path(GENERATOR_MODEL, p))
    return out


def gpu(g, enc, feeds_all, images_all, batches, budget, rounds, log) -> dict:
    """PyTorch eager on the first CUDA device, and onnxruntime's CUDA provider where it is installed."""
    import copy

    dev = "cuda"
    out = {"device": torch.cuda.get_device_name(0), "matmul_gflops_fp32": torch_matmul_gflops(1.0, 4096, dev),
           "generator": {}, "encoder": {}}
    g_gpu, e_gpu = copy.deepcopy(g).to(dev), copy.deepcopy(enc).to(dev)
    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    for batch in batches:
        log(f"GPU at batch {batch}")
        feeds = {k: v[:batch] for k, v in feeds_all.items()}
        tz = [torch.from_numpy(feeds[k]).to(dev) for k in (NOISE, CATEGORICAL, CONTINUOUS)]
        timg = torch.from_numpy(images_all[:batch]).to(dev)

        def on_gpu(module, *xs):
            def call():
                with torch.inference_mode():
                    y = module(*xs)
                torch.cuda.synchronize()
                return y
            return call

        gen_cases = {"torch_cuda": on_gpu(g_gpu, *tz)}
        enc_cases = {"torch_cuda": on_gpu(e_gpu, timg)}
        for model, cases in (("generator", gen_cases), ("encoder", enc_cases)):
            timed = interleaved(cases, batch, budget, rounds, min_calls=1)
            out[model][str(batch)] = {k: t.summary() for k, t in timed.items()}
    out["onnxruntime_cuda"] = ort_cuda  # the api/raw rows above ran on it when true
    return out
