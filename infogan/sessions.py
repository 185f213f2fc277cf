"""onnxruntime sessions, opened the one way every part of the project opens them (no torch)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import onnxruntime as ort

from infogan import defaults
from infogan.contract import InfoganError
from infogan.machine import cpu_count

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = "auto, cpu, cuda or cuda:N"


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Every graph optimisation; `threads` intra-op threads (default: every usable core);
    one graph branch at a time: these networks are a chain, so inter-op threads only contend."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or cpu_count()
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    return opts


def has_cuda() -> bool:
    """This onnxruntime has the CUDA provider (onnxruntime-gpu: pip install 'infogan[gpu]')."""
    return CUDA in ort.get_available_providers()


def parse_device(device: str) -> tuple[str, int]:
    """'auto', 'cpu', 'cuda' or 'cuda:N' -> (kind, N); one line on anything else."""
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind in ("auto", "cpu") and not index:
        return kind, 0
    if kind == "cuda" and (not index or (index.isdecimal() and len(index) <= 3)):
        return kind, int(index or 0)
    raise InfoganError(f"device={device!r} is invalid: choose {DEVICES}")


def resolve_device(device: str = defaults.DEVICE) -> tuple[str, int]:
    """The device a session runs on: 'auto' takes CUDA where this onnxruntime has it."""
    kind, index = parse_device(device)
    if kind == "auto":
        kind = "cuda" if has_cuda() else "cpu"
    elif kind == "cuda" and not has_cuda():
        raise InfoganError(f"device={device!r} is invalid here: this onnxruntime has no CUDA provider "
                           f"(it has {', '.join(ort.get_available_providers())}); "
                           "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'onnxruntime-gpu>=1.31.1' "
                           "(the infogan[gpu] extra)")
    return kind, index


@lru_cache(maxsize=1)
def _load_cuda_libraries() -> None:
    """onnxruntime-gpu links CUDA 13's libcudart, libcublas and libcurand (and cuDNN), which the
    nvidia-* wheels and PyTorch's CUDA wheels bring but no loader path names: preload_dlls
    (onnxruntime >= 1.21) finds and loads them once, before the first CUDA session."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # nothing to preload where the system's CUDA is on the loader path
            pass


# fp32 on CUDA means fp32: onnxruntime's CUDA provider otherwise lets cuDNN and cuBLAS round
# float32 products to TF32 (10-bit mantissa), which put the published generator 1.1e-3 from the
# CPU provider on an H200 (BENCHMARKS.md, the GPU check), outside the 1e-3 parity promise; the
# fp16 models are the fast variant.
CUDA_OPTIONS = {"use_tf32": "0"}


def providers(gpu: bool = True, device_id: int = 0, cuda_options: dict | None = None) -> list:
    """CUDA (on GPU device_id, with CUDA_OPTIONS and then cuda_options) first where this onnxruntime
    has it and gpu is asked for, then the CPU."""
    if gpu and has_cuda():
        _load_cuda_libraries()
        return [(CUDA, {"device_id": device_id, **CUDA_OPTIONS, **(cuda_options or {})}), CPU]
    return [CPU]


def runtime_description() -> str:
    """Which onnxruntime this process imported, from where, with which providers: the line that
    tells a machine's CPU-only onnxruntime from onnxruntime-gpu (Triton's stub imports its own)."""
    return (f"onnxruntime {ort.__version__} at {Path(ort.__file__).parent} "
            f"(providers {', '.join(ort.get_available_providers())})")


def check_on_cuda(session: ort.InferenceSession, what: str) -> None:
    """Refuse a session that asked for CUDA and silently got the CPU: onnxruntime falls back to
    its CPU provider when the CUDA provider cannot start (a missing CUDA 13 library, no driver),
    and a GPU session running on the CPU is some 60x slower with nothing said."""
    got = session.get_providers()
    if not got or got[0] != CUDA:
        raise InfoganError(f"{what} asked for the CUDA provider but runs on {got[0] if got else 'nothing'}: "
                           f"{runtime_description()} could not start CUDA; check the driver and the CUDA 13 "
                           "libraries (onnxruntime.preload_dlls() loads those of the nvidia-* or torch wheels)")


def open_session(model: str | Path | bytes, threads: int | None = None, gpu: bool = True,
                 options: ort.SessionOptions | None = None, device_id: int = 0) -> ort.InferenceSession:
    """A session on an ONNX file or serialized model."""
    source = model if isinstance(model, bytes) else str(model)
    wanted = providers(gpu, device_id)
    session = ort.InferenceSession(source, options or session_options(threads), providers=wanted)
    if wanted[0] != CPU:
        check_on_cuda(session, f"the session on {'a serialized model' if isinstance(model, bytes) else model}")
    return session
