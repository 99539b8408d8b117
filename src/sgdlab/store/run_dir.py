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
(SIGKILL too), so a run whose summary says "running" but whose lock is free was killed:
`read_summary` reports it `interrupted` and records that in summary.json.

Reading is checked: a summary or metrics file that cannot be parsed, or holds what sgdlab
never writes there, raises `DamagedFile` naming it (see `damage` for a finished run's whole
check); `sgdlab resume` trains a damaged run again from what is intact.
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

from ..config import Config, load_config
from ..errors import ConfigError, DamagedFile, UserError
from .files import (
    CorruptCheckpoint,
    check_fields,
    checksum_path,
    load_tensors,
    read_json,
    read_parquet,
    remove_checkpoint,
    save_tensors,
    write_json,
    write_parquet,
    write_text,
)
from .metrics import metrics_problem
from .summary import SUMMARY_FIELDS, RunSummary

GONE = "the process running it ended without recording why (killed?); `sgdlab resume` continues it"
STATE_RE = re.compile(r"^state-(\d+)\.pt$")
FINISHED = ("completed", "diverged")
REPLAY_DIR = "replay"  # pass 2 of a two-pass run, itself a run directory
# The names a run directory holds (module docstring); a directory of only these, with a
# checkpoints/ folder, is a run that lost its config.toml.
LAYOUT = {
    "config.toml",
    "summary.json",
    "metrics.parquet",
    "checkpoints",
    "figures",
    "replay",
    "report.html",
    ".lock",
}


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

    @staticmethod
    def is_headless_run(path: str | Path) -> bool:
        """Whether `path` is a run directory that lost its config.toml: a checkpoints/ folder
        and nothing but the names a run holds (and temp files of its writers)."""
        path = Path(path)
        try:
            names = {p.name for p in path.iterdir()}
        except OSError:
            return False
        return (
            "config.toml" not in names
            and (path / "checkpoints").is_dir()
            and all(n in LAYOUT or n.startswith(".") and ".tmp-" in n for n in names)
        )

    def todo(self) -> str:
        """What to do about a damaged file of this run (the end of a DamagedFile message)."""
        return f"`sgdlab resume {self.path}` (or the command that made it) trains it again"

    @classmethod
    def create(cls, path: str | Path, config_text: str, *, overwrite: bool = False) -> "RunDir":
        """Make a new run directory holding `config_text`, atomically. Refuses to replace a
        different run (or anything that is not a run) unless `overwrite` and it is a run."""
        path = Path(path)
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{path}: exists and is not a directory")
            if any(path.iterdir()):
                headless = cls.is_headless_run(path)
                if not cls.is_run(path) and not headless:
                    raise UserError(
                        f"{path}: exists, is not empty and is not an sgdlab run; choose another --out"
                    )
                if headless and not overwrite:
                    raise UserError(
                        f"{path}: holds an sgdlab run that lost its config.toml; "
                        "choose another --out or pass --overwrite to replace it"
                    )
                if not overwrite:
                    same = (path / "config.toml").read_bytes() == config_text.encode("utf-8")
                    status = cls(path).status_or_damage()
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
            if cls.is_headless_run(path):
                raise DamagedFile(
                    Path(path) / "config.toml",
                    "missing: the run cannot be rebuilt without its config",
                    "train it again with `sgdlab run CONFIG --out DIR --overwrite`",
                )
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
        """Whether some process holds the run's lock, i.e. is training it right now (this
        object's own lock counts). Probed with a shared lock on `.lock` opened for reading, so
        a run on a read-only disk can be asked too; a lock file that cannot be opened counts
        as held (nothing is concluded from it)."""
        if self._lock_fh is not None:
            return True
        try:
            fh = open(self.path / ".lock", "rb")
        except FileNotFoundError:
            return False
        except OSError:
            return True
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
        return False

    def read_config(self) -> Config:
        """config.toml as a Config (unresolved); a ConfigError naming the file when it cannot
        be read or holds a value this sgdlab does not accept (damaged, or from another version)."""
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            text = str(exc)
            if not text.startswith(f"{self.config_path}: "):
                text = f"{self.config_path}: {text}"
            raise ConfigError(text) from None

    # --- summary and metrics -----------------------------------------------------------
    def read_summary(self) -> dict[str, Any]:
        """summary.json as a dict ({} before the first flush); DamagedFile when it cannot be
        read or holds values of the wrong type.

        A status `running` that no process holds the lock of was left by a process that is
        gone (SIGKILL, a crash, a lost machine): it is reported as `interrupted`, and
        recorded so in summary.json when the lock can be taken.
        """
        if not self.summary_path.is_file():
            return {}
        summary = self._parse_summary()
        if summary.get("status") == "running" and not self.is_locked():
            return self._interrupted(summary)
        return summary

    def read_info(self) -> RunSummary:
        """`read_summary` as a typed record (`store.summary.RunSummary`)."""
        return RunSummary.from_dict(self.read_summary())

    def _parse_summary(self) -> dict[str, Any]:
        summary = read_json(self.summary_path, dict, self.todo())
        check_fields(summary, SUMMARY_FIELDS, self.summary_path, self.todo())
        final = summary.get("final") or {}
        numbers = (
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in final.values()
        )
        if not all(numbers):
            raise DamagedFile(self.summary_path, "'final' holds a value that is not a number", self.todo())
        return summary

    def _interrupted(self, summary: dict[str, Any]) -> dict[str, Any]:
        """`summary` (status `running`, lock free) as `interrupted`, written back under the lock
        unless a process took the run meanwhile or the directory cannot be written."""
        reason = GONE
        fixed = dict(summary, status="interrupted", error=summary.get("error") or reason)
        try:
            self.lock()
        except (UserError, OSError):
            return fixed
        try:
            now = self._parse_summary()
            if now.get("status") != "running":
                return now
            fixed = dict(now, status="interrupted", error=now.get("error") or reason)
            self.write_summary(fixed)
        except (OSError, UserError):
            pass  # read-only or full: the status is corrected in what the reader sees
        finally:
            self.unlock()
        return fixed

    def status_or_damage(self) -> str:
        """The run's status for a message: its summary's, `unknown` without one, or
        `damaged` when the summary cannot be read."""
        try:
            return str(self.read_summary().get("status", "unknown"))
        except DamagedFile:
            return "damaged"

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Atomically replace summary.json."""
        write_json(self.summary_path, summary)

    def write_summary_in_place(self, summary: dict[str, Any]) -> None:
        """Overwrite summary.json in place, compactly: the last resort when the disk is full
        and an atomic rewrite (a second copy) does not fit, while the old file's blocks do."""
        text = json.dumps(summary, separators=(",", ":"), allow_nan=True).encode("utf-8")
        with open(self.summary_path, "r+b") as fh:
            fh.write(text)
            fh.truncate()
            os.fsync(fh.fileno())

    def read_metrics(self) -> pa.Table | None:
        """metrics.parquet as an Arrow table (None before the first flush); DamagedFile when
        it cannot be read or is not the table of `store.metrics`."""
        if not self.metrics_path.is_file():
            return None
        table = read_parquet(self.metrics_path, self.todo())
        problem = metrics_problem(table)
        if problem:
            raise DamagedFile(self.metrics_path, problem, self.todo())
        return table

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

    def latest_state(self) -> tuple[dict[str, Any] | None, str | None, list[CorruptCheckpoint]]:
        """The newest resumable state that loads and matches its checksum, its file name, and
        the errors of newer ones skipped because they did not (a run resumes from the last
        good one)."""
        skipped: list[CorruptCheckpoint] = []
        for _, p in reversed(self.states()):
            try:
                state = self.load(p.name)
            except CorruptCheckpoint as exc:
                skipped.append(exc)
                continue
            if not isinstance(state, dict) or not isinstance(state.get("step"), int):
                skipped.append(CorruptCheckpoint(p, "not a resumable state (no step)"))
                continue
            return state, p.name, skipped
        return None, None, skipped

    def damage(self) -> list[DamagedFile]:
        """The damaged files of a run, none when it is intact: its summary, its metrics (also
        when a finished run has none), and every checkpoint with a checksum but the periodic
        states, which a resume skips when damaged (final.pt also when a completed run lacks
        it). What `sgdlab resume` and a re-run check before they reuse a run."""
        found: list[DamagedFile] = []
        status = None
        try:
            status = self.read_info().status
        except DamagedFile as exc:
            found.append(exc)
        try:
            if status in FINISHED and not self.metrics_path.is_file():
                raise DamagedFile(self.metrics_path, "missing", self.todo())
            self.read_metrics()
        except DamagedFile as exc:
            found.append(exc)
        for path in sorted(self.checkpoints.rglob("*.pt")) if self.checkpoints.is_dir() else []:
            if not STATE_RE.match(path.name) and checksum_path(path).is_file():
                try:
                    self.load(path.relative_to(self.checkpoints).as_posix())
                except DamagedFile as exc:
                    found.append(exc)
        final = self.checkpoints / "final.pt"
        if status == "completed" and not final.is_file():
            found.append(DamagedFile(final, "missing", self.todo()))
        return found

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
