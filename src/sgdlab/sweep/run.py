"""`sgdlab sweep CONFIG --grid KEY=V1,V2 ... --seeds N --out DIR`: every grid point × seed as
one run directory under DIR/runs/, on the local process pool or a Ray cluster, with an index
that is rewritten as each run ends and a report that aggregates the seeds of each point.

Running the same command again reuses the finished runs and resumes the others; a run that
fails or diverges is recorded in the index and the others go on. The report of a sweep is
written by whoever asks for it (`sgdlab sweep` does, with `sgdlab.report.write_report`).
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from ..build import resolve_device
from ..config import apply_override, read_toml
from ..errors import DamagedFile, UserError
from ..store import RunDir
from ..store.files import write_json
from ..store.provenance import environment, now, versions
from .executors import Job, Outcome, reusable, run_local
from .grid import Axis, SweepRun, expand, parse_axis
from .index import SPEC, Sweep, index_rows, is_sweep, load_sweep, read_spec, write_index
from .ray_executor import ray_session, run_ray

Log = Callable[[str], None]


def plan_sweep(
    config: str | Path | dict,
    grid: list[str] | tuple[str, ...],
    seeds: int,
    overrides: list[str] | tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[Axis], list[SweepRun]]:
    """(base raw config, grid axes, runs): everything checked before anything is written."""
    base = copy.deepcopy(config) if isinstance(config, dict) else read_toml(config)
    for assignment in overrides:
        apply_override(base, assignment)
    axes = [parse_axis(spec) for spec in grid]
    return base, axes, expand(base, axes, seeds)


def sweep_jobs(out: Path, runs: list[SweepRun]) -> list[Job]:
    """One job per run, with `device = "auto"` resolved here (so every node trains, and a
    re-run compares against, the same config)."""
    jobs = []
    for r in runs:
        job = Job(r.name, out / "runs" / r.name, r.raw)
        raw = dict(r.raw, device=job.config().device)
        jobs.append(Job(r.name, job.path, raw))
    return jobs


def _spec(base: dict[str, Any], axes: list[Axis], seeds: int) -> dict[str, Any]:
    return {"config": base, "grid": [{"key": a.key, "values": list(a.values)} for a in axes], "seeds": seeds}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def existing_record(out: Path, spec: dict[str, Any], log: Log | None = None) -> dict[str, Any] | None:
    """The record in DIR/sweep.json when DIR holds this sweep, None when DIR is new or empty
    (or its sweep.json is damaged: it is written again from this command, whose runs are each
    checked against their own config.toml); an error when it holds anything else."""
    if is_sweep(out):
        try:
            record = read_spec(out)
        except DamagedFile as exc:
            if log is not None:
                log(f"{exc.path}: damaged ({exc.problem}); written again from this command")
            return None
        if not _same({k: record.get(k) for k in spec}, spec):
            raise UserError(
                f"{out}: holds a different sweep (another config, grid or --seeds); choose another --out"
            )
        return record
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an sgdlab sweep; choose another --out")
    return None


def open_sweep_dir(out: Path, spec: dict[str, Any], log: Log | None = None) -> dict[str, Any]:
    """The record in DIR/sweep.json, created or checked against `spec`."""
    record = existing_record(out, spec, log)
    if record is not None:
        return record
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **spec,
        "created_at": now(),
        "versions": versions(),
        "environment": environment(),
        "invocations": [],
    }
    write_json(out / SPEC, record)
    return record


def run_sweep(
    config: str | Path | dict,
    grid: list[str] | tuple[str, ...],
    seeds: int,
    out: str | Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    workers: int | None = None,
    ray: str | None = None,
    log: Log | None = None,
) -> Sweep:
    """Run (or continue) the sweep; returns it as `load_sweep` reads it."""
    log = log or (lambda message: None)
    out = Path(out).resolve()  # Ray tasks may start elsewhere
    base, axes, runs = plan_sweep(config, grid, seeds, overrides)
    jobs = sweep_jobs(out, runs)
    if not ray:  # a Ray task may train on a node with a GPU; the local pool trains here
        for device in {job.config().device for job in jobs}:
            resolve_device(device)
    existing_record(out, _spec(base, axes, seeds))
    # Join (or start) the cluster before writing anything: a bad --ray leaves no directory.
    pending = [job for job in jobs if not finished(job)]
    with ray_session(ray) if ray and pending else nullcontext():
        return _run(out, base, axes, seeds, runs, jobs, workers, ray, log)


def finished(job: Job) -> bool:
    """Whether the job's run directory holds a completed or diverged run with its config,
    its files intact."""
    return reusable(job) is not None


def _run(
    out: Path,
    base: dict[str, Any],
    axes: list[Axis],
    seeds: int,
    runs: list[SweepRun],
    jobs: list[Job],
    workers: int | None,
    ray: str | None,
    log: Log,
) -> Sweep:
    record = open_sweep_dir(out, _spec(base, axes, seeds), log)
    keys = [a.key for a in axes]
    errors: dict[str, str] = {}
    count = [0]

    def on_done(outcome: Outcome) -> None:
        count[0] += 1
        if outcome.error:
            errors[outcome.name] = outcome.error
        log(f"[{count[0]}/{len(jobs)}] {describe(out, outcome)}")
        write_index(out, index_rows(out, runs, errors), keys)

    write_index(out, index_rows(out, runs), keys)
    executor = f"ray {ray}" if ray else f"local, {workers or 'one per core'} workers"
    log(
        f"{len(axes)} grid keys, {len(runs) // max(seeds, 1)} points × {seeds} seeds = "
        f"{len(runs)} runs in {out} ({executor})"
    )
    t0, started = time.perf_counter(), now()
    try:
        if ray:
            run_ray(jobs, ray, on_done, log)
        else:
            run_local(jobs, workers, on_done, log)
    finally:
        write_index(out, index_rows(out, runs, errors), keys)
        record.setdefault("invocations", []).append(
            {
                "started_at": started,
                "wall_time_s": round(time.perf_counter() - t0, 2),
                "executor": "ray" if ray else "local",
                "address": ray,
                "workers": workers,
            }
        )
        write_json(out / SPEC, record)
    return load_sweep(out)


def describe(out: Path, outcome: Outcome) -> str:
    """One line for a finished run: name, status, what was done, time, final loss."""
    if outcome.error:
        return f"{outcome.name}: {outcome.status} ({outcome.error})"
    try:
        info = RunDir(out / "runs" / outcome.name).read_info()
    except DamagedFile as exc:
        return f"{outcome.name}: {outcome.status} ({exc})"
    bits = [f"{outcome.name}: {outcome.status}"]
    if outcome.action == "reused":
        bits.append("(reused)")
    elif info.wall_time_s is not None:
        bits.append(f"in {info.wall_time_s:.1f} s")
    loss = info.final_value("train_loss")
    if loss is not None:
        bits.append(f"train loss {loss:.4g}")
    return " ".join(bits)
