"""Loss and error curves of one run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..store import Run  # noqa: E402
from .figures import loss_label, save_figure, spans_decades  # noqa: E402


def plot_curves(run: Run, path: str | Path) -> Path:
    """Two panels against epochs: the losses (log scale when they span decades; the minibatch
    loss faint behind the full-set ones) and the errors (fraction misclassified). Writes the
    PNG at `path` and an SVG beside it."""
    names = set(run.metrics.column_names)
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.8))
    if "batch_loss" in names:
        e, v = run.epochs("batch_loss")
        ax_loss.plot(e, v, color="0.75", lw=0.6, label="minibatch loss")
    for name, style in (("train_loss", "C0"), ("test_loss", "C1")):
        if name in names:
            e, v = run.epochs(name)
            ax_loss.plot(e, v, style, marker="." if len(e) < 60 else None, label=name.replace("_", " "))
    for name, style in (("train_error", "C0"), ("test_error", "C1")):
        if name in names:
            e, v = run.epochs(name)
            ax_err.plot(e, v, style, marker="." if len(e) < 60 else None, label=name.replace("_", " "))
    losses = [run.epochs(n)[1] for n in ("batch_loss", "train_loss", "test_loss") if n in names]
    if losses and all(np.nanmin(v) > 0 for v in losses if len(v)) and spans_decades(*losses, decades=1.0):
        ax_loss.set_yscale("log")
    loss_name = loss_label(run.config.train.loss)
    ax_loss.set(xlabel="epoch", ylabel=loss_name, title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (fraction misclassified)", title="error")
    if ax_err.has_data():
        ax_err.set_ylim(bottom=0)
    for ax in (ax_loss, ax_err):
        if ax.has_data():
            ax.legend(frameon=False)
        ax.grid(alpha=0.3)
    c = run.config
    fig.suptitle(
        f"{run.path.name}: {run.status} — {c.model.name} on {c.data.name}, "
        f"{c.optim.name} lr {c.optim.lr:g}, batch {c.train.batch_size}"
    )
    fig.tight_layout()
    return save_figure(fig, path)
