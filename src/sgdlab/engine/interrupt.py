"""Ctrl-C / SIGTERM ask the loop to stop at the next step boundary (where a resumable state
can be saved); a second Ctrl-C interrupts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable

# What signal.signal accepts and returns: a handler, SIG_DFL/SIG_IGN, or None (not set from Python).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopRequest:
    """A context manager that turns the first SIGINT/SIGTERM into a flag instead of an exception.

    Inside `with StopRequest() as stop:` the first signal sets `stop.requested`; the training
    loop checks it at each step boundary, saves a resumable state there (when the run has a
    directory) and returns an "interrupted" outcome. A second signal raises KeyboardInterrupt
    at once. On exit the previous handlers are put back. Handlers can only be installed from
    the main thread; elsewhere (a thread pool, a test runner's worker thread) the context does
    nothing and signals keep their usual effect.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, _Handler] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
