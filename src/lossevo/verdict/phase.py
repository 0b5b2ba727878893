"""The verdict's trainings: every finalist and baseline retrained with the validation seeds in
every cell of the plan, and tested.

Each loss is trained ``plan.runs`` times per cell (a setting at a budget; the whole budget: no
pre-check, no early stop), the headline cell first and run-major, so the losses of one run share
its seeds and can train in one pass (``surrogate.population``). Each training reports its
validation and test accuracy at its last step (both at the same step: the search's fitness is a
training's best checkpoint, the verdict's is not). What the journal already holds is not
trained again, so a verdict that was interrupted, or extended with more runs, budgets or
settings, trains only what it lacks; a row without test accuracy (an older lossevo's) is trained
again. Each result is journalled as it arrives; a broken one is retried like any other evaluation.
With a store of shared trainings (``plan.shared``: the searches of one sweep), a baseline run
another search already trained is read from it instead, and journalled as reused.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from lossevo.config.composer import ConfigComposer
from lossevo.execution.executors import Executor, run_tasks
from lossevo.execution.objectives import Objective
from lossevo.execution.retries import Retries
from lossevo.execution.tasks import Task
from lossevo.genome import genome_from_dict
from lossevo.losses import genome_loss_config
from lossevo.results import FINISHED, Fitness, Status
from lossevo.store.journal import Journal
from lossevo.store.shared_trainings import SharedTrainings, training_key
from lossevo.tracking.progress import SearchProgress
from lossevo.verdict.plan import OWN, ValidationPlan, tuning_seeds, validation_overrides, validation_seeds
from lossevo.verdict.rows import Verdict
from lossevo.verdict.tuning import LR_KEY, Point, applied

log = logging.getLogger("lossevo")


@dataclass(frozen=True)
class ValidationKey:
    """One validation training of one loss: its ``run`` in ``setting`` at ``budget`` steps."""

    loss: str  # candidate_<id>, or a baseline's name
    candidate_id: int | None
    setting: str
    budget: int
    run: int
    seed: int
    shared: str | None = None  # its key in the store of shared trainings (baselines of a shared verdict)
    point: str = ""  # the tuning point it trains with ('': the loss's own setting)


@dataclass(frozen=True)
class TuningKey:
    """One tuning training (``validate.tune``): ``loss`` at grid ``point`` (its label), ``run``."""

    loss: str
    point: str
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
        label_smoothing: float,
        retries: Retries,
        progress: SearchProgress | None = None,
    ) -> None:
        self.plan = plan
        self.journal = journal
        self.composer = composer
        self.objective = objective
        self.run_seed = run_seed
        self.label_smoothing = label_smoothing
        self.retries = retries
        self.progress = progress  # the run's display: the verdict's trainings done of planned
        self._shared: SharedTrainings | None = None
        self.reused = 0
        self.grids = plan.tuning_grids()
        self.chosen: dict[str, Point] = {}  # each loss's tuned point, once tuning has run

    @property
    def shared(self) -> SharedTrainings | None:
        """The store of shared trainings, opened when first needed (None: this verdict shares none)."""
        if self.plan.shared is not None and self._shared is None:
            self._shared = SharedTrainings(self.plan.shared)
        return self._shared

    def _losses(self) -> list[tuple[str, int | None, dict[str, Any]]]:
        """(name, candidate id, loss config) of every loss the verdict trains."""
        out = []
        for f in self.plan.finalists:
            assert f.genome is not None
            genome = genome_from_dict(f.genome, validate=False)  # parsed when the driver opened the journal
            out.append((f.name, f.candidate_id, genome_loss_config(f.name, genome, self.label_smoothing)))
        for b in self.plan.baselines:
            assert b.loss is not None
            out.append((b.name, None, b.loss))
        return out

    def _reuse(self, key: ValidationKey) -> bool:
        """Journal ``key``'s result from the store of shared trainings, if another search trained it."""
        if self.shared is None or key.shared is None:
            return False
        found = self.shared.get(key.shared)
        if found is None:
            return False
        self.journal.add_validation(
            key.loss,
            key.candidate_id,
            key.budget,
            key.run,
            key.seed,
            found,
            setting=key.setting,
            reused=True,
            point=key.point,
        )
        self.reused += 1
        return True

    def _seed_base(self) -> int:
        return self.run_seed if self.plan.seed is None else self.plan.seed

    def _setting_lr(self, overrides: list[str]) -> float | None:
        """The learning rate of the setting ``overrides`` compose (what a tuning point multiplies)."""
        lr = OmegaConf.select(self.composer.setting(overrides), LR_KEY, default=None)  # composed once
        return None if lr is None else float(lr)

    def _configs(
        self, loss: dict[str, Any], point: Point | None, setting: list[str], steps: int, seeds: list[int]
    ) -> list[dict[str, Any]]:
        """One training config per objective setting (``seeds[s]`` for setting s), at ``point``."""
        configs = []
        for s, objective_setting in enumerate(self.objective.settings):
            overrides = [*objective_setting, *setting]
            if point is not None:
                overrides += point.overrides(self._setting_lr(overrides))
                loss_at = point.loss(loss)
            else:
                loss_at = loss
            configs.append(self.composer.training(loss_at, seeds[s], validation_overrides(overrides, steps)))
        return configs

    def tuning_tasks(self) -> deque[Task]:
        """The tuning trainings the journal lacks: every loss at every point of its grid, ``tune.runs``
        times, in the search's setting at the tuning budget, on validation data only."""
        queue: deque[Task] = deque()
        tune = self.plan.tune
        if tune is None:
            return queue
        runs = tune.runs
        seeds = tuning_seeds(self._seed_base(), len(self.objective.settings), runs)
        done = {(r.loss, r.point, r.run) for r in self.journal.tunings(tune.budget) if r.status in FINISHED}
        for run in range(runs):
            for name, _, loss in self._losses():
                for point in self.grids[name]:
                    if (name, point.label, run) in done:
                        continue
                    mine = [seeds[s * runs + run] for s in range(len(self.objective.settings))]
                    configs = self._configs(loss, point, [], tune.budget, mine)
                    key = TuningKey(name, point.label, tune.budget, run, seeds[run])
                    label = f"tuning of {name} ({point.label}, run {run + 1}, {tune.budget:,} steps)"
                    queue.append(Task(key, configs, label, None, self.objective.labels(), 1))
        return queue

    def tune(self, executor: Executor, group: int) -> None:
        """Train what tuning lacks, then choose each loss's point (the test runs use it)."""
        queue = self.tuning_tasks()
        if queue:
            log.info("verdict: %d tuning trainings on validation data (validate.tune)", len(queue))

        def next_task() -> Task | None:
            return self.retries.submitted(queue.popleft()) if queue else None

        def on_result(task: Task, result: Fitness) -> None:
            if self.retries.retried(task, result, queue):
                return
            key = task.key
            assert isinstance(key, TuningKey)
            result = at_last_step(result)
            self.journal.add_tuning(key.loss, key.budget, key.point, key.run, key.seed, result)
            shown = (
                f"validation {result.fitness:.4f}" if result.ok and result.fitness is not None else "failed"
            )
            log.info("%s: %s", task.name, shown)

        if queue:
            run_tasks(executor, next_task, on_result, group)
        self.chosen, _ = self.plan.tuned(self.journal)
        for name, point in self.chosen.items():
            log.info("verdict: %s tuned to %s", name, point.label)

    def tasks(self) -> deque[Task]:
        plan = self.plan
        seeds = validation_seeds(self._seed_base(), len(self.objective.settings), plan.runs)
        queue: deque[Task] = deque()
        applied_to = {name: applied(name, self.chosen, self.grids) for name in plan.losses}
        for cell in plan.cells:
            done = {
                (r.loss, r.run)
                for r in self.journal.validations(cell.steps, cell.setting)
                if (r.status == Status.FAILED or r.test_acc is not None)
                and r.point == _label(applied_to.get(r.loss))
            }
            where = "" if cell.setting == OWN else f", {cell.setting}"
            for run in range(plan.runs):  # run-major: the losses of one run share its seeds (one pass)
                for name, candidate_id, loss in self._losses():
                    if (name, run) in done:
                        continue
                    point = applied_to[name]
                    mine = [seeds[s * plan.runs + run] for s in range(len(self.objective.settings))]
                    configs = self._configs(loss, point, list(cell.overrides), cell.steps, mine)
                    baseline = candidate_id is None  # a baseline run is the same training in every search
                    shared = training_key(configs, self.objective.labels()) if baseline else None
                    key = ValidationKey(
                        name, candidate_id, cell.setting, cell.steps, run, seeds[run], shared, _label(point)
                    )
                    if self._reuse(key):
                        continue
                    tuned = "" if point is None else f", {point.label}"
                    label = f"validation of {name} (run {run + 1}, {cell.steps:,} steps{where}{tuned})"
                    queue.append(Task(key, configs, label, None, self.objective.labels(), 1, test=True))
        return queue

    def run(self, executor: Executor, group: int) -> Verdict:
        # The look is recorded before any of its trainings (a test accuracy is never seen before
        # the look that asked for it is on record).
        self.journal.add_look(self.plan.look())
        self.tune(executor, group)
        queue = self.tasks()
        if self.progress is not None:
            planned = len(self.plan.losses) * self.plan.runs * len(self.plan.cells)
            self.progress.start_verdict(planned, planned - len(queue))
        if queue:
            cells = len(self.plan.cells)
            log.info(
                "verdict: %d validation trainings (%d losses x %d runs x %d cell%s)",
                len(queue),
                len(self.plan.losses),
                self.plan.runs,
                cells,
                "" if cells == 1 else "s",
            )

        def next_task() -> Task | None:
            while queue:
                task = queue.popleft()
                assert isinstance(task.key, ValidationKey)
                if not self._reuse(task.key):  # another job of the sweep may have trained it meanwhile
                    return self.retries.submitted(task)
                if self.progress is not None:
                    self.progress.verdict_reused()
            return None

        def on_result(task: Task, result: Fitness) -> None:
            if self.retries.retried(task, result, queue):
                return
            key = task.key
            assert isinstance(key, ValidationKey)
            result = at_last_step(result)
            if self.shared is not None and key.shared is not None:  # the first result kept is everyone's
                result = self.shared.put(key.shared, task.name, result, str(self.journal.path.parent))
            self.journal.add_validation(
                key.loss,
                key.candidate_id,
                key.budget,
                key.run,
                key.seed,
                result,
                setting=key.setting,
                point=key.point,
            )
            if result.ok and result.fitness is not None:
                test = "-" if result.test_acc is None else f"{result.test_acc:.4f}"
                log.info("%s: validation %.4f, test %s", task.name, result.fitness, test)
            else:
                log.info("%s: failed (%s)", task.name, result.stop_reason)
            if self.progress is not None:
                log.info("  %s", self.progress.verdict_trained(task.name))

        try:
            run_tasks(executor, next_task, on_result, group)
        finally:
            if self._shared is not None:
                self._shared.close()
                self._shared = None
        if self.reused:
            log.info(
                "verdict: %d baseline trainings reused from %s (trained by other searches of the sweep)",
                self.reused,
                self.plan.shared,
            )
        return Verdict.from_journal(self.journal, self.plan)


def at_last_step(result: Fitness) -> Fitness:
    """``result`` with its validation accuracy at its last step, the step its test accuracy is
    taken at, in place of the best checkpoint's (a training validates its last step always)."""
    if not result.ok or not result.history:
        return result
    return result.with_changes(fitness=float(result.history[-1][1]))


def _label(point: Point | None) -> str:
    return "" if point is None else point.label
