"""The γ probe on batches a user's loop draws (sgdlab.attach), with θ* given up front.

The engine's `gamma` probe (sgdlab.probes.gamma) reads ℓ(θ*; B_k) off a table of per-sample
losses over its training set, indexed by where B_k sits in it. A user's loop has no such set:
its batches come from its own loader. Here ℓ(θ*; B_k) is one forward at θ* on B_k (as
`sgdlab.probes.batch_loss_at` computes losses: batch statistics for BN, no dropout, copies of the
buffers), in float64 over the per-sample losses as the engine's table is. The formula, the
columns and the summary are the engine's (`gamma_terms`, `Gamma.finish`); only `store` mode
(which keeps training-set indices) is not available here.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import UserError
from ..modes import dropout_off
from ..params import named_views, trainable
from ..probes.context import batch_dependent
from ..probes.gamma import Gamma, Workspace, dist_sq, gamma_terms


@torch.no_grad()
def loss_at_on(rt: Any, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """ℓ(θ; B) on the batch (x, y): the float64 mean of the per-sample losses when the model is
    batch-independent (what the engine's table of ℓ_i(θ*) gives), the training loss's own mean
    with batch norm (whose minibatch loss is not a mean of per-sample ones)."""
    state = {name: buf.clone() for name, buf in rt.model.named_buffers()}
    state.update(named_views(rt.model, theta))
    with dropout_off(rt.model):
        out = torch.func.functional_call(rt.model, state, (x,))
    if batch_dependent(rt.model):
        return float(rt.loss(out, y))
    return float(rt.loss.per_sample(out, y).double().mean())


class OnlineGamma(Gamma):
    """`gamma` in replay mode for `sgdlab.attach`: θ* comes from `reference=` (or the first pass
    of `sgdlab.replay`) and ℓ(θ*; B_k) from a forward on the step's own batch. With a reference
    that carries per-step losses (sgdlab.replay), each step's loss is checked against it as the
    engine's replay does; a bare θ* checks nothing."""

    def setup(self, rt: Any) -> None:
        """Read θ* (and the recorded losses, if any) from the run's Reference; ‖θ_0 − θ*‖²."""
        self.rt = rt
        if self.mode == "store":
            raise UserError(
                f"probe {self.name}: store mode keeps training-set indices, which a loop of your "
                "own does not have; use the default replay mode with reference= or sgdlab.replay"
            )
        if rt.reference is None:
            raise UserError(
                f"probe {self.name} needs θ*, the end of the path: pass reference= (a minimizer "
                "you know: a tensor, a state dict or a checkpoint) to sgdlab.attach, or train "
                "twice with sgdlab.replay(train_fn)"
            )
        self.theta_star = rt.reference.theta_star.to(rt.theta0.device, rt.theta0.dtype)
        self.work = Workspace(self.theta_star)
        self.ref_losses = rt.reference.batch_losses
        self.dist0_sq = dist_sq(rt.theta0, self.theta_star)
        self.star_table = None

    def measure(self, ctx: Any) -> dict[str, float]:
        """The `gamma_terms` row of step k, ℓ(θ*; B_k) from a forward at θ* on B_k."""
        if len(self.ref_losses):
            self._verify(ctx.step, ctx.batch_loss)
        row = gamma_terms(
            ctx.params_before,
            trainable(ctx.model),
            ctx.lr,
            self.work,
            self.dist0_sq,
            ctx.batch_loss_before,
            loss_at_on(self.rt, self.theta_star, *ctx.batch),
            self.gap_tol,
        )
        self._count(row)
        return row
