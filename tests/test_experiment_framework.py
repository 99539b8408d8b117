"""What every reproduction shares: papers cited by name, `--only`, `--plan`, premises, and the
one-line claims table."""

from __future__ import annotations

import json
import re

import pytest

from sgdlab.experiments import experiments
from sgdlab.experiments.base import Claim, Lab, decide, selected
from sgdlab.experiments.planning import plan, wall_estimate
from sgdlab.experiments.premise import Premise, premise_claim
from sgdlab.papers import Paper
from sgdlab.store import Run

SEED_NUMBER = re.compile(r"seed 0\d\d")


def test_every_experiment_cites_its_paper_and_has_a_plan(cli):
    for entry in experiments:
        paper = entry.extra["paper"]
        assert isinstance(paper, Paper) and paper.title and paper.authors
        assert callable(entry.extra["plan"])
    result = cli("list", "experiments")
    assert result.exit_code == 0
    assert not SEED_NUMBER.search(result.stdout)
    assert "Nacson" in result.stdout and "optimization principle" in result.stdout


def test_paper_citation_text():
    p = Paper("Doe & Roe", 2020, "A title", "Venue")
    assert str(p) == "Doe & Roe (2020), “A title”, Venue" and p.short == "Doe & Roe 2020"
    assert Paper("Doe", None, "Notes").short == "Doe n.d."


@pytest.mark.parametrize(
    "pattern,name,expected",
    [
        (None, "anything", True),
        ("batch-norm", "batch-norm-none", True),
        ("batch-norm", "skips-all", False),
        ("*-sgd", "optimizer-sgd", True),
        ("*-sgd", "optimizer-adam", False),
        ("optimizer-[sm]*", "optimizer-momentum", True),
    ],
)
def test_only_patterns(pattern, name, expected):
    assert selected(name, pattern) is expected


def test_run_many_leaves_out_what_only_does_not_select(tmp_path):
    from tests.conftest import tiny

    lab = Lab(tmp_path, "smoke", "cpu", only="keep-*")
    runs = lab.run_many({"keep-a": tiny(), "drop-b": tiny(seed=1)}, workers=1)
    assert list(runs) == ["keep-a"]
    assert not (tmp_path / "runs" / "drop-b").exists()


class FakeRun:
    def __init__(self, status, loss, error):
        self.status = status
        self.final = {"train_loss": loss, "train_error": error}
        self.summary = {"epochs": 3.0, "stop_reason": "stop_loss"}


def test_premise_names_runs_that_miss_it_and_respects_the_papers_exception():
    premise = Premise(max_loss=0.01)
    runs = {
        "a": FakeRun("completed", 0.005, 0.0),
        "b": FakeRun("completed", 0.5, 0.2),
        "c": FakeRun("completed", 0.009, 0.0),
    }
    claim, meets = premise_claim("x/premise", "x", premise, runs)
    assert claim.verdict == "fails" and meets == ["a", "c"]
    assert claim.evidence["missed"] == ["b"]
    assert "training loss 0.5 > 0.01" in claim.evidence["runs"]["b"]["why_not"]
    claim, meets = premise_claim("x/premise", "x", premise, runs, exceptions={"b": "the paper says so"})
    assert claim.verdict == "holds" and meets == ["a", "c"]
    assert claim.evidence["runs"]["b"]["paper_exception"] == "the paper says so"
    # an error above 0 misses it even below the loss threshold; a diverged run misses it
    claim, meets = premise_claim(
        "x/premise",
        "x",
        premise,
        {"e": FakeRun("completed", 0.001, 0.01), "d": FakeRun("diverged", 0.001, 0.0)},
    )
    assert claim.verdict == "fails" and meets == []
    assert premise_claim("x/premise", "x", premise, {})[0].verdict == "not-applicable"


def test_premise_reads_a_real_run(tmp_path):
    from tests.conftest import tiny

    from sgdlab.experiments.base import Lab

    run: Run = Lab(tmp_path, "smoke", "cpu").run("r", tiny(train={"epochs": 30, "stop_loss": 0.05}))
    check = Premise(max_loss=0.05).check(run)
    assert check["meets"] == (run.final["train_loss"] <= 0.05 and run.final["train_error"] == 0)
    assert check["final_train_loss"] == run.final["train_loss"]


@pytest.mark.parametrize("name", ["exact-convergence", "gamma-principle"])
@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_plan_lists_the_runs_the_experiment_trains(name, scale, monkeypatch, tmp_path):
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))  # no CIFAR-100 here
    planned = experiments.get(name).extra["plan"](scale)
    assert planned.runs and all(isinstance(cfg, dict) for cfg in planned.runs.values())


def test_plan_of_the_smoke_scale_is_timed_and_only_filters():
    p, rows, sims = plan("gamma-principle", "smoke", "cpu")
    assert [r.name for r in rows] == list(p.runs)
    timed = [r for r in rows if r.same_as is None]
    assert all(r.seconds > 0 and r.n_params > 0 and r.steps > 0 for r in timed)
    twins = [r for r in rows if r.same_as is not None]
    assert any(r.name == "skips-all" and r.same_as == "batch-norm-all" for r in twins)
    _, only, _ = plan("gamma-principle", "smoke", "cpu", only="optimizer")
    assert [r.name for r in only] == ["optimizer-sgd", "optimizer-momentum", "optimizer-adam"]
    _, rows, sims = plan("exact-convergence", "smoke", "cpu")
    assert [r.name for r in rows] == ["cnn-base", "cnn-resnet"] and sims["linear"] > 0


def test_wall_estimate_packs_longest_first():
    assert wall_estimate([4, 3, 3, 2], workers=2) == 6
    assert wall_estimate([5], workers=2) == 5 and wall_estimate([], workers=2) == 0


def test_reproduce_plan_prints_and_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("reproduce", "gamma-principle", "--scale", "smoke", "--plan", "--only", "activation")
    assert result.exit_code == 0, result.output
    assert "activation-relu" in result.stdout and "optimizer-adam" not in result.stdout
    assert "total:" in result.stdout
    assert not any(tmp_path.iterdir())
    bad = cli("reproduce", "gamma-principle", "--scale", "smoke", "--plan", "--only", "nothing-*")
    assert bad.exit_code == 2 and "selects none" in bad.stderr
    assert cli("reproduce", "gamma-principle", "--scale", "huge", "--plan").exit_code == 2


def test_claims_print_one_line_each(capsys):
    from sgdlab.cli import print_claims

    claims = [
        decide("a/one", "a long statement " * 20, True, headline="τ = 1", big=list(range(50))),
        decide("b/two", "another", None, reason="no runs"),
    ]
    print_claims(claims, tmp := __import__("pathlib").Path("out"))
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert "holds" in lines[0] and "a/one" in lines[0] and "τ = 1" in lines[0]
    assert "not-applicable" in lines[1] and "reason=no runs" in lines[1]
    assert "2 claims: 1 holds, 1 not-applicable" in out.err and str(tmp) in out.err


def test_reproduce_fills_in_the_papers_citation(tmp_path):
    """On the fake experiment of tests/fake_experiments.py (two tiny runs, a second each)."""
    from fake_experiments import PAPER, registered
    from sgdlab.experiments import reproduce

    with registered("cite-fake"):
        claims = reproduce("cite-fake", tmp_path, "smoke", "cpu", only="a")
    assert claims and all(c.source == str(PAPER) for c in claims)
    assert (tmp_path / "runs" / "a").is_dir() and not (tmp_path / "runs" / "b").exists()
    stored = json.loads((tmp_path / "claims.json").read_text())
    assert stored[0]["source"] == claims[0].source
    experiment = json.loads((tmp_path / "experiment.json").read_text())
    assert experiment["only"] == "a" and experiment["paper"] == str(PAPER)
    assert isinstance(claims[0], Claim)


@pytest.mark.parametrize(
    "name,only", [("exact-convergence", "cnn-base"), ("gamma-principle", "activation-relu")]
)
def test_timed_plan_at_cpu_scale(name, only):
    _, rows, sims = plan(name, "cpu", "cpu", only=only)
    assert [r.name for r in rows] == [only] and not sims
    assert rows[0].seconds > 0 and rows[0].steps > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,only", [("exact-convergence", "cnn-base"), ("gamma-principle", "optimizer-adam")]
)
def test_timed_plan_at_full_scale(name, only):
    _, rows, _ = plan(name, "full", "cpu", only=only)
    assert [r.name for r in rows] == [only] and rows[0].n_train == 50_000 and rows[0].seconds > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,only", [("exact-convergence", "cnn-base"), ("gamma-principle", "optimizer-adam")]
)
def test_only_at_cpu_scale(name, only, tmp_path):
    from sgdlab.experiments import reproduce

    claims = reproduce(name, tmp_path, "cpu", "cpu", only=only)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [only]
    assert claims and all(c.verdict in ("holds", "fails", "not-applicable") for c in claims)
