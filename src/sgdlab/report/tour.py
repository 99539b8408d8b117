"""The demo tour's report page: one finding per stage on the first screen (the paper, what it
claims, what this run measured, the commands for faithful runs), then each stage's claims and
figures, the environment and the timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..store.claims import CLAIMS
from ..store.records import read_tour
from .claims import claim_line, compact_counts
from .page import code, esc, table, verdict_badge
from .reproduction import SCALE_NOTE, claims_of, commands, record_of, reproduction_body
from .sections import environment_section, seconds


def measured_cell(stage: dict[str, Any], path: Path, max_lines: int = 3) -> str:
    """What a stage measured: its verdict counts and first key numbers, or why there are none."""
    if stage.get("error"):
        return f"{verdict_badge('failed')} the stage stopped: {esc(stage['error'])}"
    if not (path / CLAIMS).is_file():
        return '<span class="muted">not run yet</span>'
    claims = claims_of(path)
    shown = ([c for c in claims if c.headline] + [c for c in claims if not c.headline])[:max_lines]
    more = len(claims) - len(shown)
    return (
        compact_counts(claims)
        + "".join(claim_line(c) for c in shown)
        + (
            f'<div class="claimline"><a href="#{esc(stage["experiment"])}">+ {more} more below</a></div>'
            if more > 0
            else ""
        )
    )


def finding_row(stage: dict[str, Any], path: Path) -> list[str]:
    """One finding on the tour's first screen: the paper, what it claims, what this run
    measured (verdict counts and the first key numbers), the commands for faithful runs."""
    exp = record_of(path)
    name = stage["experiment"]
    claimed = esc(exp.help or stage.get("help") or "")
    cmds = "".join(f'<div class="cmd">{code(c)}</div>' for c in commands(name, out=False))
    paper = (
        f'<br><span class="paper">{esc(stage["paper_short"])}: {esc(stage.get("paper_title", ""))}</span>'
        if stage.get("paper_short")
        else f'<br><span class="paper">{esc(exp.paper or "")}</span>'
    )
    title = f'<a href="#{esc(name)}"><b>{esc(name)}</b></a>{paper}'
    return [title, claimed, measured_cell(stage, path), cmds]


def stage_section(stage: dict[str, Any], path: Path) -> str:
    """A stage's section below the first screen: its paper, its claims and figures (links
    relative to the tour's page in `path`), and a link to the stage's own report."""
    stage_dir = path / stage["dir"]
    out = [
        f'<h2 id="{esc(stage["experiment"])}">{esc(stage["experiment"])} '
        f'<span class="muted">(scale {esc(stage.get("scale", "?"))})</span></h2>'
    ]
    paper = record_of(stage_dir).paper
    if paper:
        out.append(f"<p>{esc(paper)}</p>")
    if stage.get("error"):
        out.append(f"<p>{verdict_badge('failed')} {esc(stage['error'])}</p>")
    if (stage_dir / CLAIMS).is_file() or (stage_dir / "figures").is_dir():
        out.append(reproduction_body(stage_dir, level=3, page=path))
    out.append(
        f'<p class="muted">This stage\'s own report, with its runs and configs: '
        f'<a href="{esc(stage["dir"])}/report.html">{esc(stage["dir"])}/report.html</a></p>'
    )
    return "".join(out)


def tour_page(path: Path) -> tuple[str, str]:
    """(title, body) of the demo tour: one finding per stage on the first screen, then each stage's
    claims and figures, timings and environment."""
    tour = read_tour(path)
    stages = tour.get("stages", [])
    total = sum(s.get("wall_time_s") or 0 for s in stages)
    scales = sorted({s.get("scale", "?") for s in stages})
    head = (
        "<h1>sgdlab demo: every reproduction, briefly</h1>"
        f'<p class="lead">{len(stages)} published findings on how SGD converges on '
        f"over-parameterized models, each reproduced at scale {esc(', '.join(scales))} "
        f"({total:.0f} s in all). Every verdict is computed from the numbers measured here.</p>"
    )
    note = "".join(f'<p class="note">{SCALE_NOTE[s]}</p>' for s in scales if s in SCALE_NOTE)
    first = table(
        ["finding", "what the paper claims", "what this run measured", "faithful runs"],
        [finding_row(s, path / s["dir"]) for s in stages],
        cls="findings",
        columns={0: "finding", 1: "claimed", 2: "measured", 3: "commands"},
    )
    sections = "".join(stage_section(s, path) for s in stages)
    timing_rows = [
        [
            esc(s["experiment"]),
            esc(s.get("scale", "")),
            esc(s.get("status", "")),
            esc(seconds(s.get("wall_time_s"))),
        ]
        for s in stages
    ]
    timings = (
        "<h2>Timings</h2>"
        + table(["stage", "scale", "status", "wall time"], timing_rows, numeric=[3])
        + f"<p>Total {total:.1f} s.</p>"
    )
    env = environment_section(
        tour.get("versions"),
        tour.get("environment"),
        {tour["device"]} if tour.get("device") else set(),
        set(),
    )
    return "sgdlab demo", head + note + first + sections + env + timings
