"""Where evaluations run: in process, in local worker processes, or on Ray; and the one loop that
keeps an executor full.

An executor takes :class:`~lossevo.tasks.Task` s (plain data, so they travel to any process or
machine) and hands back ``(task, Fitness)`` as evaluations finish. :func:`run_tasks` is the only
scheduling loop in lossevo: the search driver, correlation studies, eliminations and the verdict
all feed it tasks through a callback and take each result through another, so none of them knows
where evaluations ran. A worker that dies takes its task with it: the executor reports that task
as failed with stop reason ``worker`` and the caller may retry it.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterator
from typing import Any

from lossevo.errors import LossevoError
from lossevo.results import Fitness, StopReason
from lossevo.tasks import Task, evaluate

log = logging.getLogger(__name__)


def run_tasks(
    executor: Executor, next_task: Callable[[], Task | None], on_result: Callable[[Task, Fitness], None]
) -> None:
    """Keep ``executor`` full: submit ``next_task()`` while it has room (``None``: nothing to start
    now) and hand every result to ``on_result`` as it arrives, which may make new tasks ready.
    Returns when nothing is outstanding and ``next_task()`` has nothing more."""
    while True:
        while executor.busy < executor.capacity:
            task = next_task()
            if task is None:
                break
            executor.submit(task)
        if not executor.busy:
            return
        for task, result in executor.wait():
            on_result(task, result)


class Executor:
    """Runs tasks; :meth:`wait` yields at least one finished ``(task, Fitness)``."""

    capacity = 1

    def submit(self, task: Task) -> None:
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
        self._tasks: list[Task] = []

    def submit(self, task: Task) -> None:
        self._tasks.append(task)

    @property
    def busy(self) -> int:
        return len(self._tasks)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        task = self._tasks.pop(0)
        yield task, evaluate(task)


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
        if workers == "auto":
            workers = gpus or max(1, (os.cpu_count() or 2) // max(1, threads))
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
        self._futures: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        self._futures[self._pool.submit(evaluate, task)] = task

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
            task = self._futures.pop(future)
            try:
                finished.append((task, future.result()))
            except BrokenExecutor as err:
                broken = True
                finished.append((task, _worker_failure(err)))
        if broken:  # a dead worker breaks the whole pool: every task in it is lost; start afresh
            for future, task in list(self._futures.items()):
                self._futures.pop(future)
                finished.append((task, _worker_failure(RuntimeError("the worker pool broke"))))
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
        self._remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_evaluate)
        self._threads = threads
        self._refs: dict[Any, Task] = {}

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(task, self._threads)] = task

    @property
    def busy(self) -> int:
        return len(self._refs)

    def wait(self) -> Iterator[tuple[Task, Fitness]]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                yield task, self._ray.get(ref)
            except Exception as err:  # the worker died (killed, OOM) or Ray lost the task
                yield task, _worker_failure(err)

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()


def _ray_evaluate(task: Task, threads: int) -> Fitness:
    import torch

    torch.set_num_threads(threads)
    return evaluate(task)


def _worker_failure(err: BaseException) -> Fitness:
    detail = (
        f"the evaluating worker died: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    )
    return Fitness.failure(StopReason.WORKER, detail)


def executor_from(cfg: Any) -> Executor:
    """The executor a run's config names (``executor=inline|local|ray``); inline when it names none."""
    from lossevo.config import build

    return build(cfg.get("executor") or {"_target_": "lossevo.executors.InlineExecutor"}, "executor")
