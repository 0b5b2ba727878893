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

from lossevo.errors import LossevoError

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
        settings = [
            shlex.split(s) if isinstance(s, str) else [str(o) for o in s] for s in node.get("settings") or []
        ]
        objective = cls(settings or [[]], int(node.get("runs", 1)), str(node.get("combine", "mean")))
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

    def seeds(self, seed: int) -> list[int]:
        """Training seeds for every (setting, run), settings outermost; the first is ``seed`` itself."""
        out = []
        for s in range(len(self.settings)):
            for r in range(self.runs):
                if s == 0 and r == 0:
                    out.append(seed)
                else:
                    out.append(int(np.random.SeedSequence([seed, s, r]).generate_state(1)[0]))
        return out

    def combine_results(
        self, results: list[dict[str, Any]], references: list[float] | None = None
    ) -> dict[str, Any]:
        """One Fitness dict from the per-(setting, run) Fitness dicts (same order as :meth:`seeds`).

        ``references`` are the reference loss's per-setting accuracies (``wins`` needs them). The
        result's ``parts`` holds the candidate's mean accuracy per setting."""
        seconds = sum(r.get("seconds") or 0.0 for r in results)
        steps = sum(r.get("steps") or 0 for r in results)
        failed = next((r for r in results if r["status"] != "done"), None)
        if failed is not None:
            index = results.index(failed)
            where = self._where(index)
            return {
                **failed,
                "detail": f"{where}: {failed['detail']}".rstrip(": "),
                "seconds": seconds,
                "steps": steps,
            }
        parts = [
            float(np.mean([r["fitness"] for r in results[s * self.runs : (s + 1) * self.runs]]))
            for s in range(len(self.settings))
        ]
        first = results[0]
        out = {**first, "seconds": seconds, "steps": steps, "parts": parts}
        if self.combine == "mean":
            out["fitness"] = float(np.mean(parts))
            if not self.trivial:
                out["detail"] = "mean of " + ", ".join(f"{p:.4f}" for p in parts)
            return out
        if references is None or len(references) != len(parts):
            raise LossevoError("objective.combine=wins needs the reference loss's accuracy on every setting")
        fitness, wins, improvement = wins_fitness(parts, references)
        out["fitness"] = fitness
        out["detail"] = f"{wins}/{len(parts)} wins against the reference, improvement {improvement:+.2f}%"
        return out

    def _where(self, index: int) -> str:
        setting, run = divmod(index, self.runs)
        name = " ".join(self.settings[setting]) or "the run's setting"
        return f"{name} (run {run + 1})" if self.runs > 1 else name


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
