"""When a broken evaluation runs again: the retry policy every caller of ``run_tasks`` shares.

A training that fails on its own terms (a non-finite loss, a pre-check) is a result. One that
*broke* (stop reason ``error`` or ``worker``, ``driver.retry_on``: an exception, out of memory, a
worker that died) is handed back to the front of the caller's queue, up to ``driver.retries``
more times. Tries are counted per task key in this process, so a run that was killed while a task
trained does not use up that task's retries.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable

from lossevo.config.settings import DriverSettings
from lossevo.execution.tasks import Task
from lossevo.results import Fitness

log = logging.getLogger("lossevo")


class Retries:
    """Counts each task's evaluations started by this process and sends broken ones back."""

    def __init__(self, settings: DriverSettings) -> None:
        self.settings = settings
        self._tries: dict[Hashable, int] = {}

    def submitted(self, task: Task) -> Task:
        """``task`` is handed to an executor (once more)."""
        self._tries[task.key] = self._tries.get(task.key, 0) + 1
        return task

    def retried(self, task: Task, result: Fitness, queue: deque[Task]) -> bool:
        """A broken ``result`` puts ``task`` back at the front of ``queue`` while it has run at most
        ``driver.retries`` + 1 times; True when it did."""
        broken = not result.ok and result.stop_reason in self.settings.retry_on
        if broken and self._tries.get(task.key, 0) <= self.settings.retries:
            log.warning("%s failed (%s: %s); retrying", task.name, result.stop_reason, result.detail)
            queue.appendleft(task)
            return True
        return False
