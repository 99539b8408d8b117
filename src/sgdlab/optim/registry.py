"""The optimizer table: each entry builds the torch optimizer of an update rule. Its `options`
are the OptimConfig fields it reads (with their defaults); `sampler` forces a sampler."""

from __future__ import annotations

import torch

from ..config import OptimConfig
from ..registry import Registry

optimizers = Registry("optimizer")


def _sgd(cfg: OptimConfig, params, **kw) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)


@optimizers.register("sgd", help="stochastic gradient descent, constant or scheduled step")
def sgd(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return _sgd(cfg, params)


@optimizers.register("gd", help="gradient descent: SGD on the full batch", sampler="full")
def gd(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return _sgd(cfg, params)


@optimizers.register(
    "sgdl",
    help="SGD plus Langevin noise γ'·N(0, I) after each step (Zhang et al. 2017, Theory of deep learning IIb)",
    options={"noise": 0.01, "noise_decay": "none"},
    post="langevin",
)
def sgdl(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return _sgd(cfg, params)


@optimizers.register(
    "momentum", help="SGD with heavy-ball momentum", options={"momentum": 0.9, "dampening": 0.0}
)
def momentum(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return _sgd(cfg, params, momentum=cfg.momentum, dampening=cfg.dampening)


@optimizers.register("nesterov", help="SGD with Nesterov momentum", options={"momentum": 0.9})
def nesterov(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return _sgd(cfg, params, momentum=cfg.momentum, nesterov=True)


@optimizers.register(
    "adam", help="Adam (Kingma & Ba 2015)", options={"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False}
)
def adam(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params,
        lr=cfg.lr,
        betas=tuple(cfg.betas),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        amsgrad=cfg.amsgrad,
    )


@optimizers.register(
    "adagrad",
    help="AdaGrad (Duchi et al. 2011)",
    options={"eps": 1e-10, "lr_decay": 0.0, "initial_accumulator_value": 0.0},
)
def adagrad(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(
        params,
        lr=cfg.lr,
        lr_decay=cfg.lr_decay,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        initial_accumulator_value=cfg.initial_accumulator_value,
    )


@optimizers.register(
    "rmsprop",
    help="RMSprop (Tieleman & Hinton 2012)",
    options={"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False},
)
def rmsprop(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params,
        lr=cfg.lr,
        alpha=cfg.alpha,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        momentum=cfg.momentum,
        centered=cfg.centered,
    )
