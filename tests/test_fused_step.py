"""sgdlab.gradients.fused: the step's convolution weight gradients summed from the per-sample
ones. Against autograd (the gradients) and a Python loop of single-sample backward passes (the
moments), on every route the backward takes; the layers' own forward back after the context;
the `gradients` probe's `fused` option against the unfused probe, its determinism and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sgdlab
from conftest import tiny
from sgdlab.errors import UserError
from sgdlab.gradients import Workspace, conv
from sgdlab.gradients.fused import fusable, fused_convs
from sgdlab.store import RunDir
from test_gradients import columns, probe_cfg, tiny_cnn


class Convs(nn.Module):
    """Each route of the fused backward: per-sample products with and without a bias, with
    stride, padding and dilation (c1, c2), a Conv1d (c3), and a convolution with so few output
    positions that the identity's norms and PyTorch's backward are cheaper (c4)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 6, 3, stride=2, padding=1, dilation=2, bias=False)
        self.c3 = nn.Conv1d(6, 5, 2, dilation=2)
        self.c4 = nn.Conv2d(6, 40, 2)
        self.fc = nn.Linear(5 * 3 + 40, 3)

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))  # [N, 6, 5, 5]
        h3 = self.c3(h.mean(dim=2))  # [N, 5, 3]
        h4 = self.c4(F.max_pool2d(h, 2))  # [N, 40, 1, 1]
        return self.fc(torch.cat([h3.flatten(1), h4.flatten(1)], dim=1))


def loop_moments(model, x, y, prefix):
    """(‖g_i‖², ⟨g_i, Σ_j g_j⟩) of one layer's parameters by one backward per sample."""
    params = [p for name, p in model.named_parameters() if name.startswith(prefix + ".")]
    rows = []
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    j = torch.stack(rows)
    return (j * j).sum(dim=1), j @ j.sum(dim=0)


def autograd_grads(model, x, y) -> dict[str, torch.Tensor]:
    """Each parameter's gradient of the mean cross-entropy by plain autograd (.grad left None)."""
    F.cross_entropy(model(x), y).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


def fused_step(model, x, y, budget=1 << 30):
    layers = fusable(dict(model.named_children()))
    with fused_convs(layers, budget, Workspace(), Workspace()) as sinks:
        F.cross_entropy(model(x), y).backward()
    return sinks


@pytest.mark.parametrize("chunk", [None, 1, 3], ids=["chunked-by-cache", "one-sample", "uneven"])
def test_fused_backward_gives_autograds_gradients_and_the_loops_moments(chunk, monkeypatch):
    if chunk is not None:
        monkeypatch.setattr(conv, "sample_chunk", lambda per_sample_bytes: chunk)
    torch.manual_seed(0)
    model = Convs().double()
    x, y = torch.randn(7, 3, 12, 12, dtype=torch.float64), torch.randint(0, 3, (7,))
    expected = autograd_grads(model, x, y)
    sinks = fused_step(model, x, y)
    assert set(sinks) == {"c1", "c2", "c3", "c4"}
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-12, atol=1e-15, msg=name)
    # c4 and the Linear went through PyTorch's own kernels: bit for bit
    for name in ("c4.weight", "c4.bias", "fc.weight"):
        assert torch.equal(model.get_parameter(name).grad, expected[name]), name
    n = len(x)
    for name, sink in sinks.items():
        assert sink.calls == 1 and sink.sq is not None and sink.rows is not None
        sq, rows = loop_moments(model, x, y, name)
        # the sinks are in the units of ∂(mean loss)/∂output: δ_i / N
        torch.testing.assert_close(sink.sq * n * n, sq, rtol=1e-10, atol=1e-14, msg=name)
        torch.testing.assert_close(sink.rows * n * n, rows, rtol=1e-10, atol=1e-14, msg=name)


def test_over_the_budget_a_layer_keeps_pytorchs_backward_bit_for_bit():
    torch.manual_seed(1)
    model = Convs().double()
    x, y = torch.randn(5, 3, 12, 12, dtype=torch.float64), torch.randint(0, 3, (5,))
    expected = autograd_grads(model, x, y)
    sinks = fused_step(model, x, y, budget=1)  # no layer's products fit
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, expected[name]), name
    sq, rows = loop_moments(model, x, y, "c1")
    torch.testing.assert_close(sinks["c1"].sq * 25, sq, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(sinks["c1"].rows * 25, rows, rtol=1e-10, atol=1e-14)


def test_the_layers_own_forward_comes_back_and_no_grad_calls_are_plain():
    torch.manual_seed(2)
    model = Convs()
    x = torch.randn(2, 3, 12, 12)
    expected = model(x)
    layers = fusable(dict(model.named_children()))
    with pytest.raises(RuntimeError, match="inside"):
        with fused_convs(layers, 1 << 30, Workspace(), Workspace()) as sinks:
            assert all("forward" in m.__dict__ for m in layers.values())
            assert torch.equal(model(x), expected)  # the same forward, bit for bit
            with torch.no_grad():
                model(x)
            raise RuntimeError("an error inside the step")
    assert all("forward" not in m.__dict__ for m in layers.values())
    assert all(s.calls == 2 and s.sq is None for s in sinks.values())  # no backward ran
    frozen = nn.Conv2d(2, 2, 3)
    frozen.bias.requires_grad_(False)
    assert fusable({"c1": model.c1, "frozen": frozen, "fc": model.fc}) == {"c1": model.c1}


def fused_cfg(fused, steps=6, **options):
    return probe_cfg(schedule="step", steps=steps, pairs=False, fused=fused, **options)


def test_probe_fused_reports_what_the_unfused_probe_reports_and_is_deterministic():
    plain = sgdlab.run(fused_cfg(False), model=tiny_cnn())
    fused = sgdlab.run(fused_cfg(True), model=tiny_cnn())
    again = sgdlab.run(fused_cfg(True), model=tiny_cnn())
    a, b = columns(plain.metrics), columns(fused.metrics)
    assert a.keys() == b.keys() and "grad_norm_test" in a and len(a["grad_norm_test"]) == 6
    scale = float(a["grad_norm_max"].max()) ** 2
    for key in a:
        tol = scale if key.startswith(("grad_inner", "grad_variance")) else 1.0
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6 * tol, err_msg=key)
    losses = [columns(r.metrics, "batch")["batch_loss"] for r in (plain, fused, again)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert losses[1].tolist() == losses[2].tolist()  # a fused run is deterministic
    for p, q, r in zip(
        plain.parts.model.parameters(),
        fused.parts.model.parameters(),
        again.parts.model.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
        assert torch.equal(q, r)
    assert all("forward" not in m.__dict__ for m in fused.parts.model.modules())


def test_a_fused_run_resumes_bit_identically(tmp_path):
    """The fused step depends on θ and the batch alone (its scratch memory is overwritten):
    killed after a checkpoint and resumed, it ends where the uninterrupted run ends."""
    options = {"schedule": "step", "pairs": False, "fused": True}
    cfg = tiny(
        data={"resize": 20},  # LeNet's convolutions need more than digits' 8×8
        model={"name": "lenet", "width": 4, "widths": None},
        probes={"use": ["batch_loss", "gradients"], "gradients": options},
        train={"epochs": None, "max_steps": 8},
        checkpoint={"every_steps": 4},
    )
    ref = sgdlab.run(cfg, tmp_path / "ref")
    out = tmp_path / "cut"
    sgdlab.run(cfg, out)
    run_dir = RunDir(out)
    (out / "checkpoints/final.pt").unlink()
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    resumed = sgdlab.resume(out)
    assert "grad_norm_test" in ref.metrics.column_names
    assert resumed.metrics.equals(ref.metrics)
    for p, q in zip(ref.parts.model.parameters(), resumed.parts.model.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "options", [{"pairs": True}, {"batch": "eval", "pairs": False}], ids=["pairs", "eval-batch"]
)
def test_fused_needs_the_training_step_and_no_pairs(options):
    raw = probe_cfg(schedule="step", fused=True, **options)
    with pytest.raises(UserError, match='fused: .* needs batch = "train" and pairs = false'):
        sgdlab.prepare(raw)


def test_fused_in_the_users_own_loop_with_a_sum_loss():
    """sgdlab.attach: the user's loop backpropagates a sum loss and zeroes .grad before the
    probe measures; the fused moments come from the backward itself and equal the unfused
    probe's, and the user's step gets the same gradients to rounding."""
    from attach_loops import per_sample_ce, toy_data

    data = toy_data()
    x, y = data.train.x[:8], data.train.y[:8]
    rows, grads = {}, {}
    for fused in (False, True):
        torch.manual_seed(0)
        m = nn.Sequential(
            nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(16, 3)
        )
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        options = {"schedule": "step", "full_grad": False, "pairs": False, "fused": fused}
        lab = sgdlab.attach(
            m, opt, probes=["gradients"], loss_fn=per_sample_ce, config={"probes": {"gradients": options}}
        )
        with lab.step(x, y):
            nn.functional.cross_entropy(m(x), y, reduction="sum").backward()
            grads[fused] = [p.grad.clone() for p in m.parameters()]
            opt.step()
            opt.zero_grad(set_to_none=False)
        lab.close()
        rows[fused] = lab.metrics.to_pylist()[0]
    for g, h in zip(grads[False], grads[True], strict=True):
        torch.testing.assert_close(h, g, rtol=1e-5, atol=1e-7)
    kept = {k for k, v in rows[False].items() if k.startswith("grad_") and v is not None}
    assert "grad_norm_test" in kept
    for key in kept:
        assert rows[True][key] == pytest.approx(rows[False][key], rel=1e-5, abs=1e-9), key
