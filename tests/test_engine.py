"""The training loop: determinism, samplers, stop rules, divergence, and probes that measure
without disturbing the trajectory."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.compute as pc
import pytest
import torch

import sgdlab
from conftest import tiny
from sgdlab.engine import Sampler
from sgdlab.params import flat_params


def column(result, name):
    table = result.metrics
    rows = table.filter(pc.is_valid(table[name]))
    return rows["step"].to_numpy(), rows[name].to_numpy()


def test_same_config_and_seed_give_identical_metrics_and_parameters():
    cfg = tiny(model={"widths": [16], "dropout": 0.2}, train={"epochs": 3})
    a, b = sgdlab.run(cfg), sgdlab.run(cfg)
    assert a.metrics.equals(b.metrics)  # every value, to the last bit
    assert torch.equal(flat_params(a.parts.model), flat_params(b.parts.model))
    c = sgdlab.run(tiny(model={"widths": [16], "dropout": 0.2}, train={"epochs": 3}, seed=1))
    assert not c.metrics.equals(a.metrics)


@pytest.mark.parametrize("sampler", ["reshuffle", "iid", "cyclic"])
def test_every_sampler_is_deterministic_and_trains(sampler):
    cfg = tiny(train={"sampler": sampler, "epochs": 3})
    a, b = sgdlab.run(cfg), sgdlab.run(cfg)
    assert a.metrics.equals(b.metrics)
    assert a.summary["final"]["train_loss"] < column(a, "train_loss")[1][0]


def test_reshuffle_visits_every_point_once_per_epoch_in_a_new_order():
    s = Sampler("reshuffle", 10, 3, torch.Generator().manual_seed(0))
    assert s.steps_per_epoch == 4
    epochs = [torch.cat([s.indices(k) for k in range(e * 4, e * 4 + 4)]) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1])


def test_cyclic_order_is_fixed_and_iid_draws_with_replacement():
    s = Sampler("cyclic", 5, 2, torch.Generator().manual_seed(0))
    seq = [s.indices(k).tolist() for k in range(6)]
    assert seq == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4]]
    iid = Sampler("iid", 4, 64, torch.Generator().manual_seed(0))
    draws = iid.indices(0)
    assert draws.shape == (4,) and iid.steps_per_epoch == 1  # batch clipped to N
    big = Sampler("iid", 4, 3, torch.Generator().manual_seed(0))
    values = torch.cat([big.indices(k) for k in range(200)])
    assert len(values.unique()) == 4 and any(len(big.indices(k).unique()) < 3 for k in range(50))
    assert Sampler("full", 7, 2, torch.Generator()).indices(3) == slice(None)
    assert Sampler("reshuffle", 10, 3, torch.Generator(), drop_last=True).steps_per_epoch == 3


def test_sampler_state_continues_the_same_sequence():
    a = Sampler("reshuffle", 10, 3, torch.Generator().manual_seed(5))
    for k in range(6):
        a.indices(k)
    state = a.state_dict()
    expected = [a.indices(k).tolist() for k in range(6, 14)]
    b = Sampler("reshuffle", 10, 3, torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    assert [b.indices(k).tolist() for k in range(6, 14)] == expected


def test_stop_by_epochs_max_steps_and_loss_threshold():
    by_epochs = sgdlab.run(tiny(train={"epochs": 2, "batch_size": 16}))
    assert by_epochs.summary["steps"] == 16 and by_epochs.summary["stop_reason"] == "epochs"
    by_steps = sgdlab.run(tiny(train={"epochs": 50, "max_steps": 5}))
    assert by_steps.summary["steps"] == 5 and by_steps.summary["stop_reason"] == "max_steps"
    assert column(by_steps, "train_loss")[0].tolist() == [0, 5]  # epoch start + final state
    threshold = 0.5
    by_loss = sgdlab.run(tiny(train={"epochs": 100, "stop_loss": threshold}))
    assert by_loss.summary["stop_reason"] == "stop_loss"
    steps, losses = column(by_loss, "train_loss")
    assert losses[-1] < threshold and np.all(losses[:-1] >= threshold)
    assert steps[-1] == by_loss.summary["steps"] and steps[-1] % 8 == 0


def test_gd_is_full_batch_and_one_step_per_epoch():
    result = sgdlab.run(tiny(optim={"name": "gd", "lr": 0.5}, train={"epochs": 4}))
    assert result.parts.config.train.sampler == "full"
    assert result.summary["steps"] == 4 and result.summary["steps_per_epoch"] == 1


def test_divergence_stops_cleanly_and_keeps_what_was_recorded():
    cfg = tiny(data={"targets": "onehot"}, train={"loss": "squared", "epochs": 50}, optim={"lr": 50.0})
    result = sgdlab.run(cfg)
    assert result.status == "diverged" and result.summary["stop_reason"] == "diverged"
    k = result.summary["diverged_at"]
    steps, batch = column(result, "batch_loss")
    assert steps[-1] == k and not math.isfinite(batch[-1]) and np.all(np.isfinite(batch[:-1]))
    assert result.summary["steps"] == k + 1 < 50 * 8


def test_probes_do_not_change_the_trajectory():
    """Eval mode, full gradients and norms must leave parameters, BN buffers and RNG alone."""
    model = {"widths": [16], "batch_norm": "all", "dropout": 0.3}
    bare = sgdlab.run(tiny(model=model, probes={"use": ["batch_loss"]}))
    probed = sgdlab.run(
        tiny(
            model=model,
            probes={
                "use": ["eval", "batch_loss", "norms", "update_norm", "grad_norm"],
                "norms": {"schedule": "step"},
                "grad_norm": {"schedule": "every:3"},
                "update_norm": {"schedule": "step"},
            },
        )
    )
    assert np.array_equal(column(bare, "batch_loss")[1], column(probed, "batch_loss")[1])
    assert torch.equal(flat_params(bare.parts.model), flat_params(probed.parts.model))


def test_row_k_holds_state_of_theta_k_and_iteration_k():
    result = sgdlab.run(tiny(probes={"use": ["eval", "batch_loss", "norms"]}, train={"epochs": 1}))
    table = result.metrics.to_pylist()
    first, last = table[0], table[-1]
    assert first["step"] == 0 and first["dist_init"] == 0.0 and first["batch_loss"] is not None
    assert last["step"] == 8 and last["batch_loss"] is None and last["train_loss"] is not None
    assert result.summary["final"]["train_loss"] == last["train_loss"]


def test_eval_and_gradient_probes_match_direct_computation():
    result = sgdlab.run(tiny(probes={"use": ["eval", "grad_norm", "norms"]}, train={"epochs": 1}))
    model, data = result.parts.model, result.parts.data
    model.eval()
    x, y = data.train.x, data.train.y
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    last = result.metrics.to_pylist()[-1]
    assert last["train_loss"] == pytest.approx(float(loss.detach()), rel=1e-6)
    assert last["train_error"] == pytest.approx(float((model(x).argmax(1) != y).float().mean()))
    assert last["full_grad_norm"] == pytest.approx(
        float(torch.cat([g.flatten() for g in grads]).norm()), rel=1e-5
    )
    assert last["param_norm"] == pytest.approx(float(flat_params(model).norm()), rel=1e-6)


def test_update_of_gd_is_the_full_gradient():
    """U_k = (θ_k − θ_{k+1})/η is read from parameters; for GD it must equal ∇L(θ_k), which the
    grad_norm probe computes by a different path (chunked autograd at θ_k)."""
    result = sgdlab.run(
        tiny(
            optim={"name": "gd", "lr": 0.3},
            train={"epochs": 5, "eval_batch_size": 50},
            probes={
                "use": ["update_norm", "grad_norm"],
                "update_norm": {"schedule": "step"},
                "grad_norm": {"schedule": "step"},
            },
        )
    )
    rows = [r for r in result.metrics.to_pylist() if r["update_norm"] is not None]
    assert len(rows) == 5
    for r in rows:
        assert r["update_norm"] == pytest.approx(r["full_grad_norm"], rel=1e-4)


def test_custom_model_and_data_through_the_library_api():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    data = sgdlab.Dataset.from_tensors(x[:48], y[:48], x[48:], y[48:])
    model = torch.nn.Sequential(torch.nn.Linear(5, 2))
    result = sgdlab.run(
        {"train": {"epochs": 20, "batch_size": 8}, "optim": {"lr": 0.5}}, model=model, data=data
    )
    assert result.parts.model is model and result.summary["final"]["train_error"] < 0.1
