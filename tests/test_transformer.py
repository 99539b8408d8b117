"""Every instrument on the zoo's small transformer (token embedding, attention, LayerNorm, MLP),
each against a slow, obviously-correct reference: per-sample gradients against a loop of
single-sample backward passes, Hessian-vector products and the top eigenvalue against central
differences of gradients, the NTK against a Jacobian built row by row."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sgdlab
from sgdlab.attention import math_attention
from sgdlab.curvature import HessianOperator
from sgdlab.gradients import gram_stats, per_sample_gram
from sgdlab.losses import get_loss
from sgdlab.models.transformer import Transformer
from sgdlab.ntk import empirical_ntk, relative_change
from sgdlab.ntk.kernel import NtkMethod

LOSS = get_loss("cross-entropy", "index")
VOCAB, T, N = 7, 3, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops: one torch thread (two spin-waiting threads cost far more on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    """A float64 transformer on token ids (≈240 parameters) and a batch of N sequences."""
    torch.manual_seed(0)
    model = Transformer(n_tokens=T, n_outputs=3, width=4, hidden=(8,), heads=2, vocab=VOCAB).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, VOCAB, (N, T), generator=g)
    y = torch.randint(0, 3, (N,), generator=g)
    return model, x, y


def params(model):
    return [p for p in model.parameters() if p.requires_grad]


def flat_grad(model, x, y) -> torch.Tensor:
    """∇ of the mean loss by one ordinary backward (the fused attention kernel is fine here)."""
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(LOSS(model(x), y), params(model))])


def reference_gram(model, x, y) -> torch.Tensor:
    """G_ij = ⟨∇ℓ_i, ∇ℓ_j⟩ from one backward per sample."""
    rows = [flat_grad(model, x[i : i + 1], y[i : i + 1]) for i in range(len(x))]
    j = torch.stack(rows)
    return j @ j.T


def test_per_sample_gradients_through_attention_and_layernorm(tiny):
    model, x, y = tiny
    ref = reference_gram(model, x, y)
    with math_attention():  # vmap has no batching rule for the fused kernel (slow, warns)
        result = per_sample_gram(model, LOSS, x, y)
    assert result.ghost and result.generic  # Linear layers by the identity, the rest by vmap
    assert {"embed.weight", "position", "norm.weight"} <= set(result.generic)
    torch.testing.assert_close(result.gram, ref, rtol=1e-9, atol=1e-12)
    # The probe reusing the training step's own backward (sgdlab.attach) gives the same numbers.
    opt = torch.optim.SGD(model.parameters(), lr=1e-12)
    lab = sgdlab.attach(
        model,
        opt,
        probes=["gradients"],
        loss_fn=LOSS,
        config={"probes": {"gradients": {"schedule": "step", "full_grad": False}}},
    )
    with lab.step(x, y):
        LOSS(model(x), y).backward()
        opt.step()
    lab.close()
    assert lab.probes[0].from_step
    row = lab.metrics.to_pylist()[0]
    expected = gram_stats(ref, (0.1, 0.5, 0.9), prefix="grad")
    for key in ("grad_norm_mean", "grad_norm_max", "grad_mu", "grad_batch_norm", "grad_variance"):
        assert row[key] == pytest.approx(expected[key], rel=1e-8), key


def shifted_gradient(model, x, y, theta, direction, eps) -> torch.Tensor:
    torch.nn.utils.vector_to_parameters(theta + eps * direction, params(model))
    try:
        return flat_grad(model, x, y)
    finally:
        torch.nn.utils.vector_to_parameters(theta, params(model))


def central_difference_hvp(model, x, y, v, eps: float = 1e-5) -> torch.Tensor:
    """H v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε: first-order backward passes only."""
    theta = torch.nn.utils.parameters_to_vector(params(model)).detach()
    plus, minus = (shifted_gradient(model, x, y, theta, v, s * eps) for s in (1, -1))
    return (plus - minus) / (2 * eps)


def test_the_fused_attention_kernel_has_no_double_backward_so_the_instruments_select_the_math_one():
    q = torch.randn(1, 2, 3, 4, requires_grad=True)  # float32: the CPU flash kernel
    (g,) = torch.autograd.grad(F.scaled_dot_product_attention(q, q, q).sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="not implemented"):
        torch.autograd.grad(g.sum(), q)
    with math_attention():
        (g,) = torch.autograd.grad(F.scaled_dot_product_attention(q, q, q).sum(), q, create_graph=True)
    assert torch.autograd.grad(g.sum(), q)[0].shape == q.shape


def test_hessian_vector_products_and_the_hessian_probe_through_attention(tiny):
    model, x, y = tiny
    g = torch.Generator().manual_seed(2)
    vs = [
        torch.randn(sum(p.numel() for p in params(model)), generator=g, dtype=torch.float64) for _ in range(2)
    ]
    for method in ("double-backward", "jvp"):
        op = HessianOperator(model, LOSS, x, y, method=method)
        for v in vs:
            torch.testing.assert_close(op @ v, central_difference_hvp(model, x, y, v), rtol=1e-6, atol=1e-8)
    # The probe on the attention block's Hessian H_BB, against the dense one from differences.
    block = "blocks.0.attention.qkv"
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in params(model)]
    start = sum(sizes[: names.index(f"{block}.weight")])
    width = sum(sizes[names.index(f"{block}.weight") : names.index(f"{block}.bias") + 1])
    basis = torch.eye(sum(sizes), dtype=torch.float64)[start : start + width]
    h_bb = torch.stack([central_difference_hvp(model, x, y, e)[start : start + width] for e in basis])
    top = float(torch.linalg.eigvalsh((h_bb + h_bb.T) / 2)[-1])
    opt = torch.optim.SGD(model.parameters(), lr=1e-12)
    options = {"schedule": "final", "subset": N, "trace_probes": 0, "tol": 1e-7, "block": block}
    lab = sgdlab.attach(
        model,
        opt,
        probes=["hessian"],
        loss_fn=LOSS,
        eval_data=(x, y),
        config={"probes": {"hessian": options}},
    )
    lab.close()  # measures the final state: θ_0 here, no step taken
    row = lab.metrics.to_pylist()[0]
    assert row["hessian_lanczos_converged"] == 1.0
    assert row["hessian_lambda_max"] == pytest.approx(top, rel=1e-5)


def reference_ntk(model, x) -> torch.Tensor:
    """Θ̂(x_i, x_j)_ab = ⟨∂f_a(x_i)/∂θ, ∂f_b(x_j)/∂θ⟩ from one backward per output entry."""
    out = model(x)
    rows = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(out[i, a], params(model), retain_graph=True)])
        for i in range(out.shape[0])
        for a in range(out.shape[1])
    ]
    j = torch.stack(rows)  # [N·k, P]
    k = out.shape[1]
    return (j @ j.T).reshape(out.shape[0], k, out.shape[0], k).permute(0, 2, 1, 3)


@pytest.mark.parametrize("method", [m.value for m in NtkMethod])
def test_the_ntk_through_attention(tiny, method):
    model, x, _ = tiny
    ref = reference_ntk(model, x)
    with math_attention():
        kernel = empirical_ntk(model, x, method=method)
    torch.testing.assert_close(kernel, ref, rtol=1e-9, atol=1e-12)


def test_the_ntk_probe_on_the_transformer_measures_the_kernel_change(tiny):
    model, x, y = tiny
    k0 = reference_ntk(model, x)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    lab = sgdlab.attach(
        model,
        opt,
        probes=["ntk"],
        loss_fn=LOSS,
        eval_data=(x, y),
        config={"probes": {"ntk": {"schedule": "step", "points": N, "test_points": N}}},
    )
    with lab.step(x, y):
        LOSS(model(x), y).backward()
        opt.step()
    lab.close()
    change = relative_change(reference_ntk(model, x), k0)
    rows = lab.metrics.to_pylist()
    assert rows[0]["ntk_kernel_change"] == 0.0
    assert rows[1]["ntk_kernel_change"] == pytest.approx(change, rel=1e-8) and change > 0


def test_the_zoo_transformer_trains_with_every_probe_in_the_engine():
    cfg = {
        "seed": 0,
        "data": {"name": "digits", "n_train": 32, "n_test": 16},
        "model": {"name": "transformer", "width": 16, "widths": [16]},
        "train": {"batch_size": 16, "max_steps": 2},
        "probes": {
            "use": ["eval", "norms", "gradients", "hessian", "ntk"],
            "gradients": {"schedule": "step"},
            "hessian": {"schedule": "final", "subset": 16, "trace_probes": 2, "max_iter": 5},
            "ntk": {"schedule": "final", "points": 4, "test_points": 4},
        },
    }
    result = sgdlab.run(cfg)
    last = result.metrics.to_pylist()[-1]
    assert result.status == "completed" and last["hessian_lambda_max"] > 0 and last["ntk_kernel_change"] > 0
    assert result.metrics.to_pylist()[0]["grad_n"] == 16
