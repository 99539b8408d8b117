"""sgdlab.attach: the engine's probes on a loop of one's own. The same model, data, seed and
batches give the engine's metrics table; a probe never changes the trajectory; the run directory
survives SIGKILL and resumes without duplicated rows; under torch.distributed rank 0 alone
writes; what cannot work is one clear error at attach time."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from torch import nn

import sgdlab
from attach_loops import (
    PROBE_OPTIONS,
    ddp_worker,
    engine_config,
    per_sample_ce,
    plain_loop,
    restartable,
    toy_data,
)
from sgdlab import runner
from sgdlab.errors import UserError
from sgdlab.probes import probes


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops: one torch thread, as every engine run (two spin-waiting threads cost far more on a
    shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


MEASURED = [n for n in probes.names() if n != "gamma"]  # gamma: test_replay_… below


@pytest.mark.parametrize("dropout", [0.0, 0.2], ids=["plain", "dropout"])
def test_the_metrics_of_a_plain_loop_with_attach_equal_the_engines(dropout, tmp_path):
    data = toy_data()
    cfg = engine_config(MEASURED, dropout=dropout)
    engine = sgdlab.run(cfg, data=data)
    lab, _, _ = plain_loop(
        cfg, data, attach={"out": tmp_path / "mine", "probes": MEASURED, "config": {"probes": PROBE_OPTIONS}}
    )
    assert set(MEASURED) <= {c.split("_")[0] for c in lab.metrics.column_names} | set(MEASURED)
    assert lab.metrics.column_names == engine.metrics.column_names
    assert lab.metrics.equals(engine.metrics)
    run = sgdlab.load_run(tmp_path / "mine")  # what show / report / export read
    assert run.metrics.equals(engine.metrics)
    assert run.status == "completed" and run.summary["source"] == "attach"
    assert run.final == engine.summary["final"]
    assert run.config.train.batch_size == 16 and run.config.optim.lr == 0.1


def test_a_probe_never_changes_the_trajectory():
    data = toy_data()
    cfg = engine_config(MEASURED, dropout=0.2)  # dropout: the RNG stream matters too
    every_step = {name: dict(opts, schedule="step") for name, opts in PROBE_OPTIONS.items()}
    _, bare, bare_losses = plain_loop(cfg, data)
    _, watched, losses = plain_loop(cfg, data, attach={"probes": MEASURED, "config": {"probes": every_step}})
    assert losses == bare_losses
    for a, b in zip(bare.parameters(), watched.parameters(), strict=True):
        assert torch.equal(a, b)


def test_modules_kept_in_eval_mode_by_the_user_stay_there():
    data = toy_data()
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model[1].eval()  # frozen statistics: the probes' eval passes must not switch it back
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lab = sgdlab.attach(
        model,
        opt,
        probes=["hessian", "norms"],
        loss_fn=per_sample_ce,
        eval_data=data,
        config={
            "probes": {
                "hessian": {"schedule": "step", "subset": 16, "max_iter": 4},
                "norms": {"schedule": "step"},
            }
        },
    )
    with lab.step(data.train.x[:8], data.train.y[:8]):
        nn.functional.cross_entropy(model(data.train.x[:8]), data.train.y[:8]).backward()
        opt.step()
    lab.close()
    assert model.training and not model[1].training


def test_replay_measures_gamma_as_the_engine_does(tmp_path):
    data = toy_data()
    cfg = engine_config(["norms", "gamma"], norms={"schedule": "step"})
    engine = sgdlab.run(cfg, data=data)
    parts = sgdlab.prepare(cfg, data=data)  # θ_0 and batches: the config's, as a loop would fix them

    def train(attach):
        p = sgdlab.prepare(cfg, data=data)
        lab = attach(p.model, p.rule.base)
        for k in range(8):
            x, y = data.batch(data.train, p.sampler.indices(k))
            with lab.step(x, y):
                p.rule.base.zero_grad()
                p.loss(p.model(x), y).backward()
                p.rule.base.step()

    lab = sgdlab.replay(
        train,
        tmp_path / "mine",
        probes=["norms", "gamma"],
        loss_fn=parts.loss,
        eval_data=data,
        steps_per_epoch=3,
        config={"probes": {"norms": {"schedule": "step"}}},
    )
    mine = sgdlab.load_run(tmp_path / "mine")
    assert mine.status == "completed"
    assert mine.metrics.column_names == engine.metrics.column_names
    exact = [c for c in engine.metrics.column_names if not c.startswith("gamma")]
    assert mine.metrics.select(exact).equals(engine.metrics.select(exact))
    # ℓ(θ*; B_k) is one forward on B_k here, a gathered table of per-sample losses in the engine
    for column in [c for c in engine.metrics.column_names if c.startswith("gamma")]:
        np.testing.assert_allclose(
            mine.metrics[column].to_numpy(zero_copy_only=False),
            engine.metrics[column].to_numpy(zero_copy_only=False),
            rtol=1e-5,
            atol=1e-7,
        )
    summary = mine.summary["probes"]["gamma"]
    assert summary["replay_checked_steps"] == 8 and summary["replay_max_loss_diff"] == 0.0
    assert lab.path == tmp_path / "mine"


def test_replay_says_so_when_the_training_function_is_not_deterministic():
    data = toy_data()
    calls = []

    def train(attach):
        calls.append(1)
        torch.manual_seed(len(calls))  # a different θ_0 each pass
        model = nn.Linear(6, 3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        lab = attach(model, opt)
        for k in range(3):
            x, y = data.train.x[8 * k : 8 * k + 8], data.train.y[8 * k : 8 * k + 8]
            with lab.step(x, y):
                opt.zero_grad()
                per_sample_ce(model(x), y).mean().backward()
                opt.step()

    with pytest.raises(
        sgdlab.integrations.ReplayMismatch, match=r"step 0: minibatch loss .* not deterministic"
    ):
        sgdlab.replay(train, probes=["gamma"], loss_fn=per_sample_ce)


def test_a_reference_minimizer_gives_gamma_in_one_pass():
    data = toy_data()
    cfg = engine_config(["gamma"])
    engine = sgdlab.run(cfg, data=data)
    theta_star = engine.parts.model.state_dict()  # the end of the same path
    lab, _, _ = plain_loop(cfg, data, attach={"probes": ["gamma"], "reference": theta_star})
    np.testing.assert_allclose(
        lab.metrics["gamma_dist"].to_numpy(), engine.metrics["gamma_dist"].to_numpy(), rtol=1e-6
    )
    assert (
        lab.summary["probes"]["gamma"]["defined_steps"] == engine.summary["probes"]["gamma"]["defined_steps"]
    )


def test_a_sum_loss_gives_the_per_sample_gradients_of_the_mean_and_a_wrong_loss_is_refused():
    data = toy_data()
    rows = {}
    for reduction in ("mean", "sum", "smoothed"):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        opt = torch.optim.SGD(m.parameters(), lr=1e-9)
        lab = sgdlab.attach(
            m,
            opt,
            probes=["gradients"],
            loss_fn=per_sample_ce,
            config={"probes": {"gradients": {"schedule": "step", "full_grad": False}}},
        )
        x, y = data.train.x[:8], data.train.y[:8]
        try:
            with lab.step(x, y):
                out = m(x)
                if reduction == "smoothed":
                    loss = nn.functional.cross_entropy(out, y, label_smoothing=0.3)
                else:
                    loss = nn.functional.cross_entropy(out, y, reduction=reduction)
                loss.backward()
                opt.step()
        except UserError as exc:
            rows[reduction] = str(exc)
            continue
        lab.close()
        rows[reduction] = lab.metrics.to_pylist()[0]
    assert rows["sum"]["grad_norm_mean"] == pytest.approx(rows["mean"]["grad_norm_mean"], rel=1e-5)
    assert rows["sum"]["grad_mu"] == pytest.approx(rows["mean"]["grad_mu"], rel=1e-4)
    assert "not the batch mean of loss_fn" in rows["smoothed"]


def test_without_pairs_the_step_gradient_is_the_backwards_whatever_the_loop_does_to_grad():
    """pairs = false reads Σ_j g_j off the weight gradient the step's backward computes (kept by a
    hook) unless the loop has changed it in place since (here zero_grad keeping the tensor; then
    the layer's Gram block is used), and divides out a sum loss's multiple: the columns it keeps
    equal those of the Gram matrix."""
    data = toy_data()
    x, y = data.train.x[:8], data.train.y[:8]
    rows = {}
    for pairs in (True, False):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        options = {"schedule": "step", "full_grad": False, "pairs": pairs}
        lab = sgdlab.attach(
            m, opt, probes=["gradients"], loss_fn=per_sample_ce, config={"probes": {"gradients": options}}
        )
        with lab.step(x, y):
            nn.functional.cross_entropy(m(x), y, reduction="sum").backward()
            opt.step()
            opt.zero_grad(set_to_none=False)  # .grad is 0 when the probe measures
        lab.close()
        rows[pairs] = lab.metrics.to_pylist()[0]
    kept = {k for k, v in rows[False].items() if k.startswith("grad_") and v is not None}
    assert "grad_inner_product_test" in kept and "grad_mu" not in kept
    for key in kept:
        assert rows[False][key] == pytest.approx(rows[True][key], rel=1e-5, abs=1e-9), key


# --- errors at attach time -------------------------------------------------------------------


def test_batch_norm_in_training_mode_with_per_sample_gradients_names_the_layer_and_the_options():
    model = nn.Sequential(
        OrderedDict(fc=nn.Linear(6, 8), bn=nn.BatchNorm1d(8), act=nn.ReLU(), out=nn.Linear(8, 3))
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError) as err:
        sgdlab.attach(
            model, opt, probes=["gradients"], loss_fn=per_sample_ce, eval_data=toy_data(), steps_per_epoch=3
        )
    message = str(err.value)
    assert "batch norm in training mode (bn)" in message  # the layer, by its qualified name
    assert "reuse_step" in message and "'batch': 'eval'" in message
    lab = sgdlab.attach(
        model,
        opt,
        probes=["gradients"],
        loss_fn=per_sample_ce,
        eval_data=toy_data(),
        steps_per_epoch=3,
        config={"probes": {"gradients": {"reuse_step": False}}},
    )
    assert lab.probes[0].name == "gradients"


def test_a_loss_that_is_not_per_sample_is_refused():
    model, data = nn.Linear(6, 3), toy_data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError, match=r"loss_fn returned \(\) for a batch of 2 samples: .*per sample"):
        sgdlab.attach(
            model,
            opt,
            probes=["norms"],
            loss_fn=nn.functional.cross_entropy,
            eval_data=data,
            steps_per_epoch=3,
        )
    # without eval_data the first batch is where it is checked, before anything is measured
    lab = sgdlab.attach(model, opt, probes=["batch_loss"], loss_fn=nn.functional.cross_entropy)
    with pytest.raises(UserError, match="one loss per sample"):
        with lab.step(data.train.x[:4], data.train.y[:4]):
            pass
    assert lab.summary["status"] == "failed" and lab.metrics.num_rows == 0


def test_a_model_without_parameters_and_missing_inputs_are_refused():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(UserError, match="no trainable parameters"):
        sgdlab.attach(nn.ReLU(), opt)
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError, match=r"\['grad_norm'\] measure on fixed data: pass eval_data"):
        sgdlab.attach(model, opt, probes=["grad_norm"], loss_fn=per_sample_ce)
    with pytest.raises(UserError, match="steps_per_epoch=len"):
        sgdlab.attach(model, opt, probes=["norms"], loss_fn=per_sample_ce)
    with pytest.raises(UserError, match="need θ\\*.*reference=.*sgdlab.replay"):
        sgdlab.attach(model, opt, probes=["gamma"], loss_fn=per_sample_ce)
    with pytest.raises(UserError, match="probes.hessian.subset"):
        sgdlab.attach(
            model,
            opt,
            probes=["hessian"],
            loss_fn=per_sample_ce,
            eval_data=toy_data(),
            steps_per_epoch=3,
            config={"probes": {"hessian": {"subset": 0}}},
        )


# --- crash safety ------------------------------------------------------------------------------


def _killed_at_step_7(out):
    """The restartable loop in a fresh process that SIGKILLs itself at the 7th step."""
    env = dict(os.environ, SGDLAB_FAULT="step@7", PYTHONPATH=os.pathsep.join(sys.path))
    code = f"import pathlib, attach_loops; attach_loops.restartable(pathlib.Path({str(out)!r}), steps=10)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_leaves_every_flushed_row_and_resume_continues_without_duplicates(tmp_path):
    reference = restartable(tmp_path / "ref", steps=10)
    out = tmp_path / "mine"
    child = _killed_at_step_7(out)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    killed = sgdlab.load_run(out)
    assert killed.status == "interrupted"  # its lock is free: it was killed
    assert killed.metrics["step"].to_pylist() == [0, 1, 2, 3]  # the flush after step 3, not 4–6
    assert killed.metrics.equals(reference.metrics.filter(pc.less(reference.metrics["step"], 4)))
    with pytest.raises(UserError, match=r"sgdlab.attach\(\.\.\., resume=True\)"):
        runner.resume(out)  # `sgdlab resume` cannot rerun the user's loop: one line saying where
    resumed = restartable(out, steps=10, resume=True)
    run = sgdlab.load_run(out)
    assert run.status == "completed" and run.summary["resumes"] == 1
    steps = run.metrics["step"].to_pylist()
    assert steps == sorted(set(steps)) == list(range(11))
    assert run.metrics.equals(reference.metrics) and resumed.metrics.equals(reference.metrics)


# --- torch.distributed ---------------------------------------------------------------------------


def test_under_ddp_only_rank_0_writes_and_the_probes_measure_what_the_docs_say(tmp_path):
    ctx = multiprocessing.get_context("spawn")  # a forked torch may hang in its thread pool
    results = ctx.Queue()
    out = tmp_path / "ddp"
    rank1 = ctx.Process(target=ddp_worker, args=(1, tmp_path / "init", out, results))
    rank1.start()
    ddp_worker(0, tmp_path / "init", out, results)  # rank 0 here: one interpreter fewer to start
    rank1.join(120)
    assert rank1.exitcode == 0
    assert sorted(results.get(timeout=5) for _ in range(2)) == [(0, True, True), (1, False, False)]
    run = sgdlab.load_run(out)
    # The same steps in one process on the whole batch: DDP's all-reduced update is this one's.
    data = toy_data()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for k in range(3):
        x, y = data.train.x[16 * k : 16 * k + 16], data.train.y[16 * k : 16 * k + 16]
        row = run.metrics.filter(pc.equal(run.metrics["step"], k)).to_pylist()[0]
        local = per_sample_ce(net(x[:8]), y[:8]).mean()
        assert row["batch_loss"] == pytest.approx(local.item(), rel=1e-5)  # rank 0's local batch
        assert row["grad_n"] == 8  # per-sample gradients of the local batch
        local_grad = torch.autograd.grad(local, list(net.parameters()))
        assert row["grad_batch_norm"] == pytest.approx(
            float(torch.cat([g.reshape(-1) for g in local_grad]).norm()), rel=1e-4
        )
        opt.zero_grad()
        per_sample_ce(net(x), y).mean().backward()
        full = float(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).norm())
        assert row["update_norm"] == pytest.approx(full, rel=1e-4)  # the all-reduced update
        opt.step()
    assert math.isfinite(run.final["train_loss"])


def test_a_model_returning_a_dict_is_measured_through_outputs_and_the_lab_closes_as_a_context():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

        def forward(self, x):
            return {"logits": self.body(x), "features": x}

    data = toy_data()
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    options = {"schedule": "step", "full_grad": False}
    with sgdlab.attach(
        model,
        opt,
        probes=["batch_loss", "gradients", "hessian"],
        loss_fn=per_sample_ce,
        eval_data=data,
        outputs=lambda o: o["logits"],
        config={"probes": {"gradients": options, "hessian": {"schedule": "final", "subset": 16}}},
    ) as lab:
        for k in range(2):
            x, y = data.train.x[8 * k : 8 * k + 8], data.train.y[8 * k : 8 * k + 8]
            with lab.step(x, y):
                loss = per_sample_ce(model(x)["logits"], y).mean()
                loss.backward()
                opt.step()
                opt.zero_grad()
    rows = lab.metrics.to_pylist()
    assert lab.closed and lab.summary["status"] == "completed"
    assert rows[1]["batch_loss"] == pytest.approx(loss.item()) and rows[1]["grad_n"] == 8
    assert rows[-1]["hessian_lambda_max"] > 0
