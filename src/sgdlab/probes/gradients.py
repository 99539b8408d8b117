"""The `gradients` probe: per-sample gradients g_i = ∇ℓ_i(θ_k) on the step's batch B_k (or a
fixed subset of the training set), reduced to their Gram matrix and read off it
(sgdlab.gradients.stats): norms (max, mean, min, quantiles), agreement μ = min_{i≠j}⟨g_i, g_j⟩
with the mean and quantiles of the inner products (Giselsson's lecture on SGD's qualitative
convergence), cosines, the batch gradient norm ‖ḡ‖, variance and SNR, Cockpit's norm,
inner-product and orthogonality tests (Byrd et al. 2012; Bollapragada et al. 2018), and the
full-gradient norm ‖∇L(θ_k)‖ with its best (smallest) value so far.

Cheap enough to leave on. With batch = "train" it is an iteration probe that *captures*: when
due, the engine runs the step's own forward and backward inside `capture`, whose hooks keep
each Linear/Conv layer's input and output gradient; the Gram matrix is formed from them after
the step (the outer-product identity), so the probe adds no forward or backward of its own.
This is exact when the model computes the same in train and eval mode (no batch norm, no
active dropout) and the training loss is the batch mean of the per-sample losses (every
sgdlab loss is), so the step's output gradients are δ_i/N. Otherwise — batch norm couples the
samples in train mode, dropout draws masks — the per-sample quantities are those of eval mode
(running statistics, no dropout), computed in a separate pass at θ_k on B_k before the step
(set reuse_step = false to always do so). Parameters the identity cannot handle are computed
by vmap at θ_k before the step (attention on its math kernel there: vmap has no batching rule
for the fused ones). Nothing the probe does changes the trajectory.

With batch = "eval" it is a state probe on `n_eval` training points fixed at setup (a seeded
random subset), measured at θ_k before the update and at the end.

pairs = false keeps only what needs no pair of samples — norms, ‖ḡ‖, the mean inner product,
variance, SNR and the three tests, Cockpit's set — measured from ‖g_i‖² and ⟨g_i, Σ_j g_j⟩ in
O(N·P) instead of the N×N Gram matrix's O(N²·P) (`sgdlab.gradients.per_sample_moments`; on the
training step Σ_j g_j is the weight gradient its backward computes, kept by a hook); μ, the
inner-product quantiles and the cosines are then not reported.

fused = true (with pairs = false, on the training step, where the step is reused: no batch
norm, no active dropout) goes one step further: where the moments form each sample's
convolution weight gradient anyway, the step's weight gradient is summed from them and
PyTorch's weight-gradient kernel does not run (`sgdlab.gradients.fused`): on the 3C3D CNN
the economy probes every step cost 1.21× a plain step instead of 1.32×. The trajectory then
equals the probes-off one to float32 rounding, not bit for bit (a fused run is still
deterministic and resumes bit-identically).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from ..attention import math_attention
from ..errors import UserError
from ..gradients import (
    DEFAULT_BUDGET_MB,
    Capture,
    Workspace,
    check_path,
    gram_stats,
    moment_stats,
    per_sample_gram,
    per_sample_moments,
    plan_split,
    records_gram,
    records_moments,
    vmap_gram,
    vmap_moments,
)
from ..gradients.fused import LayerMoments, fusable, fused_convs
from .base import Probe
from .context import batch_dependent, eval_mode
from .registry import probes

BATCHES = ("train", "eval")


@probes.register(
    "gradients",
    help="per-sample gradients on B_k (reusing the step's backward) or a fixed subset: norms, "
    "agreement μ = min⟨∇ℓ_i,∇ℓ_j⟩, cosines, variance, SNR, norm / inner-product / "
    "orthogonality tests, full-gradient norm and its best so far",
    options={
        "schedule": "epoch",
        "batch": "train",
        "path": "auto",
        "n_eval": 256,
        "quantiles": (0.1, 0.5, 0.9),
        "budget_mb": DEFAULT_BUDGET_MB,
        "full_grad": True,
        "reuse_step": True,
        "pairs": True,
        "fused": False,
        "seed": 0,
    },
)
class Gradients(Probe):
    """Per-sample gradient statistics (see the module docstring). Columns, all prefixed `grad_`
    (`sgdlab.gradients.gram_stats`): `n`, `norm_max`, `norm_mean`, `norm_min`, `norm_q…`,
    `batch_norm` ‖ḡ‖, `mu` = min_{i≠j}⟨g_i, g_j⟩, `inner_mean`, `inner_q…`, `cos_min`,
    `cos_mean`, `cos_q…`, `variance` tr Σ̂, `snr`, `norm_test` (Byrd, Chin, Nocedal & Wu 2012,
    "Sample size selection in optimization methods for machine learning"), `inner_product_test`
    and `orthogonality_test` (Bollapragada, Byrd & Nocedal 2018, "Adaptive sampling strategies
    for stochastic optimization"), as Cockpit (Schneider, Dangel & Hennig 2021, "Cockpit: a
    practical debugging tool for the training of deep neural networks") computes them; with
    `full_grad`, `grad_full_norm` ‖∇L(θ_k)‖ and `grad_full_norm_best`, its running minimum.
    With `pairs` = false, no `mu`, `inner_q…` or `cos_…`; `fused` sums the step's convolution
    weight gradients from the per-sample ones (see the module docstring)."""

    def __init__(
        self,
        name: str,
        schedule: str = "epoch",
        batch: str = "train",
        path: str = "auto",
        n_eval: int = 256,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        budget_mb: float = DEFAULT_BUDGET_MB,
        full_grad: bool = True,
        reuse_step: bool = True,
        pairs: bool = True,
        fused: bool = False,
        seed: int = 0,
    ):
        super().__init__(name, schedule)
        key = f"probes.{name}"
        if batch not in BATCHES:
            raise UserError(f"{key}.batch: {batch!r} is not one of {', '.join(BATCHES)}")
        check_path(path, f"{key}.path")
        if n_eval < 2:
            raise UserError(f"{key}.n_eval: {n_eval} must be ≥ 2 (agreement needs pairs)")
        if not all(0 <= q <= 1 for q in quantiles):
            raise UserError(f"{key}.quantiles: {list(quantiles)} must lie in [0, 1]")
        if not budget_mb > 0:
            raise UserError(f"{key}.budget_mb: {budget_mb} must be > 0")
        if fused and (batch != "train" or pairs):
            raise UserError(
                f"{key}.fused: sums the step's weight gradients from the per-sample ones the "
                'moments form: it needs batch = "train" and pairs = false'
            )
        self.batch, self.path, self.n_eval, self.quantiles = batch, path, n_eval, tuple(quantiles)
        self.budget_mb, self.full_grad, self.reuse_step, self.seed = budget_mb, full_grad, reuse_step, seed
        self.pairs, self.fused = pairs, fused
        self.needs = frozenset({"batch"} if batch == "train" else {"eval"}) | (
            {"full_grad"} if full_grad else set()
        )
        self.best = math.inf
        # The backpropagated loss as a multiple of the batch mean of the per-sample losses: 1 in
        # the engine; sgdlab.attach reads it off the step's output gradient (a sum, loss scaling).
        self.loss_scale = 1.0
        self._pending: tuple[int, Any] | None = None
        self._work = Workspace()  # the per-sample temporaries' memory, reused at every due step
        self._products = Workspace()  # fused: every sample's convolution weight gradient

    def setup(self, rt: Any) -> None:
        """Decide which layers the outer-product identity handles (one forward on a sample), whether
        the step's own passes can be reused, and (batch = "eval") draw the fixed subset."""
        self.rt = rt
        train = rt.data.train
        self.split = plan_split(rt.model, rt.data.batch(train, slice(0, 1))[0], self.path)
        # The step's own forward/backward gives eval-mode per-sample gradients only when train
        # and eval mode compute the same.
        self.from_step = (
            self.reuse_step
            and bool(self.split.ghost)
            and not batch_dependent(rt.model)
            and not rt.has_dropout
        )
        if self.batch == "eval":
            n = len(train)
            gen = torch.Generator().manual_seed(self.seed)
            subset = torch.randperm(n, generator=gen)[: min(self.n_eval, n)].sort().values
            self.subset = subset.to(train.x.device)  # drawn on the CPU: the same points on every device

    # --- batch = "train": capture during the step ------------------------------------------

    def capture(self, ctx: Any, batch: tuple[torch.Tensor, torch.Tensor]):
        """The context the step's forward and backward run in when batch = "train": hooks that
        keep each identity layer's input and output gradient, or a separate eval-mode pass at θ_k
        when the step cannot be reused. None when batch = "eval"."""
        return self._capture(ctx, batch) if self.batch == "train" else None

    @contextmanager
    def _capture(self, ctx: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> Iterator[None]:
        x, y = batch
        full = self._full_norm(ctx)  # at θ_k, shared with state probes through ctx's cache
        if not self.from_step:
            self._pending = (ctx.step, (self._measured(x, y), full))
            yield
            return
        generic: Any = None
        if self.split.generic:
            reduce = vmap_gram if self.pairs else vmap_moments
            with eval_mode(self.rt.model), math_attention():
                generic = reduce(
                    self.rt.model, self.rt.loss.per_sample, x, y, list(self.split.generic), self._budget
                )
        fused = fusable(self.split.ghost) if self.fused else {}
        hooked = {name: m for name, m in self.split.ghost.items() if name not in fused}
        # pairs = false: Σ_j g_j from the weight gradients the step's backward computes
        with (
            Capture(hooked, grad_hooks=True, weight_grads=not self.pairs, outputs=False) as cap,
            fused_convs(fused, self._budget, self._work, self._products) as sinks,
        ):
            yield
        self._pending = (ctx.step, (cap, generic, full, sinks, x))

    def _check_calls(self, cap: Capture, sinks: dict[str, LayerMoments] | None = None) -> None:
        calls = cap.calls() | {name: sink.calls for name, sink in (sinks or {}).items()}
        wrong = {name: c for name, c in calls.items() if c != 1}
        if wrong:
            raise RuntimeError(
                f"probe {self.name}: layers {wrong} did not run exactly once in "
                "the training step as they did at setup"
            )

    def _from_capture(self, cap: Capture, generic: torch.Tensor | None) -> torch.Tensor:
        self._check_calls(cap)
        n = cap.records[0].input.shape[0]
        try:
            # δ_i = N·∂(mean loss)/∂z_i
            gram = records_gram(cap.records, None, float(n) / self.loss_scale, self._budget)
        finally:
            cap.release()
        return gram + generic if generic is not None else gram

    def _moments_from_capture(
        self, cap: Capture, generic: Any, sinks: dict[str, LayerMoments], x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖g_i‖², ⟨g_i, S⟩) of the step's batch `x`: hooked layers, fused ones, vmap's."""
        self._check_calls(cap, sinks)
        n = x.shape[0]
        scale = float(n) / self.loss_scale  # δ_i = N·∂(mean loss)/∂z_i
        sq = torch.zeros(n, dtype=torch.float64, device=x.device)
        rows = torch.zeros_like(sq)
        try:  # the step's weight gradient is ∂(backpropagated loss)/∂W = loss_scale · Σ_j g_j / N
            if cap.records:
                sq, rows = records_moments(
                    cap.records, None, scale, self._budget, cap.step_weight_grads(), self._work
                )
        finally:
            cap.release()
        for sink in sinks.values():  # fused convolutions: moments in the units of ∂loss/∂z
            if sink.sq is not None and sink.rows is not None:
                sq += sink.sq * (scale * scale)
                rows += sink.rows * (scale * scale)
        if generic is not None:
            sq, rows = sq + generic[0], rows + generic[1]
        return sq, rows

    # --- measuring ----------------------------------------------------------------------------

    def measure(self, ctx: Any) -> dict[str, float]:
        """The `grad_…` row: from the captured step (train) or from a pass over the fixed subset (eval)."""
        if self.batch == "eval":
            x, y = ctx.data.batch(ctx.data.train, self.subset)
            return self._row(self._measured(x, y), self._full_norm(ctx))
        if self._pending is None or self._pending[0] != ctx.step:
            raise RuntimeError(f"probe {self.name} measured step {ctx.step} without capturing it")
        _, payload = self._pending
        self._pending = None
        if isinstance(payload[0], Capture):
            cap, generic, full, sinks, x = payload
            if self.pairs:
                return self._row(self._from_capture(cap, generic), full)
            return self._row(self._moments_from_capture(cap, generic, sinks, x), full)
        measured, full = payload
        return self._row(measured, full)

    @property
    def _budget(self) -> int:
        return int(self.budget_mb * 2**20)

    def _measured(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """G in a pass of its own, or (‖g_i‖², Σ_j G_ij) when pairs = false; attention on its
        math kernel (vmap has no batching rule for the fused ones)."""
        with math_attention():
            if not self.pairs:
                m = per_sample_moments(
                    self.rt.model, self.rt.loss, x, y, path=self.path, budget_mb=self.budget_mb
                )
                return m.sq_norms, m.row_sums
            return per_sample_gram(
                self.rt.model, self.rt.loss, x, y, path=self.path, budget_mb=self.budget_mb
            ).gram

    def _full_norm(self, ctx: Any) -> float | None:
        if not self.full_grad:
            return None
        return float(torch.linalg.vector_norm(ctx.full_gradient()))

    def _row(self, measured: Any, full: float | None) -> dict[str, float]:
        """The statistics of G (a tensor) or of its diagonal and row sums (a pair)."""
        if isinstance(measured, tuple):
            sq_norms, row_sums = measured
            row = moment_stats(sq_norms, row_sums, self.quantiles, prefix="grad")
        else:
            row = gram_stats(measured, self.quantiles, prefix="grad")
        if full is not None and math.isfinite(full):
            self.best = min(self.best, full)
            row |= {"grad_full_norm": full, "grad_full_norm_best": self.best}
        return row

    def state_dict(self) -> dict[str, Any]:
        """The best full-gradient norm so far."""
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best full-gradient norm."""
        self.best = float(state.get("best", math.inf))
