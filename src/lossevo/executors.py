"""Where candidate evaluations run: in process, in local worker processes, or on Ray.

An executor takes :class:`Task` s (a candidate's complete config as plain data, so it travels to
any process or machine) and hands back ``(candidate id, Fitness)`` as evaluations finish. The
driver keeps every executor full and breeds a new child as soon as any result arrives
(steady-state); strategies never know where evaluations ran, and no population state lives in a
worker. A worker that dies takes its task with it: the executor reports that task as failed with
stop reason ``worker`` and the driver retries it.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lossevo.errors import LossevoError

log = logging.getLogger(__name__)


@dataclass
class Task:
    """One candidate's evaluation: a resolved config per training (one per objective setting and
    run, each with its seed), combined as the objective says."""

    candidate_id: int
    configs: list[dict[str, Any]]
    name: str
    root_dir: str | None = None
    objective: dict[str, Any] | None = None  # Objective fields; None: one plain training
    references: list[float] | None = None  # the reference loss's accuracy per setting (wins)


# One surrogate per distinct setting, per process: data stay loaded between candidates.
_SURROGATES: dict[str, Any] = {}


def surrogate_for(cfg: Any) -> Any:
    """The surrogate of a config's setting (dataset, augment, model, recipe, trainer), built once
    per process."""
    from omegaconf import OmegaConf

    from lossevo.surrogate import Surrogate

    node = OmegaConf.masked_copy(cfg, ["dataset", "augment", "model", "surrogate", "trainer"])
    key = OmegaConf.to_yaml(node, resolve=True)
    if key not in _SURROGATES:
        _SURROGATES[key] = Surrogate(cfg)
    return _SURROGATES[key]


def evaluate(task: Task) -> dict[str, Any]:
    """Train one candidate on every setting of its objective; every failure becomes a failed
    Fitness (as a dict). The first failing training fails the candidate without the rest."""
    from lossevo.objectives import Objective

    objective = Objective(**task.objective) if task.objective else Objective()
    results: list[dict[str, Any]] = []
    for i, config in enumerate(task.configs):
        root = task.root_dir
        if root is not None and len(task.configs) > 1:
            root = os.path.join(root, f"training_{i}")
        results.append(_train(config, task.name, root))
        if results[-1]["status"] != "done":
            break
    if objective.trivial:
        return results[0]
    return objective.combine_results(results, task.references)


def _train(config: dict[str, Any], name: str, root_dir: str | None) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from lossevo.config import build
    from lossevo.surrogate import Fitness, Job

    cfg = OmegaConf.create(config)
    surrogate = surrogate_for(cfg)
    try:
        loss = build(cfg.loss, "loss")
    except LossevoError as err:  # a genome that cannot be built is a failed candidate
        return Fitness("failed", None, "error", f"building the loss: {err}").to_dict()
    return surrogate.train(Job(loss, int(cfg.seed), name), root_dir=root_dir).to_dict()


class Executor:
    """Runs tasks; :meth:`wait` yields at least one finished ``(candidate_id, fitness dict)``."""

    capacity = 1

    def submit(self, task: Task) -> None:
        raise NotImplementedError

    def wait(self) -> Iterator[tuple[int, dict[str, Any]]]:
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

    def wait(self) -> Iterator[tuple[int, dict[str, Any]]]:
        task = self._tasks.pop(0)
        yield task.candidate_id, evaluate(task)


def _worker_setup(threads: int, devices: Any) -> None:
    """Per worker process: its thread limit (oneDNN threads spin, so oversubscribed CPUs crawl)
    and, with GPUs, one device of its own."""
    import torch

    torch.set_num_threads(threads)
    if devices is not None:
        try:
            device = devices.get_nowait()
            os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
        except queue.Empty:
            pass


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
        self._futures: dict[Any, int] = {}

    def submit(self, task: Task) -> None:
        self._futures[self._pool.submit(evaluate, task)] = task.candidate_id

    @property
    def busy(self) -> int:
        return len(self._futures)

    def wait(self) -> Iterator[tuple[int, dict[str, Any]]]:
        from concurrent.futures import FIRST_COMPLETED, BrokenExecutor
        from concurrent.futures import wait as wait_any

        done, _ = wait_any(list(self._futures), return_when=FIRST_COMPLETED)
        finished: list[tuple[int, dict[str, Any]]] = []
        broken = False
        for future in done:
            candidate = self._futures.pop(future)
            try:
                finished.append((candidate, future.result()))
            except BrokenExecutor as err:
                broken = True
                finished.append((candidate, _worker_failure(err)))
        if broken:  # a dead worker breaks the whole pool: every task in it is lost; start afresh
            for future, candidate in list(self._futures.items()):
                self._futures.pop(future)
                finished.append((candidate, _worker_failure(RuntimeError("the worker pool broke"))))
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
        self._refs: dict[Any, int] = {}

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(task, self._threads)] = task.candidate_id

    @property
    def busy(self) -> int:
        return len(self._refs)

    def wait(self) -> Iterator[tuple[int, dict[str, Any]]]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        for ref in ready:
            candidate = self._refs.pop(ref)
            try:
                yield candidate, self._ray.get(ref)
            except Exception as err:  # the worker died (killed, OOM) or Ray lost the task
                yield candidate, _worker_failure(err)

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()


def _ray_evaluate(task: Task, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    return evaluate(task)


def _worker_failure(err: BaseException) -> dict[str, Any]:
    from lossevo.surrogate import Fitness

    detail = (
        f"the evaluating worker died: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    )
    return Fitness("failed", None, "worker", detail).to_dict()
