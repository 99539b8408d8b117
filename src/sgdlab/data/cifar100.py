"""CIFAR-100 (Krizhevsky 2009): 50,000/10,000 32×32 colour images in 100 fine classes, read
from the `cifar-100-python` folder (pickled dicts "train" and "test" with CIFAR-10's "data"
layout and "fine_labels"; class names from "meta"). Used only when the user supplies it: it
is not among the shared datasets and is never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from . import safepickle
from .cifar10 import read_batch
from .dataset import RawData
from .files import cache_dir, locate
from .registry import IMAGE_DEFAULTS, datasets

FOLDER = "cifar-100-python"
N_CLASSES = 100
TODO = f"put the {FOLDER} folder (train, test, meta) under data.root or SGDLAB_DATA_ROOT"


def find_folder(path: Path) -> Path | None:
    """The cifar-100-python folder `path` is or directly holds, if any."""
    for folder in (path, path / FOLDER):
        if (folder / "train").is_file() and (folder / "test").is_file():
            return folder
    return None


def class_names(folder: Path) -> tuple[str, ...]:
    """The 100 fine class names from `meta`, or their indices when it is absent."""
    path = folder / "meta"
    if path.is_file():
        with open(path, "rb") as f:
            meta = safepickle.load(f, str(path))
        if isinstance(meta, dict):
            names = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in meta.items()}
            fine = names.get("fine_label_names")
            if isinstance(fine, list) and len(fine) == N_CLASSES:
                return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in fine)
    return tuple(str(i) for i in range(N_CLASSES))


def locate_cifar100(cfg: DataConfig) -> Path:
    """The first cifar-100-python folder on the search paths; a UserError saying where to put one."""
    return locate(cfg, "cifar100", find_folder, [cache_dir(), cache_dir() / "cifar100"], TODO)


@datasets.register(
    "cifar100",
    help="CIFAR-100, 50,000/10,000 32x32 colour images, 100 fine "
    f"classes; from {FOLDER} in data.root (user-supplied, never downloaded)",
    options=IMAGE_DEFAULTS,
)
def load_cifar100(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """The canonical 50,000/10,000 split as uint8 images N×3×32×32 (0–255, scaled and
    standardized by the pipeline) with the 100 fine labels, from user-supplied files."""
    folder = locate_cifar100(cfg)
    splits = {name: read_batch(folder / name, "fine_labels", TODO) for name in ("train", "test")}
    for name, (_, y) in splits.items():
        if len(y) and not (0 <= y.min() and y.max() < N_CLASSES):
            raise UserError(f"{folder / name}: fine labels outside 0..{N_CLASSES - 1}")

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # uint8; [0,1] after subsetting

    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return RawData(
        images(x_train),
        torch.from_numpy(y_train),
        images(x_test),
        torch.from_numpy(y_test),
        n_classes=N_CLASSES,
        class_names=class_names(folder),
        meta={"source": str(folder), "source_kind": "batches"},
    )
