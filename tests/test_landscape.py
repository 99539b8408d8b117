"""Landscape views against obvious references: a path in a known plane, and per-point loops."""

from __future__ import annotations

import torch

import sgdlab
from sgdlab.losses import get_loss
from sgdlab.params import set_flat_params
from sgdlab.probes.landscape import loss_grid, path_pca, projected_gradients

from conftest import tiny


def test_pca_recovers_the_plane_of_a_planar_path():
    gen = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(50, 2, generator=gen, dtype=torch.float64))
    t = torch.linspace(0, 1, 30, dtype=torch.float64)
    coords = torch.stack([3 * (1 - t), torch.sin(6 * t) * (1 - t)], dim=1)
    final = torch.randn(50, generator=gen, dtype=torch.float64)
    path = final + coords @ basis.T
    pca = path_pca(path, final)
    assert torch.allclose(pca.explained.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert pca.explained[0] > pca.explained[1]
    projector = basis @ basis.T  # the directions lie in the plane, orthonormal
    assert torch.allclose(pca.directions @ projector, pca.directions, atol=1e-10)
    assert torch.allclose(pca.directions @ pca.directions.T, torch.eye(2, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(pca.coords @ pca.directions, path - final, atol=1e-10)  # path reconstructed


def test_loss_grid_and_projected_gradients_match_a_loop():
    result = sgdlab.run(tiny(model={"widths": [8], "batch_norm": "all"}, train={"epochs": 1}))
    model, data = result.parts.model, result.parts.data
    loss = get_loss("cross-entropy", "index")
    x, y = data.train.x[:32], data.train.y[:32]
    center = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gen = torch.Generator().manual_seed(1)
    dirs = torch.randn(2, center.numel(), generator=gen)
    alphas, betas = torch.linspace(-1, 1, 5), torch.linspace(-0.5, 0.5, 3)
    grid = loss_grid(model, loss, x, y, center, dirs, alphas, betas, chunk=4)
    thetas = center + torch.randn(3, center.numel(), generator=gen) * 0.1
    arrows = projected_gradients(model, loss, x, y, thetas, dirs)

    probe = sgdlab.run(tiny(model={"widths": [8], "batch_norm": "all"}, train={"epochs": 1})).parts.model
    probe.load_state_dict(model.state_dict())
    probe.eval()
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            set_flat_params(probe, center + a * dirs[0] + b * dirs[1])
            assert torch.allclose(grid[i, j], loss(probe(x), y), rtol=1e-5)
    for k in range(3):
        set_flat_params(probe, thetas[k])
        g = torch.autograd.grad(loss(probe(x), y), list(probe.parameters()))
        assert torch.allclose(arrows[k], dirs @ torch.cat([t.reshape(-1) for t in g]), rtol=1e-4, atol=1e-6)
    assert torch.equal(center, torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
