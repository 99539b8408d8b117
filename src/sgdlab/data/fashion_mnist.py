"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000/10,000 28×28 grey images of clothing in
10 classes, as the original four IDX files (Debian's `dataset-fashion-mnist` installs them in
/usr/share/datasets/fashion-mnist/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .dataset import RawData
from .files import cache_dir, locate
from .idx import read_idx
from .registry import IMAGE_DEFAULTS, datasets

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
TODO = (
    "apt-get install dataset-fashion-mnist, or put train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
    "under data.root or SGDLAB_DATA_ROOT"
)


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (gzipped or not), or None unless all are there."""
    found = {}
    for key, stem in FILES.items():
        hits = [folder / name for name in (stem + ".gz", stem) if (folder / name).is_file()]
        if not hits:
            return None
        found[key] = hits[0]
    return found


def read_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images N×28×28 uint8 and labels N int64, checked against each other."""
    x, y = read_idx(images, ndim=3), read_idx(labels, ndim=1)
    if x.shape[1:] != (28, 28):
        raise UserError(f"{images}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
    if x.shape[0] != y.shape[0]:
        raise UserError(f"{labels}: {y.shape[0]} labels for the {x.shape[0]} images of {images.name}")
    if y.size and y.max() >= len(CLASSES):
        raise UserError(f"{labels}: label {int(y.max())} is not one of 0..{len(CLASSES) - 1}")
    return x, y.astype(np.int64)


@datasets.register(
    "fashion-mnist",
    help="Fashion-MNIST, 60,000/10,000 28x28 grey images of "
    "clothing, 10 classes; from Debian dataset-fashion-mnist or IDX files in "
    "data.root",
    options=IMAGE_DEFAULTS,
)
def load_fashion_mnist(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """The canonical 60,000/10,000 split as uint8 images N×1×28×28 (0–255, scaled to [0, 1] and
    standardized by the pipeline) and int64 labels, from the four IDX files found on the
    search paths (data.root, SGDLAB_DATA_ROOT, Debian's folder, the cache dir); no download."""
    files = locate(cfg, "fashion-mnist", find_files, [DEBIAN_DIR, cache_dir() / "fashion-mnist"], TODO)
    x_train, y_train = read_split(files["x_train"], files["y_train"])
    x_test, y_test = read_split(files["x_test"], files["y_test"])

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).unsqueeze(1)  # uint8; [0,1] after subsetting

    return RawData(
        images(x_train),
        torch.from_numpy(y_train),
        images(x_test),
        torch.from_numpy(y_test),
        n_classes=10,
        class_names=CLASSES,
        meta={"source": str(files["x_train"].parent)},
    )
