"""The basic instruments: full-set loss and error, minibatch loss and step size, ‖θ‖,
‖θ − θ_0‖, ‖U_k‖ and the full-gradient norm."""

from __future__ import annotations

import torch

from ..params import norm
from .base import Probe
from .registry import probes


@probes.register("eval", help="train/test loss and error on the full sets", options={"schedule": "epoch"})
class Eval(Probe):
    needs = frozenset({"eval"})

    def measure(self, ctx) -> dict[str, float]:
        out = {}
        for split in ("train", "test"):
            out.update({f"{split}_{k}": v for k, v in ctx.evaluate(split).items()})
        return out


@probes.register(
    "batch_loss", help="minibatch loss ℓ(θ_k; B_k) and the step size η_k used", options={"schedule": "step"}
)
class BatchLoss(Probe):
    needs = frozenset({"batch_loss", "lr"})

    def measure(self, ctx) -> dict[str, float]:
        return {"batch_loss": ctx.batch_loss, "lr": ctx.lr}


@probes.register(
    "norms", help="‖θ‖ and the distance ‖θ − θ_0‖ from the initialization", options={"schedule": "epoch"}
)
class Norms(Probe):
    needs = frozenset({"theta0"})

    def measure(self, ctx) -> dict[str, float]:
        return {"param_norm": norm(ctx.tensors), "dist_init": ctx.distance(ctx.tensors, ctx.theta0)}


@probes.register("update_norm", help="‖U_k‖, U_k = (θ_k − θ_{k+1})/η_k", options={"schedule": "every:10"})
class UpdateNorm(Probe):
    needs = frozenset({"update"})

    def measure(self, ctx) -> dict[str, float]:
        return {"update_norm": ctx.update_norm}


@probes.register("grad_norm", help="‖∇L(θ)‖ of the full training loss", options={"schedule": "epoch"})
class GradNorm(Probe):
    needs = frozenset({"full_grad"})

    def measure(self, ctx) -> dict[str, float]:
        return {"full_grad_norm": float(torch.linalg.vector_norm(ctx.full_gradient()))}
