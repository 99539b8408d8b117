"""The optimizer table: each entry builds the torch optimizer of an update rule. Its `options`
are the OptimConfig fields it reads (with their defaults); `sampler` forces a sampler.

A factory is `build(opts: OptimOptions, params) -> torch.optim.Optimizer`. Resolution
(`sgdlab.build.resolve`) fills every option an optimizer reads, so `OptimOptions` gives them
typed without None and raises a ConfigError naming a field that is still unset.

The update rules, for the gradient g_k of the minibatch loss at θ_k and step size η (weight
decay λ adds λθ_k to g_k in all of them):

  sgd, gd      θ_{k+1} = θ_k − η g_k
  momentum     v ← μv + (1 − τ)g (v = g at the first step),  θ ← θ − ηv
  nesterov     v ← μv + g,  θ ← θ − η(g + μv)
  adam         m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − η m̂/(√v̂ + ε),
               m̂ = m/(1−β₁ᵏ), v̂ = v/(1−β₂ᵏ)
  adagrad      G ← G + g², θ ← θ − η_k g/(√G + ε),  η_k = η/(1 + (k−1)·lr_decay)
  rmsprop      v ← αv + (1−α)g², θ ← θ − η g/(√v + ε)  (with momentum / centering options)
  sgdl         sgd, then θ ← θ + γ'_k·W_k (see rule.LangevinNoise)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

import torch

from ..config import OptimConfig
from ..errors import ConfigError
from ..registry import OptionsView, Registry

Params = Iterable[torch.Tensor]


class OptimOptions(OptionsView):
    """A resolved OptimConfig as an optimizer factory reads it: the shared fields, and each
    optimizer-specific option typed without its `None` (which resolution replaces by the
    optimizer's default). The options are declared, with their help, in
    `sgdlab.config.schema.OptimConfig`."""

    schema = OptimConfig
    section = "optim"
    kind = "optimizer"

    lr: float
    weight_decay: float
    momentum: float
    dampening: float
    eps: float
    alpha: float
    centered: bool
    amsgrad: bool
    lr_decay: float
    initial_accumulator_value: float
    noise: float
    noise_decay: str

    @property
    def betas(self) -> tuple[float, float]:
        """Adam's (β₁, β₂); resolution checks there are two, each in [0, 1)."""
        betas = self.option("betas")
        if len(betas) != 2:
            raise ConfigError(f"optim.betas: {list(betas)} must be two numbers in [0, 1)")
        return betas[0], betas[1]


OptimizerFactory = Callable[[OptimOptions, Params], torch.optim.Optimizer]

optimizers: Registry[OptimizerFactory] = Registry("optimizer")


def _sgd(opts: OptimOptions, params: Params, **kw: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=opts.lr, weight_decay=opts.weight_decay, **kw)


@optimizers.register("sgd", help="stochastic gradient descent, constant or scheduled step")
def sgd(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """Plain SGD, θ_{k+1} = θ_k − η_k g_k on the sampler's minibatches (Robbins & Monro 1951)."""
    return _sgd(opts, params)


@optimizers.register("gd", help="gradient descent: SGD on the full batch", sampler="full")
def gd(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """Gradient descent: the SGD update with g_k the gradient of the full training loss (the
    entry forces the full-batch sampler)."""
    return _sgd(opts, params)


@optimizers.register(
    "sgdl",
    help="SGD plus Langevin noise γ'·N(0, I) after each step "
    "(Zhang et al. 2017, Theory of deep learning IIb)",
    options={"noise": 0.01, "noise_decay": "none"},
    post="langevin",
)
def sgdl(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """The SGD part of SGDL (Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017, "Theory of
    deep learning IIb: optimization properties of SGD"); `build_rule` adds the noise step
    θ ← θ + γ'_k·W_k, W_k ~ N(0, I), as a post-step transform."""
    return _sgd(opts, params)


@optimizers.register(
    "momentum", help="SGD with heavy-ball momentum", options={"momentum": 0.9, "dampening": 0.0}
)
def momentum(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """Heavy-ball momentum (Polyak 1964) in PyTorch's form: v ← μv + (1 − τ)g (v = g at the
    first step), θ ← θ − ηv."""
    return _sgd(opts, params, momentum=opts.momentum, dampening=opts.dampening)


@optimizers.register("nesterov", help="SGD with Nesterov momentum", options={"momentum": 0.9})
def nesterov(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """Nesterov momentum (Nesterov 1983; Sutskever et al. 2013) in PyTorch's form: v ← μv + g,
    θ ← θ − η(g + μv)."""
    return _sgd(opts, params, momentum=opts.momentum, nesterov=True)


@optimizers.register(
    "adam", help="Adam (Kingma & Ba 2015)", options={"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False}
)
def adam(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015, "Adam: a method for stochastic optimization"): moment averages
    m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², bias-corrected m̂ = m/(1−β₁ᵏ), v̂ = v/(1−β₂ᵏ) at
    step k = 1, 2, …, then θ ← θ − η m̂/(√v̂ + ε)."""
    return torch.optim.Adam(
        params,
        lr=opts.lr,
        betas=opts.betas,
        eps=opts.eps,
        weight_decay=opts.weight_decay,
        amsgrad=opts.amsgrad,
    )


@optimizers.register(
    "adagrad",
    help="AdaGrad (Duchi et al. 2011)",
    options={"eps": 1e-10, "lr_decay": 0.0, "initial_accumulator_value": 0.0},
)
def adagrad(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """AdaGrad (Duchi, Hazan & Singer 2011, "Adaptive subgradient methods for online learning
    and stochastic optimization"), diagonal form: G ← G + g² (G_0 = initial_accumulator_value),
    θ ← θ − η_k g/(√G + ε) with η_k = η/(1 + (k−1)·lr_decay)."""
    return torch.optim.Adagrad(
        params,
        lr=opts.lr,
        lr_decay=opts.lr_decay,
        eps=opts.eps,
        weight_decay=opts.weight_decay,
        initial_accumulator_value=opts.initial_accumulator_value,
    )


@optimizers.register(
    "rmsprop",
    help="RMSprop (Tieleman & Hinton 2012)",
    options={"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False},
)
def rmsprop(opts: OptimOptions, params: Params) -> torch.optim.Optimizer:
    """RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5): v ← αv + (1−α)g²,
    θ ← θ − η g/(√v + ε); with momentum μ > 0 the step goes through a buffer b ← μb + g/(√v + ε),
    and `centered` divides by √(v − m²) + ε, m the running mean of g."""
    return torch.optim.RMSprop(
        params,
        lr=opts.lr,
        alpha=opts.alpha,
        eps=opts.eps,
        weight_decay=opts.weight_decay,
        momentum=opts.momentum,
        centered=opts.centered,
    )
