"""sgdlab.allocator: freed memory kept in the process (glibc): blocks up to 32 MiB come from the
heap instead of fresh mappings; applied once; opt-out by environment."""

import json
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
VERSION = tuple(int(p) for p in platform.libc_ver()[1].split(".")[:2]) if GLIBC else ()

# A live 20 MiB tensor: by default glibc maps it with mmap (and unmaps it when freed, so its
# pages are faulted in afresh next time); kept, it comes from the heap, whose freed memory
# stays. mallinfo2's hblkhd counts the bytes held in mmapped blocks.
CHILD = """
import ctypes, json, torch
from sgdlab.allocator import keep_freed_memory
applied = keep_freed_memory()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
before = libc.mallinfo2().hblkhd
tensor = torch.empty(5 << 20)  # float32: 20 MiB
print(json.dumps({"applied": applied, "mapped_mib": (libc.mallinfo2().hblkhd - before) / 2**20}))
"""


def child(keep: str) -> dict:
    env = {**os.environ, "SGDLAB_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC or VERSION < (2, 33), reason="glibc ≥ 2.33 (mallinfo2) only")
def test_blocks_below_32_mib_come_from_the_heap_when_kept():
    default, kept = child("0"), child("1")
    assert kept["applied"] and not default["applied"]
    assert default["mapped_mib"] >= 20  # glibc's own policy: a fresh mapping
    assert kept["mapped_mib"] == 0


def test_applied_once_per_process(monkeypatch):
    from sgdlab import allocator

    calls = []
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator, "_apply", lambda: calls.append(1) or GLIBC)
    assert allocator.keep_freed_memory() is GLIBC
    assert allocator.keep_freed_memory() is GLIBC
    assert calls == [1]


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_opt_out_by_environment(monkeypatch, value):
    from sgdlab import allocator

    monkeypatch.setenv("SGDLAB_KEEP_FREED_MEMORY", value)
    assert allocator._apply() is False
