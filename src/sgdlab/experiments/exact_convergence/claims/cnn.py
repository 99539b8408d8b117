"""The CNN study of `exact-convergence`: CNNs without skip connections, and a ResNet-18 with
them for contrast, trained on CIFAR-10 with softmax + cross-entropy and plain SGD at the
constant step 0.01 (no momentum, averaging, schedule or augmentation), measured once per epoch
(the `eval` probe; the test split plays the text's "validation" set).

The source text asks whether the ResNet-18 result of Soudry et al. (zero training error and a
training loss still falling under constant-step SGD) needs the skip connections; its answer
is three networks without them. Each claim below is one function of plain per-epoch numbers.

Per network (E the last epoch, E0 the first epoch at 0 training error, Z the epoch from
which it stays 0; the window is the epochs ≥ max(Z, E/2), the regime after interpolation):
  zero-train-error     the training error reaches 0 and is still 0 at the end (Z exists)
  loss-still-falling   over the window, and over its later half, the log-log slope of the
                       training loss is negative by more than `SIGNIFICANCE` standard errors
                       of its fit
  val-loss-rises       over the window the validation loss rises (its log slope is positive by
                       more than `SIGNIFICANCE` standard errors) while the validation error does
                       not (its change is within `SIGNIFICANCE` × the test set's sampling noise)
Across networks (the contrast the text's question needs):
  skips-zero-train-error    every net without skips interpolates, as the ResNet does
  skips-loss-still-falling  every net without skips has a falling loss after it, as the ResNet
  depth-first-zero          no degradation without skips: the deepest net without skips
                            reaches 0 training error no later than the shallowest one
A trend is judged against the scatter of its own fit (the validation error against the test
set's binomial sampling noise), and an epoch against the flicker of the run's own training
error (E0 to Z), so no tolerance here is a free number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.cnn import (
    History,
    Interpolation,
    after_interpolation,
    first_zero,
    loss_trend,
    trend,
    zero_from,
)
from ..rates import SIGNIFICANCE


def zero_error_claim(key: str, title: str, h: History, skips: bool = False) -> Claim:
    """Claim `<key>-zero-train-error` (Nacson, Srebro & Soudry 2019; the source text's
    "all training examples classified correctly by the 253rd epoch"): the training error
    reaches 0 and is still 0 at the end. Holds iff Z, the epoch from which it stays 0, exists;
    E0, the first epoch at 0 (the number the text reports), and Z are in the evidence."""
    errors = h.values["train_error"]
    e0, z = first_zero(h.epochs, errors), zero_from(h.epochs, errors)
    if z is not None:
        headline = f"first 0 at epoch {e0}, 0 from epoch {z} to the end ({h.end})"
    elif e0 is not None:
        headline = f"first 0 at epoch {e0} but {errors[-1]:.3g} at the end ({h.end})"
    else:
        headline = f"min training error {errors.min():.3g} in {h.end} epochs"
    return decide(
        f"{key}-zero-train-error",
        f"{title}: the training error reaches 0 and stays 0",
        z is not None,
        headline=headline,
        meaning=f"a CNN {'with' if skips else 'without'} skip connections interpolates its "
        "training set with plain constant-step SGD",
        first_zero_epoch=e0,
        zero_from_epoch=z,
        epochs=h.end,
        final_train_error=errors[-1],
        min_train_error=errors.min(),
        final_train_loss=h.values["train_loss"][-1],
    )


def loss_falling_claim(key: str, title: str, h: History) -> Claim:
    """Claim `<key>-loss-still-falling` (Nacson, Srebro & Soudry 2019: the loss goes to 0 with
    no floor; the text's "the slope is non-zero, negative and decreasing slowly"): after 0
    training error the training loss keeps falling. Over the window (`after_interpolation`),
    and over its later half, the least-squares slope of log₁₀ loss against log₁₀ epoch must be
    < −SIGNIFICANCE standard errors of the fit (`LossTrend`): a loss at a floor, flat up to
    noise, fails, and so does one that reached its floor within the window. Not applicable
    without a window."""
    statement = f"{title}: after 0 training error the training loss keeps falling (log-log slope < 0)"
    t, why = loss_trend(h)
    context = {"zero_from_epoch": zero_from(h.epochs, h.values["train_error"]), "epochs": h.end}
    if t is None:
        return not_applicable(f"{key}-loss-still-falling", statement, str(why), **context)
    loss = h.values["train_loss"]
    return decide(
        f"{key}-loss-still-falling",
        statement,
        t.falls,
        headline=f"log-log slope {t} over epochs {t.whole.window[0]}–{t.whole.window[1]}; "
        f"final loss {loss[-1]:.3g}",
        meaning="after interpolation the loss keeps going to 0, as in the separable linear case",
        **t.evidence(),
        significance=f"both slopes < −{SIGNIFICANCE:g} standard errors of their least-squares fits",
        loss_at_window_start=loss[h.epochs == t.whole.window[0]][0],
        final_train_loss=loss[-1],
        **context,
    )


def test_error_noise(error: float, n_test: int) -> float:
    """The standard error of the difference of two error rates near `error`, each measured on
    `n_test` test images: √(2·p(1−p)/n) (binomial sampling; a bound, since two nets measured
    on the same images disagree on fewer of them than independent samples would)."""
    return float(np.sqrt(2 * error * (1 - error) / max(n_test, 1)))


def val_loss_rises_claim(key: str, title: str, h: History, n_test: int) -> Claim:
    """Claim `<key>-val-loss-rises` (Soudry et al. 2018, Fig. 1, and the source text: "the
    validation loss starts to increase ... in contrast, the validation error slowly improves"
    / "stabilizes"): after 0 training error the validation loss grows while the validation
    error does not — overconfidence, not overfitting. Over the window (`after_interpolation`):

    - log₁₀ validation loss against log₁₀ epoch has a slope > SIGNIFICANCE standard errors;
    - the validation error's fitted change over the window (its slope against log₁₀ epoch
      times the window's width in decades) is not > SIGNIFICANCE × `test_error_noise`, the
      sampling noise of a difference of two errors on the `n_test` test images. The scatter
      between epochs cannot stand in for it: every epoch is measured on the same images.

    Not applicable without a window."""
    statement = (
        f"{title}: after 0 training error the validation loss rises while the validation error does not"
    )
    window, why = after_interpolation(h)
    context = {"zero_from_epoch": zero_from(h.epochs, h.values["train_error"]), "epochs": h.end}
    if why is not None:
        return not_applicable(f"{key}-val-loss-rises", statement, why, **context)
    loss, err = h.values["test_loss"], h.values["test_error"]
    lt = trend(h.epochs[window], loss[window], log=True)
    et = trend(h.epochs[window], err[window], log=False)
    change = et.slope * float(np.log10(et.window[1] / et.window[0]))
    noise = test_error_noise(float(err[window].mean()), n_test)
    best = int(np.argmin(loss))
    return decide(
        f"{key}-val-loss-rises",
        statement,
        lt.rises and not change > SIGNIFICANCE * noise,
        headline=f"over epochs {lt.window[0]}–{lt.window[1]}: val log-loss slope {lt}; "
        f"val error change {change:+.3f} (noise ±{noise:.3f})",
        meaning="overconfidence, not overfitting: the validation loss grows while the "
        "validation error holds or improves",
        **lt.evidence("log_val_loss_vs_log_epoch"),
        val_error_change_over_window=change,
        val_error_noise=noise,
        n_test=n_test,
        window_epochs=list(lt.window),
        significance=f"the val-loss slope > {SIGNIFICANCE:g} standard errors of its fit; the val-error "
        f"change > {SIGNIFICANCE:g} × √(2p(1−p)/n_test) would be a rise",
        val_loss_min_epoch=h.epochs[best],
        val_loss_min=loss[best],
        final_val_loss=loss[-1],
        val_error_at_window_start=err[window][0],
        final_val_error=err[-1],
        **context,
    )


def cnn_claims(key: str, title: str, h: History, n_test: int, skips: bool = False) -> list[Claim]:
    """The three claims of one network (after Nacson, Srebro & Soudry 2019, "Stochastic
    gradient descent on separable data: exact convergence with a fixed learning rate"):
    `zero_error_claim`, `loss_falling_claim`, `val_loss_rises_claim`."""
    return [
        zero_error_claim(key, title, h, skips),
        loss_falling_claim(key, title, h),
        val_loss_rises_claim(key, title, h, n_test),
    ]


def diverged_claims(key: str, title: str, h: History, why: str, skips: bool = False) -> list[Claim]:
    """The claims of a network whose run diverged (`why`: "run … diverged at step k"): plain
    SGD at lr 0.01 did not drive its loss to 0, so the first claim fails with that reason (even
    if the error touched 0 on the way), and the two about the regime after 0 training error
    are not applicable."""
    errors = h.values["train_error"]
    ended = {
        "reason": why,
        "first_zero_epoch": first_zero(h.epochs, errors) if len(errors) else None,
        "epochs_recorded": h.end,
    }
    return [
        decide(
            f"{key}-zero-train-error",
            f"{title}: the training error reaches 0 and stays 0",
            False,
            headline=why,
            meaning=f"a CNN {'with' if skips else 'without'} skip connections interpolates its "
            "training set with plain constant-step SGD",
            **ended,
        ),
        not_applicable(
            f"{key}-loss-still-falling",
            f"{title}: after 0 training error the training loss keeps falling (log-log slope < 0)",
            why,
        ),
        not_applicable(
            f"{key}-val-loss-rises",
            f"{title}: after 0 training error the validation loss rises while the validation error does not",
            why,
        ),
    ]


def _by_title(nets: list[Interpolation], value) -> dict[str, Any]:
    """{title: value(net)} over `nets`, for claim evidence."""
    return {n.title: value(n) for n in nets}


def skips_zero_error_claim(resnet: Interpolation, plain: list[Interpolation]) -> Claim:
    """Claim `skips-zero-train-error` (the source text's question about Nacson, Srebro &
    Soudry 2019 / Soudry et al. 2018: does their ResNet-18 result need the skip connections?):
    with the same data and recipe, every net without skips reaches 0 training error and stays
    there, as the ResNet does. Premise: the ResNet itself does (else there is nothing to be
    "like"); holds iff every net in `plain` has a Z. The first-zero epochs of all are in the
    evidence, as multiples of the ResNet's."""
    statement = (
        "without skip connections, every CNN reaches 0 training error and stays there, "
        f"like {resnet.title} (same data, plain SGD at lr 0.01)"
    )
    evidence: dict[str, Any] = {
        "with_skips": resnet.title,
        "first_zero_epoch": _by_title([resnet, *plain], lambda n: n.first_zero),
        "zero_from_epoch": _by_title([resnet, *plain], lambda n: n.zero_from),
        "epochs": _by_title([resnet, *plain], lambda n: n.epochs),
    }
    if resnet.zero_from is None:
        return not_applicable(
            "skips-zero-train-error",
            statement,
            f"{resnet.title} (with skips) does not end at 0 training error "
            f"({resnet.why or 'first 0: ' + resnet.epochs_at_zero()}): "
            "the reference result is not reproduced",
            **evidence,
        )
    if resnet.first_zero:
        evidence["first_zero_over_resnet"] = _by_title(
            plain, lambda n: None if n.first_zero is None else n.first_zero / resnet.first_zero
        )
    missed = [n.title for n in plain if n.zero_from is None]
    return decide(
        "skips-zero-train-error",
        statement,
        not missed,
        headline="0 training error at epoch "
        + ", ".join(f"{n.title} {n.epochs_at_zero()}" for n in plain)
        + f"; with skips: {resnet.title} {resnet.epochs_at_zero()}",
        meaning="the exact-convergence result is not a property of residual networks: "
        "plain CNNs interpolate under constant-step SGD too",
        missed=missed,
        **evidence,
    )


def skips_loss_falling_claim(resnet: Interpolation, plain: list[Interpolation]) -> Claim:
    """Claim `skips-loss-still-falling` (as `skips_zero_error_claim`): after 0 training error
    the training loss of every net without skips keeps falling (its log-log slope is below
    −SIGNIFICANCE standard errors, `loss_falling_claim`), as the ResNet's does. Premise: the
    ResNet's loss falls so; holds iff every net in `plain` has a falling trend."""
    statement = (
        "without skip connections, the training loss keeps falling after 0 training error, "
        f"as it does for {resnet.title}"
    )
    nets = [resnet, *plain]
    evidence: dict[str, Any] = {
        "with_skips": resnet.title,
        "trends": _by_title(nets, lambda n: n.loss_trend and n.loss_trend.evidence()),
        "no_trend_because": {n.title: n.why for n in nets if n.loss_trend is None},
        "significance": f"slopes < −{SIGNIFICANCE:g} standard errors of their least-squares fits, "
        "over the window after interpolation and its later half",
    }
    if resnet.loss_trend is None or not resnet.loss_trend.falls:
        why = resnet.why or f"log-log slope {resnet.loss_trend}, not below −{SIGNIFICANCE:g} s.e."
        return not_applicable(
            "skips-loss-still-falling",
            statement,
            f"{resnet.title} (with skips) has no falling loss after 0 training error ({why})",
            **evidence,
        )
    missed = [n.title for n in plain if n.loss_trend is None or not n.loss_trend.falls]
    return decide(
        "skips-loss-still-falling",
        statement,
        not missed,
        headline="log-log slope after 0 training error: "
        + ", ".join(f"{n.title} {n.loss_trend or 'none'}" for n in plain)
        + f"; with skips: {resnet.title} {resnet.loss_trend}",
        meaning="the loss goes on to 0 without skips too: no floor appears",
        missed=missed,
        **evidence,
    )


def depth_first_zero_claim(plain: list[Interpolation], resnet: Interpolation | None = None) -> Claim:
    """Claim `depth-first-zero` (the source text: "we did not observe signs of model degradation
    or vanishing gradient"; its deepest net without skips, VGG-16, reached 0 training error at
    epoch 67, AlexNet at 78, the shallow base net at 253): without skips, depth does not delay
    interpolation — the deepest net of `plain` reaches 0 training error no later than the
    shallowest.

    An epoch is known only up to the run's own flicker: the error first touches 0 at E0 and
    stays 0 from Z, so a net's interpolation epoch lies in [E0, Z]. The deep net is later
    only when its E0 comes after the shallow net's Z; where the intervals overlap the two are
    tied and the claim holds. Premise: both nets end at 0 training error (a net that never
    does is the concern of `skips-zero-train-error`). `resnet`'s epochs are context only."""
    deep = max(plain, key=lambda n: n.depth)
    shallow = min(plain, key=lambda n: n.depth)
    statement = (
        f"without skip connections, depth does not delay interpolation: {deep.title} "
        f"({deep.depth} layers) reaches 0 training error no later than {shallow.title} ({shallow.depth})"
    )
    evidence: dict[str, Any] = {
        "interval_E0_Z": _by_title([deep, shallow], lambda n: [n.first_zero, n.zero_from]),
        "depth": _by_title([deep, shallow], lambda n: n.depth),
        "rule": "deeper is later iff its E0 > the shallower's Z (overlapping [E0, Z] = tie)",
        "paper": {"VGG-16 (16 layers)": 67, "AlexNet (8)": 78, "base (4)": 253},
    }
    if resnet is not None:
        evidence["with_skips"] = {
            resnet.title: {"depth": resnet.depth, "interval_E0_Z": [resnet.first_zero, resnet.zero_from]}
        }
    if deep is shallow:
        return not_applicable("depth-first-zero", statement, "only one net without skips", **evidence)
    unset = [n.title for n in (deep, shallow) if n.zero_from is None]
    if unset:
        return not_applicable(
            "depth-first-zero", statement, f"no 0 training error at the end: {', '.join(unset)}", **evidence
        )
    assert deep.first_zero is not None and shallow.zero_from is not None
    later = deep.first_zero > shallow.zero_from
    return decide(
        "depth-first-zero",
        statement,
        not later,
        headline=f"0 training error at epoch {deep.epochs_at_zero()} ({deep.title}) vs "
        f"{shallow.epochs_at_zero()} ({shallow.title})"
        + (f"; with skips {resnet.title}: {resnet.epochs_at_zero()}" if resnet is not None else ""),
        meaning="no degradation problem: without skips the deeper net interpolates at least as "
        "fast as the shallow one, as in the text",
        **evidence,
    )


def contrast_claims(resnet: Interpolation | None, plain: list[Interpolation]) -> list[Claim]:
    """The three with/without-skips claims, or the ones the selected runs allow (`--only`):
    the skip contrasts need the ResNet and at least one net without skips, the depth claim
    two nets without skips."""
    claims = []
    if resnet is not None and plain:
        claims += [skips_zero_error_claim(resnet, plain), skips_loss_falling_claim(resnet, plain)]
    if len(plain) >= 2:
        claims.append(depth_first_zero_claim(plain, resnet))
    return claims
