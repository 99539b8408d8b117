"""The linear study of `exact-convergence`: logistic regression on separable data, trained by
GD and SGD with fixed steps, measured on log-spaced steps, and the claims of the theory
(Soudry et al. 2018, Thm 3; Nacson et al. 2019, Thm 1) decided from the measurements:

    L(t)/L(10t) → 10                 (L = O(1/t); the constant is ‖ŵ‖²/(ηt) for GD)
    ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10     (w(t) = ŵ·ln t + O(1))
    ‖w/‖w‖ − ŵ/‖ŵ‖‖ falls, and ·ln t stays bounded   (O(1/ln t))
    min_n y_n wᵀx_n/‖w‖ rises toward 1/‖ŵ‖
    SGD with a fixed step has no loss floor: its loss keeps falling by a factor per decade.

ŵ is the hard-margin SVM of the very float64 points trained on (exact NNLS solver); for the
constructed set it is also checked against the ŵ the construction put in.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...build import resolve
from ...config import load_config
from ...data import build_dataset
from ...data.separable import hard_margin_svm
from ..base import Claim, decide
from .logistic import RunSpec, signed_inputs, train_logistic
from .rates import (
    at,
    decade_factor,
    decade_increment,
    last_decades,
    log_exponent,
    log_steps,
)
from .settings import LinearSettings

METRICS = ("loss", "w_norm", "direction_error", "margin", "train_error")


@dataclass
class SeparableSet:
    """A separable training set as the linear study uses it: signed inputs x̃_n = y_n x_n,
    its hard-margin SVM vector ŵ, and how ŵ was checked (minimum margin, support vectors,
    direction error against the constructed ŵ)."""

    name: str
    x: torch.Tensor  # signed inputs y_n·x_n, [N, dim], float64
    w_hat: torch.Tensor  # the max-margin vector, float64
    check: dict[str, float]  # how ŵ was verified


def load_set(name: str, options: dict[str, Any], s: LinearSettings) -> SeparableSet:
    """Dataset `name` as registered (scaled into the unit ball), in float64, with its ŵ."""
    raw = {
        "seed": s.data_seed,
        "data": {
            "name": name,
            "n_train": s.n,
            "n_test": 0,
            "dim": s.dim,
            "normalize": "unit-ball",
            **options,
        },
    }
    data = build_dataset(resolve(load_config(raw=raw)).data, s.data_seed)
    x, y = data.train.x.to(torch.float64), data.train.y.to(torch.float64) * 2 - 1
    w_hat = torch.from_numpy(hard_margin_svm(x, y))
    xs = signed_inputs(x, y)
    margins = xs @ w_hat
    check = {"min_margin": float(margins.min()), "support_vectors": int((margins < 1 + 1e-9).sum())}
    built = data.meta.get("w_hat")
    if built is not None:  # the constructed ŵ, up to the unit-ball scale and float32 inputs
        u = built.to(torch.float64) / built.norm()
        check["direction_vs_constructed"] = float((w_hat / w_hat.norm() - u).norm())
    return SeparableSet(name, xs, w_hat, check)


def run_grid(s: LinearSettings) -> list[RunSpec]:
    """GD at every lr, then SGD at every lr × seed (seeds shared across lrs)."""
    return [RunSpec("gd", lr) for lr in s.lrs] + [
        RunSpec("sgd", lr, s.sgd_batch, seed) for lr in s.lrs for seed in range(s.sgd_seeds)
    ]


def measure(x: torch.Tensor, w_hat: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
    """The recorded quantities of weights `w` [..., dim] on signed inputs `x` [N, dim]."""
    margins = w @ x.T
    norm = w.norm(dim=-1)
    u = w_hat / w_hat.norm()
    return {
        "loss": torch.nn.functional.softplus(-margins).mean(dim=-1),
        "w_norm": norm,
        "direction_error": (w / norm[..., None] - u).norm(dim=-1),
        "margin": margins.min(dim=-1).values / norm,
        "train_error": (margins <= 0).to(torch.float64).mean(dim=-1),
    }


def simulate(s: LinearSettings) -> tuple[dict[str, np.ndarray], list[SeparableSet]]:
    """Train the grid on every set; the long table (one row per dataset × run × step)."""
    sets = [load_set(name, options, s) for name, options in s.datasets]
    dims = {tuple(d.x.shape) for d in sets}
    if len(dims) != 1:
        raise ValueError(f"the linear sets must share (n, dim) to train together, got {dims}")
    runs = run_grid(s)
    traj = train_logistic(torch.stack([d.x for d in sets]), runs, s.steps, log_steps(s.steps, s.per_decade))
    columns: dict[str, list] = {
        k: [] for k in ("dataset", "method", "lr", "batch_size", "seed", "step", *METRICS)
    }
    for i, data in enumerate(sets):
        for r, spec in enumerate(runs):
            values = measure(data.x, data.w_hat, traj.weights[:, i, r])
            k = len(traj.steps)
            columns["dataset"] += [data.name] * k
            columns["method"] += [spec.method] * k
            columns["lr"] += [spec.lr] * k
            columns["batch_size"] += [spec.batch_size if spec.method == "sgd" else s.n] * k
            columns["seed"] += [spec.seed] * k
            columns["step"] += traj.steps.tolist()
            for name in METRICS:
                columns[name] += values[name].tolist()
    return {k: np.asarray(v) for k, v in columns.items()}, sets


def set_table(sets: list[SeparableSet]) -> dict[str, np.ndarray]:
    """One row per dataset: its name, n, dim, ‖ŵ‖ and the checks on ŵ (tables/linear_sets)."""
    keys = sorted({k for d in sets for k in d.check})
    return {
        "dataset": np.asarray([d.name for d in sets]),
        "n": np.asarray([d.x.shape[0] for d in sets]),
        "dim": np.asarray([d.x.shape[1] for d in sets]),
        "w_hat_norm": np.asarray([float(d.w_hat.norm()) for d in sets]),
        **{k: np.asarray([d.check.get(k, np.nan) for d in sets], dtype=np.float64) for k in keys},
    }


# ---------------------------------------------------------------------------------------
# Curves and claims


@dataclass(frozen=True)
class Curve:
    """One group's curves: a GD run, or the per-step median over the seeds of SGD runs."""

    dataset: str
    method: str
    lr: float
    w_hat_norm: float
    t: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def key(self) -> str:
        """`dataset/method/lr=η`: the group's name in claim evidence."""
        return f"{self.dataset}/{self.method}/lr={self.lr:g}"


def select(table: dict[str, np.ndarray], **where: Any) -> np.ndarray:
    """Boolean row mask of `table` where every column named in `where` equals its value."""
    keep = np.ones(len(table["step"]), dtype=bool)
    for column, value in where.items():
        keep &= table[column] == value
    return keep


def curves(table: dict[str, np.ndarray], sets: dict[str, np.ndarray]) -> list[Curve]:
    """One `Curve` per (dataset, method, lr) in the long table: the GD run itself, or for SGD
    the per-step median over seeds of each metric."""
    out = []
    norms = dict(zip(sets["dataset"].tolist(), sets["w_hat_norm"].tolist(), strict=True))
    for dataset in dict.fromkeys(table["dataset"].tolist()):
        for method in ("gd", "sgd"):
            for lr in sorted(set(table["lr"][select(table, dataset=dataset, method=method)].tolist())):
                rows = select(table, dataset=dataset, method=method, lr=lr)
                t = np.unique(table["step"][rows])
                values = {}
                for name in METRICS:
                    per_seed = [
                        table[name][rows & (table["seed"] == seed)] for seed in np.unique(table["seed"][rows])
                    ]
                    values[name] = np.median(np.stack(per_seed), axis=0)
                out.append(Curve(dataset, method, lr, norms[dataset], t, values))
    return out


def grouped(claim_id: str, statement: str, groups: dict[str, dict[str, Any]], **context: Any) -> Claim:
    """A claim that holds when every group's "ok" does; the evidence lists each measure as
    {group: value} and names the failing groups."""
    failing = [g for g, v in groups.items() if not v["ok"]]
    measures: dict[str, Any] = {
        m: {g: v[m] for g, v in groups.items()} for m in next(iter(groups.values())) if m != "ok"
    }
    return decide(claim_id, statement, not failing, **context, **measures, failing=failing)


def span(values: list[float], fmt: str = ".3g") -> str:
    """The range of `values` as "lo–hi" (one number when both ends agree to the format)."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def decade_points(s: LinearSettings) -> list[float]:
    """The steps the claims read: the ends of the last `window` decades, T/10^window … T."""
    return [s.steps / 10.0**j for j in range(s.window, -1, -1)]


def loss_rate_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-loss-rate` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data", Thm 3; Nacson, Srebro & Soudry 2019): the logistic loss
    falls as 1/t, so loss(t)/loss(10t) → 10.

    Per curve, the factor per decade is 10^(−slope) of a log-log least-squares fit over each
    of the last `s.window` decades; the claim holds when on the last decade
    |factor/10 − 1| ≤ `s.tol_factor` for every curve. Also reported: loss·η·t/‖ŵ‖², which
    tends to 1 for GD."""
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        factors = [decade_factor(c.t, c.values["loss"], start) for start in last_decades(s.steps, s.window)]
        loss_end = at(c.t, c.values["loss"], s.steps)
        groups[c.key] = {
            "factor_per_decade": factors,
            "loss_eta_t_over_w_hat_sq": loss_end * c.lr * s.steps / c.w_hat_norm**2,
            "ok": abs(factors[-1] / 10 - 1) <= s.tol_factor,
        }
    return grouped(
        "linear-loss-rate",
        "logistic loss on separable data falls as 1/t: loss(t)/loss(10t) → 10 (GD and SGD, fixed step)",
        groups,
        headline=f"loss(t)/loss(10t) = {span([g['factor_per_decade'][-1] for g in groups.values()])} "
        "over the last decade (theory: 10)",
        meaning="Soudry et al. 2018 / Nacson et al. 2019: on separable data the loss "
        "of a fixed-step method goes to 0 like 1/t, with no floor",
        target=10.0,
        decades=last_decades(s.steps, s.window),
        tolerance=f"|factor/10 − 1| ≤ {s.tol_factor} on the last decade",
        note="a factor per decade is 10^(−slope) of a log-log least-squares fit over "
        "it; SGD = median over seeds; loss·η·t/‖ŵ‖² → 1 is the theory's constant",
    )


def norm_growth_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-norm-growth` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data"): w(t) = ŵ ln t + O(1), so ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10.

    The increment per decade is the slope of ‖w‖ against log₁₀ t over the decade; the claim
    holds when on the last decade |increment/(‖ŵ‖ ln 10) − 1| ≤ `s.tol_norm` for every curve."""
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        target = c.w_hat_norm * np.log(10)
        inc = [decade_increment(c.t, c.values["w_norm"], start) for start in last_decades(s.steps, s.window)]
        groups[c.key] = {
            "increment_per_decade": inc,
            "w_hat_norm_ln10": target,
            "last_ratio": inc[-1] / target,
            "ok": abs(inc[-1] / target - 1) <= s.tol_norm,
        }
    return grouped(
        "linear-norm-growth",
        "‖w‖ grows like ‖ŵ‖·ln t: ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10",
        groups,
        decades=last_decades(s.steps, s.window),
        headline=f"growth per decade / (‖ŵ‖ ln 10) = "
        f"{span([g['last_ratio'] for g in groups.values()])} (theory: 1)",
        meaning="the weights diverge logarithmically, in the direction of the max-margin vector ŵ",
        tolerance=f"|increment/(‖ŵ‖ ln 10) − 1| ≤ {s.tol_norm} on the last decade",
    )


def direction_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-direction` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data"): the direction error e(t) = ‖w/‖w‖ − ŵ/‖ŵ‖‖ is O(1/ln t).

    Read at the ends of the last `s.window` decades; holds for a curve when e falls from
    each point to the next and e·ln t grows by at most `s.tol_direction` (relative) over
    the last decade. Also reported: the exponent a of a fit e ≈ c·(ln t)^(−a) (a ≥ 1 means
    bounded e·ln t)."""
    points = decade_points(s)
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        err = [at(c.t, c.values["direction_error"], p) for p in points]
        scaled = [e * np.log(p) for e, p in zip(err, points, strict=True)]
        growth = scaled[-1] / scaled[-2] - 1
        groups[c.key] = {
            "error": err,
            "error_times_ln_t": scaled,
            "last_decade_growth": growth,
            "exponent_a": log_exponent(c.t, c.values["direction_error"], points[0], points[-1]),
            "ok": bool(np.all(np.diff(err) < 0)) and growth <= s.tol_direction,
        }
    return grouped(
        "linear-direction",
        "w/‖w‖ → ŵ/‖ŵ‖: the direction error falls and (direction error)·ln t stays bounded (O(1/ln t))",
        groups,
        steps=points,
        headline=f"error ~ (ln t)^−a with a = {span([g['exponent_a'] for g in groups.values()])} "
        "(bounded ⇔ a ≥ 1)",
        meaning="the implicit bias: the direction converges to the hard-margin SVM, slowly (as 1/ln t)",
        tolerance=f"error decreasing at these steps and err·ln t growing by ≤ "
        f"{s.tol_direction:.0%} over the last decade",
        growth_if_error_did_not_fall=np.log(points[-1]) / np.log(points[-2]) - 1,
        note="exponent_a: err ~ (ln t)^(−a) fitted over these steps (a ≥ 1: bounded)",
    )


def margin_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-margin` (Soudry et al. 2018, "The implicit bias of gradient descent
    on separable data"): the normalized margin min_n y_n wᵀx_n/‖w‖ rises toward the max
    margin 1/‖ŵ‖.

    Holds for a curve when margin·‖ŵ‖ increases from each decade end to the next and
    0 < margin·‖ŵ‖ ≤ 1 (+1e-9) at the last step."""
    points = decade_points(s)
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        ratio = [at(c.t, c.values["margin"], p) * c.w_hat_norm for p in points]
        groups[c.key] = {
            "margin_times_w_hat_norm": ratio,
            "ok": bool(np.all(np.diff(ratio) > 0)) and 0 < ratio[-1] <= 1 + 1e-9,
        }
    return grouped(
        "linear-margin",
        "the normalized margin min_n y_n wᵀx_n/‖w‖ rises toward the max margin 1/‖ŵ‖",
        groups,
        steps=points,
        headline=f"margin·‖ŵ‖ at the end = "
        f"{span([g['margin_times_w_hat_norm'][-1] for g in groups.values()])} (limit 1)",
        meaning="the classifier's margin approaches the largest possible one",
        tolerance="rising at these steps and 0 < margin·‖ŵ‖ ≤ 1 (+1e-9) at the end",
    )


def run_keys(table: dict[str, np.ndarray]) -> list[tuple[str, str, float, int]]:
    """(dataset, method, lr, seed) of every run in the table, in table order."""
    keys = zip(
        table["dataset"].tolist(),
        table["method"].tolist(),
        table["lr"].tolist(),
        table["seed"].tolist(),
        strict=True,
    )
    return list(dict.fromkeys(keys))


def zero_error_claim(table: dict[str, np.ndarray], s: LinearSettings) -> Claim:
    """Every run's training error is 0 from some recorded step on, and has been for at least
    the last decade (SGD may misclassify a point again early on)."""
    latest: dict[str, float] = {}
    for dataset, method, lr, seed in run_keys(table):
        rows = select(table, dataset=dataset, method=method, lr=lr, seed=seed)
        err, steps = table["train_error"][rows], table["step"][rows]
        wrong = np.flatnonzero(err != 0)
        if not len(wrong):
            since = float(steps[0])
        elif wrong[-1] + 1 < len(steps):
            since = float(steps[wrong[-1] + 1])
        else:
            since = np.inf
        latest[dataset] = max(latest.get(dataset, 0.0), since)
    return decide(
        "linear-zero-error",
        "the training error reaches 0 and stays 0 (every run)",
        all(v <= s.steps / 10 for v in latest.values()),
        headline="0 from step " + ", ".join(f"{v:,.0f} ({k})" for k, v in latest.items()),
        meaning="every fixed-step run separates the data and keeps it separated",
        zero_from_step=latest,
        steps=s.steps,
        runs=len(run_keys(table)),
        tolerance="0 at every recorded step of at least the last decade",
        note="per dataset, the latest step over its runs from which the training "
        "error is 0 at every recorded step (inf: not 0 at the end)",
    )


def sgd_floor_claim(table: dict[str, np.ndarray], s: LinearSettings) -> Claim:
    """Claim `linear-sgd-no-floor` (Nacson, Srebro & Soudry 2019, "Stochastic gradient
    descent on separable data: exact convergence with a fixed learning rate"): fixed-step
    SGD has no loss floor.

    For every SGD seed and each of the last `s.window` decades, the loss factor per decade
    (as in `loss_rate_claim`); holds when the smallest, per dataset and lr, is
    ≥ `s.sgd_min_factor` (a floor would give factors → 1). Not applicable without SGD runs."""
    rows = select(table, method="sgd")
    if not rows.any():
        return decide(
            "linear-sgd-no-floor", "SGD with a fixed step has no loss floor", None, reason="no SGD runs"
        )
    worst: dict[str, float] = {}
    for dataset in dict.fromkeys(table["dataset"][rows].tolist()):
        for lr in sorted(set(table["lr"][rows].tolist())):
            group = rows & select(table, dataset=dataset, lr=lr)
            factors = [
                decade_factor(
                    table["step"][group & (table["seed"] == seed)],
                    table["loss"][group & (table["seed"] == seed)],
                    start,
                )
                for seed in np.unique(table["seed"][group])
                for start in last_decades(s.steps, s.window)
            ]
            worst[f"{dataset}/sgd/lr={lr:g}"] = float(np.min(factors))
    return decide(
        "linear-sgd-no-floor",
        "SGD with a fixed step has no loss floor: its loss keeps falling by a factor per decade",
        all(v >= s.sgd_min_factor for v in worst.values()),
        headline=f"smallest loss factor per decade over all seeds {min(worst.values()):.3g} "
        f"(a floor gives 1; needs ≥ {s.sgd_min_factor:g})",
        meaning="Nacson et al. 2019: constant-step SGD converges exactly, unlike the "
        "classical O(η) floor for non-separable problems",
        min_factor_per_decade=worst,
        decades=last_decades(s.steps, s.window),
        tolerance=f"every seed's factor ≥ {s.sgd_min_factor} on each of the last "
        f"{s.window} decades (a floor gives → 1)",
        seeds=len(np.unique(table["seed"][rows])),
    )


def linear_claims(
    table: dict[str, np.ndarray], sets: dict[str, np.ndarray], s: LinearSettings
) -> list[Claim]:
    """The linear study's six claims, in report order: zero training error, the 1/t loss
    rate, ‖w‖ ~ ‖ŵ‖ ln t, the O(1/ln t) direction error, the rising margin and SGD's missing
    loss floor."""
    cs = curves(table, sets)
    return [
        zero_error_claim(table, s),
        loss_rate_claim(cs, s),
        norm_growth_claim(cs, s),
        direction_claim(cs, s),
        margin_claim(cs, s),
        sgd_floor_claim(table, s),
    ]


def settings_record(s: LinearSettings) -> dict[str, Any]:
    """What decides the linear table (a change means simulating again), as plain JSON values."""
    record = {k: v for k, v in dataclasses.asdict(s).items() if not k.startswith(("tol", "sgd_min"))}
    return json.loads(json.dumps(record))
