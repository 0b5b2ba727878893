"""What a worker runs: a :class:`Task` (one loss's trainings as plain data) becomes a :class:`Fitness`.

A task is every training of one evaluation (a candidate at a rung, the reference loss, one cell of
a study, one validation run) as resolved configs, so it travels unchanged to a spawned process or
a Ray node. :func:`evaluate` trains them in order on the surrogate of their setting (built once
per process and kept: data stay loaded between tasks) and combines them into one Fitness. Every
failure becomes a failed Fitness; nothing raised here stops a search.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from lossevo.errors import LossevoError
from lossevo.results import Fitness, StopReason


@dataclass
class Task:
    """The trainings of one evaluation: ``configs`` holds ``len(settings) * runs`` resolved configs,
    settings outermost, each with its own seed; all train the same loss."""

    key: Hashable  # the caller's name for this evaluation (returned with its result)
    configs: list[dict[str, Any]]
    name: str  # for logs
    root_dir: str | None = None  # where Lightning may write (a candidate's folder)
    settings: list[str] = field(default_factory=lambda: [""])  # labels, for failure messages
    runs: int = 1
    # Also measure test accuracy at the end of each training (the verdict's trainings; a search's
    # own trainings never look at the test split).
    test: bool = False


# One surrogate per distinct setting, per process: data stay loaded between tasks.
_SURROGATES: dict[str, Any] = {}


def surrogate_for(cfg: Any, key: str | None = None) -> Any:
    """The surrogate of a config's setting (dataset, augment, model, recipe, trainer; ``key``: its
    :func:`_setting_key` when already known), built once per process."""
    from lossevo.training.surrogate import Surrogate

    key = key or _setting_key(cfg)
    if key not in _SURROGATES:
        _SURROGATES[key] = Surrogate(cfg)
    return _SURROGATES[key]


def evaluate(task: Task) -> Fitness:
    """Train every config of ``task``; the first failing training fails the evaluation without the rest."""
    return evaluate_group([task])[0]


def evaluate_group(tasks: list[Task]) -> list[Fitness]:
    """Train every config of every task, one Fitness per task. The i-th trainings of the tasks that
    share a setting and a data seed train together, up to ``surrogate.population`` per pass
    (:mod:`lossevo.training.population`); a task's first failing training ends it without the rest."""
    from omegaconf import OmegaConf

    from lossevo.execution.objectives import combine_mean

    for task in tasks:
        if len(task.configs) != len(task.settings) * task.runs:
            raise ValueError(
                f"task {task.name}: {len(task.configs)} configs for {len(task.settings)} x {task.runs}"
            )
    results: list[list[Fitness]] = [[] for _ in tasks]
    for i in range(max(len(task.configs) for task in tasks)):
        groups: dict[tuple[str, int], list[tuple[int, Any]]] = {}
        for j, task in enumerate(tasks):
            if i < len(task.configs) and all(r.ok for r in results[j]):
                cfg = OmegaConf.create(task.configs[i])
                data_seed = _data_seed(cfg)
                key = (_setting_key(cfg), int(cfg.seed) if data_seed is None else data_seed)
                groups.setdefault(key, []).append((j, cfg))
        for (setting, _), members in groups.items():
            surrogate = surrogate_for(members[0][1], setting)
            size = surrogate.population_size() if len(members) > 1 else 1
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                for (j, _), result in zip(chunk, _train_together(surrogate, tasks, chunk, i), strict=True):
                    results[j].append(result)
    out = []
    for task, trained in zip(tasks, results, strict=True):
        out.append(trained[0] if len(task.configs) == 1 else combine_mean(trained, task.settings, task.runs))
    return out


def _train_together(surrogate: Any, tasks: list[Task], chunk: list[tuple[int, Any]], i: int) -> list[Fitness]:
    """The i-th trainings of the chunk's tasks: alone for one, in one pass for several."""
    from lossevo.training.surrogate import Job

    jobs: list[Any] = []
    for j, cfg in chunk:
        try:
            jobs.append(Job(_loss(cfg), int(cfg.seed), tasks[j].name, _data_seed(cfg)))
        except LossevoError as err:  # a genome that cannot be built is a failed candidate
            jobs.append(Fitness.failure(StopReason.ERROR, f"building the loss: {err}"))
    ready = [job for job in jobs if not isinstance(job, Fitness)]
    test = any(tasks[j].test for j, _ in chunk)
    if len(ready) == 1:
        j = chunk[jobs.index(ready[0])][0]
        trained = [surrogate.train(ready[0], test=test, root_dir=_root(tasks[j], i))]
    else:
        trained = surrogate.train_population(ready, test=test) if ready else []
    it = iter(trained)
    return [job if isinstance(job, Fitness) else next(it) for job in jobs]


def _setting_key(cfg: Any) -> str:
    """Trainings with equal keys share a surrogate (dataset, augment, model, recipe, trainer)."""
    from omegaconf import OmegaConf

    node = OmegaConf.masked_copy(cfg, ["dataset", "augment", "model", "surrogate", "trainer"])
    return OmegaConf.to_yaml(node, resolve=True)


def _loss(cfg: Any) -> Any:
    from lossevo.losses import build_loss

    return build_loss(cfg.loss, "loss")


def _data_seed(cfg: Any) -> int | None:
    value = cfg.get("data_seed")
    return None if value is None else int(value)


def _root(task: Task, i: int) -> str | None:
    if task.root_dir is not None and len(task.configs) > 1:
        return os.path.join(task.root_dir, f"training_{i}")
    return task.root_dir
