"""`sgdlab demo`: the tour is derived from the experiments registry, runs each at its tour
scale with progress per stage, survives a stage that breaks, and ends in one report whose
first part says per finding what the paper claimed and what was measured.

The default suite tours fake experiments that take a second each (the mechanism); the real
tour of every registered reproduction is `test_the_real_tour` (marked slow; `make demo`)."""

from __future__ import annotations

import json

import pytest
from tests.browser import find_chromium, follow_links, inspect_page
from tests.fake_experiments import broken_experiment, registered

from sgdlab.experiments import experiments
from sgdlab.experiments.tour import run_tour, stages
from sgdlab.papers import Paper

OTHER = Paper("Roe", 2021, "Another finding")


def test_every_registered_experiment_joins_the_tour():
    assert [e.name for e in stages()] == experiments.names()
    with registered("zz-new-finding"):
        assert "zz-new-finding" in [e.name for e in stages()]
    assert "zz-new-finding" not in [e.name for e in stages()]


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    messages: list[str] = []
    with (
        registered("fake-a"),
        registered("fake-b", paper=OTHER, tour="cpu", help="a second finding"),
        registered("fake-c", fn=broken_experiment, help="a stage that breaks"),
    ):
        records = run_tour(out, device="cpu", only="fake-*", log=messages.append)
    return out, records, messages


def test_each_stage_is_a_reproduction_at_its_tour_scale(tour):
    out, records, messages = tour
    assert [(r["experiment"], r["scale"], r["status"]) for r in records] == [
        ("fake-a", "smoke", "completed"),
        ("fake-b", "cpu", "completed"),
        ("fake-c", "smoke", "failed"),
    ]
    assert json.loads((out / "fake-b" / "experiment.json").read_text())["scale"] == "cpu"
    assert json.loads((out / "fake-b" / "claims.json").read_text())[0]["evidence"]["epochs"] == 3
    for name in ("fake-a", "fake-b"):
        assert (out / name / "report.html").is_file()  # each stage's own report
    assert "this stage breaks on purpose" in records[2]["error"]
    assert json.loads((out / "tour.json").read_text())["stages"] == records


def test_progress_is_shown_per_stage(tour):
    messages = tour[2]
    starts = [m for m in messages if m.startswith("[") and " at scale " in m]
    assert [m.split()[0] for m in starts] == ["[1/3]", "[2/3]", "[3/3]"]
    assert any(m.startswith("[1/3] fake-a: 2 claims (1 holds, 1 not-applicable)") for m in messages)
    assert any(m.startswith("    [fake-a] a: training") for m in messages)
    assert any("[3/3] fake-c: failed" in m for m in messages)


def test_the_first_part_says_per_finding_what_was_claimed_and_measured(tour):
    out, records, _ = tour
    html = (out / "report.html").read_text(encoding="utf-8")
    first = html[: html.index('<h2 id="fake-a">')]
    claims = json.loads((out / "fake-a" / "claims.json").read_text())
    for name, paper, claimed in (
        ("fake-a", "Doe &amp; Roe 2020", "tiny MLPs train"),
        ("fake-b", "Roe 2021", "a second finding"),
    ):
        row = first[first.index(f'href="#{name}"') :]
        row = row[: row.index("</tr>")]
        assert paper in row and claimed in row
        assert f"sgdlab reproduce {name} --scale cpu" in row
        assert f"sgdlab reproduce {name} --scale full --device cuda" in row
    row_a = first[first.index('href="#fake-a"') :]
    assert claims[0]["headline"].replace(">", "&gt;") in row_a[: row_a.index("</tr>")]
    assert "1 hold" in row_a and "1 not-applicable" in row_a
    assert "this stage breaks on purpose" in first  # the broken stage says so
    assert "Scale <b>smoke</b>" in first and "Scale <b>cpu</b>" in first
    for name in ("fake-a", "fake-b"):
        assert f'<h2 id="{name}">' in html and f'href="{name}/report.html"' in html


@pytest.mark.skipif(find_chromium() is None, reason="no headless Chromium installed")
def test_the_tour_report_in_a_browser(tour):
    page = inspect_page(tour[0] / "report.html")
    assert page.errors == [] and page.scripts == 0
    assert len(page.images) == 2 and all(min(i["natural"]) > 0 and min(i["shown"]) > 0 for i in page.images)
    # each stage's figures are shown on the tour's page, one directory up: their SVG links too
    opened = follow_links(tour[0] / "report.html", "SVG")
    assert [o["href"] for o in opened] == ["fake-a/figures/loss.svg", "fake-b/figures/loss.svg"]
    assert all(o["root"] == "svg" and not o["errors"] for o in opened), opened


def test_demo_cli_selects_experiments_and_fails_when_a_stage_did(cli, tmp_path):
    assert cli("demo", "--only", "nothing-*", "--out", tmp_path).exit_code == 2
    with registered("fake-c", fn=broken_experiment):
        result = cli("demo", "--only", "fake-c", "--out", tmp_path / "d", "--device", "cpu")
    assert result.exit_code == 1 and "1 stages stopped: fake-c" in result.stderr
    assert (tmp_path / "d" / "report.html").is_file()


@pytest.mark.slow
def test_the_real_tour(tmp_path):
    """Every registered reproduction at its tour scale (what `make demo` runs)."""
    records = run_tour(tmp_path, device="cpu")
    assert [r["experiment"] for r in records] == experiments.names()
    assert all(r["status"] == "completed" for r in records), records
    if find_chromium() is not None:
        page = inspect_page(tmp_path / "report.html")
        assert page.errors == [] and all(min(i["natural"]) > 0 for i in page.images)
