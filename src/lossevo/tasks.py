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


# One surrogate per distinct setting, per process: data stay loaded between tasks.
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


def evaluate(task: Task) -> Fitness:
    """Train every config of ``task``; the first failing training fails the evaluation without the rest."""
    from lossevo.objectives import combine_mean

    if len(task.configs) != len(task.settings) * task.runs:
        raise ValueError(
            f"task {task.name}: {len(task.configs)} configs for {len(task.settings)} x {task.runs}"
        )
    results: list[Fitness] = []
    for i, config in enumerate(task.configs):
        root = task.root_dir
        if root is not None and len(task.configs) > 1:
            root = os.path.join(root, f"training_{i}")
        results.append(train(config, task.name, root))
        if not results[-1].ok:
            break
    if len(task.configs) == 1:
        return results[0]
    return combine_mean(results, task.settings, task.runs)


def train(config: dict[str, Any], name: str, root_dir: str | None = None) -> Fitness:
    """One training of one resolved config."""
    from omegaconf import OmegaConf

    from lossevo.config import build
    from lossevo.surrogate import Job

    cfg = OmegaConf.create(config)
    surrogate = surrogate_for(cfg)
    try:
        loss = build(cfg.loss, "loss")
    except LossevoError as err:  # a genome that cannot be built is a failed candidate
        return Fitness.failure(StopReason.ERROR, f"building the loss: {err}")
    return surrogate.train(Job(loss, int(cfg.seed), name), root_dir=root_dir)
