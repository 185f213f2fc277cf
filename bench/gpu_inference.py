"""In-process generation on the GPU, four ways side by side at each batch size:

  api          infogan.client.Generator.from_repository(repo).generate(n): what a user
               calls (latent sampling included, images back in host memory)
  api_run      the same API's run() on latents drawn beforehand: host arrays in, images
               back in host memory, no sampling (api - api_run is the sampling's cost,
               api_run - raw the host copies' and Python's)
  raw          the onnxruntime session the API holds, called with IO binding: inputs
               copied to the device once, outputs left there (the engine's own ceiling)
  torch_graph  the checkpoint's generator in bf16, replayed from a CUDA graph (static
               input buffers): PyTorch at its fastest on this GPU
  torch_eager  the same generator in fp32, eager

Every call ends synchronised (the API returns host arrays; onnxruntime's Run waits
for its stream; the torch cases call torch.cuda.synchronize), so wall time per call
is the work done. With gpu=False the same cases run on the CPU, except the CUDA
graph, which is skipped with a note.
"""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import torch

from infogan.bench.generation import latent_feeds
from infogan.bench.timing import Timing, interleaved, ratio
from infogan.client import Generator
from infogan.client.onnx_backend import newest_version
from infogan.contract import CATEGORICAL, CONTINUOUS, GENERATOR_MODEL, NOISE
from infogan.sessions import open_session
from infogan.training.checkpoint import build_models, load_checkpoint

NO_CUDA_GRAPH = "skipped: CUDA graphs need a CUDA GPU"
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def session_device(session: ort.InferenceSession) -> str:
    """Where the session computes: 'cuda' when the CUDA provider comes first."""
    return "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"


class BoundRun:
    """One session call with IO binding: the inputs live on the session's device, and the
    output is bound there too, so a call moves no data between host and device."""

    def __init__(self, session: ort.InferenceSession, feeds: dict[str, np.ndarray]):
        device = session_device(session)
        self.session, self.binding = session, session.io_binding()
        self.inputs = {}  # the OrtValues must outlive the binding
        for spec in session.get_inputs():
            array = np.ascontiguousarray(feeds[spec.name].astype(_NUMPY_TYPES.get(spec.type, np.float32), copy=False))
            self.inputs[spec.name] = ort.OrtValue.ortvalue_from_numpy(array, device, 0)
            self.binding.bind_ortvalue_input(spec.name, self.inputs[spec.name])
        for spec in session.get_outputs():
            self.binding.bind_output(spec.name, device, 0)
        self.binding.synchronize_inputs()

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)


def raw_session(api: Generator, repository, gpu: bool) -> ort.InferenceSession:
    """The session the API wraps, where its backend exposes one; else one on the newest fp32 model."""
    session = getattr(api.backend, "session", None)
    return session if isinstance(session, ort.InferenceSession) else open_session(
        newest_version(repository, GENERATOR_MODEL), gpu=gpu)


def torch_inputs(feeds: dict[str, np.ndarray], device: str, dtype=torch.float32) -> list[torch.Tensor]:
    return [torch.from_numpy(feeds[k]).to(device=device, dtype=dtype) for k in (NOISE, CATEGORICAL, CONTINUOUS)]


def eager_call(g: torch.nn.Module, xs: list[torch.Tensor]):
    sync = torch.cuda.synchronize if xs[0].is_cuda else (lambda: None)

    def call():
        with torch.inference_mode():
            g(*xs)
        sync()
    return call


def cuda_graph_call(g: torch.nn.Module, xs: list[torch.Tensor]):
    """The generator captured once in a CUDA graph over static inputs `xs`; a call replays it.
    Warm-up runs on a side stream first, as capture requires (cuDNN picks its kernels there)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(3):
            g(*xs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        out = g(*xs)

    def call():
        graph.replay()
        torch.cuda.synchronize()
    call.keep = (graph, xs, out)  # the graph replays into these buffers: they must stay alive
    return call


def generation(repository, checkpoint, gpu: bool, batches: tuple[int, ...], budget_s: float, rounds: int = 3,
               log=lambda _: None) -> dict:
    """Per batch: each case's images/s, p50 and p99 (Timing.summary), and the API's ratios."""
    api = Generator.from_repository(repository)
    raw = raw_session(api, repository, gpu)
    device = "cuda" if gpu else "cpu"
    g, _ = build_models(load_checkpoint(checkpoint))
    g32 = g.eval().to(device)
    g16 = copy.deepcopy(g32).to(torch.bfloat16) if gpu else None
    feeds_all = latent_feeds(api.template, max(batches))
    out = {"api_providers": raw.get_providers(), "raw_device": session_device(raw),
           "torch_graph_note": None if gpu else NO_CUDA_GRAPH, "batches": {}}
    try:
        for b in batches:
            log(f"in-process generation at batch {b:,}")
            feeds = {k: v[:b] for k, v in feeds_all.items()}
            cases = {"api": lambda b=b: api.generate(b),
                     "api_run": lambda feeds=feeds: api.run(feeds[NOISE], feeds[CATEGORICAL], feeds[CONTINUOUS]),
                     "raw": BoundRun(raw, feeds),
                     "torch_eager": eager_call(g32, torch_inputs(feeds, device))}
            if gpu:
                cases["torch_graph"] = cuda_graph_call(g16, torch_inputs(feeds, device, torch.bfloat16))
            timed: dict[str, Timing] = interleaved(cases, b, budget_s, rounds, min_calls=1)
            row = {name: t.summary() for name, t in timed.items()}
            rate = {name: t.images_per_s for name, t in timed.items()}
            row["api_over_raw"] = ratio(rate["api"], rate["raw"])
            row["api_over_torch_graph"] = ratio(rate["api"], rate.get("torch_graph"))
            out["batches"][str(b)] = row
            del cases, timed
            if gpu:
                torch.cuda.empty_cache()  # the next batch's graph gets the memory this one held
    finally:
        api.close()
    return out


def raw_rate(repository, gpu: bool, batch: int, budget_s: float) -> dict:
    """The fp32 generator's raw IO-bound rate at one batch: Triton's in-process reference."""
    session = open_session(newest_version(repository, GENERATOR_MODEL), gpu=gpu)
    with Generator.from_repository(repository) as api:
        template = api.template
    call = BoundRun(session, latent_feeds(template, batch))
    return interleaved({"raw": call}, batch, budget_s, rounds=1, min_calls=2)["raw"].summary()
