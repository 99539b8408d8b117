"""What every reproduction works with: the `Lab` (its directory, scale and device; cached runs,
tables and figures) and the helpers its claims share. An experiment is a registered function
`run(lab: Lab) -> list[Claim]` (`experiments.registry`): it asks the lab to train configs (or
simulates directly), saves what it measured as tables, draws figures from them, and decides
each claim from the measured numbers. `sgdlab reproduce NAME` (`experiments.reproduce`) writes
everything under one directory:

  DIR/experiment.json   name, scale, device, paper, versions, wall time (`store.records`)
  DIR/claims.json       [{id, statement, verdict, evidence, headline, meaning, source}]
  DIR/runs/<name>/      one sgdlab run directory per trained config
  DIR/tables/*.parquet  other measurements (simulations, aggregates); <name>.json beside a
                        simulated group records the settings it was computed for
  DIR/figures/*.png     every figure, with its .svg beside it

Every reproduction has the same five roles, one module (or subpackage) each: `settings` (what
each scale runs), `configs` (the run configs of a scale), `measure` (runs and simulations →
plain numbers and tables), `claims` (one function per claim, from plain numbers to a Claim) and
`figures` (from tables and runs to figures); its `__init__` registers `run`, which wires them
through the Lab.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import torch

from ..config import config_to_toml
from ..errors import DamagedFile, UserError
from ..store import Run, load_run
from ..store.claims import RERUN, Claim, decide, load_claims, not_applicable, plain
from ..store.figures import save_figure
from ..store.files import read_json, read_parquet, write_json, write_parquet
from ..store.records import load_record
from ..sweep.executors import Job, ensure, run_local
from .registry import SCALES, Plan, Simulation, experiments

# Names the reproduction packages import from here (kept so that they have one place to look).
__all__ = [
    "RERUN",
    "SCALES",
    "Claim",
    "Lab",
    "Plan",
    "Progress",
    "Simulation",
    "decide",
    "divergence",
    "divergences",
    "experiments",
    "load_claims",
    "load_record",
    "missing_runs",
    "not_applicable",
    "one_thread",
    "plain",
    "selected",
    "settings_record",
]

Progress = Callable[[str], None]


def missing_runs(needed: list[str] | tuple[str, ...], runs: dict[str, Any]) -> list[str]:
    """The names in `needed` that `runs` lacks (not selected by --only, or not trained)."""
    return [name for name in needed if name not in runs]


def divergence(name: str, run: Any) -> str | None:
    """The reason "run NAME diverged at step k" when `run` ended `diverged` (its loss or
    parameters became NaN/inf), else None: what a claim that needs the run gives instead of a
    number."""
    if run.status != "diverged":
        return None
    return f"run {name} diverged at step {run.info.diverged_at}"


def divergences(runs: dict[str, Any]) -> list[str]:
    """`divergence` of every run in `runs` that diverged."""
    return [why for name, run in runs.items() if (why := divergence(name, run)) is not None]


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


def selected(name: str, only: str | None) -> bool:
    """`--only PATTERN`: a glob (`batch-norm-*`) or a plain substring (`batch-norm`)."""
    return (
        only is None
        or fnmatch.fnmatchcase(name, only)
        or (not any(c in only for c in "*?[") and only in name)
    )


def settings_record(settings: Any) -> Any:
    """`settings` (a dataclass, or plain values) as plain JSON values: what a simulated group
    of tables records it was computed for."""
    is_instance = dataclasses.is_dataclass(settings) and not isinstance(settings, type)
    value = dataclasses.asdict(settings) if is_instance else settings
    return json.loads(json.dumps(value))


Tables = dict[str, dict[str, Any]]


class Lab:
    """What an experiment works with: its directory, scale and device; runs that are reused
    when finished and resumed when cut off; simulated tables computed once per settings;
    tables and figures (PNG + SVG) saved under the directory."""

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

    # --- what this invocation covers -----------------------------------------------------
    def selected(self, name: str) -> bool:
        """Whether run or part `name` is in this invocation (`--only PATTERN`)."""
        chosen = selected(name, self.only)
        self.asked, self.matched = True, self.matched or chosen
        return chosen

    # --- runs ----------------------------------------------------------------------------
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
            return nullcontext(None)
        return self.progress_factory(label)

    # --- tables --------------------------------------------------------------------------
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

    def simulate_once(self, name: str, settings: Any, compute: Callable[[], Tables], message: str) -> None:
        """The tables of a simulation, computed once per settings: when OUT/tables/<name>.json
        records these `settings` (`settings_record`), the tables saved with it are kept (and
        the reuse logged); otherwise `message` is logged, `compute()` → {table: columns} runs
        and each table is saved (`save_table`), then the record. Read them with `load_table`."""
        record = self.out / "tables" / f"{name}.json"
        wanted = settings_record(settings)
        if record.is_file() and self._recorded(record) == wanted:
            self.log(f"{name}: reusing the simulated tables")
            return
        self.log(message)
        for table, columns in compute().items():
            self.save_table(table, columns)
        write_json(record, wanted)

    @staticmethod
    def _recorded(record: Path) -> Any:
        try:
            return read_json(record, object)
        except DamagedFile:
            return None  # computed again, and recorded anew

    # --- figures -------------------------------------------------------------------------
    def figure(self, name: str) -> Path:
        """Where figure `name` goes: OUT/figures/<name>.png (its SVG beside it)."""
        return self.out / "figures" / f"{name}.png"

    def save_figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save the matplotlib figure `fig` as OUT/figures/<name>.png and .svg and close it;
        returns the PNG's path."""
        return save_figure(fig, self.figure(name), dpi=dpi)
