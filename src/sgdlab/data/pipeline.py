"""The steps every dataset goes through after loading, in order: class pick, deterministic
subsets, label noise, standardization, unit-ball scaling, target encoding."""

from __future__ import annotations

import torch

from ..config import DataConfig
from ..errors import ConfigError
from .dataset import Dataset, RawData, Split


def pick_classes(x: torch.Tensor, y: torch.Tensor, classes: tuple[int, ...]):
    """Keep the points of `classes`, relabelled 0..k-1 in the order given."""
    keep = torch.zeros_like(y, dtype=torch.bool)
    new = torch.empty_like(y)
    for i, c in enumerate(classes):
        hit = y == c
        keep |= hit
        new[hit] = i
    return x[keep], new[keep]


def subset(n: int | None, total: int, gen: torch.Generator, key: str) -> torch.Tensor | None:
    """Indices of a deterministic random subset of size n (sorted), None for all."""
    if n is None or n == total:
        return None
    if n > total:
        raise ConfigError(f"{key}: {n} is more than the {total} points available")
    return torch.randperm(total, generator=gen)[:n].sort().values


def add_label_noise(y: torch.Tensor, fraction: float, n_classes: int, gen: torch.Generator):
    """Replace the labels of exactly round(fraction·N) random points by uniform random labels
    (Zhang et al. 2017: a replaced label may equal the old one by chance). Returns the new
    labels and the replaced indices."""
    n = y.shape[0]
    k = round(fraction * n)
    chosen = torch.randperm(n, generator=gen)[:k].sort().values
    y = y.clone()
    y[chosen] = torch.randint(0, n_classes, (k,), generator=gen, dtype=y.dtype)
    return y, chosen


def channel_axes(x: torch.Tensor) -> tuple[int, ...]:
    """Axes to average over for per-channel statistics: all but the channel axis of images,
    the sample axis of vectors (per-feature)."""
    return (0, 2, 3) if x.ndim == 4 else (0,)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float32 in [0, 1]; float inputs unchanged (as float32)."""
    return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)


def standardize(train: torch.Tensor, test: torch.Tensor):
    """Per-channel statistics of the training inputs, computed in float64."""
    axes = channel_axes(train)
    mean = train.mean(dim=axes, keepdim=True, dtype=torch.float64)
    std = train.double().std(dim=axes, keepdim=True).clamp_min(1e-8)
    return ((train - mean) / std).float(), ((test - mean) / std).float()


def to_unit_ball(train: torch.Tensor, test: torch.Tensor):
    """X ← x / max(r, ‖x‖), r the largest training norm: training geometry is kept up to one
    scale, and every point (test ones too) ends with ‖x‖ ≤ 1."""
    r = train.flatten(1).norm(dim=1).max().clamp_min(1e-12)

    def scale(x: torch.Tensor) -> torch.Tensor:
        norms = x.flatten(1).norm(dim=1).clamp_min(r)
        return x / norms.view(-1, *([1] * (x.ndim - 1)))

    return scale(train), scale(test)


def encode_targets(y: torch.Tensor, kind: str, n_classes: int) -> torch.Tensor:
    """Class indices y as the targets of `kind`: the indices themselves (index), float one-hot
    rows of width n_classes (onehot), or 2y − 1 ∈ {−1, +1} for two classes (pm1)."""
    if kind == "index":
        return y
    if kind == "onehot":
        return torch.nn.functional.one_hot(y, n_classes).to(torch.float32)
    if kind == "pm1":
        return y.to(torch.float32) * 2 - 1
    raise ValueError(kind)


def prepare(raw: RawData, cfg: DataConfig, gen: torch.Generator) -> Dataset:
    """RawData → Dataset following `cfg` (already resolved against the dataset's defaults)."""
    xtr, ytr, xte, yte = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    n_classes = raw.n_classes
    classification = n_classes is not None
    meta = dict(raw.meta)

    if cfg.classes is not None:
        if n_classes is None:
            raise ConfigError(f"data.classes: {cfg.name} has no classes")
        bad = [c for c in cfg.classes if not 0 <= c < n_classes]
        if bad or len(set(cfg.classes)) != len(cfg.classes) or len(cfg.classes) < 2:
            raise ConfigError(
                f"data.classes: {list(cfg.classes)} must be at least two distinct "
                f"classes in 0..{n_classes - 1}"
            )
        xtr, ytr = pick_classes(xtr, ytr, cfg.classes)
        xte, yte = pick_classes(xte, yte, cfg.classes)
        n_classes = len(cfg.classes)

    for key, n, (x, y) in (
        ("data.n_train", cfg.n_train, (xtr, ytr)),
        ("data.n_test", cfg.n_test, (xte, yte)),
    ):
        idx = subset(n, x.shape[0], gen, key)
        if idx is not None:
            x, y = x[idx], y[idx]
        if key == "data.n_train":
            xtr, ytr = x, y
        else:
            xte, yte = x, y

    if cfg.label_noise > 0:
        if n_classes is None:
            raise ConfigError(f"data.label_noise: {cfg.name} has no labels to corrupt")
        ytr, meta["noisy_indices"] = add_label_noise(ytr, cfg.label_noise, n_classes, gen)

    xtr, xte = to_float(xtr), to_float(xte)
    if cfg.standardize:
        xtr, xte = standardize(xtr, xte)
    if cfg.normalize == "unit-ball":
        xtr, xte = to_unit_ball(xtr, xte)

    kind = cfg.targets if classification else "real"
    if n_classes is not None:
        if kind == "pm1" and n_classes != 2:
            raise ConfigError(
                f"data.targets: 'pm1' needs exactly two classes, {cfg.name} has "
                f"{n_classes} (pick two with data.classes = [a, b])"
            )
        ytr, yte = encode_targets(ytr, kind, n_classes), encode_targets(yte, kind, n_classes)
    return Dataset(
        cfg.name,
        Split(xtr.contiguous(), ytr),
        Split(xte.contiguous(), yte),
        kind,
        n_classes,
        resize=cfg.resize,
        meta=meta,
    )
