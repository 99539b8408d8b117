"""The C allocator's policy for freed memory: keep it in the process (glibc on Linux).

A training step allocates and frees the same tensors at every step. glibc serves a block from
fresh pages of the system (mmap, unmapped again when freed) when it is at least its mmap
threshold, a threshold it raises as mapped blocks are freed; and it hands the top of its heap
back to the system whenever more than twice the threshold is free there. Which tensors that
hits depends on the order in which earlier allocations happened: on the 3C3D CNN at batch 128
(activations of 25 MB) the same engine loop took 1,700 minor page faults a step in one process
and 25,000 (about 100 MB of pages) in another, 20 % of the step, where the hand-written loop
took none; its per-sample gradient step took 19,000–31,000, and a Hessian-vector product on
an MNIST MLP 855.

`keep_freed_memory` fixes both thresholds (mallopt): blocks up to 32 MiB (glibc's ceiling for
this setting) come from the heap, and up to 1 GiB of freed heap memory is kept for the next
allocation. The same process then took 0–400 faults a step. Larger blocks are still mapped
and returned; resident memory stays at the working set instead of shrinking between steps.
It is a process-wide setting, as the thread count is: the engine applies it when it builds a
run's parts and `sgdlab.attach` when it attaches, unless SGDLAB_KEEP_FREED_MEMORY=0. Elsewhere
than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc refuses more: HEAP_MAX_SIZE / 2 on 64-bit systems
TRIM_THRESHOLD = 1 << 30
ENV = "SGDLAB_KEEP_FREED_MEMORY"

_applied: bool | None = None  # the outcome of the first call: the setting is process-wide


def keep_freed_memory() -> bool:
    """Keep freed memory in the process for the next allocation (module docstring); once per
    process. True when glibc took both settings; False where they do not apply (another C
    library), were refused, or SGDLAB_KEEP_FREED_MEMORY=0."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(ENV, "1").strip() in ("0", "false", "no", "off"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
