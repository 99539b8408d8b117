"""Runs as Ray tasks: `--ray auto` joins the running cluster (`ray start --head` on one node,
`ray start --address=HEAD:6379` on the others), `--ray local` starts a one-machine cluster for
this sweep, `--ray HOST:PORT` / `ray://HOST:10001` joins that one.

Each run is one task asking for its config's `threads` CPUs, and one GPU when its `device` is
`"cuda"`. Tasks write their run directories themselves, so the output directory must be one
path that every node sees (a shared file system); sgdlab must be installed on every node.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from ..errors import UserError
from .executors import Job, Log, Outcome, died, ensure_caught, record, reuse_finished


def import_ray() -> Any:
    """The `ray` module, or a one-line error saying how to install the extra."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray: Ray is not installed; pip install 'sgdlab[ray]'") from None
    return ray


def connect(ray: Any, address: str) -> bool:
    """Join or start the cluster; True when this call connected (and so should disconnect).
    An already connected process (e.g. a test's cluster) is used as it is."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        hint = " (start one with `ray start --head`, or use --ray local)" if address == "auto" else ""
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster{hint}: {exc}") from None
    return True


@contextmanager
def ray_session(address: str) -> Iterator[Any]:
    """Connected to the cluster for the block (disconnecting only if this opened it)."""
    ray = import_ray()
    connected = connect(ray, address)
    try:
        yield ray
    finally:
        if connected:
            ray.shutdown()


def resources(job: Job) -> dict[str, float]:
    """What a job's Ray task asks for: one CPU per torch thread, and a GPU for a CUDA run."""
    cfg = job.config()
    return {"num_cpus": cfg.threads, "num_gpus": 1 if cfg.device == "cuda" else 0}


def run_ray(
    jobs: Iterable[Job],
    address: str,
    on_done: Callable[[Outcome], None] | None = None,
    log: Log | None = None,
) -> dict[str, Outcome]:
    """Every job as a Ray task; outcomes are reported as tasks finish."""
    ray = import_ray()
    jobs = list(jobs)
    done: dict[str, Outcome] = {}
    todo = reuse_finished(jobs, done, on_done, log)
    if not todo:
        return {job.name: done[job.name] for job in jobs}
    with ray_session(address):
        task = ray.remote(max_retries=0)(ensure_caught)
        pending = {task.options(**resources(job)).remote(job): job for job in todo}
        if log:
            cpus = ray.cluster_resources().get("CPU", 0)
            log(f"{len(todo)} runs as Ray tasks on a cluster with {cpus:g} CPUs")
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - the task's worker died
                outcome = died(job, exc)
            record(done, outcome, on_done)
    return {job.name: done[job.name] for job in jobs}
