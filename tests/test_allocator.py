"""sgdlab.allocator: freed memory kept in the process (glibc), so that a tensor allocated and
freed again and again is not page-faulted in afresh each time; opt-out by environment."""

import json
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# An 8 MiB block freed sets glibc's dynamic thresholds (mmap 8 MiB, trim 16 MiB); then rounds of
# eight 6 MiB tensors filled and freed, as a step's activations are: by default the heap's top
# is handed back when they are freed and page-faulted in again the next round; kept, it is not.
CHILD = """
import json, resource, torch
from sgdlab.allocator import keep_freed_memory
applied = keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.empty(2 << 20).fill_(1)
rounds = []
for _ in range(8):
    before = faults()
    tensors = [torch.empty(1_500_000).fill_(1) for _ in range(8)]
    del tensors
    rounds.append(faults() - before)
print(json.dumps({"applied": applied, "faults": rounds}))
"""
PAGES = 8 * 1_500_000 * 4 // 4096  # one round's pages


def child(keep: str) -> dict:
    env = {**os.environ, "SGDLAB_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting applies to glibc only")
def test_kept_memory_is_not_page_faulted_again():
    default, kept = child("0"), child("1")
    assert kept["applied"] and not default["applied"]
    if sum(default["faults"][-3:]) < PAGES:
        pytest.skip(f"this glibc keeps the rounds' memory by itself: {default['faults']}")
    assert sum(kept["faults"][-3:]) < PAGES // 10, kept["faults"]


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
