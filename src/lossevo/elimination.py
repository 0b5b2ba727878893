"""The elimination protocol: successive stages, each a setting and a keep-count (REFERENCE §3).

Stage 1 trains every loss under its setting; the best ``keep`` by validation accuracy (the mean
over the stage's runs, or with ``average_previous`` the mean over this and every earlier stage)
go on to stage 2, and so on. Seed 001 ran 150 -> 50 -> 25 -> 10 over progressive-RandAug phases,
seed 000 100 -> 24 -> 6 -> 3 with two and three runs in the last stages. Every training is a cell
of a :class:`~lossevo.study.Study` journal, so an elimination resumes like a search.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.study import Study, StudyLoss


@dataclass
class Stage:
    name: str
    overrides: list[str]
    keep: int | None  # survivors passed on (None: the last stage ranks everyone it trained)
    runs: int = 1


def parse_stages(node: Any) -> list[Stage]:
    if not node:
        raise LossevoError("eliminate needs stages, e.g. stages=[{name: short, overrides: '', keep: 10}]")
    stages = []
    for i, item in enumerate(node, start=1):
        name = str(item.get("name") or f"stage{i}")
        keep = item.get("keep")
        runs = int(item.get("runs", 1))
        if (keep is not None and int(keep) < 1) or runs < 1:
            raise LossevoError(f"stage {name}: keep and runs must be >= 1")
        overrides = item.get("overrides") or ""
        overrides = shlex.split(overrides) if isinstance(overrides, str) else [str(o) for o in overrides]
        stages.append(Stage(name, overrides, None if keep is None else int(keep), runs))
    if len({s.name for s in stages}) != len(stages):
        raise LossevoError("stage names must differ")
    return stages


@dataclass
class StageResult:
    stage: Stage
    entrants: list[StudyLoss]
    scores: dict[int, float]  # loss id -> score used to rank (NaN: failed)
    survivors: list[StudyLoss]


class Elimination:
    """Runs the stages over a study's losses; :meth:`run` returns every stage's ranking."""

    def __init__(self, study: Study, stages: list[Stage], average_previous: bool = False) -> None:
        self.study = study
        self.stages = stages
        self.average_previous = average_previous

    def run(self, progress: Any = None) -> list[StageResult]:
        entrants = list(self.study.losses)
        out: list[StageResult] = []
        for i, stage in enumerate(self.stages):
            cells = [(loss, stage.name, run) for loss in entrants for run in range(stage.runs)]
            self.study.train(cells, progress)
            scores = self._scores(entrants, self.stages[: i + 1] if self.average_previous else [stage])
            ranked = sorted(entrants, key=lambda s: (-_finite(scores[s.id]), s.id))
            keep = len(ranked) if stage.keep is None else stage.keep
            survivors = [s for s in ranked[:keep] if np.isfinite(scores[s.id])]
            out.append(StageResult(stage, entrants, scores, survivors))
            entrants = survivors
            if not entrants:
                break
        return out

    def _scores(self, losses: list[StudyLoss], stages: list[Stage]) -> dict[int, float]:
        """Mean accuracy over the given stages' runs; NaN if any of them failed."""
        names = {s.name for s in stages}
        values: dict[int, list[float]] = {s.id: [] for s in losses}
        failed: set[int] = set()
        for row in self.study.journal.results():
            if row["setting"] in names and row["loss_id"] in values:
                if row["status"] == "done":
                    values[row["loss_id"]].append(row["fitness"])
                else:
                    failed.add(row["loss_id"])
        return {k: float("nan") if k in failed or not v else float(np.mean(v)) for k, v in values.items()}


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf
