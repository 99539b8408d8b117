"""`sgdlab export RUN --tensorboard DIR`: a run's metrics as TensorBoard scalars, so runs can be
looked at with the tool people already use (`tensorboard --logdir DIR`).

Every metric column becomes one scalar tag (its sgdlab name) at each step where it was
measured; the resolved config is attached as text. Wall times are spread over the run's
recorded duration (the store keeps steps, not clock times). Given a sweep or reproduction
directory instead of a run, every run inside it is exported, each to DIR/<its relative path>.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError
from .store import Run, RunDir, load_run

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def runs_under(path: Path) -> list[Path]:
    """`path` itself when it is a run, else every run below it (not a run's replay pass)."""
    if RunDir.is_run(path):
        return [path]
    return [cfg.parent for cfg in sorted(path.rglob("config.toml")) if not _inside_run(cfg.parent, path)]


def _inside_run(run: Path, root: Path) -> bool:
    p = run.parent
    while p != root and root in p.parents:
        if RunDir.is_run(p):
            return True
        p = p.parent
    return False


def summary_writer() -> type[SummaryWriter]:
    """TensorBoard's SummaryWriter class; a UserError naming the extra to install if missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            "--tensorboard: TensorBoard is not installed; pip install 'sgdlab[tensorboard]'"
        ) from None
    return SummaryWriter


def check_output(out: Path) -> Path:
    """The nearest folder of `out` that exists (itself or an ancestor), checked to be a
    writable directory: a UserError otherwise, before anything is written."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link
            raise UserError(f"{existing}: a broken symbolic link; choose another --tensorboard")
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing}: exists and is not a directory; choose another --tensorboard")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{existing}: not writable; choose another --tensorboard")
    return existing


def export_tensorboard(source: str | Path, out: str | Path) -> list[Path]:
    """Write the runs at `source` as TensorBoard event files under `out`; returns the log dirs.

    Everything is checked first (the source's runs are read, the output is a writable
    directory or can be made one); an export that fails on the way removes the folders it
    made, so nothing is left half-written."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise UserError(f"{source}: no such directory")
    runs = runs_under(source)
    if not runs:
        raise UserError(f"{source}: not a run directory and holds no runs")
    writer_cls = summary_writer()
    loaded = [(run_path, load_run(run_path)) for run_path in runs]
    check_output(out)
    made: list[Path] = []  # the topmost folder each log dir created, removed if the export fails
    try:
        written = []
        for run_path, run in loaded:
            name = source.name if run_path == source else run_path.relative_to(source).as_posix()
            logdir = out / name
            new = _first_missing(logdir)
            if new is not None:
                made.append(new)
            _clear_events(logdir)
            _write_events(writer_cls, logdir, run)
            written.append(logdir)
        return written
    except BaseException:
        for folder in reversed(made):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _first_missing(path: Path) -> Path | None:
    """The topmost folder on the way to `path` that does not exist yet (None: it all does)."""
    missing = None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing


def _write_events(writer_cls: type[SummaryWriter], logdir: Path, run: Run) -> None:
    """A run's config (as text) and every metric (as scalars) as event files in `logdir`."""
    start, seconds = _clock(run.summary)
    steps = max(int(run.summary.get("steps") or 0), 1)
    writer = writer_cls(log_dir=str(logdir))
    try:
        writer.add_text(
            "config",
            "```toml\n" + run.path.joinpath("config.toml").read_text(encoding="utf-8") + "\n```",
            0,
            walltime=start,
        )
        for metric in run.metrics.column_names[2:]:
            for step, value in zip(*run.series(metric), strict=True):
                writer.add_scalar(
                    metric,
                    float(value),
                    int(step),
                    walltime=start + seconds * min(int(step) / steps, 1.0),
                )
    finally:
        writer.close()


def _clear_events(logdir: Path) -> None:
    """A re-export replaces the earlier one (TensorBoard would otherwise show both)."""
    if logdir.is_dir():
        for f in logdir.glob("events.out.tfevents.*"):
            f.unlink()
    elif logdir.exists():
        raise UserError(f"{logdir}: exists and is not a directory")
    else:
        logdir.mkdir(parents=True)


def _clock(summary: dict) -> tuple[float, float]:
    """(start time, duration) of the run in seconds since the epoch, as well as recorded."""
    try:
        start = dt.datetime.fromisoformat(summary["started_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        start = time.time()
    return start, float(summary.get("wall_time_s") or 0.0)
