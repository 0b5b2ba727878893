"""The verdict's trainings: every finalist and the reference loss retrained with the validation seeds.

Each loss is trained ``plan.runs`` times at ``plan.steps`` (the whole budget: no pre-check, no
early stop), run-major, so the losses of one run share its seeds and can train in one pass
(``surrogate.population``). What the journal already holds at this budget is not trained again,
so a verdict that was interrupted, or extended with more runs, trains only what it lacks. Each
result is journalled as it arrives; a broken one is retried like any other evaluation.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from lossevo.config.composer import ConfigComposer
from lossevo.execution.executors import Executor, run_tasks
from lossevo.execution.retries import Retries
from lossevo.execution.tasks import Task
from lossevo.losses import genome_loss_config
from lossevo.results import Fitness
from lossevo.search.objectives import Objective
from lossevo.store.journal import Journal
from lossevo.verdict.plan import ValidationPlan, validation_overrides, validation_seeds
from lossevo.verdict.report import Verdict

log = logging.getLogger("lossevo")


@dataclass(frozen=True)
class ValidationKey:
    """One validation training of one loss: its ``run`` at ``budget`` steps."""

    loss: str  # candidate_<id>, or the reference loss's name
    candidate_id: int | None
    budget: int
    run: int
    seed: int


class ValidationPhase:
    """Trains what ``plan`` validates and the journal lacks, then reads the verdict from the journal."""

    def __init__(
        self,
        plan: ValidationPlan,
        journal: Journal,
        composer: ConfigComposer,
        objective: Objective,
        run_seed: int,
        reference_loss: dict[str, Any],
        label_smoothing: float,
        retries: Retries,
    ) -> None:
        self.plan = plan
        self.journal = journal
        self.composer = composer
        self.objective = objective
        self.run_seed = run_seed
        self.reference_loss = reference_loss
        self.label_smoothing = label_smoothing
        self.retries = retries

    def tasks(self) -> deque[Task]:
        plan = self.plan
        done = {(r.loss, r.run) for r in self.journal.validations(plan.steps)}
        extras = [validation_overrides(list(setting), plan.steps) for setting in self.objective.settings]
        seeds = validation_seeds(self.run_seed, len(extras), plan.runs)
        losses = [
            (f, self.reference_loss if f.genome is None else genome_loss_config(f.name, f.genome,
                                                                                self.label_smoothing))
            for f in [*plan.finalists, plan.reference]
        ]  # fmt: skip
        queue: deque[Task] = deque()
        for run in range(plan.runs):  # run-major: the losses of one run share its seeds (one pass)
            for f, loss in losses:
                if (f.name, run) in done:
                    continue
                configs = [self.composer.training(loss, seeds[s * plan.runs + run], extra)
                           for s, extra in enumerate(extras)]  # fmt: skip
                key = ValidationKey(f.name, f.candidate_id, plan.steps, run, seeds[run])
                queue.append(Task(key, configs, f"validation of {f.name} (run {run + 1})", None,
                                  self.objective.labels(), 1))  # fmt: skip
        return queue

    def run(self, executor: Executor, group: int) -> Verdict:
        queue = self.tasks()
        if queue:
            log.info("verdict: %d validation trainings (%d losses x %d runs at %s steps)", len(queue),
                     len(self.plan.finalists) + 1, self.plan.runs, f"{self.plan.steps:,}")  # fmt: skip

        def next_task() -> Task | None:
            return self.retries.submitted(queue.popleft()) if queue else None

        def on_result(task: Task, result: Fitness) -> None:
            if self.retries.retried(task, result, queue):
                return
            key = task.key
            assert isinstance(key, ValidationKey)
            self.journal.add_validation(key.loss, key.candidate_id, key.budget, key.run, key.seed, result)
            shown = f"{result.fitness:.4f}" if result.ok and result.fitness is not None else None
            log.info("%s: %s", task.name, shown or f"failed ({result.stop_reason})")

        run_tasks(executor, next_task, on_result, group)
        return Verdict.from_plan(self.journal, self.plan)
