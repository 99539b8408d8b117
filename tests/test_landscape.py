"""Landscape views against obvious references: a path in a known plane, and per-point loops."""

from __future__ import annotations

import pytest
import torch

import sgdlab
from conftest import tiny
from sgdlab.losses import get_loss
from sgdlab.params import set_flat_params
from sgdlab.probes.landscape import (
    filter_normalized,
    interpolation,
    loss_grid,
    path_pca,
    perturbation_sharpness,
    projected_gradients,
    random_plane,
    simplex_lambdas,
    three_point_interpolation,
)
from sgdlab.probes.landscape_losses import first_layer_split, mean_losses, span_losses, split_that_pays


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


# --- 1-D, 2-D random-plane, three-point and sharpness views against per-point loops -------

CE = get_loss("cross-entropy", "index")


def trained(seed: int = 0, bn: str = "none"):
    result = sgdlab.run(tiny(seed=seed, model={"widths": [8], "batch_norm": bn}, train={"epochs": 1}))
    model, data = result.parts.model, result.parts.data
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return model, data.train.x[:40], data.train.y[:40], theta


def loop_loss(model, theta, x, y) -> torch.Tensor:
    """The obvious reference: write θ into a copy of the model, evaluate in eval mode."""
    import copy

    probe = copy.deepcopy(model)
    set_flat_params(probe, theta)
    probe.eval()
    with torch.no_grad():
        return CE(probe(x), y)


def test_interpolation_matches_a_loop_and_hits_both_ends():
    model, x, y, a = trained(0, bn="all")
    _, _, _, b = trained(1, bn="all")
    alphas = torch.linspace(-0.5, 1.5, 9)
    values = interpolation(model, CE, x, y, a, b, alphas, chunk=4, data_chunk=16)
    for alpha, value in zip(alphas, values, strict=True):
        assert torch.allclose(value, loop_loss(model, (1 - alpha) * a + alpha * b, x, y), rtol=1e-5)
    assert torch.allclose(values[2], loop_loss(model, a, x, y), rtol=1e-5)  # α = 0
    assert torch.allclose(values[6], loop_loss(model, b, x, y), rtol=1e-5)  # α = 1


def test_filter_normalized_directions_have_each_filters_norm():
    model, _, _, theta = trained()
    d = filter_normalized(model, theta, torch.Generator().manual_seed(0), count=3)
    offset = 0
    for p in model.parameters():
        n = p.numel()
        block, w = d[:, offset : offset + n], theta[offset : offset + n]
        if p.ndim <= 1:
            assert torch.all(block == 0)
        else:
            want = torch.linalg.vector_norm(w.view(p.shape[0], -1), dim=1)
            got = torch.linalg.vector_norm(block.reshape(3, p.shape[0], -1), dim=2)
            assert torch.allclose(got, want.expand(3, -1), rtol=1e-5)
        offset += n
    assert not torch.allclose(d[0], d[1])


def test_random_plane_matches_a_loop():
    model, x, y, theta = trained()
    alphas, betas = torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 4)
    grid, dirs = random_plane(
        model, CE, x, y, theta, alphas, betas, torch.Generator().manual_seed(2), chunk=6
    )
    assert grid.shape == (5, 4) and dirs.shape == (2, theta.numel())
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            assert torch.allclose(
                grid[i, j], loop_loss(model, theta + a * dirs[0] + b * dirs[1], x, y), rtol=1e-5
            )


def test_simplex_lambdas_cover_the_simplex_and_a_band_around_it():
    lam = simplex_lambdas(10, margin=0.2)
    assert torch.allclose(lam.sum(1), torch.ones(len(lam), dtype=torch.float64))
    assert lam.min() == pytest.approx(-0.2)
    for corner in torch.eye(3, dtype=torch.float64):
        assert (lam - corner).abs().sum(1).min() < 1e-12
    inside = (lam >= -1e-12).all(1).sum()
    assert inside == 66  # (10+1)(10+2)/2 lattice points of the simplex itself
    assert len(simplex_lambdas(10, margin=0.0)) == 66


def test_three_point_interpolation_matches_a_loop():
    model, x, y, w1 = trained(0)
    w = torch.stack([w1, trained(1)[3], trained(2)[3]])
    lam = simplex_lambdas(4, margin=0.25)
    values = three_point_interpolation(model, CE, x, y, w, lam, chunk=7)
    for row, value in zip(lam, values, strict=True):
        assert torch.allclose(value, loop_loss(model, row.float() @ w, x, y), rtol=1e-5)
    one_by_one = three_point_interpolation(model, CE, x, y, w, lam, chunk=1)  # the path without vmap
    assert torch.allclose(one_by_one, values, rtol=1e-5)


def test_perturbation_sharpness_matches_a_loop():
    model, x, y, theta = trained()
    s = perturbation_sharpness(
        model, CE, x, y, theta, 0.05, n=6, generator=torch.Generator().manual_seed(4), chunk=4
    )
    dirs = filter_normalized(model, theta, torch.Generator().manual_seed(4), count=6)
    base = loop_loss(model, theta, x, y)
    inc = torch.stack([loop_loss(model, theta + 0.05 * d, x, y) - base for d in dirs]).double()
    assert s.base == pytest.approx(float(base), rel=1e-5)
    assert torch.allclose(s.increases, inc, atol=1e-5)
    assert s.mean_increase == pytest.approx(float(inc.mean()), abs=1e-5)
    assert s.max_increase == pytest.approx(float(inc.max()), abs=1e-5)
    bigger = perturbation_sharpness(
        model, CE, x, y, theta, 0.5, n=6, generator=torch.Generator().manual_seed(4)
    )
    assert bigger.mean_increase > s.mean_increase  # near a minimizer, larger moves cost more


# --- the plane through the first layer: Z(a, b) = Z0 + a·Z1 + b·Z2 -------------------------


def conv_net() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Sequential(torch.nn.Linear(4 * 6 * 6, 3)),  # nested: the chain is read through it
    )


def test_first_layer_split_is_read_from_the_structure():
    mlp = trained(bn="all")[0]
    split = first_layer_split(mlp)
    assert split is not None and split.first is mlp[1] and split.prefix == [mlp[0]]
    assert [type(m) for m in split.rest] == [type(m) for m in mlp[2:]]
    assert first_layer_split(conv_net()) is not None
    frozen = trained()[0]
    frozen[1].weight.requires_grad_(False)  # the first layer's weight is not in θ
    assert first_layer_split(frozen) is None
    bn_first = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))  # affine, but has buffers
    assert first_layer_split(bn_first) is None
    alone = first_layer_split(torch.nn.Linear(4, 2))  # logistic regression: nothing runs per point
    assert alone is not None and len(alone.rest) == 0
    hooked = trained()[0]
    hooked.register_forward_hook(lambda *_: None)  # a hook on the whole model would be skipped
    assert first_layer_split(hooked) is None
    assert split_that_pays(conv_net(), 3) is not None  # 9 multiply-adds an entry, against 3
    narrow = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    assert first_layer_split(narrow) is not None and split_that_pays(narrow, 3) is None  # 2 against 3
    tied = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3))
    tied[2].weight = tied[0].weight
    assert first_layer_split(tied) is None
    tied_later = torch.nn.Sequential(*(torch.nn.Linear(3, 3) for _ in range(3)))
    tied_later[2].weight = tied_later[1].weight  # bound once by name: module by module would miss it
    assert first_layer_split(tied_later) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_first_layer_path_matches_the_per_point_loop(kind, dtype):
    """The grid through Z0 + a·Z1 + b·Z2 against writing θ(a, b) into the model point by point.
    The two differ only in summation order: a dot product of n terms moves by at most n·ε·Σ|x_i·w_i|
    when reordered (Higham 2002, §3.1), so the tolerance is (fan-in + 3)·ε of the dtype, relative."""
    gen = torch.Generator().manual_seed(5)
    if kind == "mlp":
        model, x, y, _ = trained(bn="all")
        fan_in = x[0].numel()
    else:
        model = conv_net()
        x, y = torch.randn(24, 1, 8, 8, generator=gen), torch.randint(0, 3, (24,), generator=gen)
        fan_in = 9
    model, x = model.to(dtype).eval(), x.to(dtype)
    assert first_layer_split(model) is not None
    center = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    dirs = torch.randn(2, center.numel(), generator=gen, dtype=dtype) * center.abs().mean()
    alphas, betas = torch.linspace(-1, 1, 4, dtype=dtype), torch.linspace(-0.5, 1, 3, dtype=dtype)
    rtol = (fan_in + 3) * torch.finfo(dtype).eps
    loop = torch.stack(
        [loop_loss(model, center + a * dirs[0] + b * dirs[1], x, y) for a in alphas for b in betas]
    ).view(4, 3)
    for chunk, data_chunk in ((5, None), (1, None), (12, 7)):
        grid = loss_grid(model, CE, x, y, center, dirs, alphas, betas, chunk=chunk, data_chunk=data_chunk)
        assert grid.dtype == dtype
        assert torch.allclose(grid, loop, rtol=rtol, atol=0), (chunk, data_chunk, (grid - loop).abs().max())
    split = first_layer_split(model)
    a, b = torch.meshgrid(alphas, betas, indexing="ij")
    coeffs = torch.stack([torch.ones(12, dtype=dtype), a.reshape(-1), b.reshape(-1)], dim=1)
    basis = torch.cat([center[None], dirs])
    budget = 5 * 3 * split.output_bytes_per_sample(x)  # pieces of 5 samples
    for chunk in (1, 4):
        pieces = span_losses(split, CE, x, y, basis, coeffs, chunk=chunk, budget=budget).view(4, 3)
        assert torch.allclose(pieces, loop, rtol=rtol, atol=0), (chunk, (pieces - loop).abs().max())


def test_mean_losses_of_many_points_equal_each_points_loss():
    gen = torch.Generator().manual_seed(6)
    out, y = torch.randn(5, 7, 4, generator=gen), torch.randint(0, 4, (7,), generator=gen)
    each = torch.stack([CE(o, y) for o in out])
    assert torch.allclose(mean_losses(CE, out, y), each, rtol=1e-6)
    squared = get_loss("squared", "real")
    one, real = out[..., :1], torch.randn(7, generator=gen)
    assert torch.allclose(mean_losses(squared, one, real), torch.stack([squared(o, real) for o in one]))
