"""`sgdlab tune-init`'s training side (the procedure of Nonnenmacher, Reeb & Steinwart 2021,
Sect. 3, on any config whose model has an initialization scale `model.sigma`): every trial
retrained from the same θ_0 with a smaller σ on the training points less a held-out validation
split, the rule (`procedure.Procedure`) applied as the trials come, and the result written
(tune.json, tune-init.png, best.pt, best.toml). The package's docstring gives the procedure."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import torch

from ..build import build_model_seeded, resolve
from ..config import Config, config_to_toml
from ..data import Dataset, Split, build_dataset
from ..errors import ConfigError, UserError
from ..losses import get_loss, misclassified
from ..models import models
from ..papers import NONNENMACHER_2021
from ..seeding import generator
from ..store.files import save_tensors, write_json, write_text
from .procedure import Procedure, Trial, TuneResult, untrained_reason


def sigma_models() -> list[str]:
    """The registered models that have an initialization scale `model.sigma`."""
    return [e.name for e in models if "sigma" in e.options]


def check_sigma(cfg: Config) -> None:
    """The model must have an initialization scale, and it must change θ_0's effect."""
    entry = models.get(cfg.model.name, "model.name")
    if "sigma" not in entry.options:
        raise ConfigError(
            f"model.name: {cfg.model.name!r} has no initialization scale model.sigma; "
            f"tune-init needs one of {', '.join(sigma_models())}"
        )


def _effective(cfg: Config, data: Dataset, sigma: float) -> torch.Tensor:
    c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, sigma=sigma))
    model = build_model_seeded(c, data.input_shape, data.n_outputs).eval()
    with torch.no_grad():
        return model(data.train.x[:4].float())


def validation_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(training part with the held-out points as its test split, the original test split
    wrapped the same way): a seeded random `fraction` of the training points is held out."""
    n = len(data.train)
    k = round(fraction * n)
    if not 0 < k < n:
        raise UserError(
            f"--validation: {fraction:g} of {n} training points leaves no training or no validation points"
        )
    perm = torch.randperm(n, generator=generator(seed, "validation"))
    val, keep = perm[:k].sort().values, perm[k:].sort().values
    train = Split(data.train.x[keep], data.train.y[keep])
    return (
        dataclasses.replace(data, train=train, test=Split(data.train.x[val], data.train.y[val])),
        dataclasses.replace(data, train=train, test=data.test),
    )


@torch.no_grad()
def _evaluate(model: torch.nn.Module, split: Split, cfg: Config, target_kind: str) -> tuple[float, float]:
    if len(split) == 0:
        return math.nan, math.nan
    loss = get_loss(cfg.train.loss, target_kind)
    param = next(model.parameters())
    was = model.training
    model.eval()
    out = model(split.x.to(param.device, param.dtype))
    y = split.y.to(param.device)
    if y.is_floating_point():
        y = y.to(param.dtype)
    wrong = misclassified(out, y, target_kind)
    model.train(was)
    return float(loss.per_sample(out, y).double().mean()), float(
        wrong.double().mean()
    ) if wrong is not None else math.nan


def tune_init(
    config: Config,
    *,
    factor: float = 0.7,
    margin: float = 0.05,
    max_slowdown: float = 10.0,
    max_trials: int = 8,
    validation: float = 0.2,
    stop_loss: float | None = None,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Run the procedure on `config` (a Config); see the module docstring and `Procedure`.

    Every trial trains in memory from the same θ_0 draws, on the training points left after
    holding out the validation fraction, until its training loss falls below the threshold or
    it reaches its step cap (the config's own for the first trial, the budget for the others).

    Args:
        config: the run to tune; its model must have `model.sigma`, and changing σ must
            change the network at initialization (NTK parametrization or `ntk-normal` init).
        factor: σ of the next trial = factor × σ, in (0, 1).
        margin: go on only while the validation loss falls by at least this fraction.
        max_slowdown: a trial needing more than this many times the first trial's steps ends
            the sequence as impractically slow.
        max_trials: at most this many trials (σ values).
        validation: the fraction of the training set held out to choose σ by.
        stop_loss: the training loss at which a trial counts as trained (default: the config's
            `train.stop_loss`; one of the two is required).
        log: called with a line of text as each trial starts and ends.

    Returns:
        Every trial and the chosen one (`result.sigma`, `result.model`).

    Raises:
        UserError: an argument is out of range.
        ConfigError: the model has no σ, σ does not change it, or there is no loss threshold.
    """
    from .. import runner

    log = log or (lambda message: None)
    rule = Procedure(factor, margin, max_slowdown, max_trials)
    rule.check()
    for name, value, ok, allowed in (
        ("--validation", validation, 0 < validation < 1, "in (0, 1)"),
        ("--stop-loss", stop_loss, stop_loss is None or 0 < stop_loss < math.inf, "finite and > 0"),
    ):
        if not ok:  # comparisons written so that NaN fails them
            raise UserError(f"{name}: {value!r} is out of range (must be {allowed})")
    cfg = resolve(config)
    check_sigma(cfg)
    threshold = stop_loss if stop_loss is not None else cfg.train.stop_loss
    if threshold is None:
        raise ConfigError(
            "train.stop_loss: tune-init needs the loss at which training counts as done "
            "(set train.stop_loss or pass --stop-loss)"
        )
    data = build_dataset(cfg.data, cfg.seed)
    assert cfg.model.sigma is not None  # check_sigma: the model reads sigma, so resolve filled it
    sigma0 = float(cfg.model.sigma)
    if torch.equal(_effective(cfg, data, sigma0), _effective(cfg, data, sigma0 * factor)):
        raise ConfigError(
            f"model.sigma: changing it does not change {cfg.model.name!r} at "
            f"initialization (parametrization = {cfg.model.parametrization!r}, "
            f'init = {cfg.model.init!r}); use parametrization = "ntk" or init = "ntk-normal"'
        )
    train_val, train_test = validation_split(data, validation, cfg.seed)

    trials: list[Trial] = []
    nets: list[Any] = []

    def trial(sigma: float, budget: int | None) -> Trial:
        train = dataclasses.replace(cfg.train, stop_loss=threshold)
        if budget is not None:
            train = dataclasses.replace(train, epochs=None, max_steps=budget)
        c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, sigma=sigma), train=train)
        log(f"σ = {sigma:.4g}: training")
        result = runner.run(c, data=train_val)
        final = result.summary.get("final", {})
        assert result.parts is not None  # run() always returns the parts it trained
        model = result.parts.model
        test_loss, test_error = _evaluate(model, train_test.test, c, data.target_kind)
        t = Trial(
            sigma,
            result.status,
            int(result.summary["steps"]),
            str(result.summary["stop_reason"]),
            float(final.get("train_loss", math.nan)),
            float(final.get("test_loss", math.nan)),
            float(final.get("test_error", math.nan)),
            test_loss,
            test_error,
            result.status == "completed" and result.summary["stop_reason"] == "stop_loss",
        )
        log(f"σ = {sigma:.4g}: {t.steps} steps ({t.stop_reason}), validation loss {t.val_loss:.4g}")
        trials.append(t)
        nets.append(model)
        return t

    first = trial(sigma0, None)
    budget = rule.budget(first.steps)
    if not first.practical:
        reason = untrained_reason(sigma0, threshold)
    else:
        reason = f"reached --max-trials {max_trials}"
        sigma = sigma0
        while len(trials) < max_trials:
            sigma *= factor
            previous = trials[-1]
            why = rule.stop_reason(previous, trial(sigma, budget), budget, threshold)
            if why is not None:
                reason = why
                break
    chosen = rule.choose(trials)
    return TuneResult(trials, chosen, reason, budget, nets[chosen])


def write(result: TuneResult, out: Path, cfg: Config) -> list[Path]:
    """tune.json, tune-init.png, best.pt and best.toml in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = resolve(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, sigma=result.sigma)))
    write_json(out / "tune.json", result.as_dict())
    write_text(out / "best.toml", config_to_toml(chosen))
    save_tensors(out / "best.pt", {k: v.detach().cpu() for k, v in result.model.state_dict().items()})
    return [out / "tune.json", figure(result, out / "tune-init.png"), out / "best.pt", out / "best.toml"]


def figure(result: TuneResult, path: Path) -> Path:
    """tune-init.png: each trial's validation and test loss against σ (the choice marked),
    and its steps to the loss threshold against the step budget (too-slow trials crossed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.trials
    sigmas = [x.sigma for x in t]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(sigmas, [x.val_loss for x in t], "o-", label="validation loss (chooses)")
    left.plot(sigmas, [x.test_loss for x in t], "s--", label="test loss (reported)")
    left.axvline(result.sigma, color="0.5", ls=":", label=f"chosen σ = {result.sigma:.3g}")
    left.set(
        xscale="log",
        yscale="log",
        xlabel="initialization scale σ",
        ylabel="loss",
        title="loss of each trial (same θ_0 draws)",
    )
    right.plot(sigmas, [x.steps for x in t], "o-", color="C2", label="steps to the loss threshold")
    right.axhline(result.budget, color="C3", ls=":", label=f"step budget {result.budget}")
    for x in t:
        if not x.practical:
            right.plot([x.sigma], [x.steps], "x", color="C3", ms=10)
    right.set(
        xscale="log",
        xlabel="initialization scale σ",
        ylabel="training steps",
        title="cost of each trial (× = too slow)",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle(f"tune-init: {result.reason} — procedure of {NONNENMACHER_2021.short}, Sect. 3", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
