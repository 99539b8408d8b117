"""The sweep report: per grid point, the mean ± sample standard deviation (ddof = 1) across
seeds of each final metric (a table), and per metric one figure with a line (mean) and a band
(± std) per grid point against epochs. Only completed runs enter the statistics; the index
table lists every run with its status."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..config import dump_toml  # noqa: E402
from ..stats import mean_std  # noqa: E402
from ..store import load_run  # noqa: E402
from ..store.sweeps import load_sweep  # noqa: E402
from .figures import metric_label, save_figure, spans_decades  # noqa: E402
from .page import code, esc, figures, fmt, pre, table, verdict_badge  # noqa: E402
from .sections import environment_section, run_devices_threads  # noqa: E402

METRIC_ORDER = ("train_loss", "test_loss", "train_error", "test_error", "batch_loss")
MAX_POINTS = 300  # per-step series are averaged into at most this many epoch bins per run


def point_label(values: dict[str, Any]) -> str:
    """`lr=0.1, widths=[64]` (index values: numbers, or the TOML text of lists)."""
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={fmt(v)}" for k, v in values.items()) or "config"


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.4g} ± {std:.2g}" if not math.isnan(std) else f"{mean:.4g}"


def groups(rows: list[dict[str, Any]], keys: list[str]) -> dict[int, dict[str, Any]]:
    """Grid point → {values, rows}."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        g = out.setdefault(row["point"], {"values": {k: row.get(k) for k in keys}, "rows": []})
        g["rows"].append(row)
    return dict(sorted(out.items()))


def binned(epochs: np.ndarray, values: np.ndarray, bins: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A long series as the means of `bins` equal epoch intervals (short ones unchanged)."""
    if len(epochs) <= bins:
        return epochs, values
    edges = np.linspace(epochs.min(), epochs.max(), bins + 1)
    which = np.clip(np.searchsorted(edges, epochs, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    keep = counts > 0
    return (
        (np.bincount(which, epochs, bins)[keep] / counts[keep]),
        (np.bincount(which, values, bins)[keep] / counts[keep]),
    )


def seed_band(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std) across seeds at the epochs where at least one seed has a value
    (seeds of a grid point share their schedule, so these are the same epochs for all but
    runs that stopped early)."""
    grid = np.unique(np.concatenate([e for e, _ in series]))
    stack = np.full((len(series), len(grid)), np.nan)
    for i, (e, v) in enumerate(series):
        stack[i, np.searchsorted(grid, e)] = v
    with np.errstate(all="ignore"):
        n = np.sum(np.isfinite(stack), axis=0)
        mean = np.nanmean(np.where(np.isfinite(stack), stack, np.nan), axis=0)
        std = np.where(n > 1, np.nanstd(stack, axis=0, ddof=1) if len(series) > 1 else 0.0, 0.0)
    return grid, mean, np.nan_to_num(std)


def metric_figures(path: Path, grouped: dict[int, dict[str, Any]], seeds: int) -> list[Path]:
    """One figure per metric: mean line and ± std band per grid point against epochs."""
    runs: dict[int, list] = {}
    metrics: dict[str, None] = {}
    for point, g in grouped.items():
        runs[point] = [load_run(path / "runs" / r["run"]) for r in g["rows"] if r["status"] == "completed"]
        for run in runs[point]:
            metrics.update(dict.fromkeys(run.metrics.column_names[2:]))
    metrics = {
        m: None for m in metrics if not _constant_in_every_run(m, [r for rs in runs.values() for r in rs])
    }
    ordered = [m for m in METRIC_ORDER if m in metrics] + sorted(m for m in metrics if m not in METRIC_ORDER)
    colors = plt.get_cmap("tab10" if len(grouped) <= 10 else "viridis")
    made = []
    for metric in ordered:
        series = {point: _series(runs[point], metric) for point in grouped}
        values = [v for ss in series.values() for _, v in ss]
        if not values:
            continue
        log = spans_decades(*values)
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for i, (point, g) in enumerate(grouped.items()):
            if not series[point]:
                continue
            color = colors(i if len(grouped) <= 10 else i / max(len(grouped) - 1, 1))
            e, line, low, high = _band(series[point], log)
            ax.plot(
                e, line, color=color, lw=1.4, label=f"{point_label(g['values'])} (n={len(series[point])})"
            )
            ax.fill_between(e, low, high, color=color, alpha=0.2, lw=0)
        if log:
            ax.set_yscale("log")
        loss = next(r for rs in runs.values() for r in rs).config.train.loss
        band = "geometric mean ×/÷ geometric std" if log else "mean ± std"
        ax.set(
            xlabel="epoch",
            ylabel=metric_label(metric, loss),
            title=f"{metric}: {band} across seeds (up to {seeds} per grid point)",
        )
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        made.append(save_figure(fig, path / "figures" / f"sweep-{metric}.png"))
    return made


def _series(runs: list, metric: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(epochs, values) of `metric` in each run that has finite values of it, binned."""
    out = []
    for run in runs:
        if metric in run.metrics.column_names:
            e, v = run.epochs(metric)
            ok = np.isfinite(v)
            if ok.any():
                out.append(binned(e[ok], v[ok]))
    return out


def _band(
    series: list[tuple[np.ndarray, np.ndarray]], log: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, line, low, high) across seeds. On a log axis the band is taken in log space
    (geometric mean ×/÷ geometric std), so it never reaches zero or below; on a linear axis it
    is mean ± std, its lower edge kept at 0 for a metric that is never negative (an error rate,
    a norm), which a symmetric band would cross."""
    if log:
        positive = [(e[v > 0], np.log10(v[v > 0])) for e, v in series if (v > 0).any()]
        e, mean, std = seed_band(positive)
        return e, 10**mean, 10 ** (mean - std), 10 ** (mean + std)
    e, mean, std = seed_band(series)
    floor = 0.0 if all((v >= 0).all() for _, v in series) else -np.inf
    return e, mean, np.maximum(mean - std, floor), mean + std


def _constant_in_every_run(metric: str, runs: list) -> bool:
    """A metric that never changes within a run (a constant step size) needs no curve."""
    for run in runs:
        if metric in run.metrics.column_names:
            v = run.series(metric)[1]
            if len(v) > 1 and np.nanmax(v) != np.nanmin(v):
                return False
    return True


def sweep_page(path: Path) -> tuple[str, str]:
    """(title, body) of a sweep's report: grid and statuses, the mean ± std across seeds per grid
    point, one figure per metric, the run index, the base config, environment and timings."""
    sweep = load_sweep(path)
    spec, keys = sweep.spec, sweep.grid_keys
    rows = sweep.index.to_pylist()
    grouped = groups(rows, keys)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    finals = [m for m in METRIC_ORDER[:4] if any(row.get(m) is not None for row in rows)]
    head = (
        f'<h1>{esc(path.name)}: a sweep</h1><p class="lead">{len(grouped)} grid points × '
        f"{spec.get('seeds')} seeds = {len(rows)} runs. "
        + "".join(f"{verdict_badge(s)} × {n} " for s, n in sorted(statuses.items()))
        + "</p>"
        + "<p>Grid: "
        + "; ".join(
            f"{code(a['key'])} ∈ {{{esc(', '.join(map(fmt, a['values'])))}}}" for a in spec.get("grid", [])
        )
        + "</p>"
    )
    agg_rows = []
    for g in grouped.values():
        done = [r for r in g["rows"] if r["status"] == "completed"]
        cells = [esc(fmt(g["values"][k])) for k in keys]
        cells.append(esc(f"{len(done)}/{len(g['rows'])}"))
        for m in finals + ["wall_time_s"]:
            cells.append(esc(_pm(*mean_std([r.get(m) for r in done]))))
        agg_rows.append(cells)
    n = len(keys)
    aggregate = "<h2>Mean ± std across seeds</h2>" + table(
        keys + ["completed"] + [f"final {m.replace('_', ' ')}" for m in finals] + ["wall time (s)"],
        agg_rows,
        numeric=range(n, n + len(finals) + 2),
        caption="Mean ± sample standard deviation (ddof = 1) over the completed runs of each grid point.",
    )
    figs = "<h2>Figures</h2>" + figures(metric_figures(path, grouped, spec.get("seeds", 1)), path)
    index_rows = []
    for r in rows:
        link = (
            f'<a href="runs/{esc(r["run"])}/">{esc(r["run"])}</a>'
            if (path / "runs" / r["run"]).is_dir()
            else esc(r["run"])
        )
        index_rows.append(
            [
                link,
                *[esc(fmt(r.get(k))) for k in keys],
                esc(r["seed"]),
                verdict_badge(r["status"]),
                *[esc(fmt(r.get(m))) for m in finals],
                esc(fmt(r.get("wall_time_s"))),
                esc(r.get("error") or ""),
            ]
        )
    index = (
        "<h2>Runs</h2>"
        + table(
            ["run", *keys, "seed", "status", *finals, "wall time (s)", "error"],
            index_rows,
            numeric=range(n + 3, n + 4 + len(finals)),
        )
        + f'<p class="muted">Also in {code("index.parquet")} / {code("index.json")}; '
        f"load with {code('sgdlab.load_sweep(DIR)')}.</p>"
    )
    config = (
        "<h2>Config</h2><p>The base config every run starts from (grid values and seeds are set "
        "on top; each run's resolved config.toml is in its directory):</p>"
        + pre(dump_toml(spec.get("config", {})))
    )
    devices, threads = run_devices_threads(
        [path / "runs" / r["run"] for r in rows if (path / "runs" / r["run"]).is_dir()]
    )
    env = environment_section(spec.get("versions"), spec.get("environment"), devices, threads)
    inv = spec.get("invocations", [])
    timings = (
        (
            "<h2>Timings</h2>"
            + table(
                ["started", "executor", "wall time (s)"],
                [
                    [
                        esc(i.get("started_at")),
                        esc(
                            f"{i.get('executor')}"
                            + (f" {i['address']}" if i.get("address") else "")
                            + (f", {i['workers']} workers" if i.get("workers") else "")
                        ),
                        esc(fmt(i.get("wall_time_s"))),
                    ]
                    for i in inv
                ],
                numeric=[2],
            )
        )
        if inv
        else ""
    )
    return f"{path.name} (sweep)", head + aggregate + figs + index + config + env + timings
