"""The host allocator for training: keep freed memory in the process for the next update.

Each CPU update frees and allocates again the same large buffers: the fp32 gradient of the
trunk's 6,272 x 1,024 weight (25 MB, 38 MB with a trunk of 96 channels) and of G's, the
casts autocast makes of them, the batches' activations. With glibc's defaults a freed block
above the mmap threshold goes back to the system, and so does the heap's free top beyond the
trim threshold (glibc raises the two as it sees large blocks freed: the mmap threshold to at
most 32 MiB, the trim threshold to twice it), so each update faults in again (and the kernel
zeroes) pages the last one gave back. Raising both thresholds keeps the freed pages for reuse.
The numbers computed are the same; only where the bytes come from changes. The cost: the
process keeps its peak footprint until it ends. BENCHMARKS.md has the step's rate with and
without.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# a block above this is still mapped on its own (a buffer that large is not a training step's)
KEEP_BELOW_BYTES = 1 << 30


def is_glibc() -> bool:
    """Whether this process's C library is glibc, the only one with mallopt's parameters."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _glibc():
    """The C library when it is glibc, else None."""
    if not is_glibc():
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds for this process; True where that was done,
    False where the C library is not glibc (macOS, musl, Windows), which then keeps its own ways."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES) and libc.mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES))
