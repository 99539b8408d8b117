"""Update rules: each optimizer, the step-size rules, Langevin noise and projection behave as
their formulas say."""

from __future__ import annotations

import math

import pyarrow.compute as pc
import pytest
import torch

import sgdlab
from conftest import tiny, write_toml
from sgdlab.config import OptimConfig, ScheduleConfig
from sgdlab.optim import BallProjection, LangevinNoise, StepSize, UpdateRule, build_rule, optimizers


def rule_with_grad(cfg: OptimConfig, grad: torch.Tensor, theta: torch.Tensor | None = None):
    p = torch.nn.Parameter(theta.clone() if theta is not None else torch.zeros_like(grad))
    rule = build_rule(cfg, [p], seed=0)
    p.grad = grad.clone()
    return rule, p


@pytest.mark.parametrize("alpha, norm", [(0.1, 2.1e7), (0.1, 0.31), (1.0, 0.0), (0.5, 3.0)])
def test_gradient_damped_rule_matches_its_formula(alpha, norm):
    grad = torch.zeros(4)
    grad[1] = norm
    cfg = OptimConfig(lr=0.1, schedule=ScheduleConfig(name="grad-damped", alpha=alpha))
    rule, p = rule_with_grad(cfg, grad)
    lr = rule.step(step=7, epoch=0)
    assert lr == pytest.approx(0.1 / (alpha * norm + 1))
    assert torch.allclose(p.detach(), -lr * grad)


@pytest.mark.parametrize(
    "name, unit, k_step, k_epoch, expected",
    [
        ("constant", "epoch", 500, 9, 0.1),
        ("inverse", "epoch", 500, 0, 0.1),  # ⌈0/K⌉ = 0
        ("inverse", "epoch", 500, 51, 0.1 / (1 + 2)),  # ⌈51/50⌉ = 2
        ("inverse", "step", 100, 0, 0.1 / (1 + 2)),  # ⌈100/50⌉ = 2
        ("inverse-sqrt", "epoch", 0, 101, 0.1 / (1 + math.sqrt(3))),
    ],
)
def test_decay_rules(name, unit, k_step, k_epoch, expected):
    rule = StepSize(0.1, ScheduleConfig(name=name, unit=unit, period=50))
    assert rule(k_step, k_epoch, lambda: pytest.fail("needs no gradient norm")) == pytest.approx(expected)


@pytest.mark.parametrize(
    "psi, c, expected_decay", [("linear", 1.0, 1 + 3), ("sqrt", 0.5, 1 + 0.5 * math.sqrt(3))]
)
def test_combined_rule(psi, c, expected_decay):
    rule = StepSize(0.1, ScheduleConfig(name="combined", period=50, alpha=0.1, psi=psi, c=c))
    assert rule(0, 101, lambda: 4.0) == pytest.approx(0.1 / (expected_decay * (0.1 * 4.0 + 1)))


def test_langevin_noise_has_the_requested_scale_and_decay():
    gen = torch.Generator().manual_seed(0)
    for decay, step, expected in (("none", 0, 0.05), ("none", 99, 0.05), ("inverse", 3, 0.05 / 4)):
        p = torch.zeros(400_000)
        LangevinNoise(0.05, decay, gen).apply([p], lr=1.0, step=step)
        assert p.mean().abs() < 4 * expected / math.sqrt(p.numel())
        assert p.std().item() == pytest.approx(expected, rel=0.01)


def test_sgdl_update_is_gradient_step_plus_noise_from_the_run_generator():
    grad = torch.full((200_000,), 2.0)
    cfg = OptimConfig(name="sgdl", lr=0.1, noise=0.01, noise_decay="none")
    rule, p = rule_with_grad(cfg, grad)
    rule.step(step=0, epoch=0)
    noise = p.detach() + 0.1 * grad
    assert noise.std().item() == pytest.approx(0.01, rel=0.02)
    again, q = rule_with_grad(cfg, grad)
    again.step(step=0, epoch=0)
    assert torch.equal(p, q)  # same seed, same noise


def test_projection_onto_the_ball():
    p = torch.tensor([3.0, 4.0])
    BallProjection(1.0).apply([p], lr=1.0, step=0)
    assert torch.allclose(p, torch.tensor([0.6, 0.8]))
    inside = torch.tensor([0.1, 0.2])
    BallProjection(1.0).apply([inside], lr=1.0, step=0)
    assert torch.equal(inside, torch.tensor([0.1, 0.2]))
    result = sgdlab.run(tiny(optim={"lr": 0.5, "project_radius": 2.0}, probes={"use": ["norms"]}))
    norms = result.metrics["param_norm"].drop_null().to_numpy()
    assert norms[1:].max() <= 2.0 + 1e-5 and norms[0] > 2.0


def test_momentum_update_is_the_velocity():
    """U_k = (θ_k − θ_{k+1})/η must equal the heavy-ball buffer v_k = μ v_{k−1} + g_k."""
    cfg = OptimConfig(name="momentum", lr=0.1, momentum=0.5, dampening=0.0)
    p = torch.nn.Parameter(torch.zeros(3))
    rule = build_rule(cfg, [p], seed=0)
    v = torch.zeros(3)
    for g in (torch.tensor([1.0, 0, 0]), torch.tensor([0, 2.0, 0]), torch.tensor([1.0, 1.0, 1.0])):
        before = p.detach().clone()
        p.grad = g.clone()
        lr = rule.step(0, 0)
        v = 0.5 * v + g
        assert torch.allclose((before - p.detach()) / lr, v)


def test_plain_sgd_path_matches_torch_sgd_bitwise_and_steps_aside_for_anything_else():
    """The rule's own θ ← θ − η·g (plain SGD: no momentum, weight decay or hook) gives the very
    numbers torch.optim.SGD gives, step after step, with a parameter left without gradient;
    momentum, or a step hook registered later, sends the step through torch.optim."""
    gen = torch.Generator().manual_seed(0)
    theta = [torch.randn(5, 3, generator=gen), torch.randn(3, generator=gen), torch.randn(2, generator=gen)]
    ours = [torch.nn.Parameter(t.clone()) for t in theta]
    ref = [torch.nn.Parameter(t.clone()) for t in theta]
    rule = build_rule(OptimConfig(name="sgd", lr=0.37), ours, seed=0)
    opt = torch.optim.SGD(ref, lr=0.37)
    assert rule.plain
    for _ in range(3):
        grads = [torch.randn(t.shape, generator=gen) for t in theta[:2]]  # the third gets none
        rule.zero_grad()
        opt.zero_grad(set_to_none=True)
        for p, q, g in zip(ours, ref, grads, strict=False):
            p.grad, q.grad = g.clone(), g.clone()
        rule.step(0, 0)
        opt.step()
        assert all(torch.equal(p, q) for p, q in zip(ours, ref, strict=True))
    assert ours[2].grad is None and torch.equal(ours[2], theta[2])
    assert not build_rule(
        OptimConfig(name="momentum", lr=0.1, momentum=0.5, dampening=0.0), [torch.nn.Parameter(theta[1])], 0
    ).plain
    differentiable = torch.nn.Parameter(theta[1].clone())
    differentiable_sgd = torch.optim.SGD([differentiable], lr=0.1, differentiable=True)
    assert not UpdateRule([differentiable], differentiable_sgd, StepSize(0.1, ScheduleConfig())).plain
    calls = []
    rule.base.register_step_pre_hook(lambda opt, args, kwargs: calls.append(1))
    rule.step(0, 0)
    assert calls == [1]


def test_recorded_step_size_follows_the_schedule():
    result = sgdlab.run(
        tiny(optim={"lr": 0.2, "schedule": {"name": "inverse", "period": 1}}, train={"epochs": 3})
    )
    table = result.metrics.filter(pc.is_valid(result.metrics["lr"]))
    for epoch, lr in zip(table["epoch"].to_pylist(), table["lr"].to_pylist(), strict=True):
        assert lr == pytest.approx(0.2 / (1 + math.ceil(int(epoch))))


def test_without_damping_the_first_steps_explode_and_damping_prevents_it():
    """Seed 004's table: the combined rule with α = 0 explodes to NaN (detected and reported,
    not a crash); with α > 0 the same run trains."""

    def run(alpha):
        return sgdlab.run(
            tiny(
                data={"targets": "onehot"},
                model={"widths": [64, 64, 64]},
                train={"loss": "squared", "epochs": 10},
                optim={"lr": 3.0, "schedule": {"name": "combined", "alpha": alpha, "psi": "sqrt", "c": 0.5}},
            )
        )

    exploded, damped = run(0.0), run(10.0)
    assert exploded.status == "diverged" and exploded.summary["diverged_at"] < 80
    assert damped.status == "completed" and math.isfinite(damped.summary["final"]["train_loss"])


@pytest.mark.parametrize("name", optimizers.names())
def test_every_optimizer_trains_digits_from_the_cli(tmp_path, cli, name):
    lr = {"adam": 0.01, "rmsprop": 0.01, "adagrad": 0.1, "gd": 0.5}.get(name, 0.1)
    epochs = 40 if name == "gd" else 4  # GD takes one step per epoch
    cfg = write_toml(tmp_path / "c.toml", tiny(optim={"name": name, "lr": lr}, train={"epochs": epochs}))
    result = cli("run", cfg, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    run = sgdlab.load_run(tmp_path / "run")
    losses = run.series("train_loss")[1]
    assert run.status == "completed" and losses[-1] < 0.7 * losses[0]
