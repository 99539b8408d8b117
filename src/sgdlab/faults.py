"""Fault injection, for the reliability tests: with SGDLAB_FAULT="POINT@N" set, the process
kills itself (SIGKILL, as a crash or an OOM kill would) the N-th time it passes a point whose
name starts with POINT. Points: "step" (after each update, before its metrics row is kept),
"write:<file name>" (a file's temp copy is on disk, not yet renamed into place). Unset, a point
costs one comparison."""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("SGDLAB_FAULT", "")
_PREFIX, _, _COUNT = _SPEC.rpartition("@")
_seen = 0


def point(name: str) -> None:
    global _seen
    if not _SPEC or not name.startswith(_PREFIX):
        return
    _seen += 1
    if str(_seen) == _COUNT:
        os.kill(os.getpid(), signal.SIGKILL)
