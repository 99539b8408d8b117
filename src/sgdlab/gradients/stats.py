"""What the Gram matrix G_ij = ⟨g_i, g_j⟩ of per-sample gradients g_i = ∇ℓ_i(θ) on a batch of N
tells, all without the gradients themselves (ḡ = (1/N) Σ g_i is the batch gradient):

  norms        ‖g_i‖ = √G_ii: min, mean, max, quantiles
  agreement    μ = min_{i≠j} G_ij (Giselsson's lecture on SGD's qualitative convergence: the
               larger μ, the more alike the gradients), and the mean and quantiles of G_ij, i≠j
  cosines      G_ij / (‖g_i‖‖g_j‖), i≠j: min, mean, quantiles (pairs with a zero gradient left out)
  batch        ‖ḡ‖² = (1/N²) Σ_ij G_ij
  variance     tr Σ̂ = (1/(N−1)) Σ_i ‖g_i − ḡ‖² = (tr G/N − ‖ḡ‖²)·N/(N−1); SNR = ‖ḡ‖²/tr Σ̂
  norm test    tr Σ̂ / (N‖ḡ‖²) ≤ θ² (Byrd, Chin, Nocedal & Wu 2012)
  inner-product test   Var̂_i⟨g_i, ḡ⟩ / (N‖ḡ‖⁴) ≤ θ²   (Bollapragada, Byrd & Nocedal 2018)
  orthogonality test   (1/(N−1)) Σ_i ‖g_i − (⟨g_i,ḡ⟩/‖ḡ‖²) ḡ‖² / (N‖ḡ‖²) ≤ ν²   (same paper)
with ⟨g_i, ḡ⟩ = (1/N) Σ_j G_ij. Everything but agreement and cosines needs only G_ii and the
row sums Σ_j G_ij (`moment_stats`), which cost O(N·P) rather than the O(N²·P) of G.
The three tests are Cockpit's (Schneider, Dangel & Hennig 2021, "Cockpit: a practical
debugging tool for the training of deep neural networks") batch-size diagnostics; each is a
ratio whose threshold the user picks. Byrd, Chin, Nocedal & Wu 2012, "Sample size selection
in optimization methods for machine learning"; Bollapragada, Byrd & Nocedal 2018, "Adaptive
sampling strategies for stochastic optimization".

Mini-batch agreement: the gradient of a mini-batch B of size K is g_B = (1/K) Σ_{i∈B} g_i, so
⟨g_B, g_B'⟩ = (1/K²) Σ_{i∈B, j∈B'} G_ij; `minibatch_gram` forms these for sampled batches.
"""

from __future__ import annotations

import math

import torch


def _quantiles(values: torch.Tensor, qs: tuple[float, ...], prefix: str) -> dict[str, torch.Tensor]:
    """The quantiles `qs` of `values`, NaN entries left out (all NaN: NaN)."""
    if not qs or values.numel() == 0:
        return {}
    at = torch.tensor(qs, dtype=values.dtype).to(values.device, non_blocking=True)  # no sync
    q = torch.nanquantile(values, at)
    return {f"{prefix}_q{100 * p:g}": v for p, v in zip(qs, q, strict=True)}


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The n(n−1) off-diagonal entries of a square matrix in row-major order, as `matrix[~eye]`
    gives them but without a boolean mask (whose size the host would have to wait for)."""
    n = matrix.shape[0]
    return matrix.reshape(-1)[1:].view(n - 1, n + 1)[:, :-1].reshape(-1)


def read_finite(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-d tensors as floats with one host read (one device sync), non-finite ones left out."""
    if not values:
        return {}
    numbers = torch.stack([v.reshape(()).double() for v in values.values()]).tolist()
    return {k: v for k, v in zip(values, numbers, strict=True) if math.isfinite(v)}


def gram_stats(
    gram: torch.Tensor, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9), prefix: str = "grad"
) -> dict[str, float]:
    """The statistics above as a flat dict `{prefix}_…`; pair statistics need N ≥ 2 and the
    tests ‖ḡ‖ > 0 (undefined ones are left out rather than reported as NaN). Everything is
    computed where `gram` lives and read back at once.

    Three gradients with ‖g_1‖ = ‖g_2‖ = 2, ‖g_3‖ = 1 and ⟨g_1, g_2⟩ = 2, ⟨g_1, g_3⟩ = ⟨g_2, g_3⟩ = 1:
    ‖ḡ‖² = ΣG/N² = 17/9, tr Σ̂ = (tr G/N − ‖ḡ‖²)·N/(N−1) = 5/3, norm test (5/3)/(3·17/9) = 15/51.

    >>> import torch
    >>> from sgdlab.gradients import gram_stats
    >>> gram = torch.tensor([[4.0, 2.0, 1.0], [2.0, 4.0, 1.0], [1.0, 1.0, 1.0]])
    >>> stats = gram_stats(gram, quantiles=())
    >>> {k: round(v, 4) for k, v in stats.items()}
    {'grad_n': 3.0, 'grad_norm_max': 2.0, 'grad_norm_mean': 1.6667, 'grad_norm_min': 1.0,
     'grad_batch_norm': 1.3744, 'grad_mu': 1.0, 'grad_inner_mean': 1.3333, 'grad_cos_min': 0.5,
     'grad_cos_mean': 0.5, 'grad_variance': 1.6667, 'grad_snr': 1.1333, 'grad_norm_test': 0.2941,
     'grad_inner_product_test': 0.0554, 'grad_orthogonality_test': 0.2388}
    """
    g = gram.double()
    n = g.shape[0]
    diag = g.diagonal().clamp_min(0)
    norms = diag.sqrt()
    out: dict[str, torch.Tensor] = {"n": torch.full((), float(n), dtype=torch.float64, device=g.device)}
    out |= {"norm_max": norms.max(), "norm_mean": norms.mean(), "norm_min": norms.min()}
    out |= _quantiles(norms, quantiles, "norm")
    mean_sq = g.sum() / n**2
    out["batch_norm"] = mean_sq.clamp_min(0).sqrt()
    if n >= 2:
        inner = off_diagonal(g)
        out |= {"mu": inner.min(), "inner_mean": inner.mean()}
        out |= _quantiles(inner, quantiles, "inner")
        scale = off_diagonal(torch.outer(norms, norms))
        cos = torch.where(scale > 0, (inner / scale).clamp(-1, 1), torch.nan)  # NaN: a zero gradient
        out |= {"cos_min": torch.where(cos.isnan(), torch.inf, cos).min(), "cos_mean": cos.nanmean()}
        out |= _quantiles(cos, quantiles, "cos")
        out |= _spread(diag, g.sum(dim=1), mean_sq)
    return read_finite({f"{prefix}_{k}": v for k, v in out.items()})


def _spread(diag: torch.Tensor, row_sums: torch.Tensor, mean_sq: torch.Tensor) -> dict[str, torch.Tensor]:
    """Variance, SNR and the three tests from G_ii, Σ_j G_ij and ‖ḡ‖² (N ≥ 2), as 0-d tensors."""
    n = diag.shape[0]
    variance = (diag.sum() / n - mean_sq).clamp_min(0) * n / (n - 1)
    along = row_sums / n  # ⟨g_i, ḡ⟩
    ortho = (diag - along**2 / mean_sq).clamp_min(0).sum() / (n - 1)
    return {
        "variance": variance,
        # where ‖ḡ‖ = 0 the tests divide by zero: not finite, so left out
        "snr": torch.where(variance > 0, mean_sq / variance, torch.inf),
        "norm_test": variance / (n * mean_sq),
        "inner_product_test": along.var(unbiased=True) / (n * mean_sq**2),
        "orthogonality_test": ortho / (n * mean_sq),
    }


def moment_stats(
    sq_norms: torch.Tensor,
    row_sums: torch.Tensor,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    prefix: str = "grad",
) -> dict[str, float]:
    """The statistics of `gram_stats` that need no single pair of samples, from G_ii = ‖g_i‖²
    and the row sums Σ_j G_ij = N⟨g_i, ḡ⟩ alone (O(N·P) to measure, not O(N²·P)): norms,
    ‖ḡ‖² = Σ_ij G_ij/N², the mean inner product (Σ_ij G_ij − tr G)/(N(N − 1)), variance, SNR
    and the three tests. Agreement μ, the inner-product quantiles and the cosines need G.
    Computed where the inputs live and read back at once, like `gram_stats`.

    The gradients of `gram_stats`' example give the same values:

    >>> import torch
    >>> from sgdlab.gradients import moment_stats
    >>> gram = torch.tensor([[4.0, 2.0, 1.0], [2.0, 4.0, 1.0], [1.0, 1.0, 1.0]])
    >>> stats = moment_stats(gram.diagonal(), gram.sum(dim=1), quantiles=())
    >>> {k: round(v, 4) for k, v in stats.items()}
    {'grad_n': 3.0, 'grad_norm_max': 2.0, 'grad_norm_mean': 1.6667, 'grad_norm_min': 1.0,
     'grad_batch_norm': 1.3744, 'grad_inner_mean': 1.3333, 'grad_variance': 1.6667,
     'grad_snr': 1.1333, 'grad_norm_test': 0.2941, 'grad_inner_product_test': 0.0554,
     'grad_orthogonality_test': 0.2388}
    """
    diag = sq_norms.double().clamp_min(0)
    rows = row_sums.double()
    n = diag.shape[0]
    norms = diag.sqrt()
    out: dict[str, torch.Tensor] = {"n": torch.full((), float(n), dtype=torch.float64, device=diag.device)}
    out |= {"norm_max": norms.max(), "norm_mean": norms.mean(), "norm_min": norms.min()}
    out |= _quantiles(norms, quantiles, "norm")
    total = rows.sum()
    mean_sq = total / n**2
    out["batch_norm"] = mean_sq.clamp_min(0).sqrt()
    if n >= 2:
        out["inner_mean"] = (total - sq_norms.double().sum()) / (n * (n - 1))
        out |= _spread(diag, rows, mean_sq)
    return read_finite({f"{prefix}_{k}": v for k, v in out.items()})


def minibatch_gram(gram: torch.Tensor, batches: torch.Tensor) -> torch.Tensor:
    """⟨g_B, g_B'⟩ for the rows of `batches` ([M, K] sample indices): [M, M] float64."""
    m, k = batches.shape
    s = torch.zeros(m, gram.shape[0], dtype=torch.float64, device=gram.device)
    s.scatter_add_(
        1, batches.to(gram.device), torch.full((m, k), 1.0 / k, dtype=torch.float64, device=gram.device)
    )
    return s @ gram.double() @ s.T


def sample_batches(n: int, k: int, m: int, gen: torch.Generator) -> torch.Tensor:
    """`m` mini-batches of `k` distinct indices out of n, each uniform over the k-subsets."""
    return torch.rand(m, n, generator=gen).argsort(dim=1)[:, :k]


def minibatch_agreement(gram: torch.Tensor, k: int, m: int, gen: torch.Generator) -> dict[str, float]:
    """μ_K = min over pairs of `m` sampled K-batches of ⟨g_B, g_B'⟩, the mean over pairs, and the
    mean cosine (Giselsson: a larger mini-batch gives a larger μ)."""
    bg = minibatch_gram(gram, sample_batches(gram.shape[0], k, m, gen))
    off = ~torch.eye(m, dtype=torch.bool, device=bg.device)
    norms = bg.diagonal().clamp_min(0).sqrt()
    scale = torch.outer(norms, norms)[off]
    cos = bg[off][scale > 0] / scale[scale > 0]
    return {
        "mu": float(bg[off].min()),
        "inner_mean": float(bg[off].mean()),
        "cos_mean": float(cos.mean()) if cos.numel() else math.nan,
    }
