"""The run configs of `exact-convergence`: one per network of the CNN study (the linear study
trains no run: it is a batched simulation, `measure.linear.simulate`)."""

from __future__ import annotations

from typing import Any

from .settings import LR, CnnModel, CnnSettings


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


def cnn_configs(s: CnnSettings) -> dict[str, dict]:
    """The CNN study's run configs, one per network of `s`, named cnn-<key>."""
    return {f"cnn-{m.key}": cnn_config(m, s) for m in s.models}
