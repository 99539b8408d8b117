"""Running and resuming: config → parts → engine → store. The library API behind the CLI.

Probes that need θ* (the final iterate, e.g. `gamma`) make a run two-phase: pass 1 trains
with every other probe and records the minibatch loss of each step; pass 2 (`RUN/replay/`)
re-runs the identical trajectory from θ_0 with only those probes, checking each step's loss
against pass 1, and its columns are merged into `RUN/metrics.parquet`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn

from . import __version__
from .build import build_parts, resolve
from .config import Config, ProbesConfig, config_to_toml, load_config
from .data import Dataset
from .engine import Outcome, Parts, train
from .engine.loop import Progress
from .errors import DamagedFile, UserError, clip
from .params import flat_params
from .probes import Probe, Reference
from .probes.basic import BatchLoss
from .probes.gamma import ReplayError
from .store import MetricsLog, Recorder, RunDir
from .store.files import DiskFull, remove_checkpoint
from .store.metrics import merge_tables
from .store.run_dir import FINISHED

FINAL_KEYS = ("train_loss", "train_error", "test_loss", "test_error")
REPLAY_DIR = "replay"


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
    def status(self) -> str:
        """completed, diverged or interrupted (a failed run raises instead of returning)."""
        return self.summary.get("status", "unknown")


def versions() -> dict[str, str]:
    """Python, torch, numpy and sgdlab versions, and sgdlab's git commit when it runs from a
    checkout: recorded in every summary so a result can be traced to the code that made it."""
    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sgdlab": __version__,
    }
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode == 0:
            out["sgdlab_git"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def environment() -> dict[str, object]:
    """Where something ran: platform, CPU model and count, torch threads, CUDA devices."""
    import os

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    cuda = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": cuda,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


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
        "started_at": _now(),
        "resumes": 0,
    }


Warn = Callable[[str], None]


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
    run_dir.lock()
    try:
        run_dir.remove_temporaries()  # what a killed writer left; we hold the lock, nobody writes
        cfg = resolve(run_dir.read_config())
        parts = build_parts(cfg, model=model, data=data)
        init = _recorded_init(run_dir, parts, warn)
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
            init = _start_over(run_dir, parts, recorder)
        else:
            parts.model.load_state_dict(init)
            recorder.metrics = MetricsLog(run_dir.read_metrics())
            if recorder.summary.get("phase") != "replay":
                state = _latest_state(run_dir, recorder.summary, warn)
                step = int(state["step"]) if state is not None else 0
                recorder.metrics.truncate(step)
                recorder.summary["steps"] = step
    except BaseException:
        run_dir.unlock()
        raise
    phase = "replay" if recorder.summary.get("phase") == "replay" else "train"
    return _execute(parts, recorder, init, state, progress, phase=phase)


def _recorded_init(run_dir: RunDir, parts: Parts, warn: Warn) -> dict[str, torch.Tensor] | None:
    """θ_0 as init.pt recorded it, checked against the one the config builds now; None (with a
    warning) when init.pt is damaged, so that the run starts over."""
    try:
        init = run_dir.load("init.pt")
    except DamagedFile as exc:
        warn(f"{exc}; training the run again from θ_0, rebuilt from the config")
        return None
    except UserError:  # no init.pt: deleted, or killed before it was written
        warn(f"{run_dir.checkpoints / 'init.pt'}: missing; training the run again from θ_0")
        return None
    rebuilt = parts.model.state_dict()
    if (
        not isinstance(init, dict)
        or init.keys() != rebuilt.keys()
        or any(not torch.equal(init[k].cpu(), rebuilt[k].cpu()) for k in init)
    ):
        raise UserError(
            f"{run_dir.path}: this sgdlab builds a different θ_0 for the run's config than the "
            "run recorded (the code changed?); cannot resume it bit-identically"
        )
    return init


def _start_over(run_dir: RunDir, parts: Parts, recorder: Recorder) -> dict[str, torch.Tensor]:
    """Clear what a run trained (states, iterates, final.pt, replay pass, metrics) and record
    θ_0 again: a run whose records are damaged is trained again from the start."""
    for _, path in run_dir.states():
        remove_checkpoint(path)
    remove_checkpoint(run_dir.checkpoints / "final.pt")
    shutil.rmtree(run_dir.checkpoints / "iterates", ignore_errors=True)
    shutil.rmtree(run_dir.path / REPLAY_DIR, ignore_errors=True)
    run_dir.metrics_path.unlink(missing_ok=True)
    recorder.metrics = MetricsLog()
    recorder.summary.update(steps=0)
    for key in ("phase", "final", "stop_reason", "diverged_at", "last_finite", "probes", "skipped_states"):
        recorder.summary.pop(key, None)
    init = {k: v.detach().clone() for k, v in parts.model.state_dict().items()}
    recorder.save("init.pt", init)
    return init


def _latest_state(
    run_dir: RunDir, summary: dict[str, Any] | None = None, warn: Warn | None = None
) -> dict[str, Any] | None:
    """The newest good resumable state; damaged newer ones are skipped, noted in `summary`
    and reported through `warn`, one line naming the state used instead."""
    state, used, skipped = run_dir.latest_state()
    if skipped and summary is not None:
        summary.setdefault("skipped_states", []).extend(exc.path.name for exc in skipped)
    if skipped and warn is not None:
        instead = f"resuming from {used} instead" if used else "no intact state is left: resuming from θ_0"
        names = ", ".join(exc.problem if i else str(exc) for i, exc in enumerate(skipped))
        warn(f"{names}; {instead}")
    return state


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
                first, recorder, theta0=_theta0(parts.model, init_state), state=state, progress=progress
            )
            _record(first, recorder, outcome)
            if outcome.status == "completed":
                recorder.save("final.pt", parts.model.state_dict())
            if not replayed or outcome.status != "completed":
                return _finish(parts, recorder)
            summary.update(status="running", phase="replay")  # completed only once merged
            recorder.flush()
        _replay(parts, replayed, recorder, init_state, progress)
        return _finish(parts, recorder)
    except BaseException as exc:
        # Ctrl-C and a full disk stop a run that can go on (`sgdlab resume`); anything else fails it.
        interrupted = isinstance(exc, (KeyboardInterrupt, DiskFull))
        summary.update(
            status="interrupted" if interrupted else "failed",
            error=str(exc) if isinstance(exc, UserError) else clip(f"{type(exc).__name__}: {exc}"),
            finished_at=_now(),
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


def _theta0(model: nn.Module, init_state: dict[str, torch.Tensor]) -> torch.Tensor:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return torch.cat([init_state[n].reshape(-1) for n, _ in model.named_parameters() if n in names]).to(
        next(model.parameters()).device, next(model.parameters()).dtype
    )


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


def _record(parts: Parts, recorder: Recorder, outcome: Outcome) -> None:
    spe = parts.sampler.steps_per_epoch
    recorder.summary.update(
        status=outcome.status,
        steps=outcome.steps,
        epochs=outcome.steps / spe,
        stop_reason=outcome.stop_reason,
        wall_time_s=round(outcome.wall_time, 3),
        finished_at=_now(),
    )
    if outcome.status != "interrupted":
        recorder.summary["final"] = {k: outcome.final.get(k) for k in FINAL_KEYS} | outcome.final
    if outcome.diverged_at is not None:
        recorder.summary["diverged_at"] = outcome.diverged_at
        recorder.summary["last_finite"] = recorder.metrics.last_values(finite=True)
    if outcome.probe_summaries:
        recorder.summary.setdefault("probes", {}).update(outcome.probe_summaries)


def _replay(
    parts: Parts,
    replayed: list[Probe],
    recorder: Recorder,
    init_state: dict[str, torch.Tensor],
    progress: Progress | None,
) -> None:
    """Pass 2: θ_0 again, only the θ*-probes, the same number of steps, verified step by step."""
    cfg = parts.config
    summary = recorder.summary
    steps = int(summary["steps"])
    table = recorder.metrics.table()
    reference = Reference(
        _final_params(parts, recorder),
        _loss_per_step(table, steps),
        str(recorder.run_dir.path) if recorder.run_dir else "memory",
    )
    replay_cfg = dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, epochs=None, max_steps=steps, stop_loss=None),
        probes=ProbesConfig(
            use=tuple(p.name for p in replayed),
            options={p.name: cfg.probes.options[p.name] for p in replayed},
        ),
    )
    parts.model.load_state_dict(init_state)
    replay_parts = build_parts(replay_cfg, model=parts.model, data=parts.data)
    replay_dir, state, rows = _replay_dir(recorder.run_dir, config_to_toml(replay_cfg))
    metrics = MetricsLog(rows)
    if state is not None:
        metrics.truncate(int(state["step"]))
    replay_recorder = Recorder(replay_dir, cfg.checkpoint, metrics)
    replay_recorder.summary = {"status": "running", "phase": "replay", "of": reference.source}
    try:
        outcome = train(
            replay_parts,
            replay_recorder,
            theta0=_theta0(parts.model, init_state),
            reference=reference,
            state=state,
            progress=progress,
        )
    except ReplayError as exc:  # the two passes disagree: the run fails, and says where
        summary["replay"] = {"verified": False, "reason": str(exc)}
        raise
    finally:
        if replay_dir is not None:
            replay_dir.unlock()
    _record(replay_parts, replay_recorder, outcome)
    replay_recorder.flush()
    if outcome.status != "completed":
        summary.update(status=outcome.status, stop_reason=f"replay {outcome.stop_reason}")
        return
    recorder.metrics = MetricsLog(merge_tables(table, replay_recorder.metrics.table()))
    summary.setdefault("probes", {}).update(outcome.probe_summaries)
    summary["replay"] = replay_verdict(outcome.probe_summaries)
    summary.update(status="completed", replay_wall_time_s=round(outcome.wall_time, 3))
    summary.pop("phase", None)
    if replay_dir is not None:
        shutil.rmtree(replay_dir.checkpoints, ignore_errors=True)


def _replay_dir(
    run_dir: RunDir | None, text: str
) -> tuple[RunDir | None, dict[str, Any] | None, pa.Table | None]:
    """The replay pass's run directory (locked, as its parent is), the state to continue it
    from and its metrics so far: an earlier pass with the same config is continued from its
    latest intact state; one that is damaged, or of another config, is started again."""
    if run_dir is None:
        return None, None, None
    path = run_dir.path / REPLAY_DIR
    if RunDir.is_run(path) and (path / "config.toml").read_bytes() == text.encode("utf-8"):
        replay_dir = RunDir(path)
        replay_dir.lock()
        state = _latest_state(replay_dir)
        try:
            rows = replay_dir.read_metrics() if state is not None else None
            if state is None or rows is not None:
                return replay_dir, state, rows
        except DamagedFile:
            pass
        replay_dir.unlock()
    replay_dir = RunDir.create(path, text, overwrite=True)
    replay_dir.lock()
    return replay_dir, None, None


def replay_verdict(probe_summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """summary["replay"] of a completed two-phase run: the replay repeated pass 1 (verified), on
    how many steps its minibatch loss was checked against pass 1's and the largest difference
    (0.0: bit for bit); a replay that disagrees fails the run with a ReplayError instead, and
    summary["replay"] then holds verified = False and the reason."""
    checked = [s for s in probe_summaries.values() if "replay_checked_steps" in s]
    return {
        "verified": True,
        "checked_steps": max((s["replay_checked_steps"] for s in checked), default=0),
        "max_loss_diff": max((s["replay_max_loss_diff"] for s in checked), default=0.0),
    }


def _final_params(parts: Parts, recorder: Recorder) -> torch.Tensor:
    if recorder.run_dir is not None:
        parts.model.load_state_dict(recorder.run_dir.load("final.pt"))
    return flat_params(parts.model)


def _loss_per_step(table: pa.Table, steps: int) -> torch.Tensor:
    losses = torch.full((steps,), float("nan"), dtype=torch.float64)
    rows = table.filter(pc.is_valid(table["batch_loss"]))
    idx = torch.tensor(rows["step"].to_numpy(), dtype=torch.long)
    keep = idx < steps
    losses[idx[keep]] = torch.tensor(rows["batch_loss"].to_numpy(), dtype=torch.float64)[keep]
    return losses


def _finish(parts: Parts, recorder: Recorder) -> RunResult:
    recorder.flush()
    path = recorder.run_dir.path if recorder.run_dir is not None else None
    return RunResult(path, recorder.summary, recorder.metrics.table(), parts)
