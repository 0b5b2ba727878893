"""Where evaluations run: in process, in local worker processes, or on Ray; and the one loop that
keeps an executor full.

An executor takes groups of :class:`~lossevo.tasks.Task` s (plain data, so they travel to any
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
from typing import Any

from lossevo.errors import LossevoError
from lossevo.results import Fitness, StopReason
from lossevo.tasks import Task, evaluate_group

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
        self._remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_ray_evaluate)
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


def _ray_evaluate(tasks: list[Task], threads: int) -> list[Fitness]:
    import torch

    torch.set_num_threads(threads)
    return evaluate_group(tasks)


def _worker_failure(err: BaseException) -> Fitness:
    detail = (
        f"the evaluating worker died: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    )
    return Fitness.failure(StopReason.WORKER, detail)


def executor_from(cfg: Any) -> Executor:
    """The executor a run's config names (``executor=inline|local|ray``); inline when it names none."""
    from lossevo.config import build

    return build(cfg.get("executor") or {"_target_": "lossevo.executors.InlineExecutor"}, "executor")
