"""Toy landscapes against autograd and their known minima; the vectorized particle simulator
against a per-particle Python loop; the Boltzmann quadrature against the Laplace approximation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgdlab.experiments.base import one_thread
from sgdlab.toys import (
    FLAT_SHARP,
    FLAT_SHARP_PRINTED,
    ROSENBROCK,
    Dynamics,
    boltzmann_masses,
    condition_number,
    hessian_at,
    log_ratio_se,
    simulate,
    simulate_loop,
    uniform_starts,
    wilson,
)
from sgdlab.toys.landscapes import LN2, PRINTED_RING


@pytest.fixture(autouse=True)
def single_thread():
    """Small products on a shared machine: one thread (two spin-wait on each other)."""
    with one_thread():
        yield


@pytest.mark.parametrize("landscape", [FLAT_SHARP, FLAT_SHARP_PRINTED, ROSENBROCK], ids=lambda ls: ls.name)
def test_gradient_and_hessian_match_autograd(landscape):
    gen = torch.Generator().manual_seed(0)
    lo, hi = (-2.0, 2.0) if landscape is ROSENBROCK else (0.0, 10.0)
    pts = lo + (hi - lo) * torch.rand(50, 2, generator=gen, dtype=torch.float64)
    for p in pts:
        f = lambda q: landscape.value(q[0], q[1])  # noqa: E731
        g = torch.autograd.functional.jacobian(f, p)
        h = torch.autograd.functional.hessian(f, p)
        gx, gy = landscape.gradient(p[0].clone(), p[1].clone())
        hxx, hxy, hyy = landscape.hessian(p[0], p[1])
        assert torch.allclose(torch.stack([gx, gy]), g, rtol=1e-10, atol=1e-12)
        assert torch.allclose(
            torch.stack([hxx, hxy, hyy]), torch.stack([h[0, 0], h[0, 1], h[1, 1]]), rtol=1e-10, atol=1e-12
        )
    # vectorized calls agree with pointwise ones
    gx, gy = landscape.gradient(pts[:, 0].clone(), pts[:, 1].clone())
    assert torch.allclose(gx[7], landscape.gradient(pts[7, 0].clone(), pts[7, 1].clone())[0])


def test_flat_sharp_minima_have_equal_depth_and_curvature_across():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    kappa = 2 * (0.1 + LN2)
    for y in (1.0, 5.0, 9.0):  # the valley x = 4: value −1, zero slope, flat along y
        assert float(FLAT_SHARP.value(t(4.0), t(y))) == pytest.approx(-1.0, abs=1e-4)
        assert max(abs(float(g)) for g in FLAT_SHARP.gradient(t(4.0), t(y))) < 1e-4
        ev = torch.linalg.eigvalsh(hessian_at(FLAT_SHARP, 4.0, y))
        assert ev[1] == pytest.approx(kappa, rel=1e-4) and abs(ev[0]) < 1e-4
    assert float(FLAT_SHARP.value(t(8.0), t(5.0))) == pytest.approx(-1.0, abs=1e-4)
    ev = torch.linalg.eigvalsh(hessian_at(FLAT_SHARP, 8.0, 5.0))
    assert torch.allclose(ev, torch.tensor([kappa, kappa], dtype=torch.float64), rtol=1e-4)
    # the printed variant: (8, 5) at the plateau level inside a ring of maxima
    assert abs(float(FLAT_SHARP_PRINTED.value(t(8.0), t(5.0)))) < 1e-4
    ring = float(FLAT_SHARP_PRINTED.value(t(8.0 + PRINTED_RING), t(5.0)))
    assert ring == pytest.approx(0.1 / (math.e * LN2), rel=1e-3)
    assert max(abs(float(g)) for g in FLAT_SHARP_PRINTED.gradient(t(8.0 + PRINTED_RING), t(5.0))) < 1e-4


def test_rosenbrock_minimum_and_condition_number():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    assert float(ROSENBROCK.value(t(1.0), t(1.0))) == 0.0
    assert all(float(g) == 0.0 for g in ROSENBROCK.gradient(t(1.0), t(1.0)))
    assert torch.equal(
        hessian_at(ROSENBROCK, 1.0, 1.0),
        torch.tensor([[802.0, -400.0], [-400.0, 200.0]], dtype=torch.float64),
    )
    ev = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    assert (
        condition_number(ROSENBROCK, 1.0, 1.0)
        == pytest.approx(ev[1] / ev[0])
        == pytest.approx(2508.0, rel=1e-3)
    )
    assert condition_number(FLAT_SHARP, 4.0, 5.0) == math.inf or condition_number(FLAT_SHARP, 4.0, 5.0) > 1e4


def test_classifier_labels_the_basins():
    x = torch.tensor([4.0, 4.5, 8.0, 8.3, 1.0, 6.0, 4.0 + 1.5])
    y = torch.tensor([1.0, 9.0, 5.0, 5.2, 1.0, 5.0, 5.0])
    assert FLAT_SHARP.classify(x, y).tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert FLAT_SHARP_PRINTED.classify(torch.tensor([8.5]), torch.tensor([5.0])).tolist() == [1]


@pytest.mark.parametrize(
    "dynamics",
    [
        Dynamics(lr=0.1),
        Dynamics(lr=0.2, noise=0.3, radius=6.0),
        Dynamics(lr=0.1, noise=0.5, decay="inverse", radius=7.0),
    ],
    ids=["gd", "sgdl-projected", "sgdl-decaying"],
)
def test_vectorized_simulator_matches_a_per_particle_loop(dynamics):
    gen = torch.Generator().manual_seed(0)
    x, y = uniform_starts(11, (0, 10, 0, 10), gen)
    fast = simulate(
        FLAT_SHARP, x, y, dynamics, 25, torch.Generator().manual_seed(1), record_every=10, chunk=4
    )
    lx, ly = simulate_loop(FLAT_SHARP, x, y, dynamics, 25, torch.Generator().manual_seed(1), chunk=4)
    assert np.allclose(fast.x.numpy(), lx, rtol=0, atol=1e-12)
    assert np.allclose(fast.y.numpy(), ly, rtol=0, atol=1e-12)
    assert fast.steps.tolist() == [0, 10, 20, 25]
    assert np.allclose(fast.occupancy.sum(1), 1.0)
    labels = FLAT_SHARP.classify(torch.tensor(lx), torch.tensor(ly)).long()
    assert np.allclose(fast.occupancy[-1], np.bincount(labels.numpy(), minlength=4) / 11)
    if dynamics.radius is not None:
        assert float(torch.hypot(fast.x - 5, fast.y - 5).max()) <= dynamics.radius + 1e-12


def test_gradient_descent_settles_in_the_minima():
    gen = torch.Generator().manual_seed(0)
    x, y = uniform_starts(2000, (3, 5, 0, 10), gen)  # all inside the valley's basin
    sim = simulate(FLAT_SHARP, x, y, Dynamics(lr=0.5), 400, gen)
    assert sim.occupancy[-1][0] == 1.0 and float((sim.x - 4).abs().max()) < 1e-3


def test_boltzmann_quadrature_matches_the_laplace_approximation():
    """At low T: valley mass ≈ L·√(2πT/κ)·e^{1/T}, sharp ≈ (2πT/κ)·e^{1/T}, L the chord of x = 4."""
    t, radius = 0.05, 7.5
    b = boltzmann_masses(FLAT_SHARP, t, (5.0, 5.0), radius)
    kappa = FLAT_SHARP.curvature
    chord = 2 * math.sqrt(radius**2 - 1.0)
    laplace = chord * math.sqrt(2 * math.pi * t / kappa) / (2 * math.pi * t / kappa)
    assert b.masses[0] / b.masses[1] == pytest.approx(laplace, rel=0.05)
    assert b.masses.sum() == pytest.approx(1.0) and (b.error < 1e-4).all()
    hot = boltzmann_masses(FLAT_SHARP, 50.0, (5.0, 5.0), radius, coarse=0.02)
    # at very high T the density is nearly uniform: the masses approach area fractions
    area_sharp = math.pi * 0.93**2 / (math.pi * radius**2)
    assert hot.masses[1] == pytest.approx(area_sharp, rel=0.1)


def test_binomial_intervals():
    lo, hi = wilson(0.3, 10_000)
    assert lo < 0.3 < hi and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.21 / 10_000), rel=0.01)
    assert wilson(0.0, 100)[0] == 0.0 and wilson(0.0, 100)[1] > 0
    assert log_ratio_se(0.5, 0.25, 10_000) == pytest.approx(math.sqrt(0.5 / 5000 + 0.75 / 2500 + 2 / 10_000))
