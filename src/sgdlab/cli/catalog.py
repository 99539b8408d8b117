"""What `sgdlab list` shows, without importing the package's heavy half on every call.

Listing a registry means importing everything registered in it (the models import torch: seconds).
So a fresh `sgdlab list` reads the listing from a cache file written by the first one: the rows
of every registry (name, description, options), keyed by a fingerprint of the package's source
files (path, size and modification time of each), so any change to the code is a new key. A
process that has already imported a registry (tests, a library user's code that registered
entries of its own) lists the registry itself.

The cache lives in $SGDLAB_CACHE, else $XDG_CACHE_HOME/sgdlab, else ~/.cache/sgdlab; when it
cannot be written, listing just takes the slow path every time.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

from ..version import __version__

# Kind → (the module that registers it, the registry's name there).
REGISTRIES = {
    "models": ("sgdlab.models", "models"),
    "datasets": ("sgdlab.data", "datasets"),
    "optimizers": ("sgdlab.optim", "optimizers"),
    "probes": ("sgdlab.probes", "probes"),
    "losses": ("sgdlab.losses", "losses"),
    "experiments": ("sgdlab.experiments", "experiments"),
}
Row = tuple[str, str, str]  # name, description, options
PACKAGE = Path(__file__).resolve().parents[1]


def live_rows(kind: str) -> list[Row]:
    """The rows of registry `kind`, read from the registry itself (importing it)."""
    module, name = REGISTRIES[kind]
    registry = getattr(importlib.import_module(module), name)
    rows = []
    for entry in registry:
        opts = ", ".join(f"{k}={v}" for k, v in entry.options.items())
        paper = entry.extra.get("paper")
        rows.append((entry.name, f"{entry.help} — {paper}" if paper is not None else entry.help, opts))
    return rows


def cache_dir() -> Path:
    """Where the listing cache is kept ($SGDLAB_CACHE, $XDG_CACHE_HOME/sgdlab or ~/.cache/sgdlab)."""
    if os.environ.get("SGDLAB_CACHE"):
        return Path(os.environ["SGDLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sgdlab"


def fingerprint() -> str:
    """A hash of sgdlab's version, the Python version and every source file's path, size and
    modification time: it changes whenever the code that registers entries may have."""
    h = hashlib.sha256(f"{__version__} {sys.version}".encode())
    for root, dirs, files in os.walk(PACKAGE):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                st = os.stat(path)
                h.update(f"{os.path.relpath(path, PACKAGE)} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _read(path: Path) -> dict[str, list[Row]] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or set(raw) != set(REGISTRIES):
        return None
    return {kind: [tuple(row) for row in rows] for kind, rows in raw.items()}


def _write(path: Path, rows: dict[str, list[Row]]) -> None:
    """Write the cache file atomically, replacing older ones; a failure only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(rows), encoding="utf-8")
        os.replace(tmp, path)
        for old in path.parent.glob("catalog-*.json"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def rows(kind: str) -> list[Row]:
    """The rows `sgdlab list KIND` shows: from the registry when this process has imported it,
    else from the cache, else from the registries (then cached for the next call)."""
    module, _ = REGISTRIES[kind]
    if module in sys.modules:
        return live_rows(kind)
    path = cache_dir() / f"catalog-{fingerprint()}.json"
    cached = _read(path)
    if cached is None:
        cached = {k: live_rows(k) for k in REGISTRIES}
        _write(path, cached)
    return cached[kind]
