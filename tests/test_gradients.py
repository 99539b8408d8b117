"""sgdlab.gradients: both paths against a Python loop of single-sample backward passes, on an
MLP, a CNN, a residual net and models with layers the identity does not cover; the statistics
against their definitions; the `gradients` probe on the training step against a separate pass,
the trajectory with the probe on and off, and its errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sgdlab.errors import UserError
from sgdlab.gradients import gram_stats, minibatch_gram, per_sample_gram, per_sample_norms, plan_split
from sgdlab.gradients.generic import blocks
from sgdlab.losses import get_loss
from sgdlab.models.layers import NTKLinear

CE = get_loss("cross-entropy", "index")


def loop_gram(model, loss, x, y) -> torch.Tensor:
    """The reference: one backward pass per sample, per-sample gradients stacked, G = J Jᵀ."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    model.eval()
    for i in range(len(x)):
        li = loss.per_sample(model(x[i : i + 1]), y[i : i + 1]).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, params)]))
    j = torch.stack(rows).double()
    return j @ j.T


def rel_error(g: torch.Tensor, ref: torch.Tensor) -> float:
    """max_ij |G − G_ref| / √(G_ref,ii G_ref,jj): the error on the cosine scale."""
    d = ref.diagonal().clamp_min(1e-300).sqrt()
    return float(((g - ref).abs() / torch.outer(d, d)).max())


class Scale(nn.Module):
    """A layer with a parameter the identity has no rule for: y = s ⊙ x."""

    def __init__(self, n: int):
        super().__init__()
        self.s = nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x):
        return x * self.s


class Tied(nn.Module):
    """One Linear applied twice (its hook fires twice): the identity must not be used for it."""

    def __init__(self, bias: bool):
        super().__init__()
        self.inp = nn.Linear(6, 8, bias=bias)
        self.mid = nn.Linear(8, 8, bias=bias)
        self.out = nn.Linear(8, 3, bias=bias)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.out(torch.tanh(self.mid(torch.tanh(self.mid(h)))))


class Sequence(nn.Module):
    """Linear on a [N, T, d] input (extra dims summed over by the identity) and a Conv1d."""

    def __init__(self, bias: bool):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1, stride=2, bias=bias)
        self.lin = nn.Linear(4, 5, bias=bias)
        self.head = nn.Linear(5 * 4, 3, bias=bias)

    def forward(self, x):  # x: [N, 3, 8]
        h = torch.relu(self.conv(x)).transpose(1, 2)  # [N, 4, 4]
        return self.head(torch.tanh(self.lin(h)).flatten(1))


def inplace(bias):
    """ReLU(inplace=True) overwrites the Linear outputs the identity needs gradients of."""
    return nn.Sequential(
        nn.Linear(6, 8, bias=bias),
        nn.ReLU(inplace=True),
        nn.Linear(8, 7, bias=bias),
        nn.ReLU(inplace=True),
        nn.Linear(7, 3, bias=bias),
    )


def mlp(bias):
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 10, bias=bias),
        nn.ReLU(),
        nn.Linear(10, 7, bias=bias),
        nn.Tanh(),
        nn.Linear(7, 3, bias=bias),
    )


def cnn(bias):
    """Both per-sample conv gradient kernels: few input channels (patches × output gradients)
    and ≥ 8 (grouped-convolution weight gradient), with stride, padding and dilation."""
    return nn.Sequential(
        nn.Conv2d(2, 8, 3, bias=bias),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, stride=2, padding=1, dilation=2, bias=bias),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 3 * 3, 3, bias=bias),
    )


def residual(bias):
    from sgdlab.config import ModelConfig
    from sgdlab.models import build_model

    return build_model(
        ModelConfig(
            name="residual-mlp",
            residual_widths=(5, 5, 4),
            widths=(3,),
            activation="relu",
            bias=bias,
            init="default",
            parametrization="standard",
            sigma=1.0,
        ),
        (6,),
        3,
    )


def unsupported(bias):
    return nn.Sequential(
        nn.Linear(6, 8, bias=bias), nn.LayerNorm(8), nn.ReLU(), Scale(8), nn.Linear(8, 3, bias=bias)
    )


def ntk(bias):
    return nn.Sequential(
        NTKLinear(6, 9, sigma=1.3, bias=bias), nn.ReLU(), NTKLinear(9, 3, sigma=0.7, bias=bias)
    )


MODELS = {
    "mlp": (mlp, (6,)),
    "cnn": (cnn, (2, 9, 9)),
    "residual": (residual, (6,)),
    "unsupported": (unsupported, (6,)),
    "tied": (Tied, (6,)),
    "sequence": (Sequence, (3, 8)),
    "ntk": (ntk, (6,)),
    "inplace": (inplace, (6,)),
}
# parameters each model leaves to the generic path under "auto"
GENERIC = {"unsupported": {"1.weight", "1.bias", "3.s"}, "tied": {"mid.weight", "mid.bias"}}


def batch(shape, n=9, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=gen, dtype=dtype), torch.randint(0, 3, (n,), generator=gen)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("path", ["auto", "vmap"])
def test_both_paths_agree_with_a_loop_of_single_sample_backward_passes(name, bias, path):
    torch.manual_seed(1)
    build, shape = MODELS[name]
    model = build(bias)
    x, y = batch(shape)
    ref = loop_gram(model, CE, x, y)
    result = per_sample_gram(model, CE, x, y, path=path)
    assert rel_error(result.gram, ref) <= 1e-5
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(result.ghost) | set(result.generic) == trainable
    assert not set(result.ghost) & set(result.generic)
    if path == "vmap":
        assert not result.ghost
    else:
        expected = {n for n in GENERIC.get(name, set()) if n in trainable}
        assert set(result.generic) == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_norms_alone_are_the_gram_diagonal(name):
    torch.manual_seed(1)
    build, shape = MODELS[name]
    model = build(True)
    x, y = batch(shape)
    ref = loop_gram(model, CE, x, y).diagonal().sqrt()
    for path in ("auto", "vmap"):
        torch.testing.assert_close(per_sample_norms(model, CE, x, y, path=path), ref, rtol=1e-5, atol=1e-7)


def test_float64_agreement_is_at_rounding_level():
    torch.manual_seed(2)
    model = cnn(True).double()
    x, y = batch((2, 9, 9), dtype=torch.float64)
    ref = loop_gram(model, CE, x, y)
    for path in ("auto", "vmap"):
        assert rel_error(per_sample_gram(model, CE, x, y, path=path).gram, ref) <= 1e-12


def test_conv_by_identity_and_by_per_sample_gradients_agree():
    """weight_gram picks the double sum or the per-sample gradients by cost; both are exact."""
    from sgdlab.gradients.ghost import weight_gram

    gen = torch.Generator().manual_seed(3)
    a = torch.randn(5, 7, 4, generator=gen, dtype=torch.float64)
    d = torch.randn(5, 7, 3, generator=gen, dtype=torch.float64)
    per_sample = torch.einsum("nto,nti->noi", d, a).reshape(5, -1)
    expected = per_sample @ per_sample.T
    torch.testing.assert_close(weight_gram(a, d, budget=1 << 20), expected)  # double sum here
    wide_a = torch.randn(5, 2, 40, generator=gen, dtype=torch.float64)
    wide_d = torch.randn(5, 2, 30, generator=gen, dtype=torch.float64)
    g = torch.einsum("nto,nti->noi", wide_d, wide_a).reshape(5, -1)
    torch.testing.assert_close(weight_gram(wide_a, wide_d, budget=1 << 20), g @ g.T)
    # tiny budgets force blocks in both forms
    torch.testing.assert_close(weight_gram(a, d, budget=1), expected)
    big_a = torch.randn(5, 300, 4, generator=gen, dtype=torch.float64)
    big_d = torch.randn(5, 300, 3, generator=gen, dtype=torch.float64)
    g = torch.einsum("nto,nti->noi", big_d, big_a).reshape(5, -1)
    torch.testing.assert_close(weight_gram(big_a, big_d, budget=1), g @ g.T)


@pytest.mark.parametrize(
    "shape",
    [
        (5, 64, 4, 32, 3, 1, 0, 1),  # few output positions, wide kernel: the identity's double sum
        (5, 3, 9, 4, 3, 2, 1, 1),  # few input channels: patches × output gradients
        (5, 12, 9, 4, 2, 1, 2, 2),  # many input channels: grouped-convolution weight gradient
    ],
    ids=["double-sum", "patches", "grouped"],
)
def test_conv_weight_gram_branches_against_autograd(shape):
    from sgdlab.gradients.ghost import conv_weight_gram

    n, c, h, o, k, stride, padding, dilation = shape
    torch.manual_seed(8)
    conv = nn.Conv2d(c, o, k, stride=stride, padding=padding, dilation=dilation, bias=False).double()
    a = torch.randn(n, c, h, h, dtype=torch.float64)
    d = torch.randn(n, o, *conv(a).shape[2:], dtype=torch.float64)
    rows = []
    for i in range(n):
        (g,) = torch.autograd.grad((conv(a[i : i + 1]) * d[i : i + 1]).sum(), [conv.weight])
        rows.append(g.reshape(-1))
    j = torch.stack(rows)
    torch.testing.assert_close(conv_weight_gram(conv, a, d, budget=1 << 20), j @ j.T)
    torch.testing.assert_close(conv_weight_gram(conv, a, d, budget=1), j @ j.T)  # in blocks
    torch.testing.assert_close(conv_weight_gram(conv, a, d, budget=1 << 20, diag=True), (j * j).sum(1))


def test_vmap_path_within_a_tiny_budget_splits_tensors_and_stays_exact():
    torch.manual_seed(4)
    model = mlp(True)
    x, y = batch((6,))
    ref = loop_gram(model, CE, x, y)
    tiny = per_sample_gram(model, CE, x, y, path="vmap", budget_mb=1e-3)  # ~1 kB: 14 columns per block
    assert rel_error(tiny.gram, ref) <= 1e-5
    pieces = blocks({"a": 10, "b": 3}, n=2, itemsize=4, budget=64)
    assert pieces == [[("a", 0, 4)], [("a", 4, 8)], [("a", 8, 10), ("b", 0, 2)], [("b", 2, 3)]]


def test_fast_path_refuses_layers_it_cannot_compute():
    model = unsupported(True)
    x, y = batch((6,))
    with pytest.raises(UserError, match="cannot compute the parameters 1.weight, 1.bias, 3.s"):
        per_sample_gram(model, CE, x, y, path="fast")
    with pytest.raises(UserError, match="is not one of auto, fast, vmap"):
        per_sample_gram(model, CE, x, y, path="ghost")
    assert plan_split(mlp(True), x[:1], "fast").generic == ()


def test_batch_norm_models_use_running_statistics_and_change_nothing():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    with torch.no_grad():
        model(torch.randn(32, 6))  # non-trivial running statistics
    x, y = batch((6,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = per_sample_gram(model, CE, x, y)
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())
    assert rel_error(result.gram, loop_gram(model, CE, x, y)) <= 1e-5  # loop_gram: eval mode
    assert set(result.generic) == {"1.weight", "1.bias"}


def test_squared_and_logistic_losses():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))
    x = torch.randn(7, 4)
    for loss, y in (
        (get_loss("squared", "real"), torch.randn(7)),
        (get_loss("logistic", "pm1"), torch.randint(0, 2, (7,)).float() * 2 - 1),
    ):
        ref = loop_gram(model, loss, x, y)
        assert rel_error(per_sample_gram(model, loss, x, y).gram, ref) <= 1e-5


# ---------------------------------------------------------------------------------------
# statistics against their definitions, from explicit gradients


def explicit(n=6, p=5, seed=7):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, p, generator=gen, dtype=torch.float64) + 0.5
    return g, g @ g.T


def test_gram_stats_match_their_definitions():
    g, gram = explicit()
    n = len(g)
    s = gram_stats(gram, (0.25, 0.5))
    norms = g.norm(dim=1)
    mean = g.mean(dim=0)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    inner = torch.tensor([float(g[i] @ g[j]) for i, j in pairs], dtype=torch.float64)
    cos = torch.tensor([float(g[i] @ g[j] / (norms[i] * norms[j])) for i, j in pairs], dtype=torch.float64)
    var = float(((g - mean) ** 2).sum()) / (n - 1)
    along = g @ mean
    ortho = g - along[:, None] / mean.dot(mean) * mean
    assert s["grad_norm_max"] == pytest.approx(float(norms.max()))
    assert s["grad_norm_q50"] == pytest.approx(float(torch.quantile(norms, 0.5)))
    assert s["grad_mu"] == pytest.approx(float(inner.min()))
    assert s["grad_inner_mean"] == pytest.approx(float(inner.mean()))
    assert s["grad_inner_q25"] == pytest.approx(float(torch.quantile(inner, 0.25)))
    assert s["grad_cos_min"] == pytest.approx(float(cos.min()))
    assert s["grad_cos_mean"] == pytest.approx(float(cos.mean()))
    assert s["grad_batch_norm"] == pytest.approx(float(mean.norm()))
    assert s["grad_variance"] == pytest.approx(var)
    assert s["grad_snr"] == pytest.approx(float(mean.dot(mean)) / var)
    assert s["grad_norm_test"] == pytest.approx(var / (n * float(mean.dot(mean))))
    assert s["grad_inner_product_test"] == pytest.approx(
        float(along.var()) / (n * float(mean.dot(mean)) ** 2)
    )
    assert s["grad_orthogonality_test"] == pytest.approx(
        float((ortho**2).sum()) / (n - 1) / (n * float(mean.dot(mean)))
    )


def test_single_sample_and_zero_gradients_leave_undefined_statistics_out():
    s = gram_stats(torch.tensor([[4.0]]))
    assert s["grad_norm_max"] == 2.0 and "grad_mu" not in s and "grad_variance" not in s
    zero = gram_stats(torch.zeros(3, 3))
    assert zero["grad_mu"] == 0.0 and "grad_cos_mean" not in zero and "grad_norm_test" not in zero
    assert all(math.isfinite(v) for v in zero.values())


def test_minibatch_gram_is_the_gram_of_batch_mean_gradients():
    g, gram = explicit(n=8)
    batches = torch.tensor([[0, 1, 2], [2, 5, 7], [3, 4, 6]])
    means = torch.stack([g[b].mean(dim=0) for b in batches])
    torch.testing.assert_close(minibatch_gram(gram, batches), means @ means.T)


# ---------------------------------------------------------------------------------------
# the `gradients` probe

import numpy as np  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

import sgdlab  # noqa: E402
from conftest import tiny  # noqa: E402
from sgdlab.store import RunDir  # noqa: E402


def tiny_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 10))


def tiny_mixed():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), Scale(12), nn.Tanh(), nn.Linear(12, 10))


def probe_cfg(schedule="every:2", steps=8, **options):
    return tiny(
        probes={"use": ["batch_loss", "gradients"], "gradients": {"schedule": schedule, **options}},
        train={"epochs": None, "max_steps": steps, "batch_size": 16},
    )


def columns(table, prefix="grad_"):
    return {
        c: np.asarray(table.filter(pc.is_valid(table[c]))[c].to_pylist())
        for c in table.column_names
        if c.startswith(prefix)
    }


def tiny_inplace():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(inplace=True), nn.Linear(12, 10))


@pytest.mark.parametrize(
    "model", [None, tiny_cnn, tiny_mixed, tiny_inplace], ids=["mlp", "cnn", "mixed", "inplace-relu"]
)
def test_probe_on_the_training_step_equals_the_probe_on_a_separate_pass(model):
    build = {} if model is None else {"model": model()}
    on_step = sgdlab.run(probe_cfg(), **build)
    assert on_step.parts.probes[1].from_step
    build = {} if model is None else {"model": model()}
    separate = sgdlab.run(probe_cfg(reuse_step=False), **build)
    assert not separate.parts.probes[1].from_step
    a, b = columns(on_step.metrics), columns(separate.metrics)
    assert a.keys() == b.keys() and {"grad_mu", "grad_norm_test", "grad_full_norm_best"} <= a.keys()
    scale = float(a["grad_norm_max"].max()) ** 2
    for key in a:
        tol = scale if key.startswith(("grad_mu", "grad_inner", "grad_variance")) else 1.0
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6 * tol, err_msg=key)
    assert len(a["grad_mu"]) == 4  # steps 0, 2, 4, 6


@pytest.mark.parametrize(
    "options,model",
    [
        ({"batch": "train", "schedule": "step"}, {}),  # captured from the step
        ({"batch": "train", "schedule": "step"}, {"dropout": 0.2}),  # separate eval-mode pass
        ({"batch": "eval", "n_eval": 32, "schedule": "every:3"}, {}),  # state probe on a subset
    ],
)
def test_trajectory_is_bit_identical_with_the_probe_on(options, model):
    def cfg(use):
        raw = tiny(probes={"use": use}, model=model, train={"epochs": None, "max_steps": 12})
        if "gradients" in use:
            raw["probes"]["gradients"] = options
        return raw

    off = sgdlab.run(cfg(["batch_loss"]))
    on = sgdlab.run(cfg(["batch_loss", "gradients"]))
    assert (
        columns(off.metrics, "batch")["batch_loss"].tolist()
        == columns(on.metrics, "batch")["batch_loss"].tolist()
    )
    for p, q in zip(off.parts.model.parameters(), on.parts.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert "grad_mu" in on.metrics.column_names


def test_probe_matches_the_library_on_the_same_batch_and_iterate():
    """The row of step 0 is the Gram matrix of B_0 at θ_0: recompute it from the saved θ_0."""
    result = sgdlab.run(probe_cfg(schedule="step", steps=1))
    parts = sgdlab.prepare(probe_cfg(schedule="step", steps=1))
    x, y = parts.data.batch(parts.data.train, parts.sampler.indices(0))
    expected = per_sample_gram(parts.model, parts.loss, x, y).stats()
    got = {c: result.metrics[c][0].as_py() for c in expected}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    mean_loss = parts.loss(parts.model(parts.data.train.x), parts.data.train.y)
    full = torch.cat([g.reshape(-1) for g in torch.autograd.grad(mean_loss, list(parts.model.parameters()))])
    assert result.metrics["grad_full_norm"][0].as_py() == pytest.approx(float(full.norm()), rel=1e-5)


def test_best_full_gradient_is_the_running_minimum_and_survives_resume(tmp_path):
    raw = probe_cfg(schedule="step", steps=10)
    ref = sgdlab.run(raw, tmp_path / "ref")
    full = columns(ref.metrics)["grad_full_norm"]
    np.testing.assert_array_equal(columns(ref.metrics)["grad_full_norm_best"], np.minimum.accumulate(full))
    out = tmp_path / "cut"
    sgdlab.run(dict(raw, checkpoint={"every_steps": 4}), out)
    (out / "checkpoints/final.pt").unlink()
    run_dir = RunDir(out)
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    assert sgdlab.resume(out).metrics.equals(ref.metrics)


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("batch", "test", "'test' is not one of train, eval"),
        ("path", "ghost", "'ghost' is not one of auto, fast, vmap"),
        ("n_eval", 1, "must be ≥ 2"),
        ("quantiles", [0.5, 2.0], "must lie in \\[0, 1\\]"),
    ],
)
def test_probe_options_are_checked(option, value, message):
    with pytest.raises(UserError, match=message):
        sgdlab.prepare(probe_cfg(**{option: value}))


def test_fast_path_on_a_model_it_cannot_compute_is_a_user_error():
    with pytest.raises(UserError, match="cannot compute the parameters"):
        sgdlab.run(probe_cfg(path="fast"), model=tiny_mixed())


def test_cli_lists_the_probe_with_its_options(cli):
    out = cli("list", "probes")
    assert out.exit_code == 0
    assert "gradients" in out.stdout and "reuse_step" in out.stdout and "n_eval" in out.stdout


def test_captured_activations_are_freed_after_each_measured_step(monkeypatch):
    """The probe's tensor hooks on layer outputs live in autograd's C++ side, which Python's
    garbage collector cannot see: unless the capture removes them, every captured output stays
    alive for the rest of the process (≈100 MB per step on a CIFAR-10 CNN). Here every captured
    output must be gone once the run ends and garbage is collected."""
    import gc
    import weakref

    from sgdlab.gradients import ghost

    outputs: list[weakref.ref] = []
    hook = ghost.Capture._hook

    def recording(self, layer, inputs, output):
        outputs.append(weakref.ref(output))
        return hook(self, layer, inputs, output)

    monkeypatch.setattr(ghost.Capture, "_hook", recording)
    result = sgdlab.run(probe_cfg())
    assert result.parts.probes[1].from_step
    del result
    gc.collect()
    assert outputs and not [ref for ref in outputs if ref() is not None]


# ---------------------------------------------------------------------------------------
# moments: ‖g_i‖² and Σ_j ⟨g_i, g_j⟩ without the Gram matrix (pairs = false)

PAIR_ONLY = ("grad_mu", "grad_inner_q", "grad_cos_")


@pytest.mark.parametrize("name", list(MODELS))
def test_moments_are_the_gram_diagonal_and_row_sums_of_the_loop(name):
    from sgdlab.gradients import per_sample_moments

    torch.manual_seed(1)
    build, shape = MODELS[name]
    model = build(True)
    x, y = batch(shape)
    ref = loop_gram(model, CE, x, y)
    scale = float(ref.diagonal().max())
    for path in ("auto", "vmap"):
        m = per_sample_moments(model, CE, x, y, path=path)
        torch.testing.assert_close(m.sq_norms, ref.diagonal(), rtol=1e-5, atol=1e-7 * scale)
        torch.testing.assert_close(m.row_sums, ref.sum(dim=1), rtol=1e-5, atol=1e-6 * scale)


def conv_case(c, h, o, k, stride, padding, dilation, n=5):
    torch.manual_seed(8)
    conv = nn.Conv2d(c, o, k, stride=stride, padding=padding, dilation=dilation).double()
    a = torch.randn(n, c, h, h, dtype=torch.float64)
    d = torch.randn(n, o, *conv(a).shape[2:], dtype=torch.float64)
    rows = []
    for i in range(n):
        (g,) = torch.autograd.grad((conv(a[i : i + 1]) * d[i : i + 1]).sum(), [conv.weight])
        rows.append(g.reshape(-1))
    return conv, a, d, torch.stack(rows)


@pytest.mark.parametrize(
    "shape",
    [(64, 4, 32, 3, 1, 0, 1), (3, 9, 4, 3, 2, 1, 1), (12, 9, 4, 2, 1, 2, 2)],
    ids=["few-positions", "few-channels", "many-channels"],
)
@pytest.mark.parametrize("chunk", [None, 2], ids=["one-chunk", "chunks-of-2"])
def test_conv_weight_moments_branches_against_autograd(shape, chunk, monkeypatch):
    """Few output positions: the identity's blocks and a convolution with S; otherwise the
    per-sample gradients a few samples at a time (all 5 at once, or 2, 2 and a last chunk of 1),
    in fresh memory or in a workspace that another layer's call used before (and again); with
    the bias, the moments of [∇_W ℓ_i | ∇_b ℓ_i]."""
    from sgdlab.gradients import Workspace, conv
    from sgdlab.gradients.moments import conv_weight_moments

    if chunk is not None:
        monkeypatch.setattr(conv, "sample_chunk", lambda per_sample_bytes: chunk)
    layer, a, d, j = conv_case(*shape)
    args = conv.conv2d_args(layer, a, d)
    transposed = j.view(j.shape[0], layer.out_channels, -1).transpose(1, 2).reshape(j.shape[0], -1)
    torch.testing.assert_close(conv.conv_per_sample_grads(*args), transposed)
    total = j.sum(dim=0).view_as(layer.weight)
    expected = ((j * j).sum(dim=1), j @ j.sum(dim=0))
    work = Workspace()
    other, a2, d2, j2 = conv_case(3, 7, 5, 3, 1, 1, 1)
    conv_weight_moments(other, a2, d2, j2.sum(dim=0).view_as(other.weight), 1 << 20, work)
    for memory in (None, work, work):
        torch.testing.assert_close(conv_weight_moments(layer, a, d, total, 1 << 20, memory), expected)
        both = torch.cat([j, d.sum(dim=(2, 3))], dim=1)  # [∇_W ℓ_i | ∇_b ℓ_i]
        moments = conv_weight_moments(layer, a, d, total, 1 << 20, memory, bias=True)
        torch.testing.assert_close(moments, ((both * both).sum(dim=1), both @ both.sum(dim=0)))


@pytest.mark.parametrize(
    "shape",
    [
        (64, 4, 32, 3, 1, 0, 1),
        (3, 9, 4, 3, 2, 1, 1),
        (12, 9, 4, 2, 1, 2, 2),
        (2, 11, 3, (3, 2), (2, 3), (1, 2), (2, 1)),
    ],
    ids=["plain", "stride-padding", "padding-dilation", "rectangular"],
)
def test_conv_squared_norms_from_the_input_gram_match_autograd(shape):
    """‖∇_W ℓ_i‖² by the identity with patch inner products summed from the input's spatial
    Gram matrix, whatever the stride, padding, dilation and kernel shape; in blocks of samples
    (a budget of one sample) as in one."""
    from sgdlab.gradients.conv import conv2d_args
    from sgdlab.gradients.moments import conv_sq_norms

    conv, a, d, j = conv_case(*shape)
    args = conv2d_args(conv, a, d)
    torch.testing.assert_close(conv_sq_norms(*args, budget=1 << 20), (j * j).sum(dim=1))
    torch.testing.assert_close(conv_sq_norms(*args, budget=1), (j * j).sum(dim=1))


@pytest.mark.parametrize("t,d_in,d_out", [(7, 4, 3), (2, 40, 30), (1, 40, 30), (1, 3, 2)])
def test_linear_moments_branches_against_the_per_sample_gradients(t, d_in, d_out):
    from sgdlab.gradients.moments import linear_moments, weight_moments

    gen = torch.Generator().manual_seed(3)
    a = torch.randn(5, t, d_in, generator=gen, dtype=torch.float64)
    d = torch.randn(5, t, d_out, generator=gen, dtype=torch.float64)
    g = torch.einsum("nto,nti->noi", d, a)
    flat = g.reshape(5, -1)
    expected = ((flat * flat).sum(dim=1), flat @ flat.sum(dim=0))
    for fn in (linear_moments, weight_moments):
        torch.testing.assert_close(fn(a, d, g.sum(dim=0), budget=1 << 20), expected)


def test_capture_keeps_the_backwards_weight_gradients_until_the_loop_changes_them():
    """Capture(weight_grads=True) gives each layer's weight gradient of the backward inside it,
    with no copy, and leaves out one the loop has since changed in place (a zero_grad that
    keeps the tensor, clipping), so that a stale Σ_j g_j is never used."""
    from sgdlab.gradients.ghost import Capture

    torch.manual_seed(5)
    model = ntk(True)
    x, y = batch((6,), n=8)
    with Capture({"0": model[0], "2": model[2]}, grad_hooks=True, weight_grads=True) as cap:
        CE(model(x), y).backward()
    kept = cap.step_weight_grads()
    assert set(kept) == {model[0], model[2]}
    for layer, g in kept.items():
        assert g.data_ptr() == layer.weight.grad.data_ptr()  # the same tensor: no copy
    model[0].weight.grad.mul_(0.5)
    assert set(cap.step_weight_grads()) == {model[2]}


class TripleInPlace(nn.Module):
    def forward(self, x):
        return x.mul_(3)  # autograd keeps no reference to x: nothing but a capture keeps it alive


def test_capture_without_outputs_lets_them_go_and_keeps_each_layers_own_gradient():
    """Capture(outputs=False), the training step's capture: an output that nothing else needs
    is freed during the forward as without the hooks, and its tensor hook still gives the
    gradient of the layer's own output, also where the output was then changed in place."""
    import gc
    import weakref

    from sgdlab.gradients import records_gram
    from sgdlab.gradients.ghost import Capture

    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 5), TripleInPlace(), nn.ReLU(), nn.Linear(5, 3))
    x, y = batch((6,), n=8)
    first: list[weakref.ref] = []
    model[0].register_forward_hook(lambda m, i, out: first.append(weakref.ref(out)))
    layers = {"0": model[0], "3": model[3]}
    with Capture(layers, grad_hooks=True, outputs=False) as cap:
        loss = CE(model(x), y)
        gc.collect()
        assert first[0]() is None and all(r.output is None for r in cap.records)
        loss.backward()
    gram = records_gram(cap.records, None, 8.0, 1 << 20)
    cap.release()
    assert rel_error(gram, loop_gram(model, CE, x, y)) <= 1e-5
    with pytest.raises(ValueError, match="grad_hooks"):
        Capture(layers, outputs=False)


def test_record_moments_with_and_without_the_weight_gradient():
    """From the step's weight gradient (S = scale·.grad) or, without it, from the Gram block."""
    from sgdlab.gradients.ghost import Capture, record_gram
    from sgdlab.gradients.moments import record_moments

    torch.manual_seed(5)
    model = ntk(True)
    x, y = batch((6,), n=8)
    with Capture({"0": model[0], "2": model[2]}, grad_hooks=True) as cap:
        CE(model(x), y).backward()
    for r in cap.records:
        gram = record_gram(r, 8.0, 1 << 20)
        for weight_grad in (r.layer.weight.grad, None):
            sq, rows = record_moments(r, 8.0, 1 << 20, weight_grad)
            torch.testing.assert_close(sq, gram.diagonal())
            torch.testing.assert_close(rows, gram.sum(dim=1))
    cap.release()


def test_moment_stats_are_gram_stats_without_the_pair_statistics():
    from sgdlab.gradients import moment_stats

    _, gram = explicit()
    full = gram_stats(gram, (0.25, 0.5))
    some = moment_stats(gram.diagonal(), gram.sum(dim=1), (0.25, 0.5))
    assert set(some) == {k for k in full if not k.startswith(PAIR_ONLY)}
    for key, value in some.items():
        assert value == pytest.approx(full[key], rel=1e-12), key
    assert moment_stats(torch.tensor([4.0]), torch.tensor([4.0])) == {
        k: v for k, v in gram_stats(torch.tensor([[4.0]])).items()
    }


@pytest.mark.parametrize("model", [tiny_cnn, tiny_mixed, tiny_inplace], ids=["cnn", "mixed", "inplace"])
def test_probe_without_pairs_reports_the_gram_statistics_it_keeps(model):
    """pairs = false on the step (from `.grad`), in a separate pass and with the Gram matrix:
    the same values for every column it keeps, and no pair statistics."""
    runs = {}
    for key, options in {
        "gram": {},
        "step": {"pairs": False},
        "separate": {"pairs": False, "reuse_step": False},
    }.items():
        runs[key] = columns(sgdlab.run(probe_cfg(**options), model=model()).metrics)
    gram, step, separate = runs["gram"], runs["step"], runs["separate"]
    assert step.keys() == separate.keys() == {k for k in gram if not k.startswith(PAIR_ONLY)}
    scale = float(gram["grad_norm_max"].max()) ** 2
    for key in step:
        tol = scale if key.startswith(("grad_inner", "grad_variance")) else 1.0
        np.testing.assert_allclose(step[key], gram[key], rtol=1e-5, atol=1e-6 * tol, err_msg=key)
        np.testing.assert_allclose(separate[key], gram[key], rtol=1e-5, atol=1e-6 * tol, err_msg=key)


def test_trajectory_is_bit_identical_with_the_probe_on_without_pairs():
    def cfg(use):
        raw = tiny(probes={"use": use}, train={"epochs": None, "max_steps": 6})
        if "gradients" in use:
            raw["probes"]["gradients"] = {"schedule": "step", "pairs": False}
        return raw

    off = sgdlab.run(cfg(["batch_loss"]))
    on = sgdlab.run(cfg(["batch_loss", "gradients"]))
    for p, q in zip(off.parts.model.parameters(), on.parts.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert "grad_norm_test" in on.metrics.column_names and "grad_mu" not in on.metrics.column_names
