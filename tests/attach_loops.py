"""Plain training loops for the attach tests: one engine config, the same steps written as a
loop of one's own, with or without `sgdlab.attach`."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path

import torch
from torch import nn

import sgdlab
from sgdlab.data import Dataset

STEPS = 8
PROBE_OPTIONS = {
    "eval": {"schedule": "every:3"},
    "batch_loss": {"schedule": "step"},
    "norms": {"schedule": "every:2"},
    "update_norm": {"schedule": "every:2"},
    "grad_norm": {"schedule": "every:3"},
    "gradients": {"schedule": "every:3"},
    "hessian": {"schedule": "every:4", "subset": 32, "trace_probes": 2, "max_iter": 8},
    "ntk": {"schedule": "every:4", "points": 8, "test_points": 8},
}


def toy_data(n_train: int = 48, n_test: int = 16, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 6, generator=g)
    y = x[:, :3].argmax(dim=1)
    return Dataset.from_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], name="toy")


def engine_config(probes: list[str], dropout: float = 0.0, steps: int = STEPS, **options) -> dict:
    table = {name: PROBE_OPTIONS[name] for name in probes if name in PROBE_OPTIONS} | options
    return {
        "seed": 0,
        "device": "cpu",
        "model": {"name": "mlp", "widths": [8], "dropout": dropout},
        "optim": {"name": "sgd", "lr": 0.1},
        "train": {"batch_size": 16, "max_steps": steps},
        "probes": {"use": probes, **table},
    }


def plain_loop(cfg: dict, data: Dataset, attach: dict | None = None, steps: int = STEPS):
    """The engine's run of `cfg` as a loop of one's own: the same model, optimizer and batches
    (from `sgdlab.prepare`), with `sgdlab.attach(**attach)` when given. Returns (lab or None,
    model, the minibatch losses)."""
    parts = sgdlab.prepare(cfg, data=data)
    model, opt, loss_fn = parts.model, parts.rule.base, parts.loss
    lab = None
    if attach is not None:
        options = {"loss_fn": loss_fn, "eval_data": data, "steps_per_epoch": parts.sampler.steps_per_epoch}
        lab = sgdlab.attach(model, opt, **(options | attach))
    losses = []
    for k in range(steps):
        x, y = data.batch(data.train, parts.sampler.indices(k))
        with lab.step(x, y) if lab is not None else _nothing():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    if lab is not None:
        lab.close()
    return lab, model, losses


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# --- a restartable loop (crash safety): its own checkpoints, lab.flush() where it saves them ---

CRASH_PROBES = ["batch_loss", "norms", "update_norm", "hessian"]
CRASH_OPTIONS = {
    "norms": {"schedule": "every:3"},
    "update_norm": {"schedule": "step"},
    "hessian": {"schedule": "every:2", "subset": 24, "trace_probes": 2, "max_iter": 6},
}


def restartable(out: Path, steps: int, resume: bool = False, every: int = 4):
    """Train a tiny MLP for `steps` steps with `attach`, saving model + optimizer every `every`
    steps next to `out` (and flushing the lab there); with `resume`, continue from the newest."""
    torch.set_num_threads(1)  # the thread count is part of the result on CPU
    data = toy_data()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    start = 0
    ckpts = sorted(out.parent.glob(f"{out.name}-user-*.pt"))
    if resume and ckpts:
        saved = torch.load(ckpts[-1], weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        start = saved["step"]
    lab = sgdlab.attach(
        model,
        opt,
        out,
        probes=CRASH_PROBES,
        loss_fn=lambda o, y: nn.functional.cross_entropy(o, y, reduction="none"),
        eval_data=(data.train.x, data.train.y),
        config={"probes": copy.deepcopy(CRASH_OPTIONS)},
        resume=resume,
        step=start if resume else None,
    )
    g = torch.Generator().manual_seed(2)
    order = [torch.randperm(48, generator=g)[:16] for _ in range(steps)]
    for k in range(start, steps):
        x, y = data.batch(data.train, order[k])
        with lab.step(x, y):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        if (k + 1) % every == 0:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": k + 1}
            torch.save(state, out.parent / f"{out.name}-user-{k + 1:06d}.pt")
            lab.flush()
    lab.close()
    return lab


# --- torch.distributed: two ranks, each with half of every batch --------------------------------


def per_sample_ce(out, y):
    return nn.functional.cross_entropy(out, y, reduction="none")


def ddp_worker(rank: int, init: Path, out: Path, results) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init}", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=120)
    )
    try:
        data = toy_data()
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        model = nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        each_step = {n: {"schedule": "step"} for n in ("update_norm", "norms", "gradients", "grad_norm")}
        lab = sgdlab.attach(
            model,
            opt,
            out,
            probes=["batch_loss", "update_norm", "norms", "gradients", "grad_norm"],
            loss_fn=per_sample_ce,
            eval_data=data,
            config={"probes": each_step},
        )
        for k in range(3):
            x, y = data.train.x[16 * k : 16 * k + 16], data.train.y[16 * k : 16 * k + 16]
            xl, yl = x[8 * rank : 8 * rank + 8], y[8 * rank : 8 * rank + 8]  # each rank: half the batch
            with lab.step(xl, yl):
                opt.zero_grad()
                per_sample_ce(model(xl), yl).mean().backward()
                opt.step()
        lab.close()
        results.put((rank, lab.active, lab.path is not None))
    finally:
        dist.destroy_process_group()
