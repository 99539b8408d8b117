"""The run configs of `sgdl-flatness`: the SGDL noise sweep on the report's MLP (every γ' under
both noise schedules, plain SGD on the baseline seeds) and the natural vs random label runs.
The 2-D part trains no run: it is a batched simulation (`measure.toy`)."""

from __future__ import annotations

from typing import Any

from .settings import BATCH, LR, MLP, LabelSettings, SweepSettings

SCHEDULES = {"constant": "none", "decaying": "inverse"}  # schedule → optim.noise_decay
KINDS = ("natural", "random")


def run_name(key: str, schedule: str, noise: float, seed: int = 0) -> str:
    """The run of dataset `key` at γ' = `noise`: sgdl-<key>-<schedule>-<γ'> for a noisy run,
    sgdl-<key>-0-seed<seed> for plain SGD (γ' = 0, shared by both schedules)."""
    return f"sgdl-{key}-0-seed{seed}" if noise == 0 else f"sgdl-{key}-{schedule}-{noise:g}"


def sweep_config(data: dict[str, Any], noise: float, decay: str, seed: int, epochs: int) -> dict[str, Any]:
    """One SGDL run: the report's MLP 512-512, batch 32, lr 0.01, θ ← θ − η∇V(θ; z) + γ'_t W,
    W ~ N(0, I), γ'_t = γ' (decay "none") or γ'/(1 + t) ("inverse", t the step), on the data
    subset of data seed 0 whatever the run seed, evaluated every epoch."""
    return {
        "seed": seed,
        "data": dict(data, seed=0),
        "model": dict(MLP),
        "optim": {"name": "sgdl", "lr": LR, "noise": noise, "noise_decay": decay},
        "train": {"batch_size": BATCH, "epochs": epochs},
        "probes": {"use": ["eval"], "eval": {"schedule": "epoch"}},
    }


def sweep_configs(s: SweepSettings) -> dict[str, dict[str, Any]]:
    """Per dataset: plain SGD on every seed of `s.baseline_seeds`, and seed 0 at every γ' > 0
    of `s.noises` under each schedule of `SCHEDULES`."""
    out = {}
    for key, data in s.datasets:
        for seed in s.baseline_seeds:
            out[run_name(key, "constant", 0.0, seed)] = sweep_config(data, 0.0, "none", seed, s.epochs)
        for schedule, decay in SCHEDULES.items():
            for noise in s.noises:
                if noise > 0:
                    out[run_name(key, schedule, noise)] = sweep_config(data, noise, decay, 0, s.epochs)
    return out


def sweep_identity(config: dict[str, Any]) -> tuple[float, str, int]:
    """(γ', schedule, seed) of a `sweep_config`."""
    decay = config["optim"]["noise_decay"]
    schedule = next(name for name, d in SCHEDULES.items() if d == decay)
    return float(config["optim"]["noise"]), schedule, int(config["seed"])


def label_configs(s: LabelSettings) -> dict[str, dict[str, Any]]:
    """The six label runs: the report's MLP trained by SGD on the same images with natural
    or uniformly random labels (label_noise 1), seeds `s.seeds`, until the training loss is
    below `s.stop_loss` (or the epoch cap), with the Hessian probe at the end."""
    out = {}
    for kind in KINDS:
        data = dict(s.data, seed=0, label_noise=1.0 if kind == "random" else 0.0)
        for seed in s.seeds:
            out[f"labels-{kind}-{seed}"] = {
                "seed": seed,
                "data": data,
                "model": dict(MLP),
                "optim": {"name": "sgd", "lr": s.lr},
                "train": {"batch_size": BATCH, "epochs": s.max_epochs, "stop_loss": s.stop_loss},
                "probes": {
                    "use": ["eval", "hessian"],
                    "eval": {"schedule": "epoch:10"},
                    "hessian": {
                        "schedule": "final",
                        "subset": int(s.data.get("n_train") or 10**9),
                        "tol": 1e-4,
                        **s.hessian,
                    },
                },
            }
    return out
