"""Experiments are data plus claims. An experiment is a registered function
`run(lab: Lab) -> list[Claim]`: it asks the lab to train configs (or simulates directly),
saves what it measured as tables, draws figures from them, and decides each claim from the
measured numbers. `sgdlab reproduce NAME` writes everything under one directory:

  DIR/experiment.json   name, scale, device, paper, versions, wall time
  DIR/claims.json       [{id, statement, verdict, evidence, headline, meaning, source}]
  DIR/runs/<name>/      one sgdlab run directory per trained config
  DIR/tables/*.parquet  other measurements (simulations, aggregates)
  DIR/figures/*.png
"""

from __future__ import annotations

import fnmatch
import math
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import torch

from ..config import config_to_toml
from ..errors import DamagedFile, UserError, quote
from ..registry import Registry
from ..store import Run, load_run
from ..store.files import read_json, read_parquet, write_json, write_parquet
from ..sweep.executors import Job, ensure, run_local

SCALES = ("smoke", "cpu", "full")
VERDICTS = ("holds", "fails", "not-applicable")

# An experiment registers with `paper=` (a sgdlab.papers.Paper, cited on every claim it makes)
# and `plan=` (scale → Plan: what it would train, for `sgdlab reproduce --plan`).
experiments: Registry[Callable[[Lab], list[Claim]]] = Registry("experiment")


@dataclass(frozen=True)
class Claim:
    """A named, falsifiable statement and the measured numbers behind its verdict.

    `headline` is the one number a reader looks at first ("τ = 0.67", "E0 = 95"), `meaning`
    one line on what the claim says about the paper, `source` the paper it comes from
    (authors, year, title; `reproduce` fills in the experiment's paper where it is empty)."""

    id: str
    statement: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    meaning: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        """Reject a verdict outside VERDICTS (holds, fails, not-applicable)."""
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")


def decide(
    id: str,
    statement: str,
    holds: bool | None,
    *,
    headline: str = "",
    meaning: str = "",
    source: Any = "",
    **evidence: Any,
) -> Claim:
    """A claim whose verdict is `holds` (True → holds, False → fails, None → not-applicable).
    A not-applicable claim should carry its reason as `reason="..."` in the evidence."""
    verdict = "not-applicable" if holds is None else ("holds" if holds else "fails")
    return Claim(
        id, statement, verdict, {k: plain(v) for k, v in evidence.items()}, headline, meaning, str(source)
    )


def not_applicable(id: str, statement: str, reason: str, **kw: Any) -> Claim:
    """A claim that cannot be decided, with the reason (a missing premise, missing runs)."""
    return decide(id, statement, None, reason=reason, **kw)


def missing_runs(needed: list[str] | tuple[str, ...], runs: dict[str, Any]) -> list[str]:
    """The names in `needed` that `runs` lacks (not selected by --only, or not trained)."""
    return [name for name in needed if name not in runs]


def divergence(name: str, run: Any) -> str | None:
    """The reason "run NAME diverged at step k" when `run` ended `diverged` (its loss or
    parameters became NaN/inf), else None: what a claim that needs the run gives instead of a
    number."""
    if run.status != "diverged":
        return None
    return f"run {name} diverged at step {run.summary.get('diverged_at')}"


def divergences(runs: dict[str, Any]) -> list[str]:
    """`divergence` of every run in `runs` that diverged."""
    return [why for name, run in runs.items() if (why := divergence(name, run)) is not None]


@dataclass(frozen=True)
class Simulation:
    """A part of an experiment that is not a training run (a batched simulation, a closed-form
    computation), as `--plan` lists it; `estimate()` returns seconds from a short measured timing."""

    description: str
    estimate: Callable[[], float] | None = None


@dataclass(frozen=True)
class Plan:
    """What an experiment does at one scale: the run configs it trains (name → raw config,
    exactly what `Lab.run_many` receives) and its other parts."""

    runs: dict[str, dict[str, Any]]
    simulations: dict[str, Simulation] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """Evidence as JSON-ready plain values (numpy scalars and arrays become floats and lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


Progress = Callable[[str], None]


@contextmanager
def one_thread() -> Iterator[None]:
    """Simulations and measurements in the reproduce process on one torch thread, as every
    trained run is: faster for small tensor ops on a shared machine, and deterministic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Lab:
    """What an experiment works with: its directory, scale and device, and a way to run
    configs that reuses finished runs and resumes unfinished ones."""

    def __init__(
        self,
        out: str | Path,
        scale: str,
        device: str = "auto",
        log: Progress | None = None,
        progress_factory: Callable | None = None,
        only: str | None = None,
    ):
        """Create OUT/runs, OUT/tables and OUT/figures; `scale` must be one of SCALES."""
        if scale not in SCALES:
            raise UserError(f"--scale: {scale!r} is not one of {', '.join(SCALES)}")
        self.out, self.scale, self.device, self.only = Path(out), scale, device, only
        self.log = log or (lambda message: None)
        self.progress_factory = progress_factory
        self.asked = self.matched = False  # whether `selected` was asked, and said yes, so far
        for sub in ("runs", "tables", "figures"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)

    def selected(self, name: str) -> bool:
        """Whether run or part `name` is in this invocation (`--only PATTERN`)."""
        chosen = selected(name, self.only)
        self.asked, self.matched = True, self.matched or chosen
        return chosen

    def job(self, name: str, raw: dict[str, Any]) -> Job:
        """Config `raw` as a job for runs/<name>, on this lab's device."""
        return Job(name, self.out / "runs" / name, dict(raw, device=self.device))

    def run(self, name: str, raw: dict[str, Any]) -> Run:
        """Train config `raw` into runs/<name>: reuse it when finished with this exact config,
        resume it when it was cut off, train it otherwise."""
        with self._progress(name) as progress:
            ensure(self.job(name, raw), self.log, progress)
        return load_run(self.out / "runs" / name)

    def run_many(self, configs: dict[str, dict[str, Any]], workers: int | None = None) -> dict[str, Run]:
        """`run` for several independent configs, `workers` processes at a time (default: one
        per core; `sweep.executors.run_local`). Each run is one single-threaded process, so
        results do not depend on how many ran side by side. Identical configs are trained once,
        under the first name. With `--only`, configs whose names it does not select are left
        out of the result. A run that raised re-raises here, after the others finished."""
        configs = {name: raw for name, raw in configs.items() if self.selected(name)}
        jobs = {name: self.job(name, raw) for name, raw in configs.items()}
        canonical: dict[str, str] = {}
        first_of: dict[str, str] = {}
        for name, job in jobs.items():
            canonical[name] = first_of.setdefault(config_to_toml(job.config()), name)
        unique = [jobs[name] for name in dict.fromkeys(canonical.values())]
        outcomes = run_local(
            unique, workers, log=self.log, progress_factory=self.progress_factory, on_done=self._log_outcome
        )
        for outcome in outcomes.values():
            if outcome.exception is not None:
                raise outcome.exception
        return {name: load_run(self.out / "runs" / canonical[name]) for name in configs}

    def _log_outcome(self, outcome) -> None:
        if outcome.action != "reused":
            self.log(f"{outcome.name} ({outcome.error or outcome.status}): done")

    def _progress(self, label: str):
        if self.progress_factory is None:
            from contextlib import nullcontext

            return nullcontext(None)
        return self.progress_factory(label)

    def figure(self, name: str) -> Path:
        """Where figure `name` goes: OUT/figures/<name>.png."""
        return self.out / "figures" / f"{name}.png"

    def save_table(self, name: str, columns: dict[str, Any]) -> Path:
        """Write `columns` (name → equal-length sequence) as OUT/tables/<name>.parquet;
        returns its path."""
        path = self.out / "tables" / f"{name}.parquet"
        write_parquet(path, pa.table({k: np.asarray(v) for k, v in columns.items()}))
        return path

    def load_table(self, name: str) -> dict[str, np.ndarray]:
        """Table `name` read back from OUT/tables/<name>.parquet, column name → numpy array."""
        table = read_parquet(self.out / "tables" / f"{name}.parquet", RERUN)
        return {c: table[c].to_numpy() for c in table.column_names}


def selected(name: str, only: str | None) -> bool:
    """`--only PATTERN`: a glob (`batch-norm-*`) or a plain substring (`batch-norm`)."""
    return (
        only is None
        or fnmatch.fnmatchcase(name, only)
        or (not any(c in only for c in "*?[") and only in name)
    )


RERUN = "run the same `sgdlab reproduce` command again to rebuild it"


def check_selection(name: str, scale: str, only: str | None) -> None:
    """A UserError when `--only PATTERN` selects none of the runs and parts experiment
    `name` plans at `scale` (its registered `plan`; an experiment without one is checked by
    `reproduce` once it has run)."""
    if only is None:
        return
    planner = experiments.get(name, "experiment").extra.get("plan")
    planned = planner(scale) if planner is not None else None
    if planned is None:
        return
    names = [*planned.runs, *planned.simulations]
    if not any(selected(n, only) for n in names):
        raise nothing_selected(name, scale, only)


def _remove_new(out: Path, new: bool) -> None:
    """Remove `out` if this invocation created it (an `--only` that selected nothing)."""
    if new:
        shutil.rmtree(out, ignore_errors=True)


def nothing_selected(name: str, scale: str, only: str) -> UserError:
    """The error of an `--only PATTERN` that selects nothing."""
    return UserError(f"--only: {quote(only)} selects none of the runs and parts of {name} at scale {scale}")


def reproduce(
    name: str,
    out: str | Path,
    scale: str = "cpu",
    device: str = "auto",
    log: Progress | None = None,
    progress_factory: Callable | None = None,
    only: str | None = None,
) -> list[Claim]:
    """Run experiment `name` at `scale` into `out` (only the runs and parts `only` selects);
    returns its claims (also in claims.json), each citing the experiment's paper, and writes
    OUT/report.html.

    Checked before anything is written: the experiment and scale exist, the device is there
    (`cuda` without a GPU is a UserError), `out` is a directory or can be one, and `only`
    selects some run or part."""
    from ..build import resolve_device
    from ..report.html import write_report
    from ..runner import environment, versions

    entry = experiments.get(name, "experiment")
    if scale not in SCALES:
        raise UserError(f"--scale: {quote(scale)} is not one of {', '.join(SCALES)}")
    resolve_device(device)
    check_selection(name, scale, only)
    paper = entry.extra.get("paper")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    new = not out.exists()
    lab = Lab(out, scale, device, log, progress_factory, only)
    t0 = time.perf_counter()
    try:
        made = entry.factory(lab)
    except Exception:
        if only is not None and lab.asked and not lab.matched:  # it failed for want of a run
            _remove_new(out, new)
            raise nothing_selected(name, scale, only) from None
        raise
    if only is not None and lab.asked and not lab.matched:
        _remove_new(out, new)
        raise nothing_selected(name, scale, only)
    claims = [c if c.source or paper is None else replace(c, source=str(paper)) for c in made]
    write_json(lab.out / "claims.json", [asdict(c) for c in claims])
    write_json(
        lab.out / "experiment.json",
        {
            "experiment": name,
            "scale": scale,
            "device": device,
            "only": only,
            "paper": str(paper) if paper is not None else None,
            "help": entry.help,
            "versions": versions(),
            "environment": environment(),
            "wall_time_s": round(time.perf_counter() - t0, 2),
            "verdicts": {v: sum(c.verdict == v for c in claims) for v in VERDICTS},
        },
    )
    write_report(lab.out)
    return claims


CLAIM_FIELDS = {
    "id": str,
    "statement": str,
    "verdict": str,
    "evidence": dict,
    "headline": str,
    "meaning": str,
    "source": str,
}
EXPERIMENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "experiment": str,
    "scale": str,
    "device": str,
    "only": str,
    "paper": str,
    "help": str,
    "versions": dict,
    "environment": dict,
    "wall_time_s": float,
    "verdicts": dict,
}


def load_claims(out: str | Path) -> list[Claim]:
    """The claims a `reproduce` run wrote to OUT/claims.json; DamagedFile when the file cannot
    be read or a claim is not one (a field missing or of the wrong type, an unknown verdict)."""
    path = Path(out) / "claims.json"
    claims = []
    for i, raw in enumerate(read_json(path, list, RERUN)):
        if not isinstance(raw, dict) or set(raw) != set(CLAIM_FIELDS):
            raise DamagedFile(path, f"entry {i} is not a claim (fields {', '.join(CLAIM_FIELDS)})", RERUN)
        for key, tp in CLAIM_FIELDS.items():
            if not isinstance(raw[key], tp):
                raise DamagedFile(path, f"entry {i}: {key!r} is not a {tp.__name__}", RERUN)
        if raw["verdict"] not in VERDICTS:
            verdict = quote(raw["verdict"], 40)
            raise DamagedFile(
                path, f"entry {i}: verdict {verdict} is not one of {', '.join(VERDICTS)}", RERUN
            )
        claims.append(Claim(**raw))
    return claims


def load_record(out: str | Path) -> dict[str, Any]:
    """OUT/experiment.json (name, scale, device, paper, versions, wall time), checked; {} when
    there is none, DamagedFile when it cannot be read."""
    from ..store.files import check_fields

    path = Path(out) / "experiment.json"
    if not path.is_file():
        return {}
    record = read_json(path, dict, RERUN)
    check_fields(record, EXPERIMENT_FIELDS, path, RERUN)
    return record
