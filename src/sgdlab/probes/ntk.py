"""How far training is from the lazy (linearized) regime (Jacot et al. 2018; Lee et al. 2019):

  ntk_kernel_change  ‖Θ̂_t − Θ̂_0‖_F / ‖Θ̂_0‖_F on a fixed subset of the training inputs (the
                     first `points`): 0 in the infinite-width limit, where the kernel is frozen
  ntk_lin_gap        RMS over a fixed set of test inputs (the first `test_points`; training
                     inputs when there is no test split) of f(x; θ_t) − f_lin(x; θ_t), the
                     network against its linearization at θ_0 at the same parameters:
                     f_lin(x; θ) = f(x; θ_0) + φ_0(x)ᵀ(θ − θ_0) (one jvp)
  ntk_lin_gap_rel    ntk_lin_gap / RMS(f(x; θ_t) − f(x; θ_0)): the share of the output change
                     that the linearization misses (0 before anything moved)
  ntk_limit_gap      RMS of f(x; θ_t) − f_∞(x), f_∞ the closed-form GD limit of the linearized
                     model (Nonnenmacher, Reeb & Steinwart 2021, Thm 3.1) from Θ̂_0 on the whole
                     training set; with `prediction = "auto"` only for the squared loss and at
                     most 2048 training points ("gd-limit": always, "none": never)

Θ̂_0, f(·; θ_0) on the test inputs and f_∞ are computed once (at the first measurement) and
kept in `state_dict`, so a resumed run continues from exactly the same references. Everything
is evaluated in eval mode on functional copies of θ: no parameter, buffer, RNG or .grad changes.
Attention (`F.scaled_dot_product_attention`) runs on its math kernel inside the probe: the fused
kernels have no forward-mode AD (sgdlab.attention).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..attention import math_attention
from ..errors import UserError
from ..ntk import closed_form, empirical_ntk, outputs_and_jvp, relative_change
from ..ntk.kernel import NtkMethod
from .base import Probe
from .context import eval_mode
from .registry import probes

PREDICTIONS = ("auto", "gd-limit", "none")
MAX_AUTO_TRAIN = 2048


def _rms(values: torch.Tensor) -> float:
    return float(values.double().pow(2).mean().sqrt()) if values.numel() else 0.0


@probes.register(
    "ntk",
    help="lazy-regime monitor: relative change of the empirical NTK on a fixed "
    "subset, network vs its linearization at θ_0 on test inputs, gap to the closed-form "
    "GD limit (Lee et al. 2019; Nonnenmacher et al. 2021)",
    options={
        "schedule": "log:1.5",
        "points": 32,
        "test_points": 64,
        "method": "auto",
        "memory_mb": 1024,
        "prediction": "auto",
    },
)
class NtkProbe(Probe):
    """The lazy-regime monitor: `ntk_kernel_change`, `ntk_lin_gap`, `ntk_lin_gap_rel` and
    (with a limit) `ntk_limit_gap`, as the module docstring defines them."""

    needs = frozenset({"theta0"})

    def __init__(
        self,
        name: str,
        schedule: str = "log:1.5",
        points: int = 32,
        test_points: int = 64,
        method: str = "auto",
        memory_mb: int = 1024,
        prediction: str = "auto",
    ):
        super().__init__(name, schedule)
        for key, value in (("points", points), ("test_points", test_points), ("memory_mb", memory_mb)):
            if value < 1:
                raise UserError(f"probes.{name}.{key}: {value} is out of range (must be >= 1)")
        if method not in {m.value for m in NtkMethod}:
            raise UserError(
                f"probes.{name}.method: {method!r} is not one of {', '.join(m.value for m in NtkMethod)}"
            )
        if prediction not in PREDICTIONS:
            raise UserError(
                f"probes.{name}.prediction: {prediction!r} is not one of {', '.join(PREDICTIONS)}"
            )
        self.points, self.test_points, self.method = points, test_points, method
        self.budget, self.prediction = memory_mb << 20, prediction
        self.rt: Any = None
        self.reference: dict[str, torch.Tensor] = {}

    def setup(self, rt: Any) -> None:
        """Keep the run's Runtime (the references are computed at the first measurement)."""
        self.rt = rt

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.rt.data
        subset = data.batch(data.train, slice(0, self.points))[0]
        source = data.test if len(data.test) else data.train
        return subset, data.batch(source, slice(0, self.test_points))[0]

    def _wants_limit(self) -> bool:
        if self.prediction == "none":
            return False
        if self.prediction == "gd-limit":
            return True
        return self.rt.loss.name == "squared" and len(self.rt.data.train) <= MAX_AUTO_TRAIN

    def _references(self) -> dict[str, torch.Tensor]:
        """Θ̂_0 on the subset, f_0 on the test inputs and (if wanted) f_∞ there."""
        rt, model = self.rt, self.rt.model
        subset, test = self._inputs()
        opts = dict(theta=rt.theta0, method=self.method, memory_budget=self.budget)
        ref = {"kernel0": empirical_ntk(model, subset, **opts)}
        with eval_mode(model), torch.no_grad():
            ref["f0"] = outputs_and_jvp(model, test, rt.theta0, torch.zeros_like(rt.theta0))[0].detach()
        if self._wants_limit():
            x, y = rt.data.batch(rt.data.train, slice(None))
            with eval_mode(model):
                cf = closed_form(model, x, y.to(ref["f0"].dtype), test, **opts)
            ref["limit"] = cf.limit().total.reshape(ref["f0"].shape).to(ref["f0"].dtype)
        return ref

    def measure(self, ctx: Any) -> dict[str, float]:
        """Kernel change, linearization gap and (if computed) the gap to the GD limit at θ_t; with
        attention by its math kernel (jvp through the fused kernels is not implemented)."""
        with math_attention():
            return self._measure(ctx)

    def _measure(self, ctx: Any) -> dict[str, float]:
        if not self.reference:
            self.reference = self._references()
        ref, model, theta = self.reference, ctx.model, ctx.params
        subset, test = self._inputs()
        kernel = empirical_ntk(model, subset, theta=theta, method=self.method, memory_budget=self.budget)
        theta0 = self.rt.theta0
        with eval_mode(model), torch.no_grad():
            f_t = outputs_and_jvp(model, test, theta, torch.zeros_like(theta))[0]
            f0, move = outputs_and_jvp(model, test, theta0, theta - theta0)
        gap, moved = _rms(f_t - (f0 + move)), _rms(f_t - ref["f0"])
        row = {
            "ntk_kernel_change": relative_change(kernel, ref["kernel0"]),
            "ntk_lin_gap": gap,
            "ntk_lin_gap_rel": gap / moved if moved > 0 else 0.0,
        }
        if "limit" in ref:
            row["ntk_limit_gap"] = _rms(f_t - ref["limit"])
        return {k: (v if math.isfinite(v) else float("nan")) for k, v in row.items()}

    def state_dict(self) -> dict[str, Any]:
        """The references Θ̂_0, f(·; θ_0) and f_∞, so that a resumed run compares against the same ones."""
        return {k: v.detach().clone() for k, v in self.reference.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the references."""
        self.reference = dict(state)
