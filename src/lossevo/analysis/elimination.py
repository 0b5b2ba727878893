"""The elimination protocol: successive stages, each a setting and a keep-count (docs/methods.md §3).

Stage 1 trains every loss under its setting; the best ``keep`` by validation accuracy (the mean
over the stage's runs, or with ``average_previous`` the mean over this and every earlier stage)
go on to stage 2, and so on. Seed 001 ran 150 -> 50 -> 25 -> 10 over progressive-RandAug phases,
MH-AUG 100 -> 24 -> 6 -> 3 with two and three runs in the last stages. Every training is a cell
of a :class:`~lossevo.analysis.study.Study` journal, so an elimination resumes like a search.
"""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from lossevo.analysis.study import Study, StudyLoss
from lossevo.errors import LossevoError
from lossevo.results import Status


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
            if row.setting in names and row.loss_id in values:
                if row.status == Status.DONE and row.fitness is not None:
                    values[row.loss_id].append(row.fitness)
                else:
                    failed.add(row.loss_id)
        return {k: float("nan") if k in failed or not v else float(np.mean(v)) for k, v in values.items()}


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def write_elimination_report(study: Study, results: list[StageResult], cfg: DictConfig, folder: Path) -> Path:
    """``elimination.csv`` (every loss: the last stage it reached, its final rank, its score per
    stage) and ``elimination.md``, and one W&B table per stage; returns the Markdown report."""
    from lossevo.config import plain
    from lossevo.tracking.tracker import Tracker, group_for

    names = [r.stage.name for r in results]
    reached = {s.id: 0 for s in study.losses}
    for i, r in enumerate(results, start=1):
        for s in r.entrants:
            reached[s.id] = i
    final = results[-1]
    rank = {s.id: i for i, s in enumerate(final.survivors, start=1)}
    order = sorted(study.losses, key=lambda s: (-reached[s.id], rank.get(s.id, 10**9), s.id))
    rows = []
    for s in order:
        scores = [r.scores.get(s.id) for r in results]
        cells = ["" if v is None or np.isnan(v) else f"{v:.4f}" for v in scores]
        last = names[reached[s.id] - 1] if reached[s.id] else "-"
        rows.append([s.id, s.name, last, rank.get(s.id), *cells, s.equation])
    header = ["loss_id", "name", "last_stage", "final_rank", *names, "equation"]
    path = folder / "elimination.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    lines = [
        f"# Elimination of {len(study.losses)} losses",
        "",
        "| stage | overrides | runs | entrants | kept |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.stage.name} | `{' '.join(r.stage.overrides)}` | {r.stage.runs} | "
            f"{len(r.entrants)} | {len(r.survivors)} |"
        )
    lines += ["", "| rank | loss | " + " | ".join(names) + " | equation |", "|---" * (len(names) + 3) + "|"]
    for row in rows:
        if row[3] is not None:
            lines.append(f"| {row[3]} | {row[1]} | " + " | ".join(map(str, row[4:-1])) + f" | `{row[-1]}` |")
    report = folder / "elimination.md"
    report.write_text("\n".join(lines) + "\n")
    tracker = Tracker(
        cfg.get("logger"),
        folder,
        group=group_for(folder),
        job_type="eliminate",
        name=f"eliminate-{folder.name}",
        config=plain(cfg),
    )
    tracker.table("elimination", header, [[*r[:4], *r[4:-1], r[-1]] for r in rows])
    for r in results:  # one ranking per stage, in the order it was decided
        ranked = sorted(r.entrants, key=lambda s: (-np.nan_to_num(r.scores[s.id], nan=-1.0), s.id))
        kept = {s.id for s in r.survivors}
        tracker.table(
            f"stage/{r.stage.name}",
            ["rank", "loss", "score", "kept", "equation"],
            [[i, s.name, r.scores[s.id], s.id in kept, s.equation] for i, s in enumerate(ranked, start=1)],
        )
    tracker.finish()
    return report
