"""The NTK instrument against known answers and slow references: a loop of single-sample
backward passes, Euler's theorem, the Gaussian-process variance recursion, GD and AdaGrad run
on the linearized model, and wide networks trained for real."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sgdlab
from sgdlab.build import resolve
from sgdlab.config import load_config
from sgdlab.errors import UserError
from sgdlab.models import build_model
from sgdlab.ntk import (
    KernelSolver,
    SingularKernel,
    closed_form,
    empirical_ntk,
    gd_learning_rate,
    gd_limit,
    jacobian_rows,
    linearize,
    plan_kernel,
    sign_kernel_limit,
)
from sgdlab.ntk.functional import functional
from sgdlab.params import flat_params


def ntk_mlp(widths, sigma=1.0, bias=False, n_in=5, n_out=1, seed=0, dtype=torch.float64):
    cfg = resolve(
        load_config(
            raw={
                "model": {
                    "name": "mlp",
                    "widths": list(widths),
                    "bias": bias,
                    "parametrization": "ntk",
                    "sigma": sigma,
                }
            }
        )
    )
    torch.manual_seed(seed)
    return build_model(cfg.model, (n_in,), n_out).to(dtype)


def brute_force_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Θ̂[i, j, a, b] from one backward pass per (input, output): the obviously correct loop."""

    def rows(x):
        out = []
        for xi in x:
            y = model(xi[None]).reshape(-1)
            out.append(
                torch.stack(
                    [
                        torch.cat(
                            [
                                g.reshape(-1)
                                for g in torch.autograd.grad(
                                    y[a], list(model.parameters()), retain_graph=True
                                )
                            ]
                        )
                        for a in range(len(y))
                    ]
                )
            )
        return torch.stack(out)

    j1, j2 = rows(x1), rows(x2)
    return torch.einsum("iap,jbp->ijab", j1, j2)


# ---------------------------------------------------------------------------------------
# the kernel


@pytest.mark.parametrize("n_out", [1, 3])
def test_jacobian_and_products_equal_the_backward_loop(n_out):
    model = nn.Sequential(
        nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, n_out)
    ).double()
    x1, x2 = torch.randn(7, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    ref = brute_force_ntk(model, x1, x2)
    ref = ref[:, :, 0, 0] if n_out == 1 else ref
    for method in ("jacobian", "products", "auto"):
        got = empirical_ntk(model, x1, x2, method=method)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    # A budget of a few kB forces one input per block of both methods, and symmetric blocks.
    tiny = empirical_ntk(model, x1, method="products", memory_budget=4096)
    torch.testing.assert_close(
        tiny,
        brute_force_ntk(model, x1, x1).squeeze(-1).squeeze(-1)
        if n_out == 1
        else brute_force_ntk(model, x1, x1),
        rtol=1e-12,
        atol=1e-12,
    )
    assert torch.equal(tiny, tiny.transpose(0, 1) if n_out == 1 else tiny.permute(1, 0, 3, 2))


def test_products_equal_jacobian_on_a_conv_net_with_batch_norm_in_eval_mode():
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)
    ).double()
    model.train()
    x = torch.randn(6, 1, 6, 6, dtype=torch.float64)
    a = empirical_ntk(model, x, method="jacobian")
    b = empirical_ntk(model, x, method="products", memory_budget=8192)
    torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)
    assert model.training  # left as it was


def test_trace_and_preconditioner():
    model = ntk_mlp([12], n_out=3, bias=True)
    x = torch.randn(4, 5, dtype=torch.float64)
    full = empirical_ntk(model, x)
    torch.testing.assert_close(empirical_ntk(model, x, trace=True), full.diagonal(dim1=2, dim2=3).sum(-1))
    a = torch.rand(flat_params(model).numel(), dtype=torch.float64)
    f = functional(model, None, x)
    rows = jacobian_rows(f, x)
    j = torch.cat([r.reshape(4, 3, -1) for r in rows.values()], dim=2)
    ref = torch.einsum("iap,p,jbp->ijab", j, a, j)
    for method in ("jacobian", "products"):
        torch.testing.assert_close(empirical_ntk(model, x, method=method, preconditioner=a), ref)


def test_auto_picks_the_jacobian_when_it_fits_and_products_otherwise():
    model = ntk_mlp([64], dtype=torch.float32)
    x = torch.randn(50, 5)
    f = functional(model, None, x)
    roomy = plan_kernel(f, 50, 50, True, "auto", 1 << 30)
    tight = plan_kernel(f, 50, 50, True, "auto", roomy.jacobian_bytes - 1)
    assert roomy.method == "jacobian" and roomy.jacobian_bytes <= roomy.budget
    assert tight.method == "products" and tight.jacobian_bytes > tight.budget
    assert tight.products_bytes <= tight.budget
    forced = plan_kernel(f, 50, 50, True, "products", 1 << 30)
    assert forced.method == "products"
    with pytest.raises(UserError, match="'fast' is not one of auto, jacobian, products"):
        empirical_ntk(model, x, method="fast")


def test_the_model_is_left_untouched():
    model = ntk_mlp([8], bias=True)
    before = flat_params(model).clone()
    theta = before + 0.1
    k_theta = empirical_ntk(model, torch.randn(3, 5, dtype=torch.float64), theta=theta)
    assert torch.equal(flat_params(model), before) and all(p.grad is None for p in model.parameters())
    assert k_theta.shape == (3, 3)


# ---------------------------------------------------------------------------------------
# known analytic answers


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_euler_homogeneity_of_zero_bias_relu_nets(depth):
    """A zero-bias ReLU net is positively homogeneous of degree L+1 in θ: ∇f·θ = (L+1)f."""
    model = ntk_mlp([32] * depth, sigma=1.7, bias=False)
    x = torch.randn(6, 5, dtype=torch.float64)
    f = functional(model, None, x)
    rows = jacobian_rows(f, x)
    phi = torch.cat([r.reshape(6, -1) for r in rows.values()], dim=1)
    out = model(x).reshape(-1)
    torch.testing.assert_close(phi @ flat_params(model), (depth + 1) * out, rtol=1e-10, atol=1e-12)
    # with biases the identity fails: the test can tell the two apart
    biased = ntk_mlp([32] * depth, sigma=1.7, bias=True)
    rows = jacobian_rows(functional(biased, None, x), x)
    phi = torch.cat([r.reshape(6, -1) for r in rows.values()], dim=1)
    assert not torch.allclose(phi @ flat_params(biased), (depth + 1) * biased(x).reshape(-1))


@pytest.mark.parametrize("bias", [False, True])
def test_output_variance_at_init_matches_the_closed_form(bias):
    """E f_0(x)² over inits: q_1 = σ²(‖x‖²/n_0 + β), q_{l+1} = σ²(q_l/2 + β), β = 1 with
    N(0,1) biases and 0 without (exact at any width: each pre-activation is symmetric given
    the layer below, so E ReLU(h)² = E h²/2). The model's own init draws θ_0 ~ N(0, I); the
    ensemble redraws it that way, all inits in one vmapped forward."""
    sigma, depth, n_in, inits = 1.3, 2, 5, 20_000
    x = torch.randn(2, n_in, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * torch.tensor([[0.5], [1.0]], dtype=torch.float64)
    beta = 1.0 if bias else 0.0
    q = sigma**2 * (x.pow(2).sum(1) / n_in + beta)
    for _ in range(depth):
        q = sigma**2 * (q / 2 + beta)
    model = ntk_mlp([16] * depth, sigma, bias, n_in)
    theta0 = flat_params(model)
    assert abs(float(theta0.mean())) < 0.1 and abs(float(theta0.var()) - 1) < 0.1  # N(0, 1) draws
    thetas = torch.randn(
        inits, theta0.numel(), generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    f = functional(model)
    outs = torch.func.vmap(lambda t: f.fn(f.params(t), x).reshape(-1))(thetas)
    second = outs.pow(2)
    mean, err = second.mean(0), second.std(0) / math.sqrt(inits)
    assert torch.all((mean - q).abs() <= 4 * err), (mean, q, err)
    assert torch.all(err / q < 0.05)  # the test has the power to see a wrong formula
    wrong = q * (2 if bias else 1.25)  # e.g. forgetting the ReLU's halving in one layer
    assert torch.all((mean - wrong).abs() > 4 * err)


# ---------------------------------------------------------------------------------------
# closed forms against the linearized model trained for real


def small_problem(n=8, n_test=5, widths=(64,), sigma=1.0, seed=0):
    """Unit-norm inputs in 10 dimensions, ±1 labels, a zero-bias NTK net: Θ̂ has a condition
    number near 10, so GD on the linearized model converges to 1e-6 in a few hundred steps."""
    torch.manual_seed(100 + seed)
    x = torch.randn(n + n_test, 10, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    y = torch.sign(x[:n, 0] + 0.3)
    return ntk_mlp(widths, sigma, bias=False, n_in=10, seed=seed), x[:n], y, x[n:]


def test_gd_limit_equals_gd_on_the_linearized_model():
    model, x, y, xt = small_problem()
    cf = closed_form(model, x, y, xt)
    lr = cf.learning_rate()
    lin = linearize(model)
    opt = torch.optim.SGD(lin.parameters(), lr=lr)
    steps = int(40 * cf.solver.condition)
    assert steps < 2000
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (lin(x).reshape(-1) - y).pow(2).mean()).backward()
        opt.step()
    pred = cf.limit()
    with torch.no_grad():
        torch.testing.assert_close(lin(xt).reshape(-1), pred.total, rtol=0, atol=1e-6)
        torch.testing.assert_close(lin(x).reshape(-1), y, rtol=0, atol=1e-6)
    # the initialization part is what separates it from the kernel interpolant
    assert pred.initialization.abs().max() > 1e-3


def test_finite_time_trajectory_equals_gd_on_the_linearized_model():
    model, x, y, xt = small_problem(seed=1)
    cf = closed_form(model, x, y, xt)
    lr = 0.7 * cf.learning_rate()
    lin = linearize(model)
    opt = torch.optim.SGD(lin.parameters(), lr=lr)
    checkpoints, seen = [0, 1, 7, 60], {}
    for t in range(61):
        if t in checkpoints:
            with torch.no_grad():
                seen[t] = (lin(x).reshape(-1).clone(), lin(xt).reshape(-1).clone())
        opt.zero_grad()
        (0.5 * (lin(x).reshape(-1) - y).pow(2).mean()).backward()
        opt.step()
    train, test = cf.trajectory(lr, checkpoints)
    for i, t in enumerate(checkpoints):
        torch.testing.assert_close(train[i], seen[t][0], rtol=0, atol=1e-10)
        torch.testing.assert_close(test[i], seen[t][1], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="GD diverges"):
        cf.trajectory(
            2.5
            * cf.learning_rate()
            * (cf.solver.lambda_min + cf.solver.lambda_max)
            / (2 * cf.solver.lambda_max),
            [1],
        )


def test_adagrad_on_one_point_converges_to_the_sign_kernel():
    model, x, y, xt = small_problem(n=1, n_test=6, widths=(16, 16), seed=2)
    ada_limit, gd_limit_ = sign_kernel_limit(model, x, y, xt)
    phi1 = torch.cat([r.reshape(-1) for r in jacobian_rows(functional(model, None, x), x).values()])
    residual = float(y[0] - model(x).reshape(-1)[0])
    # AdaGrad's first step moves f(x_1) by η‖φ_1‖₁: this η closes half the residual at once.
    lin = linearize(model)
    opt = torch.optim.Adagrad(lin.parameters(), lr=0.5 * abs(residual) / float(phi1.abs().sum()), eps=1e-300)
    for _ in range(80):
        opt.zero_grad()
        (0.5 * (lin(x).reshape(-1) - y).pow(2).mean()).backward()
        opt.step()
    with torch.no_grad():
        torch.testing.assert_close(lin(x).reshape(-1), y, rtol=0, atol=1e-9)
        torch.testing.assert_close(lin(xt).reshape(-1), ada_limit, rtol=0, atol=1e-6)
    gd = linearize(model)
    sgd = torch.optim.SGD(gd.parameters(), lr=0.5 / float(phi1 @ phi1))
    for _ in range(60):
        sgd.zero_grad()
        (0.5 * (gd(x).reshape(-1) - y).pow(2).mean()).backward()
        sgd.step()
    with torch.no_grad():
        torch.testing.assert_close(gd(xt).reshape(-1), gd_limit_, rtol=0, atol=1e-6)
    assert (ada_limit - gd_limit_).abs().max() > 1e-2  # two different minimizers


def test_the_constant_preconditioner_limit_equals_preconditioned_gd():
    model, x, y, xt = small_problem(seed=3)
    a = 0.5 + torch.rand(flat_params(model).numel(), dtype=torch.float64)
    cf = closed_form(model, x, y, xt, preconditioner=a)
    lin = linearize(model)
    lr = cf.learning_rate()
    for _ in range(int(40 * cf.solver.condition)):
        lin.zero_grad()
        (0.5 * (lin(x).reshape(-1) - y).pow(2).mean()).backward()
        with torch.no_grad():
            lin.theta -= lr * a * lin.theta.grad
    with torch.no_grad():
        torch.testing.assert_close(lin(xt).reshape(-1), cf.limit().total, rtol=0, atol=1e-6)
    plain = closed_form(model, x, y, xt).limit().total
    assert (plain - cf.limit().total).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------
# singular kernels


def test_a_singular_kernel_is_a_clear_error():
    model, x, y, xt = small_problem()
    x = torch.cat([x, x[:1]])  # a duplicated training input: two identical rows of Θ̂
    y = torch.cat([y, y[:1]])
    with pytest.raises(SingularKernel, match=r"Θ̂ \(9×9\) is singular to working precision.*duplicate"):
        closed_form(model, x, y, xt)
    assert issubclass(SingularKernel, UserError)
    k = empirical_ntk(model, x)
    with pytest.raises(SingularKernel):
        gd_limit(k, y, y, empirical_ntk(model, xt, x), torch.zeros(len(xt), dtype=torch.float64))
    assert gd_learning_rate(k) > 0  # the step needs only the spectrum's ends, not a solve
    # the same matrix solves once the duplicate is gone
    KernelSolver.of(k[:8, :8])


def test_solver_matches_a_direct_solve_on_a_well_conditioned_kernel():
    model, x, _, _ = small_problem()
    k = empirical_ntk(model, x)
    b = torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(KernelSolver.of(k).solve(b), torch.linalg.solve(k, b))


# ---------------------------------------------------------------------------------------
# wide networks trained for real approach the prediction


def trained_gap(width: int, seed: int, steps_factor: float = 3.0) -> float:
    """RMS over test points of (trained net − closed-form GD limit), N = 20 digits 0 vs 1."""
    raw = {
        "seed": seed,
        "device": "cpu",
        "dtype": "float64",
        "data": {
            "name": "digits",
            "classes": [0, 1],
            "n_train": 20,
            "n_test": 40,
            "normalize": "unit-ball",
            "targets": "pm1",
        },
        "model": {"name": "mlp", "widths": [width], "parametrization": "ntk", "sigma": 1.5, "bias": False},
        "optim": {"name": "gd", "lr": 1.0},
        "train": {"loss": "squared", "max_steps": 100_000, "stop_loss": 1e-9},
        "probes": {"use": []},
    }
    parts = sgdlab.prepare(raw)
    d = parts.data
    cf = closed_form(parts.model, d.train.x, d.train.y, d.test.x)
    raw["optim"]["lr"] = cf.learning_rate()
    result = sgdlab.run(raw)
    assert result.summary["stop_reason"] == "stop_loss"
    with torch.no_grad():
        out = result.parts.model(d.test.x).reshape(-1)
    return float((out - cf.limit().total).pow(2).mean().sqrt())


def test_trained_nets_approach_the_prediction_as_width_grows():
    """The default-suite version of the next test (widths 256 and 1024, two inits)."""
    gaps = {w: sum(trained_gap(w, s) for s in range(2)) / 2 for w in (256, 1024)}
    assert gaps[1024] < 0.75 * gaps[256] and gaps[1024] < 0.05, gaps


@pytest.mark.slow
def test_wide_net_of_width_4096_on_20_points_matches_the_prediction():
    """The gap falls like 1/√width (Lee et al. 2019): measured 0.042, 0.020, 0.009."""
    gaps = {w: sum(trained_gap(w, s) for s in range(3)) / 3 for w in (256, 1024, 4096)}
    assert gaps[1024] < 0.75 * gaps[256] and gaps[4096] < 0.75 * gaps[1024], gaps
    assert gaps[4096] < 0.02, gaps


# ---------------------------------------------------------------------------------------
# the ntk probe


def probe_config(**checkpoint):
    return {
        "seed": 0,
        "device": "cpu",
        "data": {
            "name": "digits",
            "classes": [0, 1],
            "n_train": 20,
            "n_test": 30,
            "normalize": "unit-ball",
            "targets": "pm1",
        },
        "model": {"name": "mlp", "widths": [256], "parametrization": "ntk", "sigma": 1.5, "bias": False},
        "optim": {"name": "gd", "lr": 40.0},
        "train": {"loss": "squared", "max_steps": 40},
        "checkpoint": checkpoint,
        "probes": {"use": ["ntk"], "ntk": {"schedule": "every:10", "points": 8, "test_points": 30}},
    }


def test_ntk_probe_measures_the_lazy_regime():
    result = sgdlab.run(probe_config())
    t = result.metrics
    change, lin, limit = (
        t[c].to_numpy(zero_copy_only=False) for c in ("ntk_kernel_change", "ntk_lin_gap", "ntk_limit_gap")
    )
    assert change[0] == 0 and lin[0] == 0  # θ_t = θ_0
    assert 0 < change[1] <= change[-1] < 0.5 and lin[-1] > 0  # a wide net moves its kernel a little
    assert limit[-1] < 0.3 * limit[0]  # and its outputs head for the closed-form limit
    # the reference the probe compares with is the closed form computed here independently
    parts = sgdlab.prepare(probe_config())
    d = parts.data
    cf = closed_form(parts.model, d.train.x, d.train.y, d.test.x)
    f0 = parts.model(d.test.x).reshape(-1).detach()
    assert limit[0] == pytest.approx(float((f0 - cf.limit().total).pow(2).mean().sqrt()), rel=1e-4)


def test_ntk_probe_resumes_from_its_saved_references(tmp_path):
    ref = sgdlab.run(probe_config())
    out = tmp_path / "cut"
    sgdlab.run(probe_config(every_steps=20), out)  # states at steps 20 and 40
    run_dir = sgdlab.store.RunDir(out)
    (out / "checkpoints/final.pt").unlink()
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    state = run_dir.load(run_dir.states()[-1][1].name)  # weights_only: plain tensors
    assert set(state["probes"]["ntk"]) == {"kernel0", "f0", "limit"}
    resumed = sgdlab.resume(out)
    assert resumed.metrics.equals(ref.metrics)
