"""scikit-learn's bundled 8×8 digits (1,797 images): the embedded default, no download."""

from __future__ import annotations

import torch

from ..config import DataConfig
from ..errors import ConfigError
from .dataset import RawData
from .registry import IMAGE_DEFAULTS, datasets


@datasets.register(
    "digits",
    help="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); built in",
    options={**IMAGE_DEFAULTS, "n_train": None, "n_test": None},  # its loader draws the split itself
)
def load_digits(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """No canonical split: one seeded permutation gives n_train training points and the next
    n_test test points (default 1,297 and 500). With `data.classes` and a count given, the
    split is made among the points of those classes (so `classes = [0, 1]`, `n_train = 100`
    means 100 zeros and ones; the count left unset takes the rest of them)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    n_train, n_test = cfg.n_train, cfg.n_test
    if cfg.classes is not None and (n_train is not None or n_test is not None):
        keep = torch.isin(y, torch.tensor(cfg.classes, dtype=torch.int64))
        x, y = x[keep], y[keep]
        if n_train is None:
            assert n_test is not None  # this branch has at least one of the two counts
            n_train = x.shape[0] - n_test
        what = f"digits of classes {list(cfg.classes)}"
    else:
        n_train = n_train if n_train is not None else 1297
        what = "digits"
    n_test = n_test if n_test is not None else x.shape[0] - n_train
    if n_train < 0 or n_train + n_test > x.shape[0]:
        raise ConfigError(
            f"data.n_train + data.n_test: {n_train} + {n_test} is more than the {x.shape[0]} {what} available"
        )
    perm = torch.randperm(x.shape[0], generator=gen)
    tr, te = perm[:n_train], perm[n_train : n_train + n_test]
    return RawData(x[tr], y[tr], x[te], y[te], n_classes=10, class_names=tuple(str(i) for i in range(10)))
