"""The Lightning and Hugging Face callbacks with the real libraries (the extras `sgdlab[lightning]`
and `sgdlab[transformers]`, installed by `make test`): a few steps of a tiny randomly initialised
model, nothing downloaded, the gradients and hessian probes on, and a run directory that
`sgdlab report` renders."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sgdlab
from sgdlab.report.html import write_report

PROBES = ["batch_loss", "update_norm", "norms", "gradients", "hessian"]
EACH_STEP = {
    "update_norm": {"schedule": "step"},
    "norms": {"schedule": "step"},
    "gradients": {"schedule": "step", "full_grad": False},
    "hessian": {"schedule": "every:2", "subset": 16, "trace_probes": 2, "max_iter": 5},
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def check_run(path, steps: int, batch: int) -> None:
    run = sgdlab.load_run(path)
    assert run.status == "completed" and run.summary["steps"] == steps
    rows = run.metrics.to_pylist()
    assert [r["step"] for r in rows] == list(range(steps + 1))
    for r in rows[:-1]:
        assert r["grad_n"] == batch and math.isfinite(r["grad_mu"]) and r["update_norm"] > 0
        assert r["lr"] > 0 and math.isfinite(r["batch_loss"])
    assert math.isfinite(rows[0]["hessian_lambda_max"]) and math.isfinite(rows[-1]["hessian_lambda_max"])
    assert write_report(path).is_file()


def test_a_lightning_trainer_writes_a_run_that_sgdlab_reports(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from sgdlab.integrations.lightning import SgdlabCallback

    class Classifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=g)
    y = x[:, :3].argmax(dim=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    callback = SgdlabCallback(
        tmp_path / "lightning",
        probes=PROBES,
        loss_fn=lambda out, t: nn.functional.cross_entropy(out, t, reduction="none"),
        eval_data=(x, y),
        config={"probes": EACH_STEP},
    )
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=4,
        callbacks=[callback],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Classifier(), loader)
    check_run(tmp_path / "lightning", steps=4, batch=8)
    assert sgdlab.load_run(tmp_path / "lightning").summary["steps_per_epoch"] == 4


def tiny_bert(transformers):
    """A randomly initialised 1-layer BERT classifier (nothing downloaded) and 32 short sequences."""
    config = transformers.BertConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=8,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 20, (32, 5), generator=g)
    return model, ids, (ids[:, 0] > 10).long()


def test_a_hugging_face_trainer_writes_a_run_that_sgdlab_reports(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # the Trainer needs it (transformers[torch], in sgdlab[transformers])
    from sgdlab.integrations.transformers import SgdlabCallback

    model, ids, labels = tiny_bert(transformers)
    train = [{"input_ids": i, "labels": label} for i, label in zip(ids, labels, strict=True)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf-out"),
        per_device_train_batch_size=8,
        max_steps=4,
        learning_rate=0.05,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    callback = SgdlabCallback(
        tmp_path / "hf", probes=PROBES, eval_data=(ids, labels), config={"probes": EACH_STEP}
    )
    transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
    check_run(tmp_path / "hf", steps=4, batch=8)
    run = sgdlab.load_run(tmp_path / "hf")
    assert run.config.model.name == "BertForSequenceClassification"
    # the lr of each step is the scheduler's (linear decay), as the optimizer used it
    lrs = run.series("lr")[1]
    assert lrs[0] == pytest.approx(0.05) and all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_the_hugging_face_callback_in_the_trainers_order_of_calls(tmp_path):
    """The callback driven as transformers' Trainer drives it (trainer.py: on_train_begin, then per
    update on_step_begin, forward/backward, on_pre_optimizer_step, optimizer.step,
    on_optimizer_step, scheduler, zero_grad, on_step_end; on_train_end) with the real BERT model,
    state and control objects: what runs where `accelerate`, which the Trainer needs, is missing."""
    transformers = pytest.importorskip("transformers")
    from types import SimpleNamespace

    from sgdlab.integrations.transformers import SgdlabCallback

    model, ids, labels = tiny_bert(transformers)
    callback = SgdlabCallback(
        tmp_path / "hf", probes=PROBES, eval_data=(ids, labels), config={"probes": EACH_STEP}
    )
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / 4)
    args, state, control = (
        SimpleNamespace(gradient_accumulation_steps=1),
        transformers.TrainerState(),
        transformers.TrainerControl(),
    )
    loader = [(ids[i : i + 8], labels[i : i + 8]) for i in range(0, 32, 8)]
    callback.on_train_begin(args, state, control, model=model, optimizer=opt, train_dataloader=loader)
    for x, y in loader:
        callback.on_step_begin(args, state, control)
        model.train()
        model(input_ids=x, labels=y).loss.backward()
        callback.on_pre_optimizer_step(args, state, control)
        opt.step()
        callback.on_optimizer_step(args, state, control)
        sched.step()
        model.zero_grad()
        callback.on_step_end(args, state, control)
    callback.on_train_end(args, state, control)
    check_run(tmp_path / "hf", steps=4, batch=8)
    run = sgdlab.load_run(tmp_path / "hf")
    assert run.config.model.name == "BertForSequenceClassification" and run.summary["steps_per_epoch"] == 4
    assert run.series("lr")[1].tolist() == pytest.approx([0.05, 0.0375, 0.025, 0.0125])
