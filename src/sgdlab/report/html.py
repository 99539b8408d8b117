"""`sgdlab report DIR`: one self-contained DIR/report.html for a run, a reproduction, a sweep or
the demo tour, built from the files in DIR alone (a report can always be regenerated).

Order, for a reader: the findings first (claims: verdict, statement, the key number, what it
means, the paper), then the figures, then what produced them (runs, resolved configs,
environment, timings). A run's page starts with its summary instead of claims, a sweep's with
the mean ± std across seeds of each grid point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DamagedFile, UserError
from ..experiments.base import Claim, load_claims, load_record
from ..store import RunDir
from ..store.files import check_fields, read_json, read_parquet, write_text
from .page import as_json, code, details, document, esc, figures, fmt, pre, table, verdict_badge

REPORT = "report.html"
TOUR = "tour.json"
VERDICTS = ("holds", "fails", "not-applicable")
MARKS = {"holds": "✓", "fails": "✗", "not-applicable": "–"}
STAGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "scale": str,
    "paper": str,
    "paper_short": str,
    "paper_title": str,
    "help": str,
    "status": str,
    "error": str,
    "wall_time_s": float,
    "verdicts": dict,
}
SCALE_NOTE = {
    "smoke": "Scale <b>smoke</b>: seconds-long runs that exercise every part of the reproduction. "
    "They are too small and short for the regimes the claims assume, so their verdicts "
    "show the machinery, not the paper's test: the faithful verdicts come from the "
    "<b>cpu</b> scale (minutes on a laptop) and the <b>full</b> scale (the paper's "
    "settings, for a GPU).",
    "cpu": "Scale <b>cpu</b>: smaller data and networks than the paper, with the settings its "
    "argument needs (trained to the regime it assumes, enough runs for each statistic).",
    "full": "Scale <b>full</b>: the paper's settings.",
}


def kind_of(path: Path) -> str:
    """What DIR holds, by the files that mark it: "tour" (tour.json), "sweep", "reproduction"
    (experiment.json or claims.json) or "run" (config.toml); a UserError otherwise."""
    from ..sweep.index import is_sweep

    if (path / TOUR).is_file():
        return "tour"
    if is_sweep(path):
        return "sweep"
    if (path / "experiment.json").is_file() or (path / "claims.json").is_file():
        return "reproduction"
    if RunDir.is_run(path):
        return "run"
    raise UserError(
        f"{path}: not a run, reproduction, sweep or demo directory "
        "(no config.toml, claims.json, sweep.json or tour.json)"
    )


def write_report(path: str | Path) -> Path:
    """Write DIR/report.html from the files in DIR; returns its path."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory")
    kind = kind_of(path)
    if kind == "run":
        title, body = run_page(path)
    elif kind == "reproduction":
        title, body = reproduction_page(path)
    elif kind == "sweep":
        from .sweep import sweep_page

        title, body = sweep_page(path)
    else:
        title, body = tour_page(path)
    out = path / REPORT
    write_text(out, document(title, body))
    return out


def read_tour(path: Path) -> dict[str, Any]:
    """DIR/tour.json, checked: a list of stages, each naming its experiment and directory;
    DamagedFile otherwise."""
    file = path / TOUR
    todo = "run the same `sgdlab demo` command again to rebuild it"
    tour = read_json(file, dict, todo)
    check_fields(tour, {"stages": list, "device": str, "versions": dict, "environment": dict}, file, todo)
    for stage in tour.get("stages") or []:
        named = isinstance(stage, dict) and all(isinstance(stage.get(k), str) for k in ("experiment", "dir"))
        if not named:
            raise DamagedFile(file, "a stage is not an object with an experiment and a dir", todo)
        check_fields(stage, STAGE_FIELDS, file, todo)
    return tour


def text_of(path: Path) -> str:
    """A text file sgdlab wrote (a config.toml), for display: bytes that are not UTF-8 are
    shown as �, so a damaged file is seen as it is."""
    return path.read_bytes().decode("utf-8", errors="replace")


# --- claims ------------------------------------------------------------------------------


def key_numbers(claim: Claim, leaves: int = 3) -> str:
    """The claim's headline, or its first few scalar evidence entries when it has none."""
    if claim.headline:
        return claim.headline
    if "reason" in claim.evidence:
        return f"reason: {claim.evidence['reason']}"
    found = list(_scalar_leaves(claim.evidence, ""))
    numbers = [(k, v) for k, v in found if not isinstance(v, str)]
    return " · ".join(f"{k} = {fmt(v)}" for k, v in (numbers or found)[:leaves])


def _scalar_leaves(value: Any, prefix: str):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _scalar_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool) and prefix:
        yield prefix, value


def verdict_counts(claims: list[Claim]) -> str:
    """A line of verdict badges with how many claims have each verdict."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    return (
        '<p class="counts">'
        + "".join(f"<span>{verdict_badge(v)} × {n}</span>" for v, n in counts.items() if n)
        + "</p>"
    )


def claims_table(claims: list[Claim], paper: str | None) -> str:
    """Verdict, claim (id, statement, evidence), key numbers, meaning; the paper once in the
    caption, and per claim when some claim cites another source."""
    if not claims:
        return '<p class="muted">No claims were recorded.</p>'
    sources = {c.source or paper or "" for c in claims}
    per_claim = len(sources) > 1
    caption = f"Claims of {esc(paper)}" if paper and not per_claim else ""
    meanings = any(c.meaning for c in claims)
    headers = (
        ["verdict", "claim", "measured"]
        + (["what it means"] if meanings else [])
        + (["paper"] if per_claim else [])
    )
    rows = []
    for c in claims:
        statement = f'<span class="id">{esc(c.id)}</span><br>{esc(c.statement)}' + (
            details("evidence", pre(as_json(c.evidence))) if c.evidence else ""
        )
        row = [verdict_badge(c.verdict), statement, esc(key_numbers(c))]
        if meanings:
            row.append(esc(c.meaning))
        if per_claim:
            row.append(esc(c.source or paper or ""))
        rows.append(row)
    return table(
        headers, rows, cls="claims", caption=caption, columns={1: "statement", 2: "key", 3: "meaning"}
    )


# --- runs --------------------------------------------------------------------------------

FINAL_COLUMNS = ("train_loss", "train_error", "test_loss", "test_error")


def run_dirs(path: Path) -> list[Path]:
    """The run directories under DIR/runs, sorted by name (none when there is no runs/)."""
    runs = path / "runs"
    return sorted(p for p in runs.iterdir() if RunDir.is_run(p)) if runs.is_dir() else []


def runs_table(dirs: list[Path], base: Path) -> str:
    """One row per run: status, parameters, steps, epochs, final losses and errors, wall time
    (with the γ replay's), linked relative to `base`."""
    if not dirs:
        return '<p class="muted">No training runs.</p>'
    rows = []
    for d in dirs:
        s = RunDir(d).read_summary()
        final = s.get("final") or {}
        rows.append(
            [
                f'<a href="{esc(_rel(d, base))}/">{esc(d.name)}</a>',
                verdict_badge(s.get("status", "unknown")),
                esc(fmt(s.get("n_params"))),
                esc(fmt(s.get("steps"))),
                esc(fmt(s.get("epochs"))),
                *[esc(fmt(final.get(k))) for k in FINAL_COLUMNS],
                esc(_seconds(s.get("wall_time_s"), s.get("replay_wall_time_s"))),
            ]
        )
    return table(
        [
            "run",
            "status",
            "params",
            "steps",
            "epochs",
            "train loss",
            "train error",
            "test loss",
            "test error",
            "wall time",
        ],
        rows,
        numeric=range(2, 10),
    )


def _seconds(train: Any, replay: Any = None) -> str:
    if train is None:
        return ""
    text = f"{train:.1f} s"
    return text + (f" + {replay:.1f} s replay" if replay is not None else "")


def _rel(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def configs_section(dirs: list[Path]) -> str:
    """Each run's resolved config.toml, folded."""
    if not dirs:
        return ""
    items = "".join(details(d.name, pre(text_of(d / "config.toml"))) for d in dirs)
    note = '<p class="muted">The config.toml of every run (every default filled in).</p>'
    return f"<h2>Resolved configs</h2>{note}{items}"


def environment_section(
    versions: dict[str, Any] | None, environment: dict[str, Any] | None, devices: set[str], threads: set[Any]
) -> str:
    """The environment table: git commit, package versions, the devices and torch thread counts
    the runs used, platform, CPU, cores and CUDA devices (missing entries left out)."""
    versions, environment = versions or {}, environment or {}
    rows = [[esc("git commit"), code(versions.get("sgdlab_git", "unknown"))]]
    rows += [[esc(k), esc(v)] for k, v in versions.items() if k != "sgdlab_git"]
    if devices:
        rows.append([esc("device"), esc(", ".join(sorted(devices)))])
    if threads:
        rows.append([esc("torch threads per run"), esc(", ".join(map(str, sorted(threads))))])
    for key, label in (
        ("platform", "platform"),
        ("cpu", "cpu"),
        ("cores", "cores"),
        ("cuda_devices", "CUDA devices"),
    ):
        if environment.get(key) not in (None, "", []):
            value = environment[key]
            rows.append([esc(label), esc(", ".join(value) if isinstance(value, list) else value)])
    return "<h2>Environment</h2>" + table(["", ""], rows)


def run_devices_threads(dirs: list[Path]) -> tuple[set[str], set[Any]]:
    """The devices and torch thread counts recorded in the runs' summaries."""
    devices, threads = set(), set()
    for d in dirs:
        s = RunDir(d).read_summary()
        if s.get("device"):
            devices.add(s["device"])
        if s.get("threads") is not None:
            threads.add(s["threads"])
    return devices, threads


# --- a run -------------------------------------------------------------------------------


def run_figures(path: Path) -> list[Path]:
    """Curves (and γ curves when the run has them) drawn from metrics.parquet into figures/,
    plus any other PNG there."""
    from ..store import load_run
    from .curves import plot_curves

    run = load_run(path)
    figs = RunDir(path).figures
    made = []
    if run.metrics.num_rows:
        made.append(plot_curves(run, figs / "curves.png"))
        if "gamma_dist" in run.metrics.column_names:
            from ..papers import GAMMA_2019
            from .gamma import gamma_figure

            made.append(
                gamma_figure(figs / "gamma.png", f"{path.name} (after {GAMMA_2019.short})", {path.name: run})
            )
    others = sorted(p for p in figs.glob("*.png") if p not in made) if figs.is_dir() else []
    return made + others


def run_page(path: Path) -> tuple[str, str]:
    """(title, body) of a run's report: summary and final metrics, figures, the resolved config,
    environment and timings."""
    run_dir = RunDir(path)
    s = run_dir.read_summary()
    status = s.get("status", "unknown")
    final = s.get("final") or {}
    head = (
        f"<h1>Run {esc(path.name)}</h1><p>{verdict_badge(status)} "
        f'<span class="muted">{esc(path.resolve())}</span></p>'
    )
    facts = [
        [esc(k), esc(fmt(s[k]))]
        for k in ("seed", "steps", "epochs", "stop_reason", "diverged_at", "n_params", "error")
        if s.get(k) is not None
    ]
    summary = "<h2>Summary</h2>" + table(["", ""], facts) if facts else ""
    if final:
        summary += table(
            ["final metric", "value"], [[esc(k), esc(fmt(v))] for k, v in final.items()], numeric=[1]
        )
    figs = "<h2>Figures</h2>" + figures(run_figures(path), path)
    config = "<h2>Resolved config</h2>" + pre(text_of(run_dir.config_path))
    env = environment_section(
        s.get("versions"),
        s.get("environment"),
        {s["device"]} if s.get("device") else set(),
        {s["threads"]} if s.get("threads") is not None else set(),
    )
    timing_rows = [
        [esc(k), esc(fmt(s[k]))]
        for k in ("started_at", "finished_at", "wall_time_s", "replay_wall_time_s", "resumes")
        if s.get(k) is not None
    ]
    timings = "<h2>Timings</h2>" + table(["", ""], timing_rows) if timing_rows else ""
    return f"run {path.name}", head + summary + figs + config + env + timings


# --- a reproduction ----------------------------------------------------------------------


def commands(name: str, out: bool = True) -> list[str]:
    """The commands for the faithful scales (`--out` is their default, runs/NAME-SCALE)."""
    return [
        f"sgdlab reproduce {name} --scale cpu" + (f" --out runs/{name}-cpu" if out else ""),
        f"sgdlab reproduce {name} --scale full --device cuda" + (f" --out runs/{name}-full" if out else ""),
    ]


def reproduction_body(path: Path, level: int = 2) -> tuple[list[Claim], str]:
    """Claims table and figures of a reproduction directory (shared by its own page and the
    tour's); headings at `level`."""
    exp = load_record(path)
    claims = load_claims(path) if (path / "claims.json").is_file() else []
    h = f"h{level}"
    body = (
        f"<{h}>Claims</{h}>"
        + verdict_counts(claims)
        + claims_table(claims, exp.get("paper"))
        + f"<{h}>Figures</{h}>"
        + figures(sorted((path / "figures").glob("*.png")), path)
    )
    return claims, body


def reproduction_page(path: Path) -> tuple[str, str]:
    """(title, body) of a reproduction's report: paper and scale note with the commands for the
    faithful scales, claims and figures, runs, measurement tables, configs, environment."""
    exp = load_record(path)
    name = exp.get("experiment", path.name)
    scale = exp.get("scale", "?")
    head = (
        f"<h1>{esc(name)}: reproduction at scale {esc(scale)}</h1>"
        + (f'<p class="lead">{esc(exp["paper"])}</p>' if exp.get("paper") else "")
        + (f'<p class="lead muted">{esc(exp["help"])}</p>' if exp.get("help") else "")
        + (
            f'<p class="note">{SCALE_NOTE[scale]} Faithful runs: '
            + " · ".join(f'<span class="cmd">{code(c)}</span>' for c in commands(name))
            + "</p>"
            if scale in SCALE_NOTE
            else ""
        )
        + (
            f'<p class="muted">Only the runs and parts matching {code(exp["only"])}.</p>'
            if exp.get("only")
            else ""
        )
    )
    _, body = reproduction_body(path)
    dirs = run_dirs(path)
    runs = "<h2>Runs</h2>" + runs_table(dirs, path)
    tables = tables_section(path)
    devices, threads = run_devices_threads(dirs)
    if exp.get("device") and not devices:
        devices = {exp["device"]}
    env = environment_section(exp.get("versions"), exp.get("environment"), devices, threads)
    timings = ""
    if exp.get("wall_time_s") is not None:
        timings = (
            f"<h2>Timings</h2><p>The reproduction took {exp['wall_time_s']:.1f} s "
            "(reused runs count only their loading); each run's own time is in the runs table.</p>"
        )
    return f"{name} ({scale})", head + body + runs + tables + configs_section(dirs) + env + timings


def tables_section(path: Path, max_rows: int = 40) -> str:
    """The measurement tables (tables/*.parquet): small ones shown whole, large ones by shape."""
    files = sorted((path / "tables").glob("*.parquet")) if (path / "tables").is_dir() else []
    if not files:
        return ""
    items = []
    for f in files:
        t = read_parquet(f, "run the same `sgdlab reproduce` command again to rebuild it")
        label = f"{f.name}: {t.num_rows} rows × {t.num_columns} columns"
        if t.num_rows <= max_rows:
            rows = [
                [esc(fmt(v if not isinstance(v, list) else str(v))) for v in row.values()]
                for row in t.to_pylist()
            ]
            items.append(details(label, table(t.column_names, rows)))
        else:
            items.append(details(label, pre(", ".join(t.column_names))))
    return "<h2>Measurement tables</h2>" + "".join(items)


# --- the demo tour ----------------------------------------------------------------------


def compact_counts(claims: list[Claim]) -> str:
    """Verdict counts in words ("3 hold · 1 fails of 4 claims"), for the first screen of the tour."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    words = {"holds": "hold", "fails": "fail", "not-applicable": "not applicable"}
    return (
        '<div class="claimline"><b>'
        + " · ".join(
            f'<span class="m-{v}">{n} {words[v] if n != 1 else v}</span>' for v, n in counts.items() if n
        )
        + f"</b> of {len(claims)} claims</div>"
    )


def finding_row(stage: dict[str, Any], path: Path, max_lines: int = 3) -> list[str]:
    """One finding on the tour's first screen: the paper, what it claims, what this run
    measured (verdict counts and the first key numbers), the commands for faithful runs."""
    exp = load_record(path)
    name = stage["experiment"]
    claimed = esc(exp.get("help") or stage.get("help") or "")
    if stage.get("error"):
        measured = f"{verdict_badge('failed')} the stage stopped: {esc(stage['error'])}"
    elif not (path / "claims.json").is_file():
        measured = '<span class="muted">not run yet</span>'
    else:
        claims = load_claims(path)
        shown = ([c for c in claims if c.headline] + [c for c in claims if not c.headline])[:max_lines]
        lines = "".join(
            f'<div class="claimline"><span class="mark m-{esc(c.verdict)}">{MARKS[c.verdict]}</span>'
            f"{esc(c.id)}: {esc(key_numbers(c, leaves=1))}</div>"
            for c in shown
        )
        more = len(claims) - len(shown)
        measured = (
            compact_counts(claims)
            + lines
            + (
                f'<div class="claimline"><a href="#{esc(name)}">+ {more} more below</a></div>'
                if more > 0
                else ""
            )
        )
    cmds = "".join(f'<div class="cmd">{code(c)}</div>' for c in commands(name, out=False))
    paper = (
        f'<br><span class="paper">{esc(stage["paper_short"])}: {esc(stage.get("paper_title", ""))}</span>'
        if stage.get("paper_short")
        else f'<br><span class="paper">{esc(exp.get("paper") or "")}</span>'
    )
    title = f'<a href="#{esc(name)}"><b>{esc(name)}</b></a>{paper}'
    return [title, claimed, measured, cmds]


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
    rows = [finding_row(s, path / s["dir"]) for s in stages]
    first = table(
        ["finding", "what the paper claims", "what this run measured", "faithful runs"],
        rows,
        cls="findings",
        columns={0: "finding", 1: "claimed", 2: "measured", 3: "commands"},
    )
    sections = []
    for s in stages:
        stage_dir = path / s["dir"]
        sections.append(
            f'<h2 id="{esc(s["experiment"])}">{esc(s["experiment"])} '
            f'<span class="muted">(scale {esc(s.get("scale", "?"))})</span></h2>'
        )
        exp = load_record(stage_dir)
        if exp.get("paper"):
            sections.append(f"<p>{esc(exp['paper'])}</p>")
        if s.get("error"):
            sections.append(f"<p>{verdict_badge('failed')} {esc(s['error'])}</p>")
        if (stage_dir / "claims.json").is_file() or (stage_dir / "figures").is_dir():
            sections.append(reproduction_body(stage_dir, level=3)[1])
        sections.append(
            f'<p class="muted">This stage\'s own report, with its runs and configs: '
            f'<a href="{esc(s["dir"])}/report.html">{esc(s["dir"])}/report.html</a></p>'
        )
    timing_rows = [
        [
            esc(s["experiment"]),
            esc(s.get("scale", "")),
            esc(s.get("status", "")),
            esc(_seconds(s.get("wall_time_s"))),
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
    return "sgdlab demo", head + note + first + "".join(sections) + env + timings
