"""Provenance: which code and machine produced a result. Every run summary, reproduction
record, sweep spec and tour record carries `versions()` (and most `environment()`), so a
number can be traced to the code that made it."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from ..version import __version__


def versions() -> dict[str, str]:
    """Python, torch, numpy and sgdlab versions, and sgdlab's git commit when it runs from a
    checkout: recorded in every summary so a result can be traced to the code that made it."""
    import numpy as np
    import torch

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sgdlab": __version__,
    }
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode == 0:
            out["sgdlab_git"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def environment() -> dict[str, object]:
    """Where something ran: platform, CPU model and count, torch threads, CUDA devices."""
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    cuda = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": cuda,
    }


def now() -> str:
    """The current UTC time as ISO 8601 to the second: every record's timestamps."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
