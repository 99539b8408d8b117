"""CIFAR-10 (Krizhevsky 2009): 50,000/10,000 32×32 colour images in 10 classes, read from

- `cifar-10-batches-py` (cs.toronto.edu/~kriz/cifar.html): pickled dicts whose "data" is a
  10000×3072 uint8 array (1024 red, 1024 green, 1024 blue values per row) and "labels" a list;
- an image-folder tree `train/<class>/*.jpg|png`, `test/<class>/*`; or
- a tar archive of that tree (e.g. shared/datasets/cifar10-jpeg.tar.xz), streamed member by
  member without extracting to disk.

Images of a tree or archive are decoded once with Pillow and cached as uint8 arrays
(N×32×32×3) in an .npz under the cache dir, keyed by the source's identity. A cache file that
cannot be read or holds arrays of the wrong shape is decoded again and rewritten.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from ..store.files import sha256_of
from . import safepickle
from .dataset import RawData
from .files import cache_dir, load_npz, locate, save_npz_atomic, shared_datasets
from .registry import IMAGE_DEFAULTS, datasets

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARCHIVE = "cifar10-jpeg.tar.xz"
BATCHES = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SPLITS = ("train", "test")
FULL = {"train": 5000, "test": 1000}  # images per class in the full set
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TAR_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2")
CACHE_VERSION = 1
TODO = (
    f"put {BATCHES}, the image-folder tree train/<class>/*.jpg + test/<class>/*.jpg or its "
    f".tar.xz under data.root or SGDLAB_DATA_ROOT"
)
KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Source:
    """Where CIFAR-10 was found and in which of the three forms."""

    kind: str  # "batches", "tree" or "archive"
    path: Path


def find_source(path: Path) -> Source | None:
    """What CIFAR-10 source `path` is or directly holds, if any."""
    if path.is_file():
        return Source("archive", path) if path.name.endswith(TAR_SUFFIXES) else None
    if not path.is_dir():
        return None
    for folder in (path, path / BATCHES):
        if (folder / TRAIN_BATCHES[0]).is_file():
            return Source("batches", folder)
    if all((path / split).is_dir() for split in SPLITS):
        return Source("tree", path)
    if (path / ARCHIVE).is_file():
        return Source("archive", path / ARCHIVE)
    return None


# ---------------------------------------------------------------------------------------
# cifar-10-batches-py


def read_batch(path: Path, label_key: str = "labels", todo: str = TODO) -> tuple[np.ndarray, np.ndarray]:
    """Images N×32×32×3 uint8 and labels (the `label_key` entry) of one python batch file of
    CIFAR-10 (or CIFAR-100, whose files have the same layout)."""
    if not path.is_file():
        raise UserError(f"{path.parent.name}: {path} is missing; {todo}")
    with open(path, "rb") as f:
        raw = safepickle.load(f, str(path))
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    try:
        data, labels = batch["data"], batch[label_key]
    except KeyError as exc:
        raise UserError(f"{path}: the batch has no {exc.args[0]!r} entry") from None
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    labels = np.asarray(labels, np.int64)
    if data.size != labels.size * 3072:
        raise UserError(
            f"{path}: {data.size} values for {labels.size} labels, expected "
            f"{labels.size * 3072} (3×32×32 each)"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_batches(folder: Path) -> dict[str, np.ndarray]:
    """The five training batches (50,000 images, in file order) and the test batch (10,000)
    of a cifar-10-batches-py folder, as N×32×32×3 uint8 images and int64 labels."""
    train = [read_batch(folder / name) for name in TRAIN_BATCHES]
    x_test, y_test = read_batch(folder / TEST_BATCH)
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


# ---------------------------------------------------------------------------------------
# image-folder tree and its tar archive


def decode_image(data: bytes, what: str) -> np.ndarray:
    """One encoded image → 32×32×3 uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            x = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"{what}: cannot decode the image ({exc})") from None
    if x.shape != (32, 32, 3):
        raise UserError(f"{what}: image is {x.shape[1]}x{x.shape[0]}, CIFAR-10 images are 32x32")
    return x


def member_place(name: str) -> tuple[str, int, str] | None:
    """(split, class index, file name) of a path ending in <split>/<class>/<file>, else None."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[-3] not in SPLITS or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    if parts[-1].startswith("."):
        return None
    if parts[-2] not in CLASSES:
        raise UserError(f"cifar10: {name}: {parts[-2]!r} is not a CIFAR-10 class ({', '.join(CLASSES)})")
    return parts[-3], CLASSES.index(parts[-2]), parts[-1]


def tree_files(source: Source) -> Iterator[tuple[str, Path]]:
    """(name relative to the tree, path) of every file under train/ and test/, sorted."""
    for split in SPLITS:
        for path in sorted((source.path / split).rglob("*")):
            if path.is_file():
                yield path.relative_to(source.path).as_posix(), path


def encoded_images(source: Source) -> Iterator[tuple[str, tuple[str, int, str], bytes]]:
    """(name, place, encoded bytes) of every image of a tree or archive, in storage order."""
    if source.kind == "tree":
        for name, path in tree_files(source):
            if (place := member_place(name)) is not None:
                yield name, place, path.read_bytes()
        return
    try:
        with tarfile.open(source.path, "r|*") as tar:
            for member in tar:
                if member.isfile() and (place := member_place(member.name)) is not None:
                    f = tar.extractfile(member)
                    assert f is not None  # a regular file always has a reader
                    yield member.name, place, f.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{source.path}: cannot read the archive ({exc})") from None


def decode_tree(source: Source) -> dict[str, np.ndarray]:
    """All images of a tree or archive, ordered by (class, file name) within each split."""
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {split: [] for split in SPLITS}
    for name, (split, label, file), data in encoded_images(source):
        found[split].append((label, file, decode_image(data, f"{source.path}: {name}")))
    out = {}
    for split in SPLITS:
        items = sorted(found[split], key=lambda t: t[:2])
        if not items:
            raise UserError(f"cifar10: {source.path} holds no {split}/<class>/*.jpg images; {TODO}")
        out[f"x_{split}"] = np.stack([x for _, _, x in items])
        out[f"y_{split}"] = np.array([label for label, _, _ in items], dtype=np.int64)
    return out


def source_key(source: Source) -> str:
    """Identity of a tree or archive: the archive's sha256, or the tree's absolute path with
    every file's name, size and mtime."""
    digest = hashlib.sha256(f"cifar10 cache v{CACHE_VERSION} {source.kind}\n".encode())
    if source.kind == "archive":
        digest.update(sha256_of(source.path).encode())
    else:
        digest.update(str(source.path.resolve()).encode())
        for name, path in tree_files(source):
            st = path.stat()
            digest.update(f"\n{name} {st.st_size} {st.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


# ---------------------------------------------------------------------------------------
# checks, the cache and the registered loader


def check_arrays(arrays: dict[str, np.ndarray], what: str) -> None:
    """Shapes N×32×32×3, labels in 0..9, and 5,000/1,000 per class when the set is full."""
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or len(x) != len(y):
            raise UserError(
                f"{what}: {split} images have shape {x.shape} ({x.dtype}) for "
                f"{len(y)} labels, expected N×32×32×3 uint8"
            )
        if len(y) and not (0 <= y.min() and y.max() < len(CLASSES)):
            raise UserError(f"{what}: {split} labels outside 0..{len(CLASSES) - 1}")
    if all(len(arrays[f"y_{s}"]) == FULL[s] * len(CLASSES) for s in SPLITS):
        for split in SPLITS:
            counts = np.bincount(arrays[f"y_{split}"], minlength=len(CLASSES))
            if (counts != FULL[split]).any():
                raise UserError(
                    f"{what}: {split} class counts {counts.tolist()}, expected {FULL[split]} per class"
                )


def load_arrays(source: Source) -> tuple[dict[str, np.ndarray], dict]:
    """The checked uint8 arrays of `source` and how they were obtained (meta)."""
    start = time.perf_counter()
    meta: dict = {"source": str(source.path), "source_kind": source.kind}
    if source.kind == "batches":
        arrays = read_batches(source.path)
    else:
        cache = cache_dir() / f"cifar10-{source_key(source)}.npz"
        cached = load_npz(cache, KEYS)
        if cached is not None:
            try:
                check_arrays(cached, str(cache))
            except UserError:
                cached = None  # a damaged cache file: decoded again and rewritten
        meta.update(cache_file=str(cache), cache_hit=cached is not None)
        arrays = cached if cached is not None else decode_tree(source)
    check_arrays(arrays, str(source.path))
    if source.kind != "batches" and not meta["cache_hit"]:
        save_npz_atomic(cache, **arrays)
    meta["load_seconds"] = time.perf_counter() - start
    return arrays, meta


def locate_cifar10(cfg: DataConfig) -> Source:
    """The first CIFAR-10 source on the search paths (data.root, SGDLAB_DATA_ROOT, the cache
    dir, shared/datasets/cifar10-jpeg.tar.xz); a UserError saying what to put where if none."""
    conventional = [cache_dir(), cache_dir() / "cifar10"]
    conventional += [folder / ARCHIVE for folder in shared_datasets()]
    return locate(cfg, "cifar10", find_source, conventional, TODO)


@datasets.register(
    "cifar10",
    help="CIFAR-10, 50,000/10,000 32x32 colour images, 10 classes; "
    f"from {BATCHES}, an image-folder tree or its .tar.xz in data.root "
    "(decoded once, cached in SGDLAB_DATA)",
    options=IMAGE_DEFAULTS,
)
def load_cifar10(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """The canonical 50,000/10,000 split as uint8 images N×3×32×32 (0–255; the pipeline scales
    them to [0, 1] and standardizes per channel by default) and int64 labels. Read from local
    files only, never downloaded; meta says which source was read and whether from the cache."""
    arrays, meta = load_arrays(locate_cifar10(cfg))

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # uint8; [0,1] after subsetting

    return RawData(
        images(arrays["x_train"]),
        torch.from_numpy(arrays["y_train"]),
        images(arrays["x_test"]),
        torch.from_numpy(arrays["y_test"]),
        n_classes=10,
        class_names=CLASSES,
        meta=meta,
    )
