"""The CNN study of `exact-convergence`: CNNs without skip connections trained on
CIFAR-10 with softmax + cross-entropy and plain SGD at the constant step 0.01 (no momentum,
averaging, schedule or augmentation), measured once per epoch (the `eval` probe; the test
split plays the text's "validation" set).

Claims per network, each decided from the per-epoch measurements:
  zero-train-error     the training error reaches 0 (first epoch E0 reported, as in the text,
                       and Z, the epoch from which it stays 0 to the end — without BN, lr 0.01
                       can still knock a few points back over for an epoch or two)
  loss-still-falling   after Z the training loss keeps falling: the least-squares slope of
                       log loss vs log epoch over the epochs ≥ max(Z, E/2) is < 0
  val-loss-rises       the validation loss has its minimum before the end (and ends ≥
                       (1 + rise_tol)× above it) while the validation error stabilizes (its
                       range over the last quarter of the epochs ≤ a stated tolerance)
The last two speak of the regime after 0 training error; where training never got there
(or got there too late to look at it) they are not applicable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import Claim, decide, not_applicable
from .rates import slope
from .settings import LR, CnnModel, CnnSettings

SERIES = ("train_loss", "train_error", "test_loss", "test_error")


def cnn_config(m: CnnModel, c: CnnSettings) -> dict[str, Any]:
    """The run config of network `m`: CIFAR-10 (subset sizes from `c`), plain SGD at the
    constant lr 0.01, reshuffled epochs of batch `c.batch_size`, and the `eval` probe once
    per epoch (train and test loss and error)."""
    data = {"name": "cifar10", **m.data}
    data.update({k: v for k, v in (("n_train", c.n_train), ("n_test", c.n_test)) if v is not None})
    cfg = {
        "seed": 0,
        "threads": c.threads,
        "data": data,
        "model": dict(m.model),
        "optim": {"name": "sgd", "lr": LR},
        "train": {"batch_size": c.batch_size, "epochs": m.epochs, "sampler": "reshuffle"},
        "probes": {"use": ["eval"], "eval": {"schedule": "epoch"}},
    }
    if c.checkpoint_steps:
        cfg["checkpoint"] = {"every_steps": c.checkpoint_steps}
    return cfg


@dataclass(frozen=True)
class History:
    """Per-epoch measurements of one run, aligned on `epochs`."""

    epochs: np.ndarray
    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, run) -> History:
        """The per-epoch train/test loss and error of a finished run."""
        epochs, _ = run.epochs("train_loss")
        return cls(epochs, {name: run.epochs(name)[1] for name in SERIES})

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each measurement as (epochs, values), the form `figures.cnn_figure` takes."""
        return {name: (self.epochs, v) for name, v in self.values.items()}


def first_zero(epochs: np.ndarray, error: np.ndarray) -> int | None:
    """The first epoch at which the error is exactly 0 (every training point classified)."""
    hit = np.flatnonzero(np.asarray(error) == 0)
    return round(float(epochs[hit[0]])) if len(hit) else None


def zero_from(epochs: np.ndarray, error: np.ndarray) -> int | None:
    """The epoch from which the error is 0 at every later epoch (None: not 0 at the end)."""
    wrong = np.flatnonzero(np.asarray(error) != 0)
    if len(wrong) and wrong[-1] == len(error) - 1:
        return None
    return round(float(epochs[wrong[-1] + 1 if len(wrong) else 0]))


def diverged_claims(key: str, title: str, h: History, why: str) -> list[Claim]:
    """The claims of a network whose run diverged (`why`: "run … diverged at step k"): plain
    SGD at lr 0.01 did not drive its loss to 0, so the first claim fails with that reason (even
    if the error touched 0 on the way), and the two about the regime after 0 training error
    are not applicable."""
    errors = h.values["train_error"]
    e0 = first_zero(h.epochs, errors) if len(errors) else None
    ended = {
        "reason": why,
        "first_zero_epoch": e0,
        "epochs_recorded": round(float(h.epochs[-1])) if len(h.epochs) else 0,
    }
    return [
        decide(
            f"{key}-zero-train-error",
            f"{title}: the training error reaches 0",
            False,
            headline=why,
            meaning="a CNN without skip connections interpolates its training "
            "set with plain constant-step SGD",
            **ended,
        ),
        not_applicable(
            f"{key}-loss-still-falling",
            f"{title}: after 0 training error the training loss keeps falling (log-log slope < 0)",
            why,
        ),
        not_applicable(
            f"{key}-val-loss-rises",
            f"{title}: the validation loss has its minimum "
            "before the end while the validation error stabilizes",
            why,
        ),
    ]


def cnn_claims(key: str, title: str, h: History, c: CnnSettings, n_test: int) -> list[Claim]:
    """The three claims of one network (after Nacson, Srebro & Soudry 2019, "Stochastic
    gradient descent on separable data: exact convergence with a fixed learning rate"):

    - `<key>-zero-train-error`: the training error reaches 0 at some epoch E0 (holds iff it
      does; E0 and Z, the epoch from which it stays 0, are reported).
    - `<key>-loss-still-falling`: over the epochs ≥ max(Z, E/2) the least-squares slope of
      log₁₀ train loss against log₁₀ epoch is < 0 (not applicable without Z or with fewer
      than 3 epochs in the window).
    - `<key>-val-loss-rises`: the validation loss has its minimum before the last epoch and
      ends ≥ (1 + `c.rise_tol`)× above it, while the validation error's range over the last
      quarter of the epochs is ≤ max(`c.stable_tol`, `c.stable_images`/`n_test`) (not
      applicable when Z is missing or falls in the last quarter)."""
    e, v = h.epochs, h.values
    end = round(float(e[-1]))
    e0, z = first_zero(e, v["train_error"]), zero_from(e, v["train_error"])
    claims = [
        decide(
            f"{key}-zero-train-error",
            f"{title}: the training error reaches 0",
            e0 is not None,
            headline=(
                f"first 0 at epoch {e0}, 0 from epoch {z}"
                if e0 is not None
                else f"min training error {v['train_error'].min():.3g} after {end} epochs"
            ),
            meaning="a CNN without skip connections interpolates its training set with "
            "plain constant-step SGD",
            first_zero_epoch=e0,
            zero_from_epoch=z,
            epochs=end,
            final_train_error=v["train_error"][-1],
            min_train_error=v["train_error"].min(),
            final_train_loss=v["train_loss"][-1],
        )
    ]
    after: dict[str, Any] = {"first_zero_epoch": e0, "zero_from_epoch": z, "epochs": end}
    never = "0 training error never reached" if e0 is None else "training error not 0 at the end"

    statement = f"{title}: after 0 training error the training loss keeps falling (log-log slope < 0)"
    start = None if z is None else max(z, end / 2)
    window = (e >= start) & (e > 0) if start is not None else np.zeros_like(e, dtype=bool)
    if window.sum() < 3:
        claims.append(
            decide(
                f"{key}-loss-still-falling",
                statement,
                None,
                **after,
                reason=never if z is None else "fewer than 3 epochs to fit after it",
            )
        )
    else:
        fitted = slope(np.log10(e[window]), np.log10(v["train_loss"][window]))
        claims.append(
            decide(
                f"{key}-loss-still-falling",
                statement,
                fitted < 0,
                headline=f"log-log slope {fitted:.3g} after epoch {start:g}; "
                f"final loss {v['train_loss'][-1]:.3g}",
                meaning="after interpolation the loss keeps going to 0, as in the separable linear case",
                slope_log_loss_vs_log_epoch=fitted,
                window_epochs=[start, end],
                loss_at_zero_from=v["train_loss"][e == z][0],
                final_train_loss=v["train_loss"][-1],
                **after,
            )
        )

    statement = (
        f"{title}: the validation loss has its minimum before the end while the validation error stabilizes"
    )
    tol = max(c.stable_tol, c.stable_images / max(n_test, 1))
    if z is None or z > 0.75 * end:
        claims.append(
            decide(
                f"{key}-val-loss-rises",
                statement,
                None,
                **after,
                reason=never if z is None else "0 training error only in the last quarter of the epochs",
            )
        )
    else:
        loss, err = v["test_loss"], v["test_error"]
        best = int(np.argmin(loss))
        rises = e[best] < end and loss[-1] >= (1 + c.rise_tol) * loss[best]
        tail = err[e >= 0.75 * end]
        spread = float(tail.max() - tail.min())
        claims.append(
            decide(
                f"{key}-val-loss-rises",
                statement,
                bool(rises and spread <= tol),
                headline=f"val loss min at epoch {e[best]:g}, ends ×{loss[-1] / loss[best]:.2g}; "
                f"val error range {spread:.3g} over the last quarter",
                meaning="overconfidence, not overfitting: the validation loss grows "
                "while the validation error settles",
                val_loss_min_epoch=e[best],
                val_loss_min=loss[best],
                final_val_loss=loss[-1],
                rise_tolerance=c.rise_tol,
                val_error_range_last_quarter=spread,
                stable_tolerance=tol,
                final_val_error=err[-1],
                **after,
            )
        )
    return claims
