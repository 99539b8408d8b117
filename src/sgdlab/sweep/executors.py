"""Bringing many independent runs to an end: one run per process, on this machine or on a Ray
cluster. Shared by reproductions (`Lab.run_many`) and sweeps (`sgdlab sweep`).

A `Job` is a run directory and the raw config it should hold. `ensure(job)` reuses the run
there when it finished with exactly this config and its files are intact, resumes it when it
was cut off (killed, interrupted, failed) or a file of it is damaged (`runner.resume` rebuilds
it), and trains it otherwise. Executors run `ensure` for many jobs and report
each `Outcome` as it arrives; an exception inside one run is recorded in its outcome (and in its
run directory's summary), never stops the others.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Callable, Iterable

from ..build import resolve
from ..config import Config, config_to_toml, load_config
from ..errors import UserError
from ..store import RunDir
from ..store.run_dir import GONE

FINISHED = ("completed", "diverged")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """Train config `raw` (a raw config dict, as a TOML file holds it) into run directory `path`."""

    name: str
    path: Path
    raw: dict[str, Any]

    def config(self) -> Config:
        """The resolved config. `device = "cuda"` is kept without asking this process for a
        GPU: a Ray task may train it on another node (the run itself checks)."""
        cfg = load_config(raw=self.raw)
        if cfg.device == "cuda":
            return dataclasses.replace(resolve(dataclasses.replace(cfg, device="cpu")), device="cuda")
        return resolve(cfg)


@dataclass
class Outcome:
    """How a job ended: the run's status, what was done (`reused`, `resumed`, `trained`,
    `retrained` after a config change), and the exception when the run raised one."""

    name: str
    status: str
    action: str = ""
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)


def existing(job: Job) -> tuple[Config, bool, str | None]:
    """(resolved config, whether the run on disk has exactly it, that run's status, or
    `damaged` when its summary cannot be read)."""
    cfg = job.config()
    if not RunDir.is_run(job.path):
        return cfg, False, None
    try:
        same = (job.path / "config.toml").read_bytes() == config_to_toml(cfg).encode("utf-8")
    except OSError:
        same = False
    return cfg, same, RunDir(job.path).status_or_damage()


def reusable(job: Job) -> str | None:
    """The status of `job`'s run when it finished with exactly the job's config and its files
    are intact (`RunDir.damage`), else None."""
    _, same, status = existing(job)
    if same and status in FINISHED and not RunDir(job.path).damage():
        return status
    return None


def ensure(job: Job, log: Log | None = None, progress: Any = None) -> Outcome:
    """Reuse, resume or train `job`'s run; exceptions propagate (see `ensure_caught`)."""
    from .. import runner

    log = log or (lambda message: None)
    cfg, same, status = existing(job)
    if same and status in FINISHED and not RunDir(job.path).damage():
        log(f"{job.name}: reusing the {status} run")
        return Outcome(job.name, status, "reused")
    if RunDir.is_run(job.path) and same:
        log(f"{job.name}: resuming")
        result = runner.resume(job.path, progress=progress, warn=lambda m: log(f"{job.name}: {m}"))
        return Outcome(job.name, result.status, "resumed")
    action = "retrained" if RunDir.is_run(job.path) else "trained"
    log(f"{job.name}: config changed; training again" if action == "retrained" else f"{job.name}: training")
    result = runner.run(cfg, job.path, overwrite=True, progress=progress)
    return Outcome(job.name, result.status, action)


def ensure_caught(job: Job) -> Outcome:
    """`ensure`, with an exception turned into a `failed` outcome (what a worker returns)."""
    try:
        return ensure(job)
    except Exception as exc:  # noqa: BLE001 - recorded, the other runs go on
        return Outcome(job.name, "failed", error=f"{type(exc).__name__}: {exc}", exception=exc)


def reuse_finished(
    jobs: list[Job], done: dict[str, Outcome], on_done: Callable[[Outcome], None] | None, log: Log | None
) -> list[Job]:
    """Record the jobs whose runs already finished with their config; return the others."""
    todo = []
    for job in jobs:
        status = reusable(job)
        if status is not None:
            if log:
                log(f"{job.name}: reusing the {status} run")
            record(done, Outcome(job.name, status, "reused"), on_done)
        else:
            todo.append(job)
    return todo


def run_local(
    jobs: Iterable[Job],
    workers: int | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    log: Log | None = None,
    progress_factory: Callable[[str], Any] | None = None,
) -> dict[str, Outcome]:
    """Every job, `workers` runs at a time (default: one per core). This process trains runs
    one after another (with `log` and progress bars) while `workers - 1` worker processes take
    the others, so a pool of 2 starts one extra process, not two (see `start_method`). Each run
    uses its config's `threads` (1 by default), so results do not depend on how many ran side
    by side. Finished runs are reused without training; Ctrl-C stops every run at a step
    boundary (resumable) and starts no new one."""
    jobs = list(jobs)
    done: dict[str, Outcome] = {}
    queue = deque(reuse_finished(jobs, done, on_done, log))
    total, helpers = len(queue), min(workers or os.cpu_count() or 1, len(queue)) - 1
    if helpers <= 0:
        while queue:
            _record_here(done, _in_process(queue.popleft(), log, progress_factory), on_done)
        return {job.name: done[job.name] for job in jobs}
    results: Queue = Queue()  # (job, future or exception) from the pool, read by this thread
    lock = threading.Lock()
    with ProcessPoolExecutor(
        helpers,
        mp_context=multiprocessing.get_context(start_method(queue)),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    ) as pool:

        def feed() -> None:  # also called from the pool's result thread as each run ends
            with lock:  # held until the job is submitted or back in the queue (see below)
                if not queue:
                    return
                job = queue.pop()  # the helpers take jobs from the back, this process from the front
                try:
                    future = pool.submit(in_worker, job)
                except BrokenProcessPool:  # a worker died: this process trains the job instead
                    queue.append(job)
                    if log:
                        log(f"a worker process died; {job.name} is trained in this process")
                    return
                except Exception as exc:  # noqa: BLE001 - a pool shut down: the job is recorded as failed
                    results.put((job, exc))
                    return
            future.add_done_callback(partial(returned, job))

        def returned(job: Job, future: Future) -> None:  # on the pool's result thread
            results.put((job, future))
            feed()

        def collect(block: bool) -> None:
            while len(done) < len(jobs):
                try:
                    job, result = results.get(block=block)
                except Empty:
                    return
                record(done, _pool_outcome(job, result), on_done)
                if block:
                    return

        if log:
            log(f"{total} runs: this process and {helpers} worker process{'es' if helpers > 1 else ''}")
        try:
            for _ in range(helpers):
                feed()
            # The lock in `feed` makes a job it hands back visible here before this thread can
            # see an empty queue and wait for results that will not come.
            while len(done) < len(jobs):
                collect(block=False)
                with lock:
                    job = queue.popleft() if queue else None
                if job is not None:
                    _record_here(done, _in_process(job, log, progress_factory), on_done)
                elif len(done) < len(jobs):
                    collect(block=True)
        except KeyboardInterrupt:
            with lock:
                queue.clear()  # no new runs; those running stop at their next step boundary
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {job.name: done[job.name] for job in jobs}


def start_method(jobs: Iterable[Job]) -> str:
    """How worker processes start: `fork` on Linux when every run is single-threaded on the
    CPU, `spawn` otherwise.

    A forked worker starts in milliseconds with torch already imported; a spawned one imports
    torch and sgdlab again (2–3 s of a core, a third of a short run). Fork is safe here only
    because the worker's runs use one thread: a child of a process whose OpenMP pool has run
    with several threads hangs in its first multi-threaded OpenMP region (libgomp keeps the
    parent's dead pool), and CUDA cannot be initialised in a forked child at all. Other
    platforms' system libraries are not fork-safe, so they always spawn."""
    if sys.platform != "linux":
        return "spawn"
    single_threaded_cpu = all(cfg.threads == 1 and cfg.device == "cpu" for cfg in (j.config() for j in jobs))
    return "fork" if single_threaded_cpu else "spawn"


def _record_here(
    done: dict[str, Outcome], outcome: Outcome, on_done: Callable[[Outcome], None] | None
) -> None:
    """Record a run trained in this process; a run stopped by Ctrl-C stops the others too."""
    record(done, outcome, on_done)
    if outcome.status == "interrupted":
        raise KeyboardInterrupt


def _pool_outcome(job: Job, result: Any) -> Outcome:
    if isinstance(result, BaseException):
        return died(job, result)
    try:
        return result.result()
    except Exception as exc:  # noqa: BLE001 - the worker process itself died
        return died(job, exc)


class WorkerDied(UserError):
    """A run's worker process died (killed, out of memory): running the same command again
    resumes the run from its latest state."""


def died(job: Job, exc: BaseException) -> Outcome:
    """The outcome of a job whose worker process died (killed, out of memory). Its run
    directory, left `running` by the dead worker, is marked `failed` with the reason."""
    error = f"worker died: {type(exc).__name__}: {exc}"
    mark_failed(job.path, error)
    return Outcome(
        job.name,
        "failed",
        error=error,
        exception=WorkerDied(f"{job.name}: {error}; run the same command again to continue"),
    )


DEAD_LOCK_GRACE_S = 5.0  # a killed process's lock outlives its death notice by a few ms


def mark_failed(path: Path, error: str) -> None:
    """Record `error` in the summary of the run at `path` if it was left `running` by a process
    that no longer holds it (or a reader already marked it `interrupted` for that; a live
    holder keeps its run as it is). The pool may hear of a
    worker's death before the kernel has closed that worker's lock file, so the lock is retried
    for a few seconds before the holder counts as alive."""
    if not RunDir.is_run(path):
        return
    run_dir = RunDir(path)
    deadline = time.monotonic() + DEAD_LOCK_GRACE_S
    while True:
        try:
            run_dir.lock()
            break
        except UserError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
    try:
        summary = run_dir.read_summary()
        gone = summary.get("status") == "interrupted" and summary.get("error") == GONE  # a reader saw it
        if summary.get("status") == "running" or gone:
            run_dir.write_summary(dict(summary, status="failed", error=error))
    except (OSError, UserError):
        pass  # a damaged summary is rebuilt when the run is resumed
    finally:
        run_dir.unlock()


# ---------------------------------------------------------------------------------------
# In a worker process. A pool's worker waits on a queue whose other end it also holds, so it
# never notices that the process that started it is gone: killed with SIGKILL, that process
# would leave its workers training (and holding their runs' locks) for as long as the run
# lasts, then idle forever. Each worker therefore watches its parent.

_busy = threading.Event()  # set while this worker runs a job
PARENT_POLL_S = 0.2
ORPHAN_GRACE_S = 30.0


def watch_parent(parent: int) -> None:
    """Pool initializer: a daemon thread that ends this worker once `parent` is gone."""
    threading.Thread(target=_watch, args=(parent,), name="sgdlab-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is re-parented (to init or a subreaper)
        time.sleep(PARENT_POLL_S)
    if _busy.is_set():
        # As Ctrl-C would: the run stops at its next step boundary, resumable, and says so.
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while _busy.is_set() and time.monotonic() < deadline:
            time.sleep(PARENT_POLL_S)
    os._exit(1)


def in_worker(job: Job) -> Outcome:
    """What a pool worker runs: `ensure_caught`, marked busy for the parent watch."""
    _busy.set()
    try:
        return ensure_caught(job)
    finally:
        _busy.clear()


def _in_process(job: Job, log: Log | None, progress_factory: Callable[[str], Any] | None) -> Outcome:
    from contextlib import nullcontext

    try:
        with progress_factory(job.name) if progress_factory else nullcontext(None) as progress:
            return ensure(job, log, progress)
    except Exception as exc:  # noqa: BLE001 - recorded, the other runs go on
        return Outcome(job.name, "failed", error=f"{type(exc).__name__}: {exc}", exception=exc)


def record(done: dict[str, Outcome], outcome: Outcome, on_done: Callable[[Outcome], None] | None) -> None:
    """Keep a job's outcome and tell `on_done` (a sweep rewrites its index there)."""
    done[outcome.name] = outcome
    if on_done is not None:
        on_done(outcome)
