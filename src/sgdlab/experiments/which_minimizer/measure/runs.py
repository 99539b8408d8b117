"""What `which-minimizer` measures on its trained runs, from their saved θ_0 and θ_final only:

  per run       the trained outputs f_T on the training, test and validation points, steps,
                stop reason, final training loss, whether the full-batch training loss fell
                monotonically
  per θ_0       the closed-form GD limit of the linearized net (`sgdlab.ntk.closed_form`):
                its interpolating part Θ̂(x,X)Θ̂⁻¹Y and initialization part on the test points
  σ runs        how far the kernel moved in training, ‖Θ̂(θ_T) − Θ̂(θ_0)‖_F/‖Θ̂(θ_0)‖_F on the
                training points (the lazy regime Thm 3.1 assumes keeps it small)
  example1      on one training point, the GD limit and the AdaGrad (sign kernel) limit at θ_0
                on the test points (`sgdlab.ntk.sign_kernel_limit`)
  later runs    the closed-form limit linearized at a later iterate θ_T, T the earliest saved
                iterate from which Θ̂ changes by at most `kernel_tol` (relative, Frobenius) to
                the end of training (Sect. 6 of the paper)

Tables (DIR/tables): runs.parquet (one row per run, vectors as list columns) and
targets.parquet (the test and validation labels per dataset, training-set size and seed: the
data subset is drawn with the run seed, so init i also has its own train/test/validation
split, shared by every setting of that init). The data of every run holds `n_test` test points
followed by `n_val` validation points; closed forms are computed on the test points only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ....build import build_model_seeded, resolve
from ....ntk import SingularKernel, closed_form, empirical_ntk, relative_change, sign_kernel_limit
from ....store import Run, RunDir
from ....store.files import write_parquet
from ...base import Lab
from ..configs import Spec
from ..settings import Settings
from ..steps import monotone


@dataclass
class Problem:
    """The data one group of runs trains on (float32 as in training; labels as float64): the
    run's test split cut into the test points and the validation points after them."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    input_shape: tuple[int, ...]


def _problem(raw: dict[str, Any], n_test: int, cache: dict[str, Problem]) -> Problem:
    # The subset is drawn with the run seed unless data.seed is set: the seed is part of the key.
    key = json.dumps(
        [raw["data"], raw["data"].get("seed", raw["seed"]), raw.get("dtype", "float32")], sort_keys=True
    )
    if key not in cache:
        from .... import runner

        parts = runner.prepare(raw)
        d = parts.data
        x, y = d.test.x, d.test.y
        cache[key] = Problem(
            d.train.x, d.train.y, x[:n_test], y[:n_test], x[n_test:], y[n_test:], d.input_shape
        )
    return cache[key]


def _model(run: Run, problem: Problem, state: str) -> torch.nn.Module:
    cfg = resolve(run.config)
    model = build_model_seeded(cfg, problem.input_shape, 1).to(getattr(torch, cfg.dtype))
    model.load_state_dict(run.checkpoint(state))
    return model.eval()


@torch.no_grad()
def _outputs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    return model(x).reshape(-1).double().numpy()


def _theta0_key(spec: Spec) -> tuple:
    return (spec.dataset, spec.arch.key, spec.sigma, spec.seed, spec.n_train)


def _one_point_limits(
    run: Run, problem: Problem, key: tuple, cache: dict[tuple, dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Example 1 at the run's θ_0 (`key`; the same for GD and AdaGrad, so computed once): the
    sign-kernel (AdaGrad) and GD limits on the test points."""
    if key not in cache:
        init = _model(run, problem, "init.pt")
        sign, gd = sign_kernel_limit(init, problem.x_train, problem.y_train, problem.x_test)
        cache[key] = {"sign_limit": sign.numpy(), "gd_limit": gd.numpy()}
    return cache[key]


def later_linearization(
    run: Run, model: torch.nn.Module, problem: Problem, kernel_tol: float
) -> dict[str, Any]:
    """The closed-form limit linearized at θ_T (see the module docstring) on the test points."""
    iterates = RunDir(run.path).iterates()
    thetas = [(step, torch.load(path, weights_only=True)) for step, path in iterates]
    end = thetas[-1][1]
    x, y, xt = problem.x_train, problem.y_train, problem.x_test
    k_end = empirical_ntk(model, x, theta=end)
    changes: dict[int, float] = {}

    def change(i: int) -> float:
        if i not in changes:
            changes[i] = relative_change(empirical_ntk(model, x, theta=thetas[i][1]), k_end)
        return changes[i]

    lo, hi = 0, len(thetas) - 1  # earliest i with change(i) ≤ tol, the change taken as monotone
    while lo < hi:
        mid = (lo + hi) // 2
        if change(mid) <= kernel_tol:
            hi = mid
        else:
            lo = mid + 1
    step, theta_t = thetas[lo]
    try:
        prediction = closed_form(model, x, y, xt, theta=theta_t).limit().total.numpy()
    except SingularKernel:  # dead units: recorded as missing, and the claims say so
        prediction = None
    return {
        "later_step": step,
        "later_fraction": step / max(thetas[-1][0], 1),
        "later_kernel_change": change(lo),
        "kernel_change_from_init": change(0),
        "later_prediction": prediction,
    }


def measure_runs(
    lab: Lab, s: Settings, specs: dict[str, Spec], runs: dict[str, Run]
) -> dict[str, np.ndarray]:
    """One row per run in `runs` (and its spec), written to tables/runs.parquet."""
    problems: dict[str, Problem] = {}
    limits: dict[tuple, dict[str, np.ndarray]] = {}
    closed: dict[tuple, tuple[np.ndarray | None, np.ndarray | None, float, str]] = {}
    kernels: dict[tuple, torch.Tensor] = {}  # Θ̂(X, X) at θ_0, for the lazy-regime premise
    rows: list[dict[str, Any]] = []
    targets: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for name, run in runs.items():
        spec = specs[name]
        problem = _problem(spec.config, s.n_test, problems)
        targets[(spec.dataset, spec.n_train, spec.seed)] = (
            problem.y_test.double().numpy(),
            problem.y_val.double().numpy(),
        )
        key = _theta0_key(spec)
        if spec.part == "trial":  # the procedure's trials need no closed form
            closed.setdefault(key, (None, None, np.nan, ""))
        if key not in closed:
            init = _model(run, problem, "init.pt")
            try:
                cf = closed_form(init, problem.x_train, problem.y_train, problem.x_test)
                kernels[key] = cf.k_train_train
                pred = cf.limit()
                closed[key] = (
                    pred.interpolating.numpy(),
                    pred.initialization.numpy(),
                    cf.solver.condition,
                    "",
                )
            except SingularKernel as exc:  # e.g. a narrow net with a training input all units ignore
                closed[key] = (None, None, np.nan, str(exc))
        interp, init_part, condition, singular = closed[key]
        losses = (
            run.metrics["batch_loss"].to_numpy(zero_copy_only=False)
            if "batch_loss" in run.metrics.column_names
            else np.array([])
        )
        row: dict[str, Any] = {
            "name": name,
            "part": spec.part,
            "dataset": spec.dataset,
            "arch": spec.arch.key,
            "depth": spec.arch.depth,
            "width": spec.arch.widths[0],
            "sigma": spec.sigma,
            "seed": spec.seed,
            "optimizer": spec.optimizer,
            "batch": spec.batch,
            "sampler": spec.sampler,
            "n_train": spec.n_train,
            "lr": spec.lr,
            "status": run.status,
            "steps": int(run.summary.get("steps", 0)),
            "stop_reason": str(run.summary.get("stop_reason")),
            "final_train_loss": float(run.final.get("train_loss", np.nan)),
            "final_train_error": float(run.final.get("train_error", np.nan)),
            "monotone": bool(spec.batch == spec.n_train and monotone(losses, s.search.tol)),
            "condition": condition,
            "singular_kernel": singular,
            "interpolating": interp,
            "initialization": init_part,
        }
        if run.status == "completed" and row["final_train_loss"] < s.stop_loss:
            final = _model(run, problem, "final.pt")
            row["f_train"] = _outputs(final, problem.x_train)
            row["f_test"] = _outputs(final, problem.x_test)
            row["f_val"] = _outputs(final, problem.x_val)
            if spec.part == "sigma" and key in kernels:
                row["kernel_change"] = relative_change(empirical_ntk(final, problem.x_train), kernels[key])
            if spec.part == "later" and spec.optimizer == "gd":
                row.update(later_linearization(run, final, problem, s.later.kernel_tol))
        if spec.part == "example1":
            row.update(_one_point_limits(run, problem, key, limits))
        rows.append(row)
    table = _rows_to_columns(rows)
    _save(lab, "runs", table)
    _save(
        lab,
        "targets",
        {
            "dataset": [k[0] for k in targets],
            "n_train": [k[1] for k in targets],
            "seed": [k[2] for k in targets],
            "y_test": [v[0] for v in targets.values()],
            "y_val": [v[1] for v in targets.values()],
        },
    )
    return load(lab)


def _rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return {c: [r.get(c) for r in rows] for c in columns}


def _save(lab: Lab, name: str, columns: dict[str, list]) -> None:
    arrays = {}
    for col, values in columns.items():
        if any(isinstance(v, np.ndarray) for v in values):
            arrays[col] = pa.array(
                [None if v is None else np.asarray(v, dtype=np.float64).tolist() for v in values],
                type=pa.list_(pa.float64()),
            )
        else:
            arrays[col] = pa.array(values)
    write_parquet(lab.out / "tables" / f"{name}.parquet", pa.table(arrays))


def read(lab: Lab, name: str) -> dict[str, np.ndarray]:
    """A table written by `measure`, list columns as object arrays of float64 vectors."""
    table = pq.read_table(lab.out / "tables" / f"{name}.parquet")
    out = {}
    for col in table.column_names:
        if pa.types.is_list(table[col].type):
            out[col] = np.array(
                [None if v is None else np.asarray(v) for v in table[col].to_pylist()], dtype=object
            )
        else:
            out[col] = table[col].to_numpy(zero_copy_only=False)
    return out


def load(lab: Lab) -> dict[str, np.ndarray]:
    """The measured run table read back from tables/runs.parquet, with each run's test and
    validation labels (`y_test`, `y_val`, from tables/targets.parquet by dataset, training-set
    size and seed)."""
    runs = read(lab, "runs")
    targets = read(lab, "targets")
    y = {
        (d, int(n), int(k)): (test, val)
        for d, n, k, test, val in zip(
            targets["dataset"],
            targets["n_train"],
            targets["seed"],
            targets["y_test"],
            targets["y_val"],
            strict=True,
        )
    }
    keys = [
        (d, int(n), int(k)) for d, n, k in zip(runs["dataset"], runs["n_train"], runs["seed"], strict=True)
    ]
    runs["y_test"] = np.array([y[key][0] for key in keys], dtype=object)
    runs["y_val"] = np.array([y[key][1] for key in keys], dtype=object)
    return runs
