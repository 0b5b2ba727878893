"""Where evaluations run: in process, in local worker processes, or on Ray; and the one loop that
keeps an executor full.

An executor takes groups of :class:`~lossevo.execution.tasks.Task` s (plain data, so they travel to any
process or machine; a group trains as one population where it can, ``surrogate.population``) and
hands back ``(task, Fitness)`` as evaluations finish. :func:`run_tasks` is the only
scheduling loop in lossevo: the search driver, correlation studies, eliminations and the verdict
all feed it tasks through a callback and take each result through another, so none of them knows
where evaluations ran. A worker that dies takes its group with it: the executor reports those
tasks as failed with stop reason ``worker`` and the caller may retry them.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lossevo.errors import LossevoError
from lossevo.execution.tasks import Task, evaluate_group
from lossevo.machine import cpu_cores
from lossevo.results import Fitness, StopReason

log = logging.getLogger(__name__)


def run_tasks(
    executor: Executor,
    next_task: Callable[[], Task | None],
    on_result: Callable[[Task, Fitness], None],
    group: int = 1,
) -> None:
    """Keep ``executor`` full: submit groups of up to ``group`` tasks from ``next_task()`` while it
    has room (``None``: nothing to start now) and hand every result to ``on_result`` as it
    arrives, which may make new tasks ready. Returns when nothing is outstanding and
    ``next_task()`` has nothing more."""
    while True:
        while executor.busy < executor.capacity:
            tasks: list[Task] = []
            while len(tasks) < group and (task := next_task()) is not None:
                tasks.append(task)
            if not tasks:
                break
            executor.submit(tasks)
        if not executor.busy:
            return
        for task, result in executor.wait():
            on_result(task, result)


class Executor:
    """Runs groups of tasks (``busy`` counts groups); :meth:`wait` yields at least one finished
    ``(task, Fitness)``."""

    capacity = 1

    def submit(self, tasks: list[Task]) -> None:
        raise NotImplementedError

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        raise NotImplementedError

    @property
    def busy(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InlineExecutor(Executor):
    """Evaluates in the driver's process, one task at a time (the reproducible default)."""

    def __init__(self) -> None:
        self._groups: list[list[Task]] = []

    def submit(self, tasks: list[Task]) -> None:
        self._groups.append(tasks)

    @property
    def busy(self) -> int:
        return len(self._groups)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        tasks = self._groups.pop(0)
        yield from zip(tasks, evaluate_group(tasks), strict=True)


def _worker_setup(threads: int, devices: Any) -> None:
    """Per worker process: die with the driver (a killed search must not leave workers behind),
    its thread limit (oneDNN threads spin, so oversubscribed CPUs crawl) and, with GPUs, one
    device of its own."""
    import torch

    _die_with_parent()
    torch.set_num_threads(threads)
    if devices is not None:
        try:
            device = devices.get_nowait()
            os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
        except queue.Empty:
            pass


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    import contextlib
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class LocalExecutor(Executor):
    """Worker processes on this machine: one per GPU, or ``workers`` on the CPU, each with
    ``threads`` torch threads."""

    def __init__(self, workers: int | str = "auto", threads: int = 1) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        import torch

        gpus = torch.cuda.device_count()
        cores = cpu_cores()
        if workers == "auto":
            workers = gpus or max(1, cores // max(1, threads))
        if not gpus and int(workers) * threads > cores:  # oversubscribed CPUs crawl (threads spin)
            asked, threads = threads, min(threads, cores)
            fit = max(1, cores // threads)
            log.warning(
                "executor.workers=%s x executor.threads=%d exceeds this machine's %d cores: using %d "
                "worker(s) of %d thread(s)",
                workers,
                asked,
                cores,
                fit,
                threads,
            )
            workers = fit
        self.capacity = int(workers)
        context = mp.get_context("spawn")
        devices = None
        if gpus:
            devices = context.Manager().Queue()
            for i in range(self.capacity):
                devices.put(i % gpus)
        self._make = lambda: ProcessPoolExecutor(
            self.capacity, mp_context=context, initializer=_worker_setup, initargs=(threads, devices)
        )
        self._pool = self._make()
        self._futures: dict[Any, list[Task]] = {}

    def submit(self, tasks: list[Task]) -> None:
        self._futures[self._pool.submit(evaluate_group, tasks)] = tasks

    @property
    def busy(self) -> int:
        return len(self._futures)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        from concurrent.futures import FIRST_COMPLETED, BrokenExecutor
        from concurrent.futures import wait as wait_any

        done, _ = wait_any(list(self._futures), return_when=FIRST_COMPLETED)
        finished: list[tuple[Task, Fitness]] = []
        broken = False
        for future in done:
            tasks = self._futures.pop(future)
            try:
                finished.extend(zip(tasks, future.result(), strict=True))
            except BrokenExecutor as err:
                broken = True
                finished.extend((task, _worker_failure(err)) for task in tasks)
        if broken:  # a dead worker breaks the whole pool: every task in it is lost; start afresh
            for future, tasks in list(self._futures.items()):
                self._futures.pop(future)
                lost = _worker_failure(RuntimeError("the worker pool broke"))
                finished.extend((task, lost) for task in tasks)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._make()
        yield from finished

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Ray tasks on an existing cluster (``address``: ``auto`` or ``host:port``) or, with no
    address, on a Ray instance started here. Each task asks for ``cpus`` and ``gpus``."""

    def __init__(
        self, address: str | None = None, workers: int = 2, cpus: float = 1, gpus: float = 0, threads: int = 1
    ) -> None:
        try:
            import ray
        except ImportError:
            raise LossevoError("executor=ray needs Ray: pip install 'ray[default]'") from None
        self._ray = ray
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, int(workers * cpus)), include_dashboard=False, log_to_driver=False)
        self.capacity = workers
        self._remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(evaluate_with_threads)
        self._threads = threads
        self._refs: dict[Any, list[Task]] = {}

    def submit(self, tasks: list[Task]) -> None:
        self._refs[self._remote.remote(tasks, self._threads)] = tasks

    @property
    def busy(self) -> int:
        return len(self._refs)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        for ref in ready:
            tasks = self._refs.pop(ref)
            try:
                results = self._ray.get(ref)
            except Exception as err:  # the worker died (killed, OOM) or Ray lost the task
                results = [_worker_failure(err)] * len(tasks)
            yield from zip(tasks, results, strict=True)

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()


def evaluate_with_threads(tasks: list[Task], threads: int) -> list[Fitness]:
    """A Ray task's or SLURM job's work: its group of tasks, with a torch thread limit."""
    import torch

    torch.set_num_threads(threads)
    return evaluate_group(tasks)


class SlurmExecutor(Executor):
    """Each group of tasks is one SLURM job, submitted and watched with submitit from the driver,
    which stays the only writer of the journal. ``cluster="local"`` runs the same jobs as local
    processes (submitit's local executor): to try a config, and in tests."""

    def __init__(
        self,
        folder: str,
        workers: int = 8,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        timeout_min: int = 60,
        gpus_per_node: int = 0,
        cpus_per_task: int = 4,
        mem_gb: float | None = None,
        setup: list[str] | None = None,
        additional_parameters: dict[str, Any] | None = None,
        cluster: str = "slurm",
        poll_s: float = 5.0,
    ) -> None:
        import shutil

        try:
            import submitit
        except ImportError:
            raise LossevoError("executor=slurm needs submitit: pip install 'lossevo[slurm]'") from None
        self.capacity, self._threads, self._poll_s = int(workers), int(cpus_per_task), float(poll_s)
        if cluster == "slurm":
            if shutil.which("sbatch") is None:
                raise LossevoError(
                    "executor=slurm: no `sbatch` here; run the search where SLURM commands work (a login "
                    "node), or try the config with local processes: executor.cluster=local"
                )
            params = slurm_parameters(
                partition,
                account,
                qos,
                constraint,
                timeout_min,
                gpus_per_node,
                cpus_per_task,
                mem_gb,
                setup,
                additional_parameters,
            )
            self._executor: Any = submitit.SlurmExecutor(folder=folder)
            script = sbatch_script(folder, params)
            log.info("SLURM: up to %d jobs at once, each submitted as\n%s", workers, script)
        elif cluster == "local":
            params = {
                "timeout_min": timeout_min,
                "gpus_per_node": gpus_per_node,
                "cpus_per_task": cpus_per_task,
            }
            self._executor = submitit.LocalExecutor(folder=folder)
        else:
            raise LossevoError(f"executor.cluster must be slurm or local, got {cluster}")
        self._executor.update_parameters(**params)
        self._jobs: dict[Any, list[Task]] = {}

    def submit(self, tasks: list[Task]) -> None:
        self._jobs[self._executor.submit(evaluate_with_threads, tasks, self._threads)] = tasks

    @property
    def busy(self) -> int:
        return len(self._jobs)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        import time

        while not (done := [job for job in self._jobs if job.done()]):
            time.sleep(self._poll_s)
        for job in done:
            tasks = self._jobs.pop(job)
            try:
                results = job.result()
            except Exception as err:  # killed, pre-empted, out of time or memory: retried by the caller
                lost = _worker_failure(RuntimeError(f"SLURM job {job.job_id}: {err}"))
                results = [lost] * len(tasks)
            yield from zip(tasks, results, strict=True)

    def close(self) -> None:
        for job in self._jobs:
            job.cancel(check=False)
        self._jobs.clear()


def slurm_parameters(
    partition: str | None,
    account: str | None,
    qos: str | None,
    constraint: str | None,
    timeout_min: int,
    gpus_per_node: int,
    cpus_per_task: int,
    mem_gb: float | None,
    setup: list[str] | None,
    additional_parameters: dict[str, Any] | None,
) -> dict[str, Any]:
    """``executor=slurm``'s keys as submitit's SLURM parameters (the sbatch options)."""
    params: dict[str, Any] = {
        "job_name": "lossevo",
        "partition": partition,
        "account": account,
        "qos": qos,
        "constraint": constraint,
        "time": int(timeout_min),
        "gpus_per_node": int(gpus_per_node) or None,
        "cpus_per_task": int(cpus_per_task),
        "mem": f"{mem_gb}GB" if mem_gb else None,
        "setup": list(setup or []) or None,
        "additional_parameters": dict(additional_parameters or {}) or None,
    }
    return {k: v for k, v in params.items() if v is not None}


def sbatch_script(folder: str | Path, params: dict[str, Any]) -> str:
    """The sbatch script submitit writes for a job with ``params`` (logged when a search starts)."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command="python -m submitit.core._submit ...", folder=folder, **params)


def _worker_failure(err: BaseException) -> Fitness:
    detail = (
        f"the evaluating worker died: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    )
    return Fitness.failure(StopReason.WORKER, detail)


def executor_from(cfg: Any) -> Executor:
    """The executor a run's config names (``executor=inline|local|ray|slurm``); inline when it names none."""
    from lossevo.config import build

    node = cfg.get("executor") or {"_target_": "lossevo.execution.executors.InlineExecutor"}
    return build(node, "executor")
