"""Moments of per-sample gradients without the N×N Gram matrix: ‖g_i‖² and ⟨g_i, S⟩, S = Σ_j g_j,
of a Linear or Conv layer call in O(N·P), from the same inputs and output gradients as the
outer-product identity (sgdlab.gradients.ghost) plus the layer's weight gradient S_W of the
same loss (the training step's own). ⟨r_i, S_W⟩ for r_i = Σ_t δ_it a_itᵀ is Σ_t δ_itᵀ S_W a_it:
one matmul over all samples and positions (a convolution of the inputs with S_W for a conv
layer), with no per-sample gradient formed. That is what the gradients probe needs for norms,
variance, SNR and Cockpit's three tests (pairs = false)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import Workspace, conv2d_args, conv_per_sample_chunks, sample_chunk
from .ghost import Record, conv_weight_gram, gram_of_rows, layer_scales, trainable_names, weight_gram


def weight_moments(
    a: torch.Tensor, d: torch.Tensor, total: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖r_i‖², ⟨r_i, S⟩) of r_i = Σ_t δ_it a_itᵀ for a [N, T, d_in], d [N, T, d_out] and
    S = `total` [d_out, d_in], float64 [N] each. ⟨r_i, S⟩ = Σ_t δ_itᵀ S a_it is one matmul over
    all samples and positions; ‖r_i‖² comes from the identity's own T×T block when that is
    cheaper than forming r_i, else from r_i (a few samples at a time). With T = 1 the Gram
    matrix itself is often cheaper (`linear_moments` decides)."""
    n, t, d_in = a.shape
    d_out = d.shape[2]
    rows = ((a.reshape(n * t, d_in) @ total.T).reshape(n, t, d_out) * d).sum(dim=(1, 2)).double()
    if t * t * (d_in + d_out) <= t * d_in * d_out:
        return weight_gram(a, d, budget, diag=True), rows
    norms = a.new_empty(n)
    step = sample_chunk(a.element_size() * d_in * d_out)
    for i in range(0, n, step):
        r = torch.einsum("nto,nti->noi", d[i : i + step], a[i : i + step]).reshape(-1, d_in * d_out)
        torch.linalg.vector_norm(r, dim=1, out=norms[i : i + step])
    return norms.double().square(), rows


def linear_moments(
    a: torch.Tensor, d: torch.Tensor, total: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight_moments` of a Linear call, or the diagonal and row sums of its Gram block
    (`weight_gram`) when forming that costs less: N²T²(d_in + d_out) against N·T·d_in·d_out
    (at T = 1 and a batch of 128, the Gram block is the cheaper one for layers wider than
    about 128 → 128)."""
    n, t, d_in = a.shape
    d_out = d.shape[2]
    if n * t * t * (d_in + d_out) <= t * d_in * d_out:
        gram = weight_gram(a, d, budget)
        return gram.diagonal().clone(), gram.sum(dim=1)
    return weight_moments(a, d, total, budget)


def conv_sq_norms(
    a: torch.Tensor, d: torch.Tensor, kernel, stride, padding, dilation, budget: int
) -> torch.Tensor:
    """‖∇_W ℓ_i‖² of a Conv2d call by the identity, float64 [N], without the input patches:
    Σ_{t,s} ⟨u_it, u_is⟩⟨δ_it, δ_is⟩, where the patch inner products are sums of the padded
    input's own spatial Gram matrix G_i[p, q] = Σ_c a_icp a_icq along the kernel's offsets,
    ⟨u_it, u_is⟩ = Σ_κ G_i[p_t + κ, p_s + κ] (p_t the input position output t reads from).
    Per sample that costs P²C + K·T² + T²O (P input positions, K = kh·kw) instead of the
    patches' T²·C·K, and no patch copy; samples go in blocks within `budget` bytes.
    G is formed from the unpadded input (padding only adds zero rows and columns) and laid out
    samples last, [p_h, q_h, p_w, q_w, N], so that each kernel offset's window is a slice
    with long contiguous runs: on a 3C3D's third convolution 1.8 ms instead of 4.8 for the
    batch-first layout, whose runs are one output row (6 numbers) long."""
    n, c, h, w = a.shape
    o, out_h, out_w = d.shape[1:]
    big_h, big_w = h + 2 * padding[0], w + 2 * padding[1]
    t = out_h * out_w
    flat_a, flat_d = a.reshape(n, c, h * w), d.reshape(n, o, t)
    inside = (slice(padding[0], padding[0] + h),) * 2 + (slice(padding[1], padding[1] + w),) * 2
    out = torch.empty(n, dtype=torch.float64, device=a.device)
    step = max(1, budget // (a.element_size() * (2 * big_h * big_h * big_w * big_w + 3 * t * t)))
    for i in range(0, n, step):
        part = flat_a[i : i + step]
        s = part.shape[0]
        gram = torch.bmm(part.transpose(1, 2), part).view(s, h, w, h, w).permute(1, 3, 2, 4, 0)
        padded = a.new_zeros(big_h, big_h, big_w, big_w, s)
        padded[inside] = gram
        patch_gram = a.new_zeros(out_h, out_h, out_w, out_w, s)
        for kh in range(kernel[0]):
            rows = slice(kh * dilation[0], kh * dilation[0] + stride[0] * (out_h - 1) + 1, stride[0])
            for kw in range(kernel[1]):
                cols = slice(kw * dilation[1], kw * dilation[1] + stride[1] * (out_w - 1) + 1, stride[1])
                patch_gram += padded[rows, rows, cols, cols]
        grad_gram = torch.bmm(flat_d[i : i + step].transpose(1, 2), flat_d[i : i + step])
        grad_gram = grad_gram.view(s, out_h, out_w, out_h, out_w).permute(1, 3, 2, 4, 0)
        out[i : i + step] = (patch_gram * grad_gram).sum(dim=(0, 1, 2, 3))
    return out


def identity_norms_cheaper(a: torch.Tensor, d: torch.Tensor, kernel, padding) -> bool:
    """Whether a Conv2d call's ‖∇_W ℓ_i‖² by the identity (`conv_sq_norms`) costs under a
    quarter of forming the per-sample gradients, for its input a [N, C, H, W] and output
    gradient d [N, O, H', W']: P²C + K·T² + T²O against T·C·K·O per sample (P padded input
    positions, T output positions, K = kh·kw)."""
    c, o = a.shape[1], d.shape[1]
    t, k = d.shape[2] * d.shape[3], kernel[0] * kernel[1]
    positions = (a.shape[2] + 2 * padding[0]) * (a.shape[3] + 2 * padding[1])
    return 4 * (positions * positions * c + k * t * t + t * t * o) < t * c * k * o


def conv_weight_moments(
    layer: nn.Module,
    a: torch.Tensor,
    d: torch.Tensor,
    total: torch.Tensor,
    budget: int,
    work: Workspace | None = None,
    bias: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖∇_W ℓ_i‖², ⟨∇_W ℓ_i, S⟩) of a Conv1d/Conv2d call, S = `total` (the weight's shape);
    with `bias`, of the weight and the bias together (S_b = Σ_j ∇_b ℓ_j).
    Where the identity's norms (`conv_sq_norms`) cost under a quarter of the per-sample
    gradients (few output positions): those, and one convolution of the inputs with S for the
    inner products, since ⟨∇_W ℓ_i, S⟩ = Σ_t δ_itᵀ S u_it = ⟨δ_i, conv(a_i; S)⟩ (a 3C3D's
    third convolution, 6×6 outputs at 14 % of the cost: at least 1.6× faster than per-sample
    gradients; its second, 12×12 at 58 %: 2.2× slower); otherwise the per-sample gradients, a
    few samples at a time in `work`'s memory, never all of them at once. There the bias
    gradients Σ_t δ_it come out of the same matmul, from a row of ones under the patches, and
    the norms of whole rows [∇_W ℓ_i | ∇_b ℓ_i]: no pass of their own over δ; and a chunk's
    norms and inner products with S come out of one matmul of its rows with themselves and
    S, kept behind them (on a 3C3D's first two layers 0.4 and 0.8 ms less than a norm and a
    matrix-vector product per chunk)."""
    a, d, kernel, stride, padding, dilation = conv2d_args(layer, a, d)
    n, c = a.shape[:2]
    o, hw = d.shape[1], d.shape[2:]
    t, d_in = hw[0] * hw[1], c * kernel[0] * kernel[1]
    if identity_norms_cheaper(a, d, kernel, padding):
        weight = total.reshape(o, c, *kernel)
        rows = (F.conv2d(a, weight, None, stride, padding, dilation) * d).sum(dim=(1, 2, 3)).double()
        sq = conv_sq_norms(a, d, kernel, stride, padding, dilation, budget)
        if bias:
            b_sq, b_rows = _row_moments(d.reshape(n, o, t).sum(dim=2))
            sq, rows = sq + b_sq, rows + b_rows
        return sq, rows
    # Sᵀ with a zero row where the products hold the bias gradient, behind the products: each
    # chunk's ‖∇_W ℓ_i‖² and ⟨∇_W ℓ_i, S⟩ come out of one matmul with the products and S
    tail = total.reshape(o, d_in).T
    tail = (F.pad(tail, (0, 0, 0, 1)) if bias else tail).unsqueeze(0)
    sq, rows = a.new_empty(n), a.new_empty(n)
    db = a.new_empty(n, o) if bias else None
    chunks = conv_per_sample_chunks(a, d, kernel, stride, padding, dilation, work=work, ones=bias, tail=tail)
    for i, g, products in chunks:
        s = g.shape[0]
        inner = torch.mm(products[:s], products.T)  # [s, step + 1]
        sq[i : i + s] = inner.diagonal()
        rows[i : i + s] = inner[:, -1]
        if db is not None:
            db[i : i + s] = g[:, d_in]
    out = rows.double()
    if db is not None:
        out += (db @ db.sum(dim=0)).double()  # the bias norms are already in the rows' norms
    return sq.double(), out


def record_moments(
    record: Record,
    scale: float,
    budget: int,
    weight_grad: torch.Tensor | None,
    work: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖g_i‖², ⟨g_i, S⟩), S = Σ_j g_j, of one layer call's trainable parameters (float64 [N]
    each), from its input and ∂loss/∂output (times `scale`, as `record_gram`). `weight_grad`:
    the weight's gradient of that same loss, so S_W = scale·weight_grad (the training step
    has just computed it); without it the weight's part comes from its Gram block. Both are
    quadratic in the output gradients, so `scale` multiplies the results (no scaled copy).
    `work`: scratch memory kept by the caller from step to step (`Workspace`)."""
    layer = record.layer
    a = record.input
    n = a.shape[0]
    sq = torch.zeros(n, dtype=torch.float64, device=a.device)
    rows = torch.zeros(n, dtype=torch.float64, device=a.device)
    if record.grad is None:  # the output did not reach the loss: zero gradients
        return sq, rows
    d = record.grad
    conv = isinstance(layer, (nn.Conv1d, nn.Conv2d))
    s_w, s_b = layer_scales(layer)
    names = trainable_names(layer)
    bias_done = False  # the bias's part already in the weight's (a convolution's per-sample path)
    if "weight" in names:
        if weight_grad is None:
            if conv:
                gram = conv_weight_gram(layer, a, d, budget)
            else:
                gram = weight_gram(a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1]), budget)
            w_sq, w_rows = gram.diagonal(), gram.sum(dim=1)
        else:
            # Σ_i δ_i a_iᵀ in the units of `d` (no copy of the gradient where the scale is 1)
            total = weight_grad.detach() if s_w == 1.0 else weight_grad.detach() / s_w
            if conv:
                bias_done = "bias" in names  # s_w = s_b = 1
                w_sq, w_rows = conv_weight_moments(layer, a, d, total, budget, work, bias=bias_done)
            else:
                w_sq, w_rows = linear_moments(
                    a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1]), total, budget
                )
        sq += (s_w * s_w) * w_sq
        rows += (s_w * s_w) * w_rows
    if "bias" in names and not bias_done:
        db = d.reshape(n, d.shape[1], -1).sum(dim=2) if conv else _positions_summed(d)
        b_sq, b_rows = _row_moments(db)
        sq += (s_b * s_b) * b_sq
        rows += (s_b * s_b) * b_rows
    return sq.mul_(scale * scale), rows.mul_(scale * scale)


def _row_moments(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖b_i‖², ⟨b_i, Σ_j b_j⟩) of per-sample rows b [N, k] (a bias's gradients), float64 [N] each."""
    return gram_of_rows(b, diag=True), (b @ b.sum(dim=0)).double()


def _positions_summed(d: torch.Tensor) -> torch.Tensor:
    """Σ_t δ_it of a Linear call's output gradients [N, …, d_out], [N, d_out]: `d` itself when
    there are no positions (a sum over a dimension of one still reads and writes it all)."""
    return d if d.dim() == 2 else d.reshape(d.shape[0], -1, d.shape[-1]).sum(dim=1)
