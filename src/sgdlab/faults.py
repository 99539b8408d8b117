"""Fault injection, for the reliability tests: with SGDLAB_FAULT="POINT@N" set, the process
kills itself (SIGKILL, as a crash or an OOM kill would) the N-th time it passes a point whose
name starts with POINT. Points: "step" (after each update, before its metrics row is kept),
"write:<file name>" (a file's temp copy is on disk, not yet renamed into place). Unset, a point
costs one comparison.

SGDLAB_FAULT is inherited by the worker processes of a pool, which count their own points.
SGDLAB_FAULT_WORKER="POINT@N" fires only in a process started by `multiprocessing` (a sweep's or
a reproduction's worker), never in the process that started the pool: a worker killed while
the others go on."""

from __future__ import annotations

import multiprocessing
import os
import signal


class _Fault:
    """One "POINT@N" spec and how many matching points this process has passed."""

    def __init__(self, spec: str, workers_only: bool = False):
        self.spec, self.workers_only = spec, workers_only
        self.prefix, _, self.count = spec.rpartition("@")
        self.seen = 0

    def passed(self, name: str) -> None:
        if not name.startswith(self.prefix):
            return
        # Asked at the point, not at import: a spawned worker imports sgdlab before it knows
        # it is a worker, and a forked one has the parent's modules.
        if self.workers_only and multiprocessing.parent_process() is None:
            return
        self.seen += 1
        if str(self.seen) == self.count:
            os.kill(os.getpid(), signal.SIGKILL)


def _from_environment() -> list[_Fault]:
    specs = (
        _Fault(os.environ.get("SGDLAB_FAULT", "")),
        _Fault(os.environ.get("SGDLAB_FAULT_WORKER", ""), workers_only=True),
    )
    return [fault for fault in specs if fault.spec]


_FAULTS = _from_environment()


def _reset_in_child() -> None:
    """A forked worker has its parent's modules: it reads the environment afresh and counts
    its own points (a spawned one does so by importing this module)."""
    global _FAULTS
    _FAULTS = _from_environment()


os.register_at_fork(after_in_child=_reset_in_child)


def point(name: str) -> None:
    """Pass the fault point `name`: SIGKILL this process if an armed fault counts it to its N."""
    if not _FAULTS:
        return
    for fault in _FAULTS:
        fault.passed(name)
