"""What every command shares: one-line errors with exit code 2, warnings, the `--set` option
and the progress display."""

from __future__ import annotations

import functools
import sys
import time
from typing import TYPE_CHECKING, Callable, NoReturn

import typer

from ..errors import UserError, clip

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

SetOption = typer.Option(
    None, "--set", help="override a config key, e.g. --set train.epochs=5", metavar="KEY=VALUE"
)


def fail(message: str) -> NoReturn:
    """Print `error: MESSAGE` on stderr, as one line of at most about 1,000 characters, and
    exit with code 2 (bad input)."""
    typer.echo(f"error: {clip(message)}", err=True)
    raise typer.Exit(2)


def warn(message: str) -> None:
    """Print `warning: MESSAGE` on stderr, as one line."""
    typer.echo(f"warning: {clip(message)}", err=True)


def user_errors(fn: Callable) -> Callable:
    """Turn UserError, and an OSError about a file (permission denied, a read-only or full
    disk), into the one-line, exit-code-2 form."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"{exc.filename}: {exc.strerror or exc}")

    return wrapper


def logger(quiet: bool, prefix: str = "") -> Callable[[str], None]:
    """Progress messages on stderr (each after `prefix`), or nothing when `quiet`."""
    if quiet:
        return lambda message: None
    return lambda message: typer.echo(f"{prefix}{message}", err=True)


class ProgressReporter:
    """A rich progress bar on a terminal; plain lines every few seconds otherwise. With a
    `total`, the bar shows steps done of the total and an ETA."""

    def __init__(self, total: int | None, quiet: bool, label: str):
        self.total, self.quiet, self.label = total, quiet, label
        self.rich = not quiet and sys.stderr.isatty()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = 0.0
        self._t0 = time.monotonic()
        self._first: int | None = None  # the step of the first report (a resumed run starts late)

    def __enter__(self) -> "ProgressReporter":
        if self.rich:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                transient=False,
            )
            bar.start()
            self._task = bar.add_task(self.label, total=self.total, loss="-")
            self._bar = bar
        return self

    def __call__(self, step: int, loss: float) -> None:
        """Report `step` steps done and the last minibatch loss (the engine's Progress callback)."""
        if self.quiet:
            return
        if self._first is None:
            self._first = step
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4g}")
            return
        now = time.monotonic()
        if now - self._last_line < 5.0 and not (self.total and step >= self.total):
            return
        self._last_line = now
        elapsed = now - self._t0
        if self.total:
            eta = elapsed / max(step - self._first, 1) * (self.total - step)
            typer.echo(
                f"{self.label}: step {step}/{self.total} ({100 * step / self.total:.0f}%) "
                f"loss {loss:.4g} eta {eta:.0f}s",
                err=True,
            )
        else:
            typer.echo(f"{self.label}: step {step} loss {loss:.4g}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
