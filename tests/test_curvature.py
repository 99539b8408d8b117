"""The Hessian operator and its estimators against obvious references: the dense Hessian from
torch.autograd.functional.hessian, quadratics with a known spectrum, a block of the dense
matrix; warm starts; the `hessian` probe against a direct computation and across a resume."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sgdlab
from conftest import tiny
from sgdlab.curvature import HessianOperator, MatrixOperator, hutchinson, lanczos, piece_size
from sgdlab.errors import UserError
from sgdlab.experiments.base import one_thread
from sgdlab.losses import get_loss
from sgdlab.params import set_flat_params
from sgdlab.store import RunDir

CE = get_loss("cross-entropy", "index")


@pytest.fixture(autouse=True)
def single_thread():
    """Small products on a shared machine: one thread (two spin-wait on each other)."""
    with one_thread():
        yield


def small_net(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(8, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Tanh(), nn.Linear(16, 4)]
    return nn.Sequential(*layers).double()


def data(n: int = 48):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 8, generator=gen, dtype=torch.float64), torch.randint(0, 4, (n,), generator=gen)


def dense_hessian(model: nn.Module, x, y) -> torch.Tensor:
    """∇²L by torch.autograd.functional.hessian, assembled into one matrix."""
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())
    buffers = dict(model.named_buffers())

    def f(*ps):
        return CE(
            torch.func.functional_call(model, {**dict(zip(names, ps, strict=True)), **buffers}, (x,)), y
        )

    blocks = torch.autograd.functional.hessian(f, params, vectorize=True)
    sizes = [p.numel() for p in params]
    return torch.cat(
        [
            torch.cat([blocks[i][j].reshape(sizes[i], sizes[j]) for j in range(len(sizes))], 1)
            for i in range(len(sizes))
        ],
        0,
    )


@pytest.fixture(scope="module")
def reference():
    model = small_net()
    x, y = data()
    return model, x, y, dense_hessian(model, x, y)


@pytest.mark.parametrize("method", ["double-backward", "jvp"])
def test_operator_and_estimators_match_the_dense_hessian(method, reference):
    model, x, y, dense = reference
    assert 200 <= dense.shape[0] <= 400  # a few hundred parameters
    op = HessianOperator(model, CE, x, y, method=method, chunk=20)  # pieces of 20, 20, 8
    probe = torch.randn(dense.shape[0], 6, generator=torch.Generator().manual_seed(5), dtype=dense.dtype)
    assert torch.allclose(op @ probe, dense @ probe, atol=1e-12)
    if method == "double-backward":
        assert torch.allclose(op.dense(), dense, atol=1e-12)

    exact = torch.linalg.eigvalsh(dense).flip(0)
    eig = lanczos(op, 4, tol=1e-7, max_iter=200, generator=torch.Generator().manual_seed(0))
    assert eig.converged and eig.iterations < 60
    assert torch.allclose(eig.values, exact[:4], rtol=1e-4)
    for i in range(4):  # the vectors are eigenvectors: ‖H v − λ v‖ small
        v = eig.vectors[:, i]
        assert torch.linalg.vector_norm(dense @ v - eig.values[i] * v) < 1e-5 * exact[0]

    probes = 64 if method == "double-backward" else 16  # jvp products cost more
    trace = hutchinson(op, probes, generator=torch.Generator().manual_seed(0))
    assert abs(trace.estimate - float(torch.trace(dense))) <= 3 * trace.stderr
    assert trace.stderr > 0 and len(trace.samples) == probes


def test_estimators_recover_a_known_spectrum():
    gen = torch.Generator().manual_seed(0)
    n = 300
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    spectrum = torch.cat(
        [
            torch.tensor([50.0, 20.0, 10.0, 9.0, 5.0], dtype=torch.float64),
            torch.linspace(-1, 1, n - 5, dtype=torch.float64),
        ]
    )
    a = (q * spectrum) @ q.T
    op = MatrixOperator(a)
    eig = lanczos(op, 5, tol=1e-9, max_iter=n, generator=gen)
    assert torch.allclose(eig.values, spectrum[:5], rtol=1e-8)
    assert eig.iterations == op.products < 100  # well-separated outliers converge fast
    trace = hutchinson(a, 400, generator=gen)  # a dense matrix works as an operator too
    assert abs(trace.estimate - float(spectrum.sum())) <= 3 * trace.stderr
    # Hutchinson's variance for Rademacher probes is 2(‖A‖_F² − Σ A_ii²)/m
    predicted = math.sqrt(2 * (float((a**2).sum()) - float((a.diag() ** 2).sum())) / 400)
    assert 0.7 * predicted < trace.stderr < 1.3 * predicted


def _spiked(n: int, top: list[float], seed: int, dtype: torch.dtype) -> torch.Tensor:
    """A random symmetric matrix with eigenvalues `top` and the rest evenly in [−1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    spectrum = torch.cat([torch.tensor(top, dtype=torch.float64), torch.linspace(-1, 1, n - len(top))])
    return ((q * spectrum) @ q.T).to(dtype)


def test_simons_estimate_keeps_the_basis_semi_orthogonal_with_few_measurements(monkeypatch):
    """Float32 Lanczos on a matrix whose top eigenvalue converges at once: without any
    reorthogonalization a ghost copy of 100 appears as the second value; with Simon's estimate
    deciding when to measure, the basis stays within about √ε of orthogonal and the second value
    is 3, with the basis measured only on some of the steps."""
    import sgdlab.curvature.estimators as estimators

    a = _spiked(400, [100.0, 3.0], 0, torch.float32)
    measured = []
    original = estimators._orthogonalize
    monkeypatch.setattr(estimators, "_orthogonalize", lambda b, m: measured.append(m) or original(b, m))
    scratch = torch.empty(121, 400)
    eig = lanczos(a, 2, tol=1e-6, max_iter=120, generator=torch.Generator().manual_seed(0), scratch=scratch)
    assert torch.allclose(eig.values, torch.tensor([100.0, 3.0], dtype=torch.float64), rtol=1e-5)
    basis = scratch[: eig.iterations]
    loss = float((basis @ basis.T - torch.eye(eig.iterations)).abs().max())
    assert loss <= 2 * math.sqrt(torch.finfo(torch.float32).eps)
    assert 0 < len(measured) < eig.iterations
    # a longer run at an unreachable tolerance: orthogonality is repaired only when needed
    measured.clear()
    long = lanczos(a, 2, tol=0.0, max_iter=40, generator=torch.Generator().manual_seed(0), scratch=scratch)
    assert long.iterations == 40 and 0 < len(measured) < 40
    gram = scratch[:40] @ scratch[:40].T - torch.eye(40)
    assert float(gram.abs().max()) <= 2 * math.sqrt(torch.finfo(torch.float32).eps)
    # the reference: no orthogonalization at all gives the ghost
    monkeypatch.setattr(estimators, "_omega_next", lambda omega, *args: [0.0] * len(omega) + [1.0])
    ghost = lanczos(a, 2, tol=1e-6, max_iter=120, generator=torch.Generator().manual_seed(0))
    assert float(ghost.values[1]) > 99


def test_simons_recurrence_tracks_the_measured_inner_products():
    """ω_{j+1,i} from `_omega_next` against q_{j+1}ᵀq_i measured in a float32 run without
    reorthogonalization (ω re-synced to the measured values each step): the estimate is of the
    size of the truth, and never below it by more than the rounding it allows for."""
    from sgdlab.curvature.estimators import _omega_next

    n = 300
    a = _spiked(n, [50.0, 10.0], 1, torch.float32)
    eps = torch.finfo(torch.float32).eps
    q = torch.randn(n, generator=torch.Generator().manual_seed(2))
    basis = [q / q.norm()]
    alphas, betas, prev, omega = [], [], [], [1.0]
    for j in range(40):
        r = a @ basis[j]
        alphas.append(float(r @ basis[j]))
        r = r - alphas[j] * basis[j] - (betas[j - 1] * basis[j - 1] if j else 0)
        beta = float(r.norm())
        estimate = _omega_next(omega, prev, alphas, betas, beta, eps)
        basis.append(r / beta)
        truth = [float(basis[j + 1] @ basis[i]) for i in range(j + 1)]
        if max(map(abs, truth)) > 10 * eps:  # above rounding level: the estimate has the size
            worst = max(range(j + 1), key=lambda i: abs(truth[i]))
            assert abs(estimate[worst]) >= 0.1 * abs(truth[worst])
        betas.append(beta)
        prev, omega = omega, truth + [1.0]
    assert max(map(abs, omega[:-1])) > math.sqrt(eps)  # orthogonality was lost: the test saw it


def test_least_squares_hessian_is_the_input_gram_matrix():
    """Linear regression with ½(wᵀx + b − y)²: H = (1/n) Σ [x;1][x;1]ᵀ exactly, in float32 too."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 5, generator=gen)
    y = torch.randn(64, generator=gen)
    model = nn.Linear(5, 1)
    xb = torch.cat([x, torch.ones(64, 1)], 1)
    gram = xb.T @ xb / 64
    op = HessianOperator(model, get_loss("squared", "real"), x, y)
    assert torch.allclose(op.dense(), gram, atol=1e-5)
    eig = lanczos(op, 2, tol=1e-5, generator=gen)
    assert torch.allclose(eig.values.float(), torch.linalg.eigvalsh(gram).flip(0)[:2], rtol=1e-4)


def test_block_restriction_is_the_diagonal_block(reference):
    model, x, y, dense = reference
    first = 8 * 16 + 16
    op = HessianOperator(model, CE, x, y, block="2")  # the second Linear: weight and bias
    assert op.n == 16 * 4 + 4
    assert torch.allclose(op.dense(), dense[first:, first:], atol=1e-12)
    op = HessianOperator(model, CE, x, y, block=["0.bias"])
    assert torch.allclose(op.dense(), dense[128:144, 128:144], atol=1e-12)
    with pytest.raises(UserError, match="selects no trainable parameter"):
        HessianOperator(model, CE, x, y, block="classifier")


def test_batch_norm_operator_uses_running_statistics_and_changes_nothing():
    model = small_net(bn=True)
    x, y = data()
    with torch.no_grad():  # non-trivial running statistics
        model[1].running_mean.normal_(0, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    op = HessianOperator(model, CE, x, y, method="jvp")
    model.eval()
    dense = dense_hessian(model, x, y)  # the eval-mode function of θ
    model.train()
    probe = torch.randn(dense.shape[0], 4, generator=torch.Generator().manual_seed(5), dtype=dense.dtype)
    assert torch.allclose(op @ probe, dense @ probe, atol=1e-12)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pieces_keep_the_largest_activation_within_the_budget_and_change_nothing():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 3))
    model.train()
    x = torch.randn(25, 1, 16, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    per_sample = 8 * 16 * 16 * 4  # the convolution's output, the largest activation
    assert piece_size(model, x, 1000, budget=10 * per_sample) == 9  # ≤ 10 a piece: 3 pieces, 9 9 7
    assert piece_size(model, x, 1000, budget=10 * per_sample - 1) == 9  # ≤ 9: still 3 pieces
    assert piece_size(model, x, 1000, budget=8 * per_sample) == 7  # ≤ 8: 4 pieces, 7 7 7 4
    assert piece_size(model, x, 1000) == 25  # 200 KB in all: one piece
    assert piece_size(model, x, 4) == 4  # the limit: 7 pieces of 4 (25 = 6·4 + 1)
    assert piece_size(model, x, 1000, budget=1) == 1
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_warm_start_from_the_previous_eigenvector_needs_fewer_products():
    model = small_net()
    x, y = data()
    op = HessianOperator(model, CE, x, y)
    first = lanczos(op, 1, tol=1e-6, max_iter=200, generator=torch.Generator().manual_seed(0))
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    nearby = theta + 1e-3 * torch.randn(
        theta.shape, generator=torch.Generator().manual_seed(3), dtype=theta.dtype
    )
    set_flat_params(model, nearby)
    op2 = HessianOperator(model, CE, x, y)
    cold = lanczos(op2, 1, tol=1e-6, max_iter=200, generator=torch.Generator().manual_seed(0))
    warm = lanczos(
        op2, 1, tol=1e-6, max_iter=200, v0=first.vectors, generator=torch.Generator().manual_seed(0)
    )
    assert warm.converged and cold.converged
    assert torch.allclose(warm.values, cold.values, rtol=1e-6)
    assert warm.iterations < cold.iterations


def test_bad_options_are_one_line_errors():
    model = small_net()
    x, y = data()
    with pytest.raises(UserError, match="method"):
        HessianOperator(model, CE, x, y, method="finite-differences")
    with pytest.raises(sgdlab.ConfigError):
        sgdlab.prepare(tiny(probes={"use": ["hessian"], "hessian": {"k": "two"}}))
    with pytest.raises(UserError, match="trace_probes"):
        sgdlab.prepare(tiny(probes={"use": ["hessian"], "hessian": {"trace_probes": 1}}))


def hessian_cfg(**probe) -> dict:
    return tiny(
        model={"widths": [8]},
        train={"epochs": None, "max_steps": 12},
        probes={
            "use": ["hessian"],
            "hessian": {"schedule": "every:3", "k": 2, "subset": 64, "trace_probes": 8, **probe},
        },
    )


def test_probe_matches_a_direct_computation_at_the_final_iterate():
    result = sgdlab.run(hessian_cfg(tol=1e-6))
    rows = result.metrics.to_pylist()
    last = [r for r in rows if r["step"] == 12][0]
    probe = result.parts.probes[0]
    x, y = result.parts.data.train.x[probe.indices], result.parts.data.train.y[probe.indices]
    op = HessianOperator(result.parts.model, result.parts.loss, x, y)
    exact = torch.linalg.eigvalsh(op.dense().double()).flip(0)
    assert last["hessian_lambda_max"] == pytest.approx(float(exact[0]), rel=1e-4)
    assert last["hessian_lambda_2"] == pytest.approx(float(exact[1]), rel=1e-4)
    assert abs(last["hessian_trace"] - float(exact.sum())) <= 4 * last["hessian_trace_se"]
    steps = [r["hessian_lanczos_steps"] for r in rows if r.get("hessian_lanczos_steps") is not None]
    assert len(steps) == 5 and min(steps[1:]) <= steps[0]  # warm starts after the first call


def test_probe_resume_continues_the_warm_start_exactly(tmp_path):
    cfg = hessian_cfg()
    ref = sgdlab.run(cfg, tmp_path / "ref")
    out = tmp_path / "cut"
    sgdlab.run(dict(cfg, checkpoint={"every_steps": 4}), out)
    run_dir = RunDir(out)
    state = run_dir.load(run_dir.states()[-1][1].name)
    assert state["probes"]["hessian"]["vectors"].shape[1] == 2  # the warm start is saved
    (out / "checkpoints/final.pt").unlink()
    for _, path in run_dir.states()[1:]:
        path.unlink()  # resume from the step-4 state
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    resumed = sgdlab.resume(out)
    assert resumed.metrics.equals(ref.metrics)


def test_value_accuracy_stops_earlier_and_its_error_estimate_covers_the_true_error():
    """accuracy = "value" stops once min(r, r²/δ) ≤ tol·|θ_1|: fewer products than the residual
    rule, values still within that estimate of the exact ones (quadratic in the residual)."""
    gen = torch.Generator().manual_seed(6)
    n = 300
    spectrum = torch.cat(
        [torch.tensor([10.0, 7.0, 5.0]), torch.rand(n - 3, generator=gen, dtype=torch.float64)]
    )
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    op = MatrixOperator(q @ torch.diag(spectrum.double()) @ q.T)
    by_residual = lanczos(op, 2, tol=1e-4, generator=torch.Generator().manual_seed(0))
    by_value = lanczos(op, 2, tol=1e-4, accuracy="value", generator=torch.Generator().manual_seed(0))
    assert by_residual.converged and by_value.converged
    assert by_value.iterations < by_residual.iterations
    true_error = (spectrum[:2] - by_value.values).abs()
    assert bool((true_error <= by_value.errors).all()) and float(by_value.errors.max()) <= 1e-4 * 10
    assert float(by_value.residuals.max()) > 1e-4 * 10  # the residuals alone would not have stopped
    with pytest.raises(UserError, match="accuracy"):
        lanczos(op, 1, accuracy="vectors")


def test_probe_reports_the_estimated_error_of_lambda_max():
    """With accuracy = "value" (the residual rule is the default) the probe's λ_max is within its
    reported error of the exact one, and that error within tol·λ_max."""
    from sgdlab.probes.hessian import Hessian

    with pytest.raises(UserError, match="accuracy"):
        Hessian("hessian", accuracy="vectors")
    result = sgdlab.run(hessian_cfg(trace_probes=0, tol=1e-2, accuracy="value"))
    probe = result.parts.probes[0]
    last = [r for r in result.metrics.to_pylist() if r["step"] == 12][0]
    x, y = result.parts.data.train.x[probe.indices], result.parts.data.train.y[probe.indices]
    exact = float(
        torch.linalg.eigvalsh(HessianOperator(result.parts.model, result.parts.loss, x, y).dense())[-1]
    )
    assert 0 <= last["hessian_lambda_max_error"] <= 1e-2 * last["hessian_lambda_max"]
    assert abs(last["hessian_lambda_max"] - exact) <= last["hessian_lambda_max_error"] + 1e-6 * exact
