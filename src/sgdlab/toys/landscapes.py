"""2-D test landscapes with exact gradients and Hessians, and a basin classifier for each.

`flat_sharp` — the landscape of Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio (2017) as the
student report's code defines it (Osipov, Zharkov, Vlasova & Kuzmina 2018), with c = ln 2:

    f(x, y) = a(u²) + a(w² + v²),  a(s) = (0.1 s − 1)·e^{−c s},  u = x − 4, w = x − 8, v = y − 5

The valley x = 4 is a degenerate ("flat") minimum: f ≈ −1 along the whole line, curvature 0
along y. (8, 5) is an isolated ("sharp") minimum of the same depth and the same curvature
across, κ = a''-term = 2(0.1 + ln 2) ≈ 1.586 (both Hessians are reported by `hessian`).
`flat_sharp_printed` is the report's printed eq. (3), whose second term lacks the −1:
b(s) = 0.1 s·e^{−c s}, so (8, 5) sits at the plateau level 0 inside a ring of height
0.1/(e c) ≈ 0.053 (a shallow bowl, not a minimum of the same depth).

`rosenbrock` — f = (1 − x)² + 100(y − x²)², one minimum at (1, 1) with Hessian
[[802, −400], [−400, 200]], condition number ≈ 2508.

Each landscape takes and returns tensors of any shape (x, y broadcast), so a million particles
are one call. Basins: a label per point (`classify`), with names in `basins`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

LN2 = math.log(2.0)

Pair = tuple[torch.Tensor, torch.Tensor]
Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Landscape:
    """f: R² → R with its gradient and Hessian, the known minima, and the basin labels."""

    name: str
    title: str
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    gradient: Callable[[torch.Tensor, torch.Tensor], Pair]
    hessian: Callable[[torch.Tensor, torch.Tensor], Triple]  # (f_xx, f_xy, f_yy)
    minima: dict[str, tuple[float, float]]  # a representative point of each minimum
    basins: tuple[str, ...] = ()
    classify: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # where the Boltzmann quadrature needs fine nodes (coordinates of minima), per axis
    features: tuple[tuple[float, ...], tuple[float, ...]] = field(default=((), ()))
    curvature: float = 1.0  # the largest curvature at the minima (sets the quadrature's width)


def _radial(s: torch.Tensor, offset: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """b(s) = (0.1 s + offset)·e^{−c s} and its first two derivatives in s."""
    e = torch.exp(-LN2 * s)
    lin = 0.1 * s + offset
    return lin * e, e * (0.1 - LN2 * lin), e * (-0.2 * LN2 + LN2 * LN2 * lin)


def _flat_sharp(offset: float):
    def value(x, y):
        return _radial((x - 4) ** 2, -1.0)[0] + _radial((x - 8) ** 2 + (y - 5) ** 2, offset)[0]

    def gradient(x, y):
        # ∂f/∂x = 2u·a'(u²) + 2w·b'(s), ∂f/∂y = 2v·b'(s), with a'(s) = e^{−cs}(0.1 + c − 0.1c·s)
        # and b'(s) = e^{−cs}(0.1 − c·offset − 0.1c·s); written with few temporaries (this is
        # the particle simulator's inner loop).
        u, w, v = x - 4, x - 8, y - 5
        su = u * u
        a1 = torch.exp(su * -LN2).mul_(su.mul_(-0.1 * LN2).add_(0.1 + LN2))
        s = torch.addcmul(w * w, v, v)
        b1 = torch.exp(s * -LN2).mul_(s.mul_(-0.1 * LN2).add_(0.1 - LN2 * offset))
        gx = torch.addcmul(u.mul_(a1), w, b1).mul_(2)
        return gx, v.mul_(b1).mul_(2)

    def hessian(x, y):
        u, w, v = x - 4, x - 8, y - 5
        _, a1, a2 = _radial(u * u, -1.0)
        _, b1, b2 = _radial(w * w + v * v, offset)
        return (4 * u * u * a2 + 2 * a1 + 4 * w * w * b2 + 2 * b1, 4 * w * v * b2, 4 * v * v * b2 + 2 * b1)

    return value, gradient, hessian


BASINS = ("flat valley", "sharp minimum", "plateau", "elsewhere")
BASIN_LEVEL = -0.5  # a minimum's basin: its component of the sublevel set {f ≤ −0.5} (half depth)
PLATEAU_LEVEL = -0.01  # the plateau: f > −0.01 (flat ground away from both wells)
PRINTED_RING = math.sqrt(1 / LN2)  # radius of the printed variant's ring of maxima around (8, 5)


def classify_flat_sharp(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0 flat valley · 1 sharp minimum · 2 plateau · 3 elsewhere (on a slope): the two wells'
    half-depth sublevel components are disjoint (|x − 4| < 0.93, and the disc of radius 0.93
    around (8, 5)), so x < 6 tells them apart."""
    f = FLAT_SHARP.value(x, y)
    out = torch.full(x.shape, 3, dtype=torch.int8, device=x.device)
    deep = f <= BASIN_LEVEL
    out[deep & (x < 6)] = 0
    out[deep & (x >= 6)] = 1
    out[f > PLATEAU_LEVEL] = 2
    return out


def classify_printed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """As `classify_flat_sharp` for the valley; the "sharp minimum" of the printed variant is the
    bowl inside its ring of maxima (distance < 1/√ln 2 ≈ 1.20 from (8, 5))."""
    f = FLAT_SHARP_PRINTED.value(x, y)
    out = torch.full(x.shape, 3, dtype=torch.int8, device=x.device)
    out[f > PLATEAU_LEVEL] = 2
    out[(f <= BASIN_LEVEL) & (x < 6)] = 0
    out[((x - 8) ** 2 + (y - 5) ** 2) < PRINTED_RING**2] = 1
    return out


_v, _g, _h = _flat_sharp(-1.0)
FLAT_SHARP = Landscape(
    "flat-sharp",
    "flat valley x = 4 and sharp minimum (8, 5), equal depth (the report's code)",
    _v,
    _g,
    _h,
    {"flat valley": (4.0, 5.0), "sharp minimum": (8.0, 5.0)},
    BASINS,
    classify_flat_sharp,
    features=((4.0, 8.0), (5.0,)),
    curvature=2 * (0.1 + LN2),
)
_v, _g, _h = _flat_sharp(0.0)
FLAT_SHARP_PRINTED = Landscape(
    "flat-sharp-printed",
    "the report's printed eq. (3): the second term without its −1",
    _v,
    _g,
    _h,
    {"flat valley": (4.0, 5.0), "sharp minimum": (8.0, 5.0)},
    BASINS,
    classify_printed,
    features=((4.0, 8.0), (5.0,)),
    curvature=2 * (0.1 + LN2),
)


def _rosen_value(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosen_gradient(x, y):
    r = y - x * x
    return -2 * (1 - x) - 400 * x * r, 200 * r


def _rosen_hessian(x, y):
    return 2 - 400 * y + 1200 * x * x, -400 * x, torch.full_like(x, 200.0)


def classify_rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0 within 0.01 of (1, 1) · 1 farther but finite · 2 diverged (not finite)."""
    d = torch.sqrt((x - 1) ** 2 + (y - 1) ** 2)
    out = torch.ones(x.shape, dtype=torch.int8, device=x.device)
    out[d < 0.01] = 0
    out[~torch.isfinite(d)] = 2
    return out


ROSENBROCK = Landscape(
    "rosenbrock",
    "Rosenbrock (1 − x)² + 100(y − x²)²",
    _rosen_value,
    _rosen_gradient,
    _rosen_hessian,
    {"minimum": (1.0, 1.0)},
    ("at (1, 1)", "not there", "diverged"),
    classify_rosenbrock,
    features=((1.0,), (1.0,)),
    curvature=1001.6,
)

LANDSCAPES = {ls.name: ls for ls in (FLAT_SHARP, FLAT_SHARP_PRINTED, ROSENBROCK)}


def hessian_at(landscape: Landscape, x: float, y: float) -> torch.Tensor:
    """The 2×2 Hessian [[f_xx, f_xy], [f_xy, f_yy]] at one point (float64).

    Rosenbrock's at its minimum (1, 1):

    >>> hessian_at(ROSENBROCK, 1.0, 1.0)
    tensor([[ 802., -400.],
            [-400.,  200.]], dtype=torch.float64)
    """
    hxx, hxy, hyy = landscape.hessian(
        torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    )
    return torch.tensor([[float(hxx), float(hxy)], [float(hxy), float(hyy)]], dtype=torch.float64)


def condition_number(landscape: Landscape, x: float, y: float) -> float:
    """λ_max/λ_min of the Hessian at (x, y) (inf where it is singular, e.g. along a valley).

    >>> round(condition_number(ROSENBROCK, 1.0, 1.0), 1)
    2508.0
    >>> condition_number(FLAT_SHARP, 4.0, 5.0)  # the flat valley: no curvature along y
    inf
    """
    ev = torch.linalg.eigvalsh(hessian_at(landscape, x, y))
    return float(ev[-1] / ev[0]) if ev[0] > 0 else math.inf
