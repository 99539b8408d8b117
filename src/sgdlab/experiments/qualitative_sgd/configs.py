"""The trained runs of `qualitative-sgd`, deterministic functions of the settings (so `--plan`
lists exactly what the experiment trains):

  ls-under, ls-over         least squares 200×100 and 200×1000 at the largest step, seed 0
  ls-floor-g<γ>-s<seed>     the under-parameterized problem at every floor step × seed (the
                            run at the largest step and seed 0 is ls-under itself: trained once)
  net-3x5, net-15x25        the residual nets of part 4 under the lecture's combined rule
  rule-<name>               the 15x25 net under each step-size rule of part 6 (rule-combined is
                            net-15x25 itself: trained once)
  mu-mlp                    the MLP on digits of part 7, its iterates saved for the Gram matrices

All least-squares runs draw their samples iid with replacement (the lecture's SGD: "sample a
mini-batch uniformly"); the nets keep the engine's reshuffled order, as before.
"""

from __future__ import annotations

from typing import Any

from .settings import AgreementSettings, LeastSquaresSettings, NetSettings, Settings

# ---------------------------------------------------------------------------------------
# least squares


def ls_config(s: LeastSquaresSettings, dim: int, step: float, seed: int = 0) -> dict:
    """A least-squares run: f(x) = Σ_i ½(a_iᵀx − b_i)² with A ∈ R^(n×dim) scaled into the
    unit ball (the data drawn from `s.data_seed`, the same A, b for every seed), a bias-free
    linear model from x_0 = 0, float64, single-sample SGD at `step` with indices drawn iid
    (uniformly, with replacement) from the run's `seed`, the full training loss every epoch."""
    return {
        "seed": seed,
        "threads": 1,
        "dtype": "float64",
        "data": {
            "name": "least-squares",
            "n_train": s.n,
            "n_test": 0,
            "dim": dim,
            "noise": s.noise,
            "normalize": "unit-ball",
            "seed": s.data_seed,
        },
        "model": {"name": "linear", "bias": False, "init": "zeros"},
        "optim": {"name": "sgd", "lr": step},
        "train": {"batch_size": 1, "epochs": s.epochs, "loss": "squared", "sampler": "iid"},
        "probes": {"use": ["eval"], "eval": {"schedule": "epoch"}},
    }


def floor_run_name(step: float, seed: int) -> str:
    """The name of the floor run of the under-parameterized problem at `step` and `seed`."""
    return f"ls-floor-g{step:g}-s{seed}"


def floor_runs(s: LeastSquaresSettings) -> dict[str, tuple[float, int]]:
    """Floor run name → (step, seed), every step of `s.floor_steps` × `s.floor_seeds` seeds."""
    return {floor_run_name(g, seed): (g, seed) for g in s.floor_steps for seed in range(s.floor_seeds)}


def ls_configs(s: LeastSquaresSettings) -> dict[str, dict]:
    """Part 3's runs: ls-under and ls-over at the largest floor step, then every floor run."""
    under, over = s.dims
    step = max(s.floor_steps)
    return {
        "ls-under": ls_config(s, under, step),
        "ls-over": ls_config(s, over, step),
        **{name: ls_config(s, under, g, seed) for name, (g, seed) in floor_runs(s).items()},
    }


# ---------------------------------------------------------------------------------------
# residual nets and step-size rules

COMBINED = {"name": "combined", "psi": "sqrt", "c": 0.5, "alpha": 0.1}
RULES = {  # the lecture's three tables: ψ(x) = 0.5√x, K, α = γ0 = 0.1; α = 0; ψ ≡ 0
    "combined": COMBINED,
    "undamped": dict(COMBINED, alpha=0.0),
    "damped": {"name": "grad-damped", "alpha": 0.1},
}
LR = 0.1  # γ0 of every rule


def net_config(s: NetSettings, widths: tuple[int, ...], rule: dict[str, Any]) -> dict:
    """A residual ReLU net with residual layer widths `widths` and one logit, on 2-D binary
    data with ±1 targets, logistic loss, single-sample SGD at lr γ0 = 0.1 under step-size rule
    `rule` (period K = `s.period` epochs), with per-epoch probes of the loss, step size,
    update norm and per-sample gradients of every training point."""
    n = s.n_train
    return {
        "seed": s.seed,
        "threads": 1,
        "data": {"name": s.data, "n_train": n, "n_test": 0, "targets": "pm1"},
        "model": {"name": "residual-mlp", "residual_widths": list(widths), "widths": [], "init": s.init},
        "optim": {"name": "sgd", "lr": LR, "schedule": dict(rule, period=s.period)},
        "train": {"batch_size": 1, "epochs": s.epochs, "loss": "logistic", "eval_batch_size": n},
        "probes": {
            "use": ["eval", "batch_loss", "update_norm", "gradients"],
            "eval": {"schedule": "epoch"},
            "batch_loss": {"schedule": "epoch"},
            "update_norm": {"schedule": "epoch"},
            "gradients": {"schedule": "epoch", "batch": "eval", "n_eval": n},
        },
    }


def net_configs(s: NetSettings) -> dict[str, dict]:
    """The two nets of part 4 and the 15x25 net under each rule of part 6 (rule-combined is the
    same config as net-15x25: trained once)."""
    out = {"net-3x5": net_config(s, s.small, COMBINED), "net-15x25": net_config(s, s.big, COMBINED)}
    out |= {f"rule-{name}": net_config(s, s.big, rule) for name, rule in RULES.items()}
    return out


# ---------------------------------------------------------------------------------------
# μ on digits


def agreement_config(s: AgreementSettings) -> dict:
    """The μ run: an MLP on digits trained by SGD, its iterates saved on a log-spaced
    schedule (log:1.4) for the per-sample Gram matrices."""
    return {
        "seed": 0,
        "threads": 1,
        "data": {"name": "digits", "n_train": s.n_train, "n_test": 0},
        "model": {"name": "mlp", "widths": list(s.widths)},
        "optim": {"name": "sgd", "lr": s.lr},
        "train": {"batch_size": s.batch_size, "epochs": s.epochs},
        "checkpoint": {"iterates": "log:1.4"},
        "probes": {"use": ["eval", "batch_loss"], "eval": {"schedule": "epoch"}},
    }


def run_configs(s: Settings) -> dict[str, dict]:
    """Every trained run of `qualitative-sgd`: least squares, the residual nets and step-size
    rules, and the μ MLP."""
    return {**ls_configs(s.least_squares), **net_configs(s.nets), "mu-mlp": agreement_config(s.agreement)}
