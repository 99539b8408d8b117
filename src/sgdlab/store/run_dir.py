"""The run directory:

  config.toml        the resolved config (enough to rebuild every part)
  summary.json       status, final metrics, counts, timings, versions, seed
  metrics.parquet    one row per recorded step
  checkpoints/       init.pt (θ_0), final.pt, state-<step>.pt (resumable: model, optimizer,
                     sampler, RNG and probe states), each with a .sha256 checked on load
  checkpoints/iterates/theta-<step>.pt   flat θ_k vectors, when `checkpoint.iterates` asks
  replay/            pass 2 of a run whose probes need θ* (itself a run directory)
  figures/           written by reports, never by the engine
  .lock              held (flock) by the process training the run

Formats: config.toml is TOML; summary.json is JSON (NaN and Infinity allowed); metrics.parquet
has columns `step` (int64), `epoch` (float64) and one float64 column per metric, null where
the metric was not measured (see `store.metrics`). Checkpoints are `torch.save` files of
tensors and plain Python values only: they load with `torch.load(weights_only=True)`, never
unpickling code, and a checkpoint that does not match its .sha256 is refused. `init.pt` and
`final.pt` are the model's state_dict; `state-*.pt` is `engine.state.capture`'s dict. Every
file is written atomically (`store.files`): a crash leaves the old version or the new one.

A run directory is created whole or not at all, and one process at a time holds its lock.
The lock is an advisory `flock` on `.lock`, released when the holder exits however it exits
(SIGKILL too), so a run whose summary says "running" but whose lock is free was killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import UserError
from .files import (
    CorruptCheckpoint,
    load_tensors,
    remove_checkpoint,
    save_tensors,
    write_json,
    write_parquet,
    write_text,
)

STATE_RE = re.compile(r"^state-(\d+)\.pt$")


class RunDir:
    """A run directory on disk (module docstring: the layout): paths, lock, files, checkpoints.

    Constructing one touches nothing; `create` makes a new directory, `open` checks that an
    existing one is a run.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fh: Any = None

    config_path = property(lambda self: self.path / "config.toml")
    summary_path = property(lambda self: self.path / "summary.json")
    metrics_path = property(lambda self: self.path / "metrics.parquet")
    checkpoints = property(lambda self: self.path / "checkpoints")
    figures = property(lambda self: self.path / "figures")

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether `path` is a run directory, i.e. holds a config.toml."""
        return (Path(path) / "config.toml").is_file()

    @classmethod
    def create(cls, path: str | Path, config_text: str, *, overwrite: bool = False) -> "RunDir":
        """Make a new run directory holding `config_text`, atomically. Refuses to replace a
        different run (or anything that is not a run) unless `overwrite` and it is a run."""
        path = Path(path)
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{path}: exists and is not a directory")
            if any(path.iterdir()):
                if not cls.is_run(path):
                    raise UserError(
                        f"{path}: exists, is not empty and is not an sgdlab run; choose another --out"
                    )
                if not overwrite:
                    same = (path / "config.toml").read_text(encoding="utf-8") == config_text
                    status = cls(path).read_summary().get("status", "unknown")
                    if same:
                        raise UserError(
                            f"{path}: already holds this run (status {status}); "
                            f"continue it with `sgdlab resume {path}` or pass --overwrite"
                        )
                    raise UserError(
                        f"{path}: holds a different run (status {status}); "
                        "choose another --out or pass --overwrite to replace it"
                    )
                cls(path).lock()  # refuse to delete a run another process is writing
                shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            (tmp / "checkpoints").mkdir(parents=True)
            write_text(tmp / "config.toml", config_text)
            os.replace(tmp, path)  # also replaces an empty directory
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory; a UserError if `path` is not one."""
        if not cls.is_run(path):
            raise UserError(f"{path}: not an sgdlab run directory (no config.toml)")
        return cls(path)

    def lock(self) -> None:
        """Hold the run's lock until this process exits (SIGKILL releases it too)."""
        fh = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UserError(f"{self.path}: another process is running this run") from None
        self._lock_fh = fh

    def unlock(self) -> None:
        """Release the lock if this object holds it."""
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def is_locked(self) -> bool:
        """Whether some process holds the run's lock, i.e. is training it right now."""
        try:
            self.lock()
        except UserError:
            return True
        self.unlock()
        return False

    # --- summary and metrics -----------------------------------------------------------
    def read_summary(self) -> dict[str, Any]:
        """summary.json as a dict ({} before the first flush)."""
        if not self.summary_path.is_file():
            return {}
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Atomically replace summary.json."""
        write_json(self.summary_path, summary)

    def read_metrics(self) -> pa.Table | None:
        """metrics.parquet as an Arrow table (None before the first flush)."""
        return pq.read_table(self.metrics_path) if self.metrics_path.is_file() else None

    def write_metrics(self, table: pa.Table) -> None:
        """Atomically replace metrics.parquet with `table`."""
        write_parquet(self.metrics_path, table)

    # --- checkpoints -------------------------------------------------------------------
    def save(self, name: str, obj: Any) -> Path:
        """Write `obj` (tensors and plain values) to `checkpoints/NAME` with its checksum."""
        path = self.checkpoints / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(path, obj)
        return path

    def load(self, name: str, map_location: Any = "cpu") -> Any:
        """Load `checkpoints/NAME` with weights_only=True, after checking its checksum.

        Raises:
            UserError: there is no such checkpoint.
            CorruptCheckpoint: it does not match its checksum or cannot be read.
        """
        path = self.checkpoints / name
        if not path.is_file():
            raise UserError(f"{path}: no such checkpoint")
        return load_tensors(path, map_location)

    def states(self) -> list[tuple[int, Path]]:
        """Periodic resumable states, oldest first."""
        found = []
        if self.checkpoints.is_dir():
            for p in self.checkpoints.iterdir():
                m = STATE_RE.match(p.name)
                if m:
                    found.append((int(m.group(1)), p))
        return sorted(found)

    def iterates(self) -> list[tuple[int, Path]]:
        """Saved iterates θ_k (checkpoint.iterates), in step order."""
        folder = self.checkpoints / "iterates"
        found = [(int(p.stem.split("-")[1]), p) for p in folder.glob("theta-*.pt")] if folder.is_dir() else []
        return sorted(found)

    def latest_state(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The newest resumable state that loads and matches its checksum, and the names of
        newer ones skipped because they did not (a run resumes from the last good one)."""
        skipped: list[str] = []
        for _, p in reversed(self.states()):
            try:
                return self.load(p.name), skipped
            except CorruptCheckpoint:
                skipped.append(p.name)
        return None, skipped

    def remove_temporaries(self) -> None:
        """Delete the temp files a killed writer left (`.NAME.tmp-PID`, never renamed into place)."""
        for folder in (self.path, self.checkpoints, self.checkpoints / "iterates"):
            if folder.is_dir():
                for p in folder.glob(".*.tmp-*"):
                    p.unlink(missing_ok=True)

    def prune_states(self, keep: int) -> None:
        """Delete all but the newest `keep` resumable states."""
        for _, p in self.states()[:-keep]:
            remove_checkpoint(p)
