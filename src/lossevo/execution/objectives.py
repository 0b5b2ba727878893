"""How a candidate's trainings become one fitness.

By default a candidate is trained once on the run's surrogate and its fitness is the best
validation accuracy. The ``objective`` config node generalises this to several *settings* (each a
set of Hydra overrides on the run's config, e.g. ``dataset=cifar10``) and several *runs* per
setting (other seeds), combined in one of two ways:

* ``mean``: the mean best validation accuracy over every setting and run (NGL's "fine-tune three
  times and average").
* ``wins``: NGL's multi-dataset fitness. Per setting, the candidate's mean validation error is
  compared with the reference loss's (cross-entropy, trained on the same setting); the fitness is
  ``wins + (1 + tanh(improvement / 100)) / 2``, where ``improvement`` is the mean relative error
  reduction in percent over the settings won (over all settings when none is won). This scalar
  orders candidates as NGL's pairwise rules do: more wins is better, then a larger improvement.
  The reference itself scores exactly 0.5.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossevo.config.settings import ObjectiveSettings, validated
from lossevo.errors import LossevoError
from lossevo.results import Fitness

COMBINE = ("mean", "wins")


@dataclass
class Objective:
    settings: list[list[str]] = field(default_factory=lambda: [[]])
    runs: int = 1
    combine: str = "mean"

    @classmethod
    def from_config(cls, node: Any) -> Objective:
        """From the ``objective`` node: ``settings`` is a list of override strings (``"dataset=mnist
        model=convnet"``) or lists; empty means the run's own surrogate."""
        if node is None:
            return cls()
        given = validated(node, ObjectiveSettings, "objective")
        settings = [shlex.split(s) if isinstance(s, str) else [str(o) for o in s] for s in given.settings]
        objective = cls(settings or [[]], int(given.runs), str(given.combine))
        if objective.combine not in COMBINE:
            raise LossevoError(
                f"objective.combine must be one of {', '.join(COMBINE)}, got {objective.combine!r}"
            )
        if objective.runs < 1:
            raise LossevoError(f"objective.runs must be >= 1, got {objective.runs}")
        if objective.combine == "wins" and objective.trivial:
            raise LossevoError(
                "objective.combine=wins compares against the reference loss per setting: "
                "list the settings, e.g. objective.settings='[dataset=mnist,dataset=digits]'"
            )
        return objective

    @property
    def trivial(self) -> bool:
        """One training on the run's own surrogate: the plain fitness."""
        return self.settings == [[]] and self.runs == 1

    def labels(self) -> list[str]:
        """A readable name per setting, for messages."""
        return [" ".join(s) or "the run's setting" for s in self.settings]

    def score(self, result: Fitness, references: list[float] | None) -> Fitness:
        """The candidate's fitness under this objective: the mean as trained, or NGL's wins against
        the reference loss's per-setting accuracies ``references`` (trained the same way)."""
        if self.combine == "mean" or not result.ok:
            return result
        if references is None or result.parts is None or len(references) != len(result.parts):
            raise LossevoError("objective.combine=wins needs the reference loss's accuracy on every setting")
        fitness, wins, improvement = wins_fitness(result.parts, references)
        detail = f"{wins}/{len(result.parts)} wins against the reference, improvement {improvement:+.2f}%"
        return result.with_changes(fitness=fitness, detail=detail)


def combine_mean(results: list[Fitness], settings: list[str], runs: int) -> Fitness:
    """One Fitness from the trainings of one evaluation (``settings`` x ``runs``, settings
    outermost): the mean accuracy over everything, with ``parts`` (per setting, mean over runs) and
    ``per_run`` (per run, mean over settings). A failed training fails the whole, naming where."""
    seconds = sum(r.seconds for r in results)
    steps = sum(r.steps for r in results)
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:
        setting, run = divmod(results.index(failed), runs)
        where = settings[setting] or "the run's setting"
        where = f"{where} (run {run + 1})" if runs > 1 else where
        return failed.with_changes(
            detail=f"{where}: {failed.detail}".rstrip(": "), seconds=seconds, steps=steps
        )
    grid = np.array([r.fitness for r in results], dtype=float).reshape(len(settings), runs)
    parts = [float(v) for v in grid.mean(axis=1)]
    per_run = [float(v) for v in grid.mean(axis=0)]
    detail = "mean of " + ", ".join(f"{p:.4f}" for p in parts) if len(settings) > 1 else results[0].detail
    tests = [r.test_acc for r in results]
    test_acc = float(np.mean([t for t in tests if t is not None])) if None not in tests else None
    return results[0].with_changes(
        history=_mean_history(results),
        fitness=float(grid.mean()),
        parts=parts,
        per_run=per_run,
        seconds=seconds,
        steps=steps,
        detail=detail,
        test_acc=test_acc,
        test_hits=results[0].test_hits if len(results) == 1 else None,  # one training's images only
    )


def _mean_history(results: list[Fitness]) -> list[tuple[int, float]]:
    """The trainings' validation curves averaged where they checked the same steps; else their
    last checks' mean as one check (what a verdict reads as validation at the last step)."""
    if len(results) == 1 or not all(r.history for r in results):
        return list(results[0].history) if len(results) == 1 else []
    steps = [[s for s, _ in r.history] for r in results]
    if all(s == steps[0] for s in steps):
        values = np.mean([[a for _, a in r.history] for r in results], axis=0)
        return [(int(s), float(v)) for s, v in zip(steps[0], values, strict=True)]
    return [(results[0].history[-1][0], float(np.mean([r.history[-1][1] for r in results])))]


def wins_fitness(accuracies: list[float], references: list[float]) -> tuple[float, int, float]:
    """NGL's (wins, improvement) as one orderable scalar; see the module docstring."""
    improvements = []
    for acc, ref in zip(accuracies, references, strict=True):
        err, ref_err = 1.0 - acc, 1.0 - ref
        improvements.append(100.0 * (ref_err - err) / max(ref_err, 1e-12))
    won = [i for i in improvements if i > 0]
    wins = len(won)
    improvement = float(np.mean(won if won else improvements))
    return wins + (1.0 + math.tanh(improvement / 100.0)) / 2.0, wins, improvement


def training_seeds(base: int, settings: int, runs: int) -> list[int]:
    """One seed per (setting, run), settings outermost; the first is ``base`` itself."""
    out = []
    for s in range(settings):
        for r in range(runs):
            first = s == 0 and r == 0
            out.append(base if first else int(np.random.SeedSequence([base, s, r]).generate_state(1)[0]))
    return out
