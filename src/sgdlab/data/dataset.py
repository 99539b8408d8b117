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
    name: str
    train: Split
    test: Split
    target_kind: str
    n_classes: int | None
    resize: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
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
        x = split.x[idx]
        if self.resize is not None and x.ndim == 4 and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x, split.y[idx]

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
        """Wrap your own tensors; integer labels are class indices, floats are targets."""
        if x_test is None or y_test is None:
            x_test, y_test = x_train[:0], y_train[:0]
        if target_kind is None:
            target_kind = "index" if not torch.is_floating_point(y_train) else "real"
        if target_kind == "index" and n_classes is None:
            n_classes = int(torch.cat([y_train, y_test]).max()) + 1
        return cls(name, Split(x_train, y_train), Split(x_test, y_test), target_kind, n_classes)
