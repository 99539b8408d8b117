"""Axis helpers shared by the figures: when a log axis reads better, and labels that name a
metric's loss and unit. (`save_figure` is `store.figures.save_figure`, re-exported here.)"""

from __future__ import annotations

import numpy as np

from ..store.figures import save_figure

__all__ = ["loss_label", "metric_label", "save_figure", "spans_decades"]


# One per curve, in turn: curves that coincide (two activations with the same path, two batch
# sizes that never escape) stay visible as a dashed line over a solid one.
LINESTYLES = ("-", "--", "-.", ":")


def spans_decades(*arrays: np.ndarray, decades: float = 1.5) -> bool:
    """Whether positive values span more than `decades` powers of ten (a log axis reads better)."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    if not len(values) or values.min() <= 0:
        return False
    return bool(np.log10(values.max() / values.min()) > decades)


LOSS_UNITS = {
    "cross-entropy": "cross-entropy (nats)",
    "squared": "squared loss",
    "logistic": "logistic loss (nats)",
}


def loss_label(loss: str) -> str:
    """An axis label for a config's `train.loss`."""
    return LOSS_UNITS.get(loss, f"{loss} loss")


def metric_label(metric: str, loss: str) -> str:
    """An axis label for a metric column: losses name the loss and its unit, errors say they
    are fractions."""
    words = metric.replace("_", " ")
    if metric.endswith("loss"):
        return f"{words}: {loss_label(loss)}"
    if metric.endswith("error"):
        return f"{words} (fraction misclassified)"
    return words
