"""onnxruntime sessions, opened the one way every part of the project opens them (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort


def cpu_count() -> int:
    """The cores this process may use, not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Every graph optimisation; `threads` intra-op threads (default: every usable core);
    one graph branch at a time: these networks are a chain, so inter-op threads only contend."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or cpu_count()
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    return opts


def providers(gpu: bool = True) -> list[str]:
    """CUDA first where this onnxruntime has it (and gpu is asked for), then the CPU."""
    available = ort.get_available_providers()
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if gpu else ("CPUExecutionProvider",)
    return [p for p in wanted if p in available]


def open_session(model: str | Path | bytes, threads: int | None = None, gpu: bool = True,
                 options: ort.SessionOptions | None = None) -> ort.InferenceSession:
    """A session on an ONNX file or serialized model."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options or session_options(threads), providers=providers(gpu))
