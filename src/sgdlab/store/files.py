"""Atomic file writes: write a sibling temp file, fsync, rename, fsync the folder. A reader (or
a resumed run) sees the old file or the new one, never half of one.

Checkpoints also get a checksum: `NAME.pt` is written first, then `NAME.pt.sha256` beside it.
Loading verifies the file against it, so a checkpoint damaged after it was written (a partial
copy, a bad disk, an edit) is refused instead of loaded. A `.pt` without its checksum is one
whose process was killed between the two renames: it is complete (it was renamed into place
after an fsync), so it loads unverified.

A full disk (or a file-size limit) raises `DiskFull`, a UserError naming the file; the file it
was replacing and every earlier checkpoint are untouched.

Reading back goes through `read_json`, `read_parquet` and `load_tensors`: a file that cannot be
parsed, or holds something sgdlab never writes there, raises `DamagedFile` (a UserError) naming
the file and what is wrong, never the parser's own exception. Parquet files carry a CRC per data
page (written and verified), so a flipped byte in the numbers is caught, not read as a number.
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
from ..errors import DamagedFile, UserError, quote

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
LOW_SPACE = 64 * 1024  # bytes: below this after a failed write, the disk was full


class DiskFull(UserError):
    """A write failed for lack of space; nothing already on disk was changed."""


class CorruptCheckpoint(DamagedFile):
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
    """Atomically write an Arrow table as a Parquet file, with a CRC of every data page."""
    atomic_write(path, lambda p: pq.write_table(table, p, write_page_checksum=True))


def _first_line(exc: BaseException) -> str:
    """`TYPE: first line of the message` of a parser's exception, at most about 200 characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 200:
        text = text[:199] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_bytes(path: Path, todo: str = "") -> bytes:
    """The bytes of a file sgdlab wrote; DamagedFile when it is gone or cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DamagedFile(path, "missing", todo) from None
    except OSError as exc:
        raise DamagedFile(path, f"cannot be read: {exc.strerror or exc}", todo) from None


def read_json(path: Path, expect: type = dict, todo: str = "") -> Any:
    """The JSON value in `path` (NaN and Infinity allowed), which must be an instance of
    `expect`; DamagedFile when the file is missing, not UTF-8, not JSON or of another shape."""
    data = read_bytes(path, todo)
    if not data.strip():
        raise DamagedFile(path, "empty", todo)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DamagedFile(path, f"not UTF-8 text at byte {exc.start}", todo) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise DamagedFile(path, f"not valid JSON: {exc.msg} at {where}", todo) from None
    except RecursionError:
        raise DamagedFile(path, "not valid JSON: nested too deeply", todo) from None
    if not isinstance(value, expect):
        raise DamagedFile(path, f"holds {_kind(value)} where {_kind_name(expect)} belongs", todo)
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), "null" if value is None else "a number"
    )


def _kind_name(tp: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer"}
    kinds = tp if isinstance(tp, tuple) else (tp,)
    return " or ".join(names.get(k, "a number") for k in kinds)


Kinds = dict[str, type | tuple[type, ...]]


def check_fields(data: dict[str, Any], kinds: Kinds, path: Path, todo: str = "") -> None:
    """Every key of `kinds` that `data` holds (and is not null) has one of its types: a JSON
    file sgdlab wrote but whose content was changed is refused here, not deep in a reader.
    `float` admits any number, `int` integers only; neither admits true/false."""
    for key, tp in kinds.items():
        value = data.get(key)
        if value is not None and not _is(value, tp):
            raise DamagedFile(path, f"{key!r} is {quote(value, 60)}, expected {_kind_name(tp)}", todo)


def _is(value: Any, tp: type | tuple[type, ...]) -> bool:
    kinds = tp if isinstance(tp, tuple) else (tp,)
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and (int in kinds or float in kinds):
        return True
    return any(k not in (int, bool) and isinstance(value, k) for k in kinds)


def read_parquet(path: Path, todo: str = "") -> pa.Table:
    """The Arrow table in a Parquet file, its page checksums verified; DamagedFile when the
    file is missing, truncated or damaged."""
    if not path.is_file():
        raise DamagedFile(path, "missing", todo)
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        table.validate(full=True)  # offsets in range, strings UTF-8
        table.schema.names  # noqa: B018 - the footer's names are not covered by the page checksums
        return table
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the file is damaged
        raise DamagedFile(path, f"not a readable Parquet file: {_first_line(exc)}", todo) from None


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
        try:
            expected = check.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            expected = None
        if expected is None or len(expected) != 64:
            raise CorruptCheckpoint(path, f"its checksum file {check.name} is damaged; refusing to load it")
        if sha256_of(path) != expected:
            raise CorruptCheckpoint(
                path, "does not match its checksum: changed after it was written; refusing to load it"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, foreign pickle globals, …: never half-load
        raise CorruptCheckpoint(path, f"cannot be read as a checkpoint: {_first_line(exc)}") from None


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint and its checksum (either may already be gone)."""
    path.unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)
