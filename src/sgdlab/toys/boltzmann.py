"""The Boltzmann prediction for constant-noise SGDL: the stationary density of the Langevin
diffusion dθ = −∇f dt + √(2T) dB on the disc K (projection keeps it there) is

    p(θ) = exp(−f(θ)/T) / Z,   Z = ∫_K exp(−f/T),   T = γ'²/(2η),

so the long-run mass of a basin B is ∫_B exp(−f/T) / Z (Zhang et al. 2017, §3: SGDL's
asymptotic distribution is Boltzmann). Computed by tensor-product trapezoid quadrature on a
grid that is uniform over the disc's bounding box plus fine nodes (spacing ≤ √(T/κ)/4) around
the coordinates of the minima, where at low T all the mass sits; the disc enters through its
indicator. The quadrature error is estimated by repeating on a grid of half the resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .landscapes import Landscape


@dataclass
class BoltzmannMasses:
    """The Boltzmann prediction at temperature T: the fraction of ∫_K exp(−f/T) in each
    basin, its quadrature error estimate (|full − half-resolution|) and the number of grid
    nodes used."""

    temperature: float
    masses: np.ndarray  # [B] fraction of the stationary mass in each basin
    error: np.ndarray  # [B] |difference| from the half-resolution quadrature
    nodes: int


def _axis(
    lo: float, hi: float, features: tuple[float, ...], coarse: float, fine: float, reach: float
) -> torch.Tensor:
    pieces = [torch.arange(lo, hi + coarse / 2, coarse, dtype=torch.float64)]
    for c in features:
        a, b = max(lo, c - reach), min(hi, c + reach)
        if a < b:
            pieces.append(torch.arange(a, b + fine / 2, fine, dtype=torch.float64))
    return torch.unique(torch.cat(pieces))


def _trapezoid_weights(nodes: torch.Tensor) -> torch.Tensor:
    gaps = nodes[1:] - nodes[:-1]
    w = torch.zeros_like(nodes)
    w[:-1] += gaps / 2
    w[1:] += gaps / 2
    return w


def _masses(
    landscape: Landscape,
    temperature: float,
    center: tuple[float, float],
    radius: float,
    coarse: float,
    fine: float,
    reach: float,
    rows: int = 256,
) -> tuple[np.ndarray, int]:
    if landscape.classify is None:
        raise ValueError(f"landscape {landscape.name!r} has no basin classifier")
    cx, cy = center
    xs = _axis(cx - radius, cx + radius, landscape.features[0], coarse, fine, reach)
    ys = _axis(cy - radius, cy + radius, landscape.features[1], coarse, fine, reach)
    wx, wy = _trapezoid_weights(xs), _trapezoid_weights(ys)
    totals = torch.zeros(len(landscape.basins), dtype=torch.float64)
    # exp(−(f − f_min)/T) with f_min ≈ the deepest minimum's value (for range), row block by block
    f_min = min(
        float(
            landscape.value(torch.tensor(p[0], dtype=torch.float64), torch.tensor(p[1], dtype=torch.float64))
        )
        for p in landscape.minima.values()
    )
    for start in range(0, len(xs), rows):
        gx, gy = torch.meshgrid(xs[start : start + rows], ys, indexing="ij")
        inside = ((gx - cx) ** 2 + (gy - cy) ** 2) <= radius**2
        weight = torch.exp(-(landscape.value(gx, gy) - f_min) / temperature) * inside
        weight = weight * wx[start : start + rows, None] * wy[None, :]
        labels = landscape.classify(gx, gy).long()
        totals += torch.bincount(labels.reshape(-1), weights=weight.reshape(-1), minlength=len(totals))
    return (totals / totals.sum()).numpy(), len(xs) * len(ys)


def boltzmann_masses(
    landscape: Landscape, temperature: float, center: tuple[float, float], radius: float, coarse: float = 0.01
) -> BoltzmannMasses:
    """Fraction of exp(−f/T) on the disc (center, radius) in each of the landscape's basins."""
    if temperature <= 0:
        raise ValueError("the Boltzmann density needs a temperature T > 0")
    width = math.sqrt(temperature / landscape.curvature)
    fine = min(coarse, width / 4)
    reach = max(12 * width, 4 * coarse)
    full, nodes = _masses(landscape, temperature, center, radius, coarse, fine, reach)
    half, _ = _masses(landscape, temperature, center, radius, 2 * coarse, 2 * fine, reach)
    return BoltzmannMasses(temperature, full, np.abs(full - half), nodes)
