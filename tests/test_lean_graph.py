"""First derivatives built for a second differentiation (sgdlab.curvature.lean_graph): the same
gradients and Hessian-vector products as PyTorch's built-in formulas, to rounding, for every
convolution, ReLU and pooling variant the mode takes over or passes on; a dense Hessian of a
small CNN; and, the reason the mode exists, no gradient of the data and no tensors of zeros in
a product."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from sgdlab.curvature import HessianOperator
from sgdlab.curvature.lean_graph import ThirdDerivativeError, lean_first_derivatives
from sgdlab.losses import get_loss
from test_curvature import dense_hessian

CE = get_loss("cross-entropy", "index")


def first_and_second(f, params: list[torch.Tensor], v: list[torch.Tensor], lean: bool):
    """(∇f, H v) by double backward, the graph of ∇f built inside the lean mode or not."""
    if lean:
        with lean_first_derivatives():
            g = torch.autograd.grad(f(), params, create_graph=True)
    else:
        g = torch.autograd.grad(f(), params, create_graph=True)
    hv = torch.autograd.grad(g, params, v, allow_unused=True)
    return [t.detach() for t in g], [
        torch.zeros_like(p) if h is None else h for h, p in zip(hv, params, strict=True)
    ]


def assert_same_derivatives(f, params: list[torch.Tensor]) -> None:
    gen = torch.Generator().manual_seed(3)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    g_lean, hv_lean = first_and_second(f, params, v, lean=True)
    g_ref, hv_ref = first_and_second(f, params, v, lean=False)
    for a, b in zip(g_lean + hv_lean, g_ref + hv_ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def tensor(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(grad)


@pytest.mark.parametrize(
    "dims, stride, padding, dilation, groups, bias",
    [
        (2, 1, 0, 1, 1, True),
        (2, 2, (1, 2), 1, 2, False),
        (2, (2, 1), 1, 2, 1, True),
        (2, 1, "valid", 1, 1, True),
        (2, 1, "same", 1, 1, True),  # a string padding: PyTorch's formulas
        (1, 2, 1, 1, 2, True),
        (3, 1, 1, 1, 1, False),
    ],
)
@pytest.mark.parametrize("input_grad", [True, False])
def test_convolutions_have_the_builtin_first_and_second_derivatives(
    dims, stride, padding, dilation, groups, bias, input_grad
):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    size = (9,) * dims if dims < 3 else (5,) * dims
    x = tensor(3, 4, *size, grad=input_grad)
    w = tensor(6, 4 // groups, *(3,) * dims, seed=1)
    b = tensor(6, seed=2) if bias else None
    params = [w] + ([b] if bias else []) + ([x] if input_grad else [])

    def f():
        out = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return (torch.tanh(out) ** 2).sum()  # curved in the output: a real second derivative

    assert_same_derivatives(f, params)


def test_an_unbatched_input_falls_through_to_pytorch():
    x, w = tensor(4, 9, 9), tensor(6, 4, 3, 3, seed=1)
    assert_same_derivatives(lambda: torch.tanh(F.conv2d(x, w)).pow(2).sum(), [w, x])


@pytest.mark.parametrize(
    "relu",
    [F.relu, torch.relu, torch.Tensor.relu, nn.ReLU(), lambda t: F.relu(t.clone(), inplace=True)],
    ids=["F.relu", "torch.relu", "Tensor.relu", "nn.ReLU", "in-place"],
)
def test_relus_have_the_builtin_first_and_second_derivatives(relu):
    w1, w2 = tensor(5, 7), tensor(3, 5, seed=1)
    x = tensor(8, 7, seed=2, grad=False)
    assert_same_derivatives(lambda: torch.tanh(relu(x @ w1.T) @ w2.T).pow(2).sum(), [w1, w2])


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(3, 2, padding=1),
        nn.MaxPool2d(2),
        nn.MaxPool2d((3, 2), stride=(1, 2), dilation=(1, 2), ceil_mode=True),
        lambda t: F.max_pool2d(t, 2, return_indices=True)[0],
        lambda t: F.max_pool2d(t[0], 2),  # unbatched
    ],
    ids=["3/2 padded", "2", "dilated ceil", "indices returned", "unbatched"],
)
def test_max_pooling_has_the_builtin_first_and_second_derivatives(pool):
    w = tensor(4, 2, 3, 3, seed=1)
    x = tensor(2, 2, 11, 11, seed=2, grad=False)
    assert_same_derivatives(lambda: torch.tanh(pool(F.conv2d(x, w))).pow(2).sum(), [w])


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    ).double()


def images(n: int = 10):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, 8, 8, generator=gen, dtype=torch.float64)
    return x, torch.randint(0, 3, (n,), generator=gen)


def test_the_operator_on_a_cnn_is_the_dense_hessian():
    model, (x, y) = cnn(), images()
    dense = dense_hessian(model, x, y)  # PyTorch's own formulas, no lean mode
    op = HessianOperator(model, CE, x, y, chunk=4)
    assert torch.allclose(op.dense(), dense, atol=1e-12)


class OpLog(TorchDispatchMode):
    """The aten ops a region runs, with their output shapes."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.calls.append((func.overloadpacket.__name__, tuple(t.shape)))
        return out


def test_a_product_computes_no_gradient_of_the_data_and_no_zeros():
    model, (x, y) = cnn(), images()
    op = HessianOperator(model, CE, x, y)
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with OpLog() as log:
        op @ v
    assert ("zeros_like", tuple(x.shape)) not in log.calls
    assert all(shape != tuple(x.shape) for _, shape in log.calls)  # nothing the data's shape
    relu_shape = (len(x), 3, 6, 6)
    assert not [name for name, shape in log.calls if name in ("zeros_like", "zeros") and shape == relu_shape]
    assert any(shape == relu_shape for _, shape in log.calls)  # the layer is differentiated


def test_a_third_differentiation_is_refused_not_wrong():
    x, w = tensor(2, 2, 6, 6, grad=False), tensor(3, 2, 3, 3, seed=1)
    with lean_first_derivatives():
        (g,) = torch.autograd.grad(torch.tanh(F.conv2d(x, w)).pow(2).sum(), w, create_graph=True)
    with pytest.raises(ThirdDerivativeError, match="differentiable once more, not twice"):
        torch.autograd.grad(g, w, torch.ones_like(w), create_graph=True)
