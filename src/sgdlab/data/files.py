"""Where a dataset's files are, and where decoded arrays are cached.

Files are looked for in `data.root` alone when it is set; otherwise in SGDLAB_DATA_ROOT (one
folder for every dataset, so each dataset also looks in its `<root>/<name>` subfolder), then
in the dataset's conventional places. Decoded arrays go to SGDLAB_DATA (default
~/.cache/sgdlab), written atomically so a killed process never leaves half a cache file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..config import DataConfig
from ..errors import UserError
from ..store.files import sha256_of

ROOT_ENV = "SGDLAB_DATA_ROOT"
CACHE_ENV = "SGDLAB_DATA"

T = TypeVar("T")


def cache_dir() -> Path:
    """Where decoded arrays are cached: $SGDLAB_DATA, else ~/.cache/sgdlab."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sgdlab").expanduser()


def repo_root() -> Path | None:
    """The source checkout holding the package (src layout), or None when installed elsewhere."""
    try:
        return Path(__file__).resolve().parents[3]  # <root>/src/sgdlab/data/files.py
    except (IndexError, OSError):
        return None


def shared_datasets() -> list[Path]:
    """`../shared/datasets` next to the current directory and next to the repository."""
    places = [(Path.cwd() / ".." / "shared" / "datasets").resolve()]
    root = repo_root()
    if root is not None:
        places.append((root / ".." / "shared" / "datasets").resolve())
    return places


def search_paths(cfg: DataConfig, name: str, conventional: Iterable[Path] = ()) -> list[Path]:
    """The places to look for dataset `name`, best first."""
    if cfg.root:
        root = Path(cfg.root).expanduser()
        return [root, root / name]
    env = os.environ.get(ROOT_ENV)
    paths = [Path(env).expanduser(), Path(env).expanduser() / name] if env else []
    paths += list(conventional)
    unique: dict[str, Path] = {}  # the first of the paths that print alike, in order
    for p in paths:
        unique.setdefault(str(p), p)
    return list(unique.values())


def locate(
    cfg: DataConfig, name: str, probe: Callable[[Path], T | None], conventional: Iterable[Path], todo: str
) -> T:
    """The first hit of `probe` over the search paths; else a one-line UserError saying `todo`."""
    paths = search_paths(cfg, name, conventional)
    for path in paths:
        found = probe(path)
        if found is not None:
            return found
    if cfg.root:
        where = f"data.root = {cfg.root}"
    else:
        where = "looked in " + (", ".join(str(p) for p in paths) or "no place")
    download = f" (data.download: sgdlab does not download {name})" if cfg.download else ""
    raise UserError(f"{name}: no data found ({where}){download}; {todo}")


def check_sha256(path: Path, expected: str, name: str, todo: str) -> None:
    """A one-line UserError (saying `todo`) unless the file's sha256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise UserError(
            f"{name}: {path} has sha256 {actual[:16]}…, expected {expected[:16]}… "
            f"(corrupt or a different file); {todo}"
        )


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file in the same folder, then os.replace onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)  # numeric arrays, read back without pickle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_npz(path: Path, keys: Iterable[str]) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is absent, unreadable (truncated, a CRC
    that does not match, a damaged header) or lacks a key: the caller builds it again."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys}
    except Exception:  # noqa: BLE001 - whatever the zip or npy reader raises, the cache is damaged
        return None
