"""`sgdlab report`: one self-contained page per run / reproduction, claims first, every
user-supplied string escaped, regenerated from the directory alone; and the same page in a
real headless browser (no console errors, every image drawn, injected markup inert)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from tests.browser import find_chromium, follow_links, inspect_page
from tests.conftest import tiny
from tests.fake_experiments import registered

from sgdlab.experiments import reproduce
from sgdlab.probes import Probe
from sgdlab.report.figures import spans_decades
from sgdlab.report.html import write_report

PAYLOAD = "<script>window.__pwned = true; document.documentElement.setAttribute('data-pwned', '1')</script>"
IMG_PAYLOAD = '<img src=x onerror="window.__pwned = true">'  # a name with no "/" (a directory name)


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "fake-report"
    with registered("fake-report"):
        claims = reproduce("fake-report", out, "smoke", "cpu")
    return out, claims


def test_reproduce_writes_a_report_with_claims_first(repro):
    out, claims = repro
    html = (out / "report.html").read_text(encoding="utf-8")
    order = [
        html.index(h)
        for h in (
            "<h2>Claims</h2>",
            "<h2>Figures</h2>",
            "<h2>Runs</h2>",
            "<h2>Resolved configs</h2>",
            "<h2>Environment</h2>",
            "<h2>Timings</h2>",
        )
    ]
    assert order == sorted(order)
    claims_part = html[order[0] : order[1]]
    for c in claims:  # verdict, statement, the key number, the meaning, in the claims table
        assert f"v-{c.verdict}" in claims_part and c.id in claims_part
        assert c.statement in claims_part
    assert claims[0].headline and claims[0].headline.replace(">", "&gt;") in claims_part
    assert "SGD made progress on the tiny MLP" in claims_part
    assert "reason: not at this scale" in claims_part  # a not-applicable claim shows its reason
    # the paper, escaped: its title holds markup
    assert "Doe &amp; Roe (2020), “Tiny networks &lt;b&gt;train&lt;/b&gt;”, Workshop" in claims_part
    assert "sgdlab reproduce fake-report --scale cpu" in html
    assert "sgdlab reproduce fake-report --scale full --device cuda" in html


def test_report_embeds_figures_and_links_the_svg_beside(repro):
    out, _ = repro
    html = (out / "report.html").read_text(encoding="utf-8")
    assert (out / "figures" / "loss.svg").stat().st_size > 1000
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    png = __import__("base64").b64decode(images[0].split(",", 1)[1])
    assert png == (out / "figures" / "loss.png").read_bytes()
    assert 'href="figures/loss.svg"' in html


def test_report_is_self_contained(repro):
    html = (repro[0] / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html
    for attr, value in re.findall(r'\b(src|href)="([^"]*)"', html):
        assert value.startswith(("data:", "#")) or "://" not in value, (attr, value)
    assert re.findall(r"<link [^>]*>", html) == ['<link rel="icon" href="data:,">']
    assert "Content-Security-Policy" in html and "@import" not in html and "url(" not in html


def test_report_names_what_produced_the_numbers(repro):
    out, _ = repro
    html = (out / "report.html").read_text(encoding="utf-8")
    versions = json.loads((out / "experiment.json").read_text())["versions"]
    assert versions["torch"] in html and versions.get("sgdlab_git", "unknown") in html
    assert "torch threads per run" in html and ">cpu<" in html
    assert 'href="runs/a/"' in html and 'href="runs/b/"' in html
    assert "widths = [16]" in html  # the resolved configs
    assert re.search(r"The reproduction took \d+\.\d s", html)


def test_report_is_regenerated_from_the_directory_alone(repro, tmp_path):
    out, _ = repro
    copy = tmp_path / "elsewhere"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    write_report(copy)
    assert (copy / "report.html").read_bytes() == (out / "report.html").read_bytes()


def crafted_reproduction(root):
    """A reproduction directory whose every string carries markup."""
    out = root / "crafted"
    (out / "figures").mkdir(parents=True)
    (out / "claims.json").write_text(
        json.dumps(
            [
                {
                    "id": f"x/{IMG_PAYLOAD}",
                    "statement": f"statement {PAYLOAD}",
                    "verdict": "fails",
                    "evidence": {PAYLOAD: 1.5, "note": PAYLOAD},
                    "headline": f"h = 1 {PAYLOAD}",
                    "meaning": f"meaning {PAYLOAD}",
                    "source": f"Mallory (2024), {PAYLOAD}",
                }
            ]
        )
    )
    (out / "experiment.json").write_text(
        json.dumps(
            {
                "experiment": PAYLOAD,
                "scale": "smoke",
                "paper": PAYLOAD,
                "help": PAYLOAD,
                "versions": {"torch": PAYLOAD},
                "environment": {"cpu": PAYLOAD},
                "wall_time_s": 1.0,
            }
        )
    )
    import sgdlab

    run = out / "runs" / IMG_PAYLOAD
    sgdlab.run(tiny(train={"epochs": 1}), run)
    toml = run / "config.toml"
    toml.write_text(f"# {PAYLOAD}\n" + toml.read_text())
    return out


def test_every_user_string_is_escaped(tmp_path):
    out = crafted_reproduction(tmp_path)
    html = write_report(out).read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;") >= 10
    page = write_report(out / "runs" / IMG_PAYLOAD).read_text(encoding="utf-8")  # the run's own page
    assert "<script" not in page and "<img src=x" not in page and "&lt;img src=x" in page


def test_run_report_from_the_cli(cli, tmp_path):
    import sgdlab

    run = tmp_path / "r"
    sgdlab.run(tiny(), run)
    result = cli("report", run)
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((run / "summary.json").read_text())
    assert f"{summary['final']['train_loss']:.4g}" in html
    assert (run / "figures" / "curves.png").stat().st_size > 0 and (run / "figures" / "curves.svg").is_file()
    order = [
        html.index(h)
        for h in (
            "<h2>Summary</h2>",
            "<h2>Figures</h2>",
            "<h2>Resolved config</h2>",
            "<h2>Environment</h2>",
            "<h2>Timings</h2>",
        )
    ]
    assert order == sorted(order)


class MaxWeight(Probe):
    """A probe that declares its own figure (`Probe.figure`): |θ|_max per epoch."""

    figure = "tests.test_report:max_weight_figure"

    def measure(self, ctx):
        return {"max_abs_theta": float(ctx.params.abs().max())}


def max_weight_figure(run, path):
    import matplotlib.pyplot as plt

    from sgdlab.store.figures import save_figure

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(*run.epochs("max_abs_theta"))
    return save_figure(fig, path)


def test_a_probe_draws_its_own_figure_in_the_report_and_in_show(cli, tmp_path):
    import sgdlab
    from sgdlab.probes import probes

    probes.register("max_weight", help="max |θ_i|", options={"schedule": "epoch"})(MaxWeight)
    try:
        run = tmp_path / "r"
        sgdlab.run(tiny(probes={"use": ["eval", "max_weight"]}), run)
        html = write_report(run).read_text(encoding="utf-8")
        assert (run / "figures" / "max_weight.png").stat().st_size > 0 and "max_weight.svg" in html
        (run / "figures" / "max_weight.png").unlink()
        result = cli("show", run)
        assert result.exit_code == 0 and "max_weight.png" in result.stdout
        assert (run / "figures" / "max_weight.png").is_file()
    finally:
        del probes._entries["max_weight"]


def test_the_gamma_probe_declares_its_figure(tmp_path):
    import sgdlab

    run = tmp_path / "g"
    sgdlab.run(tiny(train={"epochs": 1}, probes={"use": ["gamma"]}), run)
    write_report(run)
    assert (run / "figures" / "gamma.png").stat().st_size > 0 and (run / "figures" / "gamma.svg").is_file()


def test_report_of_a_directory_that_holds_nothing_reportable(cli, tmp_path):
    result = cli("report", tmp_path)
    assert result.exit_code == 2 and "not a run, reproduction, sweep or demo directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli("report", tmp_path / "missing").exit_code == 2


def test_log_axes_only_where_values_span_decades():
    assert spans_decades(np.array([1.0, 1e-3]))
    assert not spans_decades(np.array([0.5, 0.2]))
    assert not spans_decades(np.array([0.0, 10.0, 1e-4]))  # a zero cannot go on a log axis


# --- in a real browser -------------------------------------------------------------------

chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no headless Chromium installed "
    "(Debian: apt-get install chromium; `make install` does it as root)",
)


@chromium
def test_report_in_a_browser_loads_clean_and_draws_every_image(repro):
    page = inspect_page(repro[0] / "report.html")
    assert page.errors == []
    assert page.images and all(
        i["complete"] and min(i["natural"]) > 0 and min(i["shown"]) > 0 for i in page.images
    ), page.images
    assert "loss-falls" in page.text and page.scripts == 0


@chromium
def test_every_svg_link_of_the_report_opens_its_svg_in_a_browser(repro):
    opened = follow_links(repro[0] / "report.html", "SVG")
    assert opened and all(o["root"] == "svg" and not o["errors"] for o in opened), opened


@chromium
def test_markup_in_names_does_not_run_in_a_browser(tmp_path):
    out = crafted_reproduction(tmp_path)
    for path in (write_report(out), write_report(out / "runs" / IMG_PAYLOAD)):
        page = inspect_page(path)
        assert not page.pwned and page.scripts == 0
        assert page.errors == []  # nothing was even attempted (a blocked script would log an error)
        assert "<script>window.__pwned" in page.text or "<img src=x" in page.text  # shown as text
        assert all(min(i["natural"]) > 0 for i in page.images)
