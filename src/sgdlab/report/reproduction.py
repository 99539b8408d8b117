"""A reproduction's report page: the paper and the scale, the claims first, then the figures,
the runs, the measurement tables, the configs, the environment and the timings."""

from __future__ import annotations

from pathlib import Path

from ..store.claims import CLAIMS, Claim, load_claims
from ..store.records import ExperimentRecord, load_record
from .claims import claims_table, verdict_counts
from .page import code, esc, figures
from .sections import (
    configs_section,
    environment_section,
    run_devices_threads,
    run_dirs,
    runs_table,
    tables_section,
)

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


def commands(name: str, out: bool = True) -> list[str]:
    """The commands for the faithful scales (`--out` is their default, runs/NAME-SCALE)."""
    return [
        f"sgdlab reproduce {name} --scale cpu" + (f" --out runs/{name}-cpu" if out else ""),
        f"sgdlab reproduce {name} --scale full --device cuda" + (f" --out runs/{name}-full" if out else ""),
    ]


def record_of(path: Path) -> ExperimentRecord:
    """The reproduction's experiment.json (an empty record when it has none)."""
    return load_record(path) or ExperimentRecord()


def claims_of(path: Path) -> list[Claim]:
    """The reproduction's claims ([] when it has no claims.json yet)."""
    return load_claims(path) if (path / CLAIMS).is_file() else []


def reproduction_body(path: Path, level: int = 2, page: Path | None = None) -> str:
    """Claims table and figures of the reproduction in `path` (shared by its own page and the
    tour's); headings at `level`, links relative to `page` (the directory of the report.html
    shown, `path` itself by default)."""
    claims = claims_of(path)
    h = f"h{level}"
    return (
        f"<{h}>Claims</{h}>"
        + verdict_counts(claims)
        + claims_table(claims, record_of(path).paper)
        + f"<{h}>Figures</{h}>"
        + figures(sorted((path / "figures").glob("*.png")), page or path)
    )


def heading(name: str, exp: ExperimentRecord) -> str:
    """Title, paper, description, the scale's note with the commands for the faithful scales,
    and what `--only` selected."""
    scale = exp.scale or "?"
    return (
        f"<h1>{esc(name)}: reproduction at scale {esc(scale)}</h1>"
        + (f'<p class="lead">{esc(exp.paper)}</p>' if exp.paper else "")
        + (f'<p class="lead muted">{esc(exp.help)}</p>' if exp.help else "")
        + (
            f'<p class="note">{SCALE_NOTE[scale]} Faithful runs: '
            + " · ".join(f'<span class="cmd">{code(c)}</span>' for c in commands(name))
            + "</p>"
            if scale in SCALE_NOTE
            else ""
        )
        + (f'<p class="muted">Only the runs and parts matching {code(exp.only)}.</p>' if exp.only else "")
    )


def reproduction_page(path: Path) -> tuple[str, str]:
    """(title, body) of a reproduction's report: paper and scale note with the commands for the
    faithful scales, claims and figures, runs, measurement tables, configs, environment."""
    exp = record_of(path)
    name = exp.experiment or path.name
    dirs = run_dirs(path)
    runs = "<h2>Runs</h2>" + runs_table(dirs, path)
    devices, threads = run_devices_threads(dirs)
    if exp.device and not devices:
        devices = {exp.device}
    env = environment_section(exp.versions, exp.environment, devices, threads)
    timings = ""
    if exp.wall_time_s is not None:
        timings = (
            f"<h2>Timings</h2><p>The reproduction took {exp.wall_time_s:.1f} s "
            "(reused runs count only their loading); each run's own time is in the runs table.</p>"
        )
    body = heading(name, exp) + reproduction_body(path) + runs + tables_section(path)
    return f"{name} ({exp.scale or '?'})", body + configs_section(dirs) + env + timings
