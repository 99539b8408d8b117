"""Sections every kind of report shares: the runs table, the resolved configs, the measurement
tables, the environment; read from run directories and tables only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..store import RunDir, RunSummary
from ..store.claims import RERUN
from ..store.files import read_parquet
from .page import code, details, esc, fmt, pre, relative, table, verdict_badge

FINAL_COLUMNS = ("train_loss", "train_error", "test_loss", "test_error")


def text_of(path: Path) -> str:
    """A text file sgdlab wrote (a config.toml), for display: bytes that are not UTF-8 are
    shown as �, so a damaged file is seen as it is."""
    return path.read_bytes().decode("utf-8", errors="replace")


def seconds(train: float | None, replay: float | None = None) -> str:
    """A wall time in seconds, with the replay pass's beside it ("" when unknown)."""
    if train is None:
        return ""
    text = f"{train:.1f} s"
    return text + (f" + {replay:.1f} s replay" if replay is not None else "")


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
        s = RunDir(d).read_info()
        rows.append(
            [
                f'<a href="{esc(relative(d, base))}/">{esc(d.name)}</a>',
                verdict_badge(s.status),
                esc(fmt(s.n_params)),
                esc(fmt(s.steps)),
                esc(fmt(s.epochs)),
                *[esc(fmt(s.final_value(k))) for k in FINAL_COLUMNS],
                esc(seconds(s.wall_time_s, s.replay_wall_time_s)),
            ]
        )
    headers = ["run", "status", "params", "steps", "epochs", "train loss", "train error"]
    return table(headers + ["test loss", "test error", "wall time"], rows, numeric=range(2, 10))


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
    infos: list[RunSummary] = [RunDir(d).read_info() for d in dirs]
    devices = {s.device for s in infos if s.device}
    threads = {s.threads for s in infos if s.threads is not None}
    return devices, threads


def tables_section(path: Path, max_rows: int = 40) -> str:
    """The measurement tables (tables/*.parquet): small ones shown whole, large ones by shape."""
    files = sorted((path / "tables").glob("*.parquet")) if (path / "tables").is_dir() else []
    if not files:
        return ""
    items = []
    for f in files:
        t = read_parquet(f, RERUN)
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
