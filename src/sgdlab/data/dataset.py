"""What every dataset becomes: train/test tensors, the target kind and how to fetch a batch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

# index: int64 class labels; onehot: float rows; pm1: float ±1 (two classes); real: regression.
TARGET_KINDS = ("index", "onehot", "pm1", "real")


@dataclass
class Split:
    """One split's inputs x (first axis: the N points) and targets y (length N)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class RawData:
    """What a loader returns: images N×C×H×W as uint8 (0–255) or float in [0,1], or float
    vectors N×D. uint8 images become floats only after subsetting, which keeps big sets small."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None  # None for regression targets
    class_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A prepared dataset: train and test splits, the kind of their targets (TARGET_KINDS), the
    number of classes (None for regression), and an optional bilinear `resize` of images that
    `batch` applies on the fly (so the stored images keep their original size).

    Inputs are float32: images N×C×H×W, vectors N×D; built-in datasets are already
    standardized or scaled as the config asked (`pipeline.prepare`)."""

    name: str
    train: Split
    test: Split
    target_kind: str
    n_classes: int | None
    resize: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input as the model sees it: (C, resize, resize) for resized images."""
        shape = tuple(self.train.x.shape[1:])
        if self.resize is not None and len(shape) == 3:
            return (shape[0], self.resize, self.resize)
        return shape

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer."""
        if self.target_kind in ("index", "onehot"):
            assert self.n_classes is not None
            return self.n_classes
        return 1 if self.train.y.ndim == 1 else self.train.y.shape[1]

    def batch(self, split: Split, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the points `idx` of `split`, images resized to `resize` if set. Indices are
        gathered with index_select (half the per-call cost of x[idx] at a minibatch of 32)."""
        if isinstance(idx, torch.Tensor) and idx.ndim == 1 and idx.dtype != torch.bool:
            x, y = split.x.index_select(0, idx), split.y.index_select(0, idx)
        else:
            x, y = split.x[idx], split.y[idx]
        if self.resize is not None and x.ndim == 4 and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x, y

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Dataset":
        """On `device`; floating tensors (inputs, float targets) also in `dtype` if given."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, dtype) if dtype is not None and t.is_floating_point() else t.to(device)

        return replace(
            self,
            train=Split(move(self.train.x), move(self.train.y)),
            test=Split(move(self.test.x), move(self.test.y)),
        )

    @classmethod
    def from_tensors(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_test: torch.Tensor | None = None,
        y_test: torch.Tensor | None = None,
        *,
        name: str = "custom",
        target_kind: str | None = None,
        n_classes: int | None = None,
    ) -> "Dataset":
        """Wrap your own tensors; integer labels are class indices, floats are targets.

        Without a test split the test set is empty. With index targets and no `n_classes`, the
        number of classes is one more than the largest label in either split. The tensors are
        used as given: no standardization, no copy.

        >>> import torch
        >>> x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
        >>> y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
        >>> data = Dataset.from_tensors(x[:8], y[:8], x[8:], y[8:])
        >>> len(data.train), len(data.test), data.input_shape
        (8, 2, (3,))
        >>> data.target_kind, data.n_classes, data.n_outputs
        ('index', 3, 3)
        >>> xb, yb = data.batch(data.train, torch.tensor([0, 4, 5]))
        >>> xb.shape, yb
        (torch.Size([3, 3]), tensor([0, 1, 2]))

        Float targets make a regression set with one output per target column:

        >>> reg = Dataset.from_tensors(x, x.sum(dim=1))
        >>> reg.target_kind, reg.n_classes, reg.n_outputs, len(reg.test)
        ('real', None, 1, 0)
        """
        if x_test is None or y_test is None:
            x_test, y_test = x_train[:0], y_train[:0]
        if target_kind is None:
            target_kind = "index" if not torch.is_floating_point(y_train) else "real"
        if target_kind == "index" and n_classes is None:
            n_classes = int(torch.cat([y_train, y_test]).max()) + 1
        return cls(name, Split(x_train, y_train), Split(x_test, y_test), target_kind, n_classes)
