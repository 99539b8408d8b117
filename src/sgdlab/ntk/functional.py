"""A PyTorch model as a pure function of its flat parameter vector θ, and the per-sample
Jacobian rows ∂f(x_i)/∂θ that every NTK method is built from.

The model is evaluated in eval mode (no dropout, batch-norm running statistics), so f(θ, x_i)
depends on θ and x_i alone: the NTK is a property of the function, not of a minibatch. Buffers
are used as they are and never written.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ..modes import eval_mode
from ..params import flat_params, named_views

Params = dict[str, torch.Tensor]
ModelFn = Callable[[Params, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Functional:
    """f(params, x) → [n, k] for a batch x, with `params` a {name: tensor} dict of the model's
    trainable parameters; `theta` is the flat θ at which kernels are taken."""

    model: nn.Module
    fn: ModelFn
    theta: torch.Tensor
    n_outputs: int
    sample_activations: int  # numbers a forward pass produces per input (for memory plans)

    @property
    def n_params(self) -> int:
        """P, the number of trainable parameters."""
        return self.theta.numel()

    @property
    def itemsize(self) -> int:
        """Bytes per parameter (for memory plans)."""
        return self.theta.element_size()

    def params(self, theta: torch.Tensor | None = None) -> Params:
        """The trainable parameters as {name: view of θ} (θ = `theta` if given, else the kernel's θ)."""
        return named_views(self.model, self.theta if theta is None else theta)

    def split(self, flat: torch.Tensor) -> Params:
        """A flat vector shaped like the parameters (views of `flat`)."""
        return named_views(self.model, flat)


def functional(
    model: nn.Module, theta: torch.Tensor | None = None, example: torch.Tensor | None = None
) -> Functional:
    """`model` as f(params, x) at θ = `theta` (default: its current parameters). `example` (one
    or more inputs) sizes the output and the activations; without it they are found on the
    first call of `sized`."""
    theta = flat_params(model) if theta is None else theta.detach()
    buffers = dict(model.named_buffers())

    def fn(params: Params, x: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**buffers, **params}, (x,))
        return out.reshape(out.shape[0], -1)

    k, acts = (1, 1) if example is None else _sizes(model, fn, theta, example[:1])
    return Functional(model, fn, theta, k, acts)


@torch.no_grad()
def _sizes(model: nn.Module, fn: ModelFn, theta: torch.Tensor, x: torch.Tensor) -> tuple[int, int]:
    """(outputs per input, activation numbers per input) from one forward pass."""
    total = [0]

    def count(module: nn.Module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output[:1].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with eval_mode(model):
            out = fn(named_views(model, theta), x)
    finally:
        for h in hooks:
            h.remove()
    return out.shape[1], max(total[0], out.shape[1])


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (see the module docstring), without gradient bookkeeping
    on the model's own parameters."""
    with eval_mode(model), torch.no_grad():
        yield


def jacobian_rows(f: Functional, x: torch.Tensor, params: Params | None = None) -> Params:
    """{name: [n, k, *shape]}: the Jacobian of the k outputs of each input x_i with respect to
    each parameter tensor, one reverse pass per output vmapped over the inputs."""
    params = f.params() if params is None else params

    def single(p: Params, xi: torch.Tensor) -> torch.Tensor:
        return f.fn(p, xi.unsqueeze(0)).reshape(-1)

    with torch.enable_grad():
        return vmap(jacrev(single), in_dims=(None, 0))(params, x)
