"""What a result was measured on: the machine, the versions, the commit."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from infogan.machine import cpu_count, cpu_flags, cpu_model, load_average, memory_gib

__all__ = ["cpu_flags", "cpu_model", "git_commit", "gpus", "load_average", "machine", "versions"]


def gpus() -> list[dict]:
    """CUDA devices as torch sees them, with the driver from nvidia-smi where it is installed."""
    out = []
    try:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                out.append({"index": i, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)})
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            text = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=10).stdout
            for i, line in enumerate(l for l in text.splitlines() if l.strip()):
                name, driver = [s.strip() for s in line.split(",", 1)]
                if i < len(out):
                    out[i]["driver"] = driver
                else:
                    out.append({"index": i, "name": name, "driver": driver})
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return out


def machine() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "usable_cores": cpu_count(),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    out = {}
    for dist in ("infogan", "torch", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "tritonclient", "nvidia-pytriton"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit(root: Path | None = None) -> dict:
    root = root or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}
