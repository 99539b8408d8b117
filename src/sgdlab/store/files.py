"""Atomic file writes: write a sibling temp file, fsync, rename, fsync the folder. A reader (or
a resumed run) sees the old file or the new one, never half of one.

Checkpoints also get a checksum: `NAME.pt` is written first, then `NAME.pt.sha256` beside it.
Loading verifies the file against it, so a checkpoint damaged after it was written (a partial
copy, a bad disk, an edit) is refused instead of loaded. A `.pt` without its checksum is one
whose process was killed between the two renames: it is complete (it was renamed into place
after an fsync), so it loads unverified.

A full disk (or a file-size limit) raises `DiskFull`, a UserError naming the file; the file it
was replacing and every earlier checkpoint are untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import faults
from ..errors import UserError

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
LOW_SPACE = 64 * 1024  # bytes: below this after a failed write, the disk was full


class DiskFull(UserError):
    """A write failed for lack of space; nothing already on disk was changed."""


class CorruptCheckpoint(UserError):
    """A checkpoint does not match its checksum or cannot be read."""


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Replace `path` with what `write(tmp)` puts in a temp file beside it, all or nothing.

    The temp file `.NAME.tmp-PID` is fsynced, renamed over `path` and the folder fsynced, so a
    crash at any point leaves either the old file or the new one. If the write fails for lack
    of space, DiskFull is raised (the old file is untouched); any other error propagates. The
    temp file never outlives the call (a SIGKILL aside: `RunDir.remove_temporaries`).
    `write`'s return value is ignored.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        faults.point(f"write:{path.name}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except Exception as exc:
        if _out_of_space(exc, path.parent):
            raise DiskFull(
                f"{path}: no space left to write it; the previous files are intact — free space and resume"
            ) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _out_of_space(exc: Exception, folder: Path) -> bool:
    """Whether a failed write ran out of space: by its errno, or — for writers that report it
    otherwise (torch.save's zip writer raises "unexpected pos") — by the space left, read while
    the partial temp file still holds what it took."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    if isinstance(exc, UserError):
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX: the directory entry lives in the folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Atomically write `data` as indented JSON; NaN and ±inf are kept (as NaN, Infinity)."""
    write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def write_parquet(path: Path, table: pa.Table) -> None:
    """Atomically write an Arrow table as a Parquet file."""
    atomic_write(path, lambda p: pq.write_table(table, p))


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    """Where the checksum of checkpoint `path` lives: `NAME.pt.sha256` beside it."""
    return path.with_name(path.name + ".sha256")


def save_tensors(path: Path, obj: Any) -> None:
    """torch.save of tensors and plain Python values only (loadable with weights_only=True),
    then its sha256 beside it."""
    digest: list[str] = []

    def write(tmp: Path) -> None:
        torch.save(obj, tmp)
        digest.append(sha256_of(tmp))

    atomic_write(path, write)
    write_text(checksum_path(path), digest[0] + "\n")


def load_tensors(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(weights_only=True) after checking the file against its checksum."""
    check = checksum_path(path)
    if check.is_file():
        expected = check.read_text(encoding="utf-8").strip()
        if sha256_of(path) != expected:
            raise CorruptCheckpoint(
                f"{path}: does not match its checksum (damaged after it was written); refusing to load it"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle globals, …: never half-load
        raise CorruptCheckpoint(
            f"{path}: cannot be read as a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint and its checksum (either may already be gone)."""
    path.unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)
