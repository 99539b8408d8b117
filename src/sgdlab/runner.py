"""Running and resuming: config → parts → engine → store. The library API behind the CLI.

Probes that need θ* (the final iterate, e.g. `gamma`) make a run two-phase: pass 1 trains
with every other probe and records the minibatch loss of each step; pass 2 (`RUN/replay/`,
`sgdlab.two_pass`) re-runs the identical trajectory from θ_0 with only those probes, checking
each step's loss against pass 1, and its columns are merged into `RUN/metrics.parquet`. What a
resumed run continues from is `sgdlab.resuming`'s.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from torch import nn

from .build import build_parts, resolve
from .config import Config, config_to_toml, load_config
from .data import Dataset
from .engine import Parts, train
from .engine.loop import Progress
from .errors import UserError, clip
from .probes import Probe
from .probes.basic import BatchLoss
from .resuming import Warn, latest_state, recorded_init, start_over
from .store import MetricsLog, Recorder, RunDir, RunSummary
from .store.files import DiskFull
from .store.provenance import now, versions
from .store.run_dir import FINISHED, REPLAY_DIR
from .two_pass import FINAL_KEYS, record_outcome, replay_pass, theta0

__all__ = ["FINAL_KEYS", "REPLAY_DIR", "RunResult", "as_config", "prepare", "resume", "run", "start"]


@dataclass
class RunResult:
    """What `run`, `start` and `resume` return.

    Attributes:
        path: the run directory, or None for a run kept in memory.
        summary: what summary.json holds: status, steps, epochs, stop_reason, final metrics
            ("train_loss", "train_error", "test_loss", "test_error", …), seed, n_params,
            timings and versions.
        metrics: the metrics table (`step`, `epoch`, one float64 column per metric, null where
            a metric was not measured), as `load_run` would read it back.
        parts: the parts that trained, the model at θ_final; None when `resume` found the run
            already completed or diverged.
    """

    path: Path | None
    summary: dict[str, Any]
    metrics: pa.Table
    parts: Parts | None  # None when there was nothing to do

    @property
    def info(self) -> RunSummary:
        """The summary as a typed record (`store.summary.RunSummary`)."""
        return RunSummary.from_dict(self.summary)

    @property
    def status(self) -> str:
        """completed, diverged or interrupted (a failed run raises instead of returning)."""
        return self.info.status


def as_config(config: Config | str | Path | dict, overrides: tuple[str, ...] | list[str] = ()) -> Config:
    """A Config from a Config (as is), a TOML file or a dict of TOML tables, with `KEY=VALUE`
    overrides applied (only to a file or dict). Not yet resolved: see `build.resolve`."""
    if isinstance(config, Config):
        if overrides:
            raise ValueError("overrides apply to a TOML file or dict, not to a Config")
        return config
    if isinstance(config, dict):
        return load_config(raw=config, overrides=overrides)
    return load_config(config, overrides)


def prepare(
    config: Config | str | Path | dict,
    overrides: tuple[str, ...] | list[str] = (),
    *,
    model: nn.Module | None = None,
    data: Dataset | None = None,
) -> Parts:
    """Validate and build everything a run needs, without running or writing anything.

    The config is resolved (every default filled in, every name checked against the
    registries) and built into Parts: data, model with θ_0 drawn from the seed, loss, update
    rule, sampler and probes. A bad config fails here with a ConfigError. `start(parts, out)`
    then trains them; `run` is the two in one call. Pass `model` or `data` to use your own
    instead of the config's.
    """
    return build_parts(resolve(as_config(config, overrides)), model=model, data=data)


def run(
    config: Config | str | Path | dict,
    out: str | Path | None = None,
    *,
    overrides: tuple[str, ...] | list[str] = (),
    overwrite: bool = False,
    progress: Progress | None = None,
    model: nn.Module | None = None,
    data: Dataset | None = None,
) -> RunResult:
    """Train from a config (a Config, a TOML path or a dict). With `out`, everything is written
    to that run directory; without, results stay in memory.

    The run directory (see `store.run_dir`) receives the resolved config, θ_0 as init.pt, the
    metrics and summary as training goes, resumable states on the checkpoint policy, and
    final.pt. A run killed or interrupted on the way is continued by `resume(out)`.

    Args:
        config: a Config, the path of a TOML file, or the same tables as a dict. Omitted keys
            take their defaults (`sgdlab list config`).
        out: the run directory to create: a new or empty directory, or (with `overwrite`) one
            holding a run, which is replaced.
        overrides: `KEY=VALUE` strings applied to a TOML or dict config, as `--set` does.
        overwrite: replace a run already in `out` (never a directory that is not a run).
        progress: called with (steps done, last minibatch loss) as training goes.
        model: your own network instead of the config's `model` section.
        data: your own Dataset (e.g. `Dataset.from_tensors`) instead of the config's `data`.

    Returns:
        The RunResult: status, summary, metrics table and the trained parts.

    Raises:
        ConfigError: the config is invalid (before anything is written).
        UserError: `out` cannot be used (not empty and not a run, a run and no `overwrite`,
            or a run another process is writing).

    Example: a small MLP on the bundled `digits` images, one epoch of 8 minibatches.

    >>> import tempfile
    >>> import sgdlab
    >>> config = {
    ...     "seed": 0,
    ...     "data": {"name": "digits", "n_train": 128, "n_test": 64},
    ...     "model": {"name": "mlp", "widths": [16]},
    ...     "optim": {"name": "sgd", "lr": 0.1},
    ...     "train": {"batch_size": 16, "epochs": 1},
    ... }
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = sgdlab.run(config, f"{tmp}/digits-mlp")
    ...     written = sorted(p.name for p in result.path.iterdir())
    ...     checkpoints = sorted(p.name for p in (result.path / "checkpoints").iterdir())
    >>> result.status, result.summary["steps"], result.summary["stop_reason"]
    ('completed', 8, 'epochs')
    >>> result.summary["n_params"]  # 64·16 + 16 + 16·10 + 10
    1210
    >>> result.summary["final"]
    {'train_loss': 2.06..., 'train_error': 0.64..., 'test_loss': 2.21..., 'test_error': 0.79...}
    >>> written
    ['.lock', 'checkpoints', 'config.toml', 'metrics.parquet', 'summary.json']
    >>> checkpoints
    ['final.pt', 'final.pt.sha256', 'init.pt', 'init.pt.sha256']

    The metrics table has a row per step where something was measured: the default probes
    evaluate θ_k on both splits once per epoch and record the minibatch loss every step.

    >>> result.metrics.num_rows, result.metrics.column_names[:6]
    (9, ['step', 'epoch', 'train_loss', 'train_error', 'test_loss', 'test_error'])
    >>> result.metrics["batch_loss"].to_pylist()[:3]
    [2.34..., 2.31..., 2.23...]

    Without `out` nothing is written, and the same seed gives the same numbers:

    >>> again = sgdlab.run(config)
    >>> again.path is None, again.metrics.equals(result.metrics)
    (True, True)
    """
    parts = prepare(config, overrides, model=model, data=data)
    return start(parts, out, overwrite=overwrite, progress=progress)


def start(
    parts: Parts, out: str | Path | None = None, *, overwrite: bool = False, progress: Progress | None = None
) -> RunResult:
    """Train freshly built `parts` (from `prepare`); the run directory is created only now."""
    cfg = parts.config
    run_dir = RunDir.create(out, config_to_toml(cfg), overwrite=overwrite) if out is not None else None
    if run_dir is not None:
        run_dir.lock()
    recorder = Recorder(run_dir, cfg.checkpoint)
    recorder.summary = base_summary(parts)
    init_state = {k: v.detach().clone() for k, v in parts.model.state_dict().items()}
    recorder.save("init.pt", init_state)
    return _execute(parts, recorder, init_state, None, progress)


def base_summary(parts: Parts) -> dict[str, Any]:
    """The summary a run starts with: status running, seed, size, device, versions, start time."""
    cfg = parts.config
    return {
        "status": "running",
        "seed": cfg.seed,
        "n_params": parts.n_params,
        "steps": 0,
        "steps_per_epoch": parts.sampler.steps_per_epoch,
        "device": cfg.device,
        "threads": cfg.threads,
        "versions": versions(),
        "started_at": now(),
        "resumes": 0,
    }


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def resume(
    path: str | Path,
    *,
    progress: Progress | None = None,
    model: nn.Module | None = None,
    data: Dataset | None = None,
    warn: Warn | None = None,
) -> RunResult:
    """Continue a run that was killed or interrupted, from its latest saved state; the result
    is bit-identical to an uninterrupted run (same machine kind and thread count).

    The run's lock is taken (a UserError if another process holds it), temp files a killed
    writer left are removed, and the parts are rebuilt from the recorded config; the rebuilt
    θ_0 must equal init.pt, or the code changed and the run cannot be continued exactly. The
    newest resumable state that matches its checksum is restored (model, optimizer buffers,
    sampler order and generator, probe states, RNGs), metrics rows from its step on are
    dropped, and training continues from there, or from θ_0 when no state was saved. A run
    stopped in the replay pass of a two-phase run continues that pass. A run already
    completed or diverged, with its files intact, is returned as it is, with `parts` None.

    Damaged files are reported through `warn` (one line each; default `warnings.warn`) and
    rebuilt: newer states that do not match their checksums are skipped (and listed in
    summary["skipped_states"]); a damaged summary is rebuilt from the config; a damaged
    final.pt is trained again from the latest state; damaged metrics, init.pt or saved
    iterates make the run start over from θ_0, which gives the same run.

    Pass the same `model` and `data` as the original run if it used your own.
    """
    warn = warn or _warn
    run_dir = RunDir.open(path)
    damaged = run_dir.damage()
    summary = None if any(d.path == run_dir.summary_path for d in damaged) else run_dir.read_summary()
    if summary is not None and summary.get("status") in FINISHED and not damaged:
        return RunResult(run_dir.path, summary, run_dir.read_metrics(), None)
    if summary is not None and summary.get("source") == "attach":
        raise UserError(
            f"{clip(str(run_dir.path))}: written by sgdlab.attach in your own training loop, which "
            "sgdlab cannot rerun; continue it there with sgdlab.attach(..., resume=True)"
        )
    run_dir.lock()
    try:
        run_dir.remove_temporaries()  # what a killed writer left; we hold the lock, nobody writes
        cfg = resolve(run_dir.read_config())
        parts = build_parts(cfg, model=model, data=data)
        init = recorded_init(run_dir, parts, warn)
        recorder = Recorder(run_dir, cfg.checkpoint)
        recorder.summary = {**base_summary(parts), **(summary or {})}
        recorder.summary.update(status="running", resumes=int(recorder.summary["resumes"]) + 1)
        recorder.summary.pop("error", None)
        final = run_dir.checkpoints / "final.pt"
        for d in damaged:
            what = f"{d.path}: damaged ({d.problem})"
            if d.path == run_dir.summary_path:
                warn(f"{what}; it is rebuilt from the config")
            elif d.path == final:
                warn(f"{what}; training the run again from its latest intact state")
                recorder.summary.pop("phase", None)
            elif d.path != run_dir.checkpoints / "init.pt":  # _recorded_init said so
                warn(f"{what}; training the run again from θ_0")
                init = None
        state = None
        if init is None:
            init = start_over(run_dir, parts, recorder)
        else:
            parts.model.load_state_dict(init)
            recorder.metrics = MetricsLog(run_dir.read_metrics())
            if recorder.summary.get("phase") != "replay":
                state = latest_state(run_dir, recorder.summary, warn)
                step = int(state["step"]) if state is not None else 0
                recorder.metrics.truncate(step)
                recorder.summary["steps"] = step
    except BaseException:
        run_dir.unlock()
        raise
    phase = "replay" if recorder.summary.get("phase") == "replay" else "train"
    return _execute(parts, recorder, init, state, progress, phase=phase)


def replayed_probes(probes: list[Probe]) -> list[Probe]:
    """The probes that need θ* (the run's final iterate): they make a run two-phase."""
    return [p for p in probes if "theta_star" in p.needs]


def _execute(
    parts: Parts,
    recorder: Recorder,
    init_state: dict[str, torch.Tensor],
    state: dict[str, Any] | None,
    progress: Progress | None,
    phase: str = "train",
) -> RunResult:
    summary = recorder.summary
    replayed = replayed_probes(parts.probes)
    try:
        if phase == "train":
            first = first_pass(parts) if replayed else parts
            if replayed:
                summary["phase"] = "train"
            recorder.flush()
            outcome = train(
                first, recorder, theta0=theta0(parts.model, init_state), state=state, progress=progress
            )
            record_outcome(first, recorder, outcome)
            if outcome.status == "completed":
                recorder.save("final.pt", parts.model.state_dict())
            if not replayed or outcome.status != "completed":
                return _finish(parts, recorder)
            summary.update(status="running", phase="replay")  # completed only once merged
            recorder.flush()
        replay_pass(parts, replayed, recorder, init_state, progress)
        return _finish(parts, recorder)
    except BaseException as exc:
        # Ctrl-C and a full disk stop a run that can go on (`sgdlab resume`); anything else fails it.
        interrupted = isinstance(exc, (KeyboardInterrupt, DiskFull))
        summary.update(
            status="interrupted" if interrupted else "failed",
            error=str(exc) if isinstance(exc, UserError) else clip(f"{type(exc).__name__}: {exc}"),
            finished_at=now(),
        )
        _record_end(recorder)
        raise
    finally:
        if recorder.run_dir is not None:
            recorder.run_dir.unlock()


def _record_end(recorder: Recorder) -> None:
    """Write the summary of a run that stopped on an exception: with its metrics, or — when the
    disk is full and the atomic rewrite does not fit — in place; the error that stopped the
    run is the one to see, so a write that still fails is left at that."""
    try:
        recorder.flush()
    except (OSError, UserError):
        if recorder.run_dir is not None:
            try:
                recorder.run_dir.write_summary_in_place(recorder.summary)
            except OSError:
                pass


def first_pass_probes(probes: list[Probe]) -> list[Probe]:
    """The probes of pass 1: every probe but the θ*-dependent ones, plus the minibatch loss of
    every step (which the replay checks itself against)."""
    probes = [p for p in probes if "theta_star" not in p.needs]
    losses = [p for p in probes if isinstance(p, BatchLoss)]
    if losses and losses[0].schedule.spec != "step":
        probes[probes.index(losses[0])] = BatchLoss(losses[0].name, "step")
    elif not losses:
        probes.append(BatchLoss("batch_loss", "step"))
    return probes


def first_pass(parts: Parts) -> Parts:
    """Pass 1: `parts` with the probes of `first_pass_probes`."""
    return dataclasses.replace(parts, probes=first_pass_probes(parts.probes))


def _finish(parts: Parts, recorder: Recorder) -> RunResult:
    recorder.flush()
    path = recorder.run_dir.path if recorder.run_dir is not None else None
    return RunResult(path, recorder.summary, recorder.metrics.table(), parts)
