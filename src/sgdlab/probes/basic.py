"""The basic instruments: full-set loss and error, minibatch loss and step size, ‖θ‖,
‖θ − θ_0‖, ‖U_k‖ and the full-gradient norm."""

from __future__ import annotations

import torch

from .base import Probe
from .registry import probes


@probes.register("eval", help="train/test loss and error on the full sets", options={"schedule": "epoch"})
class Eval(Probe):
    """`train_loss`, `test_loss` (mean loss) and `train_error`, `test_error` (fraction
    misclassified, for class targets) on the full splits, in eval mode."""

    needs = frozenset({"eval"})

    def measure(self, ctx) -> dict[str, float]:
        """`train_…` and `test_…` loss (and error) from the context's cached evaluation."""
        out = {}
        for split in ("train", "test"):
            out.update({f"{split}_{k}": v for k, v in ctx.evaluate(split).items()})
        return out


@probes.register(
    "batch_loss", help="minibatch loss ℓ(θ_k; B_k) and the step size η_k used", options={"schedule": "step"}
)
class BatchLoss(Probe):
    """`batch_loss` ℓ(θ_k; B_k), the training step's own minibatch loss, and `lr` η_k, the step
    size used for update k (an iteration probe: no extra computation)."""

    needs = frozenset({"batch_loss", "lr"})

    def measure(self, ctx) -> dict[str, float]:
        """The step's minibatch loss and step size."""
        return {"batch_loss": ctx.batch_loss, "lr": ctx.lr}


@probes.register(
    "norms", help="‖θ‖ and the distance ‖θ − θ_0‖ from the initialization", options={"schedule": "epoch"}
)
class Norms(Probe):
    """`param_norm` ‖θ_k‖ and `dist_init` ‖θ_k − θ_0‖, the distance travelled from the initialization."""

    needs = frozenset({"theta0"})

    def measure(self, ctx) -> dict[str, float]:
        """‖θ_k‖ and ‖θ_k − θ_0‖ over the trainable parameters, in one pass."""
        size, dist = ctx.norm_and_distance(ctx.tensors, ctx.theta0)
        return {"param_norm": size, "dist_init": dist}


@probes.register("update_norm", help="‖U_k‖, U_k = (θ_k − θ_{k+1})/η_k", options={"schedule": "every:10"})
class UpdateNorm(Probe):
    """`update_norm` ‖U_k‖ with U_k = (θ_k − θ_{k+1})/η_k: the minibatch gradient for SGD, the
    effective direction for any other optimizer."""

    needs = frozenset({"update"})

    def measure(self, ctx) -> dict[str, float]:
        """‖U_k‖, computed without forming U_k."""
        return {"update_norm": ctx.update_norm}


@probes.register("grad_norm", help="‖∇L(θ)‖ of the full training loss", options={"schedule": "epoch"})
class GradNorm(Probe):
    """`full_grad_norm` ‖∇L(θ_k)‖ of the mean training loss over the whole training set (eval mode)."""

    needs = frozenset({"full_grad"})

    def measure(self, ctx) -> dict[str, float]:
        """‖∇L(θ_k)‖ from the context's cached full gradient."""
        return {"full_grad_norm": float(torch.linalg.vector_norm(ctx.full_gradient()))}
