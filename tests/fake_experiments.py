"""Tiny experiments registered for the length of a test: they train two tiny runs, draw one
figure and make two claims, so the report and the tour can be tested in seconds."""

from __future__ import annotations

from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tests.conftest import tiny  # noqa: E402

from sgdlab.experiments import experiments  # noqa: E402
from sgdlab.experiments.base import Lab, decide, not_applicable  # noqa: E402
from sgdlab.papers import Paper  # noqa: E402
from sgdlab.report.figures import save_figure  # noqa: E402

PAPER = Paper("Doe & Roe", 2020, "Tiny networks <b>train</b>", "Workshop")


def tiny_experiment(lab: Lab):
    epochs = 2 if lab.scale == "smoke" else 3
    runs = lab.run_many(
        {"a": tiny(train={"epochs": epochs}), "b": tiny(seed=1, train={"epochs": epochs})}, workers=1
    )
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, run in runs.items():
        ax.plot(*run.epochs("train_loss"), label=name)
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax.legend()
    save_figure(fig, lab.figure("loss"))
    final = runs["a"].final["train_loss"]
    start = float(runs["a"].epochs("train_loss")[1][0])
    return [
        decide(
            "loss-falls",
            "the training loss falls below its value at θ_0",
            final < start,
            headline=f"loss {start:.3g} → {final:.3g}",
            meaning="SGD made progress on the tiny MLP",
            start=start,
            final=final,
            epochs=epochs,
        ),
        not_applicable("needs-gpu", "a claim only the full scale can decide", "not at this scale"),
    ]


def broken_experiment(lab: Lab):
    raise RuntimeError("this stage breaks on purpose")


@contextmanager
def registered(name: str, fn=tiny_experiment, paper: Paper = PAPER, help: str = "tiny MLPs train", **extra):
    experiments.register(name, help=help, paper=paper, plan=lambda scale: None, **extra)(fn)
    try:
        yield name
    finally:
        del experiments._entries[name]
