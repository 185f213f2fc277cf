"""Training keeps freed host memory for the next update (training/memory.py): a large
buffer freed stays in the process instead of going back to the system, so the next
update does not fault its pages in again. Each case runs in its own interpreter, as
glibc's thresholds are process-wide and, once raised, stay raised."""

import json
import subprocess
import sys

import pytest

from infogan.training.memory import is_glibc

pytestmark = pytest.mark.skipif(not is_glibc(), reason="mallopt's thresholds are glibc's")

# a 64 MiB tensor written and freed; then what glibc's heap holds free, and what is mapped on its own
PROBE = """
import ctypes, json, sys
import torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

def setup():
{setup}

setup()
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
x = torch.ones(16 << 20)  # 64 MiB of float32, every page touched
mapped_while_held = libc.mallinfo2().hblkhd
del x
info = libc.mallinfo2()
print(json.dumps({{"free_in_heap": info.fordblks, "mapped_while_held": mapped_while_held}}))
"""

MIB64 = 64 << 20


def probe(setup: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_glibc_returns_a_large_freed_buffer_by_default():
    """The behaviour the module changes: without it, 64 MiB is mapped on its own and unmapped when freed."""
    got = probe("    pass")
    assert got["mapped_while_held"] >= MIB64
    assert got["free_in_heap"] < MIB64


def test_keep_freed_memory_keeps_a_large_freed_buffer_in_the_heap():
    got = probe("    from infogan.training.memory import keep_freed_memory\n    assert keep_freed_memory()")
    assert got["mapped_while_held"] < MIB64
    assert got["free_in_heap"] >= MIB64


def test_a_cpu_training_run_keeps_freed_memory(tmp_path, data_dir):
    """Through train(), as `infogan train` calls it: a smoke run on the CPU leaves the thresholds raised."""
    setup = ("    from infogan.training.config import resolve\n"
             "    from infogan.training.train import train\n"
             f"    train(resolve('smoke', data_dir={str(data_dir)!r}, out_dir={str(tmp_path)!r}), progress=False)")
    got = probe(setup)
    assert got["mapped_while_held"] < MIB64
    assert got["free_in_heap"] >= MIB64
