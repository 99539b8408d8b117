"""The γ-optimization principle ("An optimization principle of deep learning?", anonymous
ICLR 2020 submission). For θ_{k+1} = θ_k − η U_k, with θ* the final iterate:

    γ_k = ( ⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖² ) / ( ‖θ_0 − θ*‖² · (ℓ(θ_k; B_k) − ℓ(θ*; B_k)) )

undefined where the loss gap ℓ(θ_k; B_k) − ℓ(θ*; B_k) ≤ gap_tol (recorded as gamma_defined = 0).
Also the normalized distance ‖θ_k − θ*‖/‖θ_0 − θ*‖ (Theorem 1.1: non-increasing).

θ* is known only at the end, so there are two modes:
  replay  (default) pass 1 trains; pass 2 re-runs the identical trajectory with θ* known and
          computes everything online in O(#params) memory, checking at every step that its
          minibatch loss equals pass 1's (exactly, on CPU).
  store   keeps θ_k and U_k of every measured step and computes γ at the end; O(#steps·#params)
          memory, the reference the replay is tested against.
ℓ(θ*; B_k) is computed as training computes losses (BN batch statistics) without dropout and
without touching buffers or RNG; ℓ(θ_k; B_k) likewise (it is the training loss itself when the
model has no dropout). Without BN a minibatch loss is the mean of per-sample losses, so one
pass over the training set at θ* gives ℓ(θ*; B_k) for every k (instead of a forward per step).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import UserError
from ..params import trainable
from .base import Deferred, Probe
from .context import batch_dependent, batch_loss_at, sample_losses_at
from .registry import probes


class ReplayError(UserError):
    """The replayed trajectory left the recorded one."""


CHUNK = 1 << 20


class Workspace:
    """Scratch for `_inner_products` against one θ*, reused across steps (fresh P-sized
    temporaries cost page faults every step, several times the arithmetic for a 300k-parameter
    MLP): the rows θ_k − θ* and θ_k − θ_{k+1} of one chunk, and each chunk's 2×2 Gram matrix."""

    def __init__(self, theta_star: torch.Tensor):
        self.theta_star = theta_star.reshape(-1)
        n = self.theta_star.numel()
        dtype, device = theta_star.dtype, theta_star.device
        self.rows = torch.empty(2, min(n, CHUNK), dtype=dtype, device=device)
        self.grams = torch.empty(max(1, -(-n // CHUNK)), 2, 2, dtype=dtype, device=device)


def _inner_products(
    before: torch.Tensor, after: torch.Tensor | list[torch.Tensor], work: Workspace, lr: float
) -> tuple[float, float, float]:
    """⟨θ_k − θ*, U_k⟩, ‖U_k‖², ‖θ_k − θ*‖² with U_k = (θ_k − θ_{k+1})/η and θ* that of `work`,
    for θ_{k+1} = `after` (one flat vector, or the model's parameter tensors read in place).
    The parameters are packed into chunks of CHUNK entries, small tensors sharing one: per piece
    two subtractions write θ_k − θ* and θ_k − θ_{k+1} into the chunk's rows, and per chunk one
    BLAS product gives their 2×2 Gram matrix in the parameters' dtype; the chunks' matrices are
    summed in float64 after one device sync per step. The rows stay in cache between the
    subtractions and the product, and θ_{k+1} is never copied."""
    rows, star, grams = work.rows, work.theta_star, work.grams
    filled = chunks = offset = 0
    for tensor in [after] if isinstance(after, torch.Tensor) else after:
        flat = tensor.detach().reshape(-1)
        pos = 0
        while pos < flat.numel():
            take = min(flat.numel() - pos, rows.shape[1] - filled)
            lo, hi = offset + pos, offset + pos + take
            torch.sub(before[lo:hi], star[lo:hi], out=rows[0, filled : filled + take])
            torch.sub(before[lo:hi], flat[pos : pos + take], out=rows[1, filled : filled + take])
            filled, pos = filled + take, pos + take
            if filled == rows.shape[1]:
                torch.mm(rows, rows.T, out=grams[chunks])
                filled, chunks = 0, chunks + 1
        offset += flat.numel()
    if filled:
        torch.mm(rows[:, :filled], rows[:, :filled].T, out=grams[chunks])
        chunks += 1
    distance_sq = coherence = step_sq = 0.0
    for (d, c), (_, u) in grams[:chunks].tolist():
        distance_sq, coherence, step_sq = distance_sq + d, coherence + c, step_sq + u
    return coherence / lr, step_sq / lr**2, distance_sq


def gamma_terms(
    before: torch.Tensor,
    after: torch.Tensor | list[torch.Tensor],
    lr: float,
    theta_star: torch.Tensor | Workspace,
    dist0_sq: float,
    loss_k: float,
    loss_star: float,
    gap_tol: float,
) -> dict[str, float]:
    """The per-step quantities of the principle at iterate θ_k = `before`, θ_{k+1} = `after`
    (flat, or as the model's parameter tensors) and θ* = `theta_star` (flat, or the `Workspace`
    built on it, reused across steps):

      gamma_coherence    ⟨θ_k − θ*, U_k⟩, U_k = (θ_k − θ_{k+1})/η
      gamma_update_term  (η/2)‖U_k‖²
      gamma_loss_gap     ℓ(θ_k; B_k) − ℓ(θ*; B_k) (`loss_k` − `loss_star`)
      gamma_dist         ‖θ_k − θ*‖/‖θ_0 − θ*‖ (`dist0_sq` = ‖θ_0 − θ*‖²)
      gamma_defined      1 when the gap exceeds `gap_tol`, else 0
      gamma              (coherence − update term)/(‖θ_0 − θ*‖² · gap), where defined

    With θ* = 0, θ_0 = (2, 0), θ_k = (1, 0), η = ½ and θ_{k+1} = (½, 0): U_k = (1, 0), so
    γ_k = (1 − ¼)/(4 · ½) = 0.375 for a loss gap of ½.

    >>> import torch
    >>> from sgdlab.probes.gamma import gamma_terms
    >>> row = gamma_terms(
    ...     before=torch.tensor([1.0, 0.0]),
    ...     after=[torch.tensor([0.5, 0.0])],
    ...     lr=0.5,
    ...     theta_star=torch.zeros(2),
    ...     dist0_sq=4.0,
    ...     loss_k=0.5,
    ...     loss_star=0.0,
    ...     gap_tol=1e-7,
    ... )
    >>> row
    {'gamma_coherence': 1.0, 'gamma_update_term': 0.25, 'gamma_loss_gap': 0.5,
     'gamma_dist': 0.5, 'gamma_defined': 1.0, 'gamma': 0.375}
    """
    work = theta_star if isinstance(theta_star, Workspace) else Workspace(theta_star)
    coherence, update_sq, distance_sq = _inner_products(before, after, work, lr)
    update_term = 0.5 * lr * update_sq
    gap = loss_k - loss_star
    row = {
        "gamma_coherence": coherence,
        "gamma_update_term": update_term,
        "gamma_loss_gap": gap,
        "gamma_dist": math.sqrt(distance_sq / dist0_sq) if dist0_sq > 0 else 0.0,
    }
    defined = gap > gap_tol and dist0_sq > 0
    row["gamma_defined"] = float(defined)
    if defined:
        row["gamma"] = (coherence - update_term) / (dist0_sq * gap)
    return row


def star_losses(rt: Any, theta_star: torch.Tensor) -> torch.Tensor | None:
    """ℓ_i(θ*) of every training sample, or None when minibatch losses cannot be read off them
    (batch norm: each minibatch then needs its own forward)."""
    return None if batch_dependent(rt.model) else sample_losses_at(rt, theta_star)


def loss_on_batch(
    rt: Any, theta: torch.Tensor, table: torch.Tensor | None, idx: torch.Tensor | slice
) -> float:
    """ℓ(θ; B) for the training samples `idx`, from `table` (see `star_losses`) if given."""
    if table is not None:
        return float(table[idx].mean())
    return batch_loss_at(rt, theta, *rt.data.batch(rt.data.train, idx))


def dist_sq(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖² of two flat parameter vectors, summed chunk-wise in float64 (as `gamma_terms`
    sums its inner products)."""
    return _inner_products(a, a, Workspace(b), 1.0)[2]


@probes.register(
    "gamma",
    help="γ-optimization principle: γ_k, ‖θ_k−θ*‖/‖θ_0−θ*‖, the two sides "
    "and the loss gap, with θ* the final iterate (deterministic replay or stored path)",
    options={"schedule": "step", "mode": "replay", "gap_tol": 1e-7, "replay_tol": 0.0},
)
class Gamma(Probe):
    """The γ instrument (see the module docstring): per measured step the columns of
    `gamma_terms` (`gamma`, `gamma_dist`, `gamma_coherence`, `gamma_update_term`,
    `gamma_loss_gap`, `gamma_defined`), and in the run's summary["probes"][name] the counts
    of defined steps, the fraction with γ_k > 0, min γ_k, the largest increase of the
    normalized distance and (replay) how many steps' losses were checked against pass 1.

    On your own model and data: `sgdlab.run` does both passes (train to θ*, then replay).

    >>> import torch
    >>> from torch import nn
    >>> import sgdlab
    >>> from sgdlab.data import Dataset, Split
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(40, 3, generator=g)
    >>> y = x @ torch.tensor([1.0, -2.0, 0.5])
    >>> data = Dataset("mine", Split(x[:32], y[:32]), Split(x[32:], y[32:]), "real", n_classes=None)
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    >>> cfg = {
    ...     "optim": {"name": "sgd", "lr": 0.05},
    ...     "train": {"batch_size": 8, "epochs": 3, "loss": "squared"},
    ...     "probes": {"use": ["gamma"]},
    ... }
    >>> result = sgdlab.run(cfg, model=model, data=data)
    >>> summary = result.summary["probes"]["gamma"]
    >>> [summary[k] for k in ("mode", "defined_steps", "replay_checked_steps", "replay_max_loss_diff")]
    ['replay', 12, 12, 0.0]
    >>> summary["positive_fraction"], summary["dist_max_increase"]
    (1.0, 0.0)
    >>> result.metrics["gamma_dist"][0].as_py()  # ‖θ_0 − θ*‖/‖θ_0 − θ*‖
    1.0
    """

    needs = frozenset({"update", "batch", "batch_loss", "lr", "theta_star"})
    # "update": the engine snapshots θ_k before the step; U_k is formed chunk-wise from it.
    figure = "sgdlab.report.gamma:run_figure"  # distance to θ*, loss and γ_k against the epoch

    def __init__(
        self,
        name: str,
        schedule: str = "step",
        mode: str = "replay",
        gap_tol: float = 1e-7,
        replay_tol: float = 0.0,
    ):
        super().__init__(name, schedule)
        if mode not in ("replay", "store"):
            raise UserError(f"probes.{name}.mode: {mode!r} is not one of replay, store")
        if mode == "store":
            self.needs = self.needs - {"theta_star"}
        self.mode, self.gap_tol, self.replay_tol = mode, gap_tol, replay_tol
        self.stats = {
            "defined": 0,
            "undefined": 0,
            "positive": 0,
            "gamma_min": math.inf,
            "dist_max_increase": 0.0,
            "dist_prev": math.nan,
            "replay_checked": 0,
            "replay_max_diff": 0.0,
        }
        self.stored: list[tuple[int, torch.Tensor, torch.Tensor, float, float, torch.Tensor]] = []

    def setup(self, rt: Any) -> None:
        """Replay: read θ* and pass 1's minibatch losses from the run's Reference, ‖θ_0 − θ*‖², and
        ℓ_i(θ*) of every training sample when minibatch losses can be read off them. Store: nothing
        (θ* is known only at the end)."""
        self.rt = rt
        if self.mode == "store":
            return
        if rt.reference is None:
            raise UserError(
                f"probe {self.name}: replay mode needs the final iterate of a first "
                "pass (sgdlab.run does both passes; pass reference= to train())"
            )
        self.theta_star = rt.reference.theta_star.to(rt.theta0.device, rt.theta0.dtype)
        self.work = Workspace(self.theta_star)
        self.after = trainable(rt.model)  # θ_{k+1}: the live parameter tensors
        self.ref_losses = rt.reference.batch_losses
        self.dist0_sq = dist_sq(rt.theta0, self.theta_star)
        self.star_table = star_losses(rt, self.theta_star)

    def measure(self, ctx: Any) -> dict[str, float]:
        """Replay: check ℓ(θ_k; B_k) against pass 1, then the `gamma_terms` row of step k. Store: keep
        θ_k, θ_{k+1}, η_k, ℓ(θ_k; B_k) and B_k's indices, and record nothing yet."""
        if self.mode == "store":
            # B_k as training-set indices (a plain tensor, so checkpoints hold it as it is)
            idx = torch.arange(len(ctx.data.train))[ctx.indices].clone()
            self.stored.append(
                (
                    ctx.step,
                    ctx.params_before.detach().clone(),
                    ctx.params.clone(),
                    ctx.lr,
                    ctx.batch_loss_before,
                    idx,
                )
            )
            return {}
        self._verify(ctx.step, ctx.batch_loss)
        row = gamma_terms(
            ctx.params_before,
            self.after,
            ctx.lr,
            self.work,
            self.dist0_sq,
            ctx.batch_loss_before,
            loss_on_batch(self.rt, self.theta_star, self.star_table, ctx.indices),
            self.gap_tol,
        )
        self._count(row)
        return row

    def _verify(self, step: int, loss: float) -> None:
        if step >= len(self.ref_losses):
            raise ReplayError(
                f"replay reached step {step}, past the {len(self.ref_losses)} steps of the first pass"
            )
        ref = float(self.ref_losses[step])
        if math.isnan(ref):
            return
        diff = abs(loss - ref)
        if not diff <= self.replay_tol * max(1.0, abs(ref)):
            raise ReplayError(
                f"replay diverged from the first pass at step {step}: minibatch loss {loss!r} vs "
                f"{ref!r}; the run is not deterministic here (on GPU set deterministic = true, or "
                f"allow probes.{self.name}.replay_tol)"
            )
        self.stats["replay_checked"] += 1
        self.stats["replay_max_diff"] = max(self.stats["replay_max_diff"], diff)

    def _count(self, row: dict[str, float]) -> None:
        s = self.stats
        if row["gamma_defined"]:
            s["defined"] += 1
            s["positive"] += row["gamma"] > 0
            s["gamma_min"] = min(s["gamma_min"], row["gamma"])
        else:
            s["undefined"] += 1
        if not math.isnan(s["dist_prev"]):
            s["dist_max_increase"] = max(s["dist_max_increase"], row["gamma_dist"] - s["dist_prev"])
        s["dist_prev"] = row["gamma_dist"]

    def finish(self, ctx: Any) -> Deferred:
        """The summary (and in store mode the rows of every stored step, computed now with θ* the
        final iterate)."""
        rows = {}
        if self.mode == "store":
            theta_star = ctx.params
            dist0_sq = dist_sq(ctx.theta0, theta_star)
            work, table = Workspace(theta_star), star_losses(self.rt, theta_star)
            for step, theta_k, theta_next, lr, loss_k, idx in self.stored:
                loss_star = loss_on_batch(self.rt, theta_star, table, idx)
                rows[step] = gamma_terms(
                    theta_k, theta_next, lr, work, dist0_sq, loss_k, loss_star, self.gap_tol
                )
                self._count(rows[step])
        s = self.stats
        summary = {
            "mode": self.mode,
            "defined_steps": s["defined"],
            "undefined_steps": s["undefined"],
            "positive_fraction": s["positive"] / s["defined"] if s["defined"] else None,
            "gamma_min": s["gamma_min"] if s["defined"] else None,
            "dist_max_increase": s["dist_max_increase"],
        }
        if self.mode == "replay":
            summary |= {
                "replay_checked_steps": s["replay_checked"],
                "replay_max_loss_diff": s["replay_max_diff"],
            }
        return Deferred(rows, summary)

    def state_dict(self) -> dict[str, Any]:
        """The running counts, and in store mode the stored steps (so a resumed run has them all)."""
        state: dict[str, Any] = {"stats": dict(self.stats)}
        if self.mode == "store":
            state["stored"] = [list(item) for item in self.stored]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counts and stored steps of `state_dict`."""
        if "stats" in state:
            self.stats = dict(state["stats"])
        self.stored = [
            (int(s), t, u, float(lr), float(loss), idx) for s, t, u, lr, loss, idx in state.get("stored", [])
        ]
