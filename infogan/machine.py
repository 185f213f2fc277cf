"""Facts about the CPU this process runs on, read one way for everyone (no torch):
training picks its precision and threads from them, benchmarks and sweeps record them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# the CPU features a result depends on (vector widths, native bf16 and int8), as reports list them
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_count() -> int:
    """The cores this process may use, not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` of /proc/cpuinfo, or None where there is none (not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flag_set() -> frozenset[str]:
    """Every feature flag the CPU reports (empty where /proc/cpuinfo cannot say)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def cpu_flags() -> list[str]:
    """The reported flags this CPU has, sorted."""
    flags = cpu_flag_set()
    return sorted(f for f in REPORTED_FLAGS if f in flags)


def has_native_bf16() -> bool:
    """The CPU computes bf16 in hardware (AMX or AVX512-BF16), so bf16 autocast is faster, not emulated."""
    return not cpu_flag_set().isdisjoint(NATIVE_BF16_FLAGS)


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load: above the core count means others shared the CPU."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
