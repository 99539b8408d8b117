"""Attention kernels for differentiating twice.

`F.scaled_dot_product_attention` dispatches to a fused kernel (flash attention on CPU, flash or
memory-efficient attention on CUDA) that has a first backward but neither a double backward nor
forward-mode AD. Hessian-vector products (double backward or forward-over-reverse) and jvp-based
NTKs through attention therefore run inside `math_attention()`, which selects the math kernel:
the same function, composed of differentiable operations (slower, and more memory for long
sequences). sgdlab's curvature operator (sgdlab.curvature) and NTK probe select it themselves;
training is never affected.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch.nn.attention import SDPBackend, sdpa_kernel


@contextmanager
def math_attention() -> Iterator[None]:
    """Scaled dot-product attention by its math kernel inside the block (see the module docstring).

    >>> import torch, torch.nn.functional as F
    >>> from sgdlab.attention import math_attention
    >>> q = torch.randn(1, 1, 3, 4, requires_grad=True)
    >>> with math_attention():
    ...     energy = F.scaled_dot_product_attention(q, q, q).square().sum()
    ...     (g,) = torch.autograd.grad(energy, q, create_graph=True)
    ...     (h,) = torch.autograd.grad(g.sum(), q)  # a double backward: refused by the fused kernels
    >>> h.shape
    torch.Size([1, 1, 3, 4])
    """
    with sdpa_kernel(SDPBackend.MATH):
        yield
