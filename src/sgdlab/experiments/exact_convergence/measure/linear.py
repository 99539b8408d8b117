"""The linear study's measurements: logistic regression on separable data (the datasets and
their max-margin vector ŵ), trained by GD and SGD with fixed steps as batched float64 runs
(`logistic`), recorded on log-spaced steps as one long table (one row per dataset × run × step),
and read back as one `Curve` per (dataset, method, lr) for the claims and the figures.

ŵ is the hard-margin SVM of the very float64 points trained on (exact NNLS solver); for the
constructed set it is also checked against the ŵ the construction put in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ....build import resolve
from ....config import load_config
from ....data import build_dataset
from ....data.separable import hard_margin_svm
from ....stats import Estimate
from ..logistic import RunSpec, signed_inputs, train_logistic
from ..rates import log_steps
from ..settings import LinearSettings

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


def weight_measures(x: torch.Tensor, w_hat: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
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
            values = weight_measures(data.x, data.w_hat, traj.weights[:, i, r])
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


@dataclass(frozen=True)
class Curve:
    """One group's curves: a GD run, or SGD runs over seeds. `values` holds the per-step
    median over the runs (what the figures draw), `runs` every run's own values
    ([runs, steps]), from which the claims take a statistic per run and its spread."""

    dataset: str
    method: str
    lr: float
    w_hat_norm: float
    t: np.ndarray
    values: dict[str, np.ndarray]
    runs: dict[str, np.ndarray]

    @property
    def key(self) -> str:
        """`dataset/method/lr=η`: the group's name in claim evidence."""
        return f"{self.dataset}/{self.method}/lr={self.lr:g}"

    def estimate(self, runs: np.ndarray, statistic: Callable[..., float], *args: float) -> Estimate:
        """`statistic(t, y, *args)` of every run's row y of `runs` ([runs, steps], a metric of
        `self.runs` or a function of them): their median and its standard error."""
        return Estimate.of([statistic(self.t, y, *args) for y in runs])


def select(table: dict[str, np.ndarray], **where: Any) -> np.ndarray:
    """Boolean row mask of `table` where every column named in `where` equals its value."""
    keep = np.ones(len(table["step"]), dtype=bool)
    for column, value in where.items():
        keep &= table[column] == value
    return keep


def curves(table: dict[str, np.ndarray], sets: dict[str, np.ndarray]) -> list[Curve]:
    """One `Curve` per (dataset, method, lr) in the long table: the GD run itself, or the SGD
    runs of every seed (with their per-step median)."""
    out = []
    norms = dict(zip(sets["dataset"].tolist(), sets["w_hat_norm"].tolist(), strict=True))
    for dataset in dict.fromkeys(table["dataset"].tolist()):
        for method in ("gd", "sgd"):
            for lr in sorted(set(table["lr"][select(table, dataset=dataset, method=method)].tolist())):
                rows = select(table, dataset=dataset, method=method, lr=lr)
                t = np.unique(table["step"][rows])
                seeds = np.unique(table["seed"][rows])
                runs = {
                    name: np.stack([table[name][rows & (table["seed"] == seed)] for seed in seeds])
                    for name in METRICS
                }
                values = {name: np.median(v, axis=0) for name, v in runs.items()}
                out.append(Curve(dataset, method, lr, norms[dataset], t, values, runs))
    return out


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
