"""The `sgdlab` command. Bad input ends with one line on stderr and exit code 2.

One module per group of commands: `runs` (run, resume, show, report, export), `reproductions`
(reproduce, demo, tune-init), `listing` (list), `sweeping` (sweep). Importing this package
imports no torch: each command imports what it needs when it runs, so `sgdlab --help` and
`sgdlab list` answer at once.
"""

from __future__ import annotations

from . import listing, reproductions, runs, sweeping  # noqa: F401  (registers the commands)
from .app import app
from .common import ProgressReporter, fail, user_errors, warn
from .printing import print_claims, print_plan, print_summary

# The order `sgdlab --help` lists the commands in: one run, reproductions, many runs, the zoo.
ORDER = ("run", "resume", "show", "report", "export", "reproduce", "demo", "tune-init", "sweep", "list")
app.registered_commands.sort(key=lambda c: ORDER.index(c.name or getattr(c.callback, "__name__", "")))

__all__ = [
    "ProgressReporter",
    "app",
    "fail",
    "main",
    "print_claims",
    "print_plan",
    "print_summary",
    "user_errors",
    "warn",
]


def main() -> None:
    """The `sgdlab` console script."""
    app()
